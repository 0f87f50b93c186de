"""Tampered state files (issue 15, item 8): every array of a state is checked (names, integer
dtype, shape from the settings, no negative count, no count or sum that could overflow, the
task's own totals consistent), ``num_images`` is a count, an empty or bomb file is one line;
each through ``segeval merge``: one ``segeval: error:`` line naming the file, exit 1."""

from __future__ import annotations

import io
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from segeval import evaluate
from segeval.core import panoptic
from segeval.engine.state import MAX_TOTAL, merge_states, state_bytes
from tests.conftest import random_labels, write_png
from tests.leaderboard.test_panoptic_task import make_board
from tests.test_cli import run


def semantic_state(tmp_path: Path) -> Path:
    rng = np.random.default_rng(3)
    for i in range(3):
        gt = random_labels(rng, (9, 11), 4)
        write_png(tmp_path / "gt" / f"{i}.png", gt)
        write_png(tmp_path / "pred" / f"{i}.png", rng.integers(0, 4, gt.shape))
    res = evaluate(tmp_path / "pred", tmp_path / "gt", "folder", num_classes=4, jobs=1)
    path = tmp_path / "good.npz"
    path.write_bytes(state_bytes(res))
    return path


def panoptic_state(tmp_path: Path) -> Path:
    gt, subs, _ = make_board(tmp_path)
    res = evaluate(subs / "team0" / "pred.json", gt, "coco-panoptic", jobs=1)
    path = tmp_path / "good.npz"
    path.write_bytes(state_bytes(res))
    return path


def tampered(good: Path, out: Path, change: Callable[[dict[str, Any], dict[str, Any]], None]
             ) -> Path:
    """A copy of the state ``good`` with ``change(header, arrays)`` applied."""
    with np.load(good, allow_pickle=False) as npz:
        header = json.loads(str(npz["header"]))
        arrays = {k: npz[k] for k in npz.files if k != "header"}
    change(header, arrays)
    buf = io.BytesIO()
    np.savez(buf, header=np.array(json.dumps(header)), **arrays)
    out.write_bytes(buf.getvalue())
    return out


def one_line_error(*paths: Path) -> str:
    r = run("merge", *paths)
    assert r.exit_code == 1, (r.exit_code, r.stderr)
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr, r.stderr
    assert r.stderr.startswith("segeval: error: ")
    return r.stderr.strip()


def _set(name: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def change(header: dict[str, Any], arrays: dict[str, Any]) -> None:
        arrays[name] = value(arrays[name]) if callable(value) else value
    return change


def _header(key: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def change(header: dict[str, Any], arrays: dict[str, Any]) -> None:
        header[key] = value
    return change


def _negative(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[1] = -5
    return a


def _huge(a: np.ndarray) -> np.ndarray:
    a = a.copy()
    a.flat[0] = (1 << 63) - 1  # with the other counts the sums would wrap: mIoU above 1
    return a


SEMANTIC_CASES = {
    "negative count": (_set("matrix", _negative), "'matrix' holds a negative count (-5)"),
    "overflowing count": (_set("matrix", _huge), "more than any evaluation can make"),
    "uint64 wraps": (_set("unassigned", lambda a: np.full(a.shape, 1 << 63, np.uint64)),
                     "'unassigned' holds a count of 9223372036854775808"),
    "float dtype": (_set("matrix", lambda a: a.astype(np.float64)),
                    "'matrix' is float64, not integer counts"),
    "bool dtype": (_set("matrix", lambda a: a > 0), "'matrix' is bool, not integer counts"),
    "wrong shape": (_set("matrix", lambda a: a[:3]), "'matrix' has shape (3, 4), expected (4, 4)"),
    "missing array": (lambda h, a: a.pop("unassigned"), "arrays ['matrix'], expected"),
    "extra array": (_set("extra", np.zeros(3, np.int64)), "arrays ['extra', 'matrix', "),
    "num_classes huge": (lambda h, a: h["settings"].update(num_classes=10 ** 9),
                         "num_classes 1000000000 is not a number of classes (1..16384)"),
    "num_classes string": (lambda h, a: h["settings"].update(num_classes="4"),
                           "num_classes '4' is not a number of classes"),
    "negative images": (_header("num_images", -3), "num_images is -3, not a count"),
    "float images": (_header("num_images", 2.5), "num_images is 2.5, not a count"),
    "task list": (_header("task", ["semantic"]), "'task' or 'format' is not a name"),
    "settings list": (_header("settings", []), "'settings' is not an object"),
}


@pytest.mark.parametrize("case", list(SEMANTIC_CASES))
def test_tampered_semantic_state(tmp_path: Path, case: str) -> None:
    good = semantic_state(tmp_path)
    change, message = SEMANTIC_CASES[case]
    bad = tampered(good, tmp_path / "bad.npz", change)
    line = one_line_error(good, bad)
    assert line.startswith(f"segeval: error: {bad}: "), line
    assert message in line, line


def test_sums_that_overflow_across_files(tmp_path: Path) -> None:
    """Each file alone is in bounds; added up they would pass int64."""
    good = semantic_state(tmp_path)

    def big(a: np.ndarray) -> np.ndarray:
        a = a.copy()
        a.flat[0] = MAX_TOTAL // 2
        return a

    parts = [tampered(good, tmp_path / f"big{k}.npz", _set("matrix", big)) for k in range(3)]
    assert merge_states(parts[:1]).confusion.matrix.flat[0] == MAX_TOTAL // 2
    line = one_line_error(*parts)
    assert line.startswith(f"segeval: error: {parts[1]}: the counts of the states up to this "
                           f"one add up to more than")


PANOPTIC_CASES = {
    "iou above tp": (lambda a: _iou(a, 2.0), "(each IoU is above 0.5, at most 1)"),
    "iou below half": (lambda a: _iou(a, 0.25), "(each IoU is above 0.5, at most 1)"),
    "negative fp": (lambda a: _row(a, panoptic.FP, -1), "'counts' holds a negative count"),
    "wrong categories": (lambda a: a[:, :2], "'counts' has shape (5, 2), expected (5, 4)"),
}


def _iou(counts: np.ndarray, factor: float) -> np.ndarray:
    counts = counts.copy()
    c = int(np.argmax(counts[panoptic.TP]))
    fixed = int(counts[panoptic.TP, c] * factor * (1 << panoptic.FIXED_BITS))
    counts[panoptic.IOU_HI, c] = fixed >> 26
    counts[panoptic.IOU_LO, c] = fixed & ((1 << 26) - 1)
    return counts


def _row(counts: np.ndarray, row: int, value: int) -> np.ndarray:
    counts = counts.copy()
    counts[row, 0] = value
    return counts


@pytest.mark.parametrize("case", list(PANOPTIC_CASES))
def test_tampered_panoptic_state(tmp_path: Path, case: str) -> None:
    good = panoptic_state(tmp_path)
    change, message = PANOPTIC_CASES[case]
    bad = tampered(good, tmp_path / "bad.npz", _set("counts", change))
    line = one_line_error(bad)
    assert line.startswith(f"segeval: error: {bad}: damaged state file"), line
    assert message in line, line


def test_good_states_still_merge(tmp_path: Path) -> None:
    good = panoptic_state(tmp_path)
    shutil.copy(good, tmp_path / "again.npz")
    merged = merge_states([good, tmp_path / "again.npz"])
    single = merge_states([good])
    assert np.array_equal(merged.stats.counts, 2 * single.stats.counts)


def test_empty_truncated_and_bomb_files(tmp_path: Path) -> None:
    good = semantic_state(tmp_path)
    empty = tmp_path / "empty.npz"
    empty.write_bytes(b"")
    assert one_line_error(empty) == f"segeval: error: {empty}: an empty file, not a segeval " \
                                    f"state file"
    cut = tmp_path / "cut.npz"
    cut.write_bytes(good.read_bytes()[:200])
    assert one_line_error(cut).startswith(f"segeval: error: {cut}: not a segeval state file")
    # a small file whose matrix unpacks to far more than 4 classes need: refused unread
    with np.load(good, allow_pickle=False) as npz:
        header, unassigned = npz["header"], npz["unassigned"]
    bomb = tmp_path / "bomb.npz"
    np.savez_compressed(bomb, header=header, unassigned=unassigned,
                        matrix=np.zeros(1 << 21, np.int64))
    assert bomb.stat().st_size < 1 << 16
    assert one_line_error(bomb) == f"segeval: error: {bomb}: member matrix.npy unpacks to " \
                                   f"{(8 << 21) + 128} bytes (at most {8 * 16 + 4096})"
