"""Per-image counting kernels, and the one rule that decides when compiled code runs.

One entry point, :func:`count_pixels`, counts (ground truth, prediction) pairs with one of:

* ``compiled`` -- C loops (one load-increment-store per pixel, about the cost of reading the
  bytes, the GIL released) from the extension module :mod:`segeval.core.kernels.c_count`, built
  by the package's own build (``pip install`` compiles it; ``setup.py``);
* ``reference`` -- NumPy, chunked so that no temporary exceeds a few MiB whatever the image
  size. It is the definition the other kernels are tested against, and what runs where the
  extension could not be built;
* ``cuda`` -- for CuPy arrays (always chosen for them): the shared-memory GPU kernel of
  :mod:`segeval.core.kernels.cuda`; the table comes back to the host.

All return the same integers, always.

Which kernel: one policy
------------------------
The compiled kernels live in the extension modules :data:`COMPILED_MODULES`: the confusion
counts, the panoptic pair counts, the Cityscapes counts and value counts
(:mod:`~segeval.core.kernels.c_count`), the PNG row un-filtering, the fused Cityscapes pass and
the instance-mask overlaps (:mod:`~segeval.core.kernels.c_png`). They are compiled ahead of
time, so loading them costs about a millisecond: every caller uses them whenever
:func:`compiled_available` says they import, at every size, and nothing is warmed up before a
run. Where they do not import (a platform the build could not compile for), every caller falls
back to the NumPy reference or to Pillow, with one :class:`RuntimeWarning` per process, never
an error. Only speed depends on this choice: every compiled kernel gives the integers its
reference gives, bit for bit. An explicit ``kernel=`` (or ``decoder="fast"``/``"pillow"``)
bypasses it.
"""

from __future__ import annotations

import functools
import importlib
import warnings
from typing import Any, NamedTuple

import numpy as np

#: The compiled extension modules (built by ``setup.py`` from ``c_*.pyx`` and ``native/*.c``).
COMPILED_MODULES: tuple[str, ...] = ("segeval.core.kernels.c_count",
                                      "segeval.core.kernels.c_png")


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


# --------------------------------------------------------------------------- the policy


@functools.cache
def compiled_available() -> bool:
    """THE rule: whether the compiled kernels (:data:`COMPILED_MODULES`) import here. Where
    they do not, warns once (a :class:`RuntimeWarning` naming the reason) and returns
    ``False``: every caller then takes the NumPy reference or Pillow, with the same results."""
    try:
        for name in COMPILED_MODULES:
            importlib.import_module(name)
    except ImportError as e:
        warnings.warn(f"segeval's compiled kernels are not available ({e}); using the NumPy "
                      f"reference kernels and Pillow instead (same results, slower). "
                      f"Reinstall segeval with a C compiler to build them.",
                      RuntimeWarning, stacklevel=2)
        return False
    return True


# --------------------------------------------------------------------------- the kernels


def count_pixels(
    pred: np.ndarray,
    gt: np.ndarray,
    num_classes: int,
    ignore_index: int | None,
    *,
    kernel: str = "auto",
) -> PixelCounts:
    """Count (ground truth, prediction) pairs of two integer arrays of the same shape.

    ``kernel`` is ``"auto"`` (``"compiled"`` where :func:`compiled_available`, else
    ``"reference"``), ``"reference"``, ``"compiled"`` or ``"cuda"``. CuPy arrays always go
    to ``"cuda"``.
    """
    if gt.dtype == np.uint64 or pred.dtype == np.uint64:
        return _count_uint64(pred, gt, num_classes, ignore_index, kernel)
    if kernel == "cuda" or type(gt).__module__.startswith("cupy"):
        try:
            from segeval.core.kernels.cuda import count_pixels_cuda
        except ImportError:  # no usable numba.cuda: CuPy's bincount gives the same integers
            from segeval.core.kernels.xp import count_pixels_xp as count_pixels_cuda

        return count_pixels_cuda(pred, gt, num_classes, ignore_index)
    if kernel == "auto":
        kernel = "compiled" if compiled_available() else "reference"
    if kernel == "compiled":
        return _count_compiled(pred, gt, num_classes, ignore_index)
    if kernel == "reference":
        from segeval.core.kernels.reference import count_pixels_reference

        return count_pixels_reference(pred, gt, num_classes, ignore_index)
    from segeval.errors import bad_value

    raise bad_value("kernel", "'auto', 'reference', 'compiled' or 'cuda'", kernel)


#: dtypes the compiled general loop reads as they are; other integer arrays are widened first
_COMPILED_DTYPES = frozenset(np.dtype(t) for t in
                             ("uint8", "uint16", "int16", "int32", "uint32", "int64"))


def _compiled_flat(a: np.ndarray) -> np.ndarray:
    """A flat C-contiguous array of a dtype the compiled loops take: bool as uint8, int8 as
    int16, uint64 as int64 (its values of 2^63 and more wrap negative, see
    :func:`_count_uint64`)."""
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    elif a.dtype not in _COMPILED_DTYPES:
        a = a.astype(np.int16 if a.dtype == np.int8 else np.int64)
    return np.ascontiguousarray(a).reshape(-1)


def _count_compiled(pred: np.ndarray, gt: np.ndarray, num_classes: int,
                    ignore_index: int | None) -> PixelCounts:
    """:func:`count_pixels` with the C loops of :mod:`segeval.core.kernels.c_count`: the
    branch-free byte-pair histogram for two 8-bit maps of at most 256 classes, else the general
    loop."""
    from segeval.core.kernels import c_count

    c = num_classes
    g, p = _compiled_flat(gt), _compiled_flat(pred)
    if g.size != p.size:
        raise ValueError(f"gt and pred differ in size: {g.size} and {p.size} pixels")
    if g.dtype == np.uint8 and p.dtype == np.uint8 and c <= 256:
        hist = np.zeros(65536, np.int64)
        c_count.histogram_u8(g, p, hist)
        return _from_u8_histogram(hist.reshape(256, 256), c, ignore_index)
    table = np.zeros((c, c + 1), np.int64)
    ignore = 0 if ignore_index is None else int(ignore_index)
    use_ignore = ignore_index is not None and -(1 << 63) <= ignore < 1 << 63
    n_bad_gt, bad_gt, bad_pred_seen, bad_pred = c_count.count_general(
        g, p, c, ignore if use_ignore else 0, use_ignore, table)
    return PixelCounts(table, int(n_bad_gt), int(bad_gt) if n_bad_gt else None,
                       int(bad_pred) if bad_pred_seen else None)


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


_WRAP = 1 << 64


def _count_uint64(pred: Any, gt: Any, num_classes: int, ignore_index: int | None,
                  kernel: str) -> PixelCounts:
    """:func:`count_pixels` of uint64 labels. The kernels read them as int64, where labels of
    2^63 and more wrap negative. The ignore index is compared modulo 2^64 (-1 is the label
    2^64 - 1, as the kernels have always read it; one outside ``[-2^63, 2^64)`` is no label
    at all), and a bad label is reported as what it is: the smallest bad uint64 value."""
    ignore = ignore_index
    if gt.dtype == np.uint64 and ignore is not None:
        ignore = None if not -(1 << 63) <= ignore < _WRAP else \
            ignore - _WRAP if ignore >= 1 << 63 else ignore
    counts = count_pixels(pred.astype(np.int64) if pred.dtype == np.uint64 else pred,
                          gt.astype(np.int64) if gt.dtype == np.uint64 else gt,
                          num_classes, ignore, kernel=kernel)
    bad_gt, bad_pred = counts.bad_gt_value, counts.bad_pred_value
    if not ((bad_gt is not None and bad_gt < 0 and gt.dtype == np.uint64)
            or (bad_pred is not None and bad_pred < 0 and pred.dtype == np.uint64)):
        return counts
    # a label of 2^63 or more: find the smallest bad labels as they are (an error path)
    g = gt.reshape(-1)
    label = ignore % _WRAP if ignore is not None and gt.dtype == np.uint64 else ignore
    counted = None if label is None else g != label
    in_range = (g >= 0) & (g < num_classes)
    keep = ~in_range if counted is None else ~in_range & counted
    if bad_gt is not None:
        bad_gt = int(g[keep].min())
    if bad_pred is not None:
        valid = in_range if counted is None else in_range & counted
        p = pred.reshape(-1)[valid]
        bad_pred = int(p[(p < 0) | (p >= num_classes)].min())
    return counts._replace(bad_gt_value=bad_gt, bad_pred_value=bad_pred)
