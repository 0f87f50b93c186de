"""Plain PNG folders: pairing by name, class-names files, and evaluate() on them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from segeval import confusion_matrix, evaluate
from segeval.errors import DataError, MissingFileError, UsageError
from segeval.formats.folder import read_class_names
from tests.conftest import random_labels, write_png


def _dataset(tmp_path: Path, n: int = 6, c: int = 5) -> tuple[Path, Path, list]:
    rng = np.random.default_rng(3)
    pairs = []
    for i in range(n):
        gt = random_labels(rng, (20 + i, 31), c)
        pred = rng.integers(0, c, gt.shape).astype(np.uint8)
        sub = "city_a/" if i % 2 else ""
        write_png(tmp_path / "gt" / f"{sub}img{i}.png", gt)
        write_png(tmp_path / "pred" / f"{sub}img{i}.png", pred)
        pairs.append((pred, gt))
    return tmp_path / "pred", tmp_path / "gt", pairs


@pytest.mark.parametrize("jobs", [1, 2, 3])
def test_sum_of_pairs_whatever_the_number_of_jobs(tmp_path: Path, jobs: int) -> None:
    pred, gt, pairs = _dataset(tmp_path)
    expected = sum((confusion_matrix(p, g, 5) for p, g in pairs[1:]),
                   confusion_matrix(*pairs[0], 5))
    res = evaluate(pred, gt, "folder", num_classes=5, jobs=jobs, per_image=True)
    assert res.confusion == expected
    assert res.num_images == 6
    assert [r["image"] for r in res.per_image] == sorted(
        ["img0", "city_a/img1", "img2", "city_a/img3", "img4", "city_a/img5"])


@pytest.mark.parametrize(("name", "text"), [
    ("names.json", json.dumps(["road", "car", "sky"])),
    ("names.json", json.dumps({"2": "sky", "0": "road", "1": "car"})),
    ("names.txt", "road\ncar\n\nsky\n"),
])
def test_class_names_files(tmp_path: Path, name: str, text: str) -> None:
    (tmp_path / name).write_text(text)
    assert read_class_names(tmp_path / name) == ("road", "car", "sky")


@pytest.mark.parametrize(("text", "message"), [
    ("[1, 2", "malformed JSON"),
    ('{"0": "a", "2": "b"}', "without gaps"),
    ('{"x": "a"}', "keys must be class ids"),
    ("3", "expected a JSON list"),
    ("[]", "no class names"),
])
def test_bad_class_names_files(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "n.json").write_text(text)
    with pytest.raises(DataError, match=message):
        read_class_names(tmp_path / "n.json")


def test_folder_needs_classes_and_files(tmp_path: Path) -> None:
    pred, gt, _ = _dataset(tmp_path, n=1)
    with pytest.raises(UsageError, match="needs num_classes or class_names"):
        evaluate(pred, gt, "folder")
    with pytest.raises(UsageError, match="num_classes=4 but class_names has 5 names"):
        evaluate(pred, gt, "folder", num_classes=4, class_names=tuple("abcde"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(MissingFileError, match="empty: no ground-truth PNG files found"):
        evaluate(pred, tmp_path / "empty", "folder", num_classes=5)


def test_two_files_for_one_stem_are_refused(tmp_path: Path) -> None:
    write_png(tmp_path / "gt/a.png", np.zeros((2, 2)))
    write_png(tmp_path / "gt/a.PNG", np.zeros((2, 2)))
    with pytest.raises(DataError, match="two files for one stem"):
        evaluate(tmp_path / "gt", tmp_path / "gt", "folder", num_classes=2)


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"^The 'format' parameter must be 'ade20k', .*, "
                                         r"'folder', 'nifti' or 'voc'\. Got 'kitti' instead\.$"):
        evaluate(tmp_path, tmp_path, "kitti")


def test_an_option_the_format_does_not_use_is_a_usage_error(tmp_path: Path) -> None:
    pred, gt, _ = _dataset(tmp_path, n=1)
    with pytest.raises(UsageError, match=r"^gt_folder: not an option of the folder format"):
        evaluate(pred, gt, "folder", num_classes=5, gt_folder="x")
