"""Cityscapes pixel-level scores, as cityscapesScripts' ``evalPixelLevelSemanticLabeling``
computes them: per-class IoU and iIoU over the 19 evaluated classes, category IoU and iIoU.

Conventions (all those of the official script):

* The statistic is a **34 x 34 matrix over label ids** (rows = ground truth, columns =
  prediction, every pixel counted, ignored ids included) plus one row per ground-truth
  instance (label id, size, pixels predicted as its label, pixels predicted as its category).
  :class:`CityscapesStats` adds exactly (``+``): counts are integers, instance rows are
  concatenated and their weighted sums are taken with :func:`math.fsum`, so results do not
  depend on image order or on how images were split over processes.
* Class IoU = TP / (TP + FP + FN) for an evaluated class: FN is the rest of its ground-truth
  row, *including* pixels predicted as an ignored id (0-6, 9, 10, 14-16, 18, 29, 30); FP counts
  only pixels whose ground truth is an evaluated class. Pixels whose ground truth is ignored
  never count. So the 19 x 19 :class:`~segeval.ConfusionMatrix` of the evaluated classes, with
  predictions of ignored ids in its ``unassigned`` column ("wrong for every class"), gives the
  official IoU through the ordinary :func:`segeval.core.metrics.iou`.
* iIoU (classes with instances): TP and FN of every ground-truth instance (instanceIds value
  > 1000) are weighted by ``AVG_CLASS_SIZE[class] / instance size``; FP is the unweighted FP of
  the IoU. Instances of ignored classes (caravan, trailer) are skipped.
* Category IoU counts a prediction of any evaluated label of the same category as correct;
  category iIoU exists for ``human`` and ``vehicle`` only, and there the category's predicted
  labels include the ignored caravan and trailer ids.
* A score whose denominator is 0 is NaN; means are over the non-NaN values. Scores are
  fractions, not percent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from segeval.core import metrics
from segeval.core.confusion import ConfusionMatrix, SemanticResult, json_float
from segeval.core.kernels.cityscapes import count_cityscapes
from segeval.errors import LabelError, SizeMismatchError, bad_value
from segeval.formats.cityscapes.labels import (
    AVG_CLASS_SIZE,
    BY_ID,
    CATEGORIES,
    CLASS_NAMES,
    EVAL_CATEGORIES,
    EVAL_LABEL_IDS,
    INSTANCE_OFFSET,
    NUM_LABEL_IDS,
    category_label_ids,
    instance_categories,
)

if TYPE_CHECKING:
    import pandas as pd

_UNKNOWN = 255
_EVAL = np.array(EVAL_LABEL_IDS)
_IGNORED = np.array([lb.ignore_in_eval for lb in BY_ID])


def _label_lut(pred_ids: str) -> np.ndarray:
    """Raw prediction byte -> label id (255 where the byte is not a valid value)."""
    lut = np.full(256, _UNKNOWN, np.uint8)
    if pred_ids == "label":
        lut[:NUM_LABEL_IDS] = np.arange(NUM_LABEL_IDS)
    elif pred_ids == "train":
        for label_id in EVAL_LABEL_IDS:
            lut[BY_ID[label_id].train_id] = label_id
        lut[255] = 0  # train id 255 ("not a class") is read as label id 0, unlabeled
    else:
        raise bad_value("pred_ids", "'label' or 'train'", pred_ids)
    return lut


def _category_of() -> np.ndarray:
    """Label id -> category index (255 for ids outside the table)."""
    out = np.full(256, _UNKNOWN, np.uint8)
    for lb in BY_ID:
        out[lb.id] = CATEGORIES.index(lb.category)
    return out


PRED_LUTS = {"label": _label_lut("label"), "train": _label_lut("train")}
CATEGORY_OF = _category_of()


@dataclass
class CityscapesStats:
    """The mergeable statistic of a Cityscapes pixel-level evaluation.

    ``matrix``: ``(34, 34)`` int64 over label ids, rows = ground truth, columns = prediction,
    every pixel counted. ``instances``: ``(n, 4)`` int64 rows ``(label id, size, tp,
    category tp)``, one per ground-truth instance of an evaluated class.
    """

    matrix: np.ndarray = field(default_factory=lambda: np.zeros((NUM_LABEL_IDS,) * 2, np.int64))
    instances: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.int64))

    def __add__(self, other: CityscapesStats) -> CityscapesStats:
        if not isinstance(other, CityscapesStats):
            return NotImplemented
        return CityscapesStats(self.matrix + other.matrix,
                               np.concatenate([self.instances, other.instances]))

    def __iadd__(self, other: CityscapesStats) -> CityscapesStats:
        if not isinstance(other, CityscapesStats):
            return NotImplemented
        self.matrix += other.matrix
        self.instances = np.concatenate([self.instances, other.instances])
        return self

    def confusion(self) -> ConfusionMatrix:
        """The 19 evaluated classes (train-id order) as a :class:`~segeval.ConfusionMatrix`:
        rows and columns of evaluated label ids, the rest of each row (predicted ignored ids)
        in ``unassigned``; rows of ignored ground truth dropped."""
        rows = self.matrix[_EVAL]
        inside = rows[:, _EVAL]
        return ConfusionMatrix(len(EVAL_LABEL_IDS), None, CLASS_NAMES, matrix=inside,
                               unassigned=rows.sum(axis=1) - inside.sum(axis=1))


def image_stats(
    pred: np.ndarray,
    gt: np.ndarray,
    instances: np.ndarray | None = None,
    *,
    pred_ids: str = "label",
    pred_name: str = "pred",
    gt_name: str = "gt",
    instances_name: str = "instances",
    kernel: str = "auto",
) -> CityscapesStats:
    """Count one image: label ids ``gt``, prediction ``pred`` (label ids, or train ids with
    ``pred_ids="train"``), optional instanceIds ``instances`` (``None``: no iIoU counts).

    Arrays are ``H x W`` integers. Raises :class:`~segeval.errors.SizeMismatchError` for
    different shapes and :class:`~segeval.errors.LabelError` (naming the array) for a value the
    label table does not know: a ground-truth id above 33, a predicted label id above 33 (a
    train id above 18 other than 255), or an instance of a class without instances.
    ``kernel`` chooses the counting kernel (see :mod:`segeval.core.kernels.cityscapes`).
    """
    lut = PRED_LUTS.get(pred_ids)
    if lut is None:
        _label_lut(pred_ids)  # raises the ValueError
    for arr, name in ((pred, pred_name), (instances, instances_name)):
        if arr is not None and arr.shape != gt.shape:
            raise SizeMismatchError(f"{name}: shape {arr.shape} does not match the ground truth "
                                    f"{gt_name} shape {gt.shape}")
    g = _as_bytes(gt, gt_name, "ground-truth label id")
    p = _as_bytes(pred, pred_name, "predicted " + ("train id" if pred_ids == "train"
                                                    else "label id"))
    inst = None
    if instances is not None:
        inst = _as_uint16(instances, instances_name)
    counts = count_cityscapes(g, p, inst, lut, CATEGORY_OF, kernel=kernel)
    return stats_from_counts(counts, pred_ids=pred_ids, pred_name=pred_name, gt_name=gt_name,
                             instances_name=instances_name)


def stats_from_counts(counts: Any, *, pred_ids: str = "label", pred_name: str = "pred",
                      gt_name: str = "gt", instances_name: str = "instances") -> CityscapesStats:
    """The :class:`CityscapesStats` of one image from its kernel counts (a
    :class:`~segeval.core.kernels.cityscapes.CityscapesCounts`), checking the values as
    :func:`image_stats` describes. Keeps no reference to the arrays of ``counts``."""
    lut = PRED_LUTS.get(pred_ids)
    if lut is None:
        _label_lut(pred_ids)  # raises the ValueError
    hist = counts.hist
    bad_rows = np.flatnonzero(hist[NUM_LABEL_IDS:].sum(axis=1))
    if bad_rows.size:
        value = int(bad_rows[0]) + NUM_LABEL_IDS
        raise LabelError(f"{gt_name}: ground-truth label id {value} is not in the Cityscapes "
                         f"label table (expected 0..33; {int(hist[value].sum())} such pixels)")
    bad_cols = np.flatnonzero((lut == _UNKNOWN) & (hist.sum(axis=0) > 0))
    if bad_cols.size:
        value = int(bad_cols[0])
        expected = "train ids 0..18 or 255" if pred_ids == "train" else "label ids 0..33"
        raise LabelError(f"{pred_name}: predicted value {value} is not a Cityscapes "
                         f"{'train' if pred_ids == 'train' else 'label'} id (expected "
                         f"{expected}; {int(hist[:, value].sum())} such pixels)")
    # columns of prediction bytes -> columns of label ids (an integer matmul with a one-hot
    # table did the same in 0.27 ms per image)
    valid = np.flatnonzero(lut != _UNKNOWN)
    targets = lut[valid].astype(np.intp)
    matrix = np.zeros((NUM_LABEL_IDS, NUM_LABEL_IDS), np.int64)
    np.add.at(matrix.T, targets, hist[:NUM_LABEL_IDS, valid].T)
    return CityscapesStats(matrix, _instance_rows(counts, instances_name))


def _instance_rows(counts: Any, name: str) -> np.ndarray:
    labels = counts.instance_ids // INSTANCE_OFFSET
    rows = []
    for label_id in sorted(set(labels.tolist())):  # (np.unique would import numpy.ma: 13 ms)
        lb = BY_ID[label_id] if label_id < NUM_LABEL_IDS else None
        if lb is not None and lb.ignore_in_eval:
            continue  # the official script skips instances of ignored classes
        if lb is None or not lb.has_instances:
            first = int(counts.instance_ids[labels == label_id][0])
            what = f"label id {label_id}, which is not in the Cityscapes label table" \
                if lb is None else f"class {lb.name!r}, which has no instances"
            raise LabelError(f"{name}: instance id {first} is of {what}")
        sel = labels == label_id
        rows.append(np.stack([labels[sel], counts.size[sel], counts.tp[sel],
                              counts.category_tp[sel]], axis=1))
    return np.concatenate(rows) if rows else np.zeros((0, 4), np.int64)


def _as_bytes(arr: np.ndarray, name: str, what: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.view(np.uint8)
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: label ids must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 255):
        value = int(arr.min()) if arr.min() < 0 else int(arr.max())
        raise LabelError(f"{name}: {what} {value} is not in the Cityscapes label table")
    return arr.astype(np.uint8)


def _as_uint16(arr: np.ndarray, name: str) -> np.ndarray:
    if arr.dtype == np.uint16:
        return arr
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError(f"{name}: instance ids must be integers, got dtype {arr.dtype}")
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise LabelError(f"{name}: instance id {int(arr.max())} is out of range (0..65535)")
    return arr.astype(np.uint16)


# --------------------------------------------------------------------------- scores


def _false_positives(matrix: np.ndarray, columns: list[int], rows: list[int]) -> int:
    return int(matrix[np.ix_(rows, columns)].sum())


def _ratio(tp: float, fp: float, fn: float) -> float:
    denom = tp + fp + fn
    return float(tp) / denom if denom else math.nan


_AVG_BY_ID = np.array([AVG_CLASS_SIZE.get(lb.name, math.nan) for lb in BY_ID])


def _weighted(stats: CityscapesStats, label_ids: tuple[int, ...], column: int,
              ) -> tuple[float, float]:
    """(weighted TP, weighted FN) over the instances of ``label_ids``; ``column`` 2 = own class
    hits, 3 = category hits. Each term is ``hits * (avg_size / size)`` as in the official
    script; the terms are summed exactly (:func:`math.fsum`), so their order does not matter."""
    rows = stats.instances[np.isin(stats.instances[:, 0], label_ids)]
    weight = _AVG_BY_ID[rows[:, 0]] / rows[:, 1].astype(np.float64)
    hits = rows[:, column].astype(np.float64)
    misses = (rows[:, 1] - rows[:, column]).astype(np.float64)
    return math.fsum((hits * weight).tolist()), math.fsum((misses * weight).tolist())


def label_scores(stats: CityscapesStats) -> tuple[dict[str, float], dict[str, float]]:
    """Per label id 0..33 (keyed by name, table order): IoU and iIoU as the official result
    JSON has them (``classScores``, ``classInstScores``); NaN for ignored labels, for labels
    without instances (iIoU) and where the denominator is 0."""
    m = stats.matrix
    evaluated = [int(i) for i in _EVAL]
    iou, iiou = {}, {}
    for lb in BY_ID:
        iou[lb.name] = iiou[lb.name] = math.nan
        if lb.ignore_in_eval:
            continue
        tp = int(m[lb.id, lb.id])
        fn = int(m[lb.id].sum()) - tp
        fp = _false_positives(m, [lb.id], [i for i in evaluated if i != lb.id])
        iou[lb.name] = _ratio(tp, fp, fn)
        if lb.has_instances:
            tpw, fnw = _weighted(stats, (lb.id,), 2)
            iiou[lb.name] = _ratio(tpw, fp, fnw)
    return iou, iiou


def category_scores(stats: CityscapesStats) -> tuple[dict[str, float], dict[str, float]]:
    """Per category (all 8, table order): IoU and iIoU as in the official result JSON
    (``categoryScores``, ``categoryInstScores``)."""
    m = stats.matrix
    with_instances = instance_categories()
    iou, iiou = {}, {}
    for cat in CATEGORIES:
        iou[cat] = iiou[cat] = math.nan
        ids = list(category_label_ids(cat, evaluated_only=True))
        others = [lb.id for lb in BY_ID if not lb.ignore_in_eval and lb.category != cat]
        if ids:
            tp = int(m[np.ix_(ids, ids)].sum())
            fn = int(m[ids].sum()) - tp
            iou[cat] = _ratio(tp, _false_positives(m, ids, others), fn)
        if cat in with_instances:
            all_ids = category_label_ids(cat, evaluated_only=False)
            tpw, fnw = _weighted(stats, all_ids, 3)
            iiou[cat] = _ratio(tpw, _false_positives(m, list(all_ids), others), fnw)
    return iou, iiou


def official_average(scores: dict[str, float]) -> float:
    """The official ``getScoreAverage``: the mean of the non-NaN values, summed in order."""
    valid = [v for v in scores.values() if not math.isnan(v)]
    total = 0.0
    for v in valid:
        total += v
    return total / len(valid) if valid else math.nan


def _mean(values: np.ndarray) -> metrics.MeanScore:
    defined = values[~np.isnan(values)]
    return metrics.MeanScore(float(defined.mean()) if defined.size else math.nan,
                             int(defined.size), "nan")


# --------------------------------------------------------------------------- result


@dataclass(kw_only=True)
class CityscapesResult(SemanticResult):
    """A :class:`~segeval.SemanticResult` over the 19 evaluated classes (train-id order) plus
    Cityscapes' instance-weighted and category scores.

    ``instance_iou``: ``(19,)`` per-class iIoU (NaN for the 11 classes without instances, and
    everywhere when instances were not evaluated); ``iiou`` its mean. ``category_iou`` and
    ``category_instance_iou``: ``(7,)`` over :data:`EVAL_CATEGORIES` (iIoU only for human and
    vehicle); ``category_miou`` and ``category_iiou`` their means. ``stats`` keeps the 34 x 34
    label-id matrix and the instance rows (for :func:`official_result`); ``pred_ids`` says
    whether predictions were read as label or train ids.
    """

    stats: CityscapesStats = field(repr=False)
    instance_iou: np.ndarray
    iiou: metrics.MeanScore
    category_iou: np.ndarray
    category_miou: metrics.MeanScore
    category_instance_iou: np.ndarray
    category_iiou: metrics.MeanScore
    instances_evaluated: bool = True
    pred_ids: str = "label"

    @classmethod
    def from_stats(cls, stats: CityscapesStats, *, instances_evaluated: bool = True,
                   pred_ids: str = "label", **info: Any) -> CityscapesResult:
        """Every score of ``stats``; ``info`` fills ``num_images``, ``per_image``, ..."""
        base = stats.confusion().result("nan", format="cityscapes", **info)
        _, iiou_by_name = label_scores(stats)
        cat_iou, cat_iiou = category_scores(stats)
        inst = np.array([iiou_by_name[name] for name in CLASS_NAMES])
        c_iou = np.array([cat_iou[c] for c in EVAL_CATEGORIES])
        c_iiou = np.array([cat_iiou[c] for c in EVAL_CATEGORIES])
        if not instances_evaluated:
            inst[:] = math.nan
            c_iiou[:] = math.nan
        return cls(**{f.name: getattr(base, f.name) for f in fields(SemanticResult)},
                   stats=stats, instance_iou=inst, iiou=_mean(inst), category_iou=c_iou,
                   category_miou=_mean(c_iou), category_instance_iou=c_iiou,
                   category_iiou=_mean(c_iiou), instances_evaluated=instances_evaluated,
                   pred_ids=pred_ids)

    def metrics_dict(self) -> dict[str, Any]:
        out = super().metrics_dict()
        out["iiou"] = json_float(self.iiou)
        out["category_miou"] = json_float(self.category_miou)
        out["category_iiou"] = json_float(self.category_iiou)
        out["classes_averaged"].update(iiou=self.iiou.n, category_miou=self.category_miou.n,
                                       category_iiou=self.category_iiou.n)
        out["instances_evaluated"] = self.instances_evaluated
        out["pred_ids"] = self.pred_ids
        return out

    def per_class(self) -> list[dict[str, Any]]:
        rows = super().per_class()
        for row, label_id, value in zip(rows, EVAL_LABEL_IDS, self.instance_iou, strict=True):
            row["label_id"] = label_id
            row["iiou"] = json_float(value)
        return rows

    def per_category(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per evaluated category: name, label ids, iou, iiou."""
        return [
            {"name": cat, "label_ids": list(category_label_ids(cat, evaluated_only=True)),
             "iou": json_float(iou), "iiou": json_float(iiou)}
            for cat, iou, iiou in zip(EVAL_CATEGORIES, self.category_iou,
                                      self.category_instance_iou, strict=True)
        ]

    def to_frame(self) -> pd.DataFrame:
        """Per-class table indexed by train id (0..18), with ``label_id`` and ``iiou``."""
        frame = super().to_frame()
        frame["iiou"] = frame["iiou"].astype(float)
        return frame

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out["per_category"] = self.per_category()
        out["label_confusion_matrix"] = self.stats.matrix.tolist()
        return out


def official_result(stats: CityscapesStats) -> dict[str, Any]:
    """The dictionary cityscapesScripts writes as ``resultPixelLevelSemanticLabeling.json``:
    ``confMatrix`` (34 x 34), ``priors``, ``labels``, ``classScores``, ``classInstScores``,
    ``categoryScores``, ``categoryInstScores`` and the four ``averageScore*`` (NaN stays NaN).
    Without instance rows the iIoU entries are what the official script gives with
    ``evalInstLevelScore`` off (0 where a class has false positives, else NaN)."""
    m = stats.matrix
    total = int(m.sum())
    class_iou, class_iiou = label_scores(stats)
    cat_iou, cat_iiou = category_scores(stats)
    return {
        "confMatrix": m.tolist(),
        "priors": {lb.name: (int(m[lb.id].sum()) / total if total else math.nan)
                   for lb in BY_ID},
        "labels": {lb.name: lb.id for lb in BY_ID},
        "classScores": class_iou,
        "classInstScores": class_iiou,
        "categoryScores": cat_iou,
        "categoryInstScores": cat_iiou,
        "averageScoreClasses": official_average(class_iou),
        "averageScoreInstClasses": official_average(class_iiou),
        "averageScoreCategories": official_average(cat_iou),
        "averageScoreInstCategories": official_average(cat_iiou),
    }


# --------------------------------------------------------------------------- saved state


def state_of(result: CityscapesResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings and arrays of a Cityscapes result, for :mod:`segeval.engine.state`: the 34 x 34
    label-id matrix and the instance rows; states merge only with the same settings."""
    settings = {"pred_ids": result.pred_ids, "instances_evaluated": result.instances_evaluated}
    return settings, {"matrix": result.stats.matrix, "instances": result.stats.instances}


def stats_from_state(settings: dict[str, Any], arrays: dict[str, Any]) -> CityscapesStats:
    """The statistics a state file holds (``ValueError`` if their shapes are wrong)."""
    matrix = np.asarray(arrays["matrix"], np.int64)
    instances = np.asarray(arrays["instances"], np.int64).reshape(-1, 4)
    if matrix.shape != (NUM_LABEL_IDS, NUM_LABEL_IDS):
        raise ValueError(f"matrix of shape {matrix.shape}, expected (34, 34)")
    return CityscapesStats(matrix, instances)


def result_from_state(stats: CityscapesStats, settings: dict[str, Any], fmt: str | None,
                      num_images: int) -> CityscapesResult:
    """The result of merged states."""
    return CityscapesResult.from_stats(stats, instances_evaluated=settings["instances_evaluated"],
                                       pred_ids=settings["pred_ids"], num_images=num_images)
