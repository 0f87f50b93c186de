"""coco-panoptic and cityscapes-panoptic: the conformance suites (numbers from panopticapi and
cityscapesScripts), random sets against the reference, and every bad input through the real
command."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import segeval
from segeval.cli import cli
from tests.conftest import load_expected
from tests.panoptic_data import CATEGORIES, id2rgb, random_image, reference, write_set


def run(*args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def check_against_expected(result, expected: dict, tol: float = 1e-6) -> None:
    """All / Things / Stuff within ``tol``, n and per-category counts exact (suite README)."""
    for group, avg in (("All", result.all), ("Things", result.things),
                       ("Stuff", result.stuff)):
        assert avg.n == expected[group]["n"], group
        for key in ("pq", "sq", "rq"):
            assert getattr(avg, key) == pytest.approx(expected[group][key], abs=tol), (group, key)
    rows = {str(r["id"]): r for r in result.per_class()}
    for cid, want in expected["per_class"].items():
        got = rows[cid]
        assert (got["tp"], got["fp"], got["fn"]) == (want["tp"], want["fp"], want["fn"]), cid
        assert got["iou_sum"] == pytest.approx(want["iou_sum"], abs=tol)
        if want.get("counted_in_n", True):
            for key in ("pq", "sq", "rq"):
                assert got[key] == pytest.approx(want[key], abs=tol)
        else:
            assert got["pq"] is None
    counted = {cid for cid, w in expected["per_class"].items() if w.get("counted_in_n", True)}
    assert {cid for cid, r in rows.items() if r["pq"] is not None} == counted


def test_coco_panoptic_conformance(conformance: Path) -> None:
    suite = conformance / "coco_panoptic"
    cases = load_expected(suite)["cases"]
    assert len(cases) >= 7
    for name, case in cases.items():
        paths = {k: suite / v for k, v in case["inputs"].items()}
        result = segeval.evaluate(paths["pred_json"], paths["gt_json"], "coco-panoptic",
                                  gt_folder=paths["gt_folder"], pred_folder=paths["pred_folder"],
                                  jobs=1)
        try:
            check_against_expected(result, case["expected"])
        except AssertionError as e:
            raise AssertionError(f"case {name}: {e}") from e


def test_coco_panoptic_conformance_through_the_command(conformance: Path,
                                                       tmp_path: Path) -> None:
    suite = conformance / "coco_panoptic"
    case = load_expected(suite)["cases"]["c06_mixed"]
    paths = {k: suite / v for k, v in case["inputs"].items()}
    # the PNG folders default to the JSON paths without .json, as in the reference
    assert paths["pred_folder"] == paths["pred_json"].with_suffix("")
    out = tmp_path / "r.json"
    r = run("score", "--format", "coco-panoptic", "--gt", paths["gt_json"], "--pred",
            paths["pred_json"], "--json", out, "--jobs", "2")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(out.read_text())
    exp = case["expected"]
    m = doc["metrics"]
    for group, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
        assert m[f"n{suffix}"] == exp[group]["n"]
        for key in ("pq", "sq", "rq"):
            assert m[f"{key}{suffix}"] == pytest.approx(exp[group][key], abs=1e-6)
    person = next(row for row in doc["per_class"] if row["id"] == 1)
    assert (person["name"], person["isthing"]) == ("person", True)
    assert (person["tp"], person["fp"], person["fn"]) == tuple(
        exp["per_class"]["1"][k] for k in ("tp", "fp", "fn"))
    assert re.search(rf"All\s+{exp['All']['pq']:.4f}\s+{exp['All']['sq']:.4f}", r.stdout)
    assert re.search(r"\n1\s+person\s+thing\s+", r.stdout)


def test_cityscapes_panoptic_conformance(conformance: Path, tmp_path: Path) -> None:
    suite = conformance / "cityscapes"
    case = load_expected(suite)["cases"]["panoptic"]
    # the dataset root and the results folder, as the official script's defaults
    result = segeval.evaluate(suite / "results_panoptic", suite, "cityscapes-panoptic", jobs=2)
    assert result.format == "cityscapes-panoptic" and result.num_images == 12
    check_against_expected(result, case["expected"])
    paths = {k: suite / v for k, v in case["inputs"].items() if k != "gt_made_by"}
    out = tmp_path / "r.json"
    r = run("score", "--format", "cityscapes-panoptic", "--gt", paths["gt_json"], "--pred",
            paths["pred_json"], "--gt-folder", paths["gt_folder"], "--json", out, "-q")
    assert r.exit_code == 0, r.stderr
    assert json.loads(out.read_text())["metrics"]["pq"] == pytest.approx(
        case["expected"]["All"]["pq"], abs=1e-6)


@pytest.mark.parametrize("seed", [1, 2])
def test_random_files_match_the_reference(tmp_path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    images = [random_image(rng) for _ in range(12)]
    ref = reference(tmp_path, images)  # writes gt.json, gt/, pred.json, pred/
    for jobs in (1, 2):
        r = segeval.evaluate(tmp_path / "pred.json", tmp_path / "gt.json", "coco-panoptic",
                             jobs=jobs)
        for k, c in enumerate(CATEGORIES):
            tp, fp, fn, iou = ref.counts[c["id"]]
            assert (r.stats.tp[k], r.stats.fp[k], r.stats.fn[k]) == (tp, fp, fn)
            assert r.stats.iou_sum[k] == pytest.approx(iou, abs=1e-12)
        assert r.pq == pytest.approx(ref.averages["All"]["pq"], abs=1e-12)
        assert r.all.n == ref.averages["All"]["n"]


# --------------------------------------------------------------------------- the command


@pytest.fixture
def pset(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(7)
    images = []
    while len(images) < 3:
        im = random_image(rng)
        if len(im.pred_segments) >= 2 and len(im.gt_segments) >= 2:
            images.append(im)
    return write_set(tmp_path / "set", images)


def score(pred: Path, gt: Path, *extra: str | Path):
    return run("score", "--format", "coco-panoptic", "--pred", pred, "--gt", gt, *extra)


def edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def test_jobs_and_per_image(pset, tmp_path: Path) -> None:
    pred, gt = pset
    docs = []
    for jobs in ("1", "2"):
        out = tmp_path / f"j{jobs}.json"
        r = score(pred, gt, "--jobs", jobs, "--json", out, "--per-image", tmp_path / "p.json",
                  "--csv", tmp_path / "c.csv")
        assert r.exit_code == 0, r.stderr
        docs.append(out.read_text())
    assert docs[0] == docs[1]
    rows = json.loads((tmp_path / "p.json").read_text())
    assert [row["image"] for row in rows] == [1, 2, 3]
    one = segeval.evaluate(pred, gt, "coco-panoptic", jobs=1, per_image=True)
    assert rows == json.loads(json.dumps(one.per_image))
    assert sum(row["tp"] for row in rows) == int(one.stats.tp.sum())
    assert (tmp_path / "c.csv").read_text().startswith("id,name,isthing,pq,sq,rq,tp,fp,fn")


def _drop_pred_segment(doc):
    doc["annotations"][1]["segments_info"].pop(0)


def _resize(pset):
    pred_png = pset[0].with_suffix("") / "2.png"
    Image.fromarray(id2rgb(np.zeros((2, 2), np.int64)), "RGB").save(pred_png)


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda p: edit_json(p[0], _drop_pred_segment),
     r"pred/2\.png: segment id \d+ is in the PNG but not in the predicted segments_info"),
    (lambda p: edit_json(p[0], lambda d: d["annotations"][0]["segments_info"].append(
        {"id": 424242, "category_id": 1})),
     r"pred/1\.png: segment ids \[424242\] are in the predicted segments_info but not in the "
     r"PNG"),
    (lambda p: edit_json(p[0], lambda d: d["annotations"][2]["segments_info"][0].update(
        category_id=55)),
     r"pred\.json: image 3: segment \d+ has unknown category_id 55"),
    (lambda p: edit_json(p[0], lambda d: d["annotations"][0]["segments_info"].append(
        dict(d["annotations"][0]["segments_info"][0]))),
     r"pred\.json: image 1: segment id \d+ appears twice in segments_info"),
    (lambda p: edit_json(p[1], lambda d: d["annotations"][0]["segments_info"].append(
        dict(d["annotations"][0]["segments_info"][0]))),
     r"gt\.json: image 1: segment id \d+ appears twice in segments_info"),
    (lambda p: edit_json(p[0], lambda d: d["annotations"].append(
        {"image_id": 99, "file_name": "99.png", "segments_info": []})),
     r"pred\.json: predictions for 1 images that are not in the ground truth gt\.json \(99\)"),
    (lambda p: edit_json(p[0], lambda d: d["annotations"].append(dict(d["annotations"][0]))),
     r"pred\.json: image 1 has two annotations"),
    (lambda p: (p[0].with_suffix("") / "3.png").unlink(), r"pred/3\.png: no such file"),
    (lambda p: (p[1].with_suffix("") / "1.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
     r"gt/1\.png: corrupt PNG"),
    (_resize, r"pred/2\.png: shape \(2, 2\) does not match the ground truth .*gt/2\.png"),
    (lambda p: edit_json(p[1], lambda d: d["annotations"][1]["segments_info"].pop(0)),
     r"gt/2\.png: segment id \d+ is in the PNG but not in the ground-truth segments_info"),
    (lambda p: p[0].write_text("{not json"), r"pred\.json: not valid JSON"),
    (lambda p: edit_json(p[1], lambda d: d.pop("categories")), r"gt\.json: no 'categories'"),
    (lambda p: edit_json(p[1], lambda d: [s.pop("area") for s in
                                          d["annotations"][0]["segments_info"]]),
     r"gt\.json: image 1: ground-truth segments need their 'area'"),
    (lambda p: edit_json(p[0], lambda d: d["annotations"].pop(1)),
     r"pred\.json: no prediction for 1 of 3 ground-truth images \(2\); use --missing zero"),
    (lambda p: shutil.rmtree(p[0].with_suffix("")),
     r"set/pred: no PNG folder beside pred\.json \(give --pred-folder\)"),
])
def test_bad_input_is_one_line_and_exit_1(pset, tmp_path: Path, spoil, message) -> None:
    pred, gt = pset
    spoil(pset)
    out = tmp_path / "r.json"
    out.write_text("previous")
    for jobs in ("1", "2"):
        r = score(pred, gt, "--jobs", jobs, "--json", out)
        assert r.exit_code == 1, r.stderr
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("segeval: error: ")
        assert re.search(message, r.stderr), r.stderr
        assert out.read_text() == "previous"


def test_missing_prediction_counted_as_missed(pset, tmp_path: Path) -> None:
    pred, gt = pset
    edit_json(pred, lambda d: d["annotations"].pop(1))
    r = score(pred, gt, "--missing", "zero", "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.stderr
    assert "warning: 1 ground-truth images have no prediction" in r.stderr
    gt_doc = json.loads(gt.read_text())
    missed = sum(not s["iscrowd"] for s in gt_doc["annotations"][1]["segments_info"])
    full = segeval.evaluate(pset[0].parent / "pred.json", gt, "coco-panoptic", jobs=1,
                            missing="zero")
    assert int(full.stats.fn.sum()) >= missed > 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert sum(row["fn"] for row in doc["per_class"]) == int(full.stats.fn.sum())


def test_string_image_ids_and_a_type_mismatch_hint(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    images = [random_image(rng) for _ in range(2)]
    pred, gt = write_set(tmp_path, images, image_ids=["a_0", "b_1"])
    assert segeval.evaluate(pred, gt, "coco-panoptic", jobs=1).num_images == 2
    write_set(tmp_path / "n", images, image_ids=[1, 2])
    edit_json(tmp_path / "n" / "pred.json",
              lambda d: [a.update(image_id=str(a["image_id"])) for a in d["annotations"]])
    with pytest.raises(segeval.SegevalError, match="image ids differ in type"):
        segeval.evaluate(tmp_path / "n" / "pred.json", tmp_path / "n" / "gt.json",
                         "coco-panoptic", jobs=1)


def test_usage_errors_exit_2(pset, tmp_path: Path) -> None:
    pred, gt = pset
    r = score(pred, gt.parent)
    assert r.exit_code == 2 and "--gt must be the panoptic JSON file" in r.stderr
    r = score(pred, gt, "--split", "val")
    assert r.exit_code == 2 and "--split: not an option of the coco-panoptic format" in r.stderr
    r = score(pred, gt, "--num-classes", "3")
    assert r.exit_code == 2 and "--num-classes: not an option" in r.stderr
    r = run("score", "--format", "voc", "--pred", tmp_path, "--gt", tmp_path, "--gt-folder",
            tmp_path)
    assert r.exit_code == 2 and "--gt-folder: not an option of the voc format" in r.stderr
    r = run("score", "--format", "cityscapes-panoptic", "--pred", tmp_path, "--gt", tmp_path)
    assert r.exit_code == 1 and "no ground-truth cityscapes_panoptic_val.json in it" in r.stderr


def test_folders_can_be_given(pset, tmp_path: Path) -> None:
    pred, gt = pset
    moved = tmp_path / "elsewhere"
    shutil.move(pred.with_suffix(""), moved)
    r = score(pred, gt, "--pred-folder", moved, "-q", "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.stderr
    expected = segeval.evaluate(pred, gt, "coco-panoptic", pred_folder=moved, jobs=1)
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["metrics"] == json.loads(json.dumps(expected.to_dict()["metrics"]))


def test_saved_states_of_shards_merge_to_one_run(tmp_path: Path) -> None:
    rng = np.random.default_rng(9)
    images = [random_image(rng) for _ in range(7)]
    pred, gt = write_set(tmp_path / "all", images)
    states = []
    for k, part in enumerate((images[:3], images[3:])):
        ids = list(range(1, 4)) if k == 0 else list(range(4, 8))
        spred, sgt = write_set(tmp_path / f"s{k}", part, image_ids=ids)
        states.append(tmp_path / f"s{k}.npz")
        r = score(spred, sgt, "--save-state", states[-1], "-q")
        assert r.exit_code == 0, r.stderr
    out = tmp_path / "merged.json"
    r = run("merge", *states, "--json", out, "-q")
    assert r.exit_code == 0, r.stderr
    whole = segeval.evaluate(pred, gt, "coco-panoptic", jobs=1)
    merged = json.loads(out.read_text())
    assert merged == json.loads(json.dumps(whole.to_dict()))
    assert merged["num_images"] == 7 and merged["task"] == "panoptic"


def test_task_panoptic_of_the_coco_and_cityscapes_formats(conformance: Path, pset,
                                                          tmp_path: Path) -> None:
    suite = conformance / "cityscapes"
    want = load_expected(suite)["cases"]["panoptic"]["expected"]["All"]["pq"]
    r = run("score", "--format", "cityscapes", "--task", "panoptic", "--gt", suite, "--pred",
            suite / "results_panoptic", "--json", tmp_path / "r.json", "-q")
    assert r.exit_code == 0, r.stderr
    assert json.loads((tmp_path / "r.json").read_text())["metrics"]["pq"] == pytest.approx(
        want, abs=1e-6)
    pred, gt = pset
    by_task = segeval.evaluate(pred, gt, "coco", task="panoptic", jobs=1)
    assert by_task.to_dict() == segeval.evaluate(pred, gt, "coco-panoptic", jobs=1).to_dict()
    r = score(pred, gt, "--task", "instance")
    assert r.exit_code == 2 and "does panoptic evaluation" in r.stderr
