"""``segeval.compat.hf_mean_iou`` against Hugging Face evaluate's ``mean_iou``.

evaluate cannot be installed as a test reference: its PyPI wheel holds no metric code, and
``evaluate.load("mean_iou")`` downloads the metric script from the Hub. :func:`hf_reference`
below is therefore evaluate's algorithm written independently in this test from a reading of
the released ``metrics/mean_iou/mean_iou.py`` (huggingface/evaluate): ``label_map`` assigned
in place on the reference, entry after entry, *before* ``np.array``; ``reduce_labels`` on the
reference; ``mask = label != ignore_index``; three ``np.histogram(x, bins=C, range=(0, C-1))``;
float64 totals; ``nanmean``; ``nan_to_num`` last. The only numbers typed in come from the
example of that file's docstring (evaluate's own output).
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pytest

from segeval.compat import hf_mean_iou
from segeval.errors import InvalidParameterError, SizeMismatchError

KEYS = ("mean_iou", "mean_accuracy", "overall_accuracy", "per_category_iou",
        "per_category_accuracy")


def hf_reference(predictions, references, num_labels, ignore_index, nan_to_num=None,
                 label_map=None, reduce_labels=False):
    """evaluate's mean_iou (see the module docstring); works on copies of the references."""
    inter = np.zeros(num_labels)
    union = np.zeros(num_labels)
    label_area = np.zeros(num_labels)
    for pred, label in zip(predictions, references, strict=False):
        label = np.array(label, dtype=np.int64)  # a copy: evaluate writes into the caller's
        if label_map is not None:
            for old, new in label_map.items():  # in sequence, each on the previous result
                label[label == old] = new
        pred = np.array(pred)
        if reduce_labels:
            label[label == 0] = 255
            label = label - 1
            label[label == 254] = 255
        keep = label != ignore_index
        p, g = pred[keep], label[keep]
        hit = p[p == g]
        bins = {"bins": num_labels, "range": (0, num_labels - 1)}
        i = np.histogram(hit, **bins)[0]
        pa = np.histogram(p, **bins)[0]
        la = np.histogram(g, **bins)[0]
        inter += i
        union += pa + la - i
        label_area += la
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # nanmean's "Mean of empty slice"
        iou = inter / union
        acc = inter / label_area
        out = {"mean_iou": np.nanmean(iou), "mean_accuracy": np.nanmean(acc),
               "overall_accuracy": inter.sum() / label_area.sum(),
               "per_category_iou": iou, "per_category_accuracy": acc}
    if nan_to_num is not None:
        out = {k: np.nan_to_num(v, nan=nan_to_num) for k, v in out.items()}
    return out


def assert_same(got: dict, want: dict) -> None:
    assert list(got) == list(KEYS)
    for k in KEYS[:3]:
        assert isinstance(got[k], np.float64), k
        if np.isnan(want[k]):
            assert np.isnan(got[k]), k
        else:
            assert got[k] == pytest.approx(float(want[k]), rel=1e-12, abs=1e-15), k
    for k in KEYS[3:]:
        assert got[k].dtype == np.float64 and got[k].shape == want[k].shape, k
        np.testing.assert_array_equal(got[k], want[k], err_msg=k)  # NaN == NaN here


# ------------------------------------------------------------------------ evaluate's example


def test_the_example_of_evaluates_docstring() -> None:
    predicted = [np.array([[1, 2], [3, 4], [5, 255]]), np.array([[2, 7], [9, 2], [3, 6]]),
                 np.array([[2, 2, 3], [8, 2, 4], [3, 255, 2]])]
    actual = [np.array([[0, 3], [5, 4], [6, 255]]), np.array([[1, 7], [9, 2], [3, 6]]),
              np.array([[1, 2, 2], [8, 2, 1], [3, 255, 1]])]
    r = hf_mean_iou(predicted, actual, num_labels=10, ignore_index=255, reduce_labels=False)
    # evaluate's documented output for this call (metrics/mean_iou/mean_iou.py, "Examples")
    assert r["mean_iou"] == 0.47750000000000004
    assert r["mean_accuracy"] == 0.5916666666666666
    assert r["overall_accuracy"] == 0.5263157894736842
    np.testing.assert_allclose(r["per_category_iou"],
                               [0., 0., 0.375, 0.4, 0.5, 0., 0.5, 1., 1., 1.], atol=1e-15)
    np.testing.assert_allclose(r["per_category_accuracy"],
                               [0., 0., 0.75, 2 / 3, 1., 0., 0.5, 1., 1., 1.], atol=1e-15)
    assert_same(r, hf_reference(predicted, actual, 10, 255))


# ------------------------------------------------------------------------ generated data


def _image(rng: np.random.Generator, shape: tuple[int, int], low: int, high: int,
           dtype: type) -> np.ndarray:
    return rng.integers(low, high, shape).astype(dtype)


CASES = [  # (num_labels, ignore_index, reduce_labels, label_map, nan_to_num, dtype)
    (5, 255, False, None, None, np.uint8),
    (5, 255, True, None, None, np.uint8),
    (150, 255, True, None, None, np.uint8),
    (150, 255, True, None, 0, np.int64),
    (7, 0, False, None, None, np.int64),
    (7, 0, True, None, -1, np.uint16),  # 0 -> 255 is then an out-of-range class, counted
    (6, None, False, None, None, np.int32),
    (6, 3, False, {1: 2, 2: 3}, None, np.int64),  # 1 -> 2 -> 3 -> ignored
    (6, 255, True, {2: 0, 9: 255, 4: 300}, 0.5, np.uint16),
    (4, -1, False, {0: -1}, None, np.int16),
    (1, 255, False, None, None, np.uint8),
    (300, 255, False, None, None, np.uint16),
]


@pytest.mark.parametrize("case", range(len(CASES)))
def test_generated_data_equals_evaluates_algorithm(case: int,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    c, ignore, reduce, label_map, nan_to_num, dtype = CASES[case]
    rng = np.random.default_rng(case)
    preds, refs = [], []
    for _ in range(5):  # images of different sizes
        shape = (int(rng.integers(1, 30)), int(rng.integers(1, 30)))
        lo = -2 if np.issubdtype(dtype, np.signedinteger) else 0
        top = min(c + 3, np.iinfo(dtype).max)
        ref = _image(rng, shape, lo, top, dtype)
        ref[rng.random(shape) < 0.1] = 255 if np.iinfo(dtype).max >= 255 else 0
        pred = np.where(rng.random(shape) < 0.5, ref, _image(rng, shape, lo, top, dtype))
        preds.append(pred.astype(np.int64 if case % 2 else dtype))
        refs.append(ref)
    # the last class is never in the references; class 0 sometimes only predicted
    refs = [np.where(r == c - 1, c + 1, r).astype(dtype) if c > 2 else r for r in refs]
    before = [r.copy() for r in refs]
    with caplog.at_level(logging.WARNING, logger="segeval"):
        got = hf_mean_iou(preds, refs, c, ignore, nan_to_num=nan_to_num, label_map=label_map,
                          reduce_labels=reduce)
    assert_same(got, hf_reference(preds, refs, c, ignore, nan_to_num, label_map, reduce))
    assert all(np.array_equal(a, b) for a, b in zip(refs, before, strict=True))  # untouched
    assert len([r for r in caplog.records if "outside" in r.message]) <= 1


def test_lists_tensors_pil_images_and_whole_floats_are_labels() -> None:
    from PIL import Image

    ref = np.array([[0, 1], [2, 255]], np.uint8)
    pred = np.array([[0, 1], [1, 2]], np.uint8)
    want = hf_reference([pred], [ref], 3, 255)
    assert_same(hf_mean_iou([pred.tolist()], [ref.tolist()], 3, 255), want)
    assert_same(hf_mean_iou([pred.astype(float)], [ref.astype(np.float32)], 3, 255), want)
    assert_same(hf_mean_iou([Image.fromarray(pred)], [Image.fromarray(ref)], 3, 255), want)
    assert_same(hf_mean_iou((p for p in [pred]), iter([ref]), 3, 255), want)  # iterables
    assert_same(hf_mean_iou([pred.astype(bool)], [ref], 3, 255),
                hf_reference([pred.astype(bool).astype(np.uint8)], [ref], 3, 255))


# ------------------------------------------------------------------------ the quirks


def test_label_map_is_applied_in_sequence_to_the_references_only() -> None:
    pred = np.array([[1, 2, 3]])
    ref = np.array([[1, 2, 3]])
    r = hf_mean_iou([pred], [ref], 4, 255, label_map={1: 2, 2: 3})
    # the reference becomes [3, 3, 3]: only the prediction's 3 is right
    assert r["overall_accuracy"] == pytest.approx(1 / 3)
    np.testing.assert_array_equal(r["per_category_accuracy"], [np.nan, np.nan, np.nan, 1 / 3])
    assert ref.tolist() == [[1, 2, 3]]


def test_reduce_labels_changes_the_references_only() -> None:
    ref = np.array([[0, 1, 2, 255]], np.uint8)  # -> 255, 0, 1, 255
    pred = np.array([[0, 0, 1, 2]], np.uint8)
    r = hf_mean_iou([pred], [ref], 3, 255, reduce_labels=True)
    assert r["overall_accuracy"] == 1.0
    np.testing.assert_array_equal(r["per_category_iou"], [1.0, 1.0, np.nan])


def test_values_outside_the_classes_are_dropped_with_one_warning(
        caplog: pytest.LogCaptureFixture) -> None:
    ref = np.array([[0, 1, 7, 1]])
    pred = np.array([[9, 1, 1, -3]])
    with caplog.at_level(logging.WARNING, logger="segeval"):
        r = hf_mean_iou([pred, pred], [ref, ref], 2, 255)
    assert_same(r, hf_reference([pred, pred], [ref, ref], 2, 255))
    # the reference's 7 is nobody's pixel but its prediction 1 counts as predicted
    np.testing.assert_array_equal(r["per_category_iou"], [0.0, 2 / 6])
    warned = [rec.message for rec in caplog.records if rec.name == "segeval"]
    assert warned == ["hf_mean_iou: 4 predicted and 2 reference pixels (not ignore_index) hold "
                      "values outside 0..1; they are dropped as evaluate's mean_iou drops them"]


def test_nan_behaviour_and_nan_to_num() -> None:
    r = hf_mean_iou([], [], 3, 255)
    assert all(np.isnan(r[k]) for k in KEYS[:3])
    assert np.isnan(r["per_category_iou"]).all()
    r = hf_mean_iou([np.array([[1]])], [np.array([[255]])], 3, 255, nan_to_num=0)
    assert [float(r[k]) for k in KEYS[:3]] == [0.0, 0.0, 0.0]
    # nan_to_num comes after the means: a NaN class is left out of them, not counted as 0
    r = hf_mean_iou([np.array([[0, 2]])], [np.array([[0, 0]])], 3, 255, nan_to_num=-7)
    np.testing.assert_array_equal(r["per_category_iou"], [0.5, -7.0, 0.0])
    assert r["mean_iou"] == 0.25
    assert_same(r, hf_reference([np.array([[0, 2]])], [np.array([[0, 0]])], 3, 255,
                                nan_to_num=-7))


def test_different_lengths_are_zipped_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    a, b = np.array([[0, 1]]), np.array([[1, 1]])
    with caplog.at_level(logging.WARNING, logger="segeval"):
        r = hf_mean_iou([a, b], [a], 2, 255)
    assert_same(r, hf_reference([a], [a], 2, 255))
    assert "more predictions than references; only the first 1 pairs" in caplog.text


def test_bad_arguments_are_one_line_errors() -> None:
    a = np.zeros((2, 2), np.uint8)
    with pytest.raises(SizeMismatchError, match=r"^predictions\[1\]: shape \(2, 3\) does not "
                                                 r"match references\[1\] shape \(2, 2\)$"):
        hf_mean_iou([a, np.zeros((2, 3))], [a, a], 2, 255)
    with pytest.raises(InvalidParameterError, match=r"^predictions\[0\]: float labels"):
        hf_mean_iou([a + 0.5], [a], 2, 255)
    for kwargs, name in (({"num_labels": 0}, "num_labels"), ({"ignore_index": 1.5},
                         "ignore_index"), ({"label_map": {1: "x"}}, "label_map"),
                         ({"nan_to_num": "0"}, "nan_to_num"), ({"reduce_labels": 1},
                         "reduce_labels")):
        args = {"num_labels": 2, "ignore_index": 255, **kwargs}
        with pytest.raises(InvalidParameterError) as e:
            hf_mean_iou([a], [a], **args)
        assert e.value.parameters == (name,)
