"""Generated leaderboards: one ground truth and submissions of known quality."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import random_labels, write_png

C = 4
SHAPE = (24, 32)
#: submission name -> fraction of pixels copied from the ground truth (the rest random)
QUALITY = {"alpha": 0.9, "bravo": 0.7, "charlie": 0.5, "delta": 0.3}


def make_gt(root: Path, n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    gts = []
    for i in range(n):
        g = random_labels(rng, SHAPE, C)
        write_png(root / f"im{i:03d}.png", g)
        gts.append(g)
    return gts


def make_prediction(gt: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    keep = rng.random(gt.shape) < quality
    return np.where(keep & (gt < C), gt, rng.integers(0, C, gt.shape)).astype(np.uint8)


def make_submission(folder: Path, gts: list[np.ndarray], quality: float, seed: int) -> Path:
    rng = np.random.default_rng(seed)
    for i, g in enumerate(gts):
        write_png(folder / f"im{i:03d}.png", make_prediction(g, quality, rng))
    return folder


def zip_folder(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*.png")):
            zf.write(p, prefix + p.relative_to(folder).as_posix())
    return archive


@pytest.fixture
def board_data(tmp_path: Path) -> tuple[Path, Path, list[np.ndarray]]:
    """``gt/`` with 12 images and ``subs/`` with the four QUALITY folders."""
    gts = make_gt(tmp_path / "gt", 12)
    for k, (name, q) in enumerate(QUALITY.items()):
        make_submission(tmp_path / "subs" / name, gts, q, seed=100 + k)
    return tmp_path / "gt", tmp_path / "subs", gts
