"""Generated label volumes for the medical (nifti) tests: ellipsoid "organs" with a noisy,
shifted prediction, thin structures, and the empty-mask cases; written as NIfTI with nibabel."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np


@dataclass
class MedicalCase:
    name: str
    gt: np.ndarray
    pred: np.ndarray
    spacing: tuple[float, ...]
    affine: np.ndarray | None = None


def ellipsoid(shape: Sequence[int], centre: Sequence[float], radii: Sequence[float]
              ) -> np.ndarray:
    """A boolean ellipsoid (2-D: ellipse) of ``radii`` voxels around ``centre``."""
    grid = np.ogrid[tuple(slice(0, s) for s in shape)]
    return sum(((g - c) / r) ** 2 for g, c, r in zip(grid, centre, radii, strict=True)) <= 1


def organ_volumes(rng: np.random.Generator, shape: Sequence[int],
                  organs: Sequence[tuple[int, float]], shift: float = 1.5,
                  noise: float = 0.05, dtype: type = np.uint8) -> tuple[np.ndarray, np.ndarray]:
    """Ground truth with one ellipsoid per ``(label, radius in voxels)``, and a prediction of
    the same ellipsoids shifted (``shift`` voxels, normal) and resized, with ``noise`` of the
    voxels next to a surface flipped."""
    gt = np.zeros(shape, dtype)
    pred = np.zeros(shape, dtype)
    for label, r in organs:
        radii = [r * f for f in (1.0, 0.8, 0.6)[:len(shape)]]
        centre = [rng.uniform(ri + 2, s - ri - 2) for ri, s in zip(radii, shape, strict=True)]
        gt[ellipsoid(shape, centre, radii)] = label
        moved = [c + rng.normal(0, shift) for c in centre]
        grown = [ri * rng.uniform(0.9, 1.1) for ri in radii]
        pred[ellipsoid(shape, moved, grown)] = label
    if noise:
        from scipy import ndimage

        edge = ndimage.binary_dilation(pred > 0) & ~ndimage.binary_erosion(pred > 0)
        flip = edge & (rng.random(shape) < noise)
        pred[flip] = 0
    return gt, pred


def write_nifti(path: Path, array: np.ndarray, spacing: Sequence[float],
                affine: np.ndarray | None = None) -> None:
    """Save ``array`` as NIfTI-1 with ``spacing`` (its zooms) and ``affine`` (default: the
    diagonal of the spacing)."""
    import nibabel as nib

    if affine is None:
        affine = np.diag([*spacing, *(1.0,) * (4 - len(spacing))])
    img = nib.Nifti1Image(array, affine)
    img.header.set_zooms((*spacing, *(1.0,) * (array.ndim - len(spacing))))
    path.parent.mkdir(parents=True, exist_ok=True)
    nib.save(img, str(path))


def write_cases(cases: Sequence[MedicalCase], root: Path, suffix: str = ".nii.gz"
                ) -> tuple[Path, Path]:
    for c in cases:
        write_nifti(root / "gt" / f"{c.name}{suffix}", c.gt, c.spacing, c.affine)
        write_nifti(root / "pred" / f"{c.name}{suffix}", c.pred, c.spacing, c.affine)
    return root / "pred", root / "gt"


def medical_cases(seed: int, n: int, shape: Sequence[int] = (20, 18, 12)) -> list[MedicalCase]:
    """``n`` small cases with labels 1..3 of various sizes; case 1 lacks label 3 in the
    prediction, case 2 predicts a label 4 absent from its ground truth, and label 2 is absent
    from both volumes of case 3."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        organs = [(1, 5.0), (2, 3.0), (3, 2.0)]
        if i == 3:
            organs = [(1, 5.0), (3, 2.0)]
        gt, pred = organ_volumes(rng, shape, organs)
        if i == 1:
            pred[pred == 3] = 0
        if i == 2:
            pred[1:3, 1:3, 1:3] = 4
        spacing = (0.8, 0.9, 2.5) if i % 2 else (1.0, 1.0, 1.0)
        out.append(MedicalCase(f"case_{i:02d}", gt, pred, spacing))
    return out
