"""Per-image counting kernels, and the one rule that decides when compiled code runs.

One entry point, :func:`count_pixels`, counts (ground truth, prediction) pairs with one of:

* ``reference`` -- NumPy, chunked so that no temporary exceeds a few MiB whatever the image
  size. It is the definition the other kernels are tested against, and it is used for small
  inputs, where loading the compiled code would cost more than it saves.
* ``jit`` -- Numba loops (one load-increment-store per pixel, about the cost of reading the
  bytes), chosen by :func:`use_compiled`.
* ``cuda`` -- for CuPy arrays (always chosen for them): the shared-memory GPU kernel of
  :mod:`segeval.core.kernels.cuda`; the table comes back to the host.

All return the same integers, always.

Which kernel: one policy
------------------------
The compiled kernels live in three Numba modules, :data:`COMPILED_MODULES`
(``segeval.core.kernels.{confusion,panoptic,cityscapes}_jit``): the confusion counts,
the panoptic pair counts and the Cityscapes counts (the PNG row un-filtering, the fused
Cityscapes pass and the instance-mask overlaps are C, :mod:`segeval.core.kernels.c_png`, used
wherever :func:`compiled_available`). Loading them costs
about half a second per process (importing Numba, then loading each kernel from Numba's
on-disk cache), so every caller that could use one asks this module, and nothing else:

* :func:`use_compiled(nbytes) <use_compiled>` -- **per call**: the compiled kernel where Numba
  is importable and either one of the compiled modules is already
  loaded in this process (:func:`compiled_loaded`: the cost is paid, use it for every size) or
  the input holds at least :data:`COMPILED_MIN_BYTES` bytes of labels. :func:`count_pixels`,
  :func:`segeval.core.panoptic.intersections` and the Cityscapes kernel call it with the
  bytes of the image at hand (pixels x bytes per pixel: a ``uint32`` id map weighs 4 times
  its pixels).
* :func:`warm(pixels) <warm>` -- **per run**: called once by the engine
  (:func:`segeval.engine.run`) in the parent process before any worker is forked, with about
  the number of pixels the run decodes. From :data:`WARM_MIN_PIXELS` on, it loads every
  compiled module and calls each compiled kernel once on tiny inputs of the types real runs
  pass (``uint8``/``uint16`` label maps, ``uint32`` panoptic ids), so
  the compiled code is in memory and forked workers inherit it instead of each loading it;
  from then on :func:`use_compiled` is true for every size.

Only speed depends on these choices: every compiled kernel gives the integers its reference
gives, bit for bit. An explicit ``kernel=`` (or ``decoder="fast"``/``"pillow"``) bypasses them.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, NamedTuple

import numpy as np

#: The compiled (Numba) modules; importing any of them is what :func:`compiled_loaded` sees.
COMPILED_MODULES: tuple[str, ...] = tuple(
    f"segeval.core.kernels.{name}_jit"
    for name in ("confusion", "panoptic", "cityscapes")
)

#: A call on at least this many pixels uses the compiled kernel even before it is loaded.
#: Measured (8-bit label maps, one core): loading Numba and the first kernels takes ~0.5 s per
#: process, and the compiled paths save ~14 ms per 2^20 pixels (PNG decode ~2 ms, counting
#: ~12 ms), so no single image repays the load; the threshold only guesses that an image this
#: big comes in a run that will (runs that surely do are loaded up front by :func:`warm`).
#: Of the two former thresholds, 2^19 bytes of PNG pixel data (the decoder) and 2^20 pixels
#: (the counting kernels), the decoder's decided a run's behaviour before (it runs first and
#: loads Numba), and bytes, not pixels, are what the work scales with: it is kept. An 8-bit
#: 1024x512 map qualifies, a 500x375 VOC map does not; a 640x480 RGB panoptic PNG (0.9 MB)
#: does, as before.
COMPILED_MIN_BYTES = 1 << 19

#: A run that decodes at least this many pixels loads every compiled kernel before forking
#: (128 Cityscapes-sized or ~440 COCO-sized images; 128 x 2^20 pixels at ~14 ms saved each is
#: ~1.8 s against ~0.5 s of loading, paid once in the parent instead of once per worker).
WARM_MIN_PIXELS = 1 << 27


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
    """Whether the compiled C extensions (:mod:`segeval.core.kernels._count`,
    :mod:`segeval.core.kernels.c_png`, built with the package) import."""
    try:
        from segeval.core.kernels import _count, c_png  # noqa: F401
    except ImportError:  # pragma: no cover - a build without the extensions
        return False
    return True


@functools.cache
def _numba_available() -> bool:
    """Whether Numba can be imported (the ``*_jit`` kernels). Imports it: call it only where
    the compiled path is wanted anyway."""
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def compiled_loaded() -> bool:
    """Whether any compiled module (:data:`COMPILED_MODULES`) is imported in this process."""
    modules = sys.modules
    return any(name in modules for name in COMPILED_MODULES)


def use_compiled(nbytes: int) -> bool:
    """THE per-call rule: whether a kernel call on an input of ``nbytes`` bytes of labels should
    take the compiled path (see the module docstring). Never imports Numba for a small input
    while no compiled module is loaded."""
    return (compiled_loaded() or nbytes >= COMPILED_MIN_BYTES) and _numba_available()


def warm(pixels: int, kernels: tuple[str, ...] | None = None) -> bool:
    """THE per-run rule: for a run decoding about ``pixels`` pixels, from
    :data:`WARM_MIN_PIXELS` on, load the compiled modules and call each compiled kernel once on
    tiny inputs (see the module docstring): those named in ``kernels`` (keys of
    :data:`WARMERS`: what the run uses), or every one. Returns whether compiled code was
    loaded (``False`` below the threshold, where nothing is done, or without Numba)."""
    if pixels < WARM_MIN_PIXELS or not _numba_available():
        return False
    for name in WARMERS if kernels is None else kernels:
        WARMERS[name]()
    return True


_W = 4  # pixels of the tiny inputs


def _warm_confusion() -> None:
    """Confusion counts: 8-bit maps (the byte-pair histogram) and any mix with 16-bit maps
    (Numba keeps one machine-code version per combination of argument types)."""
    from segeval.core.kernels import confusion_jit

    u8, u16 = np.zeros(_W, np.uint8), np.zeros(_W, np.uint16)
    for gt in (u8, u16):
        for pred in (u8, u16):
            confusion_jit.count_pixels_jit(pred, gt, 2, 255)


def _warm_panoptic() -> None:
    """Panoptic pair counts: uint32 ids (R + 256 G + 256^2 B) through the two lookup tables."""
    from segeval.core.kernels import panoptic_jit

    ids = np.zeros(_W, np.uint32)
    panoptic_jit.pair_counts(ids, ids, np.zeros(2, np.uint16), np.zeros(2, np.uint8),
                             np.zeros(1 << 16, np.int64))


def _warm_cityscapes() -> None:
    """Cityscapes counts: labelIds and prediction bytes, with and without 16-bit instanceIds."""
    from segeval.core.kernels import cityscapes

    u8, lut = np.zeros(_W, np.uint8), np.zeros(256, np.uint8)
    for instances in (None, np.zeros(_W, np.uint16)):
        cityscapes.count_cityscapes(u8, u8, instances, lut, lut, kernel="jit")


def _warm_png() -> None:
    """The PNG un-filters (C, :mod:`segeval.core.kernels.c_png`): nothing to compile; the
    extension is imported before workers fork."""
    from segeval.core.kernels import c_png  # noqa: F401


def _warm_fused() -> None:
    """The fused Cityscapes pass: in the PNG extension (C), imported by :func:`_warm_png`."""
    _warm_png()


def _warm_mask() -> None:
    """The Cityscapes instance-mask pass (C, in the PNG extension)."""
    _warm_png()


#: What :func:`warm` can load, by the name a plan gives in ``Plan.kernels``.
WARMERS = {"confusion": _warm_confusion, "panoptic": _warm_panoptic,
           "cityscapes": _warm_cityscapes, "png": _warm_png, "fused": _warm_fused,
           "mask": _warm_mask}


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

    ``kernel`` is ``"auto"`` (:func:`use_compiled` picks ``"jit"`` or ``"reference"``),
    ``"reference"``, ``"jit"`` or ``"cuda"``. CuPy arrays always go to ``"cuda"``.
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
        kernel = "jit" if use_compiled(gt.nbytes) else "reference"
    if kernel == "jit":
        from segeval.core.kernels.confusion_jit import count_pixels_jit

        return count_pixels_jit(pred, gt, num_classes, ignore_index)
    if kernel == "reference":
        from segeval.core.kernels.reference import count_pixels_reference

        return count_pixels_reference(pred, gt, num_classes, ignore_index)
    from segeval.errors import bad_value

    raise bad_value("kernel", "'auto', 'reference', 'jit' or 'cuda'", kernel)


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
