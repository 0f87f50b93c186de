"""The synthetic data set and the folder readers of the reference model."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

from segeval.errors import DataError, MissingFileError, SizeMismatchError, UsageError
from segeval.formats import voc
from segeval.formats.png import read_label_png
from segeval.model import data as D
from tests.conftest import VOC_PALETTE, write_png


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*.png")):
        h.update(p.relative_to(root).as_posix().encode() + p.read_bytes())
    return h.hexdigest()


def test_make_dataset_layout_labels_and_determinism(tmp_path: Path) -> None:
    root = D.make_dataset(tmp_path / "d", train=6, val=3, size=40, seed=3)
    assert json.loads((root / "classes.json").read_text()) == list(D.CLASS_NAMES)
    assert sorted(p.name for p in root.iterdir()) == ["classes.json", "train", "val"]
    for split, n in (("train", 6), ("val", 3)):
        imgs = sorted((root / split / "images").glob("*.png"))
        labs = sorted((root / split / "labels").glob("*.png"))
        assert [p.name for p in imgs] == [p.name for p in labs] and len(imgs) == n
        for ip, lp in zip(imgs, labs, strict=True):
            with Image.open(ip) as im, Image.open(lp) as lab:
                assert im.mode == "RGB" and im.size == (40, 40)
                assert lab.mode == "P" and lab.size == (40, 40)
                np.testing.assert_array_equal(
                    np.asarray(lab.getpalette(), np.uint8).reshape(-1, 3)[:256], VOC_PALETTE)
            labels = read_label_png(lp)
            assert set(np.unique(labels)) <= {0, 1, 2, 3, 4, 255}
    split = D.load_split(root, "val")
    assert split.images.shape == (3, 40, 40, 3) and split.labels.shape == (3, 40, 40)
    assert (split.labels == 255).any() and (split.labels > 0).any()
    assert D.read_class_names(root) == D.CLASS_NAMES
    # a pure function of the seed; another seed differs
    same = D.make_dataset(tmp_path / "e", train=6, val=3, size=40, seed=3)
    other = D.make_dataset(tmp_path / "f", train=6, val=3, size=40, seed=4)
    assert digest(root) == digest(same) != digest(other)


def test_make_dataset_refuses_existing_data_and_leaves_nothing_on_failure(
        tmp_path: Path) -> None:
    D.make_dataset(tmp_path, train=1, val=1, size=16)
    with pytest.raises(UsageError, match="already exists"):
        D.make_dataset(tmp_path, train=1, val=1, size=16)
    (tmp_path / "f").write_text("")
    with pytest.raises(UsageError, match="not a folder"):
        D.make_dataset(tmp_path / "f")

    def interrupt(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        D.make_dataset(tmp_path / "g", train=3, val=1, size=16, progress=interrupt)
    assert list((tmp_path / "g").iterdir()) == []


def test_every_class_appears_with_occlusion() -> None:
    rng = np.random.default_rng(0)
    samples = [D.make_sample(rng, 64) for _ in range(60)]
    labels = np.stack([s[1] for s in samples])
    counts = np.bincount(labels[labels != 255], minlength=5)
    assert (counts > 0).all()
    assert D.make_sample(np.random.default_rng(1), 32, classes=(2,))[1].max() in (0, 2, 255)


@settings(max_examples=50, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 12), st.integers(1, 12)),
              elements=st.integers(0, 3)))
def test_void_band_is_exactly_the_mixed_neighbourhoods(labels: np.ndarray) -> None:
    out = D.void_boundaries(labels)
    h, w = labels.shape
    for y in range(h):
        for x in range(w):
            hood = labels[max(0, y - 1):y + 2, max(0, x - 1):x + 2]
            expected = 255 if len(np.unique(hood)) > 1 else labels[y, x]
            assert out[y, x] == expected


def test_voc_palette_matches_the_reference_colour_map() -> None:
    np.testing.assert_array_equal(D.voc_palette(), VOC_PALETTE)


def make_voc_root(root: Path) -> Path:
    voc = root / "VOCdevkit" / "VOC2012"
    rng = np.random.default_rng(0)
    ids = ["2007_000001", "2007_000002"]
    for i in ids:
        write_png(voc / "SegmentationClass" / f"{i}.png",
                  rng.integers(0, 21, (12, 16)).astype(np.uint8), mode="P")
        (voc / "JPEGImages").mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).save(
            voc / "JPEGImages" / f"{i}.jpg")
    (voc / "ImageSets" / "Segmentation").mkdir(parents=True)
    (voc / "ImageSets" / "Segmentation" / "train.txt").write_text("\n".join(ids) + "\n")
    return root / "VOCdevkit"


def test_reads_a_pascal_voc_root(tmp_path: Path) -> None:
    devkit = make_voc_root(tmp_path)
    split = D.load_split(devkit, "train")
    assert split.stems == ["2007_000001", "2007_000002"]
    assert split.images.shape == (2, 12, 16, 3)
    np.testing.assert_array_equal(split.labels[0], read_label_png(split.label_files[0]))
    assert D.read_class_names(devkit) == voc.CLASS_NAMES
    assert D.load_split(devkit, "train", size=8).images.shape == (2, 8, 8, 3)
    with pytest.raises(MissingFileError, match=r"val\.txt"):
        D.load_split(devkit, "val")


def test_reading_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(MissingFileError, match="make-data"):
        D.load_split(tmp_path, "train")
    write_png(tmp_path / "train" / "labels" / "a.png", np.zeros((8, 8)))
    (tmp_path / "train" / "images").mkdir()
    with pytest.raises(MissingFileError, match=r"a\.png: no image with stem 'a'"):
        D.load_split(tmp_path, "train")
    Image.fromarray(np.zeros((9, 8, 3), np.uint8)).save(tmp_path / "train" / "images" / "a.png")
    with pytest.raises(SizeMismatchError, match=r"images/a\.png"):
        D.load_split(tmp_path, "train")
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "train" / "images" / "a.png")
    write_png(tmp_path / "train" / "labels" / "b.png", np.zeros((4, 4)))
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "train" / "images" / "b.jpg")
    with pytest.raises(DataError, match=r"b\.jpg: size 4x4 differs"):
        D.load_split(tmp_path, "train")
    assert D.load_split(tmp_path, "train", size=8).images.shape == (2, 8, 8, 3)
    # without classes.json the classes come from the largest label
    assert D.read_class_names(tmp_path, np.array([[0, 3, 255]])) == ("0", "1", "2", "3")


def test_has_split(tmp_path: Path) -> None:
    devkit = make_voc_root(tmp_path / "v")
    assert D.has_split(devkit, "train") and not D.has_split(devkit, "val")
    root = D.make_dataset(tmp_path / "d", train=1, val=1, size=16)
    assert D.has_split(root, "train") and D.has_split(root, "val")
    assert not D.has_split(root, "test") and not D.has_split(tmp_path / "none", "train")
