"""The streaming zlib inflater (``native/png_inflate.c``) and the streamed instance-mask pass
against independent references.

* :func:`segeval.core.kernels.c_png.inflate_rows` against zlib (Python's :mod:`zlib`, as
  ``segeval.formats.png._inflate_zlib`` runs it: a stream is accepted when it ends, carries the
  right Adler-32 and inflates to exactly the announced size): streams zlib writes at every
  level and strategy (``Z_FILTERED``, ``Z_HUFFMAN_ONLY``, ``Z_RLE``, ``Z_FIXED``, stored
  blocks at level 0), windows of 512 bytes to 32 KiB, flushes that cut the data into many
  blocks; random mutations of them (the inflater gives zlib's bytes or refuses where zlib
  refuses); and streams built here bit by bit from RFC 1951 for the cases no encoder writes
  (incomplete and over-subscribed codes, distances before the start, symbols without a
  meaning, a preset dictionary, ...).
* :func:`segeval.core.kernels.c_png.mask_overlaps_stream` and
  :func:`segeval.core.kernels.c_png.mask_overlaps_png` against
  :func:`segeval.core.kernels.c_png.mask_overlaps` on zlib's inflated data and against NumPy
  (``bincount(index[ids[mask != 0]])`` and the box of the mask's pixels).
* ``mask_counts`` (the Cityscapes instance reader) words a damaged mask file exactly as the
  PNG reader does.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.conftest import mask_image
from tests.formats import pngenc

c_png = pytest.importorskip("segeval.core.kernels.c_png",
                           reason="the compiled PNG kernels are not built")

STRATEGIES = (zlib.Z_DEFAULT_STRATEGY, zlib.Z_FILTERED, zlib.Z_HUFFMAN_ONLY, zlib.Z_RLE,
              zlib.Z_FIXED)


def zlib_inflate(stream: bytes, size: int) -> bytes | None:
    """What segeval's zlib inflater accepts: the stream's bytes when it ends (Adler-32
    checked) after exactly ``size`` bytes, else ``None``."""
    d = zlib.decompressobj()
    try:
        out = d.decompress(stream, size + 1)
    except zlib.error:
        return None
    return out if d.eof and len(out) == size else None


def compress(data: bytes, level: int, strategy: int, wbits: int = 15, mem: int = 8,
             pieces: int = 1, flush: int = zlib.Z_SYNC_FLUSH) -> bytes:
    """``data`` compressed by zlib in ``pieces`` parts with ``flush`` between them."""
    c = zlib.compressobj(level, zlib.DEFLATED, wbits, mem, strategy)
    step = max(1, -(-len(data) // pieces))
    out = []
    for i in range(0, len(data), step):
        out.append(c.compress(data[i:i + step]))
        if i + step < len(data):
            out.append(c.flush(flush))
    out.append(c.flush())
    return b"".join(out)


def inflate(stream: bytes, size: int, stride: int | None = None) -> tuple[int, bytes]:
    """:func:`inflate_rows` with rows of ``stride`` bytes (``size`` itself if not given; a
    divisor of ``size``)."""
    stride = stride or max(size, 1)
    return c_png.inflate_rows(np.frombuffer(stream, np.uint8), stride, size // stride)


def data_of(kind: str, n: int, rng: np.random.Generator) -> bytes:
    """``n`` bytes of one kind: random, sparse (a mask's rows), runs, a short period, or a far
    one (random blocks of 30,000 bytes repeated: copies from 30,000 bytes back, across the
    slides of the inflater's window)."""
    if kind == "random":
        return rng.integers(0, 256, n, dtype=np.uint8).tobytes()
    if kind == "sparse":
        a = np.zeros(n, np.uint8)
        a[rng.random(n) < 0.01] = rng.integers(1, 256)
        return a.tobytes()
    if kind == "runs":
        return np.repeat(rng.integers(0, 4, n // 50 + 1, dtype=np.uint8),
                         rng.integers(1, 400, n // 50 + 1))[:n].tobytes().ljust(n, b"\0")
    if kind == "far":
        return (rng.integers(0, 256, 30_000, dtype=np.uint8).tobytes() * (n // 30_000 + 1))[:n]
    return (bytes(range(7)) * (n // 7 + 1))[:n]


def divisor(n: int, rng: np.random.Generator) -> int:
    """A divisor of ``n`` (a row stride), ``n`` itself for 0 or 1."""
    if n <= 1:
        return max(n, 1)
    ds = [d for d in range(1, min(n, 3000) + 1) if n % d == 0]
    return int(rng.choice(ds))


# ------------------------------------------------------------------------------- zlib's streams


@settings(max_examples=150, deadline=None)
@given(n=st.integers(0, 400_000),
       kind=st.sampled_from(["random", "sparse", "runs", "period", "far"]),
       level=st.integers(0, 9), strategy=st.sampled_from(STRATEGIES), wbits=st.integers(9, 15),
       mem=st.integers(1, 9), pieces=st.integers(1, 6),
       flush=st.sampled_from([zlib.Z_SYNC_FLUSH, zlib.Z_FULL_FLUSH, zlib.Z_BLOCK]),
       tail=st.binary(max_size=3), seed=st.integers(0, 2**32))
def test_zlibs_streams_inflate_to_zlibs_bytes(n, kind, level, strategy, wbits, mem, pieces,
                                              flush, tail, seed) -> None:
    rng = np.random.default_rng(seed)
    data = data_of(kind, n, rng)
    stream = compress(data, level, strategy, wbits, mem, pieces, flush) + tail
    assert zlib_inflate(stream, n) == data  # bytes after the stream are left unused
    code, out = inflate(stream, n, divisor(n, rng))
    assert code == c_png.INFLATE_OK and out == data
    # one byte more or fewer than the stream holds: refused, as zlib refuses it
    if n:
        assert inflate(stream, n - 1)[0] == c_png.INFLATE_TOO_LONG
    assert inflate(stream, n + 1)[0] == c_png.INFLATE_TOO_SHORT


def test_the_row_function_sees_each_row_once_in_order_and_zero_rows_known() -> None:
    """Rows of a mask-like image (about 4 MB, beyond the window: the window slides many
    times) are handed over complete; the Adler-32 is checked over all of them."""
    h, w = 2000, 2047
    rows = np.zeros((h, w + 1), np.uint8)
    rows[::7, 0] = 2
    rows[500:900, 300:700] = 255
    rows[1500, 5] = 1
    data = rows.tobytes()
    for level in (1, 6, 9):
        stream = zlib.compress(data, level)
        assert inflate(stream, len(data), w + 1) == (c_png.INFLATE_OK, data)
        bad = bytearray(stream)
        bad[-1] ^= 1
        assert inflate(bytes(bad), len(data), w + 1)[0] == c_png.INFLATE_BAD_ADLER


@pytest.mark.parametrize("period", [1000, 20_000, 32_000, 32_506])
def test_copies_from_far_back_across_the_window_slides(period: int) -> None:
    """A random block repeated every ``period`` bytes, 1.2 MB in all: zlib copies it from
    ``period`` bytes back (32,506 is the farthest zlib's encoder goes), after the window has
    slid several times."""
    rng = np.random.default_rng(period)
    block = rng.integers(0, 256, period, dtype=np.uint8).tobytes()
    data = (block * (1_200_000 // period + 1))[:1_200_000]
    for level in (1, 6, 9):
        stream = zlib.compress(data, level)
        assert inflate(stream, len(data), 3000) == (c_png.INFLATE_OK, data)


@settings(max_examples=300, deadline=None)
@given(n=st.integers(1, 20_000), kind=st.sampled_from(["random", "sparse", "runs", "period"]),
       level=st.integers(0, 9), strategy=st.sampled_from(STRATEGIES),
       edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255),
                                st.sampled_from(["flip", "set", "cut", "insert"])),
                      min_size=1, max_size=4),
       seed=st.integers(0, 2**32))
def test_mutated_streams_give_zlibs_bytes_or_are_refused_as_zlib_refuses(
        n, kind, level, strategy, edits, seed) -> None:
    rng = np.random.default_rng(seed)
    data = data_of(kind, n, rng)
    s = bytearray(compress(data, level, strategy))
    for where, value, how in edits:
        i = int(where * len(s))
        if how == "flip":
            s[i] ^= 1 << (value % 8)
        elif how == "set":
            s[i] = value
        elif how == "cut":
            del s[i:]
        else:
            s[i:i] = bytes([value])
        if not s:
            break
    stream = bytes(s)
    for size in (n, n - 1, n + 7):
        want = zlib_inflate(stream, size)
        code, out = inflate(stream, size)
        if want is None:
            assert code != c_png.INFLATE_OK
        else:
            assert code == c_png.INFLATE_OK and out == want


# ------------------------------------------------------------------ streams built bit by bit


class Bits:
    """An RFC 1951 bit writer: fields from their least significant bit, Huffman codes from
    their most significant bit."""

    def __init__(self) -> None:
        self.bits: list[int] = []

    def put(self, value: int, n: int) -> Bits:
        self.bits += [(value >> i) & 1 for i in range(n)]
        return self

    def code(self, code: int, n: int) -> Bits:
        self.bits += [(code >> (n - 1 - i)) & 1 for i in range(n)]
        return self

    def align(self) -> Bits:
        self.bits += [0] * (-len(self.bits) % 8)
        return self

    def raw(self, data: bytes) -> Bits:
        self.align()
        for byte in data:
            self.bits += _BYTE_BITS[byte]
        return self

    def tobytes(self) -> bytes:
        return np.packbits(np.array(self.bits, np.uint8), bitorder="little").tobytes()


_BYTE_BITS = [[(v >> i) & 1 for i in range(8)] for v in range(256)]


def canonical(lengths: list[int]) -> dict[int, tuple[int, int]]:
    """The canonical Huffman codes of RFC 1951 3.2.2: ``{symbol: (code, length)}``."""
    count = [0] * 16
    for n in lengths:
        count[n] += 1
    count[0] = 0
    nxt, code = [0] * 16, 0
    for n in range(1, 16):
        code = (code + count[n - 1]) << 1
        nxt[n] = code
    out = {}
    for sym, n in enumerate(lengths):
        if n:
            out[sym] = (nxt[n], n)
            nxt[n] += 1
    return out


FIXED_LIT = [8] * 144 + [9] * 112 + [7] * 24 + [8] * 8
FIXED_DIST = [5] * 32
# the code length code used below: symbols 0..15 of 5 bits, 16 of 2, 17 and 18 of 3 (complete)
PRE = [5] * 16 + [2, 3, 3]
PRE_ORDER = (16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15)
LEN_BASE = (3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83,
            99, 115, 131, 163, 195, 227, 258)
LEN_EXTRA = (0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5,
             5, 0)
DIST_BASE = (1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769,
             1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577)
DIST_EXTRA = (0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11,
              12, 12, 13, 13)


def header(b: Bits, lit: list[int], dist: list[int], pre: list[int] = PRE,
           lengths: list[tuple[int, int, int]] | None = None) -> None:
    """A dynamic block's header: ``lit`` and ``dist`` code lengths, written with the code
    length code ``pre`` one length at a time (or the given ``(symbol, extra, nbits)``
    sequence)."""
    b.put(len(lit) - 257, 5).put(len(dist) - 1, 5).put(19 - 4, 4)
    for sym in PRE_ORDER:
        b.put(pre[sym], 3)
    codes = canonical(pre)
    for sym, extra, nbits in lengths or [(n, 0, 0) for n in lit + dist]:
        b.code(*codes[sym]).put(extra, nbits)


def symbols(b: Bits, lit: list[int], dist: list[int], items: list) -> None:
    """Literals (ints), matches ``(length, distance)`` and ``"end"`` in the given codes."""
    lc, dc = canonical(lit), canonical(dist)
    for item in items:
        if item == "end":
            b.code(*lc[256])
        elif isinstance(item, int):
            b.code(*lc[item])
        else:
            length, d = item
            k = max(i for i in range(29) if LEN_BASE[i] <= length)
            b.code(*lc[257 + k]).put(length - LEN_BASE[k], LEN_EXTRA[k])
            j = max(i for i in range(30) if DIST_BASE[i] <= d)
            b.code(*dc[j]).put(d - DIST_BASE[j], DIST_EXTRA[j])


def zlib_stream(body: bytes, out: bytes, cmf: int = 0x78, fdict: bool = False) -> bytes:
    """A zlib stream: header (check bits made right), ``body``, the Adler-32 of ``out``."""
    flg = 0x20 if fdict else 0
    flg += (31 - ((cmf << 8) + flg) % 31) % 31
    return bytes([cmf, flg]) + body + struct.pack(">I", zlib.adler32(out))


def lit_lengths(used: dict[int, int], n: int = 257) -> list[int]:
    out = [0] * n
    for sym, length in used.items():
        out[sym] = length
    return out


def crafted() -> dict[str, tuple[bytes, bytes]]:
    """``name -> (zlib stream, the bytes it holds if it is valid)``."""
    out = {}
    # literals 'a' (1 bit) and end (1 bit); no distance code at all: valid in zlib
    lit, dist = lit_lengths({97: 1, 256: 1}), [0]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    symbols(b, lit, dist, [97, 97, 97, "end"])
    out["no distance code"] = (zlib_stream(b.tobytes(), b"aaa"), b"aaa")
    # one distance code of one bit (incomplete: zlib allows that one)
    lit = lit_lengths({97: 2, 256: 2, 257 + 7: 1}, 265)
    dist = [1]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    symbols(b, lit, dist, [97, (10, 1), "end"])
    out["one distance code of one bit"] = (zlib_stream(b.tobytes(), b"a" * 11), b"a" * 11)
    # ... and its unused bit pattern: no symbol
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    symbols(b, lit, dist, [97])
    b.code(*canonical(lit)[264]).code(1, 1)  # distance code '1' does not exist
    symbols(b, lit, dist, ["end"])
    out["the missing half of a one-bit distance code"] = (zlib_stream(b.tobytes(), b"a" * 11),
                                                          b"a" * 11)
    # a literal/length code of one symbol of one bit: the end code alone
    lit, dist = lit_lengths({256: 1}), [0]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    symbols(b, lit, dist, ["end"])
    out["only the end code, one bit"] = (zlib_stream(b.tobytes(), b""), b"")
    # incomplete literal/length code of more than one symbol: refused
    lit, dist = lit_lengths({97: 2, 256: 2}), [0]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    symbols(b, lit, dist, [97, "end"])
    out["incomplete literal/length code"] = (zlib_stream(b.tobytes(), b"a"), b"a")
    # incomplete distance code of two symbols
    lit, dist = lit_lengths({97: 2, 256: 2, 257 + 7: 1}, 265), [2, 2]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    symbols(b, lit, dist, [97, (10, 1), "end"])
    out["incomplete distance code"] = (zlib_stream(b.tobytes(), b"a" * 11), b"a" * 11)
    # over-subscribed literal/length code
    lit, dist = lit_lengths({97: 1, 98: 1, 256: 1}), [0]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    symbols(b, lit, dist, [97, "end"])
    out["over-subscribed literal/length code"] = (zlib_stream(b.tobytes(), b"a"), b"a")
    # an incomplete code length code (libdeflate takes one of a single one-bit code; zlib not)
    lit, dist = lit_lengths({97: 1, 256: 1}), [0]
    b = Bits().put(1, 1).put(2, 2)
    pre = [0] * 19
    pre[1] = 1  # only the length 1 has a code (one bit) and every length is 1 ... and 0
    pre[0] = 0
    b.put(len(lit) - 257, 5).put(0, 5).put(15, 4)
    for sym in PRE_ORDER:
        b.put(pre[sym], 3)
    out["incomplete code length code"] = (zlib_stream(b.tobytes(), b""), b"")
    # no end-of-block code
    lit, dist = lit_lengths({97: 1, 98: 1}), [0]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist)
    out["no end-of-block code"] = (zlib_stream(b.tobytes(), b""), b"")
    # a repeat of the previous length with no length before it
    lit, dist = lit_lengths({97: 1, 256: 1}), [0]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist, lengths=[(16, 0, 2), *[(n, 0, 0) for n in lit + dist][3:]])
    symbols(b, lit, dist, ["end"])
    out["a repeat with nothing to repeat"] = (zlib_stream(b.tobytes(), b""), b"")
    # zeros repeated past the end of the lengths
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist, lengths=[(n, 0, 0) for n in lit[:250]] + [(18, 127, 7)])
    out["a repeat past the end of the lengths"] = (zlib_stream(b.tobytes(), b""), b"")
    # repeats that fill the lengths exactly, across from literals into distances: valid
    lit, dist = lit_lengths({97: 1, 256: 1}, 260), [0]
    # 97 zeros, 1, 138 + 20 zeros, 1, then 4 zeros: literal/lengths 257..259 and distance 0
    seq = [(18, 97 - 11, 7), (1, 0, 0), (18, 127, 7), (18, 20 - 11, 7), (1, 0, 0), (17, 1, 3)]
    b = Bits().put(1, 1).put(2, 2)
    header(b, lit, dist, lengths=seq)
    symbols(b, lit, dist, [97, 97, "end"])
    out["repeats across the lengths"] = (zlib_stream(b.tobytes(), b"aa"), b"aa")
    # 287 literal/length codes, 31 distance codes
    for nlit, ndist, name in ((287, 1, "287 literal/length codes"),
                              (257, 31, "31 distance codes")):
        lit = lit_lengths({97: 1, 256: 1}, nlit)
        dist = [0] * ndist
        b = Bits().put(1, 1).put(2, 2)
        header(b, lit, dist)
        symbols(b, lit, dist, [97, "end"])
        out[name] = (zlib_stream(b.tobytes(), b"a"), b"a")
    # fixed codes: literal/length 286 and 287, distance 30 and 31 have no meaning
    fl, fd = canonical(FIXED_LIT), canonical(FIXED_DIST)
    for sym in (286, 287):
        b = Bits().put(1, 1).put(1, 2).code(*fl[97]).code(*fl[sym]).code(*fd[0])
        b.code(*fl[256])
        out[f"fixed literal/length {sym}"] = (zlib_stream(b.tobytes(), b"a" * 4), b"a" * 4)
    for sym in (30, 31):
        b = Bits().put(1, 1).put(1, 2).code(*fl[97]).code(*fl[257]).code(*fd[sym])
        b.code(*fl[256])
        out[f"fixed distance {sym}"] = (zlib_stream(b.tobytes(), b"a" * 4), b"a" * 4)
    # distances: to the first byte (valid), before it (refused)
    for d, name in ((3, "a distance to the first byte"), (4, "a distance before the start")):
        b = Bits().put(1, 1).put(1, 2)
        symbols(b, FIXED_LIT, FIXED_DIST, [97, 98, 99, (5, d), "end"])
        want = (b"abc" * 3)[:8] if d == 3 else b"abc"
        out[name] = (zlib_stream(b.tobytes(), want), want)
    # a distance of 32768 (the farthest there is) after 299,742 bytes of stored blocks (read in
    # rows of 1000 bytes, the inflater's window has slid by then)
    first = np.random.default_rng(7).integers(0, 256, 299_742, dtype=np.uint8).tobytes()
    b = Bits()
    for i in range(0, len(first), 60_000):
        part = first[i:i + 60_000]
        b.put(0, 1).put(0, 2).raw(struct.pack("<HH", len(part), 0xFFFF - len(part)) + part)
    b.put(1, 1).put(1, 2)
    symbols(b, FIXED_LIT, FIXED_DIST, [(258, 32768), "end"])
    want = first + first[-32768:][:258]
    out["a distance of 32 KiB"] = (zlib_stream(b.tobytes(), want), want)
    # stored blocks: empty ones, lengths that do not match
    b = Bits().put(0, 1).put(0, 2).raw(struct.pack("<HH", 0, 0xFFFF))
    b.put(1, 1).put(0, 2).raw(struct.pack("<HH", 3, 0xFFFC) + b"xyz")
    out["an empty stored block"] = (zlib_stream(b.tobytes(), b"xyz"), b"xyz")
    b = Bits().put(1, 1).put(0, 2).raw(struct.pack("<HH", 3, 0xFFFD) + b"xyz")
    out["stored lengths that do not match"] = (zlib_stream(b.tobytes(), b"xyz"), b"xyz")
    b = Bits().put(1, 1).put(3, 2).put(0, 20)
    out["block type 3"] = (zlib_stream(b.tobytes(), b""), b"")
    # the zlib header
    plain = Bits().put(1, 1).put(0, 2).raw(struct.pack("<HH", 1, 0xFFFE) + b"q").tobytes()
    out["a window of 32 KiB"] = (zlib_stream(plain, b"q", cmf=0x78), b"q")
    out["a window of 256 bytes"] = (zlib_stream(plain, b"q", cmf=0x08), b"q")
    out["a window of 64 KiB"] = (zlib_stream(plain, b"q", cmf=0x88), b"q")
    out["method 7"] = (zlib_stream(plain, b"q", cmf=0x77), b"q")
    out["a preset dictionary"] = (zlib_stream(b"\0\0\0\1" + plain, b"q", fdict=True), b"q")
    bad = bytearray(zlib_stream(plain, b"q"))
    bad[1] ^= 1
    out["header check bits"] = (bytes(bad), b"q")
    return out


CRAFTED = crafted()
# what zlib says of each (checked below against zlib itself, then against the inflater)
VALID = {"no distance code", "one distance code of one bit", "only the end code, one bit",
         "repeats across the lengths", "a distance to the first byte", "a distance of 32 KiB",
         "an empty stored block", "a window of 32 KiB", "a window of 256 bytes"}


@pytest.mark.parametrize("name", list(CRAFTED))
def test_streams_built_from_the_rfc_are_taken_as_zlib_takes_them(name: str) -> None:
    stream, data = CRAFTED[name]
    want = zlib_inflate(stream, len(data))
    assert (want is not None) == (name in VALID)  # the stream says what it was made to say
    stride = 1000 if len(data) % 1000 == 0 and data else None
    code, out = inflate(stream, len(data), stride)
    if want is None:
        assert code != c_png.INFLATE_OK
    else:
        assert code == c_png.INFLATE_OK and out == want
    # every prefix is a truncated stream (refused by both; of a long one, 300 of them)
    step = max(1, len(stream) // 300)
    for cut in [*range(0, len(stream) - 4, step), *range(max(0, len(stream) - 40),
                                                          len(stream) - 4)]:
        assert inflate(stream[:cut], len(data), stride)[0] != c_png.INFLATE_OK


def test_truncation_and_refusal_codes() -> None:
    data = bytes(range(256)) * 40
    stream = zlib.compress(data)
    assert inflate(stream[:-4], len(data))[0] == c_png.INFLATE_TRUNCATED
    assert inflate(stream[:1], len(data))[0] == c_png.INFLATE_TRUNCATED
    assert inflate(b"", 0)[0] == c_png.INFLATE_TRUNCATED
    assert inflate(b"\x78\x00" + stream[2:], len(data))[0] == c_png.INFLATE_BAD_HEADER
    assert inflate(CRAFTED["block type 3"][0], 0)[0] == c_png.INFLATE_BAD_DATA
    assert inflate(stream, len(data) + 1)[0] == c_png.INFLATE_TOO_SHORT
    assert inflate(stream, len(data) - 1)[0] == c_png.INFLATE_TOO_LONG
    bad = stream[:-1] + bytes([stream[-1] ^ 0x80])
    assert inflate(bad, len(data))[0] == c_png.INFLATE_BAD_ADLER
    # the wrapper's own checks
    with pytest.raises(ValueError):
        c_png.inflate_rows(np.frombuffer(stream, np.uint8), 0, 1)


def test_adler32_is_zlibs() -> None:
    rng = np.random.default_rng(0)
    for n in (0, 1, 31, 32, 33, 100, 5552, 5553, 40_000, 200_001):
        for kind in ("random", "sparse", "runs"):
            data = data_of(kind, n, rng)
            start = int(rng.integers(1, 2**32))
            assert c_png.adler32(np.frombuffer(data, np.uint8), start) == zlib.adler32(data,
                                                                                      start)
    ff = np.full(1 << 20, 255, np.uint8)  # the largest sums between reductions
    assert c_png.adler32(ff) == zlib.adler32(ff.tobytes())


# --------------------------------------------------------------------- the streamed mask pass


def numpy_counts(mask: np.ndarray, ids: np.ndarray, index: np.ndarray, n: int
                 ) -> tuple[np.ndarray, tuple[int, int, int, int]]:
    w = mask.shape[1]
    counts = np.bincount(index[ids[mask != 0]], minlength=n)
    ys, xs = np.nonzero(mask)
    box = (-1, 0, w, 0) if ys.size == 0 else (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
    return counts, tuple(int(v) for v in box)


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 70), w=st.integers(1, 300), seed=st.integers(0, 2**32),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=5), wide=st.booleans(),
       shape=st.sampled_from(["empty", "boxes", "scattered", "edges", "noise"]),
       level=st.integers(0, 9), strategy=st.sampled_from(STRATEGIES),
       idat=st.sampled_from([None, 1, 7, 100]))
def test_the_streamed_mask_pass_counts_what_the_whole_pass_and_numpy_count(
        h, w, seed, filters, wide, shape, level, strategy, idat) -> None:
    rng = np.random.default_rng(seed)
    mask = mask_image(shape, h, w, rng)
    raw = pngenc._raw_image(mask, 1, filters)
    stream = compress(raw, level, strategy)
    ids = rng.integers(0, 9, (h, w)).astype(np.uint16 if wide else np.uint8)
    index = rng.integers(0, 5, 9).astype(np.int32)
    want_counts, want_box = numpy_counts(mask, ids, index, 5)
    whole = np.zeros(5, np.int64)
    got_whole = c_png.mask_overlaps(np.frombuffer(raw, np.uint8), h, w, ids.reshape(-1), index,
                                   whole)
    streamed = np.zeros(5, np.int64)
    got = c_png.mask_overlaps_stream(np.frombuffer(stream, np.uint8), h, w, ids.reshape(-1),
                                    index, streamed)
    assert got == got_whole == (-1, *want_box)
    np.testing.assert_array_equal(streamed, want_counts)
    np.testing.assert_array_equal(whole, want_counts)
    # the whole file in one call, its stream in IDAT chunks of `idat` bytes
    file = pngenc.chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
    step = idat or len(stream)
    file = pngenc.SIGNATURE + file + b"".join(
        pngenc.chunk(b"IDAT", stream[i:i + step]) for i in range(0, len(stream), step))
    file += pngenc.chunk(b"IEND", b"")
    one = np.zeros(5, np.int64)
    assert c_png.mask_overlaps_png(np.frombuffer(file, np.uint8), h, w, ids.reshape(-1), index,
                                  one) == want_box
    np.testing.assert_array_equal(one, want_counts)


def test_a_bad_stream_comes_before_a_bad_filter_type_or_index() -> None:
    h, w = 30, 40
    mask = np.zeros((h, w), np.uint8)
    mask[5:25, 5:30] = 255
    raw = bytearray(pngenc._raw_image(mask, 1, (2,)))
    raw[10 * (w + 1)] = 6  # row 10
    ids = np.zeros(h * w, np.uint8)
    index = np.zeros(1, np.int32)
    good = np.frombuffer(zlib.compress(bytes(raw)), np.uint8)
    counts = np.zeros(1, np.int64)
    # as mask_overlaps on the inflated data: the bad row, the rows above it counted
    assert c_png.mask_overlaps_stream(good, h, w, ids, index, counts) == (10, -1, 0, 0, 0)
    assert counts[0] == 5 * 25
    bad = good.copy()
    bad[-1] ^= 1  # the Adler-32: the stream's refusal comes first
    assert c_png.mask_overlaps_stream(bad, h, w, ids, index, np.zeros(1, np.int64)) is None
    raw[10 * (w + 1)] = 2
    stream = np.frombuffer(zlib.compress(bytes(raw)), np.uint8)
    with pytest.raises(ValueError, match="outside"):
        c_png.mask_overlaps_stream(stream, h, w, ids + 1, index, np.zeros(1, np.int64))
    bad = np.frombuffer(zlib.compress(bytes(raw))[:-1], np.uint8)
    assert c_png.mask_overlaps_stream(bad, h, w, ids + 1, index, np.zeros(1, np.int64)) is None
    with pytest.raises(ValueError, match="lengths"):
        c_png.mask_overlaps_stream(stream, h, w, ids[:-1], index, np.zeros(1, np.int64))


def test_the_one_call_pass_leaves_other_files_to_the_general_path() -> None:
    """``None`` and zero counts for every file the general path must word or decode."""
    h, w = 12, 20
    mask = np.zeros((h, w), np.uint8)
    mask[3:9, 4:15] = 255
    ids = np.zeros(h * w, np.uint8)
    index = np.zeros(1, np.int32)

    def one(data: bytes, hh: int = h, ww: int = w, ids=ids):
        counts = np.zeros(1, np.int64)
        got = c_png.mask_overlaps_png(np.frombuffer(data, np.uint8), hh, ww, ids, index, counts)
        assert got is not None or counts[0] == 0
        return got

    good = pngenc.encode(mask, pngenc.GREY)
    assert one(good) == (3, 9, 4, 15)
    raw = bytearray(pngenc._raw_image(mask, 1, (0,)))
    raw[5 * (w + 1)] = 9
    cases = {
        "bad filter type": pngenc.encode(mask, pngenc.GREY, raw=bytes(raw)),
        "another size": pngenc.encode(mask[:, :-1], pngenc.GREY),
        "16-bit": pngenc.encode(mask.astype(np.uint16), pngenc.GREY, bit_depth=16),
        "palette": pngenc.encode(mask, pngenc.PALETTE),
        "interlaced": pngenc.encode(mask, pngenc.GREY, interlace=True),
        "animated": pngenc.encode(mask, pngenc.GREY, before_idat=[(b"acTL", bytes(8))]),
        "no IEND": pngenc.encode(mask, pngenc.GREY, end=False),
        "too long": pngenc.encode(mask, pngenc.GREY, raw=bytes(raw) + b"\0"),
        "not a PNG": b"GIF89a" + good[6:],
        "bad CRC": good[:40] + bytes([good[40] ^ 1]) + good[41:],
    }
    for name, data in cases.items():
        assert one(data) is None, name
    assert one(good, ids=np.ones(h * w, np.uint8)) is None  # an id outside index
    with pytest.raises(ValueError, match="lengths"):
        one(good, ids=ids[:-1])


# ------------------------------------------------------------------ mask_counts' messages


def test_mask_counts_words_damaged_masks_as_the_png_reader_does(tmp_path: Path) -> None:
    """A damaged mask is refused by the one-call pass and worded by the general path: the
    message is the PNG reader's, word for word."""
    from segeval.errors import FileFormatError
    from segeval.formats.base import File, Folder
    from segeval.formats.cityscapes.instance import mask_counts
    from segeval.formats.png import decode_label_png

    h, w = 16, 24
    mask = np.zeros((h, w), np.uint8)
    mask[2:12, 3:20] = 255
    raw = bytearray(pngenc._raw_image(mask, 1, (2,)))
    good = zlib.compress(bytes(raw))
    raw[7 * (w + 1)] = 5
    cases = {
        "filter.png": zlib.compress(bytes(raw)),
        "adler.png": good[:-1] + bytes([good[-1] ^ 1]),
        "cut.png": good[:-6],
        "long.png": zlib.compress(bytes(raw) + b"\0\0"),
        "short.png": zlib.compress(bytes(raw)[:-3]),
        "garbage.png": good[:2] + b"\xff" * (len(good) - 2),
    }
    ids = np.zeros((h, w), np.uint8)
    index = np.zeros(1, np.int32)
    tree = Folder(tmp_path)
    for name, stream in cases.items():
        data = pngenc.SIGNATURE + pngenc.chunk(
            b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)) + pngenc.chunk(
            b"IDAT", stream) + pngenc.chunk(b"IEND", b"")
        (tmp_path / name).write_bytes(data)
        with pytest.raises(FileFormatError) as reader:
            decode_label_png(data, str(tmp_path / name), decoder="fast")
        with pytest.raises(FileFormatError) as ours:
            mask_counts(File(tree, name), "auto", ids, index, 1, "im")
        assert str(ours.value) == str(reader.value), name
    (tmp_path / "ok.png").write_bytes(pngenc.encode(mask, pngenc.GREY))
    counts = mask_counts(File(tree, "ok.png"), "auto", ids, index, 1, "im")
    assert counts is not None and counts.tolist() == [int((mask != 0).sum())]
