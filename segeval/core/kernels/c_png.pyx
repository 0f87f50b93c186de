# cython: language_level=3
# distutils: sources = segeval/core/kernels/native/png_filters.c segeval/core/kernels/native/png_passes.c segeval/core/kernels/native/png_chunks.c segeval/core/kernels/native/png_inflate.c
"""Compiled PNG kernels: the chunk walk (signature, lengths, CRC-32 of every chunk, IHDR, IDAT,
IEND), row un-filtering into label arrays, the passes that count PNG rows without writing
the image, and a streaming zlib inflater that hands those passes one row at a time (C in
``native/png_chunks.c``, ``native/png_filters.c``, ``native/png_passes.c`` and
``native/png_inflate.c``; the GIL is released while they run).

The C functions check every length against the image header before any access; here a
wrong length, a negative size or an id outside a table is a ``ValueError`` (never a read or a
write outside the arrays), and a typed memoryview refuses a wrong dtype or a non-contiguous
array (``ValueError`` too). Arrays are flat and C-contiguous.

Un-filter functions return ``-1``, or the first row whose filter-type byte is not 0..4 (rows
above it are written); the caller words the error (:class:`~segeval.errors.FileFormatError`).
"""

from libc.stdint cimport int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.string cimport memcpy, memset


cdef extern from "png_filters.h" nogil:
    int SEGPNG_OK
    int SEGPNG_BAD_FILTER
    int SEGPNG_BAD_LENGTH
    int SEGPNG_BAD_INDEX
    int SEGPNG_NO_MEMORY
    int segpng_unfilter_gray8(const uint8_t *raw, size_t raw_len, uint8_t *out,
                              size_t out_len, size_t h, size_t w, size_t *bad_row)
    int segpng_unfilter_gray16(const uint8_t *raw, size_t raw_len, uint16_t *out,
                               size_t out_len, size_t h, size_t w, size_t *bad_row)
    int segpng_unfilter_ids(const uint8_t *raw, size_t raw_len, size_t bpp, uint32_t *out,
                            size_t out_len, size_t h, size_t w, size_t *bad_row)


cdef extern from "png_passes.h" nogil:
    int segpng_count_cityscapes_rows(
        const uint8_t *graw, size_t graw_len, const uint8_t *praw, size_t praw_len,
        const uint8_t *iraw, size_t iraw_len, size_t h, size_t w, int with_inst,
        int64_t offset, const uint8_t *pred_lut, size_t pred_lut_len,
        const uint8_t *category_of, size_t category_of_len, const uint8_t *label_of,
        size_t label_of_len, const uint8_t *inst_cat, size_t inst_cat_len, int64_t *hist,
        size_t hist_len, int64_t *size, size_t size_len, int64_t *tp, size_t tp_len,
        int64_t *cat_tp, size_t cat_tp_len, size_t *bad_file, size_t *bad_row)
    int segpng_mask_overlaps_u8(const uint8_t *raw, size_t raw_len, size_t h, size_t w,
                                const uint8_t *ids, size_t ids_len, const int32_t *index,
                                size_t index_len, int64_t *counts, size_t counts_len,
                                size_t *bad_row, int64_t *box)
    int segpng_mask_overlaps_u16(const uint8_t *raw, size_t raw_len, size_t h, size_t w,
                                 const uint16_t *ids, size_t ids_len, const int32_t *index,
                                 size_t index_len, int64_t *counts, size_t counts_len,
                                 size_t *bad_row, int64_t *box)
    int SEGPNG_BAD_STREAM
    int SEGPNG_NOT_FAST
    int segpng_mask_overlaps_stream_u8(
        const uint8_t *stream, size_t stream_len, size_t h, size_t w, const uint8_t *ids,
        size_t ids_len, const int32_t *index, size_t index_len, int64_t *counts,
        size_t counts_len, size_t *bad_row, int64_t *box, int *why)
    int segpng_mask_overlaps_stream_u16(
        const uint8_t *stream, size_t stream_len, size_t h, size_t w, const uint16_t *ids,
        size_t ids_len, const int32_t *index, size_t index_len, int64_t *counts,
        size_t counts_len, size_t *bad_row, int64_t *box, int *why)
    int segpng_mask_overlaps_png_u8(
        const uint8_t *data, size_t len, size_t h, size_t w, const uint8_t *ids,
        size_t ids_len, const int32_t *index, size_t index_len, int64_t *counts,
        size_t counts_len, size_t *bad_row, int64_t *box, int *why)
    int segpng_mask_overlaps_png_u16(
        const uint8_t *data, size_t len, size_t h, size_t w, const uint16_t *ids,
        size_t ids_len, const int32_t *index, size_t index_len, int64_t *counts,
        size_t counts_len, size_t *bad_row, int64_t *box, int *why)


cdef extern from "png_inflate.h" nogil:
    int SEGPNG_INFLATE_OK
    int SEGPNG_INFLATE_STOPPED
    ctypedef int (*segpng_row_fn)(void *ctx, size_t y, const uint8_t *row, size_t lo,
                                  size_t hi) noexcept nogil
    int segpng_inflate_rows(const uint8_t *src, size_t len, size_t stride, size_t rows,
                            segpng_row_fn row_fn, void *ctx, int *stop_status)
    uint32_t segpng_adler32(uint32_t adler, const uint8_t *p, size_t n)


cdef extern from "png_chunks.h" nogil:
    ctypedef struct segpng_walk:
        int have_ihdr
        uint32_t width, height
        uint8_t bit_depth, colour_type, compression, filter, interlace
        int animated
        size_t idat_start, idat_end, idat_count
        uint64_t idat_bytes
        size_t pos
        uint8_t ctype[4]
        uint32_t length
    void segpng_crc32_init()
    uint32_t segpng_crc32(uint32_t crc, const uint8_t *p, size_t n)
    int segpng_walk_chunks(const uint8_t *data, size_t len, segpng_walk *out)
    int segpng_gather_idat(const uint8_t *data, size_t len, size_t start, size_t end,
                           uint8_t *out, size_t out_len)


segpng_crc32_init()  # the static CRC tables, filled once before any thread uses them

ctypedef fused ids_t:
    uint8_t
    uint16_t


# Pointers to the first element, NULL for an empty array (whose first element does not exist).

cdef inline const uint8_t* _u8(const uint8_t[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] else NULL


cdef inline int64_t* _i64(int64_t[::1] a) noexcept nogil:
    return &a[0] if a.shape[0] else NULL


cdef int _check_size(str what, Py_ssize_t h, Py_ssize_t w) except -1:
    if h < 0 or w < 0:
        raise ValueError(f"{what}: negative image size h={h}, w={w}")
    return 0


cdef object _status(str what, int status, size_t bad_row):
    """-1 for success, the bad row for a bad filter type; ValueError/MemoryError else."""
    if status == SEGPNG_OK:
        return -1
    if status == SEGPNG_BAD_FILTER:
        return bad_row
    if status == SEGPNG_NO_MEMORY:
        raise MemoryError(f"{what}: no memory for the row buffers")
    if status == SEGPNG_BAD_INDEX:
        raise ValueError(f"{what}: a ground-truth value outside index, or an index value "
                         f"outside counts")
    raise ValueError(f"{what}: the array lengths do not match the image size")


def unfilter_gray8(const uint8_t[::1] raw, uint8_t[::1] out, Py_ssize_t h, Py_ssize_t w):
    """8-bit grey or palette: ``raw`` (exactly ``h * (w + 1)`` bytes) into ``out`` (flat
    ``uint8``, exactly ``h * w``). Returns ``-1`` or the first bad row."""
    cdef size_t bad = 0
    cdef int status
    _check_size("unfilter_gray8", h, w)
    with nogil:
        status = segpng_unfilter_gray8(_u8(raw), raw.shape[0],
                                       &out[0] if out.shape[0] else NULL, out.shape[0],
                                       h, w, &bad)
    return _status("unfilter_gray8", status, bad)


def unfilter_gray16(const uint8_t[::1] raw, uint16_t[::1] out, Py_ssize_t h, Py_ssize_t w):
    """16-bit grey: ``raw`` (exactly ``h * (2w + 1)`` bytes, big-endian samples) into ``out``
    (flat ``uint16``, exactly ``h * w``, native byte order). Returns ``-1`` or the first bad
    row."""
    cdef size_t bad = 0
    cdef int status
    _check_size("unfilter_gray16", h, w)
    with nogil:
        status = segpng_unfilter_gray16(_u8(raw), raw.shape[0],
                                        &out[0] if out.shape[0] else NULL, out.shape[0],
                                        h, w, &bad)
    return _status("unfilter_gray16", status, bad)


cdef object _unfilter_ids(str what, const uint8_t[::1] raw, size_t bpp, uint32_t[::1] out,
                          Py_ssize_t h, Py_ssize_t w):
    cdef size_t bad = 0
    cdef int status
    _check_size(what, h, w)
    with nogil:
        status = segpng_unfilter_ids(_u8(raw), raw.shape[0], bpp,
                                     &out[0] if out.shape[0] else NULL, out.shape[0],
                                     h, w, &bad)
    return _status(what, status, bad)


def unfilter_rgb_ids(const uint8_t[::1] raw, uint32_t[::1] out, Py_ssize_t h, Py_ssize_t w):
    """8-bit RGB: ``raw`` (exactly ``h * (3w + 1)`` bytes) into the panoptic ids
    ``R + 256 G + 256^2 B`` in ``out`` (flat ``uint32``, exactly ``h * w``). Returns ``-1`` or
    the first bad row."""
    return _unfilter_ids("unfilter_rgb_ids", raw, 3, out, h, w)


def unfilter_rgba_ids(const uint8_t[::1] raw, uint32_t[::1] out, Py_ssize_t h, Py_ssize_t w):
    """8-bit RGBA: ``raw`` (exactly ``h * (4w + 1)`` bytes) into the panoptic ids
    ``R + 256 G + 256^2 B`` in ``out`` (flat ``uint32``, exactly ``h * w``); alpha is
    dropped. Returns ``-1`` or the first bad row."""
    return _unfilter_ids("unfilter_rgba_ids", raw, 4, out, h, w)


def count_cityscapes_rows(const uint8_t[::1] graw, const uint8_t[::1] praw,
                          const uint8_t[::1] iraw, Py_ssize_t h, Py_ssize_t w, bint with_inst,
                          int64_t offset, const uint8_t[::1] pred_lut,
                          const uint8_t[::1] category_of, const uint8_t[::1] label_of,
                          const uint8_t[::1] inst_cat, int64_t[::1] hist, int64_t[::1] size,
                          int64_t[::1] tp, int64_t[::1] cat_tp):
    """The fused Cityscapes pass (``native/png_passes.h``): the inflated rows of an 8-bit
    labelIds PNG (``graw``), an 8-bit prediction (``praw``), each exactly ``h * (w + 1)``
    bytes, and with ``with_inst`` a 16-bit instanceIds PNG (``iraw``, exactly
    ``h * (2w + 1)`` bytes; anything, an empty array say, without), counted as
    :func:`segeval.core.kernels.cityscapes.count_cityscapes` counts the decoded arrays into
    ``hist`` (``gt << 8 | pred``) and, for instance ids above ``offset``, ``size``, ``tp``
    and ``cat_tp``. Tables: ``pred_lut`` and ``category_of`` 256 entries, the others 65536.
    Returns ``-1``, or ``f * h + y`` for a bad filter-type byte in row ``y`` of file ``f``
    (0 labelIds, 1 prediction, 2 instanceIds; the tables then hold partial counts)."""
    cdef size_t bad_file = 0, bad_row = 0
    cdef int status
    _check_size("count_cityscapes_rows", h, w)
    with nogil:
        status = segpng_count_cityscapes_rows(
            _u8(graw), graw.shape[0], _u8(praw), praw.shape[0], _u8(iraw), iraw.shape[0],
            h, w, with_inst, offset, _u8(pred_lut), pred_lut.shape[0], _u8(category_of),
            category_of.shape[0], _u8(label_of), label_of.shape[0], _u8(inst_cat),
            inst_cat.shape[0], _i64(hist), hist.shape[0], _i64(size), size.shape[0],
            _i64(tp), tp.shape[0], _i64(cat_tp), cat_tp.shape[0], &bad_file, &bad_row)
    if status == SEGPNG_BAD_FILTER:
        return <Py_ssize_t>bad_file * h + <Py_ssize_t>bad_row
    return _status("count_cityscapes_rows", status, 0)


def mask_overlaps(const uint8_t[::1] raw, Py_ssize_t h, Py_ssize_t w, const ids_t[::1] ids,
                  const int32_t[::1] index, int64_t[::1] counts):
    """The instance-mask pass (``native/png_passes.h``): ``raw``, an 8-bit grey mask PNG's
    inflated image data (exactly ``h * (w + 1)`` bytes), against ``ids``, the flat ``h * w``
    ground-truth map (``uint8`` or ``uint16``): ``counts[index[ids[p]]] += 1`` for every
    non-zero mask pixel ``p`` (an id not below ``len(index)``, or an index value outside
    ``counts``, is a ``ValueError``). Returns ``(bad, top, bottom, left, right)``: ``bad`` is
    ``-1`` or the first row whose filter type is not 0..4; the box is end-exclusive,
    ``top == -1`` for an empty mask."""
    cdef size_t bad = 0
    cdef int status
    cdef int64_t box[4]
    _check_size("mask_overlaps", h, w)
    box[0] = -1
    box[1] = box[3] = 0
    box[2] = w
    with nogil:
        if ids_t is uint8_t:
            status = segpng_mask_overlaps_u8(
                _u8(raw), raw.shape[0], h, w, &ids[0] if ids.shape[0] else NULL, ids.shape[0],
                &index[0] if index.shape[0] else NULL, index.shape[0], _i64(counts),
                counts.shape[0], &bad, box)
        else:
            status = segpng_mask_overlaps_u16(
                _u8(raw), raw.shape[0], h, w, &ids[0] if ids.shape[0] else NULL, ids.shape[0],
                &index[0] if index.shape[0] else NULL, index.shape[0], _i64(counts),
                counts.shape[0], &bad, box)
    if status == SEGPNG_BAD_FILTER:
        return bad, -1, 0, 0, 0
    _status("mask_overlaps", status, 0)
    return -1, box[0], box[1], box[2], box[3]


def mask_overlaps_stream(const uint8_t[::1] stream, Py_ssize_t h, Py_ssize_t w,
                         const ids_t[::1] ids, const int32_t[::1] index, int64_t[::1] counts):
    """:func:`mask_overlaps` over the rows of a zlib stream as they are inflated
    (``native/png_inflate.h``; the inflated data is never held whole): ``stream`` is the
    concatenated IDAT data of an 8-bit grey mask PNG of ``h x w`` pixels. Returns what
    :func:`mask_overlaps` returns for the inflated data, or ``None`` where the stream is not a
    zlib stream of exactly ``h * (w + 1)`` bytes with the right Adler-32 (``counts`` then holds
    partial counts). A wrong length of ``ids``, or an id or index outside the tables, is a
    ``ValueError`` as in :func:`mask_overlaps` (after the stream was checked)."""
    cdef size_t bad = 0
    cdef int status, why = 0
    cdef int64_t box[4]
    _check_size("mask_overlaps_stream", h, w)
    box[0] = -1
    box[1] = box[3] = 0
    box[2] = w
    with nogil:
        if ids_t is uint8_t:
            status = segpng_mask_overlaps_stream_u8(
                _u8(stream), stream.shape[0], h, w, &ids[0] if ids.shape[0] else NULL,
                ids.shape[0], &index[0] if index.shape[0] else NULL, index.shape[0],
                _i64(counts), counts.shape[0], &bad, box, &why)
        else:
            status = segpng_mask_overlaps_stream_u16(
                _u8(stream), stream.shape[0], h, w, &ids[0] if ids.shape[0] else NULL,
                ids.shape[0], &index[0] if index.shape[0] else NULL, index.shape[0],
                _i64(counts), counts.shape[0], &bad, box, &why)
    if status == SEGPNG_BAD_STREAM:
        return None
    if status == SEGPNG_BAD_FILTER:
        return bad, -1, 0, 0, 0
    _status("mask_overlaps_stream", status, 0)
    return -1, box[0], box[1], box[2], box[3]


def mask_overlaps_png(const uint8_t[::1] data, Py_ssize_t h, Py_ssize_t w,
                      const ids_t[::1] ids, const int32_t[::1] index, int64_t[::1] counts):
    """The instance-mask pass over a whole PNG file in one call (``native/png_passes.h``):
    the chunk walk (every CRC checked), then :func:`mask_overlaps_stream` over its IDAT data.
    Returns the mask's box ``(top, bottom, left, right)`` (end-exclusive, ``top == -1`` for an
    empty mask) with the counts added to ``counts``, or ``None`` with ``counts`` set to zero
    (pass zeros) where the
    file is anything but a valid, non-interlaced, non-animated 8-bit grey PNG of ``h x w``
    pixels whose rows all have filter types 0..4 and whose ids all index ``index`` and
    ``counts``: the caller then decodes it the general way, which words the error if there is
    one. Lengths of ``ids`` other than ``h * w`` are a ``ValueError``."""
    cdef size_t bad = 0, n = counts.shape[0]
    cdef int status, why = 0
    cdef int64_t box[4]
    _check_size("mask_overlaps_png", h, w)
    if ids.shape[0] != h * w:
        raise ValueError("mask_overlaps_png: the array lengths do not match the image size")
    with nogil:
        if ids_t is uint8_t:
            status = segpng_mask_overlaps_png_u8(
                _u8(data), data.shape[0], h, w, &ids[0] if ids.shape[0] else NULL,
                ids.shape[0], &index[0] if index.shape[0] else NULL, index.shape[0],
                _i64(counts), n, &bad, box, &why)
        else:
            status = segpng_mask_overlaps_png_u16(
                _u8(data), data.shape[0], h, w, &ids[0] if ids.shape[0] else NULL,
                ids.shape[0], &index[0] if index.shape[0] else NULL, index.shape[0],
                _i64(counts), n, &bad, box, &why)
    if status == SEGPNG_OK:
        return box[0], box[1], box[2], box[3]
    if status == SEGPNG_BAD_LENGTH:
        raise ValueError("mask_overlaps_png: the array lengths do not match the image size")
    if n:
        memset(&counts[0], 0, n * sizeof(int64_t))
    return None


cdef struct _rows_out:
    uint8_t *buf
    size_t stride


cdef int _capture_row(void *ctx, size_t y, const uint8_t *row, size_t lo,
                      size_t hi) noexcept nogil:
    cdef _rows_out *out = <_rows_out *>ctx
    cdef size_t i
    memcpy(out.buf + y * out.stride, row, out.stride)
    for i in range(1, out.stride):  # the inflater's word: zeros outside row[1 + lo:1 + hi]
        if (i - 1 < lo or i - 1 >= hi) and row[i] != 0:
            return -1
    return 0


#: What :func:`inflate_rows` reports (``native/png_inflate.h``).
INFLATE_OK = 0
INFLATE_STOPPED = 1
INFLATE_BAD_HEADER = -10
INFLATE_BAD_DATA = -11
INFLATE_TRUNCATED = -12
INFLATE_TOO_LONG = -13
INFLATE_TOO_SHORT = -14
INFLATE_BAD_ADLER = -15
INFLATE_NO_MEMORY = -16


def inflate_rows(const uint8_t[::1] stream, Py_ssize_t stride, Py_ssize_t rows):
    """The streaming inflater alone (``native/png_inflate.h``; for tests): the zlib
    ``stream`` inflated as ``rows`` rows of ``stride`` bytes, each copied out as it is handed
    over. Returns ``(code, data)``: ``code`` one of the ``INFLATE_*`` constants, ``data`` the
    ``rows * stride`` bytes (rows never handed over are zero; all of them for
    ``INFLATE_OK``). Each row is also checked against what the inflater says of it (its bytes
    after the first that lie outside the span it names are zero): a row that breaks it stops
    the copying, and the code is ``INFLATE_STOPPED`` for an otherwise valid stream."""
    cdef _rows_out out
    cdef int code, stop = 0
    if stride <= 0 or rows < 0:
        raise ValueError("inflate_rows: stride must be positive and rows not negative")
    if rows > (1 << 31) // stride:
        raise ValueError("inflate_rows: at most 2 GiB of rows")
    data = bytearray(stride * rows)
    cdef uint8_t[::1] view = data
    out.buf = &view[0] if view.shape[0] else NULL
    out.stride = stride
    with nogil:
        code = segpng_inflate_rows(_u8(stream), stream.shape[0], stride, rows,
                                   _capture_row, &out, &stop)
    return code, bytes(data)


def adler32(const uint8_t[::1] data, uint32_t adler=1):
    """Adler-32 of ``data`` continuing from ``adler`` (as :func:`zlib.adler32`), with runs of
    zero bytes added in O(1) per 32 bytes (``native/png_inflate.h``)."""
    cdef uint32_t out
    with nogil:
        out = segpng_adler32(adler, _u8(data), data.shape[0])
    return out


#: What :func:`walk_chunks` reports (``native/png_chunks.h``): 0 is a walk to IEND without
#: error; the others name the first problem.
WALK_OK = 0
WALK_SIGNATURE = 1
WALK_TRUNCATED = 2
WALK_PAST_END = 3
WALK_BAD_CRC = 4
WALK_FIRST_NOT_IHDR = 5
WALK_SECOND_IHDR = 6
WALK_IDAT_SPLIT = 7
WALK_NO_IDAT = 8
WALK_BAD_SIZE = 9
WALK_BAD_METHOD = 10
#: The codes' names, by code (the words :mod:`segeval.formats.png` keys its messages by).
WALK_NAMES = ("ok", "signature", "truncated", "past_end", "bad_crc", "first_not_ihdr",
              "second_ihdr", "idat_split", "no_idat", "bad_size", "bad_method")


def walk_chunks(const uint8_t[::1] data):
    """Walk the chunks of the PNG file ``data`` (``native/png_chunks.h``): returns ``(code,
    pos, ctype, length, ihdr, animated, idat_start, idat_end, idat_count, idat_bytes)``.
    ``code`` is one of the ``WALK_*`` constants; ``pos`` the byte of the chunk it concerns
    (the file's length for ``WALK_TRUNCATED``); ``ctype`` (4 bytes) and ``length`` that
    chunk's type and length field; ``ihdr`` ``(width, height, bit depth, colour type,
    compression, filter method, interlace method)`` or ``None`` before IHDR was read; the
    IDAT chunks are consecutive, bytes ``idat_start`` to ``idat_end`` of the file (headers and
    CRCs included), ``idat_count`` chunks of ``idat_bytes`` bytes of data in all."""
    cdef segpng_walk walk
    cdef int code
    with nogil:
        code = segpng_walk_chunks(_u8(data), data.shape[0], &walk)
    if code < 0:  # pragma: no cover - the arguments are always valid here
        raise ValueError("walk_chunks: invalid arguments")
    ihdr = None
    if walk.have_ihdr:
        ihdr = (walk.width, walk.height, walk.bit_depth, walk.colour_type, walk.compression,
                walk.filter, walk.interlace)
    return (code, walk.pos, bytes(walk.ctype[:4]), walk.length, ihdr, bool(walk.animated),
            walk.idat_start, walk.idat_end, walk.idat_count, walk.idat_bytes)


def gather_idat(const uint8_t[::1] data, Py_ssize_t start, Py_ssize_t end, uint8_t[::1] out):
    """Copy the data of the consecutive IDAT chunks at bytes ``start`` to ``end`` of ``data``
    (as :func:`walk_chunks` found them) into ``out``, which holds exactly their total. A span
    that is not such a run of chunks is a ``ValueError``."""
    cdef int code
    if start < 0 or end < 0:
        raise ValueError("gather_idat: negative positions")
    with nogil:
        code = segpng_gather_idat(_u8(data), data.shape[0], start, end,
                                  &out[0] if out.shape[0] else NULL, out.shape[0])
    if code != 0:
        raise ValueError("gather_idat: not a run of IDAT chunks of that many bytes")


def crc32(const uint8_t[::1] data, uint32_t crc=0):
    """CRC-32 of ``data`` continuing from ``crc``, as :func:`zlib.crc32` computes it."""
    cdef uint32_t out
    with nogil:
        out = segpng_crc32(crc, _u8(data), data.shape[0])
    return out
