"""A new user's first day (issue 19): bare ``segeval`` is the help, a missing extra is one line
naming it, ``-`` is standard output, outputs are all-or-nothing for regular files, a file that
is not an ``.npz`` is one line, a settings mismatch names the setting, ``--save-state`` of
instance AP is refused up front, JPEG predictions are refused with the reason, per-class plots
show the classes that occur."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segeval.cli import main
from segeval.cli.common import missing_extra
from tests.conftest import REPO, random_labels, write_png

VOC = REPO / "examples" / "voc"
SCORE = ["score", "--format", "voc", "--gt", str(VOC / "VOC2012"), "--pred",
         str(VOC / "predictions"), "-j", "1"]


def segeval(capsys, *args: str | Path) -> tuple[int, str, str]:
    """``main([...])`` in this process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in args])
    out, err = capsys.readouterr()
    return exit_info.value.code or 0, out, err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("segeval: error: "), err
    assert "Traceback" not in err
    return lines[0]


# 5. bare segeval -------------------------------------------------------------------------

def test_bare_segeval_prints_the_help_and_exits_0(capsys) -> None:
    code, out, err = segeval(capsys)
    assert code == 0 and err == ""
    assert out.startswith("Usage: segeval [OPTIONS] COMMAND") and "score" in out
    code, out, err = segeval(capsys, "model")
    assert code == 0 and out.startswith("Usage: segeval model") and "make-data" in out


# 1. a missing extra ----------------------------------------------------------------------

@pytest.mark.parametrize("scheduler", ["dask-local", "tcp://127.0.0.1:1"])
def test_missing_dask_is_one_line_naming_the_extra(capsys, monkeypatch, scheduler) -> None:
    for name in ("dask", "distributed", "dask.distributed"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as if not installed
    code, out, err = segeval(capsys, *SCORE, "-q", "--scheduler", scheduler)
    assert code == 2 and out == ""
    assert "pip install 'segeval[dask]'" in one_error_line(err)


def test_missing_matplotlib_and_cupy_name_their_extras(capsys, monkeypatch,
                                                       tmp_path: Path) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    code, _, err = segeval(capsys, *SCORE, "-q", "--plots", tmp_path / "plots")
    assert code == 2 and "pip install 'segeval[plot]'" in one_error_line(err)
    assert not (tmp_path / "plots").exists()
    monkeypatch.setitem(sys.modules, "cupy", None)
    code, _, err = segeval(capsys, *SCORE, "-q", "--device", "cuda")
    assert code == 2 and "segeval[gpu]" in one_error_line(err)


def test_missing_faster_coco_eval_names_the_extra(capsys, monkeypatch,
                                                  conformance: Path) -> None:
    suite = conformance / "coco_instances" / "derived"
    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)
    code, _, err = segeval(capsys, "score", "--format", "coco", "--gt",
                           suite / "instances_gt.json", "--pred",
                           suite / "detections_segm.json", "-q", "--backend", "faster")
    assert code == 2 and "pip install 'segeval[fast]'" in one_error_line(err)


def test_any_unguarded_optional_import_is_one_line(capsys, monkeypatch) -> None:
    """The safety net of ``main``: an optional module missing anywhere in a command."""
    score_module = sys.modules["segeval.cli.score"]  # the attribute is the command

    def run_score(*args, **kwargs):
        raise ModuleNotFoundError("No module named 'nibabel'", name="nibabel")

    monkeypatch.setattr(score_module, "_run_score", run_score)
    code, _, err = segeval(capsys, *SCORE)
    assert code == 2
    assert "'nibabel'" in one_error_line(err) and "pip install 'segeval[medical]'" in err
    assert missing_extra(ModuleNotFoundError("x", name="numpy")) is None  # not optional


# 2. '-' and special files ----------------------------------------------------------------

def test_json_dash_goes_to_stdout_and_the_table_to_stderr(capsys) -> None:
    code, out, err = segeval(capsys, *SCORE, "--json", "-")
    assert code == 0
    doc = json.loads(out)  # stdout is exactly the JSON document
    assert doc["metrics"]["miou"] == pytest.approx(0.5897, abs=5e-5)  # examples/README.md
    assert "mIoU                 0.5897" in err
    code, out, err = segeval(capsys, *SCORE, "--csv", "-", "-q")
    assert code == 0 and out.startswith("id,name,iou,") and err == ""
    code, out, _ = segeval(capsys, *SCORE, "--per-image", "-", "-q")
    assert code == 0 and out.startswith("image,") and len(out.splitlines()) == 7
    code, _, err = segeval(capsys, *SCORE, "--json", "-", "--csv", "-")
    assert code == 2 and "different files" in one_error_line(err)


def test_json_to_a_pipe_through_dash_and_dev_stdout() -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = [sys.executable, "-c", "from segeval.cli import main; main()", *SCORE]
    for target in ("-", "/dev/stdout"):
        r = subprocess.run([*command, "--json", target, "-q"], capture_output=True, text=True,
                           env=env, timeout=120)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["num_images"] == 6
    assert not Path("-").exists()


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full on this system")
def test_a_failing_special_file_replaces_no_regular_file(capsys, tmp_path: Path) -> None:
    csv = tmp_path / "a.csv"
    csv.write_text("old\n")
    code, out, err = segeval(capsys, *SCORE, "--json", "/dev/full", "--csv", csv)
    assert code == 1 and out == ""
    assert "/dev/full: cannot write" in one_error_line(err)
    assert csv.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv"]  # no temporary left


def test_a_folder_target_is_refused_before_anything_is_written(tmp_path: Path) -> None:
    from segeval.report.render import write_files

    (tmp_path / "board.md").mkdir()
    (tmp_path / "a.json").write_text("old")
    with pytest.raises(IsADirectoryError) as e:
        write_files({tmp_path / "a.json": "new", tmp_path / "board.md": "x"})
    assert e.value.filename == str(tmp_path / "board.md")
    assert (tmp_path / "a.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "board.md"]
    with pytest.raises(FileNotFoundError):
        write_files({tmp_path / "a.json": "new", tmp_path / "no" / "b.json": "x"})
    assert (tmp_path / "a.json").read_text() == "old"


def test_leaderboard_report_over_a_folder_target_keeps_the_old_reports(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from segeval.cli import cli

    subs = tmp_path / "subs" / "team"
    subs.mkdir(parents=True)
    for p in (VOC / "predictions").iterdir():
        (subs / p.name).write_bytes(p.read_bytes())
    out = tmp_path / "board"
    args = ["leaderboard", "--gt", str(VOC / "VOC2012"), "--format", "voc", "--submissions",
            str(tmp_path / "subs"), "--out", str(out), "--no-plots", "-j", "1", "-q",
            "--resamples", "50"]
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, r.stderr
    before = (out / "leaderboard.json").read_bytes()
    (out / "leaderboard.md").unlink()
    (out / "leaderboard.md").mkdir()  # a folder where a report goes
    r = CliRunner().invoke(cli, [*args, "--no-cache"])
    assert r.exit_code == 1 and "leaderboard.md" in r.stderr
    assert (out / "leaderboard.json").read_bytes() == before
    assert not [p for p in out.iterdir() if p.name.startswith(".")]


# 6. non-.npz files and the settings mismatch ---------------------------------------------

def test_merge_and_predict_on_a_non_npz_file_are_one_line(capsys, tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("hello\n")
    npy = tmp_path / "array.npy"
    np.save(npy, np.zeros(3))
    for path in (text, npy):
        code, _, err = segeval(capsys, "merge", path)
        line = one_error_line(err)
        assert code == 1 and f"{path}: not a segeval state file" in line
        assert "pickle" not in line
        code, _, err = segeval(capsys, "model", "predict", "--model", path, "--images",
                               VOC / "predictions", "--out", tmp_path / "preds")
        line = one_error_line(err)
        assert code == 1 and f"{path}: not a segeval model" in line and "pickle" not in line


def test_merge_mismatch_names_the_setting_and_both_values_whole(capsys,
                                                                tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for folder in ("gt", "pred"):
        write_png(tmp_path / folder / "a.png", random_labels(rng, (8, 8), 3, ignore=0.0))
    long_a = [f"a-very-long-class-name-number-{k}" for k in range(3)]
    long_b = [*long_a[:2], "another-very-long-class-name-2"]
    for name, names in (("a", long_a), ("b", long_b)):
        (tmp_path / f"{name}.json").write_text(json.dumps(names))
        code, _, err = segeval(capsys, "score", "--gt", tmp_path / "gt", "--pred",
                               tmp_path / "pred", "--class-names", tmp_path / f"{name}.json",
                               "--save-state", tmp_path / f"{name}.npz", "-q", "-j", "1")
        assert code == 0, err
    code, _, err = segeval(capsys, "merge", tmp_path / "a.npz", tmp_path / "b.npz")
    line = one_error_line(err)
    assert code == 1 and "class_names" in line
    assert json.dumps(long_b) in line and json.dumps(long_a) in line  # both values, not cut
    assert "..." not in line


# 8. small ones ---------------------------------------------------------------------------

def test_save_state_of_instance_ap_is_refused_before_scoring(capsys, tmp_path: Path) -> None:
    gt, dt = tmp_path / "gt.json", tmp_path / "dt.json"
    gt.write_text("this file is never read")
    dt.write_text("[]")
    code, out, err = segeval(capsys, "score", "--format", "coco", "--gt", gt, "--pred", dt,
                             "--save-state", tmp_path / "s.npz")
    assert code == 2 and out == ""
    assert "--save-state" in one_error_line(err) and "instance" in err
    assert not (tmp_path / "s.npz").exists()


def test_jpeg_predictions_are_refused_with_the_reason(capsys, tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    for k in range(3):
        labels = random_labels(rng, (16, 16), 3, ignore=0.0)
        write_png(tmp_path / "gt" / f"{k}.png", labels)
        if k == 0:
            write_png(tmp_path / "pred" / f"{k}.png", labels)
        else:
            Image.fromarray(labels).save(tmp_path / "pred" / f"{k}.jpg")
    for extra in ([], ["--missing", "zero"]):  # never silently scored as all wrong
        code, _, err = segeval(capsys, "score", "--gt", tmp_path / "gt", "--pred",
                               tmp_path / "pred", "--num-classes", "3", "-q", *extra)
        line = one_error_line(err)
        assert code == 1 and "1.jpg" in line and "JPEG is lossy" in line and "PNG" in line


def test_per_class_plot_shows_only_the_classes_that_occur() -> None:
    pytest.importorskip("matplotlib", reason="the [plot] extra is not installed")
    from segeval.report import plots

    def document(num_classes: int) -> dict:
        rows = [{"id": c, "name": f"c{c}", "iou": None, "gt_pixels": 0, "pred_pixels": 0}
                for c in range(num_classes)]
        for c in (0, 5, 7):
            rows[c].update(iou=0.5, gt_pixels=10, pred_pixels=10)
        rows[9].update(iou=0.0, gt_pixels=0, pred_pixels=4)  # predicted only: occurs, IoU 0
        return {"per_class": rows, "metrics": {"miou": 0.375}}

    assert [r["id"] for r in plots.occurring(document(133)["per_class"], "iou")] == [0, 5, 7, 9]

    def height(png: bytes) -> int:
        return int.from_bytes(png[20:24], "big")  # IHDR height

    few, many = plots.per_class_bars(document(10)), plots.per_class_bars(document(133))
    assert height(few) == height(many)  # 133 categories, 4 occurring: 4 rows, not 133
