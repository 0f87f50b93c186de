"""Cityscapes pixel-level evaluation against cityscapesScripts itself and the conformance suite:
every score, the pairing rules, train-id predictions, NaN rules and bad input."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from segeval import evaluate
from segeval.cli import cli
from segeval.errors import DataError, LabelError, MissingFileError, SizeMismatchError, UsageError
from segeval.formats import cityscapes as cs
from segeval.formats.cityscapes.stats import _weighted, official_result
from tests.cityscapes_data import (
    STUFF,
    THINGS,
    assert_official_equal,
    official,
    official_module,
    scene,
    write_dataset,
)
from tests.conftest import load_expected, write_png

TOL = 1e-9


@pytest.fixture(autouse=True)
def _reference() -> None:
    official_module()


@pytest.fixture
def dataset(tmp_path: Path) -> tuple[Path, list[Path], list[Path]]:
    rng = np.random.default_rng(3)
    preds, gts = write_dataset(tmp_path / "cs", [scene(rng) for _ in range(5)])
    return tmp_path / "cs", preds, gts


def run(*args: str | Path):
    return CliRunner().invoke(cli, ["score", "--format", "cityscapes", *map(str, args)],
                              catch_exceptions=False)


# ----------------------------------------------------------------- against the official tool


@pytest.mark.parametrize("iiou", [True, False])
@pytest.mark.parametrize("jobs", [1, 2])
def test_every_score_equals_cityscapesscripts(dataset, iiou: bool, jobs: int) -> None:
    root, preds, gts = dataset
    ref = official(preds, gts, iiou=iiou)
    res = evaluate(root / "results", root, "cityscapes", iiou=iiou, jobs=jobs)
    assert res.num_images == 5
    assert_official_equal(official_result(res.stats), ref)
    assert res.miou == pytest.approx(ref["averageScoreClasses"], abs=TOL)
    assert res.category_miou == pytest.approx(ref["averageScoreCategories"], abs=TOL)
    cls_iou = np.array([ref["classScores"][n] for n in cs.CLASS_NAMES])
    np.testing.assert_allclose(res.iou, cls_iou, rtol=0, atol=TOL)
    cat_iou = np.array([ref["categoryScores"][c] for c in cs.EVAL_CATEGORIES])
    np.testing.assert_allclose(res.category_iou, cat_iou, rtol=0, atol=TOL)
    if iiou:
        assert res.iiou == pytest.approx(ref["averageScoreInstClasses"], abs=TOL)
        assert res.category_iiou == pytest.approx(ref["averageScoreInstCategories"], abs=TOL)
        inst = np.array([ref["classInstScores"][n] for n in cs.CLASS_NAMES])
        np.testing.assert_allclose(res.instance_iou, inst, rtol=0, atol=TOL)
    else:  # not evaluated: NaN in our result (the official dict keeps its 0/NaN quirk, above)
        assert math.isnan(res.iiou) and res.iiou.n == 0
        assert np.isnan(res.instance_iou).all() and math.isnan(res.category_iiou)


def test_absent_class_and_no_instances_follow_the_official_nan_rules(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    # no train (31) anywhere, motorcycle (32) predicted but never in the ground truth,
    # and no instances at all: instanceIds hold label ids only
    things = [t for t in THINGS if t not in (31, 32)]
    scenes = []
    for _ in range(3):
        labels, _inst, pred = scene(rng, things=things, pred_ids=[i for i in range(34) if i != 31])
        pred[:2, :2] = 32
        scenes.append((labels, labels.astype(np.uint16), pred))
    preds, gts = write_dataset(tmp_path, scenes)
    ref = official(preds, gts)
    res = evaluate(tmp_path / "results", tmp_path, "cityscapes", jobs=1)
    assert_official_equal(official_result(res.stats), ref)
    train, moto = cs.CLASS_NAMES.index("train"), cs.CLASS_NAMES.index("motorcycle")
    assert math.isnan(res.iou[train]) and res.iou[moto] == 0.0
    assert res.miou.n == 18
    # no instance anywhere: iIoU is 0 where a class has false positives, else NaN
    for c, name in enumerate(cs.CLASS_NAMES):
        want = ref["classInstScores"][name]
        assert (math.isnan(res.instance_iou[c]) and math.isnan(want)) \
            or res.instance_iou[c] == want == 0.0


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 3), noise=st.floats(0, 0.5),
       n_things=st.integers(0, 8))
def test_random_scenes_equal_cityscapesscripts(tmp_path_factory, seed: int, n: int,
                                               noise: float, n_things: int) -> None:
    root = tmp_path_factory.mktemp("cs")
    rng = np.random.default_rng(seed)
    preds, gts = write_dataset(root, [scene(rng, 12, 20, n_things=n_things, noise=noise)
                                      for _ in range(n)])
    ref = official(preds, gts)
    res = evaluate(root / "results", root, "cityscapes", jobs=1)
    assert_official_equal(official_result(res.stats), ref)


def test_train_id_predictions(dataset, tmp_path: Path) -> None:
    root, preds, gts = dataset
    train_of = np.full(256, 255, np.uint8)
    for lb in cs.EVAL_LABELS:
        train_of[lb.id] = lb.train_id
    as_label = {lb.train_id: lb.id for lb in cs.EVAL_LABELS} | {255: 0}
    label_files = []
    for p in preds:
        train = train_of[np.asarray(Image.open(p))]
        write_png(root / "train" / p.name, train)
        label_files.append(write_png(tmp_path / "relabelled" / p.name,
                                     np.vectorize(as_label.get)(train).astype(np.uint8)))
    res = evaluate(root / "train", root, "cityscapes", pred_ids="train", jobs=1)
    assert res.pred_ids == "train"
    # the definition: train ids read as their label ids, 255 as 0 (unlabeled)
    assert_official_equal(official_result(res.stats), official(label_files, gts))
    # class IoU does not depend on which ignored id a prediction used
    assert res.miou == pytest.approx(official(preds, gts)["averageScoreClasses"], abs=TOL)


def test_missing_zero_counts_as_unlabeled_everywhere(dataset, tmp_path: Path) -> None:
    root, preds, gts = dataset
    labels = np.asarray(Image.open(gts[1]))
    zero = write_png(tmp_path / "zero" / preds[1].name, np.zeros_like(labels))
    preds[1].unlink()
    with pytest.raises(MissingFileError, match=r"no prediction for 1 of 5 ground-truth images "
                                               r"\(bonn_000000_000001\)"):
        evaluate(root / "results", root, "cityscapes", jobs=1)
    res = evaluate(root / "results", root, "cityscapes", jobs=1, missing="zero")
    assert_official_equal(official_result(res.stats), official([*preds[:1], zero, *preds[2:]],
                                                               gts))


def test_per_image_rows_equal_the_official_score_of_each_image(dataset) -> None:
    root, preds, gts = dataset
    res = evaluate(root / "results", root, "cityscapes", jobs=2, per_image=True)
    by_key = sorted(zip(gts, preds, strict=True))  # images are scored in ground-truth path order
    assert [r["image"] for r in res.per_image] == [cs.image_key(g) for g, _ in by_key]
    for row, (g, p) in zip(res.per_image, by_key, strict=True):
        ref = official([p], [g])
        assert row["miou"] == pytest.approx(ref["averageScoreClasses"], abs=TOL)
        assert row["iiou"] == pytest.approx(ref["averageScoreInstClasses"], abs=TOL)


# ----------------------------------------------------------------- the conformance suite


@pytest.mark.parametrize("jobs", [1, 2])
def test_conformance(conformance: Path, jobs: int) -> None:
    suite = conformance / "cityscapes"
    exp = load_expected(suite)["cases"]["pixel_level"]
    want = exp["expected"]
    res = evaluate(suite / "results", suite, "cityscapes", jobs=jobs)
    assert res.num_images == len(exp["inputs"]["pairs"])
    ours = official_result(res.stats)
    assert ours["confMatrix"] == want["confMatrix"]
    for key in ("classScores", "classInstScores", "categoryScores", "categoryInstScores",
                "priors"):
        for name, value in want[key].items():
            if value is None:
                assert math.isnan(ours[key][name]), (key, name)
            else:
                assert ours[key][name] == pytest.approx(value, abs=TOL), (key, name)
    for key in ("averageScoreClasses", "averageScoreInstClasses", "averageScoreCategories",
                "averageScoreInstCategories"):
        assert ours[key] == pytest.approx(want[key], abs=TOL)
    doc = res.to_dict()["metrics"]
    assert doc["miou"] == pytest.approx(want["averageScoreClasses"], abs=TOL)
    assert doc["iiou"] == pytest.approx(want["averageScoreInstClasses"], abs=TOL)
    assert doc["category_miou"] == pytest.approx(want["averageScoreCategories"], abs=TOL)
    assert doc["category_iiou"] == pytest.approx(want["averageScoreInstCategories"], abs=TOL)
    assert want["avgClassSize"] == cs.AVG_CLASS_SIZE
    # the instance statistics behind iIoU, class by class and category by category
    inst = res.stats.instances
    groups = [(name, (_label_id(name),), 2, s) for name, s in
              want["instanceStats"]["classes"].items()]
    groups += [(name, tuple(s["labelIds"]), 3, s) for name, s in
               want["instanceStats"]["categories"].items()]
    for name, ids, column, s in groups:
        rows = inst[np.isin(inst[:, 0], ids)]
        assert rows[:, column].sum() == s["tp"], name
        assert (rows[:, 1] - rows[:, column]).sum() == s["fn"], name
        tpw, fnw = _weighted(res.stats, ids, column)
        assert tpw == pytest.approx(s["tpWeighted"], rel=TOL, abs=0), name
        assert fnw == pytest.approx(s["fnWeighted"], rel=TOL, abs=0), name


def _label_id(name: str) -> int:
    return next(lb.id for lb in cs.BY_ID if lb.name == name)


# ----------------------------------------------------------------- pairing


def test_gt_may_be_the_root_a_split_a_city_or_gtfine(dataset) -> None:
    root, preds, gts = dataset
    rng = np.random.default_rng(9)
    write_dataset(root / "other", [scene(rng)], split="train")
    shutil.copytree(root / "other" / "gtFine" / "train", root / "gtFine" / "train")
    base = evaluate(root / "results", root, "cityscapes", jobs=1)
    assert base.num_images == 5  # split val by default: the train image is not scored
    for gt, split in [(root / "gtFine" / "val", None), (root / "gtFine", "val"), (root, "val")]:
        res = evaluate(root / "results", gt, "cityscapes", split=split, jobs=1)
        assert np.array_equal(res.stats.matrix, base.stats.matrix)
    one_city = evaluate(root / "results", root / "gtFine/val/aachen", "cityscapes", jobs=1)
    assert one_city.num_images == 3
    ref = official([p for p in preds if "aachen" in p.name], [g for g in gts if "aachen" in
                                                               g.name])
    assert_official_equal(official_result(one_city.stats), ref)
    with pytest.raises(UsageError, match=r"split='test': .* is neither the Cityscapes root"):
        evaluate(root / "results", root / "gtFine/val", "cityscapes", split="test")
    with pytest.raises(MissingFileError, match=r"gtFine/test: no such folder"):
        evaluate(root / "results", root, "cityscapes", split="test")
    with pytest.raises(MissingFileError, match=r"no \*_gtFine_labelIds.png files found"):
        evaluate(root / "results", root / "results", "cityscapes")


def test_prediction_is_found_recursively_by_the_key_in_its_name(dataset, tmp_path: Path) -> None:
    root, preds, _ = dataset
    moved = tmp_path / "nested"
    for i, p in enumerate(preds):
        name = "model_" + p.name.replace("_pred", "_leftImg8bit")
        dest = moved / f"city{i % 2}" / "deeper" / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(p, dest)
    (moved / "notes.txt").write_text("not a png")
    base = evaluate(root / "results", root, "cityscapes", jobs=1)
    res = evaluate(moved, root, "cityscapes", jobs=1)
    assert np.array_equal(res.stats.matrix, base.stats.matrix)
    # a longer frame number is another image, not this one
    shutil.copy(preds[0], moved / (preds[0].stem.replace("_pred", "") + "1.png"))
    res = evaluate(moved, root, "cityscapes", jobs=1)
    assert np.array_equal(res.stats.matrix, base.stats.matrix)


def test_several_predictions_for_one_image_is_an_error(dataset) -> None:
    root, preds, _ = dataset
    (root / "results" / "colour").mkdir()
    shutil.copy(preds[2], root / "results" / "colour" / preds[2].name.replace("pred", "color"))
    with pytest.raises(DataError, match=r"results: 2 predictions for aachen_000001_000002 "
                                        r"\(.*\); keep exactly one file"):
        evaluate(root / "results", root, "cityscapes", jobs=1)
    r = run("--gt", root, "--pred", root / "results")
    assert r.exit_code == 1 and r.stderr.startswith("segeval: error: ")
    assert "2 predictions for aachen_000001_000002" in r.stderr and r.stderr.count("\n") == 1


# ----------------------------------------------------------------- bad input


@pytest.mark.parametrize(("spoil", "pred_ids", "message"), [
    (lambda ls, ins, pr: ls.__setitem__((0, 0), 40), "label",
     r"_gtFine_labelIds\.png: ground-truth label id 40 is not in the Cityscapes label table "
     r"\(expected 0\.\.33; 1 such pixels\)"),
    (lambda ls, ins, pr: pr.__setitem__((1, 1), 34), "label",
     r"_pred\.png: predicted value 34 is not a Cityscapes label id \(expected label ids 0\.\.33; "
     r"1 such pixels\)"),
    (lambda ls, ins, pr: pr.__setitem__((1, 1), 19), "train",
     r"_pred\.png: predicted value 19 is not a Cityscapes train id \(expected train ids 0\.\.18 "
     r"or 255"),
    (lambda ls, ins, pr: ins.__setitem__((2, 2), 7001), "label",
     r"_gtFine_instanceIds\.png: instance id 7001 is of class 'road', which has no instances"),
    (lambda ls, ins, pr: ins.__setitem__((2, 2), 40001), "label",
     r"_gtFine_instanceIds\.png: instance id 40001 is of label id 40, which is not in the "
     r"Cityscapes label table"),
])
def test_values_the_label_table_does_not_know(tmp_path: Path, spoil, pred_ids, message) -> None:
    rng = np.random.default_rng(1)
    scenes = [scene(rng) for _ in range(4)]
    for _, _, pred in scenes:
        if pred_ids == "train":
            pred[:] = np.where(pred < 19, pred, 255)
    spoil(*scenes[3])  # the last image: scored in a worker process when jobs > 1
    write_dataset(tmp_path, scenes)
    with pytest.raises(LabelError, match=message):
        evaluate(tmp_path / "results", tmp_path, "cityscapes", pred_ids=pred_ids, jobs=1)
    out = tmp_path / "r.json"
    for jobs in ("1", "2"):
        r = run("--gt", tmp_path, "--pred", tmp_path / "results", "--pred-ids", pred_ids,
                "--json", out, "--jobs", jobs)
        assert r.exit_code == 1 and r.stderr.count("\n") == 1 and not out.exists()
        assert r.stderr.startswith("segeval: error: ") and "bonn_000001_000003" in r.stderr


def test_instance_file_and_size_errors(dataset) -> None:
    root, preds, gts = dataset
    inst = gts[0].with_name(gts[0].name.replace("labelIds", "instanceIds"))
    inst.unlink()
    with pytest.raises(MissingFileError, match=r"_gtFine_instanceIds\.png: no such file"):
        evaluate(root / "results", root, "cityscapes", jobs=1)
    evaluate(root / "results", root, "cityscapes", iiou=False, jobs=1)  # not needed without iIoU
    write_png(preds[3], np.zeros((5, 5)))
    with pytest.raises(SizeMismatchError, match=r"_pred\.png: shape \(5, 5\) does not match the "
                                                r"ground truth .*labelIds\.png shape \(40, 80\)"):
        evaluate(root / "results", root, "cityscapes", iiou=False, jobs=1)


# ----------------------------------------------------------------- the command


def test_command_table_json_and_official_json(dataset, tmp_path: Path) -> None:
    root, preds, gts = dataset
    export = tmp_path / "official.json"
    ref = official(preds, gts, export=export)
    out = tmp_path / "ours.json"
    ours_official = tmp_path / "resultPixelLevelSemanticLabeling.json"
    r = run("--gt", root, "--pred", root / "results", "--json", out,
            "--cityscapes-json", ours_official, "-j", "2")
    assert r.exit_code == 0, r.stderr
    for word in ("iIoU", "category", "vehicle", "human", "bicycle"):
        assert word in r.stdout
    assert f"mIoU                 {ref['averageScoreClasses']:.4f}" in r.stdout
    assert f"iIoU                 {ref['averageScoreInstClasses']:.4f}" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["task"] == "semantic" and doc["format"] == "cityscapes"
    m = doc["metrics"]
    assert m["iiou"] == pytest.approx(ref["averageScoreInstClasses"], abs=TOL)
    assert m["category_miou"] == pytest.approx(ref["averageScoreCategories"], abs=TOL)
    assert m["category_iiou"] == pytest.approx(ref["averageScoreInstCategories"], abs=TOL)
    assert [row["name"] for row in doc["per_class"]] == list(cs.CLASS_NAMES)
    for row in doc["per_class"]:
        want = ref["classInstScores"][row["name"]]
        assert (row["iiou"] is None) == math.isnan(want)
        assert row["iiou"] is None or row["iiou"] == pytest.approx(want, abs=TOL)
    assert [c["name"] for c in doc["per_category"]] == list(cs.EVAL_CATEGORIES)
    for c in doc["per_category"]:
        assert c["iou"] == pytest.approx(ref["categoryScores"][c["name"]], abs=TOL)
    # --cityscapes-json: the official file's structure (same keys, NaN as NaN), same numbers
    theirs = json.loads(export.read_text())
    mine = json.loads(ours_official.read_text())
    assert set(mine) == set(theirs)
    assert_official_equal(mine, theirs)
    assert ours_official.read_text().splitlines()[:3] == export.read_text().splitlines()[:3]


def test_command_options_and_usage_errors(dataset, tmp_path: Path) -> None:
    root, _, _ = dataset
    r = run("--gt", root, "--pred", root / "results", "--no-iiou", "-q", "--json",
            tmp_path / "r.json")
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["iiou"] is None
    r = run("--gt", root, "--pred", root / "results", "--num-classes", "19")
    assert r.exit_code == 2 and "--num-classes: not an option of the cityscapes format" in r.stderr
    r = CliRunner().invoke(cli, ["score", "--format", "voc", "--gt", str(root), "--pred",
                                 str(root), "--pred-ids", "train"])
    assert r.exit_code == 2 and "--pred-ids: not an option of the voc format" in r.stderr
    r = CliRunner().invoke(cli, ["score", "--gt", str(root), "--pred", str(root),
                                 "--num-classes", "3", "--cityscapes-json", "x.json"])
    assert r.exit_code == 2 and "--cityscapes-json: only for --format cityscapes" in r.stderr
    r = run("--gt", root, "--pred", root / "results", "--task", "instance", "--ap", "coco",
            "--cityscapes-json", tmp_path / "x.json")
    assert r.exit_code == 2 and "--cityscapes-json: only for --format cityscapes" in r.stderr
    r = run("--gt", root, "--pred", root / "results", "--task", "semantic", "-q")
    assert r.exit_code == 0, r.stderr
    r = run("--gt", root, "--pred", root / "results", "--pred-ids", "both")
    assert r.exit_code == 2


def test_stuff_and_thing_lists_used_by_the_generator_match_the_table() -> None:
    assert sorted(STUFF + THINGS) == sorted(cs.EVAL_LABEL_IDS)


def test_saved_states_of_shards_merge_to_the_whole_run(dataset, tmp_path: Path) -> None:
    root, _, _ = dataset
    whole = tmp_path / "whole.json"
    assert run("--gt", root, "--pred", root / "results", "--json", whole, "-q").exit_code == 0
    states = []
    for city in ("aachen", "bonn"):
        state = tmp_path / f"{city}.npz"
        r = run("--gt", root / "gtFine/val" / city, "--pred", root / "results",
                "--save-state", state, "-q")
        assert r.exit_code == 0, r.stderr
        states.append(state)
    merged = tmp_path / "merged.json"
    r = CliRunner().invoke(cli, ["merge", *map(str, states), "--json", str(merged)])
    assert r.exit_code == 0, r.stderr
    assert "iIoU" in r.stdout and "vehicle" in r.stdout
    a, b = json.loads(whole.read_text()), json.loads(merged.read_text())
    assert a["metrics"] == b["metrics"] and a["per_category"] == b["per_category"]
    assert a["label_confusion_matrix"] == b["label_confusion_matrix"]
    r = run("--gt", root / "gtFine/val/aachen", "--pred", root / "results", "--no-iiou",
            "--save-state", tmp_path / "off.npz", "-q")
    assert r.exit_code == 0
    r = CliRunner().invoke(cli, ["merge", str(states[1]), str(tmp_path / "off.npz")])
    assert r.exit_code == 1 and "settings differs" in r.stderr
