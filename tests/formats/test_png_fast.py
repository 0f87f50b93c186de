"""The fast PNG reader against Pillow: bit-identical arrays on files written by Pillow, OpenCV,
our own encoder (every filter type forced) and hypothesis; clear errors on damaged files."""

from __future__ import annotations

import io
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from segeval.errors import FileFormatError, UsageError
from segeval.formats import png
from segeval.formats.png import read_label_png
from tests.formats import pngenc

SIZES = [(1, 1), (1, 9), (9, 1), (2, 3), (7, 13), (5, 8), (3, 17), (16, 33), (31, 64), (40, 127)]
KINDS = {  # name -> (colour type, bit depth, channels, panoptic)
    "grey8": (pngenc.GREY, 8, 1, False),
    "palette": (pngenc.PALETTE, 8, 1, False),
    "grey16": (pngenc.GREY, 16, 1, False),
    "rgb": (pngenc.RGB, 8, 3, True),
    "rgba": (pngenc.RGBA, 8, 4, True),
}


def pillow_decode(path: Path | bytes, panoptic: bool) -> np.ndarray:
    """The reference: Pillow's own decode (ids packed from its RGB for panoptic)."""
    src = io.BytesIO(path) if isinstance(path, bytes) else path
    with Image.open(src) as img:
        if panoptic:
            rgb = np.asarray(img.convert("RGB")).astype(np.uint32)
            return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)
        arr = np.asarray(img)
    # a 1-bit image is bool in Pillow; read_label_png documents uint8 0/1 (class indices)
    return arr.astype(np.uint8) if arr.dtype == np.bool_ else arr


def assert_same_as_pillow(path: Path, panoptic: bool = False) -> np.ndarray:
    expected = pillow_decode(path, panoptic)
    for decoder in ("fast", "pillow", "auto"):
        got = read_label_png(path, panoptic=panoptic, decoder=decoder)
        assert got.dtype == expected.dtype, (decoder, got.dtype, expected.dtype)
        assert got.flags.c_contiguous
        np.testing.assert_array_equal(got, expected, err_msg=f"{path.name} via {decoder}")
    return expected


def label_image(rng: np.random.Generator, h: int, w: int, channels: int, top: int) -> np.ndarray:
    """Blocky regions of a few values (as label maps are) with some isolated pixels."""
    cells = rng.integers(0, top, (max(1, h // 3 + 1), max(1, w // 4 + 1), channels))
    img = np.repeat(np.repeat(cells, 3, 0), 4, 1)[:h, :w]
    noise = rng.random((h, w)) < 0.05
    img[noise] = rng.integers(0, top, (int(noise.sum()), channels))
    return img.astype(np.uint16 if top > 256 else np.uint8)


@pytest.fixture(params=["libdeflate", "deflate", "zlib"])
def inflater(request, monkeypatch) -> str:
    """Run a test through each inflate route: libdeflate into a reused buffer (ctypes), the
    ``deflate`` package's API, stdlib zlib (``deflate`` hidden)."""
    if request.param == "libdeflate":
        assert png._libdeflate(), "libdeflate is not callable through ctypes here"
    else:
        monkeypatch.setattr(png, "_libdeflate_fn", False)
    if request.param == "zlib":
        monkeypatch.setitem(sys.modules, "deflate", None)  # import deflate -> ImportError
    return request.param


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- files written by Pillow ------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), SIZES)
@pytest.mark.parametrize("mode", ["L", "P", "I;16", "RGB", "RGBA"])
def test_pillow_written_files(tmp_path: Path, mode: str, h: int, w: int) -> None:
    rng = np.random.default_rng(h * 1000 + w)
    channels = {"RGB": 3, "RGBA": 4}.get(mode, 1)
    arr = label_image(rng, h, w, channels, 60000 if mode == "I;16" else 256)
    if mode == "P":
        img = Image.frombytes("P", (w, h), arr.tobytes())
        img.putpalette(list(range(256)) * 3)
    elif mode == "I;16":
        img = Image.fromarray(arr[..., 0])
    else:
        img = Image.fromarray(arr if channels > 1 else arr[..., 0], mode)
    path = tmp_path / "a.png"
    img.save(path)
    expected = assert_same_as_pillow(path, panoptic=channels > 1)
    if channels == 1:
        np.testing.assert_array_equal(expected, arr[..., 0])


@pytest.mark.parametrize("level", [0, 1, 9])
def test_pillow_compression_levels_and_big_images(tmp_path: Path, level: int, inflater) -> None:
    rng = np.random.default_rng(level)
    arr = label_image(rng, 300, 517, 1, 34)[..., 0]
    Image.fromarray(arr).save(tmp_path / "l.png", compress_level=level)
    assert_same_as_pillow(tmp_path / "l.png")
    arr16 = label_image(rng, 130, 259, 1, 33000)[..., 0]
    Image.fromarray(arr16).save(tmp_path / "i.png", compress_level=level)
    assert_same_as_pillow(tmp_path / "i.png")
    rgb = label_image(rng, 97, 211, 3, 256)
    Image.fromarray(rgb).save(tmp_path / "c.png", compress_level=level)
    assert_same_as_pillow(tmp_path / "c.png", panoptic=True)


def test_constant_images_at_deflates_best_ratio(tmp_path: Path) -> None:
    """~1000:1 compression (deflate's limit) must not be mistaken for truncated image data."""
    for i, arr in enumerate([np.zeros((2048, 2048), np.uint8), np.zeros((1024, 1024), np.uint16),
                             np.zeros((1024, 1024, 3), np.uint8)]):
        path = tmp_path / f"c{i}.png"
        Image.fromarray(arr).save(path, compress_level=9)
        assert arr.nbytes / path.stat().st_size > 950
        assert_same_as_pillow(path, panoptic=arr.ndim == 3)


# --- files written by OpenCV ------------------------------------------------------------------


@pytest.mark.parametrize(("h", "w"), SIZES)
def test_opencv_written_files(tmp_path: Path, h: int, w: int) -> None:
    cv2 = pytest.importorskip("cv2", reason="opencv-python-headless is not installed")
    rng = np.random.default_rng(w * 1000 + h)
    for i, (arr, panoptic) in enumerate([
        (label_image(rng, h, w, 1, 256)[..., 0], False),
        (label_image(rng, h, w, 1, 65535)[..., 0], False),
        (label_image(rng, h, w, 3, 256), True),
        (label_image(rng, h, w, 4, 256), True),
    ]):
        for strategy in (cv2.IMWRITE_PNG_STRATEGY_DEFAULT, cv2.IMWRITE_PNG_STRATEGY_RLE):
            path = tmp_path / f"cv{i}_{strategy}.png"
            assert cv2.imwrite(str(path), arr, [cv2.IMWRITE_PNG_STRATEGY, strategy])
            expected = assert_same_as_pillow(path, panoptic)
            if not panoptic:
                np.testing.assert_array_equal(expected, arr)
            else:  # OpenCV writes BGR(A) arrays: the file's red is the array's last colour
                ids = (arr[..., 2].astype(np.uint32) | (arr[..., 1].astype(np.uint32) << 8)
                       | (arr[..., 0].astype(np.uint32) << 16))
                np.testing.assert_array_equal(expected, ids)


# --- our own encoder: every filter type forced ------------------------------------------------


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("filters", [0, 1, 2, 3, 4, (4, 2, 1, 3, 0)])
def test_each_filter_type_forced(tmp_path: Path, kind: str, filters, inflater) -> None:
    colour, depth, channels, panoptic = KINDS[kind]
    rng = np.random.default_rng(7)
    for h, w in SIZES:
        arr = label_image(rng, h, w, channels, 65536 if depth == 16 else 256)
        path = write(tmp_path, f"{kind}_{h}x{w}.png",
                     pngenc.encode(arr, colour, bit_depth=depth, filters=filters))
        expected = assert_same_as_pillow(path, panoptic)
        if not panoptic:
            np.testing.assert_array_equal(expected, arr[..., 0])


def test_chunk_layouts_pillow_accepts(tmp_path: Path) -> None:
    """Many small IDAT chunks, ancillary chunks before and after, tRNS of every kind."""
    rng = np.random.default_rng(3)
    trns = {"grey8": b"\x00\x07", "palette": b"\x00\x80\xff", "grey16": b"\x12\x34",
            "rgb": b"\x00\x01\x00\x02\x00\x03", "rgba": None}
    for kind, (colour, depth, channels, panoptic) in KINDS.items():
        arr = label_image(rng, 23, 29, channels, 65536 if depth == 16 else 256)
        before = [(b"gAMA", b"\x00\x00\xb1\x8f"), (b"tEXt", b"Software\x00segeval")]
        if trns[kind] is not None:
            before.append((b"tRNS", trns[kind]))
        data = pngenc.encode(arr, colour, bit_depth=depth, filters=(4, 2, 3, 1, 0),
                             idat_size=5, before_idat=before,
                             after_idat=[(b"tEXt", b"Comment\x00after the image")])
        assert_same_as_pillow(write(tmp_path, f"{kind}.png", data), panoptic)


# --- hypothesis: random images, filters, chunking, compression --------------------------------


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(list(KINDS)), h=st.integers(1, 24), w=st.integers(1, 40),
       seed=st.integers(0, 2**32 - 1), top=st.sampled_from([2, 5, 256]),
       filters=st.lists(st.integers(0, 4), min_size=1, max_size=8),
       idat_size=st.sampled_from([None, 1, 3, 64]), level=st.integers(0, 9))
def test_random_images_equal_pillow(tmp_path: Path, kind, h, w, seed, top, filters, idat_size,
                                    level) -> None:
    colour, depth, channels, panoptic = KINDS[kind]
    rng = np.random.default_rng(seed)
    if depth == 16 and top == 256:
        top = 65536
    arr = label_image(rng, h, w, channels, top)
    data = pngenc.encode(arr, colour, bit_depth=depth, filters=filters, idat_size=idat_size,
                         level=level)
    path = write(tmp_path, "h.png", data)
    got = read_label_png(path, panoptic=panoptic, decoder="fast")
    expected = pillow_decode(path, panoptic)
    assert got.dtype == expected.dtype
    np.testing.assert_array_equal(got, expected)


# --- kinds outside the fast path go to Pillow -------------------------------------------------


def test_kinds_outside_the_fast_path_read_like_pillow(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    arr = label_image(rng, 19, 21, 1, 256)[..., 0]
    # Adam7-interlaced, every kind
    for kind, (colour, depth, channels, panoptic) in KINDS.items():
        img = label_image(rng, 19, 21, channels, 65536 if depth == 16 else 256)
        path = write(tmp_path, f"interlaced_{kind}.png",
                     pngenc.encode(img, colour, bit_depth=depth, filters=(1, 4), interlace=True))
        assert_same_as_pillow(path, panoptic)
    # 1-bit grey, 2- and 4-bit palettes (Pillow writes them)
    Image.fromarray(arr > 100).save(tmp_path / "bits1.png")
    np.testing.assert_array_equal(assert_same_as_pillow(tmp_path / "bits1.png"), arr > 100)
    for bits, top in ((2, 4), (4, 16)):
        img = Image.frombytes("P", arr.shape[::-1], (arr % top).tobytes())
        img.putpalette(list(range(3 * top)))
        img.save(tmp_path / f"p{bits}.png", bits=bits)
        assert assert_same_as_pillow(tmp_path / f"p{bits}.png").max() < top
    # 16-bit RGB panoptic (Pillow keeps the high bytes)
    rgb16 = label_image(rng, 11, 13, 3, 65536)
    path = write(tmp_path, "rgb16.png", pngenc.encode(rgb16, pngenc.RGB, bit_depth=16,
                                                      filters=4))
    assert_same_as_pillow(path, panoptic=True)
    # an APNG: the default image, as Pillow reads it
    frames = [Image.fromarray(arr), Image.fromarray(255 - arr)]
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    assert "acTL" in str((tmp_path / "anim.png").read_bytes()[:200])
    np.testing.assert_array_equal(assert_same_as_pillow(tmp_path / "anim.png"), arr)


def test_grey_alpha_is_refused_by_both_decoders(tmp_path: Path) -> None:
    la = np.zeros((3, 4, 2), np.uint8)
    path = write(tmp_path, "la.png", pngenc.encode(la, pngenc.GREY_ALPHA))
    for decoder in ("fast", "pillow"):
        with pytest.raises(FileFormatError, match=r"la\.png: a PNG of mode LA where label"):
            read_label_png(path, decoder=decoder)


def test_rgb_and_single_channel_mix_ups(tmp_path: Path) -> None:
    rgb = write(tmp_path, "rgb.png", pngenc.encode(np.zeros((2, 2, 3), np.uint8), pngenc.RGB))
    grey = write(tmp_path, "grey.png", pngenc.encode(np.zeros((2, 2), np.uint8), pngenc.GREY))
    for decoder in ("fast", "pillow"):
        with pytest.raises(FileFormatError,
                           match=r"rgb\.png: an RGB image where label indices are expected"):
            read_label_png(rgb, decoder=decoder)
        with pytest.raises(FileFormatError, match=r"grey\.png: a single-channel image where an "
                                                  r"RGB panoptic PNG is expected"):
            read_label_png(grey, panoptic=True, decoder=decoder)


# --- real label maps: the conformance corpora -------------------------------------------------


def test_conformance_label_maps(conformance: Path) -> None:
    files = sorted(conformance.rglob("*.png"))
    assert len(files) >= 50
    for path in files:
        with Image.open(path) as img:
            panoptic = img.mode.startswith("RGB")
        assert_same_as_pillow(path, panoptic)


# --- damaged files ----------------------------------------------------------------------------


@pytest.fixture
def good() -> tuple[np.ndarray, bytes]:
    arr = label_image(np.random.default_rng(1), 40, 50, 1, 20)[..., 0]
    return arr, pngenc.encode(arr, pngenc.GREY, filters=(4, 2))


def idat_offset(data: bytes) -> int:
    return data.index(b"IDAT") - 4


@pytest.mark.parametrize("decoder", ["fast", "auto"])
def test_truncated_files(tmp_path: Path, good, decoder: str) -> None:
    _, data = good
    at = idat_offset(data)
    for cut in (10, 20, at + 4, at + 30, len(data) - 12, len(data) - 1):
        path = write(tmp_path, f"cut{cut}.png", data[:cut])
        with pytest.raises(FileFormatError, match=rf"cut{cut}\.png: corrupt PNG \(.*truncated"):
            read_label_png(path, decoder=decoder)


def test_bad_crcs(tmp_path: Path, good) -> None:
    _, data = good
    at = idat_offset(data)
    for name, pos in (("ihdr", 8 + 8 + 5), ("idat", at + 8 + 3), ("iend", len(data) - 1)):
        broken = bytearray(data)
        broken[pos] ^= 0x40
        path = write(tmp_path, f"{name}.png", bytes(broken))
        with pytest.raises(FileFormatError, match=rf"{name}\.png: corrupt PNG \(bad CRC in the "
                                                  rf"'{name.upper()}' chunk"):
            read_label_png(path, decoder="fast")


def test_wrong_image_data_length(tmp_path: Path, good, inflater) -> None:
    arr, _ = good
    h, w = arr.shape
    for name, size in (("short", (w, h + 1)), ("long", (w, h - 1)), ("wide", (w + 1, h))):
        data = pngenc.encode(arr, pngenc.GREY, filters=2, size=size)
        path = write(tmp_path, f"{name}.png", data)
        with pytest.raises(FileFormatError, match=rf"{name}\.png: corrupt PNG \(the image data "
                                                  rf"inflates to"):
            read_label_png(path, decoder="fast")


def test_bad_zlib_stream_filter_byte_and_structure(tmp_path: Path, good, inflater) -> None:
    arr, data = good
    at = idat_offset(data)
    # a bad Adler-32 (CRC made valid again): the inflater must notice
    (length,) = np.frombuffer(data[at:at + 4], ">u4")
    body = bytearray(data[at + 8:at + 8 + int(length)])
    body[-1] ^= 1
    bad = data[:at] + pngenc.chunk(b"IDAT", bytes(body)) + data[at + 12 + int(length):]
    with pytest.raises(FileFormatError, match=r"adler\.png: corrupt PNG \(the image data does "
                                              r"not inflate"):
        read_label_png(write(tmp_path, "adler.png", bad), decoder="fast")
    # filter type 5 on row 3
    rows = bytearray(b"".join(b"\x00" + r.tobytes() for r in arr))
    rows[3 * (arr.shape[1] + 1)] = 5
    path = write(tmp_path, "ft.png", pngenc.encode(arr, pngenc.GREY, raw=bytes(rows)))
    with pytest.raises(FileFormatError, match=r"ft\.png: corrupt PNG \(row 3 has filter type 5"):
        read_label_png(path, decoder="fast")
    # no IEND, no IDAT, IHDR not first, IDAT chunks split by another chunk
    cases = {
        "noiend": pngenc.encode(arr, pngenc.GREY, end=False),
        "noidat": pngenc.SIGNATURE + data[8:33] + pngenc.chunk(b"IEND", b""),
        "first": pngenc.SIGNATURE + pngenc.chunk(b"tEXt", b"a\x00b") + data[8:],
        "split": pngenc.encode(arr, pngenc.GREY, idat_size=10)
    }
    split = cases["split"]
    second = split.index(b"IDAT", split.index(b"IDAT") + 1) - 4
    cases["split"] = split[:second] + pngenc.chunk(b"tEXt", b"a\x00b") + split[second:]
    for name, why in (("noiend", "truncated"), ("noidat", "no IDAT chunk"),
                      ("first", "the first chunk is 'tEXt'"), ("split", "does not follow")):
        with pytest.raises(FileFormatError, match=rf"{name}\.png: corrupt PNG \(.*{why}"):
            read_label_png(write(tmp_path, f"{name}.png", cases[name]), decoder="fast")


def test_decompression_bombs(tmp_path: Path, monkeypatch) -> None:
    tiny = np.zeros((1, 1), np.uint8)
    # 100000 x 100000 declared over a one-pixel stream: refused before any allocation
    path = write(tmp_path, "bomb.png", pngenc.encode(tiny, pngenc.GREY, size=(100000, 100000)))
    for decoder in ("fast", "pillow", "auto"):
        with pytest.raises(FileFormatError, match=r"bomb\.png: .*decompression.bomb"):
            read_label_png(path, decoder=decoder)
    # under the limit, but the stream cannot possibly hold the declared pixels
    path = write(tmp_path, "hollow.png", pngenc.encode(tiny, pngenc.GREY, size=(5000, 5000)))
    with pytest.raises(FileFormatError, match=r"hollow\.png: corrupt PNG \(.*cannot hold"):
        read_label_png(path, decoder="fast")
    # the limit follows Pillow's MAX_IMAGE_PIXELS (refused above twice it, as Pillow does)
    arr = np.zeros((30, 40), np.uint8)
    path = write(tmp_path, "big.png", pngenc.encode(arr, pngenc.GREY))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 599)
    for decoder in ("fast", "pillow"):
        with pytest.raises(FileFormatError, match=r"big\.png: .*decompression.bomb"):
            read_label_png(path, decoder=decoder)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 600)
    np.testing.assert_array_equal(read_label_png(path, decoder="fast"), arr)
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", None)
    assert png.max_pixels() is None


def test_the_limit_without_pillow_imported_is_pillows_default() -> None:
    """A process that has not imported Pillow reads PNGs without importing it, under Pillow's
    default limit (the constant is checked against Pillow itself in a fresh interpreter)."""
    import subprocess

    from tests.conftest import REPO

    code = ("import sys\n"
            "from segeval.formats import png\n"
            "print(png.max_pixels(), 'PIL.Image' in sys.modules)\n"
            "from PIL import Image\n"
            "print(2 * Image.MAX_IMAGE_PIXELS)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.split()
    assert out == [out[2], "False", out[2]] and int(out[2]) > 0


def test_without_libdeflate_zlib_gives_the_same(tmp_path: Path, good, monkeypatch) -> None:
    arr, data = good
    monkeypatch.setitem(sys.modules, "deflate", None)  # import deflate -> ImportError
    np.testing.assert_array_equal(read_label_png(write(tmp_path, "g.png", data),
                                                 decoder="fast"), arr)
    long = pngenc.encode(arr, pngenc.GREY, size=(arr.shape[1], arr.shape[0] - 1))
    with pytest.raises(FileFormatError, match=r"long\.png: corrupt PNG \(the image data inflates "
                                              r"to more than"):
        read_label_png(write(tmp_path, "long.png", long), decoder="fast")
    stream = zlib.compress(b"\x00" * (arr.shape[1] + 1) * arr.shape[0])
    cut = (pngenc.SIGNATURE + data[8:33] + pngenc.chunk(b"IDAT", stream[:-6])
           + pngenc.chunk(b"IEND", b""))
    with pytest.raises(FileFormatError, match=r"cut\.png: corrupt PNG \(truncated image data"):
        read_label_png(write(tmp_path, "cut.png", cut), decoder="fast")


def test_threads_share_nothing(tmp_path: Path) -> None:
    """Decoding in threads (each has its own inflate buffer) gives Pillow's arrays, and a
    returned array never aliases a buffer that a later call reuses."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(9)
    paths, expected = [], []
    for i in range(12):
        h, w = int(rng.integers(200, 700)), int(rng.integers(300, 900))
        arr = label_image(rng, h, w, 1, 30)[..., 0]
        paths.append(write(tmp_path, f"t{i}.png", pngenc.encode(arr, pngenc.GREY,
                                                                filters=(4, 2, 1))))
        expected.append(arr)
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda p: read_label_png(p, decoder="fast"), paths))
            for g, e in zip(got, expected, strict=True):
                np.testing.assert_array_equal(g, e)


# --- choosing the decoder ---------------------------------------------------------------------


def test_decoder_choice_is_an_argument(tmp_path: Path, good, monkeypatch) -> None:
    """The decoder is a parameter, never read from the environment (the CLI maps
    SEGEVAL_PNG_DECODER to --decoder)."""
    arr, data = good
    path = write(tmp_path, "g.png", data)
    with pytest.raises(UsageError, match=r"^The 'decoder' parameter must be 'auto', 'fast' or "
                                         r"'pillow'\. Got 'libpng' instead\.$"):
        read_label_png(path, decoder="libpng")  # type: ignore[arg-type]
    monkeypatch.setenv("SEGEVAL_PNG_DECODER", "bogus")  # ignored by the library

    def no_fast(*args):
        raise AssertionError("the fast path was used")

    np.testing.assert_array_equal(read_label_png(path), arr)
    monkeypatch.setattr(png, "_decode_fast", no_fast)
    np.testing.assert_array_equal(read_label_png(path, decoder="pillow"), arr)


def test_auto_and_fast_take_the_compiled_path_for_every_size(tmp_path: Path, good,
                                                             monkeypatch) -> None:
    """Where the compiled kernels are available, ``auto`` and ``fast`` decode every image of a
    kind the fast path reads with them (no size threshold: the C extension costs nothing to
    load); without them both decode with Pillow, giving the same array."""
    arr, data = good
    path = write(tmp_path, "g.png", data)
    assert png.compiled_available()
    calls = []
    real = png._decode_fast
    monkeypatch.setattr(png, "_decode_fast", lambda *a: calls.append(a) or real(*a))
    tiny = write(tmp_path, "tiny.png", pngenc.encode(np.ones((1, 1), np.uint8), pngenc.GREY))
    for decoder in ("auto", "fast"):
        np.testing.assert_array_equal(read_label_png(path, decoder=decoder), arr)
        np.testing.assert_array_equal(read_label_png(tiny, decoder=decoder), [[1]])
    assert len(calls) == 4
    monkeypatch.setattr(png, "compiled_available", lambda: False)
    for decoder in ("auto", "fast"):
        np.testing.assert_array_equal(read_label_png(path, decoder=decoder), arr)
    assert len(calls) == 4  # Pillow's


def test_without_the_extension_the_python_walk_gives_the_same_errors(tmp_path: Path, good,
                                                                     monkeypatch) -> None:
    """The chunk walk is C where the extension is available, else Python: the same header, or
    the same message (a hypothesis test holds them to it on mutated files,
    ``tests/safety/test_png_agreement.py``)."""
    arr, data = good
    at = idat_offset(data)
    broken = bytearray(data)
    broken[at + 8 + 3] ^= 0x40
    messages = []
    for available in (True, False):
        monkeypatch.setattr(png, "compiled_available", lambda a=available: a)
        np.testing.assert_array_equal(png.decode_label_png(data, "g.png"), arr)
        with pytest.raises(FileFormatError) as e:
            png.decode_label_png(bytes(broken), "b.png")
        messages.append(str(e.value))
    assert messages[0] == messages[1] == \
        f"b.png: corrupt PNG (bad CRC in the 'IDAT' chunk at byte {at})"


def test_decode_label_png_from_bytes_names_the_source(good) -> None:
    arr, data = good
    for decoder in ("fast", "pillow"):
        np.testing.assert_array_equal(png.decode_label_png(data, "sub.zip:a.png",
                                                           decoder=decoder), arr)
    with pytest.raises(FileFormatError, match=r"^sub\.zip:b\.png: corrupt PNG \(truncated"):
        png.decode_label_png(data[:-30], "sub.zip:b.png", decoder="fast")
