"""Symbolic links: a prediction tree never follows one (no cheating through a link to the hidden
ground truth), and a ground truth that cannot be listed completely is an error, not a run on
fewer images (issue 15, items 4 and 7)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segeval.errors import DataError, SegevalError
from segeval.formats.base import Folder
from segeval.leaderboard import run_leaderboard
from segeval.leaderboard.challenge import codabench
from segeval.leaderboard.sources import open_submission
from tests.conftest import write_png
from tests.leaderboard.conftest import QUALITY, C

ROOT = Path(__file__).resolve().parents[2]


def segeval(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The real command, in a subprocess (its stderr and exit code as a user sees them)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", "from segeval.cli import main; main()",
                           *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=300)


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    return lines[0]


def cheat(folder: Path, gt: Path, how: str) -> Path:
    """A submission that links to the ground truth: every file, one file, or the folder."""
    folder.mkdir(parents=True)
    if how == "folder":
        (folder / "preds").symlink_to(gt, target_is_directory=True)
        return folder
    for k, png in enumerate(sorted(gt.glob("*.png"))):
        if how == "files" or k == 0:
            (folder / png.name).symlink_to(png)
        else:
            shutil.copy(png, folder / png.name)
    return folder


@pytest.mark.parametrize("how", ["files", "one file", "folder"])
def test_a_linking_submission_fails_and_the_others_are_ranked(board, tmp_path: Path,
                                                              how: str) -> None:
    gt, subs = board
    cheat(subs / "cheater", gt, how)
    board = run_leaderboard(gt, subs, jobs=2, resamples=50, num_classes=C)
    entry = next(e for e in board.entries if e["submission"] == "cheater")
    assert entry["status"] == "failed" and entry["metrics"] is None
    assert "a symbolic link in a prediction folder" in entry["error"]
    assert str(subs / "cheater") in entry["error"] and "\n" not in entry["error"]
    assert sorted(e["submission"] for e in board.ranked()) == sorted(QUALITY)


def test_a_link_inside_the_submission_is_refused_too(board, tmp_path: Path) -> None:
    """Every link is refused, even one that stays inside the submission: simplest to state,
    and nothing a prediction needs (zip archives refuse link members likewise)."""
    _, subs = board
    (subs / "alpha" / "copy.png").symlink_to(subs / "alpha" / "im000.png")
    sub = open_submission(subs / "alpha")
    assert sub.error is not None and "alpha/copy.png: a symbolic link" in sub.error


def test_the_submission_root_may_be_a_link(board, tmp_path: Path) -> None:
    """The organiser links a submission into the folder: its root is theirs, not a member."""
    _, subs = board
    (subs / "alpha").rename(tmp_path / "elsewhere")
    (subs / "alpha").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    sub = open_submission(subs / "alpha")
    assert sub.error is None and len(sub.members) == 12


def test_reading_a_member_through_a_link_is_refused(board, tmp_path: Path) -> None:
    """A member name that is not in the listing (a panoptic JSON names its PNGs) cannot reach
    through a link or out of the root either."""
    gt, subs = board
    sub = open_submission(subs / "alpha")
    (subs / "alpha" / "late.png").symlink_to(gt / "im000.png")
    (subs / "alpha" / "dir").symlink_to(gt, target_is_directory=True)
    for member in ("late.png", "dir/im000.png", "../../gt/im000.png"):
        with pytest.raises(SegevalError, match=r"symbolic link|leaves the prediction folder"):
            sub.read(member)
    folder = Folder(subs / "alpha", links="refuse")
    for member in ("late.png", "dir/im000.png", "../../gt/im000.png", "/etc/passwd"):
        with pytest.raises(DataError):
            folder.read(member)


@pytest.mark.parametrize("how", ["files", "folder"])
def test_score_on_a_linking_folder_is_one_line_exit_1(board, tmp_path: Path,
                                                      how: str) -> None:
    gt, _ = board
    pred = cheat(tmp_path / "pred", gt, how)
    r = segeval("score", "--pred", pred, "--gt", gt, "--num-classes", C)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert "a symbolic link in a prediction folder" in line and str(pred) in line


def test_codabench_res_with_links_fails(board, tmp_path: Path) -> None:
    gt, subs = board
    root = tmp_path / "input"
    shutil.copytree(gt, root / "ref")
    cheat(root / "res", root / "ref", "files")
    with pytest.raises(SegevalError, match="a symbolic link in a prediction folder"):
        codabench(root, tmp_path / "out", num_classes=C)
    assert not (tmp_path / "out" / "scores.json").exists()
    # nor does a linked zip stand for the submission
    shutil.rmtree(root / "res")
    (root / "res").mkdir()
    shutil.make_archive(str(tmp_path / "real"), "zip", subs / "alpha")
    (root / "res" / "sub.zip").symlink_to(tmp_path / "real.zip")
    with pytest.raises(SegevalError, match=r"res/sub\.zip: a symbolic link"):
        codabench(root, tmp_path / "out", num_classes=C)
    # the same files, copied: scored
    (root / "res" / "sub.zip").unlink()
    shutil.copy(tmp_path / "real.zip", root / "res" / "sub.zip")
    scores = codabench(root, tmp_path / "out", num_classes=C)
    assert json.loads((tmp_path / "out" / "scores.json").read_text()) == scores


# ---------------------------------------------------------------- the ground truth (item 7)


def _gt(tmp_path: Path) -> tuple[Path, Path]:
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    for i in range(3):
        labels = np.full((4, 5), i, np.uint8)
        write_png(gt / f"im{i}.png", labels)
        write_png(pred / f"im{i}.png", labels)
    return gt, pred


@pytest.mark.parametrize("case", ["dangling", "loop", "folder loop"])
def test_ground_truth_that_cannot_be_listed_is_one_line_exit_1(tmp_path: Path,
                                                              case: str) -> None:
    gt, pred = _gt(tmp_path)
    if case == "dangling":
        bad = gt / "im3.png"
        bad.symlink_to(tmp_path / "gone.png")
        why = "a symbolic link to nothing"
    elif case == "loop":
        bad = gt / "im3.png"
        bad.symlink_to(bad)
        why = "a symbolic link loop"
    else:
        (gt / "sub").mkdir()
        bad = gt / "sub" / "up"
        bad.symlink_to(gt, target_is_directory=True)
        why = "a symbolic link loop"
    r = segeval("score", "--pred", pred, "--gt", gt, "--num-classes", C)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert str(bad) in line and why in line
    with pytest.raises(DataError, match=why):
        Folder(gt).files()


def test_ground_truth_links_that_resolve_are_followed(tmp_path: Path) -> None:
    """An organiser's ground truth made of links into a dataset is read through them."""
    gt, _ = _gt(tmp_path)
    real = tmp_path / "dataset"
    gt.rename(real)
    gt.mkdir()
    for p in sorted(real.glob("*.png")):
        (gt / p.name).symlink_to(p)
    (gt / "more").symlink_to(real, target_is_directory=True)  # a folder link, no loop
    assert sorted(Folder(gt).files()) == ["im0.png", "im1.png", "im2.png", "more/im0.png",
                                          "more/im1.png", "more/im2.png"]


def _unreadable_folder(tmp_path: Path) -> tuple[Path, Path, Path]:
    gt, pred = _gt(tmp_path)
    (gt / "locked").mkdir()
    write_png(gt / "locked" / "im9.png", np.zeros((4, 5), np.uint8))
    (gt / "locked").chmod(0)
    return gt, pred, gt / "locked"


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a folder of mode 000 anyway; "
                    "test_ground_truth_folder_that_cannot_be_listed covers the error")
def test_ground_truth_in_an_unreadable_folder_is_one_line_exit_1(tmp_path: Path) -> None:
    gt, pred, locked = _unreadable_folder(tmp_path)
    try:
        r = segeval("score", "--pred", pred, "--gt", gt, "--num-classes", C)
    finally:
        locked.chmod(0o755)
    assert r.returncode == 1
    line = one_line(r.stderr)
    assert f"{locked}: cannot list the folder (Permission denied)" in line


def test_ground_truth_folder_that_cannot_be_listed(tmp_path: Path, monkeypatch) -> None:
    """The same error for any user, root included: listing the folder fails as it does for an
    unreadable folder (``os.scandir`` raises ``PermissionError``)."""
    gt, _, locked = _unreadable_folder(tmp_path)
    locked.chmod(0o755)
    real = os.scandir

    def scandir(path):
        if os.fspath(path) == str(locked):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real(path)

    monkeypatch.setattr(os, "scandir", scandir)
    with pytest.raises(DataError, match=rf"{locked}: cannot list the folder \(Permission "
                                        rf"denied\)"):
        Folder(gt).files()
