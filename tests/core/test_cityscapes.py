"""The Cityscapes label table, counting kernels and mergeable statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from segeval.core.kernels.cityscapes import count_cityscapes
from segeval.errors import LabelError, SizeMismatchError
from segeval.formats import cityscapes as cs
from segeval.formats.cityscapes.stats import (
    CATEGORY_OF,
    PRED_LUTS,
    CityscapesResult,
    CityscapesStats,
    image_stats,
    official_result,
)
from tests.cityscapes_data import official_module, scene


def test_label_table_equals_the_official_one() -> None:
    labels = pytest.importorskip("cityscapesscripts.helpers.labels",
                                 reason="cityscapesscripts (test dependency) is not installed")
    assert [tuple(lb) for lb in cs.LABELS] == [
        (lb.name, lb.id, lb.trainId, lb.category, lb.categoryId, lb.hasInstances,
         lb.ignoreInEval, lb.color) for lb in labels.labels
    ]
    assert official_module().args.avgClassSize == cs.AVG_CLASS_SIZE
    assert len(cs.EVAL_LABELS) == 19 and len(cs.EVAL_CATEGORIES) == 7
    assert [lb.train_id for lb in cs.EVAL_LABELS] == list(range(19))
    assert tuple(labels.category2labels) == cs.CATEGORIES
    assert cs.instance_categories() == ("human", "vehicle")
    for train_id in range(19):
        assert PRED_LUTS["train"][train_id] == labels.trainId2label[train_id].id
    assert PRED_LUTS["train"][255] == labels.trainId2label[255].id == 0


@st.composite
def image(draw):
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    gt = draw(arrays(np.uint8, (h, w), elements=st.sampled_from([0, 7, 24, 26, 29, 33, 200])))
    pred = draw(arrays(np.uint8, (h, w), elements=st.integers(0, 255)))
    inst = draw(arrays(np.uint16, (h, w), elements=st.sampled_from(
        [0, 7, 1000, 1001, 24000, 24001, 24002, 26005, 29001, 33999, 65535])))
    return gt, pred, inst


@settings(max_examples=60, deadline=None)
@given(image(), st.sampled_from(["label", "train"]), st.booleans())
def test_compiled_kernel_counts_what_the_reference_counts(data, pred_ids, with_inst) -> None:
    gt, pred, inst = data
    args = (gt, pred, inst if with_inst else None, PRED_LUTS[pred_ids], CATEGORY_OF)
    ref = count_cityscapes(*args, kernel="reference")
    got = count_cityscapes(*args, kernel="compiled")
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_array_equal(a, b)
    assert ref.hist.sum() == gt.size
    if with_inst:  # independent count of the instance table
        for k, size, tp, cat in zip(*ref[1:], strict=True):
            m = inst == k
            q = PRED_LUTS[pred_ids][pred[m]]
            assert size == m.sum() and tp == (q == k // 1000).sum()
            assert cat == (CATEGORY_OF[q] == CATEGORY_OF[k // 1000]).sum()


def test_kernel_on_a_full_size_image_both_ways() -> None:
    rng = np.random.default_rng(0)
    gt, inst, pred = scene(rng, 1024, 2048, n_things=30)
    args = (gt, pred, inst, PRED_LUTS["label"], CATEGORY_OF)
    for a, b in zip(count_cityscapes(*args, kernel="reference"),
                    count_cityscapes(*args, kernel="compiled"), strict=True):
        np.testing.assert_array_equal(a, b)


def test_statistics_merge_exactly_in_any_order() -> None:
    rng = np.random.default_rng(7)
    stats = [image_stats(p, g, i) for g, i, p in (scene(rng) for _ in range(6))]
    forward = sum(stats, CityscapesStats())
    backward = sum(reversed(stats), CityscapesStats())
    halves = sum(stats[3:], CityscapesStats()) + sum(stats[:3], CityscapesStats())
    docs = [official_result(s) for s in (forward, backward, halves)]
    assert np.array_equal(forward.matrix, backward.matrix)
    assert docs[0] == docs[1] == docs[2]  # bit-identical, iIoU sums included (math.fsum)
    a = CityscapesResult.from_stats(forward).to_dict()
    b = CityscapesResult.from_stats(halves).to_dict()
    assert a == b
    frame = CityscapesResult.from_stats(forward).to_frame()
    assert list(frame["name"]) == list(cs.CLASS_NAMES) and frame["iiou"].dtype == np.float64
    assert frame.loc[cs.CLASS_NAMES.index("car"), "label_id"] == 26


def test_image_stats_accepts_wider_integer_arrays_and_names_bad_ones() -> None:
    rng = np.random.default_rng(2)
    gt, inst, pred = scene(rng)
    base = image_stats(pred, gt, inst)
    wide = image_stats(pred.astype(np.int32), gt.astype(np.uint16), inst.astype(np.int64))
    assert np.array_equal(base.matrix, wide.matrix)
    assert np.array_equal(base.instances, wide.instances)
    with pytest.raises(LabelError, match=r"p\.png: predicted label id 300 is not in the "
                                         r"Cityscapes label table"):
        image_stats(np.full(gt.shape, 300), gt, pred_name="p.png")
    with pytest.raises(LabelError, match=r"g\.png: ground-truth label id -1 is not in the"):
        image_stats(pred, np.full(gt.shape, -1), gt_name="g.png")
    with pytest.raises(SizeMismatchError, match=r"i\.png: shape \(2, 2\) does not match"):
        image_stats(pred, gt, np.zeros((2, 2), np.uint16), instances_name="i.png")
    with pytest.raises(ValueError, match="'pred_ids' parameter must be 'label' or 'train'"):
        image_stats(pred, gt, pred_ids="trainId")


def test_predicted_ignored_ids_are_false_negatives_and_never_false_positives() -> None:
    gt = np.array([[7, 7, 7, 8], [8, 0, 0, 9]], np.uint8)   # road, sidewalk, unlabeled, parking
    pred = np.array([[7, 9, 0, 7], [8, 7, 8, 7]], np.uint8)
    res = CityscapesResult.from_stats(image_stats(pred, gt), instances_evaluated=False)
    road, sidewalk = cs.CLASS_NAMES.index("road"), cs.CLASS_NAMES.index("sidewalk")
    # road: TP 1, FN 2 (predicted parking and unlabeled), FP 1 (on sidewalk; not on void/parking)
    assert res.iou[road] == 1 / 4
    # sidewalk: TP 1, FN 1, FP 0 (its prediction on unlabeled ground truth does not count)
    assert res.iou[sidewalk] == 1 / 2
    assert res.confusion.unassigned[road] == 2
