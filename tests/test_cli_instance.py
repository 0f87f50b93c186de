"""``segeval score`` for instance segmentation: COCO JSON and Cityscapes instance PNGs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from segeval.cli import cli
from segeval.core.instance import METRIC_NAMES
from tests.conftest import load_expected


def run(*args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def suite(conformance: Path) -> Path:
    return conformance / "coco_instances"


def test_coco_table_and_json(suite: Path, tmp_path: Path) -> None:
    case = load_expected(suite)["cases"]["real_val2014_fakesegm100"]
    out = tmp_path / "r.json"
    r = run("score", "--format", "coco", "--gt", suite / case["inputs"]["gt_json"],
            "--pred", suite / case["inputs"]["results_json"], "--json", out,
            "--csv", tmp_path / "c.csv")
    assert r.exit_code == 0, r.stderr
    assert f"AP     {case['expected']['stats'][0]:.4f}" in r.stdout
    assert "category" in r.stdout and "person" in r.stdout
    doc = json.loads(out.read_text())
    assert doc["task"] == "instance" and doc["format"] == "coco"
    assert list(doc["metrics"]) == list(METRIC_NAMES)
    for name, value in zip(METRIC_NAMES, case["expected"]["stats"], strict=True):
        assert doc["metrics"][name] == pytest.approx(value, abs=1e-9)
    rows = {str(row["id"]): row for row in doc["per_class"]}
    assert {"id", "name", "AP", "AP50", "AR100"} <= set(doc["per_class"][0])
    for cid, ref in case["expected"]["per_category"].items():
        for k in ("AP", "AP50", "AR100"):
            assert rows[cid][k] == (None if ref[k] is None else pytest.approx(ref[k], abs=1e-9))
    assert (tmp_path / "c.csv").read_text().startswith("id,name,AP,AP50,AP75,AR100")


def test_keep_bbox_and_backend(suite: Path, tmp_path: Path) -> None:
    exp = load_expected(suite)["cases"]
    gt, dt = suite / "derived/instances_gt.json", suite / "derived/detections_segm_with_bbox.json"
    args = ["score", "--format", "coco", "--gt", gt, "--pred", dt, "-q"]
    run(*args, "--json", tmp_path / "a.json")
    run(*args, "--keep-bbox", "--json", tmp_path / "b.json")
    a = json.loads((tmp_path / "a.json").read_text())
    b = json.loads((tmp_path / "b.json").read_text())
    assert a["metrics"]["APl"] == pytest.approx(exp["derived_segm"]["expected"]["stats"][5])
    assert b["metrics"]["APl"] == pytest.approx(
        exp["derived_segm_with_bbox"]["expected"]["stats"][5])
    assert a["settings"]["bboxes_dropped"] == 184
    pytest.importorskip("faster_coco_eval", reason="the [fast] extra is not installed")
    r = run(*args, "--backend", "faster", "--json", tmp_path / "f.json")
    assert r.exit_code == 0, r.stderr
    f = json.loads((tmp_path / "f.json").read_text())
    assert f["backend"] == "faster"
    for k in METRIC_NAMES:
        assert f["metrics"][k] == pytest.approx(a["metrics"][k], abs=1e-12)


def test_errors_exit_codes_and_nothing_written(suite: Path, tmp_path: Path) -> None:
    gt = suite / "derived/instances_gt.json"
    dt = json.loads((suite / "derived/detections_segm.json").read_text())
    del dt[3]["score"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dt))
    out = tmp_path / "r.json"
    r = run("score", "--format", "coco", "--gt", gt, "--pred", bad, "--json", out)
    assert r.exit_code == 1 and not out.exists()
    assert r.stderr == f"segeval: error: {bad}: results[3] (image_id {dt[3]['image_id']}) " \
                       f"has no 'score'\n"
    r = run("score", "--format", "coco", "--gt", bad, "--pred", gt)
    assert r.exit_code == 1 and "not COCO instances ground truth" in r.stderr
    empty = tmp_path / "empty.json"
    empty.write_text("[]")
    r = run("score", "--format", "coco", "--gt", gt, "--pred", empty, "--json", out)
    assert r.exit_code == 0 and json.loads(out.read_text())["metrics"]["AP"] == 0.0
    for extra, message in ((["--task", "semantic"], "does instance evaluation"),
                           (["--num-classes", "3"], "--num-classes: not an option"),
                           (["--per-image", tmp_path / "p.csv"], "no per-image rows")):
        r = run("score", "--format", "coco", "--gt", gt, "--pred", empty, *extra)
        assert r.exit_code == 2 and message in r.stderr, r.stderr
    r = run("score", "--format", "voc", "--task", "instance", "--gt", tmp_path, "--pred",
            tmp_path)
    assert r.exit_code == 2 and "the voc format has only semantic evaluation" in r.stderr


def test_cityscapes_instance_cli(conformance: Path, tmp_path: Path) -> None:
    from tests.formats.test_cityscapes_instance import make_predictions, reference_stats

    gt = conformance / "cityscapes" / "gtFine"
    preds = tmp_path / "results"
    make_predictions(gt, preds, seed=5)
    out = tmp_path / "r.json"
    r = run("score", "--format", "cityscapes", "--task", "instance", "--ap", "coco", "--gt", gt,
            "--pred", preds, "--json", out, "-j", "1")
    assert r.exit_code == 0, r.stderr
    doc = json.loads(out.read_text())
    want = reference_stats(gt, preds, tmp_path)
    got = [float("nan") if doc["metrics"][k] is None else doc["metrics"][k] for k in METRIC_NAMES]
    assert got == pytest.approx(list(want), abs=1e-12, nan_ok=True)  # null = NaN (no large GT)
    assert doc["num_images"] == 12 and "bicycle" in r.stdout


def test_cli_formats_are_the_registry_formats() -> None:
    from segeval.cli import FORMATS
    from segeval.formats.registry import ADAPTERS

    assert set(FORMATS) == {key.split("/")[0] for key in ADAPTERS}
    assert len(FORMATS) == len(set(FORMATS))
