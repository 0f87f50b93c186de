"""The real ``segeval`` command on real PNG files, including every kind of bad input."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from segeval import confusion_matrix
from segeval.cli import cli
from tests.conftest import random_labels, write_png

C = 4


@pytest.fixture
def data(tmp_path: Path) -> tuple[Path, Path, list]:
    rng = np.random.default_rng(11)
    pairs = []
    for i in range(5):
        gt = random_labels(rng, (17, 23), C)
        pred = np.where(rng.random(gt.shape) < 0.7, gt % C, 1).astype(np.uint8)
        write_png(tmp_path / "gt" / f"im{i}.png", gt)
        write_png(tmp_path / "pred" / f"im{i}.png", pred)
        pairs.append((pred, gt))
    return tmp_path / "pred", tmp_path / "gt", pairs


def run(*args: str | Path):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return result


def score(pred: Path, gt: Path, *extra: str | Path):
    return run("score", "--pred", pred, "--gt", gt, "--num-classes", C, *extra)


def test_table_json_csv_and_per_image(data, tmp_path: Path) -> None:
    pred, gt, pairs = data
    expected = confusion_matrix(np.stack([p for p, _ in pairs]), np.stack([g for _, g in pairs]), C)
    out = tmp_path / "out"
    out.mkdir()
    r = score(pred, gt, "--json", out / "r.json", "--csv", out / "c.csv",
              "--per-image", out / "p.csv", "--jobs", "2")
    assert r.exit_code == 0, r.stderr
    assert f"mIoU                 {expected.miou():.4f}" in r.stdout
    doc = json.loads((out / "r.json").read_text())
    assert doc["task"] == "semantic" and doc["format"] == "folder" and doc["num_images"] == 5
    assert doc["confusion_matrix"] == expected.matrix.tolist()
    assert doc["metrics"]["miou"] == pytest.approx(expected.miou(), abs=1e-15)
    for key in ("pixel_accuracy", "mean_pixel_accuracy", "miou", "fwiou", "mean_dice"):
        assert 0 <= doc["metrics"][key] <= 1
    assert [row["id"] for row in doc["per_class"]] == list(range(C))
    assert {"id", "name", "iou", "accuracy", "dice"} <= set(doc["per_class"][0])
    rows = list(csv.DictReader((out / "c.csv").open()))
    assert float(rows[2]["iou"]) == pytest.approx(expected.iou()[2])
    per_image = list(csv.DictReader((out / "p.csv").open()))
    assert [p["image"] for p in per_image] == [f"im{i}" for i in range(5)]
    first = confusion_matrix(*pairs[0], C)
    assert float(per_image[0]["miou"]) == pytest.approx(first.miou())
    r = score(pred, gt, "--per-image", out / "p.json", "--quiet")
    assert r.exit_code == 0 and r.stdout == ""
    assert json.loads((out / "p.json").read_text())[0]["valid_pixels"] == first.total


def test_results_do_not_depend_on_jobs(data, tmp_path: Path) -> None:
    pred, gt, _ = data
    docs = []
    for jobs in ("1", "2", "4"):
        path = tmp_path / f"j{jobs}.json"
        assert score(pred, gt, "--jobs", jobs, "--json", path, "-q").exit_code == 0
        docs.append(path.read_text())
    assert docs[0] == docs[1] == docs[2]


def test_nan_is_written_as_null(data, tmp_path: Path) -> None:
    pred, gt, _ = data
    r = run("score", "--pred", pred, "--gt", gt, "--num-classes", 6, "--json", tmp_path / "r.json")
    assert r.exit_code == 0
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["per_class"][5]["iou"] is None and doc["metrics"]["classes_averaged"]["miou"] == 4
    assert "n/a" in r.stdout


def test_missing_prediction_is_an_error_or_counted_wrong(data, tmp_path: Path) -> None:
    pred, gt, pairs = data
    (pred / "im1.png").unlink()
    (pred / "im3.png").unlink()
    r = score(pred, gt, "--json", tmp_path / "r.json")
    assert r.exit_code == 1
    assert r.stderr.strip() == (f"segeval: error: {pred}: no prediction for 2 of 5 ground-truth "
                                "images (im1, im3); use --missing zero to count them as wrong")
    assert not (tmp_path / "r.json").exists()
    r = score(pred, gt, "--missing", "zero", "--json", tmp_path / "r.json")
    assert r.exit_code == 0
    assert "warning: 2 ground-truth images have no prediction" in r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    expected = confusion_matrix(*pairs[0], C)
    for i in (2, 4):
        expected.update(*pairs[i])
    expected.update_missing(pairs[1][1]).update_missing(pairs[3][1])
    assert doc["metrics"]["miou"] == pytest.approx(expected.miou(), abs=1e-15)
    assert doc["metrics"]["unassigned_pixels"] == int(expected.unassigned.sum()) > 0


def test_extra_predictions_are_a_warning(data) -> None:
    pred, gt, _ = data
    write_png(pred / "stray.png", np.zeros((3, 3)))
    r = score(pred, gt)
    assert r.exit_code == 0
    assert "segeval: warning: 1 prediction has no ground truth and is ignored: stray.png" \
        in r.stderr


@pytest.mark.parametrize(("spoil", "message"), [
    (lambda d: write_png(d / "pred/im2.png", np.zeros((5, 5))),
     r"pred/im2\.png: shape \(5, 5\) does not match the ground truth .*gt/im2\.png "
     r"shape \(17, 23\)"),
    (lambda d: write_png(d / "pred/im2.png", np.full((17, 23), 7)),
     r"pred/im2\.png: predicted label 7 is not a class \(expected 0\.\.3; \d+ such pixels"),
    (lambda d: write_png(d / "gt/im2.png", np.full((17, 23), 9)),
     r"gt/im2\.png: ground-truth label 9 is not a class \(expected 0\.\.3 or the ignore index "
     r"255; 391 such pixels\)"),
    (lambda d: (d / "pred/im2.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken"),
     r"pred/im2\.png: corrupt PNG"),
    (lambda d: (d / "gt/im2.png").write_text("hello"), r"gt/im2\.png: not a PNG file"),
    (lambda d: write_png(d / "pred/im2.png", np.zeros((17, 23, 3)), "RGB"),
     r"pred/im2\.png: an RGB image where label indices are expected"),
])
def test_bad_input_is_one_line_and_exit_1(data, tmp_path: Path, spoil, message) -> None:
    pred, gt, _ = data
    spoil(tmp_path)
    out = tmp_path / "r.json"
    out.write_text("previous")
    for jobs in ("1", "2"):
        r = score(pred, gt, "--jobs", jobs, "--json", out)
        assert r.exit_code == 1
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("segeval: error: ")
        assert re.search(message, r.stderr), r.stderr
        assert out.read_text() == "previous"  # nothing half-written, nothing clobbered


def test_usage_errors_exit_2(data, tmp_path: Path) -> None:
    pred, gt, _ = data
    r = run("score", "--pred", pred, "--gt", gt)
    assert r.exit_code == 2 and "needs --num-classes or --class-names" in r.stderr
    r = run("score", "--pred", tmp_path / "nope", "--gt", gt, "--num-classes", 3)
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = score(pred, gt, "--json", tmp_path / "no/such/dir/r.json")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = score(pred, gt, "--ignore-index", "void")
    assert r.exit_code == 2 and "'void' is not an integer or 'none'" in r.stderr
    (tmp_path / "empty").mkdir()
    r = score(pred, tmp_path / "empty")
    assert r.exit_code == 1 and "empty: no ground-truth PNG files found" in r.stderr


def test_output_files_keep_links_permissions_and_must_differ(data, tmp_path: Path) -> None:
    pred, gt, _ = data
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    r = score(pred, gt, "--json", link, "-q")
    assert r.exit_code == 0 and link.is_symlink()
    assert json.loads(real.read_text())["num_images"] == 5
    assert (real.stat().st_mode & 0o777) == 0o666 & ~_umask()
    r = score(pred, gt, "--json", tmp_path / "x", "--csv", tmp_path / "x")
    assert r.exit_code == 2 and "must name different files" in r.stderr


def _umask() -> int:
    import os

    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_ignore_index_none_and_class_names_file(data, tmp_path: Path) -> None:
    pred, gt, _ = data
    (tmp_path / "names.txt").write_text("road\ncar\nsky\ntree\n")
    r = run("score", "--pred", pred, "--gt", gt, "--class-names", tmp_path / "names.txt")
    assert r.exit_code == 0 and "tree" in r.stdout
    r = score(pred, gt, "--ignore-index", "none")
    assert r.exit_code == 1 and "ground-truth label 255 is not a class (expected 0..3;" in r.stderr


def test_voc_conformance_through_the_command(conformance: Path, tmp_path: Path) -> None:
    suite = conformance / "voc"
    exp = json.loads((suite / "expected.json").read_text())["cases"]["comp5_val_cls"]["expected"]
    r = run("score", "--format", "voc", "--gt", suite / "VOC2012", "--pred",
            suite / "results/VOC2012/Segmentation/comp5_val_cls", "--json", tmp_path / "r.json")
    assert r.exit_code == 0, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["confusion_matrix"] == exp["confusion_matrix"]
    assert doc["metrics"]["miou"] == pytest.approx(exp["mean_iou"], abs=1e-9)
    assert doc["per_class"][15]["name"] == "person"


def test_installed_command_no_traceback_and_lazy_imports(data) -> None:
    pred, gt, _ = data
    (pred / "im0.png").write_text("junk")
    exe = Path(sys.executable).with_name("segeval")
    proc = subprocess.run([str(exe), "score", "--pred", str(pred), "--gt", str(gt),
                           "--num-classes", "4"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    for args, message in [
        (["score", "--pred", "/no/such", "--gt", str(gt)], "Invalid value for '--pred'"),
        (["score", "--pred", str(pred), "--gt", str(gt), "--format", "kitti"], "'kitti' is not"),
        (["score", "--pred", str(pred), "--gt", str(gt), "-j", "0"], "Invalid value for '--jobs'"),
    ]:
        proc = subprocess.run([str(exe), *args], capture_output=True, text=True)
        assert proc.returncode == 2 and proc.stderr.count("\n") == 1, proc.stderr
        assert proc.stderr.startswith("segeval: error: ") and message in proc.stderr
        assert "(see 'segeval score --help')" in proc.stderr
    proc = subprocess.run([str(exe), "--help"], capture_output=True, text=True)
    assert proc.returncode == 0 and "score" in proc.stdout
    proc = subprocess.run([str(exe), "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("segeval, version ")
    code = ("import sys, segeval.cli; heavy = {'numpy', 'pandas', 'numba', 'PIL', 'pycocotools'}"
            " & set(sys.modules); print(sorted(heavy))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]"


def test_public_evaluate_stays_a_function_after_the_cli_is_imported() -> None:
    code = ("import segeval, segeval.cli, segeval.scoring; from segeval import evaluate; "
            "print(callable(evaluate), callable(segeval.evaluate))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.split() == ["True", "True"], proc.stderr
