"""ConfusionMatrix: against scikit-learn, and the invariants every count must keep."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from sklearn.metrics import confusion_matrix as sk_confusion_matrix

from segeval import ConfusionMatrix, confusion_matrix
from segeval.core.kernels import count_pixels
from segeval.errors import LabelError, SizeMismatchError

IGNORE = 255


def sklearn_cm(pred: np.ndarray, gt: np.ndarray, c: int, ignore: int | None) -> np.ndarray:
    keep = np.ones(gt.shape, bool) if ignore is None else gt != ignore
    return sk_confusion_matrix(gt[keep].ravel(), pred[keep].ravel(), labels=list(range(c)))


@st.composite
def label_pairs(draw, max_classes: int = 12, batch: bool = False):
    """(pred, gt, C): uint8 labels in [0, C) with some ignore pixels in gt."""
    c = draw(st.integers(1, max_classes))
    shape = draw(hnp.array_shapes(min_dims=3 if batch else 2, max_dims=3 if batch else 2,
                                  min_side=1, max_side=24))
    gt = draw(hnp.arrays(np.uint8, shape, elements=st.sampled_from([*range(c), IGNORE])))
    pred = draw(hnp.arrays(np.uint8, shape, elements=st.integers(0, c - 1)))
    return pred, gt, c


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("kernel", ["reference", "compiled"])
def test_equals_sklearn_on_random_images(seed: int, kernel: str) -> None:
    rng = np.random.default_rng(seed)
    c = int(rng.integers(2, 30))
    gt = rng.integers(0, c, (97, 131)).astype(np.uint8)
    gt[rng.random(gt.shape) < 0.15] = IGNORE
    pred = rng.integers(0, c, gt.shape).astype(np.uint8)
    counts = count_pixels(pred, gt, c, IGNORE, kernel=kernel)
    np.testing.assert_array_equal(counts.table[:, :c], sklearn_cm(pred, gt, c, IGNORE))
    assert counts.table[:, c].sum() == 0


@pytest.mark.parametrize(
    ("pred_dtype", "gt_dtype", "ignore"),
    [(np.uint8, np.uint8, 255), (np.int64, np.int64, -1), (np.uint16, np.uint16, 65535),
     (np.int32, np.uint8, 255), (np.uint8, np.uint16, None), (np.bool_, np.bool_, None),
     (np.uint64, np.int16, -1)],
)
def test_kernels_agree_on_every_dtype(pred_dtype, gt_dtype, ignore) -> None:
    rng = np.random.default_rng(1)
    c = 2 if pred_dtype == np.bool_ else 7
    shape = (3, 41, 37)
    gt = rng.integers(0, c + 2, shape)  # c, c+1: bad ground-truth values
    pred = rng.integers(0, c + 3, shape)  # c.. c+2: out-of-range predictions
    if ignore is not None:
        gt[rng.random(shape) < 0.2] = ignore
    gt, pred = gt.astype(gt_dtype), pred.astype(pred_dtype)
    ref = count_pixels(pred, gt, c, ignore, kernel="reference")
    got = count_pixels(pred, gt, c, ignore, kernel="compiled")
    np.testing.assert_array_equal(ref.table, got.table)
    assert ref[1:] == got[1:]
    valid = np.ones(shape, bool) if ignore is None else gt != ignore
    in_range = valid & (gt.astype(np.int64) < c)
    assert ref.table.sum() == in_range.sum()
    assert ref.bad_gt_count == (valid & ~in_range).sum()


_DTYPES = ["uint8", "int8", "uint16", "int16", "uint32", "int32", "uint64", "int64", "bool"]


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(_DTYPES), st.sampled_from(_DTYPES), st.integers(1, 300),
       st.one_of(st.none(), st.integers(-2, 300)), st.integers(0, 2**32 - 1),
       st.integers(0, 400), st.booleans())
def test_compiled_equals_the_reference_on_every_dtype_pair(gt_dtype, pred_dtype, c, ignore,
                                                           seed, n, runs) -> None:
    """The C loops against the NumPy definition: any pair of integer dtypes, negative and
    out-of-range values on both sides, any number of classes and ignore index; with ``runs``,
    long runs of one pair ending anywhere (the 8-pixel blocks of the byte-pair histogram)."""
    rng = np.random.default_rng(seed)

    def labels(dtype: str) -> np.ndarray:
        info = np.iinfo(np.uint8 if dtype == "bool" else dtype)
        low, high = max(info.min, -3), min(info.max, c + 3)
        return rng.integers(low, high + 1, n).astype(dtype)

    gt, pred = labels(gt_dtype), labels(pred_dtype)
    if runs:
        gt, pred = np.sort(gt), np.sort(pred)
    if ignore is not None and n and gt_dtype != "bool":
        info = np.iinfo(gt_dtype)
        if info.min <= ignore <= info.max:
            gt[rng.random(n) < 0.2] = ignore
    ref = count_pixels(pred, gt, c, ignore, kernel="reference")
    got = count_pixels(pred, gt, c, ignore, kernel="compiled")
    np.testing.assert_array_equal(ref.table, got.table)
    assert ref[1:] == got[1:]


def test_compiled_u8_fast_path_reports_bad_values_like_the_reference() -> None:
    gt = np.array([[0, 1, 7, 255], [9, 1, 0, 2]], np.uint8)
    pred = np.array([[0, 5, 1, 1], [1, 200, 3, 1]], np.uint8)
    for kernel in ("reference", "compiled"):
        counts = count_pixels(pred, gt, 3, 255, kernel=kernel)
        assert (counts.bad_gt_count, counts.bad_gt_value, counts.bad_pred_value) == (2, 7, 3)
        assert counts.table[1, 3] == 2  # pred 5 and 200 on gt 1


def test_large_input_goes_to_the_compiled_kernel_and_agrees() -> None:
    rng = np.random.default_rng(2)
    gt = rng.integers(0, 20, (1024, 1100)).astype(np.uint8)
    gt[::7] = 255
    pred = rng.integers(0, 19, gt.shape).astype(np.uint8)
    auto = count_pixels(pred, gt, 19, 255)
    ref = count_pixels(pred, gt, 19, 255, kernel="reference")
    np.testing.assert_array_equal(auto.table, ref.table)
    assert auto.bad_gt_value == ref.bad_gt_value == 19


@settings(max_examples=60, deadline=None)
@given(label_pairs(), label_pairs())
def test_merge_is_exact_and_order_free(a, b) -> None:
    (pa, ga, ca), (pb, gb, _) = a, b
    c = ca
    pb, gb = pb % c, np.where(gb == IGNORE, IGNORE, gb % c).astype(np.uint8)
    cm_a, cm_b = confusion_matrix(pa, ga, c), confusion_matrix(pb, gb, c)
    both = confusion_matrix(np.concatenate([pa.ravel(), pb.ravel()]),
                            np.concatenate([ga.ravel(), gb.ravel()]), c)
    assert cm_a + cm_b == both
    assert cm_b + cm_a == both
    streamed = ConfusionMatrix(c)
    streamed.update(pb, gb).update(pa, ga)
    assert streamed == both


@settings(max_examples=40, deadline=None)
@given(label_pairs(batch=True))
def test_batch_equals_sum_of_images(case) -> None:
    pred, gt, c = case
    total = ConfusionMatrix(c)
    for p, g in zip(pred, gt, strict=True):
        total += confusion_matrix(p, g, c)
    assert confusion_matrix(pred, gt, c) == total


@settings(max_examples=40, deadline=None)
@given(label_pairs(), st.data())
def test_ignore_pixels_never_count(case, data) -> None:
    pred, gt, c = case
    other = data.draw(hnp.arrays(np.uint8, pred.shape, elements=st.integers(0, c - 1)))
    changed = np.where(gt == IGNORE, other, pred)  # change predictions only on ignored pixels
    assert confusion_matrix(changed, gt, c) == confusion_matrix(pred, gt, c)
    assert confusion_matrix(pred, gt, c).total == int((gt != IGNORE).sum())


@settings(max_examples=40, deadline=None)
@given(label_pairs(), st.randoms(use_true_random=False))
def test_permuting_class_ids_permutes_the_matrix(case, rnd) -> None:
    pred, gt, c = case
    perm = list(range(c))
    rnd.shuffle(perm)
    lut = np.array([*perm, *range(c, 256)], np.uint8)  # 255 (ignore) stays 255
    lut[IGNORE] = IGNORE
    m = confusion_matrix(pred, gt, c).matrix
    m_perm = confusion_matrix(lut[pred], lut[gt], c).matrix
    np.testing.assert_array_equal(m_perm[np.ix_(perm, perm)], m)


def test_ignore_index_none_counts_everything() -> None:
    gt = np.array([0, 1, 1, 2])
    cm = confusion_matrix(np.array([0, 1, 0, 2]), gt, 3, ignore_index=None)
    assert cm.total == 4


def test_bad_ground_truth_label_is_an_error_naming_the_array() -> None:
    gt = np.array([[0, 1], [3, 255]], np.uint8)
    cm = ConfusionMatrix(3)
    with pytest.raises(LabelError, match=r"gt\.png: ground-truth label 3 is not a class "
                                         r"\(expected 0\.\.2 or the ignore index 255; 1 such"):
        cm.update(np.zeros_like(gt), gt, gt_name="gt.png")
    assert cm.total == 0  # nothing added


def test_bad_prediction_label_is_an_error_or_counted_wrong() -> None:
    gt = np.array([0, 1, 255, 2], np.uint8)
    pred = np.array([0, 9, 9, 2], np.uint8)  # the 9 on the ignored pixel does not matter
    with pytest.raises(LabelError, match=r"p\.png: predicted label 9 is not a class .*1 such"):
        ConfusionMatrix(3).update(pred, gt, pred_name="p.png")
    cm = ConfusionMatrix(3).update(pred, gt, invalid_pred="wrong")
    np.testing.assert_array_equal(cm.unassigned, [0, 1, 0])
    assert cm.iou()[1] == 0.0 and cm.pixel_accuracy() == 2 / 3


def test_missing_prediction_counts_every_valid_pixel_wrong() -> None:
    gt = np.array([[0, 1], [255, 1]], np.uint8)
    cm = ConfusionMatrix(2).update_missing(gt)
    assert cm.matrix.sum() == 0
    np.testing.assert_array_equal(cm.unassigned, [1, 2])
    assert cm.pixel_accuracy() == 0.0 and cm.miou() == 0.0


def test_shape_mismatch_is_an_error() -> None:
    with pytest.raises(SizeMismatchError, match=r"a: shape \(2, 3\) does not match the ground "
                                                r"truth b shape \(3, 2\)"):
        ConfusionMatrix(2).update(np.zeros((2, 3), int), np.zeros((3, 2), int),
                                  pred_name="a", gt_name="b")


def test_float_predictions_are_refused_with_a_hint() -> None:
    with pytest.raises(TypeError, match="argmax"):
        confusion_matrix(np.zeros((2, 2)), np.zeros((2, 2), int), 2)


@pytest.mark.parametrize("bad", [0, -3, 2.5, "3", True])
def test_num_classes_must_be_a_positive_integer(bad) -> None:
    with pytest.raises(ValueError, match="The 'num_classes' parameter must be a positive integer"):
        ConfusionMatrix(bad)


def test_merging_different_settings_is_refused() -> None:
    with pytest.raises(ValueError, match="different settings"):
        ConfusionMatrix(3) + ConfusionMatrix(4)
    with pytest.raises(ValueError, match="different settings"):
        ConfusionMatrix(3) + ConfusionMatrix(3, ignore_index=None)
    with pytest.raises(TypeError):
        ConfusionMatrix(3) + 1  # type: ignore[operator]


def test_dlpack_and_lists_are_accepted() -> None:
    class CpuTensor:  # anything with __dlpack__ on the CPU goes through NumPy
        def __init__(self, a):
            self.a = a

        def __dlpack__(self, **kw):
            return self.a.__dlpack__(**kw)

        def __dlpack_device__(self):
            return self.a.__dlpack_device__()

    gt = np.array([[0, 1], [1, 1]])
    a = confusion_matrix(CpuTensor(np.array([[0, 1], [0, 1]])), CpuTensor(gt), 2)
    b = confusion_matrix([[0, 1], [0, 1]], gt.tolist(), 2)
    assert a == b and a.matrix.tolist() == [[1, 0], [1, 2]]


def test_pickles_and_copies_exactly() -> None:
    cm = confusion_matrix(np.array([0, 1, 2]), np.array([0, 2, 2]), 3, class_names=["a", "b", "c"])
    assert pickle.loads(pickle.dumps(cm)) == cm
    cp = cm.copy()
    cp.matrix[0, 0] += 1
    assert cp != cm
