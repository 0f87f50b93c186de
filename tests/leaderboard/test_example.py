"""docs/leaderboard.md's worked example: the printed leaderboard is what the command prints."""

from __future__ import annotations

import json
import runpy
import sys
from pathlib import Path

from click.testing import CliRunner

from segeval.cli import cli
from tests.conftest import REPO


def documented_output() -> list[str]:
    lines = (REPO / "docs" / "leaderboard.md").read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("$ segeval leaderboard"))
    end = next(i for i in range(start + 1, len(lines)) if lines[i].startswith("$ "))
    return lines[start + 1:end]


def test_worked_example(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["make_leaderboard_example.py", "subs"])
    runpy.run_path(str(REPO / "examples" / "make_leaderboard_example.py"), run_name="__main__")
    r = CliRunner().invoke(cli, ["leaderboard", "--gt", str(REPO / "examples/voc/VOC2012"),
                                 "--format", "voc", "--submissions", "subs", "--out", "board",
                                 "--no-plots", "-j", "1"], catch_exceptions=False)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines() == documented_output()
    board = json.loads((tmp_path / "board" / "leaderboard.json").read_text())
    for e in (e for e in board if e["status"] == "ok"):  # BCa: honest intervals
        assert e["ci"]["low"] <= e["metrics"]["miou"] <= e["ci"]["high"], e["submission"]
        assert e["ci"]["method"].startswith("BCa bootstrap over images")
    baseline = (tmp_path / "board" / "submissions" / "baseline.json").read_text()
    r = CliRunner().invoke(cli, ["score", "--gt", str(REPO / "examples/voc/VOC2012"), "--format",
                                 "voc", "--pred", "subs/baseline", "--json", "b.json", "-q"])
    assert r.exit_code == 0 and (tmp_path / "b.json").read_text() == baseline
