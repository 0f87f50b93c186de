"""Numba loops for instance masks against a ground-truth region map, without a dense mask.

:func:`mask_overlaps` undoes the PNG row filters of an 8-bit grey mask one row at a time (two
row buffers, nothing image-sized is written) and, for every non-zero pixel, counts the region
index of the ground-truth pixel under it: the mask's overlap with every region it touches, its
pixel count and its bounding box in one pass. A row whose filtered bytes are all zero, under a
row that is all zero, is all zero whatever its filter type (None, Sub, Up, Average and Paeth
all add zero to zero): it is only checked (one OR over its bytes), not un-filtered. Other rows
are un-filtered with the row function of :mod:`segeval.core.kernels.png_jit`, so the pixels
are exactly those the PNG decoder gives.

:func:`value_counts` is a histogram of non-negative integer values (a ground-truth map).

Importing this module imports Numba; the compiled code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit

from segeval.core.kernels.png_jit import _row_bpp1

_CHUNK = 64  # bytes OR-ed together (a vectorised loop) before a chunk is searched byte by byte


@njit(cache=True, nogil=True, inline="always")
def _first_nonzero(cur, n):  # pragma: no cover - compiled
    """Index of the first non-zero byte of ``cur[:n]``, -1 if none."""
    start = 0
    while start < n:
        stop = min(start + _CHUNK, n)
        acc = np.uint8(0)
        for i in range(start, stop):
            acc |= cur[i]
        if acc != 0:
            for i in range(start, stop):
                if cur[i] != 0:
                    return i
        start = stop
    return -1


@njit(cache=True, nogil=True, inline="always")
def _last_nonzero(cur, n):  # pragma: no cover - compiled
    """Index of the last non-zero byte of ``cur[:n]``, -1 if none."""
    stop = n
    while stop > 0:
        start = max(stop - _CHUNK, 0)
        acc = np.uint8(0)
        for i in range(start, stop):
            acc |= cur[i]
        if acc != 0:
            for i in range(stop - 1, start - 1, -1):
                if cur[i] != 0:
                    return i
        stop = start
    return -1


@njit(cache=True, nogil=True, inline="always")
def _zero_row(raw, s, e, shift):  # pragma: no cover - compiled
    """Whether ``raw[s:e]`` is all zero, read 8 bytes at a time where ``raw[i]`` lies at an
    address divisible by 8 when ``(i + shift) % 8 == 0``."""
    a = min(s + (8 - (s + shift) % 8) % 8, e)
    b = max(a, e - (e + shift) % 8)
    acc = np.uint64(0)
    for i in range(s, a):
        acc |= np.uint64(raw[i])
    words = raw[a:b].view(np.uint64)
    for i in range(words.size):
        acc |= words[i]
    for i in range(b, e):
        acc |= np.uint64(raw[i])
    return acc == 0


@njit(cache=True, nogil=True)
def mask_overlaps(raw, h, w, ids, index, counts, shift=0):  # pragma: no cover - compiled
    """``raw``: an 8-bit grey PNG's inflated image data (``h * (w + 1)`` bytes, a filter byte
    per row); ``ids``: the flat ``h * w`` ground-truth map; ``index``: region index per
    ground-truth value (every value of ``ids`` is a valid position); ``counts``: zeros, one
    per region index; ``shift``: ``raw``'s address modulo 8 (the zero-row check reads aligned
    8-byte words). Adds to ``counts[index[ids[p]]]`` for every non-zero mask pixel ``p``.
    Returns ``(bad, top, bottom, left, right)``: ``bad`` is ``-1`` or the first row whose
    filter type is not 0..4; the box is end-exclusive, ``top == -1`` for an empty mask."""
    zero = np.zeros(w, np.uint8)
    prev = np.zeros(w, np.uint8)
    cur = np.zeros(w, np.uint8)
    top, bottom, left, right = -1, 0, w, 0
    prev_zero = True
    for y in range(h):
        s = y * (w + 1)
        ft = raw[s]
        if ft > 4:
            return y, -1, 0, 0, 0
        x = raw[s + 1:s + 1 + w]
        if prev_zero:
            if _zero_row(raw, s + 1, s + 1 + w, shift):
                continue
            _row_bpp1(ft, x, zero, cur, w)
        else:
            _row_bpp1(ft, x, prev, cur, w)
        lo = _first_nonzero(cur, w)
        if lo < 0:
            prev_zero = True
            continue
        hi = _last_nonzero(cur, w)
        base = y * w
        region, run = -1, 0  # a run of pixels on one region, added at its end
        for i in range(lo, hi + 1):
            if cur[i] != 0:
                r = index[ids[base + i]]
                if r == region:
                    run += 1
                else:
                    if run:
                        counts[region] += run
                    region, run = r, 1
        if run:
            counts[region] += run
        if top < 0:
            top = y
        bottom = y + 1
        left = min(left, lo)
        right = max(right, hi + 1)
        prev_zero = False
        prev, cur = cur, prev
    return -1, top, bottom, left, right


@njit(cache=True, nogil=True)
def value_counts(values, counts):  # pragma: no cover - compiled
    """``counts[v] += 1`` for every ``v`` of the flat non-negative ``values`` (``counts`` is
    longer than the largest)."""
    for i in range(values.size):
        counts[values[i]] += 1
    return 0
