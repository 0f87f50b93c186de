"""The array-namespace kernel, run here with NumPy: the same integers as the reference kernel.

With CuPy arrays the same code runs on a GPU (tested in ``test_cuda_kernel.py`` where there is
one); the NumPy run checks every branch of it: ignore, bad ground truth, out-of-range and
negative predictions, every dtype, and minima carried across chunks.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from segeval.core.kernels import count_pixels
from segeval.core.kernels.xp import count_pixels_xp, is_cupy_array, namespace_of, to_host


def test_namespace_of_numpy_is_numpy_and_cupy_is_not_imported() -> None:
    import sys

    before = "cupy" in sys.modules
    a = np.zeros(3, np.uint8)
    assert namespace_of(a) is np and not is_cupy_array(a)
    assert to_host(a) is a
    assert ("cupy" in sys.modules) == before


@pytest.mark.parametrize("seed", range(3))
def test_equals_sklearn(seed: int) -> None:
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 25))
    gt = rng.integers(0, c, (61, 83)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.2] = 255
    pred = rng.integers(0, c, gt.shape).astype(np.uint8)
    keep = gt != 255
    expected = sk_confusion_matrix(gt[keep], pred[keep], labels=list(range(c)))
    counts = count_pixels_xp(pred, gt, c, 255)
    np.testing.assert_array_equal(counts.table[:, :c], expected)
    assert counts.table[:, c].sum() == 0 and counts[1:] == (0, None, None)


@pytest.mark.parametrize(
    ("pred_dtype", "gt_dtype", "ignore"),
    [(np.uint8, np.uint8, 255), (np.int64, np.int64, -1), (np.uint16, np.uint16, 65535),
     (np.int32, np.uint8, 255), (np.uint8, np.uint16, None), (np.bool_, np.bool_, None),
     (np.uint64, np.int16, -1), (np.int8, np.int8, None)],
)
@pytest.mark.parametrize("chunk", [None, 7, 1000])
def test_agrees_with_reference_on_every_dtype(pred_dtype, gt_dtype, ignore, chunk) -> None:
    rng = np.random.default_rng(3)
    c = 2 if pred_dtype == np.bool_ else 5
    shape = (3, 17, 19)
    signed = np.issubdtype(pred_dtype, np.signedinteger)
    gt = rng.integers(-2 if np.issubdtype(gt_dtype, np.signedinteger) else 0, c + 3, shape)
    pred = rng.integers(-3 if signed else 0, c + 4, shape)
    if ignore is not None:
        gt[rng.random(shape) < 0.2] = ignore
    gt, pred = gt.astype(gt_dtype), pred.astype(pred_dtype)
    ref = count_pixels(pred, gt, c, ignore, kernel="reference")
    got = count_pixels_xp(pred, gt, c, ignore, chunk=chunk)
    np.testing.assert_array_equal(got.table, ref.table)
    assert got.table.dtype == np.int64 and got.table.shape == (c, c + 1)
    assert got[1:] == ref[1:]


def test_bad_values_and_smallest_across_chunks() -> None:
    gt = np.array([0, 1, 9, 255, 7, 1, 0, 2, 1, 8], np.int64)
    pred = np.array([0, 5, 1, 1, 1, 200, -4, 3, 6, 0], np.int64)
    for chunk in (1, 3, 100):
        counts = count_pixels_xp(pred, gt, 3, 255, chunk=chunk)
        # bad gt: 9, 7, 8 (smallest 7); bad predictions on counted pixels: 5, 200, -4, 3, 6
        assert (counts.bad_gt_count, counts.bad_gt_value, counts.bad_pred_value) == (3, 7, -4)
        assert counts.table[:, 3].tolist() == [1, 3, 1]
        assert counts.table[:, :3].sum() == 1


def test_empty_and_all_ignored() -> None:
    empty = np.zeros((0, 4), np.uint8)
    counts = count_pixels_xp(empty, empty, 3, 255)
    assert counts.table.sum() == 0 and counts[1:] == (0, None, None)
    ignored = np.full((5, 5), 255, np.uint8)
    counts = count_pixels_xp(ignored, ignored, 3, 255)
    assert counts.table.sum() == 0 and counts[1:] == (0, None, None)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_property_equals_reference(data) -> None:
    c = data.draw(st.integers(1, 9))
    dtype = data.draw(st.sampled_from([np.uint8, np.int16, np.int64]))
    shape = data.draw(hnp.array_shapes(min_dims=1, max_dims=3, min_side=0, max_side=12))
    low = -2 if dtype != np.uint8 else 0
    values = st.integers(low, c + 2) | st.just(255 if dtype != np.int16 else -1)
    gt = data.draw(hnp.arrays(dtype, shape, elements=values))
    pred = data.draw(hnp.arrays(dtype, shape, elements=st.integers(low, c + 2)))
    ignore = data.draw(st.sampled_from([None, 255 if dtype != np.int16 else -1]))
    chunk = data.draw(st.integers(1, 50))
    ref = count_pixels(pred, gt, c, ignore, kernel="reference")
    got = count_pixels_xp(pred, gt, c, ignore, chunk=chunk)
    np.testing.assert_array_equal(got.table, ref.table)
    assert got[1:] == ref[1:]
