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
def _row_bpp1(ft, x, b, cur, n):  # pragma: no cover - compiled
    """Un-filter one row of ``n`` one-byte pixels: ``x`` the filtered bytes, ``b`` the row above
    (zeros for the first row), ``cur`` the output; all three are ``(n,)`` views, indexed from 0
    by the loop counter so that no index can be negative (Numba then emits no wrap-around
    check and LLVM vectorises the Up and None rows). The left neighbour stays in a register."""
    if ft == 2:
        for i in range(n):
            cur[i] = x[i] + b[i]
    elif ft == 4:
        a = np.int32(0)
        c = np.int32(0)
        for i in range(n):
            xx = np.int32(x[i])
            bb = np.int32(b[i])
            if xx != 0 or bb != c:  # else paeth(a, b, b) == a: the common case in a region
                a = (xx + _paeth(a, bb, c)) & 0xFF
            cur[i] = a
            c = bb
    elif ft == 1:
        a = np.int32(0)
        for i in range(n):
            a = (a + np.int32(x[i])) & 0xFF
            cur[i] = a
    elif ft == 0:
        for i in range(n):
            cur[i] = x[i]
    else:
        a = np.int32(0)
        for i in range(n):
            a = (np.int32(x[i]) + ((a + np.int32(b[i])) >> 1)) & 0xFF
            cur[i] = a
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
        above = zero if y == 0 else out[(y - 1) * w:y * w]
        _row_bpp1(ft, raw[s + 1:s + 1 + w], above, out[y * w:(y + 1) * w], w)
    return -1


@njit(cache=True, nogil=True, inline="always")
def _row_u16(ft, x, b, cur, n):  # pragma: no cover - compiled
    """Un-filter one row of ``n`` big-endian 16-bit pixels (``x``: ``2n`` filtered bytes) into
    native ``uint16`` values in ``cur``; the row above is read back from ``b`` (native values,
    zeros for the first row); views indexed from 0 as in :func:`_row_bpp1`. The byte swap is
    done in the same pass, the left pixel stays in registers."""
    if ft == 2:
        for i in range(n):
            bb = np.int32(b[i])
            hi = (np.int32(x[2 * i]) + (bb >> 8)) & 0xFF
            lo = (np.int32(x[2 * i + 1]) + bb) & 0xFF
            cur[i] = (hi << 8) | lo
    elif ft == 4:
        a = np.int32(0)
        c = np.int32(0)
        for i in range(n):
            xhi = np.int32(x[2 * i])
            xlo = np.int32(x[2 * i + 1])
            bb = np.int32(b[i])
            if xhi != 0 or xlo != 0 or bb != c:  # else paeth(a, b, b) == a for both bytes
                hi = (xhi + _paeth(a >> 8, bb >> 8, c >> 8)) & 0xFF
                lo = (xlo + _paeth(a & 0xFF, bb & 0xFF, c & 0xFF)) & 0xFF
                a = (hi << 8) | lo
            cur[i] = a
            c = bb
    elif ft == 1:
        ahi = np.int32(0)
        alo = np.int32(0)
        for i in range(n):
            ahi = (ahi + np.int32(x[2 * i])) & 0xFF
            alo = (alo + np.int32(x[2 * i + 1])) & 0xFF
            cur[i] = (ahi << 8) | alo
    elif ft == 0:
        for i in range(n):
            cur[i] = (np.int32(x[2 * i]) << 8) | np.int32(x[2 * i + 1])
    else:
        ahi = np.int32(0)
        alo = np.int32(0)
        for i in range(n):
            bb = np.int32(b[i])
            ahi = (np.int32(x[2 * i]) + ((ahi + (bb >> 8)) >> 1)) & 0xFF
            alo = (np.int32(x[2 * i + 1]) + ((alo + (bb & 0xFF)) >> 1)) & 0xFF
            cur[i] = (ahi << 8) | alo
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
        above = zero if y == 0 else out[(y - 1) * w:y * w]
        _row_u16(ft, raw[s + 1:s + 1 + 2 * w], above, out[y * w:(y + 1) * w], w)
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


# --- Cityscapes: three label PNGs un-filtered row by row and counted at once ----------------
# (here, not in a module of its own, because Numba's on-disk cache of a function is keyed on
# the file that defines it: the row loops above are inlined into it and must not go stale.)


@njit(cache=True, nogil=True)
def count_cityscapes_rows(graw, praw, iraw, h, w, with_inst, pred_lut, category_of, label_of,
                          inst_cat, hist, size, tp, cat_tp, grows, prows, irows, diff, keys,
                          runs):  # pragma: no cover - compiled
    """Un-filter the inflated rows of an 8-bit labelIds PNG (``graw``), an 8-bit prediction
    (``praw``) and, with ``with_inst``, a 16-bit instanceIds PNG (``iraw``), all ``h x w``, and
    count them as :func:`segeval.core.kernels.cityscapes.count_cityscapes` does, without
    writing the images anywhere: each row is un-filtered into a two-row ring buffer
    (``grows``/``prows`` ``(2w,)`` uint8, ``irows`` ``(2w,)`` uint16, zeros where
    ``with_inst`` is false), split into runs of equal (label, prediction, instance) triples,
    and the runs are added to ``hist`` (65536 int64, ``gt << 8 | pred``) and, for instance ids
    above 1000, to ``size``, ``tp`` and ``cat_tp`` (65536 int64 each).

    Scratch: ``diff`` uint16 of at least ``w`` entries, a multiple of 4, zero from ``w - 1`` on;
    ``keys``/``runs`` int64 of at least ``w + 1`` entries. Returns ``-1``, or ``f * h + y``
    for a bad filter-type byte in row ``y`` of file ``f`` (0 labelIds, 1 prediction, 2
    instanceIds).
    """
    zero8 = np.zeros(w, np.uint8)
    zero16 = np.zeros(w, np.uint16)
    words = diff.view(np.uint64)
    nk = 0
    for y in range(h):
        c0 = (y & 1) * w
        p0 = w - c0
        s = y * (w + 1)
        ft = graw[s]
        if ft > 4:
            return y
        g = grows[c0:c0 + w]
        _row_bpp1(ft, graw[s + 1:s + 1 + w], zero8 if y == 0 else grows[p0:p0 + w], g, w)
        ft = praw[s]
        if ft > 4:
            return h + y
        p = prows[c0:c0 + w]
        _row_bpp1(ft, praw[s + 1:s + 1 + w], zero8 if y == 0 else prows[p0:p0 + w], p, w)
        k = irows[c0:c0 + w]
        if with_inst:
            s = y * (2 * w + 1)
            ft = iraw[s]
            if ft > 4:
                return 2 * h + y
            _row_u16(ft, iraw[s + 1:s + 1 + 2 * w], zero16 if y == 0 else irows[p0:p0 + w],
                     k, w)
        # diff[j] != 0 where pixel j + 1 starts a new run (a vectorised pass), then the runs
        # are found a 64-bit word (4 pixels) at a time: label maps have ~1 run end per 100 px
        g1, g0, p1, pp, k1, k0 = g[1:], g[:w - 1], p[1:], p[:w - 1], k[1:], k[:w - 1]
        for j in range(w - 1):
            diff[j] = np.uint16(g1[j] ^ g0[j]) | np.uint16(p1[j] ^ pp[j]) | (k1[j] ^ k0[j])
        start = 0
        for q in range(words.size):
            if words[q] != 0:
                for j in range(4 * q, 4 * q + 4):
                    if diff[j] != 0:
                        keys[nk] = ((np.int64(g[start]) << 24) | (np.int64(p[start]) << 16)
                                    | np.int64(k[start]))
                        runs[nk] = j + 1 - start
                        nk += 1
                        start = j + 1
        keys[nk] = (np.int64(g[start]) << 24) | (np.int64(p[start]) << 16) | np.int64(k[start])
        runs[nk] = w - start
        nk += 1
        if nk + w + 1 > keys.size or y == h - 1:
            for r in range(nk):
                key = keys[r]
                n = runs[r]
                gp = key >> 16
                hist[gp] += n
                kk = key & 0xFFFF
                if kk > 1000:  # an instance (label id * 1000 + k), as cityscapesScripts tests
                    q = pred_lut[gp & 0xFF]
                    size[kk] += n
                    if q == label_of[kk]:
                        tp[kk] += n
                    if category_of[q] == inst_cat[kk]:
                        cat_tp[kk] += n
            nk = 0
    return -1
