"""The plan of a semantic format whose items are pairs of single-channel label PNGs (``voc``,
``folder``): each pair is decoded once and counted in a worker (only the small confusion matrix
comes back), and the matrices are summed exactly, so the result does not depend on ``jobs``.

An adapter of this kind lists its ground truth as a :class:`SemanticReference` and calls
:func:`semantic_plan`; see :mod:`segeval.formats.voc` and :mod:`segeval.formats.folder`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from segeval.core import metrics
from segeval.core.confusion import ConfusionMatrix, SemanticResult
from segeval.errors import DataError, LabelError
from segeval.formats.base import (
    File,
    Folder,
    Options,
    Pair,
    Plan,
    Tree,
    check_missing,
    png_files,
    require_folder,
    shown,
)
from segeval.formats.png import image_pixels, read_label

#: The options a pair-of-PNGs semantic format uses.
OPTIONS = frozenset({"split", "num_classes", "class_names", "ignore_index", "absent", "missing"})


@dataclass(frozen=True)
class SemanticReference:
    """The ground truth of a semantic format: its files by key (in report order), the classes
    and the ignore index; no pixels."""

    format: str
    gt: dict[str, File]
    class_names: tuple[str, ...]
    ignore_index: int | None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.gt)

    @property
    def files(self) -> tuple[File, ...]:
        return tuple(self.gt.values())

    def settings(self) -> dict[str, Any]:
        return {"format": self.format, "class_names": list(self.class_names),
                "ignore_index": self.ignore_index}


@dataclass(frozen=True)
class _Task:
    """What a worker needs to score one pair (picklable)."""

    num_classes: int
    ignore_index: int | None
    class_names: tuple[str, ...]
    absent: metrics.Absent
    per_image: bool
    decoder: str

    def empty(self) -> ConfusionMatrix:
        return ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)


def load_gt(task: _Task, pair: Pair) -> np.ndarray:
    """Decode and check a pair's ground truth: a label that is neither a class nor the ignore
    index is the ground truth's error (:class:`~segeval.errors.LabelError` naming its file)."""
    gt = read_label(pair.gt, decoder=task.decoder)
    if gt.dtype.itemsize <= 2 and gt.dtype.kind == "u":
        counts = np.bincount(gt.ravel(), minlength=task.num_classes)
        values = np.flatnonzero(counts)
    else:
        values, counts = np.unique(gt, return_counts=True)
        counts = dict(zip(values.tolist(), counts.tolist(), strict=True))
    bad = [int(v) for v in values if not 0 <= v < task.num_classes and v != task.ignore_index]
    if bad:
        allowed = f"0..{task.num_classes - 1}" + (
            "" if task.ignore_index is None else f" or the ignore index {task.ignore_index}")
        raise LabelError(f"{pair.gt}: ground-truth label {bad[0]} is not a class "
                         f"(expected {allowed}; {int(counts[bad[0]])} such pixels)")
    return gt


def score_with(task: _Task, pair: Pair, gt: np.ndarray
               ) -> tuple[ConfusionMatrix, dict[str, Any] | None]:
    """Count one pair against its decoded ground truth; the per-image row when asked for."""
    cm = task.empty()
    if pair.pred is None:
        cm.update_missing(gt, gt_name=str(pair.gt))
    else:
        cm.update(read_label(pair.pred, decoder=task.decoder), gt, pred_name=str(pair.pred),
                  gt_name=str(pair.gt))
    return cm, (image_row(task, pair, cm) if task.per_image else None)


def score_pair(task: _Task, pair: Pair) -> tuple[ConfusionMatrix, dict[str, Any] | None]:
    """Decode one pair (each file once) and count it."""
    return score_with(task, pair, read_label(pair.gt, decoder=task.decoder))


def load_pair(task: _Task, pair: Pair) -> tuple[Pair, np.ndarray | None, np.ndarray]:
    """Decode one pair for counting elsewhere (GPU batches): ``(pair, pred or None, gt)``."""
    gt = read_label(pair.gt, decoder=task.decoder)
    pred = None if pair.pred is None else read_label(pair.pred, decoder=task.decoder)
    return pair, pred, gt


def count_loaded(task: _Task, loaded: list[tuple[Pair, np.ndarray | None, np.ndarray]],
                 device: str) -> list[tuple[ConfusionMatrix, dict[str, Any] | None]]:
    """Count decoded pairs of one shape and dtype on ``device`` (one stacked update): one
    ``(matrix, None)`` for the batch; pairs one by one with per-image rows, a missing
    prediction on the CPU. Nothing of a batch with a bad label is counted: the pairs are then
    counted one by one to name the file."""
    if task.per_image or len(loaded) == 1 or any(p is None for _, p, _ in loaded):
        out = []
        for pair, pred, gt in loaded:
            cm = task.empty()
            if pred is None:
                cm.update_missing(gt, gt_name=str(pair.gt))
            else:
                cm.device = device
                cm.update(pred, gt, pred_name=str(pair.pred), gt_name=str(pair.gt))
            out.append((cm, image_row(task, pair, cm) if task.per_image else None))
        return out
    cm = task.empty()
    cm.device = device
    try:
        cm.update(np.stack([p for _, p, _ in loaded]), np.stack([g for _, _, g in loaded]))
    except LabelError:
        for pair, pred, gt in loaded:  # find the file: this raises for the first bad one
            one = task.empty()
            one.device = device
            one.update(pred, gt, pred_name=str(pair.pred), gt_name=str(pair.gt))
        raise
    return [(cm, None)]


def image_row(task: _Task, pair: Pair, cm: ConfusionMatrix) -> dict[str, Any]:
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


def _finish(task: _Task, fmt: str, num_images: int, total: ConfusionMatrix,
            rows: list[dict[str, Any]]) -> SemanticResult:
    return total.result(task.absent, format=fmt, num_images=num_images,
                        per_image=rows if task.per_image else None)


def _refuse_jpeg(pred: Tree, prefix: str, absent: list[str]) -> None:
    """:class:`~segeval.errors.DataError` when missing predictions were saved as JPEG: a lossy
    format whose decoded values are not the labels written, so it is not read (and
    ``--missing zero`` would silently score those images as all wrong)."""
    if not absent:
        return
    jpegs = png_files(pred, suffixes=(".jpg", ".jpeg"), prefix=prefix)
    found = [jpegs[name] for name in absent if name in jpegs]
    if found:
        raise DataError(f"{found[0]}: {len(found)} of the {len(absent)} missing predictions are "
                        f"JPEG files ({shown([f.member for f in found])}); JPEG is lossy and "
                        f"changes label values, so label maps are read from PNG only: save "
                        f"the predictions as PNG")


def semantic_plan(pred: Tree, ref: SemanticReference, options: Options, *,
                  prefix: str = "") -> Plan:
    """Pair ``ref``'s ground truth with the PNGs of ``pred`` that have the same key (the path
    below the root, or below ``prefix``, without ``.png``) and plan their counting.

    Raises :class:`~segeval.errors.MissingFileError` for missing predictions unless
    ``options.missing == "zero"``; warns about predictions without ground truth.
    """
    if isinstance(pred, Folder):
        require_folder(pred.root, "prediction")
    pred_files = png_files(pred, prefix=prefix)
    pairs = [Pair(name, gt, pred_files.get(name)) for name, gt in ref.gt.items()]
    extra = [p for name, p in pred_files.items() if name not in ref.gt]
    _refuse_jpeg(pred, prefix, [p.name for p in pairs if p.pred is None])
    check_missing(pairs, options.missing, f"{pred.root}/{prefix}".rstrip("/"), extra=extra)
    task = _Task(ref.num_classes, ref.ignore_index, ref.class_names, options.absent,
                 options.per_image, options.decoder)
    return Plan(
        format=ref.format, task="semantic", items=pairs,
        score=functools.partial(score_pair, task),
        zero=task.empty(),
        finish=functools.partial(_finish, task, ref.format, len(pairs)),
        name_of=_pair_name,
        pixels=image_pixels(pairs[0].gt) * len(pairs) if pairs else 0,
        load_gt=functools.partial(load_gt, task),
        score_with=functools.partial(score_with, task),
        load=functools.partial(load_pair, task),
        count=functools.partial(count_loaded, task),
        matched=sum(p.pred is not None for p in pairs),
        settings={**ref.settings(), "absent": options.absent, "missing": options.missing},
    )


def _pair_name(pair: Pair) -> str:
    return str(pair.pred if pair.pred is not None else pair.gt)


# ---------------------------------------------------------------- saved state (engine.state)

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
