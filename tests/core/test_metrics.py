"""Metrics against independent references (scikit-learn, hand-worked counts) and the NaN rules."""

from __future__ import annotations

import math
import pickle
import warnings

import numpy as np
import pytest
from sklearn.metrics import accuracy_score, f1_score, jaccard_score, recall_score

import segeval
from segeval import ConfusionMatrix
from segeval.core import metrics

IGNORE = 255


def _pair(seed: int, c: int, shape=(64, 80)):
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, c, shape).astype(np.uint8)
    gt[rng.random(shape) < 0.1] = IGNORE
    pred = np.where(rng.random(shape) < 0.6, gt % c, rng.integers(0, c, shape)).astype(np.uint8)
    return pred, gt


@pytest.mark.parametrize("seed", range(4))
def test_against_sklearn_when_every_class_is_present(seed: int) -> None:
    c = 6
    pred, gt = _pair(seed, c)
    keep = gt != IGNORE
    y, yhat = gt[keep], pred[keep]
    labels = list(range(c))
    cm = segeval.confusion_matrix(pred, gt, c)
    np.testing.assert_allclose(cm.iou(), jaccard_score(y, yhat, labels=labels, average=None))
    np.testing.assert_allclose(cm.dice(), f1_score(y, yhat, labels=labels, average=None))
    np.testing.assert_allclose(metrics.class_accuracy(cm),
                               recall_score(y, yhat, labels=labels, average=None))
    assert cm.pixel_accuracy() == pytest.approx(accuracy_score(y, yhat), abs=1e-15)
    assert cm.miou() == pytest.approx(jaccard_score(y, yhat, labels=labels, average="macro"))
    freq = np.bincount(y, minlength=c) / y.size
    assert cm.fwiou() == pytest.approx(float(freq @ cm.iou()))


def test_absent_policies_match_what_other_tools_do() -> None:
    # class 2 absent from gt but predicted; class 3 absent from gt and prediction
    gt = np.array([0, 0, 1, 1, 1, 0])
    pred = np.array([0, 2, 1, 1, 0, 0])
    c = 4
    cm = segeval.confusion_matrix(pred, gt, c, ignore_index=None)
    np.testing.assert_allclose(cm.iou(), [2 / 4, 2 / 3, 0.0, np.nan])
    assert cm.miou().n == 3
    # detectron2 drops every class without ground truth
    np.testing.assert_allclose(cm.iou(absent="exclude-no-gt"), [2 / 4, 2 / 3, np.nan, np.nan])
    assert cm.miou(absent="exclude-no-gt") == pytest.approx((2 / 4 + 2 / 3) / 2)
    # scikit-learn's macro jaccard with zero_division=0 counts every class
    sk = jaccard_score(gt, pred, labels=list(range(c)), average="macro", zero_division=0)
    assert cm.miou(absent="zero") == pytest.approx(sk)
    assert cm.miou(absent="zero").n == c
    sk_f1 = f1_score(gt, pred, labels=list(range(c)), average="macro", zero_division=0)
    assert cm.mean_dice(absent="zero") == pytest.approx(sk_f1)
    # accuracy is undefined without ground truth under both NaN policies
    acc = metrics.class_accuracy(cm)
    assert math.isnan(acc[2]) and math.isnan(acc[3])
    assert cm.mean_pixel_accuracy().n == 2
    # pixel accuracy and FWIoU do not depend on the policy
    assert cm.pixel_accuracy() == pytest.approx(4 / 6)
    assert cm.fwiou() == pytest.approx(3 / 6 * 2 / 4 + 3 / 6 * 2 / 3)


def test_unknown_absent_policy_is_refused() -> None:
    with pytest.raises(ValueError, match="The 'absent' parameter must be 'nan', 'exclude-no-gt' "
                                         "or 'zero'"):
        ConfusionMatrix(2).miou(absent="ignore")  # type: ignore[arg-type]


def test_empty_matrix_gives_nan_without_warnings() -> None:
    cm = ConfusionMatrix(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert math.isnan(cm.miou()) and cm.miou().n == 0
        assert math.isnan(cm.pixel_accuracy())
        assert math.isnan(cm.fwiou())
        assert math.isnan(cm.mean_dice())
        assert np.isnan(cm.iou()).all()


def test_mean_score_is_a_float_that_remembers_how_it_was_made() -> None:
    m = metrics.MeanScore(0.5, 3, "nan")
    assert m == 0.5 and isinstance(m, float) and f"{m:.2f}" == "0.50"
    again = pickle.loads(pickle.dumps(m))
    assert (float(again), again.n, again.absent) == (0.5, 3, "nan")


def test_array_functions_are_the_metric_of_the_confusion_matrix() -> None:
    pred, gt = _pair(7, 5)
    cm = segeval.confusion_matrix(pred, gt, 5)
    assert segeval.miou(pred, gt, 5) == cm.miou()
    assert segeval.miou(pred, gt, 5, absent="zero") == cm.miou(absent="zero")
    assert segeval.pixel_accuracy(pred, gt, 5) == cm.pixel_accuracy()
    assert segeval.mean_pixel_accuracy(pred, gt, 5) == cm.mean_pixel_accuracy()
    assert segeval.fwiou(pred, gt, 5) == cm.fwiou()
    assert segeval.mean_dice(pred, gt, 5) == cm.mean_dice()
    np.testing.assert_array_equal(segeval.iou(pred, gt, 5), cm.iou())
    np.testing.assert_array_equal(segeval.dice(pred, gt, 5), cm.dice())
    # ignore_index is the fourth positional parameter
    gt0 = np.where(gt == IGNORE, 0, gt)
    assert segeval.miou(pred, gt0, 5, None) == segeval.confusion_matrix(pred, gt0, 5, None).miou()
    assert segeval.miou(pred, gt0, 5, 0) == segeval.confusion_matrix(pred, gt0, 5, 0).miou()


def test_result_carries_every_metric_and_json_safe_dict() -> None:
    gt = np.array([0, 0, 1, 1, 1, 0])
    pred = np.array([0, 2, 1, 1, 0, 0])
    res = segeval.confusion_matrix(pred, gt, 4, ignore_index=None,
                                   class_names=["a", "b", "c", "d"]).result()
    d = res.to_dict()
    assert d["metrics"]["classes_averaged"] == {"miou": 3, "mean_pixel_accuracy": 2,
                                                "mean_dice": 3}
    assert d["per_class"][3] == {"id": 3, "name": "d", "iou": None, "accuracy": None,
                                 "dice": None, "gt_pixels": 0, "pred_pixels": 0,
                                 "true_positives": 0}
    assert d["confusion_matrix"][0] == [2, 0, 1, 0]
    frame = res.to_frame()
    assert list(frame["name"]) == ["a", "b", "c", "d"]
    assert frame.loc[2, "iou"] == 0.0 and math.isnan(frame.loc[3, "iou"])
