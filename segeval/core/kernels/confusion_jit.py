"""Numba kernels: one pass over the pixels, one table increment per pixel, no temporaries.

Importing this module imports Numba (about 0.35 s) and the first call of each dtype pair loads
the compiled code from Numba's on-disk cache (about 0.5 s; 1.5 s the very first time). The
dispatcher in :mod:`segeval.core.kernels` therefore sends small inputs to the NumPy reference.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from segeval.core.kernels import PixelCounts


@njit(cache=True, nogil=True)
def _histogram_u8(gt, pred):  # pragma: no cover - compiled
    # Branch-free: every (gt, pred) byte pair has its own bin, ignore and invalid values included;
    # they are sorted out afterwards on the 256 x 256 table, not per pixel.
    hist = np.zeros(65536, np.int64)
    for i in range(gt.size):
        hist[(np.int64(gt[i]) << 8) | pred[i]] += 1
    return hist


@njit(cache=True, nogil=True)
def _count_general(gt, pred, c, ignore, use_ignore, table):  # pragma: no cover - compiled
    bad_gt_count = 0
    bad_gt_value = 0
    bad_pred_seen = False
    bad_pred_value = 0
    for i in range(gt.size):
        g = np.int64(gt[i])
        if use_ignore and g == ignore:
            continue
        if g < 0 or g >= c:
            if bad_gt_count == 0 or g < bad_gt_value:
                bad_gt_value = g
            bad_gt_count += 1
            continue
        p = np.int64(pred[i])
        if p < 0 or p >= c:
            if not bad_pred_seen or p < bad_pred_value:
                bad_pred_seen = True
                bad_pred_value = p
            p = c
        table[g, p] += 1
    return bad_gt_count, bad_gt_value, bad_pred_seen, bad_pred_value


def _flat(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    elif a.dtype == np.uint64:
        a = a.astype(np.int64)  # uint64 vs int64 comparisons would go through float64 in Numba
    return np.ascontiguousarray(a).reshape(-1)


def count_pixels_jit(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int | None
) -> PixelCounts:
    """See :func:`segeval.core.kernels.count_pixels`."""
    c = num_classes
    g, p = _flat(gt), _flat(pred)
    if g.dtype == np.uint8 and p.dtype == np.uint8 and c <= 256:
        return _from_u8_histogram(_histogram_u8(g, p).reshape(256, 256), c, ignore_index)
    table = np.zeros((c, c + 1), np.int64)
    ignore = 0 if ignore_index is None else int(ignore_index)
    n_bad_gt, bad_gt, bad_pred_seen, bad_pred = _count_general(
        g, p, c, ignore, ignore_index is not None, table
    )
    return PixelCounts(
        table,
        int(n_bad_gt),
        int(bad_gt) if n_bad_gt else None,
        int(bad_pred) if bad_pred_seen else None,
    )


def _from_u8_histogram(hist: np.ndarray, c: int, ignore_index: int | None) -> PixelCounts:
    """Sort a 256 x 256 (gt, pred) byte histogram into :class:`PixelCounts`."""
    if ignore_index is not None and 0 <= ignore_index < 256:
        hist[ignore_index] = 0
    table = np.empty((c, c + 1), np.int64)
    table[:, :c] = hist[:c, :c]
    table[:, c] = hist[:c, c:].sum(axis=1)
    bad_gt_rows = hist[c:].sum(axis=1)
    bad_gt = np.flatnonzero(bad_gt_rows)
    bad_pred = np.flatnonzero(hist[:c, c:].sum(axis=0))
    return PixelCounts(
        table,
        int(bad_gt_rows.sum()),
        int(bad_gt[0]) + c if bad_gt.size else None,
        int(bad_pred[0]) + c if bad_pred.size else None,
    )
