"""The three PNG decoders agree on every byte string: the same array, or all refuse.

The fast reader (:func:`segeval.formats.png._decode_fast`), Pillow (``decoder="pillow"``) and
``"auto"`` are run on valid label PNGs (written by the independent test encoder
:mod:`tests.formats.pngenc`) after hypothesis mutates them: flipped bytes, truncation,
duplicated, reordered, dropped and inserted chunks (a second IHDR of another size, IDAT after
IEND, tRNS, PLTE and text chunks of any length, unknown critical chunks), trailing data; CRCs
are recomputed in most examples so that a mutation reaches the decoder instead of the CRC
check. A decoder that raises anything but a :class:`~segeval.errors.SegevalError` fails the
test (a traceback for the user).

The number of examples is bounded for CI (and derandomized, so CI is reproducible); set
``SEGEVAL_FUZZ_EXAMPLES`` (read by this test only) for a long random run, see
``docs/fuzzing.md``.
"""

from __future__ import annotations

import os
import re
import struct
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from segeval.core.kernels import compiled_available
from segeval.errors import SegevalError
from segeval.formats.png import decode_label_png
from tests.formats import pngenc

_LONG = int(os.environ.get("SEGEVAL_FUZZ_EXAMPLES", "0"))
_SETTINGS = settings(
    max_examples=_LONG or 250,
    deadline=None,
    derandomize=not _LONG,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

pytestmark = pytest.mark.skipif(not compiled_available(),
                                reason="the fast reader needs the compiled kernels, which are "
                                       "not built")

# (colour type, bit depth, interlaced): the kinds the fast reader reads, and some it leaves
# to Pillow (Adam7, grey + alpha)
_KINDS = [(pngenc.GREY, 8, False), (pngenc.PALETTE, 8, False), (pngenc.GREY, 16, False),
          (pngenc.RGB, 8, False), (pngenc.RGBA, 8, False), (pngenc.GREY, 8, True),
          (pngenc.GREY_ALPHA, 8, False)]


@st.composite
def valid_pngs(draw: st.DrawFn) -> bytes:
    colour, depth, interlace = draw(st.sampled_from(_KINDS))
    h = draw(st.integers(1, 9))
    w = draw(st.integers(1, 9))
    channels = pngenc.CHANNELS[colour]
    top = (1 << depth) - 1
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    # few distinct values, as label maps have, or any
    values = rng.integers(0, 4 if draw(st.booleans()) else top + 1, (h, w, channels))
    filters = draw(st.lists(st.integers(0, 4), min_size=1, max_size=4))
    before = []
    if draw(st.booleans()):
        before.append((b"tEXt", b"Software\x00segeval test"))
    if colour == pngenc.PALETTE and draw(st.booleans()):
        before.append((b"tRNS", bytes(range(draw(st.integers(0, 8))))))
    return pngenc.encode(values.astype(np.uint16 if depth == 16 else np.uint8), colour,
                         bit_depth=depth, filters=filters, interlace=interlace,
                         idat_size=draw(st.sampled_from([None, 1, 7, 64])),
                         level=draw(st.sampled_from([0, 1, 9])), before_idat=before)


def chunks_of(data: bytes) -> list[tuple[bytes, bytes]]:
    """The chunks of a well-formed PNG: ``[(type, body)]``."""
    out, pos = [], 8
    while pos + 12 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        out.append((data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]))
        pos += 12 + n
    return out


def fix_crcs(data: bytes) -> bytes:
    """Recompute the CRC of every chunk that the length fields reach, so that a mutation is
    seen by the decoder rather than by the CRC check."""
    buf, pos = bytearray(data), 8
    while pos + 12 <= len(buf):
        (n,) = struct.unpack_from(">I", buf, pos)
        if pos + 12 + n > len(buf):
            break
        body = bytes(buf[pos + 4:pos + 8 + n])
        struct.pack_into(">I", buf, pos + 8 + n, zlib.crc32(body))
        pos += 12 + n
    return bytes(buf)


_EXTRA = st.one_of(
    st.tuples(st.just(b"IHDR"), st.builds(
        lambda w, h, d, c, i: struct.pack(">IIBBBBB", w, h, d, c, 0, 0, i),
        st.integers(0, 12), st.integers(0, 12), st.sampled_from([1, 8, 16]),
        st.sampled_from([0, 2, 3, 6]), st.integers(0, 1))),
    st.tuples(st.sampled_from([b"tRNS", b"PLTE", b"tEXt", b"zTXt", b"iTXt", b"gAMA",
                               b"sBIT", b"pHYs", b"bKGD", b"acTL", b"fcTL", b"eXIf",
                               b"abCd", b"ABCD", b"IDAT", b"IEND", b"a\x00c\xff"]),
              st.binary(max_size=40)),
)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = draw(valid_pngs())
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "duplicate", "swap", "drop", "insert",
                                   "append"]))
        chunks = chunks_of(data)
        if not data:
            break
        if op == "flip":  # mostly past the signature, which only the first check sees
            low = 8 if len(data) > 8 and draw(st.integers(0, 9)) else 0
            pos = draw(st.integers(low, len(data) - 1))
            data = data[:pos] + bytes([data[pos] ^ draw(st.integers(1, 255))]) + data[pos + 1:]
        elif op == "truncate":
            data = data[:draw(st.integers(0, len(data) - 1))]
        elif op == "append":
            data += draw(st.binary(min_size=1, max_size=30))
        elif chunks:
            i = draw(st.integers(0, len(chunks) - 1))
            if op == "duplicate":
                chunks.insert(draw(st.integers(0, len(chunks))), chunks[i])
            elif op == "swap":
                j = draw(st.integers(0, len(chunks) - 1))
                chunks[i], chunks[j] = chunks[j], chunks[i]
            elif op == "drop":
                del chunks[i]
            else:
                chunks.insert(draw(st.integers(1, len(chunks))), draw(_EXTRA))
            data = pngenc.SIGNATURE + b"".join(pngenc.chunk(t, b) for t, b in chunks)
    return fix_crcs(data) if draw(st.integers(0, 3)) else data


def outcome(data: bytes, decoder: str, panoptic: bool) -> tuple[object, ...]:
    try:
        arr = decode_label_png(data, "sub/x.png", panoptic=panoptic, decoder=decoder)
    except SegevalError as e:
        return ("refused", type(e).__name__, re.sub(r" at 0x[0-9a-f]+", "", str(e)))
    assert "\n" not in repr(arr.dtype)
    return ("read", arr.dtype.str, arr.shape, arr.tobytes())


def _why(result: tuple[object, ...]) -> str:
    """What became of a file, for the statistics of a long run: read, or the kind of refusal
    (the message without the file name and numbers)."""
    if result[0] == "read":
        return "read"
    text = str(result[2]).split(": ", 1)[-1]
    return "refused: " + re.sub(r"[0-9]+", "N", re.sub(r"'[^']*'", "'T'", text))[:70]


def check_agreement(data: bytes, record: bool = True) -> None:
    for panoptic in (False, True):
        fast = outcome(data, "fast", panoptic)
        if record:  # a statistic of the hypothesis run
            event(_why(fast))
        assert outcome(data, "pillow", panoptic) == fast, (panoptic, fast[:3])
        assert outcome(data, "auto", panoptic) == fast, (panoptic, fast[:3])


@_SETTINGS
@given(mutated())
def test_fast_pillow_and_auto_agree_on_mutated_pngs(data: bytes) -> None:
    check_agreement(data)


@_SETTINGS
@given(valid_pngs())
def test_valid_pngs_read_the_same_everywhere(data: bytes) -> None:
    check_agreement(data)
    # and a valid fast-kind PNG is read, not refused
    if data[25] in (0, 2, 3, 6) and data[28] == 0:
        assert outcome(data, "fast", data[25] in (2, 6))[0] == "read"


def _image() -> bytes:
    return pngenc.encode(np.arange(100 * 100, dtype=np.uint8).reshape(100, 100) % 7,
                         pngenc.GREY, filters=(0, 1, 2, 3, 4))


@pytest.mark.parametrize("case", ["second IHDR", "chunk after IEND", "bad IDAT CRC",
                                  "no IEND", "bad Adler-32", "extra data after the image",
                                  "bad chunk type after IDAT", "short tRNS after IDAT",
                                  "bad filter type"])
def test_known_disagreements_are_gone(case: str) -> None:
    """The cases found by the probe and by the fuzzer, each as a fixed example: all three
    decoders give one answer (and the file is refused where it is damaged)."""
    good = _image()
    chunks = chunks_of(good)
    idat = [k for k, (t, _) in enumerate(chunks) if t == b"IDAT"]
    refused = True
    if case == "second IHDR":  # Pillow alone would read the second one: 100x50
        chunks.insert(1, (b"IHDR", struct.pack(">IIBBBBB", 100, 50, 8, 0, 0, 0, 0)))
    elif case == "chunk after IEND":  # ignored by all (what follows IEND is not the PNG's)
        chunks.append((b"tEXt", b"a\x00b"))
        refused = False
    elif case == "short tRNS after IDAT":  # Pillow refused it ("Truncated tRNS chunk")
        chunks.insert(idat[-1] + 1, (b"tRNS", b"\x01"))
        refused = False  # tRNS does not change label indices; the fast reader ignores it
    elif case == "bad chunk type after IDAT":  # Pillow stopped reading there and accepted
        chunks.insert(idat[-1] + 1, (b"a\x00c\xff", b""))
        refused = False
    data = pngenc.SIGNATURE + b"".join(pngenc.chunk(t, b) for t, b in chunks)
    if case == "bad IDAT CRC":  # Pillow does not check IDAT CRCs
        pos = data.find(b"IDAT") + 4
        data = data[:pos] + bytes([data[pos] ^ 1]) + data[pos + 1:]
    elif case == "no IEND":
        data = data[:-12]
    elif case in ("bad Adler-32", "extra data after the image", "bad filter type"):
        raw = zlib.decompress(chunks[idat[0]][1])
        if case == "bad filter type":
            raw = raw[:101 * 3] + b"\x07" + raw[101 * 3 + 1:]
        stream = zlib.compress(raw + (b"\x00" * 101 if case.startswith("extra") else b""))
        if case == "bad Adler-32":
            stream = stream[:-1] + bytes([stream[-1] ^ 1])
        data = pngenc.SIGNATURE + b"".join(
            pngenc.chunk(t, stream if t == b"IDAT" else b) for t, b in chunks)
    check_agreement(data, record=False)
    assert (outcome(data, "pillow", False)[0] == "refused") == refused


@_SETTINGS
@given(mutated())
def test_the_streamed_check_agrees_too(data: bytes) -> None:
    """Images over the reusable buffer's size are checked a megabyte at a time with zlib
    before Pillow decodes them: that check refuses what the fast reader refuses, in its
    words (here forced on the small fuzzed images)."""
    from unittest import mock

    from segeval.formats import png

    with mock.patch.object(png, "_KEEP_BUFFER_BYTES", 0):
        check_agreement(data)


def _walk(parse, data: bytes) -> tuple[object, ...]:
    try:
        h = parse("sub/x.png", data)
    except SegevalError as e:
        return ("refused", type(e).__name__, str(e))
    return ("read", h.width, h.height, h.bit_depth, h.colour_type, h.interlaced, h.animated,
            b"".join(bytes(b) for b in h.idat), h.idat_start, h.idat_end)


@_SETTINGS
@given(mutated())
def test_the_c_and_python_chunk_walks_agree(data: bytes) -> None:
    """The chunk walk is C where the extension is available (:func:`segeval.formats.png.
    _parse_native`), else Python (``_parse_python``): on every byte string the same header and
    IDAT bytes, or the same message."""
    from segeval.formats import png

    if not data.startswith(png.PNG_SIGNATURE):  # both callers check the signature first
        return
    native = _walk(png._parse_native, data)
    event("walk: " + _why(native if native[0] == "refused" else ("read",)))
    assert native == _walk(png._parse_python, data)
