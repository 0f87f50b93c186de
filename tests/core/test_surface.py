"""segeval.core.surface against DeepMind's ``surface-distance`` (the reference of the Medical
Segmentation Decathlon; installed from PyPI as a test dependency), to 1e-6 relative, on
generated masks: anisotropic spacings, 2-D and 3-D, thin structures, masks cut by the volume's
border, flipped volumes, and the empty-mask conventions (where ours differ from the package's,
the test says how).

surface-distance 0.1 uses ``np.Inf`` / ``np.NaN`` in its empty-mask branches, removed in
NumPy 2: the fixture below aliases them for the test's duration (the package is not patched).
IoU is not in the package: it is computed here from the voxel counts (|G & P| / |G | P|).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from surface_distance import lookup_tables
from surface_distance import metrics as sd_metrics

import segeval
from segeval.core.surface import case_metrics, element_areas, surface_metrics
from segeval.errors import InvalidParameterError
from tests.medical_data import ellipsoid, organ_volumes

REL = 1e-6
# the package's own warnings: scipy's deprecated namespaces, and its 0/0 on empty surfaces
pytestmark = [pytest.mark.filterwarnings("ignore::DeprecationWarning"),
              pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")]


@pytest.fixture(autouse=True)
def _numpy2_aliases(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(np, "Inf", np.inf, raising=False)
    monkeypatch.setattr(np, "NaN", np.nan, raising=False)


def deepmind(gt: np.ndarray, pred: np.ndarray, spacing, tolerance: float = 1.0) -> dict:
    """The seven numbers by surface-distance (IoU and volumes from the voxel counts)."""
    g, p = gt.astype(bool), pred.astype(bool)
    d = sd_metrics.compute_surface_distances(g, p, list(spacing))
    union = np.count_nonzero(g | p)
    voxel = float(np.prod(spacing))
    return {
        "dice": float(sd_metrics.compute_dice_coefficient(g, p)),
        "iou": np.count_nonzero(g & p) / union if union else math.nan,
        "hd95": float(sd_metrics.compute_robust_hausdorff(d, 95)),
        "assd": float(np.mean(sd_metrics.compute_average_surface_distance(d))),
        "nsd": float(sd_metrics.compute_surface_dice_at_tolerance(d, tolerance)),
        "volume_gt": np.count_nonzero(g) * voxel,
        "volume_pred": np.count_nonzero(p) * voxel,
    }


def assert_agree(ours: dict, ref: dict) -> None:
    for key, want in ref.items():
        got = ours[key]
        if math.isnan(want):
            assert math.isnan(got), (key, got, want)
        else:
            assert got == pytest.approx(want, rel=REL, abs=1e-12), (key, got, want)


def random_masks(rng: np.random.Generator, shape, sigma: float = 1.5):
    from scipy import ndimage

    a = ndimage.gaussian_filter(rng.random(shape), sigma) > 0.5
    b = ndimage.gaussian_filter(rng.random(shape), sigma) > 0.5
    return a.astype(np.uint8), b.astype(np.uint8)


@pytest.mark.parametrize("spacing", [(1.0, 1.0, 1.0), (0.7, 1.3, 2.5), (3.0, 0.5, 0.5),
                                     (2.0, 2.0)])
def test_element_areas_are_the_packages_tables(spacing) -> None:
    if len(spacing) == 3:
        want = lookup_tables.create_table_neighbour_code_to_surface_area(spacing)
    else:
        want = lookup_tables.create_table_neighbour_code_to_contour_length(spacing)
    np.testing.assert_allclose(element_areas(spacing), want, rtol=1e-12, atol=0)


def test_element_areas_for_random_spacings() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        sp = tuple(rng.uniform(0.1, 5.0, 3))
        np.testing.assert_allclose(
            element_areas(sp), lookup_tables.create_table_neighbour_code_to_surface_area(sp),
            rtol=1e-12)
        sp2 = tuple(rng.uniform(0.1, 5.0, 2))
        np.testing.assert_allclose(
            element_areas(sp2),
            lookup_tables.create_table_neighbour_code_to_contour_length(sp2), rtol=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_random_blobs_with_anisotropic_spacing(seed: int) -> None:
    rng = np.random.default_rng(seed)
    shape = (24, 20, 14) if seed % 3 else (30, 26)
    gt, pred = random_masks(rng, shape)
    spacing = tuple(rng.uniform(0.4, 3.0, len(shape)))
    tol = float(rng.uniform(0.5, 3.0))
    assert_agree(surface_metrics(pred, gt, spacing, tolerance=tol),
                 deepmind(gt, pred, spacing, tol))


@pytest.mark.parametrize("spacing", [(0.8, 0.8, 2.0), (1.0, 1.0, 1.0), (2.5, 0.6, 0.9),
                                     (0.3, 0.3, 5.0)])
def test_organs(spacing) -> None:
    rng = np.random.default_rng(11)
    gt, pred = organ_volumes(rng, (40, 36, 24), [(1, 9.0), (2, 5.0), (3, 2.5)])
    labels, values = case_metrics(gt, pred, spacing, tolerance=2.0)
    assert labels == (1, 2, 3)
    for k, lab in enumerate(labels):
        ours = dict(zip(segeval.core.surface.KEYS, values[k], strict=True))
        assert_agree(ours, deepmind(gt == lab, pred == lab, spacing, 2.0))


def test_far_apart_masks() -> None:
    """Surfaces many voxels apart (every distance past the nearest shells: the k-d tree)."""
    shape = (40, 30, 20)
    gt = ellipsoid(shape, (8, 8, 6), (5, 4, 3)).astype(np.uint8)
    pred = ellipsoid(shape, (30, 22, 14), (6, 5, 4)).astype(np.uint8)
    pred[8, 8, 6] = 1  # one predicted voxel inside the ground truth
    for spacing in ((1.0, 1.0, 1.0), (0.7, 1.9, 3.1)):
        assert_agree(surface_metrics(pred, gt, spacing, tolerance=2.0),
                     deepmind(gt, pred, spacing, 2.0))


def test_thin_structures() -> None:
    """A one-voxel plate, a one-voxel line and single voxels (surfaces without an inside)."""
    shape = (16, 15, 14)
    gt = np.zeros(shape, np.uint8)
    pred = np.zeros(shape, np.uint8)
    gt[3:12, 4:11, 7] = 1  # a plate
    pred[3:12, 4:11, 8] = 1  # the same plate one slice on
    gt[2, 2, 1:13] = 2  # a line
    pred[2, 3, 1:10] = 2
    gt[14, 14, 12] = 3  # single voxels
    pred[13, 12, 12] = 3
    for spacing in ((1.0, 1.0, 1.0), (0.6, 0.6, 3.0)):
        for lab in (1, 2, 3):
            assert_agree(surface_metrics(pred, gt, spacing, tolerance=1.0, label=lab),
                         deepmind(gt == lab, pred == lab, spacing, 1.0))


def test_masks_cut_by_the_border_of_the_volume() -> None:
    """Structures that touch every face of the volume: the crop pads them with background, as
    the package does."""
    shape = (12, 10, 9)
    gt = ellipsoid(shape, (0, 5, 4), (8, 9, 7)).astype(np.uint8)
    pred = ellipsoid(shape, (11, 5, 8), (9, 7, 8)).astype(np.uint8)
    full = np.ones(shape, np.uint8)
    for spacing in ((1.0, 1.0, 1.0), (1.2, 0.7, 2.2)):
        assert_agree(surface_metrics(pred, gt, spacing), deepmind(gt, pred, spacing))
        assert_agree(surface_metrics(full, gt, spacing), deepmind(gt, full, spacing))


def test_flipped_volumes_give_the_same_numbers() -> None:
    """Flipping both volumes along any axis (another orientation of the same data) changes
    nothing, here and in the package."""
    rng = np.random.default_rng(3)
    gt, pred = organ_volumes(rng, (24, 22, 16), [(1, 6.0)])
    spacing = (0.9, 1.1, 2.0)
    base = surface_metrics(pred, gt, spacing)
    for axis in range(3):
        g, p = np.flip(gt, axis), np.flip(pred, axis)
        flipped = surface_metrics(p, g, spacing)
        assert_agree(flipped, deepmind(g, p, spacing))
        assert_agree(flipped, base)


def test_a_distance_equal_to_the_tolerance_is_within_it() -> None:
    """NSD counts distances <= tolerance: a prediction one voxel (2 mm) off everywhere has
    NSD 1 at a 2 mm tolerance; just below, only the elements that coincide count."""
    gt = np.zeros((10, 10, 10), np.uint8)
    gt[3:7, 3:7, 3:7] = 1
    pred = np.roll(gt, 1, axis=0)
    spacing = (2.0, 1.0, 1.0)
    at = surface_metrics(pred, gt, spacing, tolerance=2.0)
    below = surface_metrics(pred, gt, spacing, tolerance=1.999)
    assert at["nsd"] == pytest.approx(1.0, rel=1e-12)
    assert below["nsd"] < 1.0
    assert_agree(at, deepmind(gt, pred, spacing, 2.0))
    assert_agree(below, deepmind(gt, pred, spacing, 1.999))


def test_only_in_the_ground_truth_or_only_predicted() -> None:
    """One mask empty: Dice, IoU and NSD 0 and HD95 +inf as in the package; ASSD +inf where
    the package gives NaN (its mean over an empty surface is 0/0)."""
    gt = np.zeros((8, 8, 8), np.uint8)
    gt[2:5, 2:6, 3:5] = 1
    empty = np.zeros_like(gt)
    spacing = (1.0, 0.5, 2.0)
    for pred, g in ((empty, gt), (gt, empty)):
        ours = surface_metrics(pred, g, spacing)
        ref = deepmind(g, pred, spacing)
        assert ref["hd95"] == math.inf and math.isnan(ref["assd"]), ref
        assert ours["assd"] == math.inf
        assert_agree({k: v for k, v in ours.items() if k != "assd"},
                     {k: v for k, v in ref.items() if k != "assd"})
    assert surface_metrics(empty, gt, spacing)["volume_gt"] == 24 * 1.0


def test_absent_from_both() -> None:
    """Both masks empty: every metric NaN (undefined), volumes 0; the package gives NaN Dice,
    NSD and ASSD but +inf HD95."""
    empty = np.zeros((6, 6, 6), np.uint8)
    ours = surface_metrics(empty, empty, (1.0, 1.0, 1.0))
    ref = deepmind(empty, empty, (1.0, 1.0, 1.0))
    assert ref["hd95"] == math.inf and math.isnan(ref["dice"]) and math.isnan(ref["nsd"])
    assert all(math.isnan(ours[k]) for k in ("dice", "iou", "hd95", "assd", "nsd"))
    assert ours["volume_gt"] == ours["volume_pred"] == 0.0


@pytest.mark.parametrize("dtype", [np.int16, np.uint16, np.int32, np.int64, np.uint32])
def test_label_values_of_any_integer_dtype(dtype) -> None:
    """Labels of wide dtypes, negative and large labels: each label scored as its own mask."""
    rng = np.random.default_rng(9)
    gt8, pred8 = organ_volumes(rng, (22, 20, 12), [(1, 5.0), (2, 3.0), (3, 2.0)])
    signed = np.dtype(dtype).kind == "i"
    values = {1: 1, 2: -7 if signed else 1000, 3: 40000 if np.iinfo(dtype).max > 40000 else 9}
    gt = np.zeros(gt8.shape, dtype)
    pred = np.zeros(gt8.shape, dtype)
    for k, v in values.items():
        gt[gt8 == k] = v
        pred[pred8 == k] = v
    spacing = (0.7, 0.7, 1.5)
    labels, got = case_metrics(gt, pred, spacing)
    assert labels == tuple(sorted(values.values()))
    for j, lab in enumerate(labels):
        ours = dict(zip(segeval.core.surface.KEYS, got[j], strict=True))
        assert_agree(ours, deepmind(gt == lab, pred == lab, spacing))


def test_given_labels_include_absent_ones_and_drop_the_rest() -> None:
    rng = np.random.default_rng(2)
    gt, pred = organ_volumes(rng, (20, 20, 12), [(1, 5.0), (2, 3.0)])
    labels, values = case_metrics(gt, pred, (1.0, 1.0, 1.0), labels=(2, 7))
    assert labels == (2, 7)
    assert_agree(dict(zip(segeval.core.surface.KEYS, values[0], strict=True)),
                 deepmind(gt == 2, pred == 2, (1.0, 1.0, 1.0)))
    assert np.isnan(values[1, :5]).all() and (values[1, 5:] == 0).all()


def test_bool_arrays_and_the_public_name() -> None:
    gt = np.zeros((9, 9), bool)
    gt[2:6, 2:7] = True
    pred = np.zeros_like(gt)
    pred[3:7, 2:6] = True
    assert segeval.surface_metrics is surface_metrics
    assert_agree(surface_metrics(pred, gt, (0.5, 2.0)), deepmind(gt, pred, (0.5, 2.0)))


def test_bad_arguments_are_one_line_in_the_one_voice() -> None:
    a = np.zeros((4, 4), np.uint8)
    with pytest.raises(InvalidParameterError, match=r"^The 'spacing' parameter of "
                                                    r"surface_metrics must be 2 positive"):
        surface_metrics(a, a, (1.0, 0.0))
    with pytest.raises(InvalidParameterError, match=r"^The 'pred' parameter"):
        surface_metrics(np.zeros((4, 5), np.uint8), a, (1.0, 1.0))
    with pytest.raises(InvalidParameterError, match=r"^The 'gt' parameter"):
        surface_metrics(a, np.zeros((2, 2, 2, 2), np.uint8), (1.0, 1.0))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("shape", [(17, 13, 11), (20, 9)])
def test_label_boxes_in_either_memory_order(order: str, shape) -> None:
    """The one-pass bounding boxes equal the boxes of each label's own mask, for C and
    Fortran arrays (NIfTI volumes are Fortran) and for views that are neither."""
    from segeval.core.surface import _find

    rng = np.random.default_rng(len(shape))
    v = np.zeros(shape, np.int16, order=order)
    for label in (1, 5, -3, 300):
        c = [int(rng.integers(0, s)) for s in shape]
        v[tuple(slice(max(0, x - 3), x + 2) for x in c)] = label
    for volume in (v, v[::-1], np.asfortranarray(v)[:, ::2]):
        found = _find(volume)
        for label in (1, 5, -3, 300):
            mask = volume == label
            want = []
            for axis in range(volume.ndim):
                hit = np.flatnonzero(mask.any(axis=tuple(a for a in range(volume.ndim)
                                                          if a != axis)))
                want.append(slice(int(hit[0]), int(hit[-1]) + 1))
            if mask.any():
                assert found[label] == tuple(want), (label, found[label], want)
            else:
                assert label not in found
