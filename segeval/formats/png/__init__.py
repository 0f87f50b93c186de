"""Reading label maps from PNG files: one reader for every adapter.

``read_label_png`` returns the stored *indices*, never colours: a palette PNG (Pascal VOC)
gives its palette indices, an 8-bit grey PNG ``uint8``, a 16-bit grey PNG ``uint16``
(Cityscapes instanceIds), a 1-bit PNG ``uint8`` 0/1. An RGB image is refused where indices are
expected, and turned into panoptic segment ids ``R + 256 G + 256^2 B`` (``uint32``, alpha
dropped) with ``panoptic=True``. Every failure is a :class:`~segeval.errors.SegevalError`
naming the file.

Two decoders give the same arrays, bit for bit:

* ``fast`` -- the kinds label maps use (8-bit grey or palette, 16-bit grey, 8-bit RGB/RGBA;
  not interlaced, not animated) are read here: the chunks are parsed and every CRC checked,
  the IDAT stream is inflated by libdeflate to exactly the size the header announces (called
  through ctypes from the ``deflate`` package's extension, into a buffer each thread reuses;
  else through the ``deflate`` API; else stdlib ``zlib``), and a compiled loop
  (C, :mod:`segeval.core.kernels.c_png`) undoes the row filters straight into the output array,
  byte-swapping 16-bit rows and packing RGB into ids in the same pass. Any other PNG goes to
  Pillow.
* ``pillow`` -- Pillow decodes every file (the plain path, kept for comparison).

``auto`` (the default) and ``fast`` are the fast path wherever the compiled kernels are
available (:func:`segeval.core.kernels.compiled_available`), for images of every size; without
them both decode with Pillow (the same arrays). The chunk walk is the C one there too
(:func:`segeval.core.kernels.c_png.walk_chunks`), else Python's; both check the same things in
the same order and word the errors alike.
The decoder is chosen per call with ``decoder=`` (``segeval.evaluate(..., decoder=...)`` and
``segeval score --decoder`` pass it down to every worker).

Every decoder applies the same checks, so that a byte string gives the same array with all
three or is refused by all three with the same message (a fuzz test holds them to it,
``tests/safety/test_png_agreement.py``, see ``docs/fuzzing.md``): the chunks are walked and
every CRC checked (IDAT's too, which Pillow does not check), a missing IEND, a second IHDR (Pillow
would read the second one), IDAT chunks that are not consecutive, image data that does not
inflate to exactly the announced size, a bad Adler-32 and a filter type above 4 are errors
(the image data is checked so for the kinds the fast path reads; the others, such as 1-bit or
interlaced images, are Pillow's alone whatever the decoder); what follows IEND is ignored.
For the kinds the fast path reads, Pillow is then given only the
IHDR, IDAT and IEND chunks, so that an ancillary chunk (which does not change label indices) is
ignored by both rather than parsed by one. Any other exception Pillow raises on damaged data
is a :class:`~segeval.errors.FileFormatError` too.

Sizes are checked from the header before anything of the image's size is allocated: a declared
size over the decompression-bomb limit (:func:`max_pixels`: ``2 * PIL.Image.MAX_IMAGE_PIXELS``
pixels, where Pillow refuses) is refused, so is image data too short to inflate to the announced
size (deflate expands at most about 1032 times), and with ``shape=`` (the ground truth's) an
image of another size (:class:`~segeval.errors.SizeMismatchError`). Decoding is thread-safe (the
compiled loops release the GIL, and so does the ctypes call).
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import threading
import zlib
from pathlib import Path
from typing import Any, Literal, NamedTuple

import numpy as np

from segeval.core.files import read_bytes
from segeval.core.kernels import compiled_available
from segeval.errors import (
    FileFormatError,
    SegevalError,
    SizeMismatchError,
    bad_value,
)

log = logging.getLogger("segeval")

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

Decoder = Literal["auto", "fast", "pillow"]
DECODERS: tuple[str, ...] = ("auto", "fast", "pillow")
#: Deflate cannot expand data more than about 1032 times; an IDAT stream shorter than the
#: announced pixel data divided by this is truncated, whatever the header claims.
_MAX_DEFLATE_RATIO = 1040

_INDEX_MODES = {"P": np.uint8, "L": np.uint8, "1": np.uint8, "I;16": np.uint16,
                "I;16B": np.uint16, "I;16L": np.uint16, "I": np.int32}
# (bit depth, colour type) read by the fast path -> (bytes per pixel, kind)
_FAST_KINDS = {(8, 0): (1, "index"), (8, 3): (1, "index"), (16, 0): (2, "index16"),
               (8, 2): (3, "rgb"), (8, 6): (4, "rgb")}
_IHDR = struct.Struct(">IIBBBBB")


class _Header(NamedTuple):
    width: int
    height: int
    bit_depth: int
    colour_type: int
    interlaced: bool
    animated: bool
    idat: list[memoryview]
    idat_start: int = 0  # the byte span of the (consecutive) IDAT chunks, CRCs included
    idat_end: int = 0


def read_label(file: Any, *, panoptic: bool = False, decoder: Decoder = "auto",
               shape: tuple[int, int] | None = None, against: str = "") -> np.ndarray:
    """Decode a label PNG held by ``file`` (a :class:`~segeval.formats.base.File` of a folder
    or a submission archive: anything with ``read()`` and a ``str()`` naming it in errors);
    ``shape`` and ``against`` as in :func:`decode_label_png`."""
    return decode_label_png(file.read(), str(file), panoptic=panoptic, decoder=decoder,
                            shape=shape, against=against)


def read_label_png(
    path: str | os.PathLike[str],
    *,
    panoptic: bool = False,
    decoder: Decoder = "auto",
) -> np.ndarray:
    """Decode one label PNG into an ``H x W`` integer array (see the module docstring).

    Returns ``uint8`` for 8-bit grey, palette (the indices) and 1-bit images, ``uint16`` for
    16-bit grey; with ``panoptic=True`` an 8-bit RGB or RGBA image becomes ``uint32`` ids
    ``R + 256 G + 65536 B``. ``decoder`` is ``"auto"`` (the default), ``"fast"`` or
    ``"pillow"``; all give identical arrays.

    Raises :class:`~segeval.errors.MissingFileError` for a missing file and
    :class:`~segeval.errors.FileFormatError` for anything that is not a readable label PNG of
    the expected kind (not a PNG, corrupt, truncated, RGB where indices are expected, a
    single-channel image where panoptic RGB is expected, over the decompression-bomb limit).
    """
    path = Path(path)
    _check_decoder(decoder)
    return decode_label_png(read_bytes(path), str(path), panoptic=panoptic, decoder=decoder)


def decode_label_png(
    data: bytes,
    name: str,
    *,
    panoptic: bool = False,
    decoder: Decoder = "auto",
    shape: tuple[int, int] | None = None,
    against: str = "",
) -> np.ndarray:
    """Decode the bytes of one label PNG (read from ``name``: a file, a zip member) like
    :func:`read_label_png`; errors name ``name``.

    ``shape`` (``(height, width)``, the ground truth's): an image of another size is a
    :class:`~segeval.errors.SizeMismatchError` from its header, before anything is allocated
    or inflated (``against`` names the ground-truth file in the message).

    Every decoder applies the same checks first (see the module docstring), so that a byte
    string gives the same array with all three, or the same kind of error.
    """
    _check_decoder(decoder)
    if not data.startswith(PNG_SIGNATURE):
        raise _walk_error(name, "signature")
    header = _parse(name, data)
    _check_size(name, header.width, header.height)
    if shape is not None and (header.height, header.width) != tuple(shape):
        gt = f" {against}" if against else ""
        raise SizeMismatchError(f"{name}: shape {(header.height, header.width)} does not match "
                                f"the ground truth{gt} shape {tuple(shape)}")
    kind = _FAST_KINDS.get((header.bit_depth, header.colour_type))
    try:
        if kind is not None and not header.interlaced and not header.animated:
            bpp, what = kind
            _check_kind(name, what, panoptic)
            if decoder != "pillow" and compiled_available():
                return _decode_fast(name, header, bpp, what)
            # Pillow decodes the same pixels: what the fast path checks is checked here, and
            # Pillow is given only the chunks the fast path reads (IHDR, IDAT, IEND), so that
            # an ancillary chunk Pillow parses (or chokes on) cannot make the two differ
            _check_image_data(name, header, bpp)
            data = _core_chunks(data, header)
        return _pillow(name, data, panoptic)
    except MemoryError:  # the header's size is more than this process may allocate
        raise FileFormatError(f"{name}: a PNG of {header.width}x{header.height} (width x "
                              f"height) that there is not the memory to decode") from None


def _pillow(name: str, data: bytes, panoptic: bool) -> np.ndarray:
    """:func:`_decode_pillow`, with any exception Pillow raises on damaged data (it raises
    ``struct.error``, ``IndexError``, ``EOFError``... besides what ``_decode_pillow`` turns
    into one line) made a :class:`~segeval.errors.FileFormatError` (``MemoryError`` is the
    caller's)."""
    try:
        return _decode_pillow(name, data, panoptic)
    except SegevalError as e:
        if "cannot identify image file <" in str(e):  # no object address in the message
            raise _corrupt(name, "Pillow cannot identify the image") from None
        raise
    except MemoryError:
        raise
    except Exception as e:
        raise _corrupt(name, f"{type(e).__name__}: {e}") from None


def _check_decoder(decoder: Any) -> None:
    if decoder not in DECODERS:
        raise bad_value("decoder", "'auto', 'fast' or 'pillow'", decoder)


# --- the fast path ----------------------------------------------------------------------------


def _corrupt(name: str, why: str) -> FileFormatError:
    return FileFormatError(f"{name}: corrupt PNG ({why})")


def _parse(name: str, data: bytes) -> _Header:
    """Walk the chunks (checking every length and CRC) and collect the IDAT payloads: in C
    (:func:`segeval.core.kernels.c_png.walk_chunks`) where the compiled kernels are available,
    else in Python (:func:`_parse_python`); the same checks in the same order, the same
    messages."""
    if compiled_available():
        return _parse_native(name, data)
    return _parse_python(name, data)


def _parse_native(name: str, data: bytes) -> _Header:
    """:func:`_parse` by the C walk: it returns a code and a position, worded here as
    :func:`_parse_python` words them. Several IDAT chunks are gathered into one buffer (the
    compressed stream, which the inflaters want in one piece anyway)."""
    from segeval.core.kernels import c_png

    (code, pos, ctype, length, ihdr, animated, idat_start, idat_end, count,
     nbytes) = c_png.walk_chunks(data)
    chunk = ctype.decode("latin-1")
    if code == c_png.WALK_OK:
        assert ihdr is not None
        width, height, depth, colour, _, _, interlace = ihdr
        view = memoryview(data)
        if count == 1:
            idat = [view[idat_start + 8:idat_end - 4]]
        else:
            buf = bytearray(nbytes)
            c_png.gather_idat(data, idat_start, idat_end, buf)
            idat = [memoryview(buf)]
        return _Header(width, height, depth, colour, interlace == 1, animated, idat,
                       idat_start, idat_end)
    raise _walk_error(name, c_png.WALK_NAMES[code], pos=pos, chunk=chunk, length=length,
                      ihdr=ihdr)


def _walk_error(name: str, what: str, *, pos: int = 0, chunk: str = "", length: int = 0,
                ihdr: tuple[int, ...] | None = None) -> FileFormatError:
    """The one wording of a chunk-walk failure, for both walks: ``what`` is the failure's name
    (:data:`segeval.core.kernels.c_png.WALK_NAMES`), ``pos`` the byte of the chunk it concerns
    (the file's length for "truncated"), ``chunk`` its type and ``length`` its length, ``ihdr``
    the header's fields for "bad_size" and "bad_method"."""
    if what == "signature":
        return FileFormatError(f"{name}: not a PNG file (the PNG signature is missing)")
    if what in ("bad_size", "bad_method"):
        assert ihdr is not None
        width, height, _, _, compression, filtering, interlace = ihdr
        why = (f"image size {width}x{height} in IHDR" if what == "bad_size" else
               f"unknown compression {compression}, filter method {filtering} or interlace "
               f"method {interlace} in IHDR")
    else:
        why = {
            "truncated": f"truncated: the file ends at byte {pos} before the IEND chunk",
            "past_end": f"truncated: the {chunk!r} chunk at byte {pos} ends past the end of "
                        f"the file",
            "bad_crc": f"bad CRC in the {chunk!r} chunk at byte {pos}",
            "first_not_ihdr": f"the first chunk is {chunk!r} of {length} bytes, not a 13-byte "
                              f"IHDR",
            "second_ihdr": f"a second IHDR chunk at byte {pos}",
            "idat_split": f"the IDAT chunk at byte {pos} does not follow the other IDAT chunks",
            "no_idat": "no IDAT chunk",
        }[what]
    return _corrupt(name, why)


def _parse_python(name: str, data: bytes) -> _Header:
    """:func:`_parse` in Python (without the compiled kernels)."""
    view = memoryview(data)
    end = len(data)
    pos = 8
    ihdr: tuple[int, ...] | None = None
    idat: list[memoryview] = []
    idat_start = idat_end = 0
    animated = False
    idat_done = False
    while True:
        if pos + 8 > end:
            raise _walk_error(name, "truncated", pos=end)
        (length,) = struct.unpack_from(">I", data, pos)
        ctype = bytes(view[pos + 4:pos + 8])
        chunk = ctype.decode("latin-1")
        if length > 0x7FFFFFFF or pos + 12 + length > end:
            raise _walk_error(name, "past_end", pos=pos, chunk=chunk)
        body = view[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + length)
        if zlib.crc32(body, zlib.crc32(ctype)) != crc:
            raise _walk_error(name, "bad_crc", pos=pos, chunk=chunk)
        if ihdr is None:
            if ctype != b"IHDR" or length != 13:
                raise _walk_error(name, "first_not_ihdr", chunk=chunk, length=length)
            ihdr = _IHDR.unpack(body)
        elif ctype == b"IHDR":
            raise _walk_error(name, "second_ihdr", pos=pos)
        elif ctype == b"IDAT":
            if idat_done:
                raise _walk_error(name, "idat_split", pos=pos)
            if not idat:
                idat_start = pos
            idat.append(body)
            idat_end = pos + 12 + length
        elif ctype == b"IEND":
            break
        else:
            if ctype == b"acTL" and not idat:
                animated = True
            idat_done = bool(idat)
        pos += 12 + length
    if not idat:
        raise _walk_error(name, "no_idat")
    width, height, depth, colour, compression, filtering, interlace = ihdr
    if width == 0 or height == 0 or width > 0x7FFFFFFF or height > 0x7FFFFFFF:
        raise _walk_error(name, "bad_size", ihdr=ihdr)
    if compression != 0 or filtering != 0 or interlace > 1:
        raise _walk_error(name, "bad_method", ihdr=ihdr)
    return _Header(width, height, depth, colour, interlace == 1, animated, idat, idat_start,
                   idat_end)


def _check_kind(name: str, kind: str, panoptic: bool) -> None:
    if kind == "rgb" and not panoptic:
        raise FileFormatError(
            f"{name}: an RGB image where label indices are expected (save single-channel "
            f"class indices: 8-bit grey, palette, or 16-bit grey)"
        )
    if kind != "rgb" and panoptic:
        raise FileFormatError(
            f"{name}: a single-channel image where an RGB panoptic PNG is expected"
        )


#: ``PIL.Image.MAX_IMAGE_PIXELS`` as Pillow sets it (``tests/formats`` checks it against Pillow)
_PILLOW_DEFAULT_MAX_PIXELS = 1024 * 1024 * 1024 // 4 // 3


def max_pixels() -> int | None:
    """The decompression-bomb limit in pixels: ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (the size at
    which Pillow refuses an image; read at each call, so setting Pillow's limit sets ours), or
    ``None`` when Pillow's limit is switched off. Pillow is not imported for this (about 45 ms
    of start-up): a process that has not imported it has its default limit."""
    image = sys.modules.get("PIL.Image")
    limit = _PILLOW_DEFAULT_MAX_PIXELS if image is None else image.MAX_IMAGE_PIXELS
    return None if limit is None else 2 * int(limit)


def _check_size(name: str, width: int, height: int) -> None:
    limit = max_pixels()
    if limit is not None and width * height > limit:
        raise FileFormatError(
            f"{name}: image of {width}x{height} = {width * height} pixels is over the limit of "
            f"{limit} pixels (a decompression bomb?); raise PIL.Image.MAX_IMAGE_PIXELS to read it"
        )


def _inflate(name: str, idat: list[memoryview], size: int, what: str,
             slot: int = 0) -> np.ndarray:
    """The concatenated IDAT stream inflated to exactly ``size`` bytes (uint8 array).

    The array may be this thread's reusable buffer number ``slot`` (see
    :func:`_inflate_into_buffer`): it is valid until the next call with that slot in the same
    thread.
    """
    stream: bytes | memoryview = idat[0] if len(idat) == 1 else b"".join(idat)
    if len(stream) * _MAX_DEFLATE_RATIO + 1024 < size:
        raise _corrupt(name, f"{len(stream)} bytes of image data cannot hold a {what} image "
                             f"({size} bytes)")
    raw = _inflate_into_buffer(stream, size, slot)
    if raw is not None:
        return raw
    try:
        import deflate
    except ImportError:
        deflate = None
    if deflate is not None:
        try:
            out = deflate.zlib_decompress(stream, size)
        except deflate.DeflateError:
            out = None  # zlib below says what is wrong
        if out is not None and len(out) == size:
            return np.frombuffer(out, np.uint8)
    return np.frombuffer(_inflate_zlib(name, stream, size, what), np.uint8)


#: Reusable inflate buffers up to this size are kept, one per thread.
_KEEP_BUFFER_BYTES = 64 << 20
_local = threading.local()
_libdeflate_fn: Any = None  # None: not looked up yet; False: not available


def _libdeflate() -> Any:
    """``libdeflate_zlib_decompress`` and ``libdeflate_alloc_decompressor`` through ctypes,
    from the library that the ``deflate`` package's extension module carries; ``False`` when
    that is not possible (the ``deflate`` API or zlib is used then)."""
    global _libdeflate_fn
    if _libdeflate_fn is None:
        try:
            import ctypes

            from deflate import _deflate  # type: ignore[attr-defined]

            lib = ctypes.CDLL(_deflate.__file__)
            alloc = lib.libdeflate_alloc_decompressor
            alloc.argtypes, alloc.restype = [], ctypes.c_void_p
            fn = lib.libdeflate_zlib_decompress
            fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_void_p,
                           ctypes.c_size_t, ctypes.POINTER(ctypes.c_size_t)]
            fn.restype = ctypes.c_int
            _libdeflate_fn = (fn, alloc, ctypes)
        except (ImportError, OSError, AttributeError):
            _libdeflate_fn = False
    return _libdeflate_fn


def _inflate_into_buffer(stream: bytes | memoryview, size: int,
                         slot: int = 0) -> np.ndarray | None:
    """Inflate with libdeflate into this thread's reusable buffer: a fresh multi-MB buffer per
    image costs about a page fault per 4 KiB (measured: ~1000 faults and +1.5 to +5 ms for a
    2048x1024 8-bit map), more than the inflate itself. ``None`` when libdeflate cannot be
    called this way or the stream is not exactly ``size`` bytes of valid zlib data."""
    lib = _libdeflate()
    if not lib:
        return None
    fn, alloc, ctypes = lib
    decompressor = getattr(_local, "decompressor", None)
    if decompressor is None:
        decompressor = _local.decompressor = alloc()
        if not decompressor:  # pragma: no cover - out of memory
            return None
    attr = "buffer" if slot == 0 else f"buffer{slot}"
    buf = getattr(_local, attr, None)
    if buf is None or buf.size < size:
        buf = np.empty(size, np.uint8)
        if size <= _KEEP_BUFFER_BYTES:
            setattr(_local, attr, buf)
    src = np.frombuffer(stream, np.uint8)
    got = ctypes.c_size_t(0)
    rc = fn(decompressor, src.ctypes.data, src.size, buf.ctypes.data, size, ctypes.byref(got))
    if rc != 0 or got.value != size:
        return None  # the caller's other inflaters say what is wrong
    return buf[:size]


def _inflate_zlib(name: str, stream: bytes | memoryview, size: int, what: str) -> bytes:
    d = zlib.decompressobj()
    try:
        raw = d.decompress(stream, size + 1)
        if len(raw) <= size and not d.eof:
            raw += d.decompress(d.unconsumed_tail, size + 1 - len(raw))
    except zlib.error as e:
        raise _corrupt(name, f"the image data does not inflate: {e}") from None
    if len(raw) > size:
        raise _corrupt(name, f"the image data inflates to more than the {size} bytes of a "
                             f"{what} image")
    if not d.eof:
        raise _corrupt(name, "truncated image data: the compressed stream does not end")
    if len(raw) < size:
        raise _corrupt(name, f"the image data inflates to {len(raw)} bytes, not the {size} "
                             f"bytes of a {what} image")
    return raw


def _what(h: _Header) -> str:
    return f"{h.width}x{h.height} {h.bit_depth}-bit colour-type-{h.colour_type}"


def _check_stream_length(name: str, idat: list[memoryview], size: int, what: str) -> None:
    """An IDAT stream too short to inflate to ``size`` bytes is refused before anything of
    that size is allocated."""
    stream = sum(len(b) for b in idat)
    if stream * _MAX_DEFLATE_RATIO + 1024 < size:
        raise _corrupt(name, f"{stream} bytes of image data cannot hold a {what} image "
                             f"({size} bytes)")


#: Bytes :func:`_check_image_data` inflates at a time (an image over the reusable buffer's
#: size), and the reusable inflate buffer it uses otherwise (the fused Cityscapes reader uses
#: slots 0 to 2).
_CHECK_STEP = 1 << 20
_CHECK_SLOT = 3
_IEND = b"\x00\x00\x00\x00IEND\xaeB`\x82"


def _check_image_data(name: str, h: _Header, bpp: int) -> None:
    """What :func:`_decode_fast` checks of the image data, for a file Pillow decodes: the
    stream inflates to exactly the announced size (Adler-32 and stream end included) and every
    row's filter type is 0..4; the same errors, word for word, in the same order. An image of
    up to :data:`_KEEP_BUFFER_BYTES` is inflated by libdeflate into a reusable buffer; a larger
    one a megabyte at a time, keeping nothing: no second image-sized buffer besides
    Pillow's."""
    size = h.height * (h.width * bpp + 1)
    what = _what(h)
    _check_stream_length(name, h.idat, size, what)
    stride = h.width * bpp + 1
    if size <= _KEEP_BUFFER_BYTES and _libdeflate():
        # libdeflate into this thread's reusable buffer (kept, at most 64 MiB): what the fast
        # path does, errors included; several times faster than zlib
        raw = _inflate(name, h.idat, size, what, _CHECK_SLOT)
        over = np.flatnonzero(raw[::stride] > 4)
        if over.size:
            row = int(over[0])
            raise _corrupt(name, f"row {row} has filter type {raw[row * stride]} (0..4 "
                                 f"expected)")
        return
    d = zlib.decompressobj()
    got = 0
    bad: tuple[int, int] | None = None  # the first row with a bad filter type, and its type
    # the whole stream at once, as _inflate_zlib gives it (zlib reads ahead as far as its
    # input goes, so where it sees an error depends on how the input is cut, not the output)
    pending: bytes | memoryview = h.idat[0] if len(h.idat) == 1 else b"".join(h.idat)
    try:
        while got <= size and not d.eof:
            before = len(pending)
            out = d.decompress(pending, min(_CHECK_STEP, size + 1 - got))
            pending = d.unconsumed_tail
            if bad is None and out:
                first = (-got) % stride
                types = np.frombuffer(out, np.uint8)[first::stride]
                over = np.flatnonzero(types > 4)
                if over.size:
                    bad = ((got + first) // stride + int(over[0]), int(types[over[0]]))
            got += len(out)
            if not out and len(pending) == before:
                break  # no input left (or no progress): the stream does not end
    except zlib.error as e:
        raise _corrupt(name, f"the image data does not inflate: {e}") from None
    if got > size:
        raise _corrupt(name, f"the image data inflates to more than the {size} bytes of a "
                             f"{what} image")
    if not d.eof:
        raise _corrupt(name, "truncated image data: the compressed stream does not end")
    if got < size:
        raise _corrupt(name, f"the image data inflates to {got} bytes, not the {size} "
                             f"bytes of a {what} image")
    if bad is not None:
        raise _corrupt(name, f"row {bad[0]} has filter type {bad[1]} (0..4 expected)")


def _core_chunks(data: bytes, h: _Header) -> bytes:
    """The PNG of ``data`` with only its IHDR, IDAT and IEND chunks (what the fast path
    reads; every CRC was checked by :func:`_parse`)."""
    return b"".join((data[:33], data[h.idat_start:h.idat_end], _IEND))


def _decode_fast(name: str, h: _Header, bpp: int, kind: str) -> np.ndarray:
    """Inflate and un-filter (C, :mod:`segeval.core.kernels.c_png`) one image of a kind the
    fast path reads (``bpp`` bytes per pixel; ``kind`` ``"index"``, ``"index16"`` or
    ``"rgb"``) into a new ``height x width`` array."""
    from segeval.core.kernels import c_png

    width, height = h.width, h.height
    what = _what(h)
    dtype = {"index": np.uint8, "index16": np.uint16, "rgb": np.uint32}[kind]
    size = height * (width * bpp + 1)
    _check_stream_length(name, h.idat, size, what)
    # allocated before inflating: with the fallback inflaters, which return a fresh buffer, the
    # other order makes glibc return both multi-MB blocks to the kernel on every call
    out = np.empty((height, width), dtype)
    raw = _inflate(name, h.idat, size, what)
    if kind == "index":
        bad = c_png.unfilter_gray8(raw, out.reshape(-1), height, width)
    elif kind == "index16":
        bad = c_png.unfilter_gray16(raw, out.reshape(-1), height, width)
    else:
        unfilter = c_png.unfilter_rgb_ids if bpp == 3 else c_png.unfilter_rgba_ids
        bad = unfilter(raw, out.reshape(-1), height, width)
    if bad >= 0:
        stride = width * bpp + 1
        raise _corrupt(name, f"row {bad} has filter type {raw[bad * stride]} (0..4 expected)")
    return out


# --- Pillow -----------------------------------------------------------------------------------


def _decode_pillow(name: str, data: bytes, panoptic: bool) -> np.ndarray:
    import io

    from PIL import Image, UnidentifiedImageError

    size = None
    try:
        with Image.open(io.BytesIO(data)) as img:
            size = img.size
            img.load()
            mode = img.mode
            if mode in ("RGB", "RGBA") and panoptic:
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint32)
                return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)
            if mode not in _INDEX_MODES:
                what = "an RGB image" if mode.startswith("RGB") else f"a PNG of mode {mode}"
                raise FileFormatError(
                    f"{name}: {what} where label indices are expected (save single-channel "
                    f"class indices: 8-bit grey, palette, or 16-bit grey)"
                )
            if panoptic:
                raise FileFormatError(
                    f"{name}: a single-channel image where an RGB panoptic PNG is expected"
                )
            arr = np.asarray(img)
    except Image.DecompressionBombError as e:
        raise FileFormatError(f"{name}: over the decompression-bomb limit ({e})") from None
    except MemoryError:  # the header's size is more than this process may allocate
        shape = f"{size[0]}x{size[1]} (width x height) " if size else ""
        raise FileFormatError(f"{name}: a PNG of {shape}that there is not the memory to "
                              f"decode") from None
    except (OSError, SyntaxError, ValueError, zlib.error, UnidentifiedImageError) as e:
        raise FileFormatError(f"{name}: corrupt PNG ({e})") from None
    return arr.astype(_INDEX_MODES[mode], copy=False)
