"""The NumPy reference kernel: the definition of what the other kernels count.

It works in chunks of :data:`CHUNK` pixels so that its int64 temporaries stay a few MiB however
large the image or batch is.
"""

from __future__ import annotations

import numpy as np

from segeval.core.kernels import PixelCounts

CHUNK = 1 << 18


def count_pixels_reference(
    pred: np.ndarray, gt: np.ndarray, num_classes: int, ignore_index: int | None
) -> PixelCounts:
    """See :func:`segeval.core.kernels.count_pixels`."""
    c = num_classes
    g_all, p_all = gt.reshape(-1), pred.reshape(-1)
    flat = np.zeros(c * (c + 1), np.int64)
    bad_gt_count, bad_gt_value, bad_pred_value = 0, None, None
    for start in range(0, g_all.size, CHUNK):
        g = g_all[start : start + CHUNK].astype(np.int64)
        p = p_all[start : start + CHUNK].astype(np.int64)
        if ignore_index is not None:
            keep = g != ignore_index
            g, p = g[keep], p[keep]
        bad_g = (g < 0) | (g >= c)
        if bad_g.any():
            bad_gt_count += int(bad_g.sum())
            bad_gt_value = _smallest(bad_gt_value, g[bad_g])
            g, p = g[~bad_g], p[~bad_g]
        bad_p = (p < 0) | (p >= c)
        if bad_p.any():
            bad_pred_value = _smallest(bad_pred_value, p[bad_p])
            p[bad_p] = c
        flat += np.bincount(g * (c + 1) + p, minlength=c * (c + 1))
    return PixelCounts(flat.reshape(c, c + 1), bad_gt_count, bad_gt_value, bad_pred_value)


def _smallest(current: int | None, values: np.ndarray) -> int:
    low = int(values.min())
    return low if current is None else min(current, low)
