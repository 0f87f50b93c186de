"""The compiled loop of :func:`segeval.core.kernels.cityscapes.count_cityscapes` (which wraps
it); it imports nothing of that module, so that the two form no cycle.

One loop over the pixels: a (ground truth, raw prediction) byte-pair histogram increment for
every pixel, and for instance pixels three more (instance size, own-label hit, category hit)
in 65536-entry tables indexed by the instanceIds value. Importing this module imports Numba;
the first call loads the compiled loop from Numba's on-disk cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from segeval.core.kernels.confusion_jit import _histogram_u8

__all__ = ["_histogram_u8", "count_with_instances"]


@njit(cache=True, nogil=True)
def count_with_instances(gt, pred, inst, offset, pred_lut, category_of, label_of, inst_cat,
                         hist, size, tp, cat_tp):  # pragma: no cover - compiled
    for i in range(gt.size):
        p = pred[i]
        hist[(np.int64(gt[i]) << 8) | p] += 1
        k = inst[i]
        if k > offset:
            q = pred_lut[p]
            size[k] += 1
            if q == label_of[k]:
                tp[k] += 1
            if category_of[q] == inst_cat[k]:
                cat_tp[k] += 1
