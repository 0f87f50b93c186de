#!/usr/bin/env python3
"""Make a folder of leaderboard submissions for the example VOC dataset (``examples/voc``).

    python examples/make_leaderboard_example.py OUT_DIR

writes into ``OUT_DIR`` (seeded: the same files every time):

* ``baseline/``      -- the example's predictions as they are,
* ``strong/``        -- the same with half of the wrong pixels corrected,
* ``noisy.zip``      -- the predictions with 3 % salt noise, zipped inside a ``noisy/`` folder,
* ``partial/``       -- the baseline without one image (fails: a missing prediction),
* ``evil.zip``       -- an archive with a ``../`` member (fails: unsafe path),
* ``truncated.zip``  -- half of a zip file (fails: corrupt archive).

numpy and Pillow only.
"""

from __future__ import annotations

import shutil
import sys
import zipfile
from pathlib import Path

import numpy as np
from PIL import Image

HERE = Path(__file__).resolve().parent
GT = HERE / "voc" / "VOC2012" / "SegmentationClass"
PRED = HERE / "voc" / "predictions"


def save_like(template: Path, labels: np.ndarray, path: Path) -> None:
    """Save ``labels`` as a palette PNG with the template's palette."""
    with Image.open(template) as t:
        img = Image.fromarray(labels.astype(np.uint8), mode="P")
        img.putpalette(t.getpalette())
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def main(out: Path) -> None:
    rng = np.random.default_rng(7)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PRED, out / "baseline")
    noisy = out / "_noisy"
    for p in sorted(PRED.glob("*.png")):
        pred = np.array(Image.open(p))
        gt = np.array(Image.open(GT / p.name))
        better = pred.copy()
        wrong = (pred != gt) & (gt != 255) & (rng.random(gt.shape) < 0.5)
        better[wrong] = gt[wrong]
        save_like(p, better, out / "strong" / p.name)
        salt = rng.random(pred.shape) < 0.03
        worse = np.where(salt, rng.integers(0, 21, pred.shape), pred)
        save_like(p, worse, noisy / p.name)
    with zipfile.ZipFile(out / "noisy.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(noisy.glob("*.png")):
            zf.write(p, f"noisy/{p.name}")
    shutil.rmtree(noisy)
    shutil.copytree(PRED, out / "partial")
    (out / "partial" / "synth_000004.png").unlink()
    with zipfile.ZipFile(out / "evil.zip", "w") as zf:
        for p in sorted(PRED.glob("*.png")):
            zf.write(p, p.name)
        zf.writestr("../../home/user/.bashrc.png", b"echo owned")
    data = (out / "noisy.zip").read_bytes()
    (out / "truncated.zip").write_bytes(data[: len(data) // 2])


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(Path(sys.argv[1]))
