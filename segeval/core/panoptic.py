"""Panoptic quality (PQ, SQ, RQ), computed exactly as the COCO panoptic reference evaluation
(``panopticapi/evaluation.py``; Cityscapes' ``evalPanopticSemanticLabeling`` is a copy) does.

Conventions (they decide agreement with the reference):

* A panoptic map holds one **segment id** per pixel; id ``0`` is VOID (unlabeled). Each image
  comes with a table from segment id to category id; ground-truth segments also carry
  ``iscrowd`` and may carry ``area`` (the COCO JSON field). PNG ids are ``R + 256 G + 256^2 B``.
* Only the categories of the table given to :class:`PanopticStats` exist; each is a *thing*
  (countable objects) or *stuff*.
* A predicted segment ``p`` and a ground-truth segment ``g`` **match** when they have the same
  category, ``g`` is not crowd and ``IoU > 0.5`` (strict), with
  ``IoU = |p ∩ g| / (area_p + area_g - |p ∩ g| - |p ∩ VOID|)``: the prediction's pixels on
  ground-truth VOID are removed from the union (its pixels on crowd regions are not).
  ``area_g`` is the ground truth's ``area`` field when given (the reference uses the JSON
  value), else its pixel count; ``area_p`` is always counted from the prediction.
  IoU > 0.5 makes matches one-to-one.
* A matched pair is a true positive (TP) of its category and adds its IoU to the category's
  IoU sum. An unmatched non-crowd ground-truth segment is a false negative (FN). An unmatched
  prediction is a false positive (FP) unless more than half of it lies on VOID or on the crowd
  region of its own category, in which case it is ignored. Like the reference, only **one**
  crowd region per category and image is used: the last crowd segment of that category in the
  table's order.
* Per category: ``PQ = IoU-sum / (TP + FP/2 + FN/2)``, ``SQ = IoU-sum / TP`` (0 when TP = 0),
  ``RQ = TP / (TP + FP/2 + FN/2)``. A category with ``TP + FP + FN = 0`` is NaN and left out
  of the averages; one with only FPs or FNs counts with PQ = SQ = RQ = 0. All / Things / Stuff
  are unweighted means over the counted categories, with ``n`` how many; with none counted the
  mean is NaN (the reference raises ``ZeroDivisionError``) and a warning is logged.
* Scores are fractions in ``[0, 1]``, not percent.

Statistics are exactly mergeable: TP, FP, FN are integers, and every TP's IoU, a float64 in
``(0.5, 1]``, is an integer multiple of ``2^-53``, so the IoU sums are kept as exact integers
(in units of ``2^-53``, split into two int64 words). ``a + b`` is therefore exact, associative
and independent of order, and :attr:`PanopticStats.iou_sum` is the correctly rounded sum of
the per-segment IoUs however the images were split or ordered (the reference adds floats in
file order, so its sums may differ from ours in the last bits).

>>> import numpy as np
>>> cats = [{"id": 1, "name": "person", "isthing": 1}, {"id": 2, "name": "sky", "isthing": 0}]
>>> gt = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 2, 2]])
>>> pred = np.array([[5, 5, 7, 7], [5, 0, 7, 7], [5, 5, 7, 7]])
>>> r = panoptic_quality(pred, gt, cats, pred_segments={5: 1, 7: 2},
...                      gt_segments={1: 1, 2: 2})
>>> r.pq, r.all.n, r.per_class()[0]["tp"]  # person IoU 3/4 (2 pixels on VOID), sky 1
(0.875, 2, 1)
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from segeval.core.kernels import compiled_available
from segeval.errors import DataError, LabelError, Shown, SizeMismatchError, bad_value

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger("segeval")

VOID = 0
#: IoU sums are integers in units of 2^-FIXED_BITS (exact for every float64 IoU >= 0.5).
FIXED_BITS = 53
_LO_BITS = 26
_LO_MASK = (1 << _LO_BITS) - 1
#: Rows of the per-category count array: TP, FP, FN, IoU-sum high word, IoU-sum low word.
TP, FP, FN, IOU_HI, IOU_LO = range(5)
_LUT_IDS = 1 << 24  # ids below this are mapped through a lookup table (RGB PNG ids always are)
_LUT_MAX_SEGMENTS = 254  # segments per image in the table fast path (uint8 indices, 255 unknown)
_UNKNOWN = 255


# ---------------------------------------------------------------------------------- categories


@dataclass(frozen=True)
class Category:
    """One category: its id in the segment tables, its name, and whether it is a thing."""

    id: int
    name: str
    isthing: bool


def as_categories(categories: Any, source: str = "categories") -> tuple[Category, ...]:
    """The category table from COCO-style dicts (``id``, ``isthing``, optional ``name``) or
    :class:`Category` objects, in the given order. ``source`` names it in errors."""
    out: list[Category] = []
    seen: set[int] = set()
    if isinstance(categories, Mapping | str | bytes):
        raise DataError(f"{source}: categories must be a list, not {type(categories).__name__}")
    for i, c in enumerate(categories):
        if isinstance(c, Category):
            cat = c
        else:
            if not isinstance(c, Mapping) or "id" not in c or "isthing" not in c:
                raise DataError(f"{source}: category #{i} must have 'id' and 'isthing' (got {c!r})")
            cid, isthing = c["id"], c["isthing"]
            if isinstance(cid, bool) or not isinstance(cid, int | np.integer):
                raise DataError(f"{source}: category #{i} id {cid!r} is not an integer")
            if isthing not in (0, 1):  # also True / False
                raise DataError(f"{source}: category {cid} has isthing {isthing!r} (expected 0/1)")
            cat = Category(int(cid), str(c.get("name", cid)), bool(isthing == 1))
        if cat.id in seen:
            raise DataError(f"{source}: category id {cat.id} appears twice")
        seen.add(cat.id)
        out.append(cat)
    if not out:
        raise DataError(f"{source}: no categories")
    return tuple(out)


# ---------------------------------------------------------------------------------- segments


class Segments(NamedTuple):
    """One image's segment table as arrays (``n`` segments, in table order).

    ``ids`` int64 segment ids; ``cat`` intp positions in the category table; ``crowd`` bool;
    ``area`` int64 areas from the table, or ``None`` to count them from the map.
    """

    ids: np.ndarray
    cat: np.ndarray
    crowd: np.ndarray
    area: np.ndarray | None


def segment_table(
    segments: Any,
    cat_index: Mapping[int, int],
    name: str,
    *,
    gt: bool,
) -> Segments:
    """Validate one image's segments and return them as :class:`Segments`.

    ``segments`` is ``{segment id: category id}`` or a sequence of COCO ``segments_info``
    dicts (``id``, ``category_id``; for ground truth also ``iscrowd`` and ``area``, both
    optional here). ``cat_index`` maps category ids to table positions. Raises
    :class:`~segeval.errors.DataError` naming ``name`` for a duplicate id, id 0 (VOID), an
    unknown category or a bad area.
    """
    if isinstance(segments, Mapping):
        rows = [{"id": k, "category_id": v} for k, v in segments.items()]
    else:
        rows = segments
    n = len(rows)
    ids = np.empty(n, np.int64)
    cat = np.empty(n, np.intp)
    crowd = np.zeros(n, bool)
    areas = np.empty(n, np.int64)
    has_area = gt and n > 0
    seen: set[int] = set()
    for k, s in enumerate(rows):
        if not isinstance(s, Mapping) or "id" not in s or "category_id" not in s:
            raise DataError(f"{name}: segment #{k} needs 'id' and 'category_id' (got {s!r})")
        sid, cid = s["id"], s["category_id"]
        if isinstance(sid, bool) or not isinstance(sid, int | np.integer) \
                or not -(1 << 63) <= sid < 1 << 63:
            raise DataError(f"{name}: segment id {sid!r} is not a 64-bit integer")
        sid = int(sid)
        if sid in seen:
            raise DataError(f"{name}: segment id {sid} appears twice in segments_info")
        if sid == VOID:
            raise DataError(f"{name}: segment id 0 is VOID (unlabeled) and cannot be a segment")
        seen.add(sid)
        pos = cat_index.get(cid) if isinstance(cid, int | np.integer) \
            and not isinstance(cid, bool) else None
        if pos is None:
            raise DataError(f"{name}: segment {sid} has unknown category_id {cid!r}")
        ids[k], cat[k] = sid, pos
        if gt:
            iscrowd = s.get("iscrowd", 0)
            if isinstance(iscrowd, bool) or iscrowd not in (0, 1):
                raise DataError(f"{name}: segment {sid} has iscrowd {iscrowd!r} (expected 0/1)")
            crowd[k] = iscrowd == 1
            area = s.get("area")
            if area is None:
                has_area = False
            elif isinstance(area, bool) or not isinstance(area, int | np.integer | float) \
                    or not math.isfinite(area) or area < 0 or area != int(area) \
                    or area >= 1 << 62:
                raise DataError(f"{name}: segment {sid} has area {area!r} (expected a pixel "
                                f"count)")
            else:
                areas[k] = int(area)
    return Segments(ids, cat, crowd, areas if has_area else None)


# ---------------------------------------------------------------------------------- kernel

_local = threading.local()  # per thread: the two lookup tables, all "unknown" between uses


@contextlib.contextmanager
def _tables(gt_ids: np.ndarray, pred_ids: np.ndarray) -> Iterator[tuple[np.ndarray, ...]]:
    """This thread's lookup tables loaded with one image's segments, restored on exit.

    Both have ``2^24 + 1`` entries, the last one always "unknown" (ids beyond the table are
    clipped to it). Ground truth: ``uint16`` ``index << 8``; prediction: ``uint8`` ``index``;
    index 0 for VOID, 1..n for the segments in table order, 255 for any other id. So
    ``gt_table[g] | pred_table[p]`` is the pair's cell in a 256 x 256 count table.
    """
    luts = getattr(_local, "luts", None)
    if luts is None:
        luts = _local.luts = (np.full(_LUT_IDS + 1, _UNKNOWN << 8, np.uint16),
                              np.full(_LUT_IDS + 1, _UNKNOWN, np.uint8))
    lut_g, lut_p = luts
    try:
        lut_g[VOID] = lut_p[VOID] = 0
        lut_g[gt_ids] = np.arange(1, len(gt_ids) + 1, dtype=np.uint16) << 8
        lut_p[pred_ids] = np.arange(1, len(pred_ids) + 1, dtype=np.uint8)
        yield luts
    finally:
        lut_g[gt_ids] = _UNKNOWN << 8
        lut_p[pred_ids] = _UNKNOWN
        lut_g[VOID], lut_p[VOID] = _UNKNOWN << 8, _UNKNOWN


def _searchsorted_index(ids: np.ndarray, seg_ids: np.ndarray) -> np.ndarray:
    """Segment index per pixel for any ids and any number of segments (intp): 0 VOID, 1..n
    the segments in table order, n + 1 an id that is not in the table."""
    n = len(seg_ids)
    order = np.argsort(seg_ids, kind="stable")
    ordered = seg_ids[order]
    flat = ids.reshape(-1).astype(np.int64, copy=False)
    pos = np.searchsorted(ordered, flat)
    pos_c = np.minimum(pos, max(n - 1, 0))
    found = (ordered[pos_c] == flat) if n else np.zeros(flat.shape, bool)
    index = np.full(flat.shape, n + 1, np.intp)
    index[found] = order[pos_c[found]] + 1
    index[flat == VOID] = 0
    return index


#: id dtypes the compiled pass reads as they are (others take the NumPy table pass)
_ID_DTYPES = frozenset(np.dtype(t) for t in ("uint8", "uint16", "int16", "int32", "uint32",
                                              "int64"))


def _no_negative(ids: np.ndarray) -> bool:
    return ids.dtype.kind in "ub" or ids.size == 0 or int(ids.min()) >= 0


def _table_fits(seg_ids: np.ndarray) -> bool:
    return len(seg_ids) <= _LUT_MAX_SEGMENTS and (
        seg_ids.size == 0 or (int(seg_ids.min()) > 0 and int(seg_ids.max()) < _LUT_IDS))


def intersections(pred: np.ndarray, gt: np.ndarray, pred_ids: np.ndarray,
                  gt_ids: np.ndarray, *, kernel: str = "auto") -> np.ndarray:
    """The ``(G + 2) x (P + 2)`` int64 pixel counts of every (ground truth, prediction) pair.

    Row / column 0 is VOID, ``1..G`` / ``1..P`` the segments in table order, the last row /
    column ids that are not in the table. ``pred`` and ``gt`` are integer id maps of one shape.
    ``kernel``: ``"auto"``, ``"compiled"`` (one C pass through two 2^24 lookup tables),
    ``"table"`` (the same tables with NumPy gathers and one ``bincount``) or ``"general"``
    (``searchsorted``, for any ids and any number of segments); all give the same counts.
    """
    g, p = len(gt_ids), len(pred_ids)
    tables = _table_fits(gt_ids) and _table_fits(pred_ids)
    if kernel == "auto":
        kernel = ("compiled" if tables and compiled_available()
                  else "table" if tables else "general")
    if not isinstance(kernel, str) or kernel not in ("compiled", "table", "general"):
        raise bad_value("kernel", "'auto', 'compiled', 'table' or 'general'", kernel)
    keep = np.ix_(np.r_[0 : g + 1, _UNKNOWN], np.r_[0 : p + 1, _UNKNOWN])
    if kernel == "compiled" and tables and gt.dtype in _ID_DTYPES and pred.dtype in _ID_DTYPES:
        from segeval.core.kernels.c_count import pair_counts

        full = np.zeros(1 << 16, np.int64)
        with _tables(gt_ids, pred_ids) as (lut_g, lut_p):
            done = pair_counts(np.ascontiguousarray(gt).reshape(-1),
                               np.ascontiguousarray(pred).reshape(-1), lut_g, lut_p, full)
        if done:
            return full.reshape(256, 256)[keep]
        kernel = "general"  # a negative id
    if kernel in ("compiled", "table") and tables and _no_negative(gt) and _no_negative(pred):
        with _tables(gt_ids, pred_ids) as (lut_g, lut_p):
            code = lut_g.take(gt, mode="clip")
            code |= lut_p.take(pred, mode="clip")
        return np.bincount(code.reshape(-1), minlength=1 << 16).reshape(256, 256)[keep]
    gi = _searchsorted_index(gt, gt_ids)
    pi = _searchsorted_index(pred, pred_ids)
    gi *= p + 2
    gi += pi
    return np.bincount(gi, minlength=(g + 2) * (p + 2)).reshape(g + 2, p + 2)


def _first_unknown(ids: np.ndarray, seg_ids: np.ndarray) -> int:
    unknown = ids[~np.isin(ids, seg_ids) & (ids != VOID)]
    return int(unknown.min())


def image_counts(
    pred: np.ndarray,
    gt: np.ndarray,
    pred_segments: Segments,
    gt_segments: Segments,
    num_categories: int,
    *,
    pred_name: str = "pred",
    gt_name: str = "gt",
) -> np.ndarray:
    """One image's statistics: a ``(5, C)`` int64 array, rows TP, FP, FN and the IoU sum's two
    words (see the module docstring). ``pred`` and ``gt`` are ``H x W`` integer id maps.

    Raises :class:`~segeval.errors.SizeMismatchError` for different shapes and
    :class:`~segeval.errors.DataError` for an id in a map that is not in its table, a predicted
    segment with no pixels, or a ground-truth ``area`` smaller than its pixel count.
    """
    if pred.shape != gt.shape:
        raise SizeMismatchError(f"{pred_name}: shape {pred.shape} does not match the ground "
                                f"truth {gt_name} shape {gt.shape}")
    g, p = len(gt_segments.ids), len(pred_segments.ids)
    m = intersections(pred, gt, pred_segments.ids, gt_segments.ids)
    if m[-1].any():
        sid = _first_unknown(gt, gt_segments.ids)
        raise DataError(f"{gt_name}: segment id {sid} is in the PNG but not in the ground-truth "
                        f"segments_info ({int(m[-1].sum())} pixels of unknown ids)")
    if m[:, -1].any():
        sid = _first_unknown(pred, pred_segments.ids)
        raise DataError(f"{pred_name}: segment id {sid} is in the PNG but not in the predicted "
                        f"segments_info ({int(m[:, -1].sum())} pixels of unknown ids)")
    inter = m[1 : g + 1, 1 : p + 1]
    void_p = m[0, 1 : p + 1]
    p_area = m[:, 1 : p + 1].sum(axis=0)
    if p and not p_area.all():
        missing = pred_segments.ids[p_area == 0].tolist()
        raise DataError(f"{pred_name}: segment ids {missing} are in the predicted segments_info "
                        f"but not in the PNG")
    g_pix = m[1 : g + 1, :].sum(axis=1)
    if gt_segments.area is None:
        g_area = g_pix
    else:
        g_area = gt_segments.area
        short = g_area < g_pix
        if short.any():
            k = int(np.flatnonzero(short)[0])
            raise DataError(f"{gt_name}: segment {int(gt_segments.ids[k])} has area "
                            f"{int(g_area[k])} in the JSON but {int(g_pix[k])} pixels in the PNG")
        absent = (g_pix == 0) & (g_area > 0)
        if absent.any():
            log.debug("%s: ground-truth segments %s are not in the PNG", gt_name,
                      gt_segments.ids[absent].tolist())
    return _match(inter, void_p, p_area, g_area, pred_segments, gt_segments, num_categories)


def _match(inter: np.ndarray, void_p: np.ndarray, p_area: np.ndarray, g_area: np.ndarray,
           pred_segments: Segments, gt_segments: Segments, num_categories: int) -> np.ndarray:
    """The matching rules on one image's intersection table (see the module docstring)."""
    c = num_categories
    g_cat, g_crowd, p_cat = gt_segments.cat, gt_segments.crowd, pred_segments.cat
    out = np.zeros((5, c), np.int64)
    union = g_area[:, None] + (p_area - void_p)[None, :] - inter
    candidate = (g_cat[:, None] == p_cat[None, :]) & ~g_crowd[:, None] & (inter > 0)
    match = candidate & (2 * inter > union)  # IoU > 0.5, exactly, in integers
    rows, cols = np.nonzero(match)
    if rows.size:
        iou = inter[rows, cols] / union[rows, cols]  # float64, as the reference divides
        fixed = np.ldexp(iou, FIXED_BITS).astype(np.int64)  # exact: IoU is k 2^-53
        cats = g_cat[rows]
        np.add.at(out[TP], cats, 1)
        np.add.at(out[IOU_HI], cats, fixed >> _LO_BITS)
        np.add.at(out[IOU_LO], cats, fixed & _LO_MASK)
    g_matched = match.any(axis=1)
    p_matched = match.any(axis=0)
    out[FN] = np.bincount(g_cat[~g_matched & ~g_crowd], minlength=c)
    if (~p_matched).any():
        ignored = void_p.copy()
        crowd_of = np.full(c, -1, np.intp)
        for k in np.flatnonzero(g_crowd):  # the last crowd segment of a category wins
            crowd_of[g_cat[k]] = k
        region = crowd_of[p_cat]
        has = region >= 0
        ignored[has] += inter[region[has], np.flatnonzero(has)]
        fp = ~p_matched & ~(2 * ignored > p_area)
        out[FP] = np.bincount(p_cat[fp], minlength=c)
    return out


def missing_counts(gt_segments: Segments, num_categories: int) -> np.ndarray:
    """Statistics of an image without prediction: every non-crowd ground truth is a FN."""
    out = np.zeros((5, num_categories), np.int64)
    out[FN] = np.bincount(gt_segments.cat[~gt_segments.crowd], minlength=num_categories)
    return out


# ---------------------------------------------------------------------------------- inputs


def _as_map(x: Any, name: str) -> np.ndarray:
    from segeval.core.confusion import as_label_array

    return as_label_array(x, name)


def from_semantic_instance(
    semantic: Any,
    instance: Any,
    categories: Sequence[Category],
    *,
    ignore_index: int | None = 255,
    crowd_instance: int | None = None,
    name: str = "semantic",
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """Turn one image's semantic map (category ids) and instance map into a segment-id map and
    its ``segments_info``.

    Each distinct (category, instance) of a thing category is a segment; each stuff category
    is one segment whatever its instance ids. Pixels whose category is ``ignore_index`` are
    VOID. With ``crowd_instance`` set (e.g. 0), thing pixels with that instance id form the
    category's crowd region (``iscrowd`` 1) -- use it for ground truth only. Raises
    :class:`~segeval.errors.LabelError` for a category id that is not in ``categories``.
    """
    sem = _as_map(semantic, name)
    inst = _as_map(instance, name.replace("semantic", "instance"))
    if sem.shape != inst.shape:
        raise SizeMismatchError(f"{name}: semantic shape {sem.shape} does not match the "
                                f"instance shape {inst.shape}")
    cat_ids = np.array([c.id for c in categories], np.int64)
    things = np.array([c.id for c in categories if c.isthing], np.int64)
    s = sem.astype(np.int64, copy=False).reshape(-1)
    i = inst.astype(np.int64, copy=False).reshape(-1)
    void = np.zeros(s.shape, bool) if ignore_index is None else s == ignore_index
    known = np.isin(s, cat_ids)
    bad = ~known & ~void
    if bad.any():
        raise LabelError(f"{name}: category id {int(s[bad].min())} is not a category "
                         f"(expected one of the {len(cat_ids)} category ids or the ignore index "
                         f"{ignore_index}; {int(bad.sum())} such pixels)")
    thing = np.isin(s, things)
    i = np.where(thing, i, 0)
    pairs = np.stack([s, i], axis=1)[~void]
    uniq, inverse = np.unique(pairs, axis=0, return_inverse=True)
    ids = np.zeros(s.shape, np.int64)
    ids[~void] = inverse.reshape(-1) + 1
    thing_set = set(things.tolist())
    segments = [
        {"id": k + 1, "category_id": int(cid),
         "iscrowd": int(crowd_instance is not None and int(cid) in thing_set
                        and int(iid) == crowd_instance)}
        for k, (cid, iid) in enumerate(uniq.tolist())
    ]
    return ids.reshape(sem.shape), segments


# ---------------------------------------------------------------------------------- statistics

_CATEGORIES = ("a non-empty list of categories (dicts with 'id', 'isthing' and 'name', or "
               "Category objects)")
_TABLE = "a segment table: {segment id: category id} or a list of COCO segments_info dicts"


def _is_list(value: Any) -> bool:
    return isinstance(value, Sequence) and not isinstance(value, str | bytes)


def _check_table(name: str, table: Any) -> None:
    """:class:`~segeval.errors.InvalidParameterError` unless ``table`` is a mapping or a list
    (its entries are checked by :func:`segment_table`, naming the map)."""
    if not isinstance(table, Mapping) and not _is_list(table):
        raise bad_value(name, _TABLE, table)


def _tables_shown(tables: Any) -> Any:
    return Shown(f"{len(tables)} tables") if _is_list(tables) else tables


class PanopticStats:
    """Mergeable panoptic statistics: per category TP, FP, FN and the exact IoU sum.

    ``PanopticStats(categories)`` starts empty; :meth:`update` adds images (id maps with their
    segment tables, or semantic + instance maps); ``a + b`` merges exactly. ``categories`` are
    COCO-style dicts (``id``, ``name``, ``isthing``) or :class:`Category` objects.

    >>> import numpy as np
    >>> stats = PanopticStats([{"id": 3, "name": "car", "isthing": 1}])
    >>> _ = stats.update(np.array([[4, 4], [0, 0]]), np.array([[9, 9], [9, 0]]),
    ...                  pred_segments={4: 3}, gt_segments={9: 3})
    >>> stats.tp.tolist(), stats.fp.tolist(), stats.fn.tolist(), stats.iou_sum.tolist()
    ([1], [0], [0], [0.6666666666666666])
    """

    def __init__(self, categories: Any, *, counts: np.ndarray | None = None) -> None:
        from segeval.core.confusion import count_array

        if isinstance(categories, Mapping | str | bytes) or not isinstance(categories, Iterable):
            raise bad_value("categories", _CATEGORIES, categories)
        categories = list(categories)
        if not categories:
            raise bad_value("categories", _CATEGORIES, categories)
        self.categories = as_categories(categories)
        self.cat_index = {c.id: k for k, c in enumerate(self.categories)}
        shape = (5, len(self.categories))
        self.counts = count_array(np.zeros(shape, np.int64) if counts is None else counts,
                                  shape, "counts")

    # ------------------------------------------------------------------ accumulation

    def add_counts(self, counts: np.ndarray) -> PanopticStats:
        """Add a ``(5, C)`` count array from :func:`image_counts`; returns ``self``."""
        from segeval.core.confusion import count_array

        self.counts += count_array(counts, self.counts.shape, "counts")
        return self

    def update(
        self,
        pred: Any,
        gt: Any,
        pred_segments: Any = None,
        gt_segments: Any = None,
        *,
        ignore_index: int | None = 255,
        crowd_instance: int | None = None,
        pred_name: str = "pred",
        gt_name: str = "gt",
    ) -> PanopticStats:
        """Add one image (``H x W``) or a batch (``N x H x W``); returns ``self``.

        Either ``pred`` / ``gt`` are segment-id maps and ``pred_segments`` / ``gt_segments``
        their tables (``{segment id: category id}`` or COCO ``segments_info`` lists; for a
        batch, a sequence of ``N`` tables), or, with both tables left out, ``pred`` and ``gt``
        are ``(semantic, instance)`` pairs of maps (see :func:`from_semantic_instance` for
        ``ignore_index`` and ``crowd_instance``, which applies to the ground truth only).
        Ground-truth areas are pixel counts unless the table gives ``area``. Nothing is added
        when an error is raised.
        """
        from segeval.core.confusion import check_ignore_index, is_int

        ignore_index = check_ignore_index(ignore_index)
        if crowd_instance is not None and not is_int(crowd_instance):
            raise bad_value("crowd_instance", "an integer instance id or None", crowd_instance)
        if pred_segments is None and gt_segments is None:
            items = self._from_semantic_instance(pred, gt, ignore_index, crowd_instance)
        elif pred_segments is None or gt_segments is None:
            given, other = (("pred_segments", "gt_segments") if gt_segments is None
                            else ("gt_segments", "pred_segments"))
            raise bad_value(other, f"a segment table when {given} is given (give both tables, "
                            f"or neither for (semantic, instance) pairs)", None)
        else:
            p, g = _as_map(pred, "pred"), _as_map(gt, "gt")
            if p.ndim == 3 or g.ndim == 3:
                for name, tables, maps in (("pred_segments", pred_segments, p),
                                           ("gt_segments", gt_segments, g)):
                    if not _is_list(tables) or len(tables) != len(maps):
                        raise bad_value(name, f"a list of {len(maps)} segment tables, one per "
                                        f"image of the batch", _tables_shown(tables))
                    for table in tables:
                        _check_table(name, table)
                items = list(zip(p, g, pred_segments, gt_segments, strict=True))
            else:
                _check_table("pred_segments", pred_segments)
                _check_table("gt_segments", gt_segments)
                items = [(p, g, pred_segments, gt_segments)]
        total = np.zeros_like(self.counts)
        for k, (p, g, ps, gs) in enumerate(items):
            suffix = f"[{k}]" if len(items) > 1 else ""
            pn, gn = pred_name + suffix, gt_name + suffix
            total += image_counts(
                np.asarray(p), np.asarray(g),
                segment_table(ps, self.cat_index, pn, gt=False),
                segment_table(gs, self.cat_index, gn, gt=True),
                len(self.categories), pred_name=pn, gt_name=gn,
            )
        self.counts += total
        return self

    def _from_semantic_instance(self, pred: Any, gt: Any, ignore_index: int | None,
                                crowd_instance: int | None) -> list[tuple[Any, ...]]:
        pairs = []
        for name, value in (("pred", pred), ("gt", gt)):
            try:
                semantic, instance = value
            except (TypeError, ValueError):
                raise bad_value(name, "a (semantic, instance) pair of maps when no segment "
                                "tables are given", value) from None
            pairs.append((semantic, instance))
        (ps, pi), (gs, gi) = pairs
        ps, pi, gs, gi = (_as_map(a, n) for a, n in ((ps, "pred semantic"),
                                                    (pi, "pred instance"),
                                                    (gs, "gt semantic"), (gi, "gt instance")))
        batch = ps.ndim == 3
        ps, pi, gs, gi = ((a if batch else a[None]) for a in (ps, pi, gs, gi))
        items = []
        for k in range(len(gs)):
            suffix = f"[{k}]" if batch else ""
            pid, pseg = from_semantic_instance(ps[k], pi[k], self.categories,
                                               ignore_index=ignore_index,
                                               name="pred semantic" + suffix)
            gid, gseg = from_semantic_instance(gs[k], gi[k], self.categories,
                                               ignore_index=ignore_index,
                                               crowd_instance=crowd_instance,
                                               name="gt semantic" + suffix)
            items.append((pid, gid, pseg, gseg))
        return items

    def _check_compatible(self, other: object) -> PanopticStats:
        if not isinstance(other, PanopticStats):
            raise TypeError(f"Can only add PanopticStats to PanopticStats, not "
                            f"{type(other).__name__}.")
        if self.categories != other.categories:
            raise ValueError("Cannot merge panoptic statistics over different category tables.")
        return other

    def __add__(self, other: PanopticStats) -> PanopticStats:
        other = self._check_compatible(other)
        return PanopticStats(self.categories, counts=self.counts + other.counts)

    def __iadd__(self, other: PanopticStats) -> PanopticStats:
        self.counts += self._check_compatible(other).counts
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PanopticStats):
            return NotImplemented
        return self.categories == other.categories and np.array_equal(self.counts, other.counts)

    __hash__ = None  # type: ignore[assignment]  # mutable

    def copy(self) -> PanopticStats:
        """An independent copy."""
        return PanopticStats(self.categories, counts=self.counts)

    def __repr__(self) -> str:
        return (f"PanopticStats(categories={len(self.categories)}, tp={int(self.tp.sum())}, "
                f"fp={int(self.fp.sum())}, fn={int(self.fn.sum())})")

    # ------------------------------------------------------------------ values

    @property
    def tp(self) -> np.ndarray:
        """``(C,)`` int64 true positives (matched pairs) per category."""
        return self.counts[TP].copy()

    @property
    def fp(self) -> np.ndarray:
        """``(C,)`` int64 false positives per category."""
        return self.counts[FP].copy()

    @property
    def fn(self) -> np.ndarray:
        """``(C,)`` int64 false negatives per category."""
        return self.counts[FN].copy()

    @property
    def iou_sum(self) -> np.ndarray:
        """``(C,)`` float64: the sum of the TPs' IoUs per category, correctly rounded."""
        hi, lo = self.counts[IOU_HI].tolist(), self.counts[IOU_LO].tolist()
        return np.array([((h << _LO_BITS) + low) / (1 << FIXED_BITS)
                         for h, low in zip(hi, lo, strict=True)], np.float64)

    def result(self, **info: Any) -> PanopticResult:
        """Every score at once, as a :class:`PanopticResult` (``info`` fills its other fields)."""
        return panoptic_result(self, **info)


# ---------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class PQAverage:
    """A mean over categories: PQ, SQ, RQ and ``n``, the number of categories averaged."""

    pq: float
    sq: float
    rq: float
    n: int


def iou_sums_of(counts: np.ndarray) -> np.ndarray:
    """The IoU sums of count arrays with any leading batch axes: ``(..., 5, C)`` (int64, or
    float64 sums of such arrays, e.g. bootstrap resamples) -> ``(..., C)`` float64.

    Equal to :attr:`PanopticStats.iou_sum` (the correctly rounded sum) while the high word is
    below ``2^53`` (beyond ~67 million true positives in one category).
    """
    counts = np.asarray(counts)
    hi = counts[..., IOU_HI, :].astype(np.float64)
    lo = counts[..., IOU_LO, :].astype(np.float64)
    return (hi * float(1 << _LO_BITS) + lo) / float(1 << FIXED_BITS)


def scores_from_counts(tp: Any, fp: Any, fn: Any, iou_sum: Any
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-category ``(pq, sq, rq, counted)`` from per-category TP, FP, FN and IoU sums.

    The inputs are ``(..., C)`` arrays with any leading batch axes (integer counts, or float64
    sums of them); the outputs are ``(..., C)`` float64 (NaN where a category has no TP, FP or
    FN) and the bool mask of the categories that count. This is the one definition of the
    per-category formulas; the arithmetic is the reference's, element by element
    (``den = tp + 0.5 fp + 0.5 fn``), so the values are bit-identical to it.
    """
    tp, fp, fn = (np.asarray(x).astype(np.float64) for x in (tp, fp, fn))
    iou = np.asarray(iou_sum, dtype=np.float64)
    counted = tp + fp + fn > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        den = tp + 0.5 * fp + 0.5 * fn
        pq = np.where(counted, iou / den, np.nan)
        sq = np.where(counted, np.where(tp > 0, iou / tp, 0.0), np.nan)
        rq = np.where(counted, tp / den, np.nan)
    return pq, sq, rq, counted


def averages_from_counts(tp: Any, fp: Any, fn: Any, iou_sum: Any, keep: Any = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Mean PQ, SQ, RQ over the counted categories (those selected by the ``(C,)`` bool mask
    ``keep``, all when ``None``), with any leading batch axes: ``(..., C)`` inputs ->
    ``(pq, sq, rq, n)``, each ``(...)``; NaN where ``n`` is 0.

    Summed category by category in table order, as the reference does, so that the value for
    one set of counts is bit-identical to :func:`average`'s.
    """
    pq, sq, rq, counted = scores_from_counts(tp, fp, fn, iou_sum)
    if keep is not None:
        counted = counted & np.asarray(keep, dtype=bool)
    sums = [np.zeros(counted.shape[:-1]) for _ in range(3)]
    for k in range(counted.shape[-1]):
        c = counted[..., k]
        for acc, values in zip(sums, (pq, sq, rq), strict=True):
            acc += np.where(c, values[..., k], 0.0)
    n = counted.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = [np.where(n > 0, acc / np.maximum(n, 1), np.nan) for acc in sums]
    return out[0], out[1], out[2], n


def class_scores(stats: PanopticStats) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per-category ``(pq, sq, rq, counted)``: three ``(C,)`` float64 arrays, NaN where the
    category has no TP, FP or FN, and the bool mask of the categories that count."""
    return scores_from_counts(stats.tp, stats.fp, stats.fn, stats.iou_sum)


def average(stats: PanopticStats, isthing: bool | None = None) -> PQAverage:
    """Mean PQ, SQ, RQ over the counted categories (things only, stuff only, or all when
    ``isthing`` is ``None``), summed in table order; NaN with ``n = 0`` when none counts."""
    keep = None if isthing is None else [c.isthing == isthing for c in stats.categories]
    pq, sq, rq, n = averages_from_counts(stats.tp, stats.fp, stats.fn, stats.iou_sum, keep)
    if n == 0:
        return PQAverage(math.nan, math.nan, math.nan, 0)
    return PQAverage(float(pq), float(sq), float(rq), int(n))


def json_float(x: float) -> float | None:
    return None if math.isnan(x) else float(x)


@dataclass
class PanopticResult:
    """Every panoptic score of one evaluation.

    ``all``, ``things`` and ``stuff`` are :class:`PQAverage`; ``pq``, ``sq``, ``rq`` are the
    All values. Per-category arrays follow ``stats.categories`` (NaN where a category has no
    segment at all). ``to_dict()`` is JSON-safe (NaN becomes ``None``); ``to_frame()`` is the
    per-category table.
    """

    stats: PanopticStats
    all: PQAverage
    things: PQAverage
    stuff: PQAverage
    class_pq: np.ndarray
    class_sq: np.ndarray
    class_rq: np.ndarray
    task: str = "panoptic"
    format: str | None = None
    num_images: int | None = None
    per_image: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def pq(self) -> float:
        return self.all.pq

    @property
    def sq(self) -> float:
        return self.all.sq

    @property
    def rq(self) -> float:
        return self.all.rq

    def metrics_dict(self) -> dict[str, Any]:
        """The headline numbers, JSON-safe."""
        out: dict[str, Any] = {}
        for suffix, avg in (("", self.all), ("_things", self.things), ("_stuff", self.stuff)):
            out[f"pq{suffix}"] = json_float(avg.pq)
            out[f"sq{suffix}"] = json_float(avg.sq)
            out[f"rq{suffix}"] = json_float(avg.rq)
        out.update(n=self.all.n, n_things=self.things.n, n_stuff=self.stuff.n,
                   num_categories=len(self.stats.categories))
        return out

    def per_class(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per category, in table order: id, name, isthing, pq, sq, rq
        (``None`` when the category has no segment), tp, fp, fn, iou_sum."""
        s = self.stats
        tp, fp, fn, iou = s.tp, s.fp, s.fn, s.iou_sum
        return [
            {"id": c.id, "name": c.name, "isthing": c.isthing,
             "pq": json_float(self.class_pq[k]), "sq": json_float(self.class_sq[k]),
             "rq": json_float(self.class_rq[k]),
             "tp": int(tp[k]), "fp": int(fp[k]), "fn": int(fn[k]), "iou_sum": float(iou[k])}
            for k, c in enumerate(s.categories)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``segeval score --json`` writes."""
        return {"task": self.task, "format": self.format, "num_images": self.num_images,
                "metrics": self.metrics_dict(), "per_class": self.per_class()}

    def to_frame(self) -> pd.DataFrame:
        """Per-category table: a DataFrame indexed by category id, NaN kept as NaN."""
        import pandas as pd

        frame = pd.DataFrame(self.per_class()).set_index("id")
        for col in ("pq", "sq", "rq"):
            frame[col] = frame[col].astype(float)
        return frame


def panoptic_result(stats: PanopticStats, **info: Any) -> PanopticResult:
    """All scores of merged statistics; logs a warning when no category has any segment."""
    pq, sq, rq, _ = class_scores(stats)
    result = PanopticResult(stats.copy(), average(stats), average(stats, True),
                            average(stats, False), pq, sq, rq, **info)
    if result.all.n == 0:
        log.warning("no category has a true positive, false positive or false negative: "
                    "PQ, SQ and RQ are undefined (NaN)")
    return result


def panoptic_quality(
    pred: Any,
    gt: Any,
    categories: Any,
    pred_segments: Any = None,
    gt_segments: Any = None,
    *,
    ignore_index: int | None = 255,
    crowd_instance: int | None = None,
) -> PanopticResult:
    """PQ, SQ and RQ (All, Things, Stuff and per category) of one image or a batch.

    ``pred`` and ``gt`` are segment-id maps (``H x W`` or ``N x H x W``, any integer dtype, 0 =
    VOID) with their tables ``pred_segments`` / ``gt_segments`` (``{segment id: category
    id}`` or COCO ``segments_info`` lists with ``iscrowd`` and ``area`` for the ground truth;
    one table per image for a batch), or ``(semantic, instance)`` pairs of maps with both
    tables left out (see :func:`from_semantic_instance`). ``categories``: COCO-style dicts
    with ``id``, ``name``, ``isthing``. For many images, accumulate a :class:`PanopticStats`.
    """
    return PanopticStats(categories).update(
        pred, gt, pred_segments, gt_segments, ignore_index=ignore_index,
        crowd_instance=crowd_instance).result()


# --------------------------------------------------------------- saved state (segeval.engine.state)


def state_of(result: PanopticResult) -> tuple[dict[str, Any], dict[str, Any]]:
    """Settings (the category table) and arrays (the ``(5, C)`` counts) of a panoptic result,
    for :mod:`segeval.engine.state`."""
    cats = [{"id": c.id, "name": c.name, "isthing": int(c.isthing)}
            for c in result.stats.categories]
    return {"categories": cats}, {"counts": result.stats.counts}


def stats_from_state(settings: dict[str, Any], arrays: dict[str, Any]) -> PanopticStats:
    """The statistics a state file holds."""
    return PanopticStats(settings["categories"], counts=arrays["counts"])


def result_from_state(stats: PanopticStats, settings: dict[str, Any], fmt: str | None,
                      num_images: int) -> PanopticResult:
    """The result of merged states."""
    return stats.result(format=fmt, num_images=num_images)
