"""A small PNG encoder for tests: every filter type forced per row, odd chunk layouts, Adam7,
and deliberate damage, so that the reader is tested on files no ordinary encoder writes.

Written from the PNG specification (ISO/IEC 15948), independently of the reader under test:
filtering here is vectorised NumPy over whole rows of *original* bytes, while the reader
undoes it with sequential compiled loops.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
GREY, RGB, PALETTE, GREY_ALPHA, RGBA = 0, 2, 3, 4, 6
CHANNELS = {GREY: 1, RGB: 3, PALETTE: 1, GREY_ALPHA: 2, RGBA: 4}
ADAM7 = ((0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2),
         (0, 1, 1, 2))


def chunk(ctype: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + ctype + data + struct.pack(
        ">I", zlib.crc32(data, zlib.crc32(ctype)))


def _paeth(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> np.ndarray:
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    return np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))


def filter_row(ftype: int, row: np.ndarray, above: np.ndarray, bpp: int) -> np.ndarray:
    """Filter one row of bytes (``above`` is the previous row's original bytes, or zeros)."""
    x = row.astype(np.int32)
    b = above.astype(np.int32)
    a = np.concatenate([np.zeros(bpp, np.int32), x[:-bpp]])[: x.size]
    c = np.concatenate([np.zeros(bpp, np.int32), b[:-bpp]])[: x.size]
    pred = {0: 0, 1: a, 2: b, 3: (a + b) // 2, 4: _paeth(a, b, c)}[ftype]
    return ((x - pred) & 0xFF).astype(np.uint8)


def _raw_image(rows: np.ndarray, bpp: int, filters: Sequence[int]) -> bytes:
    out = []
    above = np.zeros(rows.shape[1], np.uint8)
    for y, row in enumerate(rows):
        f = filters[y % len(filters)]
        out.append(bytes([f]) + filter_row(f, row, above, bpp).tobytes())
        above = row
    return b"".join(out)


def sample_bytes(samples: np.ndarray, bit_depth: int) -> np.ndarray:
    """``H x W x C`` samples as ``H x (W C bytes)`` big-endian bytes."""
    h = samples.shape[0]
    if bit_depth == 16:
        return samples.astype(">u2").view(np.uint8).reshape(h, -1)
    return samples.astype(np.uint8).reshape(h, -1)


def encode(
    samples: np.ndarray,
    colour_type: int,
    *,
    bit_depth: int = 8,
    filters: Sequence[int] | int = (0,),
    level: int = 6,
    idat_size: int | None = None,
    before_idat: Sequence[tuple[bytes, bytes]] = (),
    after_idat: Sequence[tuple[bytes, bytes]] = (),
    interlace: bool = False,
    palette: bool | None = None,
    size: tuple[int, int] | None = None,
    raw: bytes | None = None,
    end: bool = True,
) -> bytes:
    """Encode ``samples`` (``H x W`` or ``H x W x C``, 8 or 16-bit) as a PNG.

    ``filters`` gives the filter type of each row (cycled). ``idat_size`` splits the zlib
    stream over IDAT chunks of that many bytes. ``size`` overrides the (width, height) written
    in IHDR and ``raw`` the filtered bytes that are compressed (for damaged files); ``end=False``
    leaves out IEND.
    """
    if samples.ndim == 2:
        samples = samples[..., None]
    h, w, ch = samples.shape
    assert ch == CHANNELS[colour_type]
    if isinstance(filters, int):
        filters = (filters,)
    bpp = max(1, ch * bit_depth // 8)
    if raw is None:
        if interlace:
            parts = []
            for xs, ys, dx, dy in ADAM7:
                sub = samples[ys::dy, xs::dx]
                if sub.shape[0] and sub.shape[1]:
                    parts.append(_raw_image(sample_bytes(sub, bit_depth), bpp, filters))
            raw = b"".join(parts)
        else:
            raw = _raw_image(sample_bytes(samples, bit_depth), bpp, filters)
    width, height = size if size is not None else (w, h)
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, int(interlace))
    out = [SIGNATURE, chunk(b"IHDR", ihdr)]
    if palette or (palette is None and colour_type == PALETTE):
        out.append(chunk(b"PLTE", bytes(range(256)) * 3))
    out += [chunk(t, d) for t, d in before_idat]
    stream = zlib.compress(raw, level)
    step = idat_size or len(stream) or 1
    out += [chunk(b"IDAT", stream[i:i + step]) for i in range(0, max(len(stream), 1), step)]
    out += [chunk(t, d) for t, d in after_idat]
    if end:
        out.append(chunk(b"IEND", b""))
    return b"".join(out)
