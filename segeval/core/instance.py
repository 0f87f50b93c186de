"""COCO mask AP and AR: pycocotools' ``COCOeval(iouType="segm")``, fed and named.

segeval does not reimplement COCOeval. :func:`coco_mask_ap` checks the inputs (see
:mod:`segeval.core.coco_input`), builds the tool's ``COCO`` objects in memory (no temporary
files), runs ``evaluate()`` and ``accumulate()``, and names what they produce. Conventions:

* Scores are fractions in [0, 1]. pycocotools' ``-1`` ("no ground truth in this slice") is NaN
  (``null`` in JSON).
* ``E.eval["precision"]`` is ``T x R x K x A x M`` (IoU thresholds x 101 recall points x
  categories x area ranges x max-detection limits) and ``E.eval["recall"]`` is ``T x K x A x M``.
  A number is the mean of the entries ``> -1`` of a slice, NaN when there are none, exactly as
  ``COCOeval.summarize()`` computes it:

  ========  ==========================================================================
  AP        ``precision[:, :, :, all, last]``   (``last`` = the largest ``max_dets``)
  AP50/75   ``precision[t, :, :, all, last]`` with ``iouThrs[t] == 0.5`` / ``0.75``
  APs/m/l   ``precision[:, :, :, small/medium/large, last]``
  AR1/10/100  ``recall[:, :, all, 0/1/2]``  (the three ``max_dets``, by position)
  ARs/m/l   ``recall[:, :, small/medium/large, last]``
  ========  ==========================================================================

  Per category ``k`` (its index in the sorted evaluated category ids): ``AP`` =
  ``precision[:, :, k, all, last]``, ``AP50`` / ``AP75`` = ``precision[t, :, k, all, last]``,
  ``AR100`` = ``recall[:, k, all, last]``. A category without non-crowd ground truth is NaN.
  With the default settings these are pycocotools' ``E.stats``, bit for bit; with a custom
  ``max_dets`` whose last value is not 100, AP is taken at that last value (pycocotools'
  ``summarize`` would print -1 there; faster-coco-eval and detectron2 do the same as here).
* Detections are sorted by score with ties in file order; ``max_dets`` applies per image *and*
  category; the ground truth's ``area`` decides the size ranges of ground truth, the mask area
  those of detections (a ``bbox`` in the results is dropped unless ``keep_bbox=True``).
* ``backend="faster"`` runs faster-coco-eval's C++ ``COCOeval_faster`` on the same inputs (the
  ``[fast]`` extra); its numbers equal pycocotools' (tested to 1e-12).
"""

from __future__ import annotations

import contextlib
import copy
import io
import logging
import math
import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from segeval.core.coco_input import (
    GroundTruth,
    Results,
    check_ground_truth,
    check_results,
    load_json,
)
from segeval.errors import Shown, UsageError, bad_value, one_of, shown

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("segeval")

METRIC_NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl",
                "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
BACKENDS = ("pycocotools", "faster")
DEFAULT_AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2),
                       "large": (96.0**2, 1e10)}


def json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass
class InstanceResult:
    """COCO mask AP/AR of one evaluation (see the module docstring for every definition).

    ``metrics`` maps the 12 names of :data:`METRIC_NAMES` to fractions (NaN = undefined);
    ``categories`` holds one row per evaluated category (``id``, ``name``, ``AP``, ``AP50``,
    ``AP75``, ``AR100``, ``num_gt`` non-crowd ground truth, ``num_dt`` detections).
    ``precision`` / ``recall`` are COCOeval's own arrays, for further slicing.
    """

    metrics: dict[str, float]
    categories: list[dict[str, Any]]
    settings: dict[str, Any]
    backend: str
    num_images: int
    num_gt: int
    num_dt: int
    format: str | None = None
    task: str = "instance"
    per_image: list[dict[str, Any]] | None = field(default=None, repr=False)
    precision: np.ndarray | None = field(default=None, repr=False)
    recall: np.ndarray | None = field(default=None, repr=False)

    @property
    def stats(self) -> np.ndarray:
        """The 12 numbers in pycocotools' ``E.stats`` order, NaN where it has -1."""
        return np.array([self.metrics[k] for k in METRIC_NAMES], dtype=np.float64)

    def per_class(self) -> list[dict[str, Any]]:
        """One JSON-safe row per evaluated category (NaN as ``None``)."""
        return [{k: json_float(v) if isinstance(v, float) else v for k, v in row.items()}
                for row in self.categories]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``segeval score --json`` writes."""
        return {
            "task": self.task,
            "format": self.format,
            "num_images": self.num_images,
            "backend": self.backend,
            "metrics": {k: json_float(v) for k, v in self.metrics.items()},
            "num_gt": self.num_gt,
            "num_dt": self.num_dt,
            "settings": self.settings,
            "per_class": self.per_class(),
        }

    def to_frame(self) -> pd.DataFrame:
        """Per-category table: a DataFrame indexed by category id, NaN kept as NaN."""
        import pandas as pd

        return pd.DataFrame(self.categories).set_index("id")


@dataclass(frozen=True)
class _Params:
    iou_thresholds: np.ndarray | None
    max_dets: list[int] | None
    area_ranges: dict[str, tuple[float, float]] | None
    category_ids: list[Any] | None
    image_ids: list[Any] | None


def sorted_ids(ids: Sequence[Any]) -> list[Any]:
    """Ids sorted as COCOeval sorts them (in the given order when they do not compare)."""
    try:
        return sorted(ids)
    except TypeError:
        return list(ids)


_sorted = sorted_ids  # the old private name (segeval.leaderboard.instance_task imports it)


def _check_params(gt: GroundTruth, iou_thresholds: Sequence[float] | None,
                  max_dets: Sequence[int] | None,
                  area_ranges: Mapping[str, Sequence[float]] | None,
                  category_ids: Sequence[Any] | None,
                  image_ids: Sequence[Any] | None) -> _Params:
    thr = None
    if iou_thresholds is not None:
        expected = "a list of increasing numbers in (0, 1]"
        if not _is_list(iou_thresholds) or not all(map(_is_number, iou_thresholds)):
            raise bad_value("iou_thresholds", expected, iou_thresholds)
        thr = np.asarray(list(iou_thresholds), dtype=np.float64)
        if thr.size == 0 or not ((thr > 0) & (thr <= 1)).all() or (np.diff(thr) <= 0).any():
            raise bad_value("iou_thresholds", expected, iou_thresholds)
    dets = None
    if max_dets is not None:
        if not _is_list(max_dets) or not all(map(_is_int, max_dets)) or len(max_dets) != 3 \
                or max_dets[0] < 1 or not max_dets[0] < max_dets[1] < max_dets[2]:
            raise bad_value("max_dets", "three increasing positive integers (AR1, AR10 and "
                            "AR100 are taken at them)", max_dets)
        dets = [int(d) for d in max_dets]
    ranges = None
    if area_ranges is not None:
        expected = ("a mapping of labels to (low, high) areas in pixels, 'all' among them "
                    "(small/medium/large name APs/APm/APl)")
        if not isinstance(area_ranges, Mapping) or "all" not in area_ranges or not all(
                _is_list(v) and len(v) == 2 and all(map(_is_number, v)) and 0 <= v[0] <= v[1]
                for v in area_ranges.values()):
            raise bad_value("area_ranges", expected, area_ranges)
        ranges = {str(k): (float(v[0]), float(v[1])) for k, v in area_ranges.items()}
        ranges = {"all": ranges.pop("all"), **ranges}
    cats = _known_ids("category_ids", category_ids, gt.category_names, "categories", gt.name)
    imgs = _known_ids("image_ids", image_ids, gt.sizes, "images", gt.name)
    return _Params(thr, dets, ranges, cats, imgs)


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence | np.ndarray) and not isinstance(value, str | bytes)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _is_number(value: Any) -> bool:
    return _is_int(value) or (isinstance(value, float | np.floating) and math.isfinite(value))


def _known_ids(option: str, ids: Any, known: Any, what: str, source: str) -> list[Any] | None:
    """``ids`` sorted and deduplicated, or ``None`` when not given;
    :class:`~segeval.errors.InvalidParameterError` for an empty list or ids that ``known`` does
    not hold."""
    if ids is None:
        return None
    expected = f"a non-empty list of ids of the {what} of {source}"
    if not _is_list(ids) or len(ids) == 0:
        raise bad_value(option, expected, ids)
    try:
        unknown = [i for i in ids if i not in known]
    except TypeError:  # an unhashable id
        raise bad_value(option, expected, ids) from None
    if unknown:
        raise bad_value(option, expected, Shown(f"unknown ids {shown(unknown)}"))
    return sorted_ids(set(ids))


def _apply(p: Any, params: _Params) -> None:
    """Set COCOeval's ``params`` (left as the tool's defaults where not given)."""
    if params.iou_thresholds is not None:
        p.iouThrs = params.iou_thresholds.copy()
    if params.max_dets is not None:
        p.maxDets = list(params.max_dets)
    if params.area_ranges is not None:
        p.areaRng = [list(v) for v in params.area_ranges.values()]
        p.areaRngLbl = list(params.area_ranges)
    if params.category_ids is not None:
        p.catIds = list(params.category_ids)
    if params.image_ids is not None:
        p.imgIds = list(params.image_ids)


def _run_pycocotools(gt: GroundTruth, res: Results, params: _Params, verbose: bool) -> Any:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    quiet = contextlib.nullcontext() if verbose else contextlib.redirect_stdout(io.StringIO())
    with quiet:
        coco_gt = COCO()
        coco_gt.dataset = gt.dataset
        coco_gt.createIndex()
        if res.annotations:
            coco_dt = coco_gt.loadRes([dict(r) for r in res.annotations])  # it adds keys
        else:  # loadRes reads results[0]: build the empty result set it would have built
            coco_dt = COCO()
            coco_dt.dataset = {"images": list(gt.dataset["images"]), "annotations": [],
                               "categories": copy.deepcopy(gt.dataset["categories"])}
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, iouType="segm")
        _apply(ev.params, params)
        ev.evaluate()
        ev.accumulate()
        if verbose:
            ev.summarize()
    return ev


def _run_faster(gt: GroundTruth, res: Results, params: _Params, verbose: bool,
                threads: int) -> Any:
    try:
        from faster_coco_eval import COCO, COCOeval_faster
    except ImportError:
        raise UsageError("backend='faster' needs the faster-coco-eval package: "
                         "pip install 'segeval[fast]'", parameters=("backend",)) from None

    def quiet(*args: Any, **kwargs: Any) -> None:
        return None

    say = print if verbose else quiet
    coco_gt = COCO(gt.dataset, print_function=say)
    coco_dt = coco_gt.loadRes([dict(r) for r in res.annotations])  # it adds keys in place
    ev = COCOeval_faster(coco_gt, coco_dt, iouType="segm", print_function=say,
                         rle_iou_max_workers=max(1, threads))
    _apply(ev.params, params)
    ev.evaluate()
    ev.accumulate()
    if verbose:
        ev.summarize()
    return ev


def _mean_valid(s: np.ndarray) -> float:
    s = s[s > -1]
    return float(np.mean(s)) if s.size else math.nan


def _summary(ev: Any) -> tuple[dict[str, float], np.ndarray, np.ndarray, dict[str, Any]]:
    p = ev.params
    prec = np.asarray(ev.eval["precision"])
    rec = np.asarray(ev.eval["recall"])
    labels = list(p.areaRngLbl)
    thr = np.asarray(p.iouThrs, dtype=np.float64)
    last = len(p.maxDets) - 1
    t50 = np.flatnonzero(np.isclose(thr, 0.5, rtol=0, atol=1e-12))
    t75 = np.flatnonzero(np.isclose(thr, 0.75, rtol=0, atol=1e-12))
    a_all = labels.index("all")

    def ap(t: np.ndarray | None = None, area: str = "all") -> float:
        if area not in labels:
            return math.nan
        s = prec if t is None else prec[t]
        return _mean_valid(s[:, :, :, labels.index(area), last])

    def ar(area: str = "all", m: int = last) -> float:
        if area not in labels:
            return math.nan
        return _mean_valid(rec[:, :, labels.index(area), m])

    values = [ap(), ap(t50), ap(t75), ap(area="small"), ap(area="medium"), ap(area="large"),
              ar(m=0), ar(m=1), ar(m=2), ar("small"), ar("medium"), ar("large")]
    slices = {"t50": t50, "t75": t75, "a_all": a_all, "last": last}
    return dict(zip(METRIC_NAMES, values, strict=True)), prec, rec, slices


def coco_mask_ap(
    gt: Mapping[str, Any] | str | os.PathLike[str],
    results: Sequence[Mapping[str, Any]] | Results | str | os.PathLike[str],
    *,
    iou_thresholds: Sequence[float] | None = None,
    max_dets: Sequence[int] | None = None,
    area_ranges: Mapping[str, Sequence[float]] | None = None,
    category_ids: Sequence[Any] | None = None,
    image_ids: Sequence[Any] | None = None,
    keep_bbox: bool = False,
    backend: str = "pycocotools",
    verbose: bool = False,
    jobs: int | None = None,
    gt_name: str | None = None,
    results_name: str | None = None,
    format: str | None = None,
) -> InstanceResult:
    """COCO mask AP/AR of ``results`` against ``gt`` with ``COCOeval(iouType="segm")``.

    ``gt`` is COCO instances JSON (a path or the parsed object: ``images`` with ``height`` and
    ``width``, ``categories``, ``annotations`` with polygons, uncompressed or compressed RLE
    and ``iscrowd``), or a :class:`~segeval.core.coco_input.GroundTruth` that
    :func:`~segeval.core.coco_input.check_ground_truth` returned (checked once, scored many
    times, as the leaderboard does); ``results`` the standard results list (a path or the
    parsed list: ``image_id``, ``category_id``, ``score``, ``segmentation``), or the
    :class:`~segeval.core.coco_input.Results` that :func:`~segeval.core.coco_input.check_results`
    returned for this ground truth (``keep_bbox`` is then the one it was checked with). An
    empty list is valid (every AP and AR 0). Options go to ``COCOeval.params``:
    ``iou_thresholds`` (default 0.50:0.05:0.95),
    ``max_dets`` (three limits, default ``(1, 10, 100)``), ``area_ranges`` (label -> (low,
    high) in pixels, default all/small/medium/large at 32² and 96²), ``category_ids`` and
    ``image_ids`` (subsets, default all of the ground truth). ``keep_bbox=True`` keeps a
    results' ``bbox`` (pycocotools' raw behaviour: box areas decide the size ranges).
    ``backend`` is ``"pycocotools"`` or ``"faster"``; ``jobs`` caps the faster backend's
    threads. ``verbose=True`` lets the tool print its own progress and summary to stdout.

    Raises :class:`~segeval.errors.SegevalError` naming the file and entry for bad input, and
    :class:`~segeval.errors.UsageError` for bad options.

    >>> gt = {"images": [{"id": 1, "height": 4, "width": 4}],
    ...       "categories": [{"id": 1, "name": "thing"}],
    ...       "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
    ...                        "area": 4.0, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}]}
    >>> coco_mask_ap(gt, []).metrics["AP"]
    0.0
    """
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise bad_value("backend", one_of(BACKENDS), backend)
    for name, value in (("keep_bbox", keep_bbox), ("verbose", verbose)):
        if not isinstance(value, bool | int | np.bool_ | np.integer) or value not in (0, 1):
            raise bad_value(name, "True or False", value)
    if jobs is not None and (not _is_int(jobs) or jobs < 1):
        raise bad_value("jobs", "a positive integer or None (all cores)", jobs)
    if isinstance(gt, str | os.PathLike):
        gt_name = gt_name or str(gt)
        gt = load_json(gt)
    if isinstance(results, str | os.PathLike):
        results_name = results_name or str(results)
        results = load_json(results)
    checked_gt = gt if isinstance(gt, GroundTruth) else \
        check_ground_truth(gt, gt_name or "ground truth")
    checked = results if isinstance(results, Results) else \
        check_results(results, checked_gt, results_name or "results", keep_bbox)
    params = _check_params(checked_gt, iou_thresholds, max_dets, area_ranges, category_ids,
                           image_ids)
    if checked_gt.renumbered:
        log.info("%s: annotation ids renumbered 1..N (an id was 0, missing or repeated)",
                 checked_gt.name)
    if checked.bboxes_dropped:
        log.info("%s: 'bbox' dropped from %d results: mask areas decide small/medium/large "
                 "(keep_bbox=True for pycocotools' raw behaviour)", checked.name,
                 checked.bboxes_dropped)
    if backend == "faster":
        from segeval.core.device import available_cores

        ev = _run_faster(checked_gt, checked, params, verbose, min(8, jobs or available_cores()))
    else:
        ev = _run_pycocotools(checked_gt, checked, params, verbose)
    named, prec, rec, sl = _summary(ev)
    p = ev.params
    cat_ids = [c.item() if isinstance(c, np.generic) else c for c in p.catIds]
    img_ids = {i.item() if isinstance(i, np.generic) else i for i in p.imgIds}
    num_gt: Counter[Any] = Counter(a["category_id"] for a in checked_gt.dataset["annotations"]
                                   if a["image_id"] in img_ids and not a["iscrowd"])
    num_dt: Counter[Any] = Counter(r["category_id"] for r in checked.annotations
                                   if r["image_id"] in img_ids)
    rows = []
    for k, cid in enumerate(cat_ids):
        pk = prec[:, :, k, sl["a_all"], sl["last"]]
        rows.append({
            "id": cid,
            "name": checked_gt.category_names[cid],
            "AP": _mean_valid(pk),
            "AP50": _mean_valid(pk[sl["t50"]]),
            "AP75": _mean_valid(pk[sl["t75"]]),
            "AR100": _mean_valid(rec[:, k, sl["a_all"], sl["last"]]),
            "num_gt": num_gt[cid],
            "num_dt": num_dt[cid],
        })
    settings = {
        "iou_thresholds": [float(t) for t in p.iouThrs],
        "max_dets": [int(d) for d in p.maxDets],
        "area_ranges": {str(lbl): [float(v) for v in rng]
                        for lbl, rng in zip(p.areaRngLbl, p.areaRng, strict=True)},
        "num_categories": len(cat_ids),
        "detection_area": checked.area_source,
        "bboxes_dropped": checked.bboxes_dropped,
        "results_converted_to_rle": checked.converted,
        "gt_ids_renumbered": checked_gt.renumbered,
    }
    return InstanceResult(
        metrics=named, categories=rows, settings=settings, backend=backend,
        num_images=len(img_ids), num_gt=sum(num_gt[c] for c in cat_ids),
        num_dt=sum(num_dt[c] for c in cat_ids), format=format, precision=prec, recall=rec)


# ---------------------------------------------------------------- mergeable parts


class InstanceParts:
    """COCO ``images``, ground-truth ``annotations`` and detection ``results`` of some images:
    the mergeable statistic of instance AP when images are read one by one (Cityscapes).

    COCO AP is not a sum over images (all detections of a category are ranked together), so the
    parts are kept whole: ``a + b`` concatenates ``a``'s lists and then ``b``'s, which is exact
    and associative, and ``InstanceParts()`` is the zero. Adding keeps references to the parts'
    lists (no copies, constant time per part), so merging ``n`` images costs ``O(n)``; the
    lists are joined once, by :attr:`images`, :attr:`annotations`, :attr:`results`.
    :func:`finish_parts` scores merged parts.
    """

    __slots__ = ("_chunks",)

    def __init__(self, images: Sequence[Mapping[str, Any]] = (),
                 annotations: Sequence[Mapping[str, Any]] = (),
                 results: Sequence[Mapping[str, Any]] = ()) -> None:
        chunk = (tuple(images), tuple(annotations), tuple(results))
        self._chunks: tuple[tuple[tuple[Any, ...], ...], ...] = (chunk,) if any(chunk) else ()

    @classmethod
    def _of(cls, chunks: tuple[tuple[tuple[Any, ...], ...], ...]) -> InstanceParts:
        parts = cls.__new__(cls)
        parts._chunks = chunks
        return parts

    def _joined(self, k: int) -> list[Any]:
        return [x for chunk in self._chunks for x in chunk[k]]

    @property
    def images(self) -> list[Any]:
        """The COCO ``images`` entries, in order."""
        return self._joined(0)

    @property
    def annotations(self) -> list[Any]:
        """The ground-truth annotations, in order (ids as given; see :func:`finish_parts`)."""
        return self._joined(1)

    @property
    def results(self) -> list[Any]:
        """The detection results, in order."""
        return self._joined(2)

    def __add__(self, other: InstanceParts) -> InstanceParts:
        if not isinstance(other, InstanceParts):
            return NotImplemented
        return InstanceParts._of(self._chunks + other._chunks)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, InstanceParts):
            return NotImplemented
        return all(self._joined(k) == other._joined(k) for k in range(3))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, ...]:
        return InstanceParts, (self.images, self.annotations, self.results)

    def __repr__(self) -> str:
        counts = [sum(len(c[k]) for c in self._chunks) for k in range(3)]
        return (f"InstanceParts(images={counts[0]}, annotations={counts[1]}, "
                f"results={counts[2]})")


def finish_parts(
    parts: InstanceParts,
    categories: Sequence[Mapping[str, Any]],
    *,
    gt_name: str = "ground truth",
    results_name: str = "results",
    format: str | None = None,
    backend: str = "pycocotools",
    keep_bbox: bool = False,
    jobs: int | None = None,
) -> InstanceResult:
    """COCO mask AP of merged :class:`InstanceParts`: the annotations numbered ``1..N`` in
    order (each image numbers its own from anywhere), with ``categories`` (COCO ``id`` and
    ``name`` dicts) as the dataset's, scored by :func:`coco_mask_ap` (``gt_name`` and
    ``results_name`` name the data in messages)."""
    annotations = [{**ann, "id": k} for k, ann in enumerate(parts.annotations, 1)]
    dataset = {"images": parts.images, "annotations": annotations,
               "categories": [dict(c) for c in categories]}
    return coco_mask_ap(dataset, parts.results, gt_name=gt_name, results_name=results_name,
                        format=format, backend=backend, keep_bbox=keep_bbox, jobs=jobs)
