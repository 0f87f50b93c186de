"""Cityscapes test data and the official evaluator as the reference.

``scene()`` draws a small street-like image (labelIds, instanceIds, prediction) with the real
label table; ``write_dataset()`` lays scenes out as the official tooling expects; ``official()``
runs cityscapesScripts' own ``evaluateImgLists`` on the same files. cityscapesScripts 2.3.0
calls ``np.in1d``, removed in NumPy 2.4: the alias is restored here, in the tests only.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_png

if not hasattr(np, "in1d"):  # cityscapesScripts' iIoU path calls it (removed in NumPy 2.4)
    def _in1d(a, b, assume_unique=False, invert=False):
        return np.isin(np.ravel(a), b, assume_unique=assume_unique, invert=invert)

    np.in1d = _in1d

# Label ids by role, from the official table (checked against it in tests/core/test_cityscapes.py)
STUFF = [7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23]
IGNORED_STUFF = [0, 1, 2, 3, 4, 5, 6, 9, 10, 14, 15, 16, 18]
THINGS = [24, 25, 26, 27, 28, 31, 32, 33]
IGNORED_THINGS = [29, 30]


def official_module():
    """cityscapesScripts' pixel-level evaluation module (skips when the package is missing)."""
    return pytest.importorskip("cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling",
                               reason="cityscapesscripts (test dependency) is not installed")


def official(preds: list[Path], gts: list[Path], *, iiou: bool = True,
             export: Path | None = None) -> dict:
    """The official ``evaluateImgLists`` result dictionary for these files."""
    ev = official_module()
    args = ev.args
    args.quiet, args.evalInstLevelScore, args.evalPixelAccuracy = True, iiou, False
    args.JSONOutput = export is not None
    if export is not None:
        args.exportFile = str(export)
    return ev.evaluateImgLists([str(p) for p in preds], [str(g) for g in gts], args)


def scene(rng: np.random.Generator, h: int = 40, w: int = 80, *, stuff=STUFF + IGNORED_STUFF,
          things=THINGS + IGNORED_THINGS, n_things: int = 6, groups: int = 1,
          pred_ids=range(34), noise: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labelIds uint8, instanceIds uint16, prediction uint8 label ids) of one image."""
    labels = np.full((h, w), rng.choice(stuff), np.uint8)
    for _ in range(8):
        y, x = rng.integers(0, h), rng.integers(0, w)
        labels[y:y + rng.integers(3, h // 2), x:x + rng.integers(3, w // 2)] = rng.choice(stuff)
    inst = labels.astype(np.uint16)
    for k in range(n_things + groups):
        if not len(things):
            break
        lab = int(rng.choice(things))
        y, x = rng.integers(0, h - 2), rng.integers(0, w - 2)
        sl = np.s_[y:y + rng.integers(2, h // 3), x:x + rng.integers(2, w // 3)]
        labels[sl] = lab
        inst[sl] = lab * 1000 + k if k < n_things else lab  # the last ones are group regions
    pred = labels.copy()
    pool = np.array(list(pred_ids), np.uint8)
    for _ in range(4):  # confused regions
        y, x = rng.integers(0, h), rng.integers(0, w)
        pred[y:y + rng.integers(2, h // 3), x:x + rng.integers(2, w // 3)] = rng.choice(pool)
    flip = rng.random((h, w)) < noise
    pred[flip] = rng.choice(pool, int(flip.sum()))
    return labels, inst, pred


def write_dataset(root: Path, scenes: list, *, split: str = "val",
                  cities=("aachen", "bonn")) -> tuple[list[Path], list[Path]]:
    """Write scenes as ``root/gtFine/<split>/<city>/...`` and ``root/results/<key>_pred.png``;
    return (prediction files, labelIds files) in the same order."""
    preds, gts = [], []
    for i, (labels, inst, pred) in enumerate(scenes):
        city = cities[i % len(cities)]
        key = f"{city}_{i // len(cities):06d}_{i:06d}"
        g = write_png(root / "gtFine" / split / city / f"{key}_gtFine_labelIds.png", labels)
        write_png(root / "gtFine" / split / city / f"{key}_gtFine_instanceIds.png", inst, "I;16")
        preds.append(write_png(root / "results" / f"{key}_pred.png", pred))
        gts.append(g)
    return preds, gts


def assert_official_equal(ours: dict, ref: dict, tol: float = 1e-9) -> None:
    """Every score of an official result dictionary, NaN where the official has NaN."""
    assert np.array_equal(np.array(ours["confMatrix"]), np.array(ref["confMatrix"]))
    for key in ("classScores", "classInstScores", "categoryScores", "categoryInstScores",
                "priors"):
        assert list(ours[key]) == [k for k in ref[key]], key
        for name, want in ref[key].items():
            got = ours[key][name]
            assert math.isnan(got) == math.isnan(want), (key, name, got, want)
            if not math.isnan(want):
                assert got == pytest.approx(want, abs=tol), (key, name)
    for key in ("averageScoreClasses", "averageScoreInstClasses", "averageScoreCategories",
                "averageScoreInstCategories"):
        want, got = ref[key], ours[key]
        assert math.isnan(got) == math.isnan(want), key
        if not math.isnan(want):
            assert got == pytest.approx(want, abs=tol), key
