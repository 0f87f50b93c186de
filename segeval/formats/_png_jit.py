"""Numba loops that undo PNG row filtering straight into the output array.

PNG (ISO/IEC 15948, section 9) stores each row as one filter-type byte followed by ``rowbytes``
filtered bytes; ``bpp`` is the number of bytes per complete pixel (at least 1). With ``x`` the
byte being reconstructed, ``a`` the reconstructed byte ``bpp`` to its left (0 before the row
start), ``b`` the byte above (0 on the first row) and ``c`` the byte above ``a``:

=====  ========  =========================================
type   name      reconstructed byte (arithmetic mod 256)
=====  ========  =========================================
0      None      ``x``
1      Sub       ``x + a``
2      Up        ``x + b``
3      Average   ``x + floor((a + b) / 2)`` (sum without overflow)
4      Paeth     ``x + paeth(a, b, c)``
=====  ========  =========================================

Each kernel returns ``-1`` on success, else the index of the first row whose filter-type byte
is not 0..4 (the caller turns that into a :class:`~segeval.errors.FileFormatError`).

Importing this module imports Numba; the compiled code is cached on disk (``cache=True``).
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True, inline="always")
def _paeth(a, b, c):  # pragma: no cover - compiled
    p = a + b - c
    pa = abs(p - a)
    pb = abs(p - b)
    pc = abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    if pb <= pc:
        return b
    return c


@njit(cache=True, nogil=True, inline="always")
def _row_bpp1(ft, raw, s, prev, p0, cur, c0, n):  # pragma: no cover - compiled
    """Un-filter one row of ``n`` one-byte pixels; the left neighbour stays in a register."""
    if ft == 0:
        for i in range(n):
            cur[c0 + i] = raw[s + i]
    elif ft == 2:
        for i in range(n):
            cur[c0 + i] = raw[s + i] + prev[p0 + i]
    elif ft == 1:
        a = np.int32(0)
        for i in range(n):
            a = (np.int32(raw[s + i]) + a) & 0xFF
            cur[c0 + i] = a
    elif ft == 3:
        a = np.int32(0)
        for i in range(n):
            a = (np.int32(raw[s + i]) + ((a + np.int32(prev[p0 + i])) >> 1)) & 0xFF
            cur[c0 + i] = a
    else:
        a = np.int32(0)
        c = np.int32(0)
        for i in range(n):
            x = np.int32(raw[s + i])
            b = np.int32(prev[p0 + i])
            if x == 0 and b == c:
                # paeth(a, b, b) == a: the common case inside a label region
                pass
            else:
                a = (x + _paeth(a, b, c)) & 0xFF
            cur[c0 + i] = a
            c = b
    return 0


@njit(cache=True, nogil=True, inline="always")
def _row_generic(ft, raw, s, prev, p0, cur, c0, n, bpp):  # pragma: no cover - compiled
    """Un-filter one row of ``n`` bytes with ``bpp`` bytes per pixel."""
    if ft == 0:
        for i in range(n):
            cur[c0 + i] = raw[s + i]
    elif ft == 2:
        for i in range(n):
            cur[c0 + i] = raw[s + i] + prev[p0 + i]
    elif ft == 1:
        for i in range(bpp):
            cur[c0 + i] = raw[s + i]
        for i in range(bpp, n):
            cur[c0 + i] = raw[s + i] + cur[c0 + i - bpp]
    elif ft == 3:
        for i in range(bpp):
            cur[c0 + i] = raw[s + i] + (prev[p0 + i] >> 1)
        for i in range(bpp, n):
            avg = (np.int32(cur[c0 + i - bpp]) + np.int32(prev[p0 + i])) >> 1
            cur[c0 + i] = (np.int32(raw[s + i]) + avg) & 0xFF
    else:
        for i in range(bpp):
            cur[c0 + i] = raw[s + i] + prev[p0 + i]
        for i in range(bpp, n):
            x = np.int32(raw[s + i])
            b = np.int32(prev[p0 + i])
            c = np.int32(prev[p0 + i - bpp])
            a = np.int32(cur[c0 + i - bpp])
            if x == 0 and b == c:
                cur[c0 + i] = a
            else:
                cur[c0 + i] = (x + _paeth(a, b, c)) & 0xFF
    return 0


@njit(cache=True, nogil=True)
def unfilter_gray8(raw, out, h, w):  # pragma: no cover - compiled
    """8-bit grey or palette: ``raw`` (``h * (w + 1)`` bytes) into ``out`` (flat ``h * w``)."""
    zero = np.zeros(w, np.uint8)
    for y in range(h):
        s = y * (w + 1)
        ft = raw[s]
        if ft > 4:
            return y
        if y == 0:
            _row_bpp1(ft, raw, s + 1, zero, 0, out, 0, w)
        else:
            _row_bpp1(ft, raw, s + 1, out, (y - 1) * w, out, y * w, w)
    return -1


@njit(cache=True, nogil=True, inline="always")
def _row_u16(ft, raw, s, prev, p0, out, o, w):  # pragma: no cover - compiled
    """Un-filter one row of ``w`` big-endian 16-bit pixels into native ``uint16`` values; the
    row above is read back from ``prev`` (native values), the left pixel stays in registers."""
    if ft == 0:
        for x in range(w):
            out[o + x] = (np.uint16(raw[s + 2 * x]) << 8) | raw[s + 2 * x + 1]
    elif ft == 2:
        for x in range(w):
            b = np.int32(prev[p0 + x])
            hi = (np.int32(raw[s + 2 * x]) + (b >> 8)) & 0xFF
            lo = (np.int32(raw[s + 2 * x + 1]) + b) & 0xFF
            out[o + x] = (hi << 8) | lo
    elif ft == 1:
        ahi = np.int32(0)
        alo = np.int32(0)
        for x in range(w):
            ahi = (np.int32(raw[s + 2 * x]) + ahi) & 0xFF
            alo = (np.int32(raw[s + 2 * x + 1]) + alo) & 0xFF
            out[o + x] = (ahi << 8) | alo
    elif ft == 3:
        ahi = np.int32(0)
        alo = np.int32(0)
        for x in range(w):
            b = np.int32(prev[p0 + x])
            ahi = (np.int32(raw[s + 2 * x]) + ((ahi + (b >> 8)) >> 1)) & 0xFF
            alo = (np.int32(raw[s + 2 * x + 1]) + ((alo + (b & 0xFF)) >> 1)) & 0xFF
            out[o + x] = (ahi << 8) | alo
    else:
        a = np.int32(0)
        c = np.int32(0)
        for x in range(w):
            xhi = np.int32(raw[s + 2 * x])
            xlo = np.int32(raw[s + 2 * x + 1])
            b = np.int32(prev[p0 + x])
            if xhi != 0 or xlo != 0 or b != c:  # else paeth(a, b, b) == a for both bytes
                hi = (xhi + _paeth(a >> 8, b >> 8, c >> 8)) & 0xFF
                lo = (xlo + _paeth(a & 0xFF, b & 0xFF, c & 0xFF)) & 0xFF
                a = (hi << 8) | lo
            out[o + x] = a
            c = b
    return 0


@njit(cache=True, nogil=True)
def unfilter_gray16(raw, out, h, w):  # pragma: no cover - compiled
    """16-bit grey: ``raw`` (``h * (2w + 1)`` bytes, big-endian samples) into ``out`` (flat
    ``uint16``, ``h * w``, native byte order)."""
    zero = np.zeros(w, np.uint16)
    for y in range(h):
        s = y * (2 * w + 1)
        ft = raw[s]
        if ft > 4:
            return y
        if y == 0:
            _row_u16(ft, raw, s + 1, zero, 0, out, 0, w)
        else:
            _row_u16(ft, raw, s + 1, out, (y - 1) * w, out, y * w, w)
    return -1


@njit(cache=True, nogil=True, inline="always")
def _row_rgb(ft, raw, s, prev, p0, out, o, w):  # pragma: no cover - compiled
    """Un-filter one row of ``w`` RGB pixels straight into ids ``R | G << 8 | B << 16``; the
    row above is read back from ``prev`` (ids), the left pixel stays in registers."""
    if ft == 0:
        for x in range(w):
            k = s + 3 * x
            out[o + x] = (np.uint32(raw[k]) | (np.uint32(raw[k + 1]) << 8)
                          | (np.uint32(raw[k + 2]) << 16))
    elif ft == 2:
        for x in range(w):
            k = s + 3 * x
            b = np.int32(prev[p0 + x])
            r = (np.int32(raw[k]) + b) & 0xFF
            g = (np.int32(raw[k + 1]) + (b >> 8)) & 0xFF
            bl = (np.int32(raw[k + 2]) + (b >> 16)) & 0xFF
            out[o + x] = r | (g << 8) | (bl << 16)
    elif ft == 1:
        r = np.int32(0)
        g = np.int32(0)
        bl = np.int32(0)
        for x in range(w):
            k = s + 3 * x
            r = (np.int32(raw[k]) + r) & 0xFF
            g = (np.int32(raw[k + 1]) + g) & 0xFF
            bl = (np.int32(raw[k + 2]) + bl) & 0xFF
            out[o + x] = r | (g << 8) | (bl << 16)
    elif ft == 3:
        r = np.int32(0)
        g = np.int32(0)
        bl = np.int32(0)
        for x in range(w):
            k = s + 3 * x
            b = np.int32(prev[p0 + x])
            r = (np.int32(raw[k]) + ((r + (b & 0xFF)) >> 1)) & 0xFF
            g = (np.int32(raw[k + 1]) + ((g + ((b >> 8) & 0xFF)) >> 1)) & 0xFF
            bl = (np.int32(raw[k + 2]) + ((bl + (b >> 16)) >> 1)) & 0xFF
            out[o + x] = r | (g << 8) | (bl << 16)
    else:
        a = np.int32(0)
        c = np.int32(0)
        for x in range(w):
            k = s + 3 * x
            x0 = np.int32(raw[k])
            x1 = np.int32(raw[k + 1])
            x2 = np.int32(raw[k + 2])
            b = np.int32(prev[p0 + x])
            if x0 != 0 or x1 != 0 or x2 != 0 or b != c:  # else paeth(a, b, b) == a
                r = (x0 + _paeth(a & 0xFF, b & 0xFF, c & 0xFF)) & 0xFF
                g = (x1 + _paeth((a >> 8) & 0xFF, (b >> 8) & 0xFF, (c >> 8) & 0xFF)) & 0xFF
                bl = (x2 + _paeth(a >> 16, b >> 16, c >> 16)) & 0xFF
                a = r | (g << 8) | (bl << 16)
            out[o + x] = a
            c = b
    return 0


@njit(cache=True, nogil=True)
def unfilter_rgb_ids(raw, out, h, w):  # pragma: no cover - compiled
    """8-bit RGB: ``raw`` (``h * (3w + 1)`` bytes) into the panoptic ids ``R + 256 G + 256^2 B``
    in ``out`` (flat ``uint32``, ``h * w``)."""
    zero = np.zeros(w, np.uint32)
    for y in range(h):
        s = y * (3 * w + 1)
        ft = raw[s]
        if ft > 4:
            return y
        if y == 0:
            _row_rgb(ft, raw, s + 1, zero, 0, out, 0, w)
        else:
            _row_rgb(ft, raw, s + 1, out, (y - 1) * w, out, y * w, w)
    return -1


@njit(cache=True, nogil=True)
def unfilter_rgba_ids(raw, out, h, w):  # pragma: no cover - compiled
    """8-bit RGBA: ``raw`` (``h * (4w + 1)`` bytes) into the panoptic ids ``R + 256 G + 256^2 B``
    in ``out`` (flat ``uint32``, ``h * w``); alpha is dropped. Rows are un-filtered into two
    alternating row buffers (the next row's filters need the alpha bytes) and packed."""
    bpp = 4
    n = bpp * w
    rows = np.zeros(2 * n, np.uint8)
    zero = np.zeros(n, np.uint8)
    for y in range(h):
        s = y * (n + 1)
        ft = raw[s]
        if ft > 4:
            return y
        c0 = (y & 1) * n
        if y == 0:
            _row_generic(ft, raw, s + 1, zero, 0, rows, c0, n, bpp)
        else:
            _row_generic(ft, raw, s + 1, rows, n - c0, rows, c0, n, bpp)
        o = y * w
        for x in range(w):
            k = c0 + 4 * x
            out[o + x] = (np.uint32(rows[k]) | (np.uint32(rows[k + 1]) << 8)
                          | (np.uint32(rows[k + 2]) << 16))
    return -1
