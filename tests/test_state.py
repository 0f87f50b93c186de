"""Saved states: shards add up to one run; different settings are refused."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from segeval import evaluate
from segeval.engine.state import load_state, merge_states, state_bytes
from segeval.errors import DataError, FileFormatError
from tests.conftest import random_labels, write_png
from tests.test_cli import run


def _shards(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    rng = np.random.default_rng(8)
    shards = [tmp_path / f"shard{k}" for k in range(3)]
    for i in range(8):
        gt = random_labels(rng, (12 + i, 19), 4)
        write_png(tmp_path / "gt" / f"im{i}.png", gt)
        pred = rng.integers(0, 4, gt.shape)
        write_png(tmp_path / "pred" / f"im{i}.png", pred)
        write_png(shards[i % 3] / "gt" / f"im{i}.png", gt)
        write_png(shards[i % 3] / "pred" / f"im{i}.png", pred)
    return tmp_path / "pred", tmp_path / "gt", shards


def test_shards_merge_to_one_run(tmp_path: Path) -> None:
    pred, gt, shards = _shards(tmp_path)
    whole = evaluate(pred, gt, "folder", num_classes=4, jobs=1)
    paths = []
    for k, shard in enumerate(shards):
        res = evaluate(shard / "pred", shard / "gt", "folder", num_classes=4, jobs=1)
        paths.append(tmp_path / f"s{k}.npz")
        paths[-1].write_bytes(state_bytes(res))
    merged = merge_states(paths)
    assert merged.confusion == whole.confusion
    assert merged.to_dict() == whole.to_dict()
    header, stats = load_state(paths[0])
    first = evaluate(shards[0] / "pred", shards[0] / "gt", "folder", num_classes=4, jobs=1)
    assert stats == first.confusion
    assert header["schema"] == "segeval-state/1" and header["task"] == "semantic"
    assert header["settings"]["class_names"] == ["0", "1", "2", "3"]


def test_cli_save_state_and_merge(tmp_path: Path) -> None:
    pred, gt, shards = _shards(tmp_path)
    whole = tmp_path / "whole.json"
    assert run("score", "--pred", pred, "--gt", gt, "--num-classes", 4, "--json", whole,
               "-q").exit_code == 0
    states = []
    for k, shard in enumerate(shards):
        states.append(tmp_path / f"s{k}.npz")
        r = run("score", "--pred", shard / "pred", "--gt", shard / "gt", "--num-classes", 4,
                "--save-state", states[-1], "-q")
        assert r.exit_code == 0, r.stderr
    r = run("merge", *states, "--json", tmp_path / "merged.json")
    assert r.exit_code == 0, r.stderr
    assert "mIoU" in r.stdout
    assert json.loads((tmp_path / "merged.json").read_text()) == json.loads(whole.read_text())


def test_different_settings_and_bad_files_are_refused(tmp_path: Path) -> None:
    shards = _shards(tmp_path)[2]
    a = evaluate(shards[0] / "pred", shards[0] / "gt", "folder", num_classes=4, jobs=1)
    b = evaluate(shards[1] / "pred", shards[1] / "gt", "folder", num_classes=5, jobs=1)
    c = evaluate(shards[1] / "pred", shards[1] / "gt", "folder", num_classes=4, jobs=1,
                 absent="zero")
    d = evaluate(shards[1] / "pred", shards[1] / "gt", "folder", jobs=1,
                 class_names=("road", "car", "sky", "tree"))
    for name, res in {"a": a, "b": b, "c": c, "d": d}.items():
        (tmp_path / f"{name}.npz").write_bytes(state_bytes(res))
    for other in ("b", "c", "d"):
        with pytest.raises(DataError, match=rf"{other}\.npz: settings differs from .*a\.npz"):
            merge_states([tmp_path / "a.npz", tmp_path / f"{other}.npz"])
    shutil.copy(tmp_path / "a.npz", tmp_path / "a2.npz")
    assert merge_states([tmp_path / "a.npz", tmp_path / "a2.npz"]).num_images == 2 * a.num_images
    (tmp_path / "junk.npz").write_text("junk")
    with pytest.raises(FileFormatError, match=r"junk\.npz: not a segeval state file"):
        merge_states([tmp_path / "junk.npz"])
    np.savez(tmp_path / "other.npz", header=np.array('{"schema": "x"}'))
    with pytest.raises(FileFormatError, match=r"other\.npz: not a segeval-state/1 state file"):
        merge_states([tmp_path / "other.npz"])
    r = run("merge", tmp_path / "a.npz", tmp_path / "b.npz")
    assert r.exit_code == 1 and r.stderr.startswith("segeval: error: ")
