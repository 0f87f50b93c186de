"""Numba version of :func:`segeval.core.kernels.cityscapes.count_cityscapes`.

One loop over the pixels: a (ground truth, raw prediction) byte-pair histogram increment for
every pixel, and for instance pixels three more (instance size, own-label hit, category hit)
in 65536-entry tables indexed by the instanceIds value. Importing this module imports Numba;
the first call loads the compiled loop from Numba's on-disk cache.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from segeval.core.kernels.cityscapes import (
    INSTANCE_OFFSET,
    CityscapesCounts,
    compact,
    instance_tables,
)
from segeval.core.kernels.confusion_jit import _histogram_u8


@njit(cache=True, nogil=True)
def _count_with_instances(gt, pred, inst, pred_lut, category_of, label_of, inst_cat,
                          hist, size, tp, cat_tp):  # pragma: no cover - compiled
    for i in range(gt.size):
        p = pred[i]
        hist[(np.int64(gt[i]) << 8) | p] += 1
        k = inst[i]
        if k > INSTANCE_OFFSET:
            q = pred_lut[p]
            size[k] += 1
            if q == label_of[k]:
                tp[k] += 1
            if category_of[q] == inst_cat[k]:
                cat_tp[k] += 1


def count_cityscapes_jit(
    gt: np.ndarray,
    pred: np.ndarray,
    instances: np.ndarray | None,
    pred_lut: np.ndarray,
    category_of: np.ndarray,
) -> CityscapesCounts:
    """See :func:`segeval.core.kernels.cityscapes.count_cityscapes`."""
    g = np.ascontiguousarray(gt).reshape(-1)
    p = np.ascontiguousarray(pred).reshape(-1)
    if instances is None:
        empty = np.zeros(0, np.int64)
        return CityscapesCounts(_histogram_u8(g, p).reshape(256, 256), empty, empty, empty, empty)
    k = np.ascontiguousarray(instances).reshape(-1)
    label_of, inst_cat = instance_tables(category_of)
    hist = np.zeros(65536, np.int64)
    size = np.zeros(65536, np.int64)
    tp = np.zeros(65536, np.int64)
    cat_tp = np.zeros(65536, np.int64)
    _count_with_instances(g, p, k, np.ascontiguousarray(pred_lut, np.uint8),
                          np.ascontiguousarray(category_of, np.uint8), label_of, inst_cat,
                          hist, size, tp, cat_tp)
    return CityscapesCounts(hist.reshape(256, 256), *compact(size, tp, cat_tp))
