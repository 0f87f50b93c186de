#!/usr/bin/env python3
"""HD95, ASSD and NSD by segeval (= DeepMind surface-distance) and by MONAI on the same masks:
the small table of ``docs/medical.md``.

MONAI defines the numbers differently (edge voxels instead of area-weighted corner surface
elements, ``np.percentile`` interpolation, pooled symmetric mean): this script shows by how
much on a few generated cases. It needs ``torch`` and ``monai`` (not test dependencies of
segeval; ``pip install torch monai``) and only ``segeval.core.surface`` from segeval:

    PYTHONPATH=. python benchmarks/compare_monai.py [--markdown]
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from segeval.core.surface import surface_metrics


def ellipsoid(shape, centre, radii) -> np.ndarray:
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1


def cases() -> list[tuple[str, np.ndarray, np.ndarray, tuple[float, ...]]]:
    """(description, gt, pred, spacing): masks of label 1."""
    shape = (64, 64, 40)
    organ = ellipsoid(shape, (32, 32, 20), (20, 16, 12))
    moved = ellipsoid(shape, (33.5, 31, 21), (21, 15, 12))
    rng = np.random.default_rng(0)
    from scipy import ndimage

    noisy = moved.copy()
    edge = ndimage.binary_dilation(moved) & ~ndimage.binary_erosion(moved)
    noisy[edge & (rng.random(shape) < 0.1)] = False
    small = ellipsoid(shape, (20, 20, 20), (4, 4, 3))
    small_off = ellipsoid(shape, (22, 21, 20), (4, 5, 3))
    plate = np.zeros(shape, bool)
    plate[10:50, 10:50, 20] = True
    plate_off = np.zeros(shape, bool)
    plate_off[12:52, 10:50, 21] = True
    return [
        ("organ, moved 1.5 voxels, 1 mm", organ, moved, (1.0, 1.0, 1.0)),
        ("organ, moved 1.5 voxels, 0.8x0.8x2 mm", organ, moved, (0.8, 0.8, 2.0)),
        ("organ, moved, noisy surface, 0.8x0.8x2 mm", organ, noisy, (0.8, 0.8, 2.0)),
        ("small lesion (r 4 voxels), 0.8x0.8x2 mm", small, small_off, (0.8, 0.8, 2.0)),
        ("thin plate one slice off, 0.8x0.8x2 mm", plate, plate_off, (0.8, 0.8, 2.0)),
        ("label only in the ground truth (empty prediction)", small, np.zeros(shape, bool),
         (1.0, 1.0, 1.0)),
    ]


def monai_numbers(gt: np.ndarray, pred: np.ndarray, spacing, tolerance: float) -> dict:
    import torch
    from monai.metrics import (
        compute_average_surface_distance,
        compute_hausdorff_distance,
        compute_surface_dice,
    )

    def onehot(m: np.ndarray) -> torch.Tensor:
        m = torch.from_numpy(m.astype(np.float32))
        return torch.stack([1 - m, m])[None]  # (batch 1, channels 2, ...)

    y_pred, y = onehot(pred), onehot(gt)
    hd = compute_hausdorff_distance(y_pred, y, include_background=False, percentile=95,
                                    spacing=list(spacing))
    asd = compute_average_surface_distance(y_pred, y, include_background=False, symmetric=True,
                                           spacing=list(spacing))
    nsd = compute_surface_dice(y_pred, y, class_thresholds=[tolerance], include_background=False,
                               spacing=list(spacing))
    return {"hd95": float(hd[0, 0]), "assd": float(asd[0, 0]), "nsd": float(nsd[0, 0])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tolerance", type=float, default=1.0)
    args = ap.parse_args()
    import warnings

    import monai
    import torch

    warnings.simplefilter("ignore")  # MONAI's warnings about empty masks and deprecations

    print(f"MONAI {monai.__version__}, torch {torch.__version__}; NSD tolerance "
          f"{args.tolerance:g} mm; distances in mm")
    print()
    print("| case | HD95 segeval | HD95 MONAI | ASSD segeval | ASSD MONAI | NSD segeval "
          "| NSD MONAI |")
    print("|---|---|---|---|---|---|---|")
    for name, gt, pred, spacing in cases():
        ours = surface_metrics(pred.astype(np.uint8), gt.astype(np.uint8), spacing,
                               tolerance=args.tolerance)
        theirs = monai_numbers(gt, pred, spacing, args.tolerance)

        def f(x: float) -> str:
            return "inf" if math.isinf(x) else f"{x:.3f}"

        print(f"| {name} | {f(ours['hd95'])} | {f(theirs['hd95'])} | {f(ours['assd'])} | "
              f"{f(theirs['assd'])} | {f(ours['nsd'])} | {f(theirs['nsd'])} |")


if __name__ == "__main__":
    main()
