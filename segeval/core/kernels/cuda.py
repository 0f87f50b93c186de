"""The GPU counting kernel: per-block histograms in shared memory, merged once per block.

A global-memory atomic per pixel into a few hundred bins serialises on the hot bins (a label
map is mostly long runs of one class); here every block of threads keeps its own ``uint32``
histogram of the ``C (C + 1) + 1`` bins (see :mod:`segeval.core.kernels.xp` for the bin layout)
in shared memory, and each thread first merges runs of equal bins in a register, so a shared
atomic is paid per *run* of equal (ground truth, prediction) pairs, not per pixel. At the end each
block adds its non-zero bins to an ``int64`` table in global memory. The smallest bad ground-truth
value and the smallest bad prediction are kept per thread and merged with one atomic ``min`` each.
Ignored pixels are skipped. The integers are the same as the NumPy reference kernel's, always.

It is written with ``numba.cuda`` so that it takes any array with ``__cuda_array_interface__``
(CuPy arrays, on CuPy's current stream) and, where there is no GPU, runs under Numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``, set before Numba is imported) on NumPy arrays: that is how
CI tests it. Importing this module imports ``numba.cuda`` (the kernel is compiled at its first
call, once per dtype pair); only GPU inputs lead here, never the CPU path. Inputs whose table
does not fit in shared memory (more than :data:`MAX_SHARED_BINS` bins, i.e. more than 110
classes) are counted by :func:`segeval.core.kernels.xp.count_pixels_xp` (``cupy.bincount``).

Limits kept by the launch: a block counts at most ``2**31`` pixels (its ``uint32`` bins cannot
overflow); a thread handles runs of :data:`RUN` consecutive pixels, grid-strided.
"""

from __future__ import annotations

import functools
import logging
import math
from typing import Any

import numpy as np
from numba import cuda, int64, uint32

from segeval.core.kernels import PixelCounts
from segeval.core.kernels.xp import count_pixels_xp, is_cupy_array, to_host

log = logging.getLogger("segeval")

#: Bins of the per-block ``uint32`` shared-memory histogram: 48 KiB, the default limit.
MAX_SHARED_BINS = 48 * 1024 // 4
#: Consecutive pixels per thread and step (a warp reads ``32 * RUN`` contiguous labels).
RUN = 16
#: Threads per block on a real GPU.
THREADS = 256
#: Most pixels one block may count (its ``uint32`` bins must not overflow).
MAX_BLOCK_PIXELS = 1 << 31

_INT64_MAX = np.iinfo(np.int64).max
_broken: str | None = None  # why Numba's CUDA target cannot be used here (then: CuPy bincount)


@cuda.jit
def histogram(gt, pred, c, ignore, use_ignore, run, nbins, out):  # pragma: no cover - GPU
    # out: int64[nbins + 2] = the table's bins, then the smallest bad gt and bad prediction
    shared = cuda.shared.array(0, dtype=uint32)
    for i in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        shared[i] = 0
    cuda.syncthreads()

    n = gt.size
    step = cuda.gridsize(1) * run
    start = cuda.grid(1) * run
    current = int64(-1)
    count = uint32(0)
    gt_low = int64(_INT64_MAX)
    pred_low = int64(_INT64_MAX)
    while start < n:
        stop = min(start + run, n)
        for i in range(start, stop):
            g = int64(gt[i])
            if use_ignore and g == ignore:
                continue
            if g < 0 or g >= c:
                b = int64(nbins - 1)
                gt_low = min(gt_low, g)
            else:
                p = int64(pred[i])
                if p < 0 or p >= c:
                    pred_low = min(pred_low, p)
                    p = int64(c)
                b = g * (c + 1) + p
            if b == current:
                count += uint32(1)
            else:
                if count > 0:
                    cuda.atomic.add(shared, current, count)
                current = b
                count = uint32(1)
        start += step
    if count > 0:
        cuda.atomic.add(shared, current, count)
    if gt_low < _INT64_MAX:
        cuda.atomic.min(out, nbins, gt_low)
    if pred_low < _INT64_MAX:
        cuda.atomic.min(out, nbins + 1, pred_low)
    cuda.syncthreads()

    for i in range(cuda.threadIdx.x, nbins, cuda.blockDim.x):
        v = shared[i]
        if v > 0:
            cuda.atomic.add(out, i, int64(v))


def _flat(a: Any) -> Any:
    """A contiguous 1-D view the kernel can read: bool as uint8, uint64 as int64."""
    if a.dtype == np.bool_:
        a = a.view(np.uint8)
    elif a.dtype == np.uint64:
        a = a.astype(np.int64)  # int64 comparisons throughout, as in the other kernels
    xp = _namespace(a)
    return xp.ascontiguousarray(a).reshape(-1)


def _namespace(a: Any) -> Any:
    if is_cupy_array(a):
        import cupy

        return cupy
    return np


def _launch(n: int, threads: int, sm_count: int) -> int:
    """Blocks to launch for ``n`` pixels: enough to fill the GPU, never idle, none overfull."""
    runs = math.ceil(n / RUN)
    blocks = min(max(1, math.ceil(runs / threads)), max(1, 8 * sm_count))
    return max(blocks, math.ceil(n / MAX_BLOCK_PIXELS))


def kernel_unusable() -> str | None:
    """Why Numba's CUDA target failed here (``None`` while it has not)."""
    return _broken


def count_pixels_cuda(
    pred: Any,
    gt: Any,
    num_classes: int,
    ignore_index: int | None,
    *,
    threads: int | None = None,
) -> PixelCounts:
    """See :func:`segeval.core.kernels.count_pixels`; ``pred`` and ``gt`` are on the GPU.

    They are CuPy arrays of the same shape (NumPy arrays under Numba's CUDA simulator). The
    result is on the host. ``threads`` per block defaults to :data:`THREADS` (tests under the
    simulator use fewer). Falls back to the CuPy ``bincount`` path of
    :func:`~segeval.core.kernels.xp.count_pixels_xp` (same integers) for more than
    :data:`MAX_SHARED_BINS` bins, or when Numba's CUDA target cannot compile here (logged once).
    """
    c = num_classes
    if c * (c + 1) + 1 > MAX_SHARED_BINS or _broken is not None:
        return count_pixels_xp(pred, gt, c, ignore_index)
    if is_cupy_array(gt):
        with gt.device:  # allocate, launch and read back on the input's GPU
            return _count(pred, gt, c, ignore_index, threads)
    return _count(pred, gt, c, ignore_index, threads)  # NumPy arrays: the CUDA simulator


def _count(pred: Any, gt: Any, c: int, ignore_index: int | None,
           threads: int | None) -> PixelCounts:
    global _broken
    nbins = c * (c + 1) + 1
    g, p = _flat(gt), _flat(pred)
    xp = _namespace(g)
    start = np.zeros(nbins + 2, np.int64)
    start[nbins:] = _INT64_MAX
    out = xp.asarray(start)  # one host-to-device copy, one device-to-host copy at the end
    if g.size:
        try:
            _run(histogram, g, p, c, ignore_index, nbins, out, threads)
        except Exception as e:
            if not isinstance(e, _setup_errors()):
                raise
            _broken = f"{type(e).__name__}: {e}".splitlines()[0]
            log.warning("the shared-memory GPU kernel cannot be used (%s); counting with "
                        "cupy.bincount instead (same results, slower)", _broken)
            return count_pixels_xp(pred, gt, c, ignore_index)
    host = to_host(out)
    nb = c * (c + 1)
    counts = host[:nb].reshape(c, c + 1)
    bad_gt_count = int(host[nb])
    bad_pred_count = int(counts[:, c].sum())
    return PixelCounts(
        counts,
        bad_gt_count,
        int(host[nbins]) if bad_gt_count else None,
        int(host[nbins + 1]) if bad_pred_count else None,
    )


def _run(kernel: Any, g: Any, p: Any, c: int, ignore_index: int | None, nbins: int, out: Any,
         threads: int | None) -> None:
    ignore = 0 if ignore_index is None else int(ignore_index)
    use_ignore = ignore_index is not None
    if _simulated():
        threads = threads or 32
        blocks = _launch(g.size, threads, 1)
        kernel[blocks, threads, 0, nbins * 4](g, p, c, ignore, use_ignore, RUN, nbins, out)
        return
    import cupy

    threads = threads or THREADS
    blocks = _launch(g.size, threads, _sm_count(g.device.id))
    ptr = cupy.cuda.get_current_stream().ptr  # 0: the legacy default stream, numba's 0 too
    stream = cuda.external_stream(ptr) if ptr else 0
    with cuda.gpus[g.device.id]:
        kernel[blocks, threads, stream, nbins * 4](g, p, c, ignore, use_ignore, RUN, nbins, out)


@functools.cache
def _sm_count(device_id: int) -> int:
    """Streaming multiprocessors of a CUDA device (132 on an H100 SXM)."""
    import cupy

    props = cupy.cuda.runtime.getDeviceProperties(device_id)
    return int(props.get("multiProcessorCount", 132))


def _setup_errors() -> tuple[type[BaseException], ...]:
    """What Numba raises when its CUDA target lacks a piece (driver, NVVM, libdevice)."""
    from numba.cuda.cudadrv import error

    names = ("CudaSupportError", "NvvmSupportError", "NvvmError", "CudaDriverError")
    return (OSError, ImportError, *(getattr(error, n) for n in names if hasattr(error, n)))


def _simulated() -> bool:
    """``True`` under Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``)."""
    from numba.core import config

    return bool(config.ENABLE_CUDASIM)
