"""The batch-axis panoptic averages (used by the leaderboard's bootstrap) against the reference's
scalar arithmetic, bit for bit, and against PanopticStats on the same counts."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from segeval.core import panoptic
from segeval.core.panoptic import PanopticStats


def reference_average(tp, fp, fn, iou, isthing, select):
    """panopticapi's ``PQStat.pq_average`` arithmetic, written out (None: its ZeroDivision)."""
    n, pq, sq, rq = 0, 0.0, 0.0, 0.0
    for k in range(len(tp)):
        if select is not None and isthing[k] != select:
            continue
        t, f, m = int(tp[k]), int(fp[k]), int(fn[k])
        if t + f + m == 0:
            continue
        n += 1
        pq_c = float(iou[k]) / (t + 0.5 * f + 0.5 * m)
        sq_c = float(iou[k]) / t if t != 0 else 0
        rq_c = t / (t + 0.5 * f + 0.5 * m)
        pq += pq_c
        sq += sq_c
        rq += rq_c
    if n == 0:
        return None
    return pq / n, sq / n, rq / n, n


@st.composite
def count_arrays(draw):
    """``(B, 5, C)`` counts built like image_counts' (IoU sums as two words of k 2^-53)."""
    c = draw(st.integers(1, 20))  # > 8: a pairwise sum would differ from the reference
    b = draw(st.integers(1, 4))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    zero = rng.random((b, c)) < 0.3
    tp = np.where(zero, 0, rng.integers(0, 30, (b, c)))
    fp = np.where(rng.random((b, c)) < 0.4, 0, rng.integers(0, 20, (b, c)))
    fn = np.where(rng.random((b, c)) < 0.4, 0, rng.integers(0, 20, (b, c)))
    fixed = np.zeros((b, c), np.int64)
    for i in range(b):
        for k in range(c):
            ious = rng.uniform(0.5, 1.0, int(tp[i, k]))
            fixed[i, k] = int(np.ldexp(ious, panoptic.FIXED_BITS).astype(np.int64).sum())
    counts = np.zeros((b, 5, c), np.int64)
    counts[:, panoptic.TP], counts[:, panoptic.FP], counts[:, panoptic.FN] = tp, fp, fn
    counts[:, panoptic.IOU_HI] = fixed >> 26
    counts[:, panoptic.IOU_LO] = fixed & ((1 << 26) - 1)
    isthing = draw(st.lists(st.booleans(), min_size=c, max_size=c))
    return counts, isthing


@settings(max_examples=150, deadline=None)
@given(count_arrays())
def test_batch_averages_equal_the_reference_bit_for_bit(data) -> None:
    counts, isthing = data
    cats = [{"id": k + 1, "name": str(k), "isthing": int(t)} for k, t in enumerate(isthing)]
    as_float = counts.astype(np.float64)
    iou_batch = panoptic.iou_sums_of(as_float)
    for select in (None, True, False):
        keep = None if select is None else [t == select for t in isthing]
        pq, sq, rq, n = panoptic.averages_from_counts(
            as_float[:, panoptic.TP], as_float[:, panoptic.FP], as_float[:, panoptic.FN],
            iou_batch, keep)
        assert pq.shape == sq.shape == rq.shape == n.shape == (len(counts),)
        for b, one in enumerate(counts):
            stats = PanopticStats(cats, counts=one)
            assert iou_batch[b].tolist() == stats.iou_sum.tolist()
            want = reference_average(stats.tp, stats.fp, stats.fn, stats.iou_sum, isthing, select)
            avg = panoptic.average(stats, select)
            if want is None:
                assert n[b] == 0 and math.isnan(pq[b]) and math.isnan(avg.pq)
                continue
            # == on floats: the same operations in the same order as the reference
            assert (pq[b], sq[b], rq[b], n[b]) == want
            assert (avg.pq, avg.sq, avg.rq, avg.n) == want


def test_per_category_scores_keep_nan_for_empty_categories() -> None:
    pq, sq, rq, counted = panoptic.scores_from_counts([[2, 0, 0]], [[0, 1, 0]], [[1, 0, 0]],
                                                      [[1.5, 0.0, 0.0]])
    assert counted.tolist() == [[True, True, False]]
    assert pq[0, 0] == 1.5 / 2.5 and sq[0, 0] == 0.75 and rq[0, 0] == 2 / 2.5
    assert (pq[0, 1], sq[0, 1], rq[0, 1]) == (0.0, 0.0, 0.0)
    assert np.isnan([pq[0, 2], sq[0, 2], rq[0, 2]]).all()
