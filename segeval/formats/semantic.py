"""Scoring a semantic dataset: pairs of label files in, :class:`~segeval.SemanticResult` out.

The adapter pairs the files, every pair is decoded once and counted in a worker (only the small
confusion matrix comes back), and the matrices are summed exactly, so the result does not depend
on ``jobs``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from segeval.core import metrics
from segeval.core.confusion import ConfusionMatrix, SemanticResult
from segeval.errors import MissingFileError, UsageError
from segeval.formats import Pair, SemanticDataset, log, reject_options
from segeval.formats.png import read_label_png

Missing = Literal["error", "zero"]
_SHOW = 5  # names listed in a message about many files


@dataclass(frozen=True)
class _Task:
    """What a worker needs to score one pair (picklable)."""

    num_classes: int
    ignore_index: int | None
    class_names: tuple[str, ...]
    absent: metrics.Absent
    per_image: bool


def _score_pair(task: _Task, pair: Pair) -> tuple[ConfusionMatrix, dict[str, Any] | None]:
    """Decode one pair and count it; the per-image row when asked for."""
    cm = ConfusionMatrix(task.num_classes, task.ignore_index, task.class_names)
    gt = read_label_png(pair.gt)
    if pair.pred is None:
        cm.update_missing(gt, gt_name=str(pair.gt))
    else:
        cm.update(read_label_png(pair.pred), gt, pred_name=str(pair.pred), gt_name=str(pair.gt))
    return cm, (_image_row(task, pair, cm) if task.per_image else None)


def _image_row(task: _Task, pair: Pair, cm: ConfusionMatrix) -> dict[str, Any]:
    """The per-image row of one pair's confusion matrix."""
    miou = metrics.miou(cm, task.absent)
    return {
        "image": pair.name,
        "missing": pair.pred is None,
        "valid_pixels": cm.total,
        "pixel_accuracy": metrics.pixel_accuracy(cm),
        "mean_pixel_accuracy": float(metrics.mean_pixel_accuracy(cm, task.absent)),
        "miou": float(miou),
        "mean_dice": float(metrics.mean_dice(cm, task.absent)),
        "classes_averaged": miou.n,
    }


def _names(paths: list[Any]) -> str:
    shown = ", ".join(str(getattr(p, "name", p)) for p in paths[:_SHOW])
    return shown + (f" and {len(paths) - _SHOW} more" if len(paths) > _SHOW else "")


def check_pairs(dataset: SemanticDataset, missing: Missing) -> None:
    """Raise for missing predictions (unless ``missing="zero"``); log extra predictions."""
    if missing not in ("error", "zero"):
        raise UsageError(f"--missing must be 'error' or 'zero', not {missing!r}")
    absent = [p.name for p in dataset.pairs if p.pred is None]
    if absent and missing == "error":
        raise MissingFileError(
            f"{dataset.pred_root}: no prediction for {len(absent)} of {len(dataset.pairs)} "
            f"ground-truth images ({_names(absent)}); use --missing zero to count them as wrong"
        )
    if absent:
        log.warning("%d ground-truth images have no prediction and count as all wrong: %s",
                    len(absent), _names(absent))
    if dataset.extra_predictions:
        n = len(dataset.extra_predictions)
        log.warning("%d prediction%s no ground truth and %s ignored: %s", n,
                    "s have" if n > 1 else " has", "are" if n > 1 else "is",
                    _names(dataset.extra_predictions))


def evaluate_semantic(
    load: Callable[..., SemanticDataset],
    pred: Path,
    gt: Path,
    *,
    num_classes: int | None = None,
    class_names: tuple[str, ...] | None = None,
    ignore_index: int | None = 255,
    split: str | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    missing: Missing = "error",
    absent: metrics.Absent = "nan",
    per_image: bool = False,
    device: str = "auto",
    progress: Callable[[int], Any] | None = None,
    on_start: Callable[[int], Any] | None = None,
    **unused: Any,
) -> SemanticResult:
    """Score the predictions under ``pred`` against the ground truth under ``gt``.

    ``load`` is the adapter's pairing function; ``num_classes``, ``class_names``,
    ``ignore_index`` and ``split`` are passed to it. ``jobs`` worker processes decode and count
    (default: all cores) on the engine named by ``scheduler`` (default this machine; see
    :mod:`segeval.engine`); ``missing="zero"`` counts a missing prediction as wrong for every pixel
    instead of raising; ``absent`` is the NaN policy of :mod:`segeval.core.metrics`;
    ``per_image=True`` fills ``result.per_image``. ``device="cuda"`` counts on the GPU of this
    machine (decoding stays on the CPU; see :mod:`segeval.engine.cuda`); ``"auto"`` and ``"cpu"``
    count on the CPU, where the decoded files are. ``on_start(n)`` is called with the number of
    images before the work starts and ``progress(k)`` as images finish.

    Raises :class:`~segeval.errors.SegevalError` (with the file named) for bad input; the
    returned metrics are computed on the dataset-level confusion matrix.
    """
    reject_options(load.__module__.rsplit(".", 1)[-1], unused)
    metrics._check_absent(absent)
    if device == "cuda":
        from segeval.engine.cuda import check_cuda_options

        check_cuda_options(scheduler)
    elif device not in ("auto", "cpu"):
        raise UsageError(f"--device must be 'auto', 'cpu' or 'cuda', not {device!r}")
    for folder, what in ((pred, "prediction"), (gt, "ground-truth")):
        if not folder.is_dir():
            raise MissingFileError(f"{folder}: no such {what} folder")
    dataset = load(pred, gt, split=split, num_classes=num_classes, class_names=class_names,
                   ignore_index=ignore_index)
    check_pairs(dataset, missing)
    task = _Task(dataset.num_classes, dataset.ignore_index, dataset.class_names, absent, per_image)
    if on_start:
        on_start(len(dataset.pairs))
    from segeval.engine import reduce_items

    if device == "cuda":
        from segeval.engine.cuda import reduce_pairs_cuda

        total, rows = reduce_pairs_cuda(task, dataset.pairs, jobs=jobs, progress=progress)
    else:
        total, rows = reduce_items(functools.partial(_score_pair, task), dataset.pairs,
                                   scheduler=scheduler, jobs=jobs, progress=progress)
    return total.result(absent, format=dataset.format, num_images=len(dataset.pairs),
                        per_image=rows if per_image else None)


# ---------------------------------------------------------------- saved state (segeval.engine.state)

def state_of(result: SemanticResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings and arrays of a semantic result, for :mod:`segeval.engine.state`."""
    cm = result.confusion
    settings = {"num_classes": cm.num_classes, "ignore_index": cm.ignore_index,
                "class_names": list(cm.class_names), "absent": result.absent}
    return settings, {"matrix": cm.matrix, "unassigned": cm.unassigned}


def stats_from_state(settings: dict[str, Any], arrays: dict[str, Any]) -> ConfusionMatrix:
    """The confusion matrix a state file holds."""
    return ConfusionMatrix(settings["num_classes"], settings["ignore_index"],
                           settings["class_names"], matrix=arrays["matrix"],
                           unassigned=arrays["unassigned"])


def result_from_state(stats: ConfusionMatrix, settings: dict[str, Any], fmt: str | None,
                      num_images: int) -> SemanticResult:
    """The result of merged states."""
    return stats.result(settings["absent"], format=fmt, num_images=num_images)
