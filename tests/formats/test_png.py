"""The label-PNG reader: indices, never colours, and one clear error per bad file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segeval.errors import FileFormatError, MissingFileError
from segeval.formats.png import read_label_png
from tests.conftest import write_png


@pytest.mark.parametrize(("mode", "dtype"), [("L", np.uint8), ("P", np.uint8),
                                             ("I;16", np.uint16)])
def test_reads_indices_of_every_single_channel_kind(tmp_path: Path, mode, dtype) -> None:
    rng = np.random.default_rng(0)
    top = 255 if mode != "I;16" else 40000
    labels = rng.integers(0, top, (7, 13)).astype(dtype)
    path = write_png(tmp_path / "a.png", labels, mode)
    out = read_label_png(path)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out, labels)


def test_palette_png_gives_indices_not_colours(tmp_path: Path) -> None:
    labels = np.array([[0, 15], [255, 1]], np.uint8)
    path = write_png(tmp_path / "voc.png", labels, "P")
    assert Image.open(path).convert("RGB").getpixel((1, 0)) == (192, 128, 128)  # person colour
    np.testing.assert_array_equal(read_label_png(path), labels)


def test_rgb_is_refused_or_read_as_panoptic_ids(tmp_path: Path) -> None:
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 1] = (1, 2, 3)
    path = write_png(tmp_path / "rgb.png", rgb, "RGB")
    with pytest.raises(FileFormatError, match=r"rgb\.png: an RGB image where label indices are "
                                              r"expected"):
        read_label_png(path)
    ids = read_label_png(path, panoptic=True)
    assert ids.dtype == np.uint32 and ids[0, 1] == 1 + 2 * 256 + 3 * 256 * 256


def test_missing_corrupt_truncated_and_non_png_files(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match=r"nope\.png: no such file"):
        read_label_png(tmp_path / "nope.png")
    (tmp_path / "text.png").write_text("not an image")
    with pytest.raises(FileFormatError, match=r"text\.png: not a PNG file"):
        read_label_png(tmp_path / "text.png")
    good = write_png(tmp_path / "good.png", np.arange(10000).reshape(100, 100) % 7, "L")
    data = good.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(FileFormatError, match=r"cut\.png: corrupt PNG"):
        read_label_png(tmp_path / "cut.png")
    Image.new("RGB", (4, 4)).save(tmp_path / "photo.jpg", format="JPEG")
    (tmp_path / "photo.png").write_bytes((tmp_path / "photo.jpg").read_bytes())
    with pytest.raises(FileFormatError, match=r"photo\.png: not a PNG file"):
        read_label_png(tmp_path / "photo.png")
