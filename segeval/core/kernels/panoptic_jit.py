"""The compiled pass of :func:`segeval.core.panoptic.intersections` (Numba, cached on disk).

One load-increment-store per pixel: each id is mapped through its lookup table (ground truth:
``uint16`` segment index << 8, prediction: ``uint8`` segment index; ids past the table's end
take its last entry, "unknown") and the OR of the two is the pair's cell in a flat 256 x 256
count table. Imported when :func:`segeval.core.kernels.use_compiled` chooses the JIT path,
or by :func:`segeval.core.kernels.warm`.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def pair_counts(gt: np.ndarray, pred: np.ndarray, lut_gt: np.ndarray, lut_pred: np.ndarray,
                out: np.ndarray) -> bool:  # pragma: no cover - compiled
    """Add the pairs of two flat id maps to ``out`` (65536 int64); ``False`` (and ``out``
    partly filled) as soon as an id is negative."""
    last = lut_gt.size - 1
    for i in range(gt.size):
        g = gt[i]
        p = pred[i]
        if g < 0 or p < 0:
            return False
        if g > last:
            g = last
        if p > last:
            p = last
        out[lut_gt[g] | lut_pred[p]] += 1
    return True
