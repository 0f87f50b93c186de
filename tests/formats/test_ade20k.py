"""``--format ade20k`` and ``reduce_zero_label``: mmsegmentation's and HF evaluate's numbers.

The references are written in this test from each tool's code (neither can run here:
mmsegmentation needs torch and mmcv; evaluate's metric script comes from the Hub):

* :func:`mmseg_iou_metric` -- mmsegmentation 1.x: ``LoadAnnotations(reduce_zero_label=True)``
  (``.astype(np.uint8)``, 0 -> 255, minus 1, 254 -> 255), then ``IoUMetric``:
  ``intersect_and_union`` (``mask = label != ignore_index``, ``torch.histc(x.float(),
  bins=C, min=0, max=C-1)``, float32 counts summed over images), ``total_area_to_metrics``
  (``aAcc = I.sum() / L.sum()``, ``IoU = I / U``, ``Acc = I / L``) and the summary
  ``np.round(np.nanmean(x) * 100, 2)``. A challenge prediction file holds ``class + 1``
  (mmseg's ``format_only`` output adds 1), so mmseg's in-memory prediction is ``file - 1``.
* :func:`tests.test_compat.hf_reference` -- evaluate's ``mean_iou`` with ``reduce_labels``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import segeval
from segeval.cli import cli
from segeval.engine import cuda, local
from segeval.errors import LabelError, MissingFileError, UsageError
from segeval.formats import ade20k
from segeval.formats.base import Folder, Options
from tests.conftest import write_png
from tests.test_compat import hf_reference

C = 150
NAMES = ("ADE_val_00000001", "ADE_val_00000002", "ADE_val_00000003", "ADE_val_00000004",
         "ADE_val_00000005")


def mmseg_iou_metric(preds: list[np.ndarray], gts: list[np.ndarray]) -> dict:
    """mmsegmentation's numbers (see the module docstring) for in-memory predictions
    (train ids) and raw ADE20K annotations."""

    def histc(x: np.ndarray) -> np.ndarray:  # torch.histc(x, bins=C, min=0, max=C-1)
        x = x[(x >= 0) & (x <= C - 1)]
        b = np.minimum(np.floor(x * np.float32(C) / np.float32(C - 1)).astype(np.int64), C - 1)
        return np.bincount(b, minlength=C).astype(np.float32)

    totals = [np.zeros(C, np.float32) for _ in range(4)]
    for pred, gt in zip(preds, gts, strict=True):
        label = gt.astype(np.uint8)
        label[label == 0] = 255
        label = label - 1
        label[label == 254] = 255
        mask = label != 255
        p = pred[mask].astype(np.float32)
        lab = label[mask].astype(np.float32)
        inter = histc(p[p == lab])
        area_p, area_l = histc(p), histc(lab)
        for t, v in zip(totals, (inter, area_p + area_l - inter, area_p, area_l), strict=True):
            t += v
    inter, union, area_p, area_l = totals
    with np.errstate(invalid="ignore", divide="ignore"):
        iou, acc = inter / union, inter / area_l
        aacc = inter.sum() / area_l.sum()
    summary = {k: np.round(np.nanmean(v) * 100, 2) for k, v in (("mIoU", iou), ("mAcc", acc))}
    return {"aAcc_fraction": aacc, "IoU": iou, "Acc": acc, "I": inter, "L": area_l,
            "P": area_p, "aAcc": np.round(aacc * 100, 2), **summary}


def dataset(root: Path, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """ADEChallengeData2016-like ground truth and challenge predictions (1..150, 0 = none) of
    different sizes: 'other' and 255 pixels, classes absent from both (100..149 but 140),
    class 140 predicted only, class 5 never predicted."""
    rng = np.random.default_rng(seed)
    gts, preds = [], []
    for name in NAMES:
        shape = (int(rng.integers(20, 60)), int(rng.integers(20, 60)))
        gt = rng.integers(0, 100, shape).astype(np.uint8)  # raw 0..99: classes 0..98
        gt[rng.random(shape) < 0.05] = 255
        pred = np.where(rng.random(shape) < 0.6, gt, rng.integers(1, 100, shape)).astype(np.uint8)
        pred[pred == 255] = 1
        pred[pred == 6] = 7  # class 5 never predicted
        pred[rng.random(shape) < 0.03] = 141  # class 140: predicted, absent from the gt
        pred[rng.random(shape) < 0.03] = 0  # no class
        write_png(root / "ADEChallengeData2016" / "annotations" / "validation" / f"{name}.png",
                  gt)
        write_png(root / "preds" / f"{name}.png", pred)
        write_png(root / "train" / f"{name}.png", np.where(pred == 0, 255, pred - 1))
        gts.append(gt)
        preds.append(pred)
    return gts, preds


@pytest.fixture(scope="module")
def ade(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list, list]:
    root = tmp_path_factory.mktemp("ade")
    gts, preds = dataset(root)
    return root, gts, preds


def check_against_references(result: segeval.SemanticResult, gts: list, preds: list) -> None:
    cm = result.confusion
    train = [p.astype(np.int64) - 1 for p in preds]  # mmseg's in-memory prediction
    mm = mmseg_iou_metric(train, gts)
    # the counts: mmseg's float32 histograms are exact at this size
    np.testing.assert_array_equal(np.diagonal(cm.matrix), mm["I"])
    np.testing.assert_array_equal(cm.matrix.sum(1) + cm.unassigned, mm["L"])
    np.testing.assert_array_equal(cm.matrix.sum(0), mm["P"])
    # the scores: mmseg divides in float32
    np.testing.assert_allclose(result.iou, mm["IoU"], rtol=1e-6, equal_nan=True)
    np.testing.assert_allclose(result.accuracy, mm["Acc"], rtol=1e-6, equal_nan=True)
    assert result.pixel_accuracy == pytest.approx(float(mm["aAcc_fraction"]), rel=1e-6)
    assert round(result.pixel_accuracy * 100, 2) == mm["aAcc"]
    assert round(result.miou * 100, 2) == mm["mIoU"]
    assert round(result.mean_pixel_accuracy * 100, 2) == mm["mAcc"]
    # evaluate's mean_iou, reduce_labels=True, in float64
    hf = hf_reference(train, gts, C, 255, reduce_labels=True)
    np.testing.assert_array_equal(result.iou, hf["per_category_iou"])
    np.testing.assert_array_equal(result.accuracy, hf["per_category_accuracy"])
    assert result.miou == pytest.approx(hf["mean_iou"], rel=1e-12)
    assert result.mean_pixel_accuracy == pytest.approx(hf["mean_accuracy"], rel=1e-12)
    assert result.pixel_accuracy == pytest.approx(hf["overall_accuracy"], rel=1e-12)
    # the edge cases are in the data
    assert np.isnan(result.iou[120]) and result.iou[140] == 0.0 and np.isnan(result.accuracy[140])
    assert result.iou[5] == 0.0 and cm.unassigned.sum() > 0


def test_ade20k_is_mmsegs_iou_metric_and_evaluates_mean_iou(ade: tuple) -> None:
    root, gts, preds = ade
    result = segeval.evaluate(root / "preds", root / "ADEChallengeData2016", "ade20k", jobs=1)
    assert result.format == "ade20k" and result.num_images == len(NAMES)
    assert result.class_names == ade20k.CLASS_NAMES
    check_against_references(result, gts, preds)
    assert result.miou.n == 100 - 1 + 1  # classes 0..98 and 140; 99..149 but 140 absent


def test_train_ids_and_the_folder_format_give_the_same_numbers(ade: tuple) -> None:
    root, gts, preds = ade
    want = segeval.evaluate(root / "preds", root / "ADEChallengeData2016", "ade20k", jobs=1)
    train = segeval.evaluate(root / "train", root / "ADEChallengeData2016", "ade20k",
                             pred_ids="train", jobs=2)
    assert train.confusion == want.confusion
    # the folder format with mmseg's reduce_zero_label: predictions are classes as they are
    # (no "none" value there: it is scored on predictions without it)
    clean = root / "clean"
    for name, p in zip(NAMES, preds, strict=True):
        write_png(clean / f"{name}.png", np.where(p == 0, 1, p) - 1)
    folder = segeval.evaluate(clean, root / "ADEChallengeData2016/annotations/validation",
                              "folder", num_classes=C, reduce_zero_label=True, jobs=1)
    mm = mmseg_iou_metric([np.where(p == 0, 1, p).astype(np.int64) - 1 for p in preds], gts)
    np.testing.assert_array_equal(np.diagonal(folder.confusion.matrix), mm["I"])
    np.testing.assert_array_equal(folder.confusion.matrix.sum(0), mm["P"])
    assert round(folder.miou * 100, 2) == mm["mIoU"]


def test_gpu_batches_on_the_host_map_labels_like_the_local_engine(ade: tuple) -> None:
    root, _, _ = ade
    for pred_ids, folder in (("label", "preds"), ("train", "train")):
        options = Options(pred_ids=pred_ids)
        ref = ade20k.reference(root / "ADEChallengeData2016", options)
        plan = ade20k.plan(Folder(root / folder), ref, options)
        stats, _ = local.reduce(plan, jobs=1)
        for kw in ({"jobs": 1}, {"jobs": 1, "batch": 2}):
            got, _ = cuda.reduce(plan, device="cpu", **kw)
            assert got == stats


def test_layouts_and_splits(ade: tuple, tmp_path: Path) -> None:
    root, _, _ = ade
    want = segeval.evaluate(root / "preds", root / "ADEChallengeData2016", "ade20k", jobs=1)
    for gt, split in ((root / "ADEChallengeData2016" / "annotations", None),
                      (root / "ADEChallengeData2016" / "annotations" / "validation", None),
                      (root / "ADEChallengeData2016", "validation")):
        got = segeval.evaluate(root / "preds", gt, "ade20k", split=split, jobs=1)
        assert got.confusion == want.confusion
    with pytest.raises(MissingFileError, match=r"annotations/training: no such folder"):
        segeval.evaluate(root / "preds", root / "ADEChallengeData2016", "ade20k",
                         split="training")


def test_names_are_the_official_first_names_and_mmsegs_but_two() -> None:
    # mmsegmentation's ADE20KDataset.METAINFO["classes"] (mmseg/datasets/ade.py), as typed there
    mmseg = (
        "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed ", "windowpane",
        "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain",
        "plant", "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house",
        "sea", "mirror", "rug", "field", "armchair", "seat", "fence", "desk", "rock",
        "wardrobe", "lamp", "bathtub", "railing", "cushion", "base", "box", "column",
        "signboard", "chest of drawers", "counter", "sand", "sink", "skyscraper", "fireplace",
        "refrigerator", "grandstand", "path", "stairs", "runway", "case", "pool table",
        "pillow", "screen door", "stairway", "river", "bridge", "bookcase", "blind",
        "coffee table", "toilet", "flower", "book", "hill", "bench", "countertop", "stove",
        "palm", "kitchen island", "computer", "swivel chair", "boat", "bar", "arcade machine",
        "hovel", "bus", "towel", "light", "truck", "tower", "chandelier", "awning",
        "streetlight", "booth", "television receiver", "airplane", "dirt track", "apparel",
        "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster",
        "stage", "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
        "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike",
        "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
        "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
        "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen",
        "plate", "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
    )
    names = ade20k.CLASS_NAMES
    assert len(names) == len(mmseg) == C and len(set(names)) == C
    differ = [(i, names[i], mmseg[i]) for i in range(C) if names[i] != mmseg[i]]
    # objectInfo150: "bed " (a trailing space), "television, television receiver, ..."
    assert differ == [(7, "bed", "bed "), (89, "television", "television receiver")]


def test_bad_values_name_the_file_and_the_raw_value(tmp_path: Path) -> None:
    gt_dir = tmp_path / "ADEChallengeData2016" / "annotations" / "validation"
    write_png(gt_dir / "a.png", np.array([[0, 1], [151, 151]], np.uint8))
    write_png(tmp_path / "p" / "a.png", np.array([[1, 1], [1, 1]], np.uint8))
    with pytest.raises(LabelError, match=r"a\.png: ground-truth label 151 is not a class "
                                         r"\(reduce_zero_label: expected 1\.\.150 for the classes "
                                         r"0\.\.149, or 0 or the ignore index 255, not scored; "
                                         r"2 such pixels\)$"):
        segeval.evaluate(tmp_path / "p", tmp_path / "ADEChallengeData2016", "ade20k", jobs=1)
    write_png(gt_dir / "a.png", np.array([[0, 1], [150, 255]], np.uint8))
    write_png(tmp_path / "p" / "a.png", np.array([[151, 1], [1, 1]], np.uint8))
    with pytest.raises(LabelError, match=r"p/a\.png: predicted label 151 is not a class "
                                         r"\(expected 1\.\.150 for the classes 0\.\.149, or 0 "
                                         r"\(no class\); 1 such pixels\)$"):
        segeval.evaluate(tmp_path / "p", tmp_path / "ADEChallengeData2016", "ade20k", jobs=1)
    write_png(tmp_path / "p" / "a.png", np.array([[150, 1], [1, 1]], np.uint8))
    with pytest.raises(LabelError, match=r"predicted label 150 is not a class \(expected "
                                         r"0\.\.149 for the classes 0\.\.149, or 255 "):
        segeval.evaluate(tmp_path / "p", tmp_path / "ADEChallengeData2016", "ade20k",
                         pred_ids="train", jobs=1)
    with pytest.raises(UsageError, match=r"^ignore_index, num_classes: not options of the "
                                         r"ade20k format$"):
        segeval.evaluate(tmp_path / "p", tmp_path / "ADEChallengeData2016", "ade20k",
                         num_classes=150, ignore_index=0)
    with pytest.raises(UsageError, match=r"^reduce_zero_label needs an ignore index"):
        segeval.evaluate(tmp_path / "p", gt_dir, "folder", num_classes=150,
                         reduce_zero_label=True, ignore_index=None)
    with pytest.raises(UsageError, match=r"^reduce_zero_label: not an option of the voc"):
        segeval.evaluate(tmp_path / "p", gt_dir, "voc", reduce_zero_label=True)


def test_the_command(ade: tuple, tmp_path: Path) -> None:
    root, _, preds = ade
    out = tmp_path / "r.json"
    r = CliRunner().invoke(cli, ["score", "--format", "ade20k", "--gt",
                                 str(root / "ADEChallengeData2016"), "--pred",
                                 str(root / "preds"), "--json", str(out), "-j", "1"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert doc["format"] == "ade20k" and doc["metrics"]["num_classes"] == C
    assert [row["name"] for row in doc["per_class"]] == list(ade20k.CLASS_NAMES)
    want = segeval.evaluate(root / "preds", root / "ADEChallengeData2016", "ade20k", jobs=1)
    assert doc["metrics"]["miou"] == pytest.approx(float(want.miou), rel=1e-15)
    assert "wall" in r.stdout
    gt_dir = root / "ADEChallengeData2016" / "annotations" / "validation"
    args = ["score", "--gt", str(gt_dir), "--pred", str(root / "train"), "--format", "folder",
            "--num-classes", "150", "-q"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 1  # without the option, 150 is not a class: one line
    assert r.stderr.startswith("segeval: error: ") and r.stderr.count("\n") == 1
    clean = tmp_path / "clean"
    for name, p in zip(NAMES, preds, strict=True):
        write_png(clean / f"{name}.png", np.where(p == 0, 1, p) - 1)
    args[4] = str(clean)
    r = CliRunner().invoke(cli, [*args, "--reduce-zero-label", "--json", str(out)])
    assert r.exit_code == 0, r.output
    want = segeval.evaluate(clean, gt_dir, "folder", num_classes=C, reduce_zero_label=True)
    assert json.loads(out.read_text())["metrics"]["miou"] == pytest.approx(float(want.miou),
                                                                          rel=1e-15)
