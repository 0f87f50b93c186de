"""Per-image counting kernels: label arrays in, small integer tables out.

One entry point, :func:`count_pixels`, chooses an implementation:

* ``reference`` -- NumPy, chunked so that no temporary exceeds a few MiB whatever the image
  size. It is the definition the other kernels are tested against, and it is used for small
  inputs, where loading the JIT would cost more than it saves.
* ``jit`` -- Numba loops (one load-increment-store per pixel, about the cost of reading the
  bytes): used for inputs of at least :data:`JIT_MIN_PIXELS` pixels, or for any size once the
  JIT is loaded in the process.
* ``cuda`` -- for CuPy arrays (always chosen for them): the shared-memory GPU kernel of
  :mod:`segeval.core.kernels.cuda`; the table comes back to the host.

All return the same integers, always.
"""

from __future__ import annotations

import sys
from typing import NamedTuple

import numpy as np

#: Inputs at least this large (in pixels) go to the JIT kernel even if it is not loaded yet.
JIT_MIN_PIXELS = 1 << 20


class PixelCounts(NamedTuple):
    """What a kernel returns for one image or batch.

    ``table`` is ``(C, C + 1)`` int64: ``table[g, p]`` counts pixels with ground truth ``g`` and
    prediction ``p`` for ``0 <= g, p < C``; ``table[g, C]`` counts pixels of ground truth ``g``
    whose prediction is not a class (outside ``[0, C)``). Pixels whose ground truth is the ignore
    index are not counted anywhere. Ground-truth values outside ``[0, C)`` that are not the ignore
    index are not counted either: ``bad_gt_count`` says how many there were and
    ``bad_gt_value`` is the smallest of them (``None`` when there were none); ``bad_pred_value``
    likewise is the smallest out-of-range prediction on a counted pixel.
    """

    table: np.ndarray
    bad_gt_count: int
    bad_gt_value: int | None
    bad_pred_value: int | None


def count_pixels(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    ignore_index: int | None,
    *,
    kernel: str = "auto",
) -> PixelCounts:
    """Count (ground truth, prediction) pairs of two integer arrays of the same shape.

    ``kernel`` is ``"auto"`` (see the module docstring), ``"reference"``, ``"jit"`` or
    ``"cuda"``. CuPy arrays always go to ``"cuda"``.
    """
    if kernel == "cuda" or type(gt).__module__.startswith("cupy"):
        try:
            from segeval.core.kernels.cuda import count_pixels_cuda
        except ImportError:  # no usable numba.cuda: CuPy's bincount gives the same integers
            from segeval.core.kernels.xp import count_pixels_xp as count_pixels_cuda

        return count_pixels_cuda(pred, gt, num_classes, ignore_index)
    if kernel == "auto":
        loaded = "segeval.core.kernels.confusion_jit" in sys.modules
        kernel = "jit" if loaded or gt.size >= JIT_MIN_PIXELS else "reference"
        if kernel == "jit" and not _jit_available():
            kernel = "reference"
    if kernel == "jit":
        from segeval.core.kernels.confusion_jit import count_pixels_jit

        return count_pixels_jit(pred, gt, num_classes, ignore_index)
    if kernel == "reference":
        from segeval.core.kernels.reference import count_pixels_reference

        return count_pixels_reference(pred, gt, num_classes, ignore_index)
    raise ValueError(
        f"The 'kernel' parameter must be 'auto', 'reference', 'jit' or 'cuda'. "
        f"Got {kernel!r} instead."
    )


def _jit_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba is a dependency; guard for odd platforms
        return False
    return True
