"""The C PNG kernels (:mod:`segeval.core.kernels.c_png`) against independent references.

* The un-filters against Pillow: the inflated image data under test is wrapped into a PNG
  (IHDR, one IDAT, IEND) and Pillow decodes it -- every kind (8-bit grey and palette, 16-bit
  grey, RGB, RGBA), every filter type, widths and heights of 1, odd widths, random bytes.
* The fused Cityscapes pass against decoding the three PNGs with Pillow and counting with
  :func:`segeval.core.kernels.cityscapes.count_cityscapes_reference` (NumPy).
* The instance-mask pass against the Pillow-decoded mask counted with NumPy
  (``bincount(index[ids[mask != 0]])`` and the box of the non-zero pixels).
* The wrappers refuse arguments whose lengths do not match the header with a ``ValueError``
  (the C functions check before any access), whatever the sizes (overflowing ones included).
"""

from __future__ import annotations

import io
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from segeval.core.kernels.cityscapes import (
    INSTANCE_OFFSET,
    count_cityscapes_reference,
    instance_tables,
)
from tests.conftest import mask_image
from tests.formats import pngenc

c_png = pytest.importorskip("segeval.core.kernels.c_png",
                           reason="the compiled PNG kernels are not built")

# name -> (colour type, bit depth, bytes per pixel, output dtype, kernel)
KINDS = {
    "grey8": (pngenc.GREY, 8, 1, np.uint8, "unfilter_gray8"),
    "palette": (pngenc.PALETTE, 8, 1, np.uint8, "unfilter_gray8"),
    "grey16": (pngenc.GREY, 16, 2, np.uint16, "unfilter_gray16"),
    "rgb": (pngenc.RGB, 8, 3, np.uint32, "unfilter_rgb_ids"),
    "rgba": (pngenc.RGBA, 8, 4, np.uint32, "unfilter_rgba_ids"),
}
SIZES = [(1, 1), (1, 9), (9, 1), (2, 3), (3, 17), (7, 13), (16, 33)]


def random_raw(rng: np.random.Generator, h: int, w: int, bpp: int, filters,
               sparse: bool = False) -> np.ndarray:
    """Inflated image data of random bytes (mostly zero bytes with ``sparse``: the Paeth
    shortcut's case), the filter types cycled from ``filters``."""
    rows = rng.integers(0, 256, (h, w * bpp + 1), dtype=np.uint8)
    if sparse:
        rows[rng.random(rows.shape) < 0.8] = 0
    rows[:, 0] = [filters[y % len(filters)] for y in range(h)]
    return rows.reshape(-1)


def pillow(raw: np.ndarray, h: int, w: int, kind: str) -> np.ndarray:
    """Pillow's decode of the PNG holding ``raw`` as its image data (RGB(A): packed ids)."""
    colour, depth, _, _, _ = KINDS[kind]
    dummy = np.zeros((h, w, pngenc.CHANNELS[colour]), np.uint16 if depth == 16 else np.uint8)
    data = pngenc.encode(dummy, colour, bit_depth=depth, raw=raw.tobytes())
    with Image.open(io.BytesIO(data)) as img:
        if colour in (pngenc.RGB, pngenc.RGBA):
            rgb = np.asarray(img.convert("RGB")).astype(np.uint32)
            return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)
        return np.asarray(img)


def unfilter(raw: np.ndarray, h: int, w: int, kind: str) -> tuple[int, np.ndarray]:
    _, _, _, dtype, fn = KINDS[kind]
    out = np.zeros(h * w, dtype)
    return getattr(c_png, fn)(raw, out, h, w), out.reshape(h, w)


# --------------------------------------------------------------------------- un-filters


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("filters", [(0,), (1,), (2,), (3,), (4,), (4, 2, 1, 3, 0)])
def test_every_filter_type_of_every_kind_equals_pillow(kind: str, filters) -> None:
    rng = np.random.default_rng(len(filters) * 10 + filters[0])
    bpp = KINDS[kind][2]
    for h, w in SIZES:
        for sparse in (False, True):
            raw = random_raw(rng, h, w, bpp, filters, sparse)
            bad, got = unfilter(raw, h, w, kind)
            assert bad == -1
            want = pillow(raw, h, w, kind)
            assert got.dtype == want.dtype
            np.testing.assert_array_equal(got, want, err_msg=f"{kind} {h}x{w} {filters}")


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from(list(KINDS)), h=st.integers(1, 12), w=st.integers(1, 40),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=6), seed=st.integers(0, 2**32),
       sparse=st.booleans())
def test_random_image_data_equals_pillow(kind, h, w, filters, seed, sparse) -> None:
    raw = random_raw(np.random.default_rng(seed), h, w, KINDS[kind][2], filters, sparse)
    bad, got = unfilter(raw, h, w, kind)
    assert bad == -1
    np.testing.assert_array_equal(got, pillow(raw, h, w, kind))


@settings(max_examples=150, deadline=None)
@given(h=st.integers(1, 16), w=st.integers(1, 120), depth=st.sampled_from([8, 16]),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=5), seed=st.integers(0, 2**32),
       noise=st.sampled_from([0.0, 0.01, 0.2]))
def test_label_maps_decode_to_themselves(h, w, depth, filters, seed, noise) -> None:
    """Blocky label maps, filtered by every filter type: the long runs of zero filtered bytes
    under unchanging rows that the Sub and Paeth rows skip a word at a time, ending anywhere."""
    rng = np.random.default_rng(seed)
    values = rng.integers(0, 1 << depth, 4).astype(np.uint16 if depth == 16 else np.uint8)
    img = label_rows(rng, h, w, values, noise)
    _, got = unfilter(filtered(img, depth, filters), h, w, "grey16" if depth == 16 else "grey8")
    np.testing.assert_array_equal(got, img)


@pytest.mark.parametrize("kind", list(KINDS))
def test_a_bad_filter_type_names_its_row_and_the_rows_above_are_decoded(kind: str) -> None:
    rng = np.random.default_rng(1)
    h, w, bpp = 6, 11, KINDS[kind][2]
    raw = random_raw(rng, h, w, bpp, (4, 1, 3))
    for row, value in ((0, 5), (3, 255), (5, 9)):
        broken = raw.copy()
        broken[row * (w * bpp + 1)] = value
        bad, got = unfilter(broken, h, w, kind)
        assert bad == row
        if row:  # the rows above: Pillow's decode of an image of that height
            np.testing.assert_array_equal(got[:row],
                                          pillow(raw[:row * (w * bpp + 1)], row, w, kind))


def test_rgba_alpha_never_changes_the_ids() -> None:
    """The filters work on each channel alone: any alpha bytes give the RGB image's ids."""
    rng = np.random.default_rng(2)
    h, w = 9, 14
    for filters in ((0,), (1,), (2,), (3,), (4,), (3, 4, 1)):
        rgba = random_raw(rng, h, w, 4, filters).reshape(h, -1)
        rgb = np.concatenate([rgba[:, :1], np.delete(rgba[:, 1:], np.s_[3::4], axis=1)], 1)
        _, ids4 = unfilter(rgba.reshape(-1), h, w, "rgba")
        _, ids3 = unfilter(rgb.reshape(-1), h, w, "rgb")
        np.testing.assert_array_equal(ids4, ids3)


# --------------------------------------------------------------------------- the fused pass


def label_rows(rng: np.random.Generator, h: int, w: int, values: np.ndarray,
               noise: float) -> np.ndarray:
    """Blocky regions of ``values`` (label maps' runs) with a share ``noise`` of stray
    pixels."""
    cells = rng.choice(values, (h // 3 + 1, w // 5 + 1))
    img = np.repeat(np.repeat(cells, 3, 0), 5, 1)[:h, :w]
    stray = rng.random((h, w)) < noise
    img[stray] = rng.choice(values, int(stray.sum()))
    return img


def filtered(img: np.ndarray, depth: int, filters) -> np.ndarray:
    """The inflated image data of a grey image (pngenc's NumPy filters)."""
    rows = pngenc.sample_bytes(img[..., None], depth)
    bpp = depth // 8
    return np.frombuffer(pngenc._raw_image(rows, bpp, filters), np.uint8).copy()


def fused(g, p, i, h, w, lut, category_of):
    label_of, inst_cat = instance_tables(category_of)
    tables = [np.zeros(65536, np.int64) for _ in range(4)]
    bad = c_png.count_cityscapes_rows(g, p, np.zeros(0, np.uint8) if i is None else i, h, w,
                                     i is not None, INSTANCE_OFFSET, lut, category_of,
                                     label_of, inst_cat, *tables)
    return bad, tables


def decode_then_count(g, p, i, h, w, lut, category_of):
    """The reference: Pillow decodes, NumPy counts."""
    gt, pred = pillow(g, h, w, "grey8"), pillow(p, h, w, "grey8")
    inst = None if i is None else pillow(i, h, w, "grey16")
    return count_cityscapes_reference(gt, pred, inst, lut, category_of)


def assert_same_counts(tables, want) -> None:
    hist, size, tp, cat_tp = tables
    np.testing.assert_array_equal(hist.reshape(256, 256), want.hist)
    ids = np.flatnonzero(size)
    ids = ids[ids > INSTANCE_OFFSET]
    np.testing.assert_array_equal(ids, want.instance_ids)
    np.testing.assert_array_equal(size[ids], want.size)
    np.testing.assert_array_equal(tp[ids], want.tp)
    np.testing.assert_array_equal(cat_tp[ids], want.category_tp)
    assert not size[:INSTANCE_OFFSET + 1].any()  # ids at or below the offset: not instances


@settings(max_examples=120, deadline=None)
@given(h=st.integers(1, 14), w=st.integers(1, 70), seed=st.integers(0, 2**32),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=5), with_inst=st.booleans(),
       noise=st.sampled_from([0.0, 0.05, 0.6]), random_bytes=st.booleans())
def test_the_fused_pass_counts_what_decode_then_count_counts(h, w, seed, filters, with_inst,
                                                             noise, random_bytes) -> None:
    rng = np.random.default_rng(seed)
    lut = rng.integers(0, 34, 256).astype(np.uint8)
    category_of = rng.integers(0, 8, 256).astype(np.uint8)
    if random_bytes:  # any pixel values, runs of one pixel
        g = random_raw(rng, h, w, 1, filters)
        p = random_raw(rng, h, w, 1, filters[::-1])
        i = random_raw(rng, h, w, 2, filters) if with_inst else None
    else:
        labels = np.arange(34, dtype=np.uint8)
        g = filtered(label_rows(rng, h, w, labels, noise), 8, filters)
        p = filtered(label_rows(rng, h, w, labels, noise), 8, filters[::-1])
        ids = np.r_[0, 7, 1000, 1001, 24001, 24002, 26005, 33999, 65535].astype(np.uint16)
        i = filtered(label_rows(rng, h, w, ids, noise), 16, filters) if with_inst else None
    bad, tables = fused(g, p, i, h, w, lut, category_of)
    assert bad == -1
    assert_same_counts(tables, decode_then_count(g, p, i, h, w, lut, category_of))


def test_a_bad_filter_type_in_each_file_is_reported_with_its_file() -> None:
    rng = np.random.default_rng(4)
    h, w = 7, 12
    lut = np.arange(256, dtype=np.uint8)
    category_of = np.zeros(256, np.uint8)
    g, p = random_raw(rng, h, w, 1, (1, 4)), random_raw(rng, h, w, 1, (2, 3))
    i = random_raw(rng, h, w, 2, (4,))
    for f, arr, stride in ((0, g, w + 1), (1, p, w + 1), (2, i, 2 * w + 1)):
        broken = arr.copy()
        broken[4 * stride] = 7
        args = [g, p, i]
        args[f] = broken
        bad, tables = fused(*args, h, w, lut, category_of)
        assert bad == f * h + 4
        # the rows above it were counted, as decode-then-count counts them
        assert_same_counts(tables, decode_then_count(g[:4 * (w + 1)], p[:4 * (w + 1)],
                                                     i[:4 * (2 * w + 1)], 4, w, lut,
                                                     category_of))


# --------------------------------------------------------------------------- the mask pass


@settings(max_examples=120, deadline=None)
@given(h=st.integers(1, 20), w=st.integers(1, 90), seed=st.integers(0, 2**32),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=5), wide=st.booleans(),
       shape=st.sampled_from(["empty", "boxes", "scattered", "random bytes"]))
def test_the_mask_pass_counts_what_numpy_counts(h, w, seed, filters, wide, shape) -> None:
    rng = np.random.default_rng(seed)
    mask = mask_image(shape, h, w, rng, box=(8, 20), density=0.05)
    raw = (random_raw(rng, h, w, 1, filters, sparse=True) if shape == "random bytes"
           else filtered(mask, 8, filters))
    mask = pillow(raw, h, w, "grey8")
    ids = rng.integers(0, 9, (h, w)).astype(np.uint16 if wide else np.uint8)
    index = rng.integers(0, 5, 9).astype(np.int32)
    counts = np.zeros(5, np.int64)
    bad, top, bottom, left, right = c_png.mask_overlaps(raw, h, w, ids.reshape(-1), index,
                                                       counts)
    assert bad == -1
    np.testing.assert_array_equal(counts, np.bincount(index[ids[mask != 0]], minlength=5))
    ys, xs = np.nonzero(mask)
    box = (-1, 0, w, 0) if ys.size == 0 else (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
    assert (top, bottom, left, right) == tuple(int(v) for v in box)


def test_the_mask_pass_reports_a_bad_filter_type() -> None:
    h, w = 5, 6
    raw = filtered(np.ones((h, w), np.uint8), 8, (2,))
    raw[3 * (w + 1)] = 5
    counts = np.zeros(1, np.int64)
    ids = np.zeros(h * w, np.uint8)
    assert c_png.mask_overlaps(raw, h, w, ids, np.zeros(1, np.int32), counts) == (3, -1, 0, 0, 0)
    assert counts[0] == 3 * w  # the rows above it


# --------------------------------------------------------------------------- refusals


def test_the_unfilters_refuse_lengths_that_do_not_match_the_header() -> None:
    for _, _, bpp, dtype, fn in KINDS.values():
        f = getattr(c_png, fn)
        h, w = 3, 5
        raw = np.zeros(h * (w * bpp + 1), np.uint8)
        assert f(raw, np.zeros(h * w, dtype), h, w) == -1
        bad_calls = [
            (raw[:-1], np.zeros(h * w, dtype), h, w),  # raw one byte short
            (np.zeros(raw.size + 1, np.uint8), np.zeros(h * w, dtype), h, w),  # one too long
            (raw, np.zeros(h * w - 1, dtype), h, w),  # out one short
            (raw, np.zeros(h * w + 1, dtype), h, w),  # out one too long
            (raw, np.zeros(h * w, dtype), h, w + 1),  # another width
            (raw, np.zeros(h * w, dtype), -h, w),  # negative
            (raw, np.zeros(h * w, dtype), 2**62, 2**62),  # sizes whose products overflow
            (np.zeros(0, np.uint8), np.zeros(0, dtype), 2**40, 2**40),
        ]
        for args in bad_calls:
            with pytest.raises(ValueError, match=fn):
                f(*args)
        with pytest.raises(ValueError):  # a wrong dtype: Cython's buffer check
            f(raw, np.zeros(h * w, np.float64), h, w)
        with pytest.raises(ValueError):  # not contiguous
            f(np.zeros(2 * raw.size, np.uint8)[::2], np.zeros(h * w, dtype), h, w)
        # empty images are images: nothing to read
        assert f(np.zeros(0, np.uint8), np.zeros(0, dtype), 0, 7) == -1
        assert f(np.zeros(4, np.uint8), np.zeros(0, dtype), 4, 0) == -1


def test_the_fused_pass_refuses_lengths_that_do_not_match_the_header() -> None:
    h, w = 4, 6
    lut = np.zeros(256, np.uint8)
    label_of, inst_cat = instance_tables(lut)
    g, i = np.zeros(h * (w + 1), np.uint8), np.zeros(h * (2 * w + 1), np.uint8)

    def call(g=g, p=g, i=i, h=h, w=w, with_inst=True, lut=lut, cat=lut, label_of=label_of,
             hist_len=65536):
        tables = [np.zeros(hist_len, np.int64)] + [np.zeros(65536, np.int64)
                                                   for _ in range(3)]
        return c_png.count_cityscapes_rows(g, p, i, h, w, with_inst, INSTANCE_OFFSET, lut, cat,
                                          label_of, inst_cat, *tables)

    assert call() == -1
    assert call(i=np.zeros(0, np.uint8), with_inst=False) == -1  # iraw unused without
    for kwargs in ({"g": g[:-1]}, {"p": np.zeros(g.size + 1, np.uint8)}, {"i": i[:-1]},
                   {"w": w + 1}, {"h": -1}, {"lut": lut[:255]}, {"cat": np.zeros(257, np.uint8)},
                   {"label_of": label_of[:-1]}, {"hist_len": 256}, {"h": 2**62, "w": 2**62}):
        with pytest.raises(ValueError, match="count_cityscapes_rows"):
            call(**kwargs)


def test_the_mask_pass_refuses_bad_lengths_and_ids_outside_its_tables() -> None:
    h, w = 3, 4
    raw = filtered(np.ones((h, w), np.uint8), 8, (0,))
    ids = np.array([0, 1, 2, 3] * h, np.uint8)
    index = np.array([0, 1, 2, 3], np.int32)
    assert c_png.mask_overlaps(raw, h, w, ids, index, np.zeros(4, np.int64))[0] == -1
    bad_calls = [
        (raw[:-1], h, w, ids, index, 4),
        (raw, h, w, ids[:-1], index, 4),
        (raw, h, w + 1, ids, index, 4),
        (raw, -1, w, ids, index, 4),
        (raw, 2**62, 2**62, ids, index, 4),
        (raw, h, w, ids, index[:3], 4),  # id 3 has no index entry
        (raw, h, w, ids, index, 3),  # index value 3 has no count
        (raw, h, w, ids, np.array([0, 1, -1, 2], np.int32), 4),  # a negative index value
    ]
    for r, hh, ww, i, ix, n in bad_calls:
        with pytest.raises(ValueError, match="mask_overlaps"):
            c_png.mask_overlaps(r, hh, ww, i, ix, np.zeros(n, np.int64))


def test_an_empty_mask_of_any_width_allocates_nothing() -> None:
    """Regression (found by the native fuzz target): an image of no rows and a width of 2^62
    allocated two rows of that width before noticing there was nothing to read."""
    empty8 = np.zeros(0, np.uint8)
    got = c_png.mask_overlaps(empty8, 0, 2**62, empty8, np.zeros(0, np.int32),
                             np.zeros(0, np.int64))
    assert got == (-1, -1, 0, 2**62, 0)


# --------------------------------------------------------------------------- the chunk walk


def test_crc32_is_zlibs() -> None:
    rng = np.random.default_rng(5)
    for n in (0, 1, 7, 8, 9, 63, 64, 1000, 4099):
        data = rng.integers(0, 256, n, dtype=np.uint8).tobytes()
        assert c_png.crc32(data) == zlib.crc32(data)
        assert c_png.crc32(data, 0xDEADBEEF) == zlib.crc32(data, 0xDEADBEEF)


def test_the_walk_finds_and_gathers_the_idat_chunks() -> None:
    img = np.arange(12 * 30, dtype=np.uint8).reshape(12, 30) % 5
    data = pngenc.encode(img, pngenc.GREY, idat_size=7,
                         before_idat=[(b"acTL", b"\x00" * 8)],
                         after_idat=[(b"tEXt", b"a\x00b")])
    code, _, ctype, _, ihdr, animated, start, end, count, nbytes = c_png.walk_chunks(data)
    assert (code, ctype, ihdr, animated) == (c_png.WALK_OK, b"IEND", (30, 12, 8, 0, 0, 0, 0),
                                             True)
    stream = zlib.compress(pngenc._raw_image(img, 1, (0,)), 6)
    assert (count, nbytes) == (-(-len(stream) // 7), len(stream))
    assert end - start == nbytes + 12 * count and data[start + 4:start + 8] == b"IDAT"
    out = bytearray(nbytes)
    c_png.gather_idat(data, start, end, out)
    assert bytes(out) == stream
    for args in ((start + 1, end, nbytes), (start, end, nbytes - 1), (start, end, nbytes + 1),
                 (start, len(data) + 12, nbytes), (end, start, 0), (-1, end, nbytes)):
        with pytest.raises(ValueError, match="gather_idat"):
            c_png.gather_idat(data, args[0], args[1], bytearray(args[2]))
