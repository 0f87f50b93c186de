"""Checking and preparing COCO instances ground truth and segm results for COCOeval.

pycocotools trusts its input: a result for an unknown image trips an ``assert``, a missing
``score`` a ``KeyError`` deep inside ``evaluate``, a malformed RLE gives silently wrong areas,
a mask of the wrong size silently never matches, an empty results list an ``IndexError``. This
module checks everything first and raises a :class:`~segeval.errors.SegevalError` whose one
line names the file, the annotation or result (its 0-based position in the list) and the image.

pycocotools also trusts polygon coordinates: it rasterizes a polygon on its outline upsampled
5 times in 32-bit integers, so a coordinate of 1e9 overflows them (a segfault) and one of 1e7
costs 1.2 GB for a 300-byte file. So every polygon point must lie within one image size of its
image (``-w <= x <= 2w``, ``-h <= y <= 2h``), the outline of one annotation may cost at most
:data:`MAX_POLYGON_POINTS` points (some 200 MiB) and those of one file
:data:`MAX_FILE_POLYGON_POINTS`, and polygons are refused on images of 2^31 pixels or more.
An RLE's ``size`` must be its image's and its runs must add up to the image's pixels. JSON is
read with the bounded reader :mod:`segeval.core.jsonio` (size, nesting, number length).

What it hands to COCOeval, and how that differs from the input:

* Ground truth: every annotation is a shallow copy; ``iscrowd`` defaults to 0 and a missing
  ``area`` is computed from the mask. If any annotation ``id`` is 0, missing or repeated, all
  are renumbered ``1..N`` in file order (COCOeval stores matched ground-truth ids as the match
  flag, so id 0 can never match).
* Results: copies of ``image_id``, ``category_id``, ``score`` and ``segmentation`` in file order
  (score ties are broken by file order in COCOeval). Polygons and uncompressed RLE are
  compressed (pycocotools' ``loadRes`` reads only compressed RLE). A ``bbox`` key is dropped
  unless ``keep_bbox``: with one, ``loadRes`` takes the box area ``w * h`` as the detection's
  area for the small/medium/large ranges instead of the mask area.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segeval.core import jsonio
from segeval.core.rle import compressed_totals
from segeval.errors import DataError, FileFormatError

_NUMBER = (int, float, np.integer, np.floating)


def load_json(path: str | os.PathLike[str], *, max_bytes: int | None = None) -> Any:
    """Parse a JSON file with the bounds of :func:`segeval.core.jsonio.read_json` (size,
    nesting, number length); :class:`~segeval.errors.SegevalError` naming it when that fails."""
    return jsonio.read_json(path, max_bytes=max_bytes)


@dataclass
class GroundTruth:
    """Checked ground truth: the dataset to give COCOeval plus what the checks learnt."""

    dataset: dict[str, Any]
    name: str
    sizes: dict[Any, tuple[int, int]]
    category_names: dict[Any, str]
    renumbered: bool = False
    areas_computed: int = 0


@dataclass
class Results:
    """Checked results in file order, and what was changed on the way."""

    annotations: list[dict[str, Any]]
    name: str
    bboxes_dropped: int = 0
    converted: int = 0
    area_source: str = "mask"
    notes: list[str] = field(default_factory=list)


def _is_int(x: Any) -> bool:
    return type(x) is int or (isinstance(x, int | np.integer) and not isinstance(x, bool))


def _is_number(x: Any) -> bool:
    if type(x) is float or type(x) is int:  # the JSON case, first
        return math.isfinite(x)
    return isinstance(x, _NUMBER) and not isinstance(x, bool) and math.isfinite(x)


def _is_id(x: Any) -> bool:
    return _is_int(x) or isinstance(x, str)


def _known(x: Any, table: Mapping[Any, Any]) -> bool:
    """``x in table``, False for an unhashable ``x`` (a list where an id belongs)."""
    try:
        return x in table
    except TypeError:
        return False


def _type_name(x: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", type(None): "null"}.get(
        type(x), f"a {type(x).__name__}")


def check_ground_truth(gt: Any, name: str = "ground truth") -> GroundTruth:
    """Check a COCO instances dataset (a parsed JSON object) and prepare it for COCOeval.

    ``name`` (the file) starts every error message. Raises
    :class:`~segeval.errors.FileFormatError` when ``gt`` is not COCO instances JSON and
    :class:`~segeval.errors.DataError` for a bad image, category or annotation.
    """
    if isinstance(gt, list):
        hint = " (it looks like a results list: pass it as the predictions)" if gt and \
            isinstance(gt[0], dict) and "score" in gt[0] else ""
        raise FileFormatError(f"{name}: not COCO instances ground truth: a JSON list where an "
                              f"object with 'images', 'annotations' and 'categories' is "
                              f"expected{hint}")
    if not isinstance(gt, Mapping):
        raise FileFormatError(f"{name}: not COCO instances ground truth: {_type_name(gt)} "
                              f"where a JSON object is expected")
    for key in ("images", "annotations", "categories"):
        if not isinstance(gt.get(key), list):
            what = "missing" if key not in gt else f"{_type_name(gt[key])}, not a list"
            raise FileFormatError(f"{name}: not COCO instances ground truth: '{key}' is {what}")
    sizes = _check_images(gt["images"], name)
    cats = _check_categories(gt["categories"], name)
    anns, renumbered, computed = _check_annotations(gt["annotations"], sizes, cats, name)
    dataset = {k: v for k, v in gt.items() if k != "annotations"}
    dataset["annotations"] = anns
    return GroundTruth(dataset, name, sizes, cats, renumbered, computed)


def _check_images(images: list[Any], name: str) -> dict[Any, tuple[int, int]]:
    sizes: dict[Any, tuple[int, int]] = {}
    for i, img in enumerate(images):
        where = f"{name}: images[{i}]"
        if not isinstance(img, Mapping):
            raise FileFormatError(f"{where} is {_type_name(img)}, not an object")
        if not _is_id(img.get("id")):
            raise DataError(f"{where} has no integer 'id'")
        h, w = img.get("height"), img.get("width")
        if not (_is_int(h) and _is_int(w) and h > 0 and w > 0):
            raise DataError(f"{where} (id {img['id']}): 'height' and 'width' must be positive "
                            f"integers, found {h!r} and {w!r}")
        if img["id"] in sizes:
            raise DataError(f"{where}: image id {img['id']} appears twice")
        sizes[img["id"]] = (int(h), int(w))
    return sizes


def _check_categories(categories: list[Any], name: str) -> dict[Any, str]:
    names: dict[Any, str] = {}
    for i, cat in enumerate(categories):
        where = f"{name}: categories[{i}]"
        if not isinstance(cat, Mapping) or not _is_id(cat.get("id")):
            raise DataError(f"{where} has no integer 'id'")
        if cat["id"] in names:
            raise DataError(f"{where}: category id {cat['id']} appears twice")
        names[cat["id"]] = str(cat.get("name", cat["id"]))
    return names


def _check_annotations(annotations: list[Any], sizes: dict[Any, tuple[int, int]],
                       cats: dict[Any, str], name: str
                       ) -> tuple[list[dict[str, Any]], bool, int]:
    out: list[dict[str, Any]] = []
    strings: list[tuple[int, Any]] = []
    ids: set[Any] = set()
    renumber = False
    missing_area: list[int] = []
    budget = [MAX_FILE_POLYGON_POINTS]
    for i, ann in enumerate(annotations):
        where = f"{name}: annotations[{i}]"
        if not isinstance(ann, Mapping):
            raise FileFormatError(f"{where} is {_type_name(ann)}, not an object")
        if "segments_info" in ann:
            raise FileFormatError(f"{name}: COCO panoptic ground truth, not instances "
                                  f"(annotations have 'segments_info')")
        iid = ann.get("image_id")
        if not _known(iid, sizes):
            raise DataError(f"{where} (id {ann.get('id')}): image_id {iid!r} is not in "
                            f"'images'")
        where = f"{where} (id {ann.get('id')}, image_id {iid})"
        if not _known(ann.get("category_id"), cats):
            raise DataError(f"{where}: category_id {ann.get('category_id')!r} is not in "
                            f"'categories'")
        crowd = ann.get("iscrowd", 0)
        if crowd not in (0, 1):
            raise DataError(f"{where}: 'iscrowd' must be 0 or 1, found {crowd!r}")
        if "segmentation" not in ann:
            raise DataError(f"{where} has no 'segmentation'")
        counts = _check_segmentation(ann["segmentation"], sizes[iid], where, budget)
        if counts is not None:
            strings.append((i, counts))
        area = ann.get("area")
        if area is None:
            missing_area.append(i)
        elif not _is_number(area) or area < 0:
            raise DataError(f"{where}: 'area' must be a non-negative number, found {area!r}")
        aid = ann.get("id")
        if not _is_id(aid) or aid == 0 or aid in ids:
            renumber = True
        else:
            ids.add(aid)
        copy = dict(ann)
        copy["iscrowd"] = int(crowd)
        out.append(copy)
    _check_strings(strings, out, sizes, name, "annotations")
    if missing_area:
        from pycocotools import mask as mask_utils

        for i in missing_area:
            h, w = sizes[out[i]["image_id"]]
            out[i]["area"] = float(mask_utils.area(_to_rle(out[i]["segmentation"], h, w)))
    if renumber:
        for k, ann in enumerate(out, 1):
            ann["id"] = k
    return out, renumber, len(missing_area)


def _check_segmentation(seg: Any, size: tuple[int, int], where: str,
                        budget: list[int] | None = None) -> Any:
    """Check one segmentation; return its compressed ``counts`` (checked later) or ``None``.
    ``budget`` (one number, the outline points left for the file) is spent by polygons."""
    h, w = size
    if isinstance(seg, list):
        if not seg:
            raise DataError(f"{where}: empty polygon list")
        for k, poly in enumerate(seg):
            try:
                xy = np.asarray(poly, dtype=np.float64)
            except (TypeError, ValueError):
                xy = None
            if xy is None or xy.ndim != 1 or not np.isfinite(xy).all() or \
                    any(isinstance(v, bool) for v in poly):
                raise DataError(f"{where}: polygon {k} is not a flat list of numbers "
                                f"[x1, y1, x2, y2, ...]")
            if xy.size < 6 or xy.size % 2:
                raise DataError(f"{where}: malformed polygon {k}: {xy.size} coordinates (an "
                                f"even number, at least 6 = three points, expected)")
        _check_polygons(seg, h, w, where, budget)
        return None
    if type(seg) is not dict and not isinstance(seg, Mapping):
        raise DataError(f"{where}: 'segmentation' is {_type_name(seg)}, not polygons or RLE")
    rsize, counts = seg.get("size"), seg.get("counts")
    if type(counts) is str and rsize == [h, w]:  # the usual compressed RLE, checked later
        return counts
    if not (isinstance(rsize, list | tuple) and len(rsize) == 2 and all(map(_is_int, rsize))):
        raise DataError(f"{where}: malformed RLE: 'size' must be [height, width], found "
                        f"{rsize!r}")
    if tuple(rsize) != (h, w):
        raise DataError(f"{where}: mask of size {rsize[0]}x{rsize[1]} (height x width) on an "
                        f"image of size {h}x{w}")
    if isinstance(counts, list):
        if not all(_is_int(c) and c >= 0 for c in counts):
            raise DataError(f"{where}: malformed RLE: 'counts' must be non-negative integers")
        if sum(counts) != h * w:
            raise DataError(f"{where}: malformed RLE: runs add up to {sum(counts)} pixels, not "
                            f"{h}x{w} = {h * w}")
        return None
    if isinstance(counts, str | bytes):
        return counts
    raise DataError(f"{where}: malformed RLE: 'counts' is {_type_name(counts)}, not a string "
                    f"or a list of integers")


#: pycocotools rasterizes a polygon on its outline upsampled 5 times: about 24 bytes for each
#: of its ``sum(5 * max(|dx|, |dy|) + 1)`` outline points (edges in pixels). An annotation may
#: have at most this many (some 200 MiB; a real outline has a few thousand) ...
MAX_POLYGON_POINTS = 1 << 23
#: ... and the polygons of a whole file at most this many (the masks they become are kept)
MAX_FILE_POLYGON_POINTS = 1 << 28
#: pycocotools computes a polygon pixel's position ``x * h + y`` in 32 bits and its upsampled
#: coordinates in 31: polygons only on images of fewer pixels and shorter sides than these
_POLYGON_PIXELS, _POLYGON_SIDE = 1 << 31, 1 << 27


def _check_polygons(polygons: list[Any], h: int, w: int, where: str,
                    budget: list[int] | None) -> None:
    """Refuse polygons that pycocotools would rasterize out of bounds or at great cost: every
    point within one image size of the image (``-w <= x <= 2w``, ``-h <= y <= 2h``), the
    outline points of :data:`MAX_POLYGON_POINTS`, and the image small enough."""
    if h * w >= _POLYGON_PIXELS or max(h, w) > _POLYGON_SIDE:
        raise DataError(f"{where}: polygons on an image of {h}x{w} pixels, which pycocotools "
                        f"cannot rasterize (fewer than 2^31 pixels and sides up to 2^27 are "
                        f"needed; give the mask as RLE)")
    points = 0
    for k, poly in enumerate(polygons):
        xy = np.asarray(poly, dtype=np.float64)
        x, y = xy[0::2], xy[1::2]
        outside = (x < -w) | (x > 2 * w) | (y < -h) | (y > 2 * h)
        if outside.any():
            j = int(np.argmax(outside))
            raise DataError(f"{where}: polygon {k} has the point ({x[j]:.6g}, {y[j]:.6g}) far "
                            f"outside the image of {h}x{w} (height x width): points must lie "
                            f"within one image size of it, x in [{-w}, {2 * w}] and y in "
                            f"[{-h}, {2 * h}]")
        # as pycocotools: (int)(5 * v + 0.5), then max(|dx|, |dy|) + 1 points an edge
        ix, iy = np.trunc(5 * x + 0.5), np.trunc(5 * y + 0.5)
        points += int(np.maximum(np.abs(ix - np.roll(ix, -1)),
                                 np.abs(iy - np.roll(iy, -1))).sum()) + x.size
    if points > MAX_POLYGON_POINTS:
        raise DataError(f"{where}: polygons with {points} outline points to rasterize (about "
                        f"{points * 24 >> 20} MiB in pycocotools; at most {MAX_POLYGON_POINTS} "
                        f"for one annotation)")
    if budget is not None:
        budget[0] -= points
        if budget[0] < 0:
            raise DataError(f"{where}: the polygons up to this one have more than "
                            f"{MAX_FILE_POLYGON_POINTS} outline points to rasterize (the "
                            f"bound for one file)")


def _check_strings(strings: list[tuple[int, Any]], anns: Sequence[Mapping[str, Any]],
                   sizes: dict[Any, tuple[int, int]], name: str, what: str) -> None:
    """Decode every compressed RLE at once; raise for the first one that is malformed."""
    if not strings:
        return
    totals, minima, bad = compressed_totals([c for _, c in strings])
    expected = np.fromiter((math.prod(sizes[anns[i]["image_id"]]) for i, _ in strings),
                           np.int64, len(strings))
    wrong = np.flatnonzero(bad | (minima < 0) | (totals != expected))
    if wrong.size == 0:
        return
    j = int(wrong[0])
    i = strings[j][0]
    ann = anns[i]
    h, w = sizes[ann["image_id"]]
    label = f"{what}[{i}] (image_id {ann['image_id']})" if what == "results" else \
        f"{what}[{i}] (id {ann.get('id')}, image_id {ann['image_id']})"
    if bad[j]:
        problem = "'counts' is not a COCO compressed RLE string"
    elif minima[j] < 0:
        problem = "a negative run length"
    else:
        problem = f"runs add up to {totals[j]} pixels, not {h}x{w} = {h * w}"
    more = f" ({wrong.size} malformed in all)" if wrong.size > 1 else ""
    raise DataError(f"{name}: {label}: malformed RLE: {problem}{more}")


def _result_error(r: Mapping[str, Any], i: int, name: str, gt: GroundTruth) -> None:
    """Raise the error for a result with a bad category, score or no segmentation."""
    where = f"{name}: results[{i}] (image_id {r['image_id']})"
    if not _known(r.get("category_id"), gt.category_names):
        raise DataError(f"{where}: category_id {r.get('category_id')!r} is not a category of "
                        f"{gt.name}")
    if "score" not in r:
        raise DataError(f"{where} has no 'score'")
    if not _is_number(r["score"]):
        raise DataError(f"{where}: 'score' must be a finite number, found {r['score']!r}")
    extra = " (box results cannot be scored as masks)" if "bbox" in r else ""
    raise DataError(f"{where} has no 'segmentation'{extra}")


def _to_rle(seg: Any, h: int, w: int) -> dict[str, Any]:
    """One compressed RLE for a checked segmentation (polygons merged)."""
    from pycocotools import mask as mask_utils

    if isinstance(seg, list):
        return mask_utils.merge(mask_utils.frPyObjects(seg, h, w))
    if isinstance(seg["counts"], list):
        return mask_utils.frPyObjects(seg, h, w)
    return seg


def check_results(results: Any, gt: GroundTruth, name: str = "results",
                  keep_bbox: bool = False) -> Results:
    """Check detection results (a parsed JSON list) against the checked ground truth.

    Every result needs ``image_id`` and ``category_id`` of the ground truth, a finite
    ``score`` and a ``segmentation`` of its image's size. An empty list is valid. See the
    module docstring for what is changed (bbox, polygons).
    """
    if isinstance(results, Mapping):
        hint = " (it looks like ground truth, not results)" if "annotations" in results \
            else ""
        raise FileFormatError(f"{name}: not a COCO results list: a JSON object where a list "
                              f"of detections is expected{hint}")
    if not isinstance(results, list):
        raise FileFormatError(f"{name}: not a COCO results list: {_type_name(results)}")
    out: list[dict[str, Any]] = []
    strings: list[tuple[int, Any]] = []
    converted = dropped = 0
    budget = [MAX_FILE_POLYGON_POINTS]
    sizes, cats = gt.sizes, gt.category_names
    for i, r in enumerate(results):
        if type(r) is not dict and not isinstance(r, Mapping):
            raise FileFormatError(f"{name}: results[{i}] is {_type_name(r)}, not an object")
        iid = r.get("image_id")
        if not _known(iid, sizes):
            raise DataError(f"{name}: results[{i}]: image_id {iid!r} is not an image of "
                            f"{gt.name}")
        score = r.get("score")
        if not _known(r.get("category_id"), cats) or not _is_number(score) \
                or "segmentation" not in r:
            _result_error(r, i, name, gt)
        seg = r["segmentation"]
        counts = _check_segmentation(seg, sizes[iid], f"{name}: results[{i}] (image_id {iid})",
                                     budget)
        item = {"image_id": iid, "category_id": r["category_id"], "score": score,
                "segmentation": seg}
        if counts is None:
            converted += 1
            item["segmentation"] = _to_rle(seg, *sizes[iid])
        else:
            strings.append((i, counts))
        if "bbox" in r:
            if keep_bbox:
                bb = r["bbox"]
                if not (isinstance(bb, list | tuple) and len(bb) == 4
                        and all(map(_is_number, bb))):
                    raise DataError(f"{name}: results[{i}] (image_id {iid}): 'bbox' must be "
                                    f"[x, y, width, height], found {bb!r}")
                item["bbox"] = list(bb)
            else:
                dropped += 1
        elif keep_bbox and out and "bbox" in out[0]:
            raise DataError(f"{name}: results[{i}] (image_id {iid}) has no 'bbox' while "
                            f"results[0] has one (with keep_bbox=True pycocotools needs all or "
                            f"none)", parameters=("keep_bbox",))
        out.append(item)
    _check_strings(strings, out, gt.sizes, name, "results")
    area_source = "bbox" if keep_bbox and out and "bbox" in out[0] else "mask"
    return Results(out, name, dropped, converted, area_source)
