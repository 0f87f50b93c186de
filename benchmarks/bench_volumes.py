#!/usr/bin/env python3
"""Medical volumes: ``segeval score --format nifti`` against DeepMind's ``surface-distance``
looping over the same cases, in one run.

Data (generated, kept with ``--data``): ``--cases`` pairs of ``.nii.gz`` label volumes of
192 x 192 x 128 voxels at 0.8 x 0.8 x 2 mm with 3 labels -- an organ (ellipsoid of semi-axes
40 x 32 x 24 voxels), a smaller organ (16 x 13 x 10) and a lesion (7 x 6 x 4) at random places;
the prediction moves and resizes each (about 1.5 voxels, +-10 %) and flips 5 % of the voxels
along its surface.

* ``surface-distance, 1 proc`` -- the anchor: for each case, nibabel loads both volumes
  (``np.asanyarray(img.dataobj)``, no float copy), then for each label ``compute_surface_
  distances(gt == l, pred == l, zooms)``, ``compute_robust_hausdorff(d, 95)``,
  ``compute_average_surface_distance``, ``compute_surface_dice_at_tolerance(d, 1)`` and
  ``compute_dice_coefficient``: the loop users write.
* ``segeval, 1 proc`` -- ``segeval.evaluate(pred, gt, "nifti", jobs=1)``: the same numbers
  (checked first, 1e-9 relative) plus IoU and volumes.
* ``segeval, all cores`` -- ``jobs=None``: cases in parallel through the engine.

Timed in interleaved rounds (``--repeat``), medians; ratios > 1 mean segeval is faster.

    python benchmarks/bench_volumes.py [--cases 8] [--repeat 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

SHAPE = (192, 192, 128)
SPACING = (0.8, 0.8, 2.0)
ORGANS = ((1, (40, 32, 24)), (2, (16, 13, 10)), (3, (7, 6, 4)))


def _ellipsoid(grid, centre, radii) -> np.ndarray:
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1


def make_cases(folder: Path, n: int, seed: int = 0) -> tuple[Path, Path]:
    """Write ``n`` generated cases (see the module docstring) under ``folder``."""
    import nibabel as nib
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    grid = np.ogrid[tuple(slice(0, s) for s in SHAPE)]
    affine = np.diag([*SPACING, 1.0])
    for sub in ("gt", "pred"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        gt = np.zeros(SHAPE, np.uint8)
        pred = np.zeros(SHAPE, np.uint8)
        for label, radii in ORGANS:
            centre = [rng.uniform(r + 3, s - r - 3) for r, s in zip(radii, SHAPE, strict=True)]
            gt[_ellipsoid(grid, centre, radii)] = label
            moved = [c + rng.normal(0, 1.5) for c in centre]
            grown = [r * rng.uniform(0.9, 1.1) for r in radii]
            pred[_ellipsoid(grid, moved, grown)] = label
        edge = ndimage.binary_dilation(pred > 0) & ~ndimage.binary_erosion(pred > 0)
        pred[edge & (rng.random(SHAPE) < 0.05)] = 0
        for sub, vol in (("gt", gt), ("pred", pred)):
            nib.save(nib.Nifti1Image(vol, affine), str(folder / sub / f"case_{i:03d}.nii.gz"))
    return folder / "pred", folder / "gt"


def reference(pred: Path, gt: Path, tolerance: float = 1.0) -> dict[tuple[str, int], dict]:
    """The anchor loop: surface-distance per case and label."""
    import nibabel as nib
    from surface_distance import metrics as sd

    if not hasattr(np, "Inf"):  # surface-distance 0.1 on NumPy 2 (empty-mask branches)
        np.Inf = np.inf  # type: ignore[attr-defined]
        np.NaN = np.nan  # type: ignore[attr-defined]
    out = {}
    for path in sorted(gt.glob("*.nii.gz")):
        g_img = nib.load(str(path))
        g = np.asanyarray(g_img.dataobj)
        p = np.asanyarray(nib.load(str(pred / path.name)).dataobj)
        spacing = [float(z) for z in g_img.header.get_zooms()]
        labels = sorted((set(np.unique(g)) | set(np.unique(p))) - {0})
        for label in labels:
            mg, mp = g == label, p == label
            d = sd.compute_surface_distances(mg, mp, spacing)
            out[(path.name[:-7], int(label))] = {
                "dice": float(sd.compute_dice_coefficient(mg, mp)),
                "hd95": float(sd.compute_robust_hausdorff(d, 95)),
                "assd": float(np.mean(sd.compute_average_surface_distance(d))),
                "nsd": float(sd.compute_surface_dice_at_tolerance(d, tolerance)),
            }
    return out


def ours(pred: Path, gt: Path, jobs: int | None) -> dict[tuple[str, int], dict]:
    import segeval

    result = segeval.evaluate(pred, gt, "nifti", jobs=jobs, per_image=True)
    return {(r["case"], r["label"]): r for r in result.per_image}


def check(want: dict, got: dict) -> None:
    assert want.keys() == got.keys(), (sorted(want)[:3], sorted(got)[:3])
    for key, w in want.items():
        for metric, value in w.items():
            assert math.isclose(got[key][metric], value, rel_tol=1e-9, abs_tol=1e-12), \
                (key, metric, got[key][metric], value)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None, help="keep the generated data here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = args.data or Path(tmp)
        if not (folder / "gt").is_dir():
            make_cases(folder, args.cases)
        pred, gt = folder / "pred", folder / "gt"
        runs = {
            "surface-distance, 1 proc": lambda: reference(pred, gt),
            "segeval, 1 proc": lambda: ours(pred, gt, 1),
            "segeval, all cores": lambda: ours(pred, gt, None),
        }
        want = runs["surface-distance, 1 proc"]()
        for name in ("segeval, 1 proc", "segeval, all cores"):
            check(want, runs[name]())
        times: dict[str, list[float]] = {name: [] for name in runs}
        for _ in range(args.repeat):
            for name, fn in runs.items():
                t = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t)
    n = len(list(gt.glob("*.nii.gz"))) if args.data else args.cases
    anchor = statistics.median(times["surface-distance, 1 proc"])
    print(f"{n} cases of {SHAPE[0]}x{SHAPE[1]}x{SHAPE[2]} voxels, {len(ORGANS)} labels, "
          f"{os.cpu_count()} cores; same numbers checked (1e-9 relative)")
    print(f"{'run':28s} {'s (median)':>11s} {'ms/case':>9s} {'vs anchor':>10s}")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:28s} {med:11.3f} {1000 * med / n:9.1f} {anchor / med:9.2f}x")


if __name__ == "__main__":
    main()
