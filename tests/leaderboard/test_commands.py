"""The ``segeval leaderboard``, ``segeval codabench`` and ``segeval score --plots`` commands."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from segeval.cli import cli
from tests.leaderboard.conftest import QUALITY, C

try:
    import matplotlib  # noqa: F401

    HAVE_MPL = True
except ImportError:  # pragma: no cover - matplotlib is in the [test] extra
    HAVE_MPL = False
needs_matplotlib = pytest.mark.skipif(not HAVE_MPL, reason="plots need the [plot] extra "
                                      "(matplotlib)")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@needs_matplotlib
def test_leaderboard_command(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    (subs / "broken.zip").write_bytes(b"garbage")
    out = tmp_path / "board"
    args = ("leaderboard", "--gt", gt, "--submissions", subs, "--num-classes", C, "--out", out,
            "--resamples", 100, "--plot-top", 1, "-j", 2)
    r = run(*args)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["rank", "submission", "miou", "95%", "CI", "(BCa)", "beats",
                                "above"]
    assert lines[2].split()[:2] == ["1", "alpha"] and lines[5].split()[:2] == ["4", "delta"]
    assert "1 failed:" in r.stdout and "broken: " in r.stdout and "corrupt archive" in r.stdout
    for name in ("leaderboard.json", "leaderboard.csv", "leaderboard.md", "leaderboard.html",
                 "per_class_winners.csv", "leaderboard-cache.sqlite", "plots/leaderboard.png",
                 "plots/alpha/per_class_iou.png", "plots/alpha/confusion_matrix.png",
                 *(f"submissions/{n}.json" for n in [*QUALITY, "broken"])):
        assert (out / name).is_file(), name
    first = (out / "leaderboard.json").read_text()
    # a re-run reads everything from the cache and writes the same leaderboard
    r = run(*args, "-q")
    assert r.exit_code == 0 and r.stdout == ""
    assert (out / "leaderboard.json").read_text() == first
    # the report folder inside the submissions folder is not a submission
    r = run(*args, "-q", "--out", subs / "board")
    assert r.exit_code == 0
    r = run(*args, "-q", "--out", subs / "board")
    assert r.exit_code == 0 and (subs / "board" / "leaderboard.json").read_text() == first
    shutil.rmtree(subs / "board")
    r = run(*args[:-2], "--no-cache", "--no-plots", "-q", "--out", tmp_path / "nocache")
    assert r.exit_code == 0
    assert (tmp_path / "nocache" / "leaderboard.json").read_text() == first
    assert not (tmp_path / "nocache" / "leaderboard-cache.sqlite").exists()
    assert not (tmp_path / "nocache" / "plots").exists()


def test_leaderboard_usage_errors(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    base = ("leaderboard", "--gt", gt, "--submissions", subs, "--num-classes", C)
    r = run(*base, "--metric", "pq", "--out", tmp_path / "o")
    assert r.exit_code == 2 and "--metric pq: not a metric of the semantic task" in r.stderr
    assert r.stderr.count("\n") == 1
    (tmp_path / "file").write_text("x")
    r = run(*base, "--out", tmp_path / "file")
    assert r.exit_code == 2 and "is a file" in r.stderr
    r = run("leaderboard", "--gt", gt, "--submissions", subs, "--out", tmp_path / "o2")
    assert r.exit_code == 2 and "needs --num-classes or --class-names" in r.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    r = run("leaderboard", "--gt", gt, "--submissions", empty, "--num-classes", C,
            "--out", tmp_path / "o3")
    assert r.exit_code == 2 and "no submissions" in r.stderr


def test_codabench_command(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    shutil.copytree(gt, tmp_path / "in" / "ref")
    shutil.copytree(subs / "bravo", tmp_path / "in" / "res")
    r = run("codabench", tmp_path / "in", tmp_path / "out", "--num-classes", C)
    assert r.exit_code == 0, r.stderr
    scores = json.loads((tmp_path / "out" / "scores.json").read_text())
    assert r.stdout.splitlines()[0] == f"miou: {scores['miou']:.6f}"
    (tmp_path / "in" / "res" / "im000.png").write_bytes(b"not a png")
    r = run("codabench", tmp_path / "in", tmp_path / "out2", "--num-classes", C)
    assert r.exit_code == 1 and r.stderr.count("\n") == 1
    assert "im000.png: not a PNG file" in r.stderr
    assert not (tmp_path / "out2" / "scores.json").exists()


@needs_matplotlib
def test_score_plots(board_data, tmp_path: Path, monkeypatch) -> None:
    gt, subs, _ = board_data
    r = run("score", "--pred", subs / "alpha", "--gt", gt, "--num-classes", C, "-q",
            "--plots", tmp_path / "plots")
    assert r.exit_code == 0, r.stderr
    for name in ("per_class_iou.png", "confusion_matrix.png"):
        assert (tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG")
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = run("score", "--pred", subs / "alpha", "--gt", gt, "--num-classes", C, "-q",
            "--plots", tmp_path / "plots2")
    assert r.exit_code == 2 and "pip install 'segeval[plot]'" in r.stderr
    assert not (tmp_path / "plots2").exists()


def test_help_stays_light() -> None:
    for command in ("leaderboard", "codabench"):
        code = (f"import sys; from segeval.cli import main\n"
                f"try:\n    main(['{command}', '--help'])\nexcept SystemExit:\n    pass\n"
                "heavy = [m for m in ('numpy', 'pandas', 'matplotlib', 'PIL', 'scipy') "
                "if m in sys.modules]\nprint(heavy)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             check=True, cwd=Path(__file__).resolve().parents[2])
        assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout


def test_console_errors_are_one_line(board_data, tmp_path: Path, capsys) -> None:
    from segeval.cli import main

    gt = board_data[0]
    with pytest.raises(SystemExit) as exit_info:
        main(["leaderboard", "--gt", str(gt), "--submissions", str(tmp_path / "none")])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("segeval: error: ") and "none" in err
    with pytest.raises(SystemExit) as exit_info:
        main(["codabench", str(tmp_path), str(tmp_path / "out"), "--num-classes", str(C)])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no reference (ground truth) folder" in err
