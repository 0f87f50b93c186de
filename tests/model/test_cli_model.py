"""``segeval model make-data / train / predict`` on real files, then ``segeval score`` on the
predictions: the two-command path from nothing to a scored prediction."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from segeval import ConfusionMatrix
from segeval.cli import cli
from segeval.formats.png import read_label_png
from segeval.model import unet as U
from segeval.model.data import image_files, read_image


def run(*args: str | Path):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("model")
    data = tmp / "data"
    r = run("model", "make-data", data, "--train", 16, "--val", 6, "--size", 32, "--seed", 1)
    assert r.exit_code == 0, r.stderr
    r = run("model", "train", "--data", data, "--out", tmp / "m.npz", "--epochs", 2,
            "--width", 4, "--batch-size", 8, "--seed", 2)
    assert r.exit_code == 0, r.stderr
    assert "epoch 2/2" in r.stderr and "val mIoU" in r.stderr and "saved" in r.stdout
    return data, tmp / "m.npz"


def test_train_predict_then_score_with_the_voc_format(trained, tmp_path: Path) -> None:
    data, model_path = trained
    preds = tmp_path / "preds"
    r = run("model", "predict", "--model", model_path, "--images", data / "val" / "images",
            "--out", preds)
    assert r.exit_code == 0, r.stderr
    gt_dir = data / "val" / "labels"
    names = sorted(p.name for p in gt_dir.glob("*.png"))
    assert sorted(p.name for p in preds.iterdir()) == names  # nothing else left behind
    # the files are exactly the model's predictions
    model, header = U.load(model_path)
    files = image_files(data / "val" / "images")
    expected = U.predict(model, np.stack([read_image(files[k]) for k in sorted(files)]))
    got = np.stack([read_label_png(preds / n) for n in names])
    np.testing.assert_array_equal(got, expected)
    # segeval score --format voc reads them; its matrix is the independent count of the files
    r = run("score", "--format", "voc", "--pred", preds, "--gt", gt_dir,
            "--json", tmp_path / "r.json", "--quiet")
    assert r.exit_code == 0, r.stderr
    doc = json.loads((tmp_path / "r.json").read_text())
    cm = ConfusionMatrix(21, 255)
    for n in names:
        cm.update(np.asarray(Image.open(preds / n)), np.asarray(Image.open(gt_dir / n)))
    assert doc["confusion_matrix"] == cm.matrix.tolist()
    assert doc["num_images"] == len(names)
    # the training run's last validation mIoU is this very number (5 classes, same pixels)
    assert header["info"]["val_miou"] == pytest.approx(doc["metrics"]["miou"], abs=1e-12)


def test_train_variants_and_options(trained, tmp_path: Path) -> None:
    data, _ = trained
    out = tmp_path / "fcn.npz"
    r = run("model", "train", "--data", data, "--out", out, "--epochs", 1, "--width", 2,
            "--levels", 2, "--no-skips", "--up", "unpool", "--quiet")
    assert r.exit_code == 0 and r.stdout == "" and r.stderr == ""
    _, header = U.load(out)
    assert header["architecture"]["skips"] is False and header["architecture"]["up"] == "unpool"
    assert header["class_names"] == ["background", "disc", "box", "triangle", "ring"]


def test_model_commands_fail_in_one_line(trained, tmp_path: Path) -> None:
    data, model_path = trained
    r = run("model", "make-data", data)
    assert r.exit_code == 2 and "already exists" in r.stderr and r.stderr.count("\n") == 1
    r = run("model", "train", "--data", tmp_path, "--out", tmp_path / "m.npz")
    assert r.exit_code == 1 and "no train/labels folder" in r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp_path / "m.npz").exists()
    r = run("model", "train", "--data", data, "--out", tmp_path / "no" / "m.npz")
    assert r.exit_code == 2 and "does not exist" in r.stderr
    r = run("model", "train", "--data", data, "--out", tmp_path / "m.npz", "--levels", 7)
    assert r.exit_code == 2 and "not multiples of 64" in r.stderr
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"junk")
    r = run("model", "predict", "--model", junk, "--images", data / "val" / "images",
            "--out", tmp_path / "p")
    assert r.exit_code == 1 and "junk.npz: not a segeval model" in r.stderr
    # an unreadable image: one line naming it, and no prediction written at all
    images = tmp_path / "images"
    images.mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(images / "a.png")
    (images / "b.png").write_bytes(b"not a png")
    r = run("model", "predict", "--model", model_path, "--images", images, "--out",
            tmp_path / "p")
    assert r.exit_code == 1 and "b.png: not a readable image" in r.stderr
    assert r.stderr.strip().count("\n") == 0
    assert list((tmp_path / "p").iterdir()) == []


def test_model_help_does_not_import_numpy() -> None:
    code = ("import sys; from segeval.cli import cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(cli, ['model', '--help']); assert r.exit_code == 0; "
            "print(sorted({'numpy', 'PIL', 'segeval.model.unet'} & set(sys.modules)))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_evaluation_path_does_not_import_the_model(tmp_path: Path) -> None:
    code = ("import sys, segeval, segeval.scoring, segeval.formats.semantic, "
            "segeval.formats.registry;"
            " print(sorted(m for m in sys.modules if m.startswith('segeval.model')))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.stdout.strip() == "[]", proc.stderr


def test_train_without_a_val_split(trained, tmp_path: Path) -> None:
    import shutil

    data, _ = trained
    shutil.copytree(data / "train", tmp_path / "d" / "train")
    r = run("model", "train", "--data", tmp_path / "d", "--out", tmp_path / "m.npz",
            "--epochs", 1, "--width", 2, "--levels", 2)
    assert r.exit_code == 0, r.stderr
    assert "val mIoU nan" in r.stderr
    _, header = U.load(tmp_path / "m.npz")
    assert header["info"]["val_miou"] is None
    assert header["class_names"] == ["0", "1", "2", "3", "4"]  # no classes.json copied
