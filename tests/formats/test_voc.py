"""Pascal VOC: the conformance suite (exact matrices, metrics to 1e-9) and how --gt resolves."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segeval import evaluate
from segeval.errors import MissingFileError, UsageError
from segeval.formats import voc
from segeval.formats.png import read_label_png
from tests.conftest import load_expected, write_png

TOL = 1e-9


@pytest.fixture(scope="module")
def suite(conformance: Path) -> Path:
    return conformance / "voc"


@pytest.mark.parametrize("case", ["comp5_val_cls", "comp6_val_cls"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_conformance(suite: Path, case: str, jobs: int) -> None:
    expected_doc = load_expected(suite)
    spec = expected_doc["cases"][case]
    exp = spec["expected"]
    res = evaluate(suite / spec["inputs"]["pred_dir"], suite / "VOC2012", "voc", jobs=jobs,
                   per_image=True)
    assert res.num_images == len(exp["per_image"])
    np.testing.assert_array_equal(res.confusion.matrix, exp["confusion_matrix"])
    assert list(res.class_names) == expected_doc["class_names"]
    m = res.to_dict()["metrics"]
    assert m["pixel_accuracy"] == pytest.approx(exp["pixel_accuracy"], abs=TOL)
    assert m["mean_pixel_accuracy"] == pytest.approx(exp["mean_pixel_accuracy"], abs=TOL)
    assert m["miou"] == pytest.approx(exp["mean_iou"], abs=TOL)
    assert m["fwiou"] == pytest.approx(exp["fw_iou"], abs=TOL)
    assert m["mean_dice"] == pytest.approx(exp["mean_dice"], abs=TOL)
    assert m["valid_pixels"] == exp["total_valid_pixels"]
    for ours, key in [(res.iou, "per_class_iou"), (res.accuracy, "per_class_accuracy"),
                      (res.dice, "per_class_dice")]:
        want = np.array([math.nan if v is None else v for v in exp[key]])
        np.testing.assert_allclose(ours, want, rtol=0, atol=TOL)  # NaN where null
    absent_both = [c for c in range(21) if math.isnan(res.iou[c])]
    assert absent_both == exp["classes_absent_in_both"]


def test_conformance_per_image_matrices(suite: Path) -> None:
    from segeval import confusion_matrix

    exp = load_expected(suite)["cases"]["comp5_val_cls"]["expected"]["per_image"]
    pred_dir = suite / "results/VOC2012/Segmentation/comp5_val_cls"
    for image_id, want in exp.items():
        gt = read_label_png(suite / "VOC2012/SegmentationClass" / f"{image_id}.png")
        pred = read_label_png(pred_dir / f"{image_id}.png")
        cm = confusion_matrix(pred, gt, 21)
        np.testing.assert_array_equal(cm.matrix, want["confusion_matrix"])
        assert int((gt == 255).sum()) == want["ignored_pixels"]


def test_gt_may_be_the_root_the_class_folder_or_the_devkit(suite: Path, tmp_path: Path) -> None:
    pred = suite / "results/VOC2012/Segmentation/comp5_val_cls"
    base = evaluate(pred, suite / "VOC2012", "voc", jobs=1)
    devkit = tmp_path / "VOCdevkit"
    shutil.copytree(suite / "VOC2012", devkit / "VOC2012")
    for gt, split in [(suite / "VOC2012/SegmentationClass", None),
                      (suite / "VOC2012/SegmentationClass", "val"), (devkit, "val")]:
        res = evaluate(pred, gt, "voc", split=split, jobs=1)
        assert res.confusion == base.confusion and res.num_images == 12


def test_split_list_selects_images(tmp_path: Path) -> None:
    root = tmp_path / "VOC2012"
    for i in range(3):
        write_png(root / "SegmentationClass" / f"im{i}.png", np.full((4, 5), i, np.uint8), "P")
        write_png(tmp_path / "pred" / f"im{i}.png", np.full((4, 5), i, np.uint8), "P")
    (root / "ImageSets/Segmentation").mkdir(parents=True)
    (root / "ImageSets/Segmentation/train.txt").write_text("im0\nim2\n")
    res = evaluate(tmp_path / "pred", root, "voc", split="train", jobs=1)
    assert res.num_images == 2 and res.confusion.total == 40
    with pytest.raises(MissingFileError, match=r"val\.txt: image list for split 'val' not found"):
        evaluate(tmp_path / "pred", root, "voc", jobs=1)
    (root / "ImageSets/Segmentation/val.txt").write_text("im0\nim7\n")
    with pytest.raises(MissingFileError, match=r"1 listed images have no ground truth .*im7\.png"):
        evaluate(tmp_path / "pred", root, "voc", jobs=1)


def test_voc_has_21_classes(tmp_path: Path) -> None:
    write_png(tmp_path / "gt/a.png", np.zeros((2, 2), np.uint8), "P")
    with pytest.raises(UsageError, match="21 classes"):
        evaluate(tmp_path / "gt", tmp_path / "gt", "voc", num_classes=19)
    with pytest.raises(UsageError, match="not the 3 names of the class-names file"):
        evaluate(tmp_path / "gt", tmp_path / "gt", "voc", class_names=("a", "b", "c"))
    with pytest.raises(MissingFileError, match="nope: no such prediction folder"):
        evaluate(tmp_path / "nope", tmp_path / "gt", "voc")
    assert len(voc.CLASS_NAMES) == 21 and voc.CLASS_NAMES[15] == "person"


def test_real_voc_ground_truth_and_model_output_against_sklearn(conformance: Path) -> None:
    """Real VOC val crops with a trained DeepLabV3+'s predictions (shared/extra/voc_real)."""
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    real = conformance.parent / "extra" / "voc_real"
    if not real.is_dir():
        pytest.skip(f"{real} not found")
    gt_dir, pred_dir = real / "VOC2012/SegmentationClass", real / "results/deeplabv3plus"
    expected = np.zeros((21, 21), np.int64)
    for path in sorted(gt_dir.glob("*.png")):
        gt = np.array(Image.open(path))
        pred = np.array(Image.open(pred_dir / path.name))
        keep = gt != 255
        expected += sk_confusion_matrix(gt[keep], pred[keep], labels=list(range(21)))
    res = evaluate(pred_dir, gt_dir, "voc", jobs=2)
    np.testing.assert_array_equal(res.confusion.matrix, expected)
    assert res.num_images == 14
