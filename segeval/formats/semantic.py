"""The plan of a semantic format whose items are pairs of single-channel label PNGs (``voc``,
``folder``): each pair is decoded once and counted in a worker (only the small confusion matrix
comes back), and the matrices are summed exactly, so the result does not depend on ``jobs``.

An adapter of this kind lists its ground truth as a :class:`SemanticReference` and calls
:func:`semantic_plan`; see :mod:`segeval.formats.voc`, :mod:`segeval.formats.folder` and
:mod:`segeval.formats.ade20k`.

A format whose files do not hold class indices 0..C-1 says how its pixel values become classes
with a :class:`LabelMap` (ADE20K's and mmsegmentation's ``reduce_zero_label``, predictions that
hold ``class + 1``): it is applied to each decoded image in the worker, exactly, before the one
count, on every path (serial, pool, leaderboard, GPU batches).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from segeval.core import metrics
from segeval.core.confusion import ConfusionMatrix, InvalidPred, SemanticResult
from segeval.errors import DataError, LabelError
from segeval.formats.base import (
    File,
    Folder,
    KeyedGroundTruth,
    Options,
    Pair,
    Plan,
    Tree,
    check_missing,
    png_files,
    require_folder,
    shown,
)
from segeval.formats.png import read_label

#: The options a pair-of-PNGs semantic format uses.
OPTIONS = frozenset({"split", "num_classes", "class_names", "ignore_index", "absent", "missing"})


@dataclass(frozen=True)
class LabelMap:
    """How a format's pixel values become class indices ``0..C-1`` before counting.

    ``reduce_zero_label`` (ground truth; mmsegmentation's ``LoadAnnotations`` rule, which HF
    evaluate's ``reduce_labels`` copies): label 0 and the ignore index are not scored, every
    other label ``v`` is class ``v - 1``. mmsegmentation hard-codes 255 as the ignore index
    (0 -> 255, v -> v - 1, 254 -> 255 on ``uint8``); with the default ignore index 255 the two
    rules are the same. A raw label above ``C`` (other than the ignore index) is an error
    naming the file and the raw value (mmsegmentation would drop it from the ground-truth
    counts and still count the prediction there).

    ``pred_offset``: predictions hold ``class + pred_offset`` (1 for ADE20K's SceneParsing
    files, 1..150). ``pred_none``: prediction values that are no class at all, counted as
    wrong for the ground truth's class and as no false positive (``unassigned``; SceneParsing's
    0). Any other prediction value is an error naming the file.
    """

    reduce_zero_label: bool = False
    pred_offset: int = 0
    pred_none: tuple[int, ...] = ()

    @property
    def maps_pred(self) -> bool:
        return bool(self.pred_offset or self.pred_none)

    def settings(self) -> dict[str, Any]:
        """The non-default fields (for a result's settings)."""
        return {k: v for k, v in (("reduce_zero_label", self.reduce_zero_label),
                                  ("pred_offset", self.pred_offset),
                                  ("pred_none", list(self.pred_none))) if v}


def _value_counts(a: np.ndarray) -> tuple[np.ndarray, Any]:
    """The distinct values of an integer label array and, by value, how many pixels hold it."""
    if a.dtype.itemsize <= 2 and a.dtype.kind == "u":
        counts = np.bincount(a.ravel(), minlength=1)
        return np.flatnonzero(counts), counts
    values, counts = np.unique(a, return_counts=True)
    return values, dict(zip(values.tolist(), counts.tolist(), strict=True))


def _lookup(a: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``table[a]`` for an array whose values were checked to be indices of ``table``."""
    if a.dtype.kind == "u" and a.dtype.itemsize <= 2:
        return np.take(table, a)  # faster than table[a]
    return np.take(table, a.astype(np.intp, copy=False))


def reduce_zero_label(gt: np.ndarray, num_classes: int, ignore_index: int, name: str
                      ) -> np.ndarray:
    """The ground truth with :attr:`LabelMap.reduce_zero_label` applied: 0 and
    ``ignore_index`` -> ``ignore_index``, ``v`` -> ``v - 1`` for ``v`` in ``1..num_classes``.

    Raises :class:`~segeval.errors.LabelError` naming ``name`` and the raw value for any other
    value.
    """
    values, counts = _value_counts(gt)
    bad = [int(v) for v in values
           if not (0 <= v <= num_classes or v == ignore_index)]
    if bad:
        raise LabelError(f"{name}: ground-truth label {bad[0]} is not a class (reduce_zero_label: "
                         f"expected 1..{num_classes} for the classes 0..{num_classes - 1}, or 0 "
                         f"or the ignore index {ignore_index}, not scored; "
                         f"{int(counts[bad[0]])} such pixels)")
    top = int(max(values.max(initial=0), num_classes, max(ignore_index, 0)))
    dtype = gt.dtype if (gt.dtype.kind == "u" and ignore_index >= 0
                         and top <= np.iinfo(gt.dtype).max) else np.int64
    table = np.arange(-1, top, dtype=np.int64)
    table[0] = ignore_index
    if 0 <= ignore_index <= top:
        table[ignore_index] = ignore_index
    return _lookup(gt, table.astype(dtype))


def map_prediction(pred: np.ndarray, num_classes: int, labels: LabelMap, name: str
                   ) -> np.ndarray:
    """The prediction with :attr:`LabelMap.pred_offset` and :attr:`LabelMap.pred_none`
    applied: ``class + offset`` -> ``class``, a "none" value -> ``num_classes`` (no class).

    Raises :class:`~segeval.errors.LabelError` naming ``name`` and the raw value for any other
    value.
    """
    values, counts = _value_counts(pred)
    lo, hi = labels.pred_offset, labels.pred_offset + num_classes
    bad = [int(v) for v in values if not (lo <= v < hi or v in labels.pred_none)]
    if bad:
        none = "".join(f", or {v} (no class)" for v in labels.pred_none)
        raise LabelError(f"{name}: predicted label {bad[0]} is not a class (expected "
                         f"{lo}..{hi - 1} for the classes 0..{num_classes - 1}{none}; "
                         f"{int(counts[bad[0]])} such pixels)")
    if values.min(initial=0) < 0:  # only a negative "none" value can get here
        pred = pred.astype(np.int64)
        return np.where((pred >= lo) & (pred < hi), pred - lo, num_classes)
    top = int(max(values.max(initial=0), hi))
    table = np.full(top + 1, num_classes, np.int64)
    table[lo:hi] = np.arange(num_classes)
    dtype = np.uint8 if num_classes < 256 else (np.uint16 if num_classes < 65536 else np.int64)
    return _lookup(pred, table.astype(dtype))


@dataclass(frozen=True)
class SemanticReference(KeyedGroundTruth):
    """The ground truth of a semantic format: its files by key (in report order), the classes
    and the ignore index; no pixels."""

    format: str
    gt: dict[str, File]
    class_names: tuple[str, ...]
    ignore_index: int | None
    labels: LabelMap = LabelMap()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


    def settings(self) -> dict[str, Any]:
        return {"format": self.format, "class_names": list(self.class_names),
                "ignore_index": self.ignore_index, **self.labels.settings()}


@dataclass(frozen=True)
class _Task:
    """What a worker needs to score one pair (picklable)."""

    num_classes: int
    ignore_index: int | None
    class_names: tuple[str, ...]
    absent: metrics.Absent
    per_image: bool
    decoder: str
    labels: LabelMap = LabelMap()

    def empty(self) -> ConfusionMatrix:
        return ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names)

    @property
    def invalid_pred(self) -> InvalidPred:
        """``"wrong"`` where the label map sends "none" predictions out of the classes."""
        return "wrong" if self.labels.pred_none else "error"

    def read_gt(self, pair: Pair) -> np.ndarray:
        """The ground truth of a pair, decoded and mapped (not checked unless mapped)."""
        gt = read_label(pair.gt, decoder=self.decoder)
        if self.labels.reduce_zero_label:
            assert self.ignore_index is not None  # the adapters refuse it without one
            gt = reduce_zero_label(gt, self.num_classes, self.ignore_index, str(pair.gt))
        return gt

    def read_pred(self, pair: Pair, shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The prediction of a pair, decoded and mapped; with ``shape`` (its ground truth's),
        a prediction of another size is refused from its header, before it is decoded."""
        pred = read_label(pair.pred, decoder=self.decoder,
                          shape=None if shape is None else (shape[0], shape[1]),
                          against=str(pair.gt))
        if self.labels.maps_pred:
            pred = map_prediction(pred, self.num_classes, self.labels, str(pair.pred))
        return pred


def load_gt(task: _Task, pair: Pair) -> np.ndarray:
    """Decode, map and check a pair's ground truth: a label that is neither a class nor the
    ignore index is the ground truth's error (:class:`~segeval.errors.LabelError` naming its
    file)."""
    gt = task.read_gt(pair)
    if task.labels.reduce_zero_label:
        return gt  # checked (raw values) while mapped
    values, counts = _value_counts(gt)
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
        cm.update(task.read_pred(pair, gt.shape), gt, invalid_pred=task.invalid_pred,
                  pred_name=str(pair.pred), gt_name=str(pair.gt))
    return cm, (image_row(task, pair, cm) if task.per_image else None)


def score_pair(task: _Task, pair: Pair) -> tuple[ConfusionMatrix, dict[str, Any] | None]:
    """Decode one pair (each file once), map its labels and count it."""
    return score_with(task, pair, task.read_gt(pair))


def load_pair(task: _Task, pair: Pair) -> tuple[Pair, np.ndarray | None, np.ndarray]:
    """Decode and map one pair for counting elsewhere (GPU batches): ``(pair, pred or None,
    gt)``."""
    gt = task.read_gt(pair)
    pred = None if pair.pred is None else task.read_pred(pair, gt.shape)
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
                cm.update(pred, gt, invalid_pred=task.invalid_pred, pred_name=str(pair.pred),
                          gt_name=str(pair.gt))
            out.append((cm, image_row(task, pair, cm) if task.per_image else None))
        return out
    cm = task.empty()
    cm.device = device
    try:
        cm.update(np.stack([p for _, p, _ in loaded]), np.stack([g for _, _, g in loaded]),
                  invalid_pred=task.invalid_pred)
    except LabelError:
        for pair, pred, gt in loaded:  # find the file: this raises for the first bad one
            one = task.empty()
            one.device = device
            one.update(pred, gt, invalid_pred=task.invalid_pred, pred_name=str(pair.pred),
                       gt_name=str(pair.gt))
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
                 options.per_image, options.decoder, ref.labels)
    return Plan(
        format=ref.format, task="semantic", items=pairs,
        score=functools.partial(score_pair, task),
        zero=task.empty(),
        finish=functools.partial(_finish, task, ref.format, len(pairs)),
        name_of=_pair_name,
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
