"""Instance AP the way cityscapesScripts' ``evalInstanceLevelSemanticLabeling`` computes it.

The algorithm, read from the official script and written again here (it is not vendored):

* **Ground truth.** Per image and class, the instances (``instance`` pixel values, at least
  :data:`MIN_REGION_SIZE` pixels) count; *group regions* (a region labelled with the class but
  no instance number) and instances under :data:`MIN_REGION_SIZE` pixels are not ground truth
  but can make a prediction ignored (below).
* **Matching**, at each overlap threshold ``th`` of :data:`OVERLAPS` (``np.arange(0.5, 1.,
  0.05)``, the official floats), by IoU *strictly* greater than ``th``
  (``intersection / (gt + pred - intersection)``, only between a prediction and the same
  class's regions it touches): a ground-truth instance matched by several predictions is one
  true positive at the highest confidence and a false positive for every other one; an
  instance matched by none is a false negative.
* **Unmatched predictions.** A prediction whose IoU is above ``th`` with no region of its class
  (instances, small instances and group regions alike: one above ``th`` with a group region or
  a small instance is neither a true nor a false positive) is a false positive unless its
  ignored share -- (void pixels + pixels on group regions + pixels on small instances) /
  its pixels, a small group region counted twice -- is *more* than ``th``.
* **AP** per class and threshold: the precision--recall curve has one point per distinct
  confidence (ties together), plus the point (recall 0, precision 1); its area is
  ``sum_i p_i (r_{i-1} - r_{i+1}) / 2`` (the official convolution). A class without ground
  truth is NaN; with ground truth but no prediction at all, 0. Where every prediction of a
  class is ignored and none matches, the official script crashes (an ``IndexError`` on an
  empty array); here the curve has only its artificial point and the AP is 0, the value the
  algorithm implies (no true positive: recall 0 everywhere).
* **Averages**: ``AP`` is the NaN-ignoring mean of the classes x thresholds matrix, ``AP50``
  that of the first column (overlap 0.5); per class ``AP`` is the mean of its row (NaN if NaN)
  and ``AP50`` its first entry.

Everything a threshold needs is per image, so the statistics (:class:`APStats`) are the
official ``y_true`` / ``y_score`` entries of every image, the false-negative counts and the
"has ground truth / has predictions" counts: merged by ``+`` (exact; the entries are a multiset,
their order never changes a number), finished by :func:`ap_matrix`. The input of one image is
its overlap table (:func:`image_stats`): no masks, only pixel counts and intersections.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: The overlap thresholds, exactly the official ``np.arange(0.5, 1., 0.05)`` (10 floats).
OVERLAPS: np.ndarray = np.arange(0.5, 1.0, 0.05)
#: Ground-truth instances under this many pixels are not ground truth (official
#: ``minRegionSizes[0]``).
MIN_REGION_SIZE = 100
#: Why the distance-restricted numbers are ``null``.
DISTANCE_NOTE = ("not computed: the public evalInstanceLevelSemanticLabeling reads no disparity "
                 "or camera files (forced on, it filters out every ground-truth instance); "
                 "only the benchmark server computes AP at 100 m and 50 m")

#: One ``y_true`` / ``y_score`` entry: class index, threshold index, confidence, true positive.
ENTRY = np.dtype([("cls", np.int16), ("thr", np.int16), ("score", np.float64),
                  ("true", np.bool_)])


@dataclass
class APStats:
    """The mergeable statistics of the official instance AP over some images.

    ``entries``
        Chunks of :data:`ENTRY` records: every true positive (score = its confidence) and false
        positive of every class and threshold (the official ``y_true`` / ``y_score``).
    ``hard_fn``
        ``K x T`` int64: ground-truth instances matched by no prediction.
    ``num_gt``, ``num_pred``
        ``K`` int64: ground-truth instances (>= :data:`MIN_REGION_SIZE` pixels, not groups) and
        non-empty predictions per class (the official ``haveGt`` / ``havePred``).
    ``num_images``, ``skipped``, ``empty``, ``duplicates``
        Images; prediction lines of labels that are not evaluated instance classes (skipped, as
        the official script does); empty masks (skipped likewise); lines naming a mask that an
        earlier line of the same list names (counted once, with the last line's label and
        confidence, as the official script's dictionary does).
    """

    num_classes: int
    entries: tuple[np.ndarray, ...] = ()
    hard_fn: np.ndarray = field(default=None)  # type: ignore[assignment]
    num_gt: np.ndarray = field(default=None)  # type: ignore[assignment]
    num_pred: np.ndarray = field(default=None)  # type: ignore[assignment]
    num_images: int = 0
    skipped: int = 0
    empty: int = 0
    duplicates: int = 0

    def __post_init__(self) -> None:
        k, t = self.num_classes, len(OVERLAPS)
        if self.hard_fn is None:
            self.hard_fn = np.zeros((k, t), np.int64)
        if self.num_gt is None:
            self.num_gt = np.zeros(k, np.int64)
        if self.num_pred is None:
            self.num_pred = np.zeros(k, np.int64)

    def __add__(self, other: APStats) -> APStats:
        if not isinstance(other, APStats) or other.num_classes != self.num_classes:
            return NotImplemented
        return APStats(self.num_classes, self.entries + other.entries,
                       self.hard_fn + other.hard_fn, self.num_gt + other.num_gt,
                       self.num_pred + other.num_pred, self.num_images + other.num_images,
                       self.skipped + other.skipped, self.empty + other.empty,
                       self.duplicates + other.duplicates)

    def all_entries(self) -> np.ndarray:
        """Every entry as one :data:`ENTRY` array."""
        return np.concatenate(self.entries) if self.entries else np.empty(0, ENTRY)


def image_stats(num_classes: int, *, gt_class: Sequence[int] | np.ndarray,
                gt_pixels: Sequence[int] | np.ndarray, gt_group: Sequence[bool] | np.ndarray,
                pred_class: Sequence[int] | np.ndarray, pred_score: Sequence[float] | np.ndarray,
                pred_pixels: Sequence[int] | np.ndarray, pred_void: Sequence[int] | np.ndarray,
                pair_pred: Sequence[int] | np.ndarray, pair_gt: Sequence[int] | np.ndarray,
                pair_pixels: Sequence[int] | np.ndarray) -> APStats:
    """The statistics of one image from its overlap table.

    Ground-truth regions ``j`` (instances and group regions of the evaluated classes):
    ``gt_class[j]`` (class index ``0..num_classes-1``), ``gt_pixels[j]`` (> 0),
    ``gt_group[j]`` (a group region). Predictions ``i`` (non-empty masks of evaluated classes):
    ``pred_class[i]``, ``pred_score[i]`` (finite), ``pred_pixels[i]`` (> 0), ``pred_void[i]``
    (its pixels on void). Pairs ``m``: prediction ``pair_pred[m]`` covers ``pair_pixels[m]``
    (> 0) pixels of region ``pair_gt[m]``, of the same class; at most one pair per
    (prediction, region). Pixel counts are integers; see the module docstring for the rules.
    """
    k_n = num_classes
    gc = np.asarray(gt_class, np.int64).reshape(-1)
    gp = np.asarray(gt_pixels, np.int64).reshape(-1)
    gg = np.asarray(gt_group, bool).reshape(-1)
    pc = np.asarray(pred_class, np.int64).reshape(-1)
    ps = np.asarray(pred_score, np.float64).reshape(-1)
    pp = np.asarray(pred_pixels, np.int64).reshape(-1)
    pv = np.asarray(pred_void, np.int64).reshape(-1)
    mi = np.asarray(pair_pred, np.int64).reshape(-1)
    mj = np.asarray(pair_gt, np.int64).reshape(-1)
    mx = np.asarray(pair_pixels, np.int64).reshape(-1)
    small = gp < MIN_REGION_SIZE
    real = ~gg & ~small  # the ground truth that counts (official: instID >= 1000, >= 100 px)
    stats = APStats(k_n, num_images=1)
    stats.num_gt += np.bincount(gc[real], minlength=k_n)[:k_n]
    stats.num_pred += np.bincount(pc, minlength=k_n)[:k_n]
    # IoU as the official ``float(i) / (g + p - i)``: a correctly rounded division of integers
    iou = mx.astype(np.float64) / (gp[mj] + pp[mi] - mx).astype(np.float64)
    # pixels that make an unmatched prediction ignored: void, group regions, small instances
    weight = gg[mj].astype(np.int64) + small[mj].astype(np.int64)
    ignored = pv + np.bincount(mi, weights=None if mx.size == 0 else mx * weight,
                               minlength=pp.size).astype(np.int64)
    share = ignored.astype(np.float64) / pp.astype(np.float64) if pp.size else ignored * 0.0
    real_pair = real[mj]
    chunks = []
    for t, th in enumerate(OVERLAPS):
        hit = iou > th
        # ground-truth side: per matched instance one true positive at the highest confidence,
        # a false positive for each other prediction above the threshold with it
        h = hit & real_pair
        hj, hs = mj[h], ps[mi[h]]
        order = np.lexsort((-hs, hj))
        hj, hs = hj[order], hs[order]
        first = np.ones(hj.size, bool)
        first[1:] = hj[1:] != hj[:-1]
        matched = np.zeros(gp.size, bool)
        matched[hj] = True
        stats.hard_fn[:, t] += np.bincount(gc[real & ~matched], minlength=k_n)[:k_n]
        # prediction side: no IoU above the threshold with any region of its class
        found = np.zeros(pp.size, bool)
        found[mi[hit]] = True
        fp = ~found & (share <= th)
        cls = np.concatenate([gc[hj], pc[fp]])
        rec = np.empty(cls.size, ENTRY)
        rec["cls"] = cls
        rec["thr"] = t
        rec["score"] = np.concatenate([hs, ps[fp]])
        rec["true"] = np.concatenate([first, np.zeros(int(fp.sum()), bool)])
        chunks.append(rec)
    entries = np.concatenate(chunks)
    stats.entries = (entries,) if entries.size else ()
    return stats


def average_precision(score: np.ndarray, true: np.ndarray, hard_fn: int) -> float:
    """The official area under one class's precision--recall curve at one threshold.

    ``score`` / ``true``: the ``y_score`` / ``y_true`` entries (any order); ``hard_fn``: the
    ground-truth instances matched by nothing. With no entry, 0 (see the module docstring).
    """
    if score.size == 0:
        return 0.0
    order = np.argsort(score)
    ys = score[order]
    cum = np.cumsum(true[order].astype(np.float64))
    _, first = np.unique(ys, return_index=True)
    n = ys.size
    n_true = cum[-1]
    below = np.append(cum, 0.0)[first - 1]  # trues strictly below each distinct score
    tp = n_true - below
    fp = (n - first) - tp
    fn = below + hard_fn
    precision = np.append(tp / (tp + fp), 1.0)
    recall = np.append(tp / (tp + fn), 0.0)
    padded = np.concatenate(([recall[0]], recall, [0.0]))
    steps = np.convolve(padded, [-0.5, 0, 0.5], "valid")
    return float(np.dot(precision, steps))


def ap_matrix(stats: APStats) -> np.ndarray:
    """``K x T`` AP per class and overlap threshold (NaN: no ground truth)."""
    k_n, t_n = stats.num_classes, len(OVERLAPS)
    ap = np.full((k_n, t_n), np.nan)
    entries = stats.all_entries()
    key = entries["cls"].astype(np.int64) * t_n + entries["thr"]
    order = np.argsort(key, kind="stable")
    entries, key = entries[order], key[order]
    bounds = np.searchsorted(key, np.arange(k_n * t_n + 1))
    for k in range(k_n):
        if not stats.num_gt[k]:
            continue  # NaN, predicted or not
        for t in range(t_n):
            if not stats.num_pred[k]:
                ap[k, t] = 0.0
                continue
            e = entries[bounds[k * t_n + t]:bounds[k * t_n + t + 1]]
            ap[k, t] = average_precision(e["score"], e["true"], int(stats.hard_fn[k, t]))
    return ap


def _nanmean(x: np.ndarray) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return float(np.nanmean(x))


def _json(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass
class CityscapesAPResult:
    """The official Cityscapes instance-level numbers of one evaluation.

    ``ap`` is ``K x T`` (classes x :data:`OVERLAPS`; NaN: the class has no ground truth).
    ``metrics``: ``AP`` (mean over classes and thresholds, NaN classes left out), ``AP50``
    (the same at overlap 0.5), ``AP100m`` and ``AP50m`` (``None``: see ``notes``), fractions.
    ``classes`` are ``(label id, name)`` pairs in the official order.
    """

    ap: np.ndarray
    classes: tuple[tuple[int, str], ...]
    stats: APStats
    settings: dict[str, Any]
    format: str | None = None
    task: str = "instance"
    per_image: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def num_images(self) -> int:
        return self.stats.num_images

    @property
    def metrics(self) -> dict[str, float | None]:
        return {"AP": _nanmean(self.ap), "AP50": _nanmean(self.ap[:, 0]),
                "AP100m": None, "AP50m": None}

    @property
    def notes(self) -> dict[str, str]:
        return {"AP100m": DISTANCE_NOTE, "AP50m": DISTANCE_NOTE}

    def per_class(self) -> list[dict[str, Any]]:
        """One JSON-safe row per class: ``id`` (label id), ``name``, ``AP``, ``AP50``,
        ``AP100m``, ``AP50m`` (``None``), ``num_gt``, ``num_pred`` (NaN as ``None``)."""
        return [{"id": cid, "name": name, "AP": _json(float(np.average(self.ap[k]))),
                 "AP50": _json(float(self.ap[k, 0])), "AP100m": None, "AP50m": None,
                 "num_gt": int(self.stats.num_gt[k]), "num_pred": int(self.stats.num_pred[k])}
                for k, (cid, name) in enumerate(self.classes)]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``segeval score --json`` writes."""
        s = self.stats
        return {
            "task": self.task,
            "format": self.format,
            "ap": "cityscapes",
            "num_images": self.num_images,
            "metrics": {k: None if v is None else _json(v) for k, v in self.metrics.items()},
            "notes": self.notes,
            "num_gt": int(s.num_gt.sum()),
            "num_pred": int(s.num_pred.sum()),
            "skipped_lines": s.skipped,
            "empty_masks": s.empty,
            "duplicate_lines": s.duplicates,
            "overlaps": OVERLAPS.tolist(),
            "settings": self.settings,
            "per_class": self.per_class(),
        }

    def official_dict(self) -> dict[str, Any]:
        """The structure the official script writes (``resultInstanceLevelSemanticLabeling
        .json``): ``averages`` (``allAp``, ``allAp50%``, ``classes`` -> ``ap``, ``ap50%``),
        ``overlaps``, ``minRegionSizes``, ``distanceThresholds``, ``minStereoDensities``,
        ``instLabels`` and ``resultApMatrix`` (1 x K x T: the distance-free row only, as the
        public script without distances)."""
        names = [name for _, name in self.classes]
        classes = {name: {"ap": float(np.average(self.ap[k])), "ap50%": float(self.ap[k, 0])}
                   for k, name in enumerate(names)}
        return {
            "averages": {"allAp": _nanmean(self.ap), "allAp50%": _nanmean(self.ap[:, 0]),
                         "classes": classes},
            "overlaps": OVERLAPS.tolist(),
            "minRegionSizes": [MIN_REGION_SIZE, 1000, 1000],
            "distanceThresholds": [math.inf, 100.0, 50.0],
            "minStereoDensities": [-math.inf, 0.5, 0.5],
            "instLabels": names,
            "resultApMatrix": [self.ap.tolist()],
        }


def finish(stats: APStats, classes: Sequence[tuple[int, str]], settings: dict[str, Any],
           format: str | None = None) -> CityscapesAPResult:
    """The result of merged statistics (``classes``: ``(id, name)`` per class index)."""
    return CityscapesAPResult(ap_matrix(stats), tuple(classes), stats, settings, format)
