"""Panoptic quality: every rule of the COCO panoptic reference on hand-built images, random
image sets against the reference itself (cityscapesScripts' copy of panopticapi), and the
exactness of merging statistics."""

from __future__ import annotations

import logging
import math
import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segeval import PanopticStats, panoptic_quality
from segeval.core import panoptic
from segeval.errors import DataError, LabelError, SizeMismatchError
from tests.panoptic_data import (
    CATEGORIES,
    PanopticImage,
    fsum_ious,
    gt_info,
    pred_info,
    random_image,
    reference,
)

PERSON, CAR, ROAD, SKY = 0, 1, 2, 3  # positions in CATEGORIES


def stats_of(images: list[PanopticImage]) -> PanopticStats:
    s = PanopticStats(CATEGORIES)
    for im in images:
        s.update(im.pred, im.gt, im.pred_segments, im.gt_segments)
    return s


def assert_like_reference(tmp_path: Path, images: list[PanopticImage]) -> PanopticStats:
    """Our statistics and averages equal the reference's on the same images (as files)."""
    ours = stats_of(images)
    ref = reference(tmp_path, images)
    for k, c in enumerate(CATEGORIES):
        tp, fp, fn, iou = ref.counts[c["id"]]
        assert (ours.tp[k], ours.fp[k], ours.fn[k]) == (tp, fp, fn), c["name"]
        assert ours.iou_sum[k] == pytest.approx(iou, abs=1e-12)
    result = ours.result()
    for name, avg in (("All", result.all), ("Things", result.things), ("Stuff", result.stuff)):
        want = ref.averages[name]
        if want is None:  # the reference divides by zero; we say NaN
            assert avg.n == 0 and math.isnan(avg.pq)
            continue
        assert avg.n == want["n"]
        for key in ("pq", "sq", "rq"):
            assert getattr(avg, key) == pytest.approx(want[key], abs=1e-12), (name, key)
    return ours


# --------------------------------------------------------------------------- hand-built rules


def test_void_pixels_leave_the_union_crowd_pixels_do_not(tmp_path: Path) -> None:
    # gt person 1 on the left 4 columns; the prediction covers it and 2 more columns, which
    # are VOID in the ground truth: IoU = 12 / (12 + 18 - 12 - 6) = 1.
    gt = np.zeros((3, 8), np.int64)
    gt[:, :4] = 1
    pred = np.zeros_like(gt)
    pred[:, :6] = 5
    im = PanopticImage(gt, pred, gt_info(gt, {1: 1}), pred_info({5: 1}))
    s = assert_like_reference(tmp_path / "void", [im])
    assert (s.tp[PERSON], s.iou_sum[PERSON]) == (1, 1.0)
    # the same 6 extra pixels as a person crowd region: they stay in the union (12 / 18)
    gt2 = gt.copy()
    gt2[:, 4:6] = 2
    im2 = PanopticImage(gt2, pred, gt_info(gt2, {1: 1, 2: 1}, crowd={2}), pred_info({5: 1}))
    s2 = assert_like_reference(tmp_path / "crowd", [im2])
    assert (s2.tp[PERSON], s2.fn[PERSON], s2.iou_sum[PERSON]) == (1, 0, 12 / 18)


def test_iou_of_exactly_one_half_is_not_a_match(tmp_path: Path) -> None:
    # gt car: 2 pixels; prediction: those 2 and 2 more -> IoU = 2 / 4 = 0.5 exactly
    gt = np.array([[3, 3, 7, 7]])
    pred = np.array([[4, 4, 4, 4]])
    tie = PanopticImage(gt, pred, gt_info(gt, {3: 2, 7: 9}), pred_info({4: 2}))
    s = assert_like_reference(tmp_path / "tie", [tie])
    assert (s.tp[CAR], s.fp[CAR], s.fn[CAR]) == (0, 1, 1)
    assert (s.fn[SKY], s.fp[SKY]) == (1, 0)
    # one more gt pixel: IoU = 3 / 4 > 0.5 matches
    gt2 = np.array([[3, 3, 3, 7]])
    above = PanopticImage(gt2, pred, gt_info(gt2, {3: 2, 7: 9}), pred_info({4: 2}))
    s2 = assert_like_reference(tmp_path / "above", [above])
    assert (s2.tp[CAR], s2.fp[CAR], s2.fn[CAR], s2.iou_sum[CAR]) == (1, 0, 0, 0.75)


def test_unmatched_prediction_mostly_on_void_or_same_class_crowd_is_ignored(
        tmp_path: Path) -> None:
    gt = np.zeros((4, 6), np.int64)
    gt[:, :3] = 8  # a person crowd region
    gt[:2, 3:] = 9  # road; rows 2-3 of columns 3-5 are VOID
    pred = np.zeros_like(gt)
    pred[:, 0] = 11  # person inside the crowd: ignored
    pred[:, 1] = 12  # car inside the person crowd: a FP (the crowd is of another class)
    pred[2:, 3:5] = 13  # car, 4 pixels all on VOID: ignored
    pred[1:3, 5] = 14  # car, 1 of 2 pixels on VOID: exactly half, so a FP
    im = PanopticImage(gt, pred, gt_info(gt, {8: 1, 9: 7}, crowd={8}),
                       pred_info({11: 1, 12: 2, 13: 2, 14: 2}))
    s = assert_like_reference(tmp_path, [im])
    assert (s.fp[PERSON], s.fn[PERSON], s.tp[PERSON]) == (0, 0, 0)  # crowd is never a FN
    assert s.fp[CAR] == 2
    assert (s.fn[ROAD], s.fp[ROAD]) == (1, 0)


def test_only_the_last_crowd_region_of_a_category_absorbs(tmp_path: Path) -> None:
    gt = np.array([[1, 1, 2, 2]])
    pred = np.array([[5, 5, 6, 6]])
    im = PanopticImage(gt, pred, gt_info(gt, {1: 1, 2: 1}, crowd={1, 2}),
                       pred_info({5: 1, 6: 1}))
    s = assert_like_reference(tmp_path, [im])
    assert s.fp[PERSON] == 1  # the prediction on the first crowd region is a FP


def test_categories_with_only_fp_count_and_empty_ones_are_nan(tmp_path: Path) -> None:
    gt = np.array([[1, 1, 1, 2, 2, 2]])
    pred = np.array([[5, 5, 5, 6, 6, 6]])
    im = PanopticImage(gt, pred, gt_info(gt, {1: 1, 2: 7}), pred_info({5: 1, 6: 2}))
    s = assert_like_reference(tmp_path, [im])
    r = s.result()
    rows = {row["name"]: row for row in r.per_class()}
    assert (rows["car"]["pq"], rows["car"]["sq"], rows["car"]["rq"]) == (0.0, 0.0, 0.0)
    assert rows["car"]["fp"] == 1 and rows["road"]["fn"] == 1
    assert rows["sky"]["pq"] is None and math.isnan(r.class_pq[SKY])
    assert (r.all.n, r.things.n, r.stuff.n) == (3, 2, 1)
    assert r.things.pq == pytest.approx((1.0 + 0.0) / 2)


def test_ground_truth_area_comes_from_the_table(tmp_path: Path) -> None:
    gt = np.array([[1, 1, 1, 0]])
    pred = np.array([[5, 5, 5, 0]])
    im = PanopticImage(gt, pred, gt_info(gt, {1: 1}, area={1: 5}), pred_info({5: 1}))
    s = assert_like_reference(tmp_path, [im])
    assert s.iou_sum[PERSON] == 3 / 5  # union = 3 + 5 - 3
    im.gt_segments[0]["area"] = 2  # smaller than its pixels: an error, not an IoU above 1
    with pytest.raises(DataError, match=r"segment 1 has area 2 in the JSON but 3 pixels"):
        stats_of([im])


def test_nothing_to_score_is_nan_with_a_warning(caplog) -> None:
    empty = np.zeros((2, 2), np.int64)
    with caplog.at_level(logging.WARNING, logger="segeval"):
        r = panoptic_quality(empty, empty, CATEGORIES, {}, {})
    assert math.isnan(r.pq) and r.all.n == 0 and math.isnan(r.stuff.sq)
    assert "undefined" in caplog.text
    assert r.to_dict()["metrics"]["pq"] is None


# --------------------------------------------------------------------------- random sets


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 4))
def test_random_sets_match_the_reference(tmp_path_factory, seed: int, n: int) -> None:
    rng = np.random.default_rng(seed)
    images = [random_image(rng) for _ in range(n)]
    assert_like_reference(tmp_path_factory.mktemp("ref"), images)


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 8), shards=st.integers(1, 4))
def test_merging_is_exact_and_independent_of_order_and_split(seed: int, n: int,
                                                             shards: int) -> None:
    rng = np.random.default_rng(seed)
    images = [random_image(rng) for _ in range(n)]
    at_once = stats_of(images)
    per_image = [stats_of([im]) for im in images]
    random.Random(seed).shuffle(per_image)
    parts = [PanopticStats(CATEGORIES) for _ in range(shards)]
    for k, s in enumerate(per_image):
        parts[k % shards] += s
    merged = parts[-1]
    for p in reversed(parts[:-1]):
        merged = p + merged
    assert merged == at_once
    # the IoU sums are the correctly rounded sums of every matched IoU, bit for bit
    assert at_once.iou_sum.tolist() == fsum_ious(images)
    assert merged.result().to_dict() == at_once.result().to_dict()


def test_iou_sums_are_exact_where_float_addition_is_not() -> None:
    # 1 + 2^-53 + 2^-53 ... : adding floats in order loses every small term
    cats = [{"id": 1, "name": "a", "isthing": 1}]
    s = PanopticStats(cats)
    fixed = 1 << panoptic.FIXED_BITS
    one = np.zeros((5, 1), np.int64)
    one[panoptic.IOU_HI, 0], one[panoptic.IOU_LO, 0] = divmod(fixed, 1 << 26)
    tiny = np.zeros((5, 1), np.int64)
    tiny[panoptic.IOU_LO, 0] = 1
    s.add_counts(one)
    for _ in range(4):
        s.add_counts(tiny)
    assert s.iou_sum[0] == math.fsum([1.0] + [2.0**-53] * 4) == 1.0 + 2.0**-51
    assert 1.0 + 2.0**-53 + 2.0**-53 + 2.0**-53 + 2.0**-53 == 1.0


def test_large_ids_and_many_segments_take_the_general_path() -> None:
    rng = np.random.default_rng(5)
    for _ in range(20):
        im = random_image(rng)
        base = stats_of([im])
        shift = 1 << 30  # beyond the 2^24 lookup table
        big = PanopticImage(
            np.where(im.gt > 0, im.gt + shift, 0), np.where(im.pred > 0, im.pred + shift, 0),
            [dict(s, id=s["id"] + shift) for s in im.gt_segments],
            [dict(s, id=s["id"] + shift) for s in im.pred_segments])
        assert stats_of([big]) == base
    # 300 segments (more than the uint8 fast path holds), one pixel each, all matched
    ids = np.arange(1, 301).reshape(15, 20)
    cats = {int(i): 1 for i in ids.ravel()}
    s = PanopticStats(CATEGORIES).update(ids, ids, cats, gt_info(ids, cats))
    assert (s.tp[PERSON], s.fp[PERSON], s.fn[PERSON], s.iou_sum[PERSON]) == (300, 0, 0, 300.0)


# --------------------------------------------------------------------------- array API


def test_semantic_instance_pairs_equal_id_maps() -> None:
    sem = np.array([[1, 1, 2, 2], [1, 1, 7, 7], [255, 9, 9, 9]])
    inst = np.array([[3, 3, 4, 4], [5, 5, 0, 1], [0, 0, 0, 0]])
    # things: (1,3), (2,4), (1,5); stuff road and sky whatever the instance ids
    ids = np.array([[10, 10, 20, 20], [30, 30, 40, 40], [0, 50, 50, 50]])
    table = {10: 1, 20: 2, 30: 1, 40: 7, 50: 9}
    psem = np.array([[1, 1, 1, 2], [1, 1, 7, 7], [9, 9, 9, 9]])
    pinst = np.array([[1, 1, 1, 2], [1, 1, 0, 0], [0, 0, 0, 0]])
    pids = np.array([[1, 1, 1, 2], [1, 1, 3, 3], [4, 4, 4, 4]])
    ptable = {1: 1, 2: 2, 3: 7, 4: 9}
    by_ids = panoptic_quality(pids, ids, CATEGORIES, ptable, table)
    by_pairs = panoptic_quality((psem, pinst), (sem, inst), CATEGORIES)
    assert by_pairs.stats == by_ids.stats
    assert by_pairs.to_dict() == by_ids.to_dict()
    # a batch is the sum of its images
    batch = panoptic_quality((np.stack([psem, psem]), np.stack([pinst, pinst])),
                             (np.stack([sem, sem]), np.stack([inst, inst])), CATEGORIES)
    assert batch.stats == by_ids.stats + by_ids.stats
    batch_ids = panoptic_quality(np.stack([pids, pids]), np.stack([ids, ids]), CATEGORIES,
                                 [ptable, ptable], [table, table])
    assert batch_ids.stats == batch.stats


def test_crowd_instance_marks_crowd_regions() -> None:
    sem = np.array([[1, 1, 1, 1]])
    gt_inst = np.array([[0, 0, 0, 0]])
    pred_inst = np.array([[1, 1, 1, 1]])
    plain = panoptic_quality((sem, pred_inst), (sem, gt_inst), CATEGORIES)
    crowd = panoptic_quality((sem, pred_inst), (sem, gt_inst), CATEGORIES, crowd_instance=0)
    assert (plain.stats.tp[PERSON], crowd.stats.tp[PERSON], crowd.stats.fp[PERSON]) == (1, 0, 0)


def test_array_errors_name_the_input() -> None:
    gt = np.array([[1, 1], [2, 2]])
    good = {1: 1, 2: 7}
    with pytest.raises(DataError, match=r"pred: segment id 9 is in the PNG but not in the "
                                        r"predicted segments_info"):
        panoptic_quality(np.array([[1, 1], [9, 2]]), gt, CATEGORIES, good, good)
    with pytest.raises(DataError, match=r"gt: segment id 4 is in the PNG but not in the "
                                        r"ground-truth"):
        panoptic_quality(gt, np.array([[1, 4], [2, 2]]), CATEGORIES, good, good)
    with pytest.raises(DataError, match=r"pred: segment ids \[3\] are in the predicted "
                                        r"segments_info but not in the PNG"):
        panoptic_quality(gt, gt, CATEGORIES, {**good, 3: 1}, good)
    with pytest.raises(DataError, match=r"pred: segment 2 has unknown category_id 5"):
        panoptic_quality(gt, gt, CATEGORIES, {1: 1, 2: 5}, good)
    with pytest.raises(DataError, match=r"gt: segment id 2 appears twice"):
        panoptic_quality(gt, gt, CATEGORIES, good, pred_info(good) + pred_info({2: 7}))
    with pytest.raises(DataError, match=r"gt: segment 1 has area nan \(expected a pixel count"):
        panoptic_quality(gt, gt, CATEGORIES, good, [{"id": 1, "category_id": 1,
                                                     "area": float("nan")}, {"id": 2,
                                                                             "category_id": 7}])
    with pytest.raises(DataError, match=r"segment id '1' is not a 64-bit integer"):
        panoptic_quality(gt, gt, CATEGORIES, {"1": 1}, good)
    with pytest.raises(DataError, match=r"segment id 0 is VOID"):
        panoptic_quality(gt, gt, CATEGORIES, {0: 1, **good}, good)
    with pytest.raises(SizeMismatchError, match=r"pred: shape \(1, 4\) does not match"):
        panoptic_quality(gt.reshape(1, 4), gt, CATEGORIES, good, good)
    with pytest.raises(LabelError, match=r"category id 3 is not a category"):
        panoptic_quality((np.full((2, 2), 3), gt), (gt, gt), CATEGORIES)
    with pytest.raises(DataError, match=r"category id 1 appears twice"):
        PanopticStats([*CATEGORIES, CATEGORIES[0]])
    with pytest.raises(ValueError, match="different category tables"):
        PanopticStats(CATEGORIES) + PanopticStats(CATEGORIES[:2])
    s = PanopticStats(CATEGORIES)
    with pytest.raises(DataError):
        s.update(np.array([[1, 1], [9, 2]]), gt, good, good)
    assert s == PanopticStats(CATEGORIES)  # nothing added on error


def test_result_document_and_frame() -> None:
    rng = np.random.default_rng(3)
    images = [random_image(rng) for _ in range(6)]
    r = stats_of(images).result(format="test", num_images=6)
    doc = r.to_dict()
    assert doc["task"] == "panoptic" and doc["num_images"] == 6
    assert set(doc["metrics"]) >= {"pq", "sq", "rq", "pq_things", "sq_things", "rq_things",
                                   "pq_stuff", "sq_stuff", "rq_stuff", "n", "n_things",
                                   "n_stuff"}
    assert [row["id"] for row in doc["per_class"]] == [c["id"] for c in CATEGORIES]
    assert set(doc["per_class"][0]) >= {"id", "name", "isthing", "pq", "sq", "rq", "tp", "fp",
                                        "fn"}
    frame = r.to_frame()
    assert list(frame.index) == [1, 2, 7, 9]
    assert frame.loc[1, "tp"] == r.stats.tp[PERSON]


@pytest.mark.parametrize("dtype", [np.uint32, np.int64, np.uint16, np.int32])
def test_every_counting_kernel_gives_the_same_table(dtype) -> None:
    rng = np.random.default_rng(11)
    for _ in range(15):
        im = random_image(rng)
        if dtype in (np.uint16, np.int32):  # small ids that fit the dtype
            remap = {s["id"]: k + 1 for k, s in enumerate(im.gt_segments)}
            premap = {s["id"]: k + 1 for k, s in enumerate(im.pred_segments)}
            gt = np.array([[remap.get(v, 0) for v in row] for row in im.gt.tolist()], dtype)
            pred = np.array([[premap.get(v, 0) for v in row] for row in im.pred.tolist()], dtype)
            gt_ids = np.array(list(remap.values()), np.int64)
            pred_ids = np.array(list(premap.values()), np.int64)
        else:
            gt, pred = im.gt.astype(dtype), im.pred.astype(dtype)
            gt_ids = np.array([s["id"] for s in im.gt_segments], np.int64)
            pred_ids = np.array([s["id"] for s in im.pred_segments], np.int64)
        gt_ids, pred_ids = gt_ids[:-1], pred_ids[1:]  # leave ids out: the "unknown" row/column
        tables = [panoptic.intersections(pred, gt, pred_ids, gt_ids, kernel=k)
                  for k in ("compiled", "table", "general", "auto")]
        for t in tables[1:]:
            np.testing.assert_array_equal(t, tables[0])
        assert tables[0].sum() == gt.size
    # ids beyond the tables' range are unknown ids; negative ids take the general path
    for odd in (1 << 30, 1 << 24, -5):
        big = np.array([[odd, 1], [1, 0]], np.int64)
        ids = np.array([1], np.int64)
        tables = [panoptic.intersections(big, big, ids, ids, kernel=k)
                  for k in ("compiled", "table", "general")]
        for t in tables:
            np.testing.assert_array_equal(t, [[1, 0, 0], [0, 2, 0], [0, 0, 1]])
    with pytest.raises(ValueError, match="'kernel' parameter"):
        panoptic.intersections(big, big, ids, ids, kernel="fast")


def test_threads_do_not_share_lookup_tables() -> None:
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(12)
    images = [random_image(rng) for _ in range(40)]
    for kernel in ("table", "compiled"):
        def one(im, kernel=kernel):
            gt_ids = np.array([s["id"] for s in im.gt_segments], np.int64)
            pred_ids = np.array([s["id"] for s in im.pred_segments], np.int64)
            return [panoptic.intersections(im.pred, im.gt, pred_ids, gt_ids, kernel=kernel)
                    for _ in range(20)]
        with ThreadPoolExecutor(4) as pool:
            results = list(pool.map(one, images))
        for im, tables in zip(images, results, strict=True):
            gt_ids = np.array([s["id"] for s in im.gt_segments], np.int64)
            pred_ids = np.array([s["id"] for s in im.pred_segments], np.int64)
            want = panoptic.intersections(im.pred, im.gt, pred_ids, gt_ids, kernel="general")
            for t in tables:
                np.testing.assert_array_equal(t, want)
