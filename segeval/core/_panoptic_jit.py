"""The compiled pass of :func:`segeval.core.panoptic.intersections` (Numba, cached on disk).

One load-increment-store per pixel: each id is mapped to its segment index through a 2^24
``uint8`` table (0 VOID, 1..n segments, 255 unknown) and the (ground truth, prediction) pair
is counted in a 256 x 256 table. Imported only when the JIT path is chosen.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def pair_counts(gt: np.ndarray, pred: np.ndarray, lut_gt: np.ndarray, lut_pred: np.ndarray,
                out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Add the pairs of two flat id maps to ``out`` (256 x 256 int64); ``False`` (and
    ``out`` partly filled) as soon as an id falls outside the tables."""
    n = lut_gt.size
    for i in range(gt.size):
        g = gt[i]
        p = pred[i]
        if g < 0 or g >= n or p < 0 or p >= n:
            return False
        out[lut_gt[g], lut_pred[p]] += 1
    return True
