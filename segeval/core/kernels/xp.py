"""Counting written once against an array namespace: NumPy on the CPU, CuPy on a GPU.

:func:`count_pixels_xp` returns exactly what the NumPy reference kernel returns (a
:class:`~segeval.core.kernels.PixelCounts`, host int64), for arrays of either library; the
namespace is taken from the input's type (:func:`namespace_of`), so CuPy arrays stay on their
device and only the small table (``C x (C + 1)`` plus four numbers) comes back to the host, in
one transfer at the end.

It works in chunks and never compacts arrays by boolean indexing (that would make CuPy wait for
the GPU at every chunk): every pixel gets a bin, in a combined index of ``C (C + 1) + 2`` bins:

* ``g (C + 1) + p`` for a ground-truth class ``g`` and a predicted class ``p``,
* ``g (C + 1) + C`` for a prediction outside ``[0, C)`` on a counted pixel,
* ``C (C + 1)`` for a ground-truth value that is neither a class nor the ignore index,
* ``C (C + 1) + 1`` for an ignored pixel (dropped at the end).

Values are compared as int64 (uint64 above 2**63 - 1 wrap to negative values, as in every other
kernel). This module imports neither CuPy nor Numba; it is the GPU fallback when the shared-memory
kernel of :mod:`segeval.core.kernels.cuda` cannot be used (too many classes for shared memory, or
Numba's CUDA target unusable on the machine), and the reference the GPU kernel is tested against
where there is a GPU.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np

from segeval.core.kernels import PixelCounts

#: Pixels per chunk: int64 temporaries of a few MiB on the CPU, tens of MiB on a GPU.
CHUNK_CPU = 1 << 18
CHUNK_GPU = 1 << 22

_INT64_MAX = np.iinfo(np.int64).max


def is_cupy_array(x: Any) -> bool:
    """``True`` for a ``cupy.ndarray`` (tested by type name, without importing CuPy)."""
    t = type(x)
    return t.__name__ == "ndarray" and t.__module__.split(".")[0] == "cupy"


def namespace_of(x: Any) -> ModuleType:
    """The array library of ``x``: ``cupy`` for CuPy arrays, else ``numpy``."""
    if is_cupy_array(x):
        import cupy

        return cupy
    return np


def to_host(a: Any) -> np.ndarray:
    """``a`` as a NumPy array (a device-to-host copy for a CuPy array, else no copy)."""
    return a.get() if is_cupy_array(a) else np.asarray(a)


def count_pixels_xp(
    pred: Any, gt: Any, num_classes: int, ignore_index: int | None, *, chunk: int | None = None
) -> PixelCounts:
    """See :func:`segeval.core.kernels.count_pixels`; ``pred`` and ``gt`` are NumPy or CuPy.

    Both must be arrays of the same library and shape (any integer dtype or bool). ``chunk``
    (pixels per step) defaults to :data:`CHUNK_CPU` or :data:`CHUNK_GPU`.
    """
    xp = namespace_of(gt)
    c = num_classes
    nb = c * (c + 1)
    if chunk is None:
        chunk = CHUNK_GPU if xp is not np else CHUNK_CPU
    g_all, p_all = gt.reshape(-1), pred.reshape(-1)
    hist = xp.zeros(nb + 2, xp.int64)
    low = xp.full(2, _INT64_MAX, xp.int64)  # smallest bad gt value, smallest bad prediction
    for start in range(0, g_all.size, chunk):
        g = g_all[start : start + chunk].astype(xp.int64)
        p = p_all[start : start + chunk].astype(xp.int64)
        bad_g = (g < 0) | (g >= c)
        bad_p = (p < 0) | (p >= c)
        if ignore_index is not None:
            ignored = g == ignore_index
            bad_g &= ~ignored
        else:
            ignored = None
        bad_p &= ~bad_g
        if ignored is not None:
            bad_p &= ~ignored
        idx = g * (c + 1) + xp.where(bad_p, c, p)
        idx = xp.where(bad_g, nb, idx)
        if ignored is not None:
            idx = xp.where(ignored, nb + 1, idx)
        hist += xp.bincount(idx, minlength=nb + 2)
        low = xp.minimum(low, xp.stack([xp.where(bad_g, g, _INT64_MAX).min(),
                                        xp.where(bad_p, p, _INT64_MAX).min()]))
    host = to_host(xp.concatenate([hist, low]))  # the only device-to-host transfer
    table = host[:nb].reshape(c, c + 1).copy()
    bad_gt_count = int(host[nb])
    bad_pred_count = int(table[:, c].sum())
    return PixelCounts(
        table,
        bad_gt_count,
        int(host[nb + 2]) if bad_gt_count else None,
        int(host[nb + 3]) if bad_pred_count else None,
    )
