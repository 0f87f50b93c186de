"""Leaderboard tasks: the seam through which a kind of evaluation plugs into the leaderboard.

The leaderboard loop is the same for every task: load the ground truth once, then for each
ground-truth image decode it once and score every submission's prediction for it, keeping per
image a small row of *sufficient statistics* per submission (for the bootstrap) and a mergeable
total per submission (for the exact result). A task says how each step is done. It is an object
with these attributes and methods (all picklable; methods are called in worker processes):

``name``
    ``"semantic"``, later ``"panoptic"``, ``"instance"``.
``metrics``
    The metric keys of ``result.to_dict()["metrics"]`` that can rank submissions (all "higher
    is better"); ``default_metric`` is the one used without ``--metric``.
``per_class_metric``
    The key of the rows of ``to_dict()["per_class"]`` compared in the per-class winners table
    (a row with ``gt_pixels`` 0, a class without ground truth, has no winner).
``load_reference(gt, fmt, options) -> ref``
    Read the ground truth's listing and metadata once (not the pixels). ``ref.names`` are the
    image keys in order, ``ref.digest`` a hex hash of the ground truth's content and of every
    option that changes a number (the cache key).
``pair(ref, submission) -> list[str | Pairing | None]``
    The submission member holding each image's prediction (``None``: missing), or an object
    with ``member`` and ``meta`` (e.g. :class:`~segeval.leaderboard.panoptic_task.Pairing`)
    when scoring needs more than the member's bytes (the image's predicted segment table,
    read from the submission's JSON): ``score_image`` then gets ``meta=``. Raises
    :class:`~segeval.leaderboard.sources.SubmissionError` for a submission that cannot be
    scored as a whole (two files for one image; missing files under ``missing="error"``).
``decode_gt(ref, i) -> gt``
    Decode ground-truth image ``i`` (once per leaderboard run).
``row_width(ref) -> int``
    The length of a statistics row.
``empty_total(ref) -> total``
    A zero of the mergeable per-submission statistic (``total += delta`` must be exact).
``score_image(ref, i, gt, pred, pred_name[, meta=...]) -> (row, delta)``
    Score one prediction (the member's bytes, ``None`` if missing) against the decoded ground
    truth: ``row`` is a 1-D integer array of length ``row_width(ref)`` whose *sum over images*
    determines the headline metrics; ``delta`` is added to the submission's total. Raises a
    :class:`~segeval.errors.SegevalError` naming ``pred_name`` for a bad prediction.
``result(ref, total) -> result``
    The result object ``segeval score`` would return (with ``to_dict()``).
``replicates(ref, sums, metric) -> values``
    The metric of each row of ``sums`` (``(B, row_width)``, summed rows of resampled images),
    vectorised: ``(B,)`` float64. For the row sum over all images it equals
    ``result(...).to_dict()["metrics"][metric]`` (the tests check this for every metric).

``prepare(ref, pending) -> None`` (optional)
    Called in the parent process before ``pending`` submissions are scored (before worker
    processes are forked): e.g. load compiled kernels once rather than in every worker.
``score_submission(ref, submission) -> (result, rows | None)`` (optional)
    For statistics that are not sums over images (COCO AP): the task scores a whole
    submission at once (one per worker process) instead of the per-image loop; ``pair``,
    ``decode_gt``, ``score_image``, ``row_width`` and ``empty_total`` are then not used.
``intervals``, ``interval_method`` (optional)
    ``intervals = False``: the task has no bootstrap (``replicates`` is not called); entries
    get ``ci`` low/high ``None`` and ``beats_above`` ``None``, and ``interval_method`` says why.
``class_has_gt(per_class_row) -> bool`` (optional)
    Whether a class has ground truth, for the winners table (default: ``gt_pixels != 0``).

To add a task: write such a class (e.g. ``PanopticTask`` with per-class TP, FP, FN and IoU-sum
as its row), add it to :data:`TASKS`, and give its format adapters ``TASK = "panoptic"``.

The semantic task's row is ``[TP_0..TP_{C-1}, GT_0..GT_{C-1}, PR_0..PR_{C-1}]`` (true
positives, ground-truth pixels and predicted pixels per class, as defined in
:mod:`segeval.core.metrics`): ``3 C`` integers per image instead of a ``C x C`` matrix.
"""

from __future__ import annotations

import hashlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segeval.core import metrics
from segeval.errors import UsageError
from segeval.leaderboard.sources import Submission, SubmissionError, strip_common_folder

_SHOW = 5


def _names(items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    return shown + (f" and {len(items) - _SHOW} more" if len(items) > _SHOW else "")


def _png_keys(members: list[str], prefix: str) -> tuple[dict[str, str], list[str]]:
    """``{key: member}`` for the ``.png`` members under ``prefix`` (key: the path below it
    without the suffix, as :func:`segeval.formats.png_files` does), and duplicated keys."""
    keys: dict[str, str] = {}
    dupes: list[str] = []
    for m in sorted(members):
        if not m.startswith(prefix) or not m.lower().endswith(".png") or m.endswith("/"):
            continue
        key = m[len(prefix):-4]
        if key in keys:
            dupes.append(f"{keys[key]} and {m}")
        keys[key] = m
    return keys, dupes


@dataclass(frozen=True)
class SemanticReference:
    """The ground truth of a semantic leaderboard: listing and metadata, no pixels."""

    format: str
    names: tuple[str, ...]
    gt_paths: tuple[Path, ...]
    class_names: tuple[str, ...]
    ignore_index: int | None
    absent: str
    missing: str
    digest: str

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


class SemanticTask:
    """Semantic segmentation (mIoU and friends) on any format whose adapter has ``load``."""

    name = "semantic"
    metrics = ("miou", "pixel_accuracy", "mean_pixel_accuracy", "fwiou", "mean_dice")
    default_metric = "miou"
    per_class_metric = "iou"
    options = ("split", "num_classes", "class_names", "ignore_index", "absent", "missing")

    # ------------------------------------------------------------------ ground truth

    def load_reference(self, gt: Path, fmt: str, options: dict[str, Any]) -> SemanticReference:
        """List the ground truth with the format's adapter; hash its files and the options."""
        from segeval import __version__
        from segeval.core import metrics
        from segeval.errors import MissingFileError
        from segeval.formats import reject_options
        from segeval.formats.registry import get_adapter

        options = dict(options)
        absent = options.pop("absent", "nan")
        missing = options.pop("missing", "error")
        metrics._check_absent(absent)
        if missing not in ("error", "zero"):
            raise UsageError(f"--missing must be 'error' or 'zero', not {missing!r}")
        known = {k: options.pop(k) for k in ("split", "num_classes", "class_names",
                                              "ignore_index") if k in options}
        reject_options(fmt, options)
        adapter = get_adapter(fmt)
        if not hasattr(adapter, "load"):
            raise UsageError(f"the {fmt} format is not a semantic format")
        gt = Path(gt)
        if not gt.is_dir():
            raise MissingFileError(f"{gt}: no such ground-truth folder")
        known.setdefault("ignore_index", 255)
        with tempfile.TemporaryDirectory() as empty:
            dataset = adapter.load(Path(empty), gt, **known)
        digest = hashlib.sha256()
        head = [self.name, __version__, dataset.format, dataset.class_names,
                dataset.ignore_index, absent, missing]
        digest.update(repr(head).encode())
        for pair in dataset.pairs:
            digest.update(pair.name.encode("utf-8", "surrogateescape") + b"\x00")
            try:
                digest.update(pair.gt.read_bytes())
            except OSError as e:
                raise MissingFileError(f"{pair.gt}: cannot be read ({e.strerror or e})") from None
        return SemanticReference(
            dataset.format, tuple(p.name for p in dataset.pairs),
            tuple(p.gt for p in dataset.pairs), dataset.class_names, dataset.ignore_index,
            absent, missing, digest.hexdigest(),
        )

    def pair(self, ref: SemanticReference, sub: Submission) -> list[str | None]:
        """The member ``<key>.png`` for every ground-truth key (see :mod:`..sources` for the
        single top-level folder rule)."""
        members = list(sub.members)
        keys, dupes = _png_keys(members, "")
        if not any(k in keys for k in ref.names):
            prefix = strip_common_folder(members)
            if prefix:
                keys, dupes = _png_keys(members, prefix)
        if dupes:
            raise SubmissionError(f"{sub.path}: two files for one image ({dupes[0]})")
        chosen = [keys.get(name) for name in ref.names]
        absent = [n for n, m in zip(ref.names, chosen, strict=True) if m is None]
        if absent and ref.missing == "error":
            raise SubmissionError(
                f"{sub.path}: no prediction for {len(absent)} of {len(ref.names)} "
                f"ground-truth images ({_names(absent)})"
            )
        return chosen

    def decode_gt(self, ref: SemanticReference, i: int) -> np.ndarray:
        """Decode and check ground-truth image ``i``: a label that is neither a class nor the
        ignore index is the ground truth's error (:class:`~segeval.errors.LabelError`), found
        here once rather than blamed on every submission."""
        from segeval.errors import LabelError
        from segeval.formats.png import read_label_png

        gt = read_label_png(ref.gt_paths[i])
        if gt.dtype.itemsize <= 2 and gt.dtype.kind == "u":
            counts = np.bincount(gt.ravel(), minlength=ref.num_classes)
            values = np.flatnonzero(counts)
        else:
            values, counts = np.unique(gt, return_counts=True)
            counts = dict(zip(values.tolist(), counts.tolist(), strict=True))
        bad = [int(v) for v in values if not 0 <= v < ref.num_classes and v != ref.ignore_index]
        if bad:
            allowed = f"0..{ref.num_classes - 1}" + (
                "" if ref.ignore_index is None else f" or the ignore index {ref.ignore_index}")
            raise LabelError(f"{ref.gt_paths[i]}: ground-truth label {bad[0]} is not a class "
                             f"(expected {allowed}; {int(counts[bad[0]])} such pixels)")
        return gt

    def prepare(self, ref: SemanticReference, pending: int) -> None:
        """Decode and count the first ground-truth image here, before the workers fork: what
        that loads (the compiled PNG reader and kernel, for images big enough to use them) is
        inherited by every worker instead of loaded by each (~0.5 s per worker)."""
        from segeval.core.kernels import count_pixels

        if pending < 1 or not ref.gt_paths:
            return
        gt = self.decode_gt(ref, 0)
        count_pixels(gt, gt, ref.num_classes, ref.ignore_index)

    # ------------------------------------------------------------------ scoring

    def row_width(self, ref: SemanticReference) -> int:
        return 3 * ref.num_classes

    def empty_total(self, ref: SemanticReference) -> Any:
        from segeval.core.confusion import ConfusionMatrix

        return ConfusionMatrix(ref.num_classes, ref.ignore_index, ref.class_names)

    def score_image(self, ref: SemanticReference, i: int, gt: np.ndarray, pred: bytes | None,
                    pred_name: str) -> tuple[np.ndarray, Any]:
        """Count one image exactly as ``segeval score`` does; the row is (TP, GT, PR)."""
        from segeval.core import metrics
        from segeval.formats.png import decode_label_png

        cm = self.empty_total(ref)
        gt_name = str(ref.gt_paths[i])
        if pred is None:
            cm.update_missing(gt, gt_name=gt_name)
        else:
            cm.update(decode_label_png(pred, pred_name), gt, pred_name=pred_name,
                      gt_name=gt_name)
        row = np.concatenate([metrics.true_positives(cm), metrics.gt_pixels(cm),
                              metrics.pred_pixels(cm)])
        return row, cm

    def result(self, ref: SemanticReference, total: Any) -> Any:
        return total.result(ref.absent, format=ref.format, num_images=len(ref.names))

    # ------------------------------------------------------------------ bootstrap

    def replicates(self, ref: SemanticReference, sums: np.ndarray, metric: str) -> np.ndarray:
        """The metric of summed rows, ``(B, 3C)`` -> ``(B,)``: :mod:`segeval.core.metrics` on
        :class:`~segeval.core.metrics.ClassCounts` with a leading batch axis."""
        c = ref.num_classes
        sums = np.asarray(sums, dtype=np.float64).reshape(-1, 3 * c)
        counts = metrics.ClassCounts(sums[:, :c], sums[:, c:2 * c], sums[:, 2 * c:])
        if metric in ("pixel_accuracy", "fwiou"):
            return getattr(metrics, metric)(counts)
        if metric not in ("miou", "mean_pixel_accuracy", "mean_dice"):
            raise UsageError(f"--metric {metric}: not a metric of the {self.name} task "
                             f"(known: {', '.join(self.metrics)})")
        return getattr(metrics, metric)(counts, ref.absent)


from segeval.leaderboard.instance_task import InstanceTask  # noqa: E402
from segeval.leaderboard.panoptic_task import PanopticTask  # noqa: E402

#: Task name -> task class. Add a task here (and ``TASK = "<name>"`` in its adapters).
TASKS: dict[str, type] = {"semantic": SemanticTask}
TASKS["panoptic"] = PanopticTask
TASKS["instance"] = InstanceTask


def get_task(name: str | None, fmt: str) -> Any:
    """The task object for ``--task`` (default: the format adapter's ``TASK``, else semantic)."""
    if name is None:
        from segeval.formats.registry import get_adapter

        name = getattr(get_adapter(fmt), "TASK", "semantic")
    try:
        return TASKS[name]()
    except KeyError:
        raise UsageError(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})") from None
