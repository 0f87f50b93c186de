"""Surface distances between two label masks, as DeepMind's ``surface-distance`` defines them
(the reference of the Medical Segmentation Decathlon and Metrics Reloaded), computed faster.

Definitions (``docs/medical.md`` has them with the conventions for empty masks):

* **Surface elements** sit at voxel *corners*: every corner is the centre of a 2x2x2 (2-D:
  2x2) neighbourhood of voxels, whose inside/outside pattern is an 8-bit (4-bit) code. A corner
  whose code is neither all-outside nor all-inside is a surface element; its area (mm², 2-D:
  its contour length in mm) is that of the marching-cubes triangles of its code, each
  triangle's area vector scaled by the spacing (the x0 component by ``s1 s2`` and so on).
* **Distances** go from each surface element of one mask to the nearest surface element of the
  other: exact Euclidean distances in mm, in both directions, the numbers of
  ``scipy.ndimage.distance_transform_edt(sampling=spacing)`` on the corner grid (what the
  package computes).
* ``hd95``: in each direction, the first distance (in increasing order) at which the
  cumulative area fraction reaches 0.95; the larger of the two. ``assd``: the mean of the two
  area-weighted mean distances. ``nsd`` (normalised surface Dice at ``tolerance`` mm): the
  area within the tolerance (a distance equal to it counts) in both directions over both
  surfaces' total area. ``dice``, ``iou``: of voxel counts; ``volume_gt``,
  ``volume_pred``: voxel counts times the voxel volume (mm³; 2-D: mm²).
* Empty masks: both empty -> every metric NaN (undefined); one empty -> ``dice``, ``iou``,
  ``nsd`` 0 and ``hd95``, ``assd`` +inf. (DeepMind's package returns NaN for the ASSD
  then, a 0/0, and +inf for the HD95 of two empty masks.)

What makes it fast, for the same numbers: each label is cropped to the bounding box of both
masks plus one voxel (every surface element lies inside it, so the distances are the same as
on the whole volume); the bounding boxes of all labels come from one pass over each volume
(the flat indices of its non-zero voxels, grouped by label); the neighbourhood codes are three
shifted sums of the cropped boolean mask (no convolution); the distances are looked up only
for surface elements (a k-d tree of the other surface's elements, queried for the elements
not on it, the distance then computed from the integer offset exactly as the distance
transform computes it) instead of a distance transform of the whole crop; the per-element
sort is NumPy's, not Python's; no array the size of the whole volume is made per label.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from segeval.errors import bad_value

#: The seven numbers of one label of one case, in this order.
KEYS = ("dice", "iou", "hd95", "assd", "nsd", "volume_gt", "volume_pred")
#: The fraction of the surface area whose distance the robust Hausdorff distance reports.
PERCENTILE = 0.95
#: The most grid offsets looked at around a surface element before the k-d tree takes over.
MAX_OFFSETS = 256

# For each 3-D neighbourhood code c < 128 (code 255 - c has the same surface), the area vectors
# of its marching-cubes triangles, each as three digits |component| x 8 (a unit cube's corner
# triangle is "111": the vector (1/8, 1/8, 1/8)). These are the triangles of DeepMind
# surface-distance's lookup table (lookup_tables._NEIGHBOUR_CODE_TO_NORMALS, Apache-2.0),
# written in this form; tests/core/test_surface.py checks that the areas are the package's for
# many spacings. Signs do not matter: only each vector's length is used.
_TRIANGLES_X8: tuple[str, ...] = (
    '', '111', '111', '220 220', '111', '202 202', '111 111', '400 222 111', '111', '111 111',
    '202 202', '400 222 111', '220 220', '400 222 111', '400 222 111', '400 400', '111',
    '022 022', '111 111', '040 222 111', '111 111', '004 222 111', '111 111 111',
    '111 222 222 111', '111 111', '022 022 111', '202 202 111', '111 333 022 202', '111 220 220',
    '333 022 111 220', '400 111 222 111', '400 111 222', '111', '111 111', '022 022',
    '040 111 222', '111 111', '111 202 202', '022 022 111', '333 022 111 202', '111 111',
    '111 111 111', '004 222 111', '222 222 111 111', '111 220 220', '400 222 111 111',
    '022 333 111 220', '400 222 111', '220 220', '040 222 111', '040 111 222', '040 040',
    '220 220 111', '333 202 111 220', '111 040 222 111', '040 222 111', '111 220 220',
    '040 222 111 111', '333 220 111 202', '040 222 111', '220 220 220 220', '220 220 111',
    '111 220 220', '220 220', '111', '111 111', '111 111', '111 220 220', '022 022',
    '004 222 111', '022 022 111', '333 022 111 220', '111 111', '111 111 111', '111 202 202',
    '400 222 111 111', '040 222 111', '222 222 111 111', '202 333 022 111', '400 222 111',
    '202 202', '004 222 111', '111 202 202', '202 333 220 111', '004 222 111', '004 004',
    '111 111 222 004', '111 222 004', '202 202 111', '004 222 111 111', '202 202 202 202',
    '111 202 202', '202 333 220 111', '004 222 111', '111 202 202', '202 202', '111 111',
    '111 111 111', '111 022 022', '040 111 222 111', '022 022 111', '004 222 111 111',
    '022 022 022 022', '022 022 111', '111 111 111', '111 111 111 111', '004 222 111 111',
    '111 111 111', '040 222 111 111', '111 111 111', '022 022 111', '111 111', '400 222 111',
    '222 111 222 111', '333 022 111 202', '040 222 111', '333 220 022 111', '111 222 004',
    '111 022 022', '022 022', '400 222 111 111', '111 111 111', '202 202 111', '111 111',
    '220 220 111', '111 111', '111 111', '111',
)
assert len(_TRIANGLES_X8) == 128


@functools.lru_cache(maxsize=128)
def element_areas(spacing: tuple[float, ...]) -> np.ndarray:
    """The area (mm²) of the surface element of each 3-D neighbourhood code (256 float64), or
    the contour length (mm) of each 2-D code (16), for voxels of ``spacing`` mm."""
    if len(spacing) == 2:
        return _contour_lengths(spacing)
    s0, s1, s2 = (float(s) for s in spacing)
    scale = np.array([s1 * s2, s0 * s2, s0 * s1]) / 8.0
    half = np.zeros(128)
    for code, text in enumerate(_TRIANGLES_X8):
        for tri in text.split():
            v = np.array([int(ch) for ch in tri], np.float64) * scale
            half[code] += math.sqrt(float(v[0] ** 2 + v[1] ** 2 + v[2] ** 2))
    return np.concatenate([half, half[::-1]])


def _contour_lengths(spacing: tuple[float, ...]) -> np.ndarray:
    """Marching squares: bit 3 - (2 a + b) of a 2-D code is the pixel at offset (a, b) of the
    2x2 neighbourhood. One or three pixels inside: a cut corner (half the pixel diagonal); two
    side by side along axis 1: a segment of s1 (along axis 0: s0); two on a diagonal: two cut
    corners."""
    s0, s1 = (float(s) for s in spacing)
    half_diagonal = 0.5 * math.sqrt(s0 * s0 + s1 * s1)
    out = np.zeros(16)
    for code in range(16):
        inside = [(a, b) for a in (0, 1) for b in (0, 1) if code >> (3 - (2 * a + b)) & 1]
        if len(inside) in (1, 3):
            out[code] = half_diagonal
        elif len(inside) == 2:
            (a0, b0), (a1, b1) = inside
            out[code] = s1 if a0 == a1 else s0 if b0 == b1 else 2 * half_diagonal
    return out


def corner_codes(mask: np.ndarray) -> np.ndarray:
    """The neighbourhood code of every corner of a zero-padded boolean mask (``uint8``, one
    less along every axis): bit ``7 - (4 a + 2 b + c)`` (2-D: ``3 - (2 a + b)``) is the voxel
    at offset ``(a, b, c)`` from the corner's lower neighbour, as in DeepMind's kernel."""
    code = mask.view(np.uint8)
    for axis in range(mask.ndim - 1, -1, -1):  # the last axis is the lowest bit
        shift = np.uint8(1 << (mask.ndim - 1 - axis))
        lo = [slice(None)] * mask.ndim
        hi = [slice(None)] * mask.ndim
        lo[axis], hi[axis] = slice(None, -1), slice(1, None)
        code = (code[tuple(lo)] << shift) | code[tuple(hi)]
    return code


def _directed(distances: np.ndarray, areas: np.ndarray) -> tuple[float, float]:
    """The area-weighted 95th percentile and mean of one direction's distances (DeepMind's
    order: by distance, ties by area; the percentile is the first distance whose cumulative
    area fraction reaches :data:`PERCENTILE`)."""
    order = np.lexsort((areas, distances))
    d, a = distances[order], areas[order]
    total = np.sum(a)
    k = int(np.searchsorted(np.cumsum(a) / total, PERCENTILE))
    return float(d[min(k, d.size - 1)]), float(np.sum(d * a) / total)


def surface_distances(gt: np.ndarray, pred: np.ndarray, spacing: tuple[float, ...]
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(d_gt_to_pred, areas_gt, d_pred_to_gt, areas_pred)`` for two non-empty boolean masks
    that are zero on their border (a padded crop): each surface element's distance (mm) to the
    nearest surface element of the other mask and its area (mm², 2-D: mm), in corner-grid
    order."""
    table = element_areas(spacing)
    full = 255 if gt.ndim == 3 else 15
    code_g, code_p = corner_codes(gt), corner_codes(pred)
    surf_g = (code_g != 0) & (code_g != full)
    surf_p = (code_p != 0) & (code_p != full)
    at_g, at_p = np.nonzero(surf_g), np.nonzero(surf_p)
    d_gp = _nearest(at_g, surf_p, at_p, spacing)
    d_pg = _nearest(at_p, surf_g, at_g, spacing)
    return d_gp, table[code_g[at_g]], d_pg, table[code_p[at_p]]


@functools.lru_cache(maxsize=64)
def _shells(spacing: tuple[float, ...]) -> tuple[tuple[int, ...],
                                                  list[tuple[float, np.ndarray]]]:
    """The non-zero grid offsets within a reach of 1.5 times the largest spacing (mm), at most
    the nearest :data:`MAX_OFFSETS` (whole shells: a very anisotropic spacing would otherwise
    give thousands), grouped by their distance (as :func:`_offset_distances` computes it),
    nearest first: ``(margin per axis, [(distance, offsets (k, ndim)), ...])``. Every offset
    not farther than the last group's distance is in some group."""
    reach = 1.5 * max(spacing)
    margin = tuple(math.floor(reach / s) for s in spacing)
    grid = np.stack(np.meshgrid(*[np.arange(-m, m + 1) for m in margin], indexing="ij"),
                    axis=-1).reshape(-1, len(spacing))
    dist = _offset_distances(grid, spacing)
    keep = (dist <= reach) & (dist > 0)
    grid, dist = grid[keep], dist[keep]
    order = np.argsort(dist, kind="stable")
    grid, dist = grid[order], dist[order]
    values, starts = np.unique(dist, return_index=True)
    bounds = [*starts.tolist(), len(dist)]
    groups = []
    for k, v in enumerate(values):
        if bounds[k + 1] > MAX_OFFSETS and groups:
            break
        groups.append((float(v), grid[bounds[k]:bounds[k + 1]]))
    return margin, groups


def _offset_distances(offsets: np.ndarray, spacing: Sequence[float]) -> np.ndarray:
    """The length (mm) of integer grid offsets ``(n, ndim)`` as
    ``scipy.ndimage.distance_transform_edt(sampling=spacing)`` computes a distance: each offset
    times its spacing, squared, added over the axes in order, square root."""
    off = offsets.astype(np.float64)
    d2 = (off[:, 0] * spacing[0]) ** 2
    for axis in range(1, len(spacing)):
        d2 += (off[:, axis] * spacing[axis]) ** 2
    return np.sqrt(d2)


def _nearest(points: tuple[np.ndarray, ...], target: np.ndarray,
             targets: tuple[np.ndarray, ...], spacing: tuple[float, ...]) -> np.ndarray:
    """The Euclidean distance (mm) from each of ``points`` (corner-grid indices, one array per
    axis) to the nearest element of the boolean grid ``target`` (whose elements are
    ``targets``), the number the distance transform gives (:func:`_offset_distances` of the
    offset to the nearest target).

    Near distances are found by looking at the offsets in order of distance (0, then the
    nearest shell, ...) up to 1.5 voxels of the coarsest axis: the first shell that holds a
    target gives the distance, exactly. Points with no target that near (few, for a
    prediction near its ground truth) go to a k-d tree of all targets, and their distance is
    computed from the integer offset to the target found."""
    out = np.zeros(points[0].size)
    margin, groups = _shells(spacing)
    shape = tuple(n + 2 * m for n, m in zip(target.shape, margin, strict=True))
    padded = np.zeros(shape, bool)
    padded[tuple(slice(m, m + n) for m, n in zip(margin, target.shape, strict=True))] = target
    flat = padded.ravel()
    steps = np.array([st // padded.itemsize for st in padded.strides], np.int64)
    where = np.zeros(points[0].size, np.int64)
    for axis, p in enumerate(points):
        where += (p.astype(np.int64) + margin[axis]) * steps[axis]
    todo = np.flatnonzero(~flat[where])  # not itself a target: distance 0 otherwise
    where = where[todo]
    for distance, offsets in groups:
        if not todo.size:
            return out
        hit = np.zeros(todo.size, bool)
        for delta in (offsets @ steps).tolist():
            hit |= flat[where + delta]
        if hit.any():
            out[todo[hit]] = distance
            todo, where = todo[~hit], where[~hit]
    if todo.size:
        from scipy.spatial import cKDTree

        scale = np.asarray(spacing, np.float64)
        src = np.stack([p[todo] for p in points], axis=1)
        dst = np.stack(targets, axis=1)
        tree = cKDTree(dst * scale, balanced_tree=False, compact_nodes=False)
        _, nearest = tree.query(src * scale)
        out[todo] = _offset_distances(dst[nearest] - src, spacing)
    return out


def _row(g: np.ndarray, p: np.ndarray, spacing: tuple[float, ...], tolerance: float,
         n_g: int, n_p: int, inter: int) -> np.ndarray:
    """The seven numbers (:data:`KEYS`) of one label from its padded crops and counts."""
    voxel = math.prod(spacing)
    out = np.empty(7)
    out[5], out[6] = n_g * voxel, n_p * voxel
    if n_g == 0 and n_p == 0:
        out[:5] = np.nan
    elif n_g == 0 or n_p == 0:
        out[:5] = (0.0, 0.0, math.inf, math.inf, 0.0)
    else:
        out[0] = 2.0 * inter / (n_g + n_p)
        out[1] = inter / (n_g + n_p - inter)
        d_gp, a_g, d_pg, a_p = surface_distances(g, p, spacing)
        hd_g, mean_g = _directed(d_gp, a_g)
        hd_p, mean_p = _directed(d_pg, a_p)
        out[2] = max(hd_g, hd_p)
        out[3] = (mean_g + mean_p) / 2.0
        out[4] = ((np.sum(a_g[d_gp <= tolerance]) + np.sum(a_p[d_pg <= tolerance]))
                  / (np.sum(a_g) + np.sum(a_p)))
    return out


def present_labels(volume: np.ndarray) -> set[int]:
    """The non-zero values of an integer volume."""
    return set(_find(volume))


def _find(volume: np.ndarray) -> dict[int, tuple[slice, ...]]:
    """The bounding box (slices) of every non-zero value of an integer volume, by value, from
    one pass over it: the flat indices of the non-zero voxels, grouped by value (the voxels of
    a label are few next to the volume; the array is read in its memory order, C or
    Fortran, without a copy)."""
    if volume.dtype == bool:
        volume = volume.view(np.uint8)
    if volume.flags.c_contiguous:
        order = "C"
    elif volume.flags.f_contiguous:
        order = "F"
    else:
        volume, order = np.ascontiguousarray(volume), "C"
    flat = volume.ravel(order=order)
    index = np.flatnonzero(flat != 0)
    if index.size == 0:
        return {}
    values = flat[index]
    if values.dtype.kind == "u" and values.dtype.itemsize <= 2:
        seen = np.zeros(1 << (8 * values.dtype.itemsize), bool)
        seen[values] = True
        labels = np.flatnonzero(seen)
    else:
        labels = np.unique(values)
    axes = list(range(volume.ndim)) if order == "F" else list(range(volume.ndim))[::-1]
    out = {}
    for label in labels.tolist():
        at = index if labels.size == 1 else index[values == label]
        box: list[slice] = [slice(0)] * volume.ndim
        step = 1
        for axis in axes[:-1]:  # fastest-varying axes: coordinates from the flat indices
            c = (at // step) % volume.shape[axis] if step > 1 else at % volume.shape[axis]
            box[axis] = slice(int(c.min()), int(c.max()) + 1)
            step *= volume.shape[axis]
        box[axes[-1]] = slice(int(at[0] // step), int(at[-1] // step) + 1)  # sorted indices
        out[int(label)] = tuple(box)
    return out


def _padded(volume: np.ndarray, box: tuple[slice, ...], label: int) -> np.ndarray:
    """``volume[box] == label`` with one layer of ``False`` around it."""
    out = np.zeros(tuple(s.stop - s.start + 2 for s in box), bool)
    out[(slice(1, -1),) * volume.ndim] = volume[box] == label
    return out


def case_metrics(gt: np.ndarray, pred: np.ndarray | None, spacing: Sequence[float],
                 labels: Sequence[int] | None = None, tolerance: float = 1.0
                 ) -> tuple[tuple[int, ...], np.ndarray]:
    """Every label's seven numbers (:data:`KEYS`) for one case.

    ``gt`` and ``pred``: integer label volumes of one shape (2-D or 3-D), checked by the
    caller; ``pred=None`` is an empty prediction. ``spacing``: the voxel size in mm along each
    axis of the arrays. ``labels``: the foreground labels to score (default: every non-zero
    value of either volume). Returns ``(labels, values)``, ``values`` of shape
    ``(len(labels), 7)`` float64.
    """
    spacing = tuple(float(s) for s in spacing)
    if pred is None:
        pred = np.zeros((1,) * gt.ndim, gt.dtype)
    box_g, box_p = _find(gt), _find(pred)  # every label's box, one pass over each volume
    if labels is None:
        labels = sorted(set(box_g) | set(box_p))
    labels = tuple(int(v) for v in labels)
    values = np.empty((len(labels), 7))
    for k, lab in enumerate(labels):
        boxes = [b for b in (box_g.get(lab), box_p.get(lab)) if b is not None]
        if not boxes:
            values[k] = _row(gt, gt, spacing, tolerance, 0, 0, 0)
            continue
        box = tuple(slice(min(b[a].start for b in boxes), max(b[a].stop for b in boxes))
                    for a in range(gt.ndim))
        g = _padded(gt, box, lab) if lab in box_g else np.zeros(1, bool)
        p = _padded(pred, box, lab) if lab in box_p else np.zeros(1, bool)
        n_g, n_p = int(np.count_nonzero(g)), int(np.count_nonzero(p))
        inter = int(np.count_nonzero(g & p)) if n_g and n_p else 0
        values[k] = _row(g, p, spacing, tolerance, n_g, n_p, inter)
    return labels, values


def surface_metrics(pred: Any, gt: Any, spacing: Sequence[float], tolerance: float = 1.0,
                    label: int = 1) -> dict[str, float]:
    """Dice, IoU, HD95, ASSD, NSD and both volumes of one label of two label arrays.

    ``pred``, ``gt``: integer (or boolean) NumPy arrays of one shape, 2-D or 3-D; ``spacing``:
    the voxel size in mm along each axis of the arrays (positive); ``tolerance``: the NSD
    tolerance in mm (>= 0); ``label``: the foreground value (other values are background).
    Returns ``{"dice", "iou", "hd95", "assd", "nsd", "volume_gt", "volume_pred"}`` as floats
    (distances in mm, volumes in mm³, 2-D: mm²), with the conventions of the module docstring:
    both masks empty -> NaN everywhere but the volumes; one empty -> ``dice``, ``iou``, ``nsd``
    0 and ``hd95``, ``assd`` +inf.

    >>> import numpy as np
    >>> gt = np.zeros((8, 8, 8), np.uint8); gt[2:6, 2:6, 2:6] = 1
    >>> pred = np.zeros_like(gt); pred[2:6, 2:6, 3:7] = 1
    >>> m = surface_metrics(pred, gt, spacing=(1.0, 1.0, 2.0))
    >>> round(m["dice"], 4), m["volume_gt"]
    (0.75, 128.0)
    """
    arrays = {}
    for name, value in (("pred", pred), ("gt", gt)):
        if (not isinstance(value, np.ndarray) or value.dtype.kind not in "uib"
                or value.ndim not in (2, 3)):
            raise bad_value(name, "a 2-D or 3-D integer or boolean NumPy array", value,
                            function="surface_metrics")
        arrays[name] = value
    if arrays["pred"].shape != arrays["gt"].shape:
        raise bad_value("pred", f"an array of the shape of gt {arrays['gt'].shape}", pred,
                        function="surface_metrics")
    ndim = arrays["gt"].ndim
    if (isinstance(spacing, str | bytes) or not isinstance(spacing, Sequence | np.ndarray)
            or len(spacing) != ndim
            or not all(isinstance(s, int | float | np.number) and not isinstance(s, bool)
                       and math.isfinite(s) and s > 0 for s in spacing)):
        raise bad_value("spacing", f"{ndim} positive finite numbers (mm per voxel, one per "
                        f"axis)", spacing, function="surface_metrics")
    if (isinstance(tolerance, bool) or not isinstance(tolerance, int | float | np.number)
            or not math.isfinite(tolerance) or tolerance < 0):
        raise bad_value("tolerance", "a finite number of mm >= 0", tolerance,
                        function="surface_metrics")
    if isinstance(label, bool) or not isinstance(label, int | np.integer):
        raise bad_value("label", "an integer label value", label, function="surface_metrics")
    g = arrays["gt"].view(np.uint8) if arrays["gt"].dtype == bool else arrays["gt"]
    p = arrays["pred"].view(np.uint8) if arrays["pred"].dtype == bool else arrays["pred"]
    _, values = case_metrics(g, p, spacing, (int(label),), float(tolerance))
    return dict(zip(KEYS, (float(v) for v in values[0]), strict=True))
