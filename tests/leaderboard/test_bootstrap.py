"""Bootstrap over images: seeded resampling, intervals checked against scipy.stats.bootstrap,
intervals that contain the estimate and shrink with more images, paired comparisons."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from segeval.leaderboard import bootstrap


def ratio(sums: np.ndarray) -> np.ndarray:
    """A ratio-of-sums statistic, like pixel accuracy: column 0 / column 1."""
    return sums[:, 0] / sums[:, 1]


def per_image_rows(rng: np.random.Generator, n: int, accuracy: float) -> np.ndarray:
    pixels = rng.integers(500, 2000, n)
    correct = rng.binomial(pixels, rng.beta(20 * accuracy, 20 * (1 - accuracy), n))
    return np.column_stack([correct, pixels]).astype(np.int64)


def test_weights_are_resamples_and_seeded() -> None:
    blocks = list(bootstrap.resample_weights(7, 600, seed=5))
    assert [b.shape for b in blocks] == [(250, 7), (250, 7), (100, 7)]
    w = np.vstack(blocks)
    assert np.all(w.sum(axis=1) == 7) and np.all(w >= 0) and np.all(w == np.round(w))
    assert np.array_equal(w, np.vstack(list(bootstrap.resample_weights(7, 600, seed=5))))
    assert not np.array_equal(w, np.vstack(list(bootstrap.resample_weights(7, 600, seed=6))))
    # each image is drawn with probability 1/n: mean weight 1
    assert w.mean(axis=0) == pytest.approx(np.ones(7), abs=0.1)


def test_interval_agrees_with_scipy_bootstrap() -> None:
    rng = np.random.default_rng(0)
    rows = per_image_rows(rng, 60, 0.8)
    reps = bootstrap.replicate_matrix([rows], ratio, resamples=4000, seed=1)[:, 0]
    low, high = bootstrap.percentile_interval(reps, 0.95)

    def statistic(idx: np.ndarray, axis: int = -1) -> np.ndarray:
        picked = rows[idx.astype(int)]
        return picked[..., 0].sum(axis=-1) / picked[..., 1].sum(axis=-1)

    ref = stats.bootstrap((np.arange(len(rows)),), statistic, vectorized=True, n_resamples=4000,
                          confidence_level=0.95, method="percentile", random_state=2)
    width = high - low
    assert ref.confidence_interval.low == pytest.approx(low, abs=0.1 * width)
    assert ref.confidence_interval.high == pytest.approx(high, abs=0.1 * width)
    assert np.std(reps) == pytest.approx(ref.standard_error, rel=0.1)


def test_interval_contains_the_estimate_and_shrinks_with_more_images() -> None:
    rng = np.random.default_rng(1)
    widths = []
    for n in (20, 80, 320):
        rows = per_image_rows(rng, n, 0.7)
        point = ratio(rows.sum(axis=0, keepdims=True).astype(float))[0]
        reps = bootstrap.replicate_matrix([rows], ratio, resamples=1000, seed=0)[:, 0]
        low, high = bootstrap.percentile_interval(reps, 0.95)
        assert low < point < high
        widths.append(high - low)
    assert widths[0] > 1.5 * widths[1] > 2.25 * widths[2]


def test_paired_comparison() -> None:
    rng = np.random.default_rng(2)
    strong = per_image_rows(rng, 40, 0.8)
    weak = strong.copy()
    weak[:, 0] = weak[:, 0] * 0.9  # worse on every image
    reps = bootstrap.replicate_matrix([strong, weak, strong], ratio, resamples=500, seed=0)
    assert bootstrap.beats_fraction(reps[:, 1], reps[:, 0]) == 0.0
    assert bootstrap.beats_fraction(reps[:, 0], reps[:, 1]) == 1.0
    assert bootstrap.beats_fraction(reps[:, 2], reps[:, 0]) == 0.0  # a tie never beats
    # two submissions of equal quality with independent errors: a coin flip
    a, b = per_image_rows(rng, 200, 0.7), per_image_rows(rng, 200, 0.7)
    b[:, 1] = a[:, 1]
    b[:, 0] = rng.binomial(a[:, 1], a[:, 0] / a[:, 1])
    reps = bootstrap.replicate_matrix([a, b], ratio, resamples=1000, seed=0)
    assert 0.0 < bootstrap.beats_fraction(reps[:, 1], reps[:, 0]) < 1.0


def test_replicates_do_not_depend_on_the_other_submissions() -> None:
    rng = np.random.default_rng(4)
    a, b = per_image_rows(rng, 30, 0.6), per_image_rows(rng, 30, 0.9)
    alone = bootstrap.replicate_matrix([a], ratio, resamples=300, seed=0)
    both = bootstrap.replicate_matrix([b, a], ratio, resamples=300, seed=0)
    assert np.array_equal(alone[:, 0], both[:, 1])


def test_nan_replicates_are_left_out() -> None:
    assert bootstrap.percentile_interval(np.array([np.nan, 0.5, 0.5])) == (0.5, 0.5)
    low, high = bootstrap.percentile_interval(np.array([np.nan]))
    assert np.isnan(low) and np.isnan(high)


def test_stacking_submissions_in_groups_changes_nothing(monkeypatch) -> None:
    rng = np.random.default_rng(5)
    rows = [per_image_rows(rng, 40, q) for q in (0.5, 0.6, 0.7, 0.8, 0.9)]
    rows[2] = np.column_stack([rows[2], rows[2][:, 1]])  # a wider row: groups need not match

    def direct(r: np.ndarray) -> np.ndarray:  # the definition: w @ rows, per submission
        return np.concatenate([ratio(w @ r.astype(np.float64))
                               for w in bootstrap.resample_weights(40, 600, 1)])

    want = np.column_stack([direct(r) for r in rows])
    assert np.array_equal(bootstrap.replicate_matrix(rows, ratio, resamples=600, seed=1), want)
    monkeypatch.setattr(bootstrap, "_GROUP_BYTES", 8 * 40 * 5)  # at most 5 columns a group
    assert bootstrap._groups([r.shape[1] for r in rows], 40) == [[0, 1], [2, 3], [4]]
    assert np.array_equal(bootstrap.replicate_matrix(rows, ratio, resamples=600, seed=1), want)


def _miou_of_matrices(matrices: np.ndarray) -> np.ndarray:
    """mIoU as the VOC devkit defines it (TP / (TP + FP + FN) per class, classes absent from
    ground truth and prediction left out), written here from the definition, for ``(..., C, C)``
    summed confusion matrices (rows = ground truth)."""
    tp = np.diagonal(matrices, axis1=-2, axis2=-1).astype(np.float64)
    union = matrices.sum(axis=-1) + matrices.sum(axis=-2) - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
    return np.nanmean(iou, axis=-1)


def _miou_case(seed: int, n: int, c: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` images' confusion matrices ``(n, C, C)`` (some classes rare) and their semantic
    leaderboard rows ``(n, 3C)``: true positives, ground-truth and predicted pixels."""
    rng = np.random.default_rng(seed)
    matrices = np.zeros((n, c, c), np.int64)
    for i in range(n):
        present = rng.random(c) < np.linspace(0.95, 0.3, c)  # later classes are rarer
        present[0] = True
        for g in np.flatnonzero(present):
            pixels = int(rng.integers(50, 400))
            share = rng.dirichlet(np.where(np.arange(c) == g, 8.0, 0.3))
            matrices[i, g] = rng.multinomial(pixels, share)
    rows = np.concatenate([np.diagonal(matrices, axis1=1, axis2=2), matrices.sum(axis=2),
                           matrices.sum(axis=1)], axis=1)
    return matrices, rows


@pytest.mark.parametrize("case", ["ratio", "miou-8", "miou-15"])
def test_bca_equals_scipy_bootstrap_on_the_same_replicates(case: str) -> None:
    """scipy.stats.bootstrap(method="BCa") runs the metric on resampled image indices; our
    BCa, given scipy's own replicates, recomputes the estimate and the jackknife from the
    summed statistics (the leaderboard's path) and must give scipy's interval."""
    from segeval.leaderboard.tasks import SemanticTask

    if case == "ratio":
        rows = per_image_rows(np.random.default_rng(7), 25, 0.75)

        def direct(idx: np.ndarray, axis: int = -1) -> np.ndarray:
            picked = rows[idx.astype(int)]
            return picked[..., 0].sum(axis=-1) / picked[..., 1].sum(axis=-1)

        ours = ratio
    else:
        n = int(case.split("-")[1])
        matrices, rows = _miou_case(n, n, 5)

        def direct(idx: np.ndarray, axis: int = -1) -> np.ndarray:
            return _miou_of_matrices(matrices[idx.astype(int)].sum(axis=-3))

        class Ref:
            num_classes = 5

        def ours(sums: np.ndarray) -> np.ndarray:
            return SemanticTask("nan").replicates(Ref(), sums, "miou")

    for level in (0.9, 0.95):
        ref = stats.bootstrap((np.arange(len(rows)),), direct, vectorized=True,
                              n_resamples=3000, confidence_level=level, method="BCa",
                              rng=np.random.default_rng(3))
        estimate = float(ours(rows.sum(axis=0, keepdims=True).astype(np.float64))[0])
        assert estimate == pytest.approx(float(direct(np.arange(len(rows)))), rel=1e-12)
        low, high = bootstrap.bca_interval(ref.bootstrap_distribution, estimate,
                                           bootstrap.jackknife(rows, ours), level)
        assert low == pytest.approx(ref.confidence_interval.low, rel=1e-9)
        assert high == pytest.approx(ref.confidence_interval.high, rel=1e-9)
        assert low <= estimate <= high


def test_bca_on_the_leaderboard_path() -> None:
    """mIoU of few images with rare classes (resamples that miss a rare class drop it from the
    mean): the estimate and jackknife from summed rows, BCa containing the estimate, and
    :func:`bootstrap.interval` choosing the method."""
    matrices, rows = _miou_case(11, 10, 6)

    reps = bootstrap.replicate_matrix([rows], lambda s: _miou_from_counts(s, 6),
                                      resamples=2000, seed=0)[:, 0]
    estimate = float(_miou_of_matrices(matrices.sum(axis=0)))
    assert _miou_from_counts(rows.sum(axis=0, keepdims=True).astype(float), 6)[0] == \
        pytest.approx(estimate, rel=1e-12)
    jack = bootstrap.jackknife(rows, lambda s: _miou_from_counts(s, 6))
    low, high = bootstrap.bca_interval(reps, estimate, jack)
    assert low <= estimate <= high
    assert bootstrap.interval("bca", reps, estimate, jack) == (low, high)
    assert bootstrap.interval("percentile", reps, estimate, None) == \
        bootstrap.percentile_interval(reps)


def _miou_from_counts(sums: np.ndarray, c: int) -> np.ndarray:
    """mIoU from summed ``(TP, GT, PR)`` rows: IoU = TP / (GT + PR - TP), the VOC definition."""
    tp, gt, pr = sums[:, :c], sums[:, c:2 * c], sums[:, 2 * c:]
    union = gt + pr - tp
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = np.where(union > 0, tp / np.where(union > 0, union, 1), np.nan)
    return np.nanmean(iou, axis=1)


def test_bca_edge_cases() -> None:
    nan = float("nan")
    assert all(np.isnan(bootstrap.bca_interval(np.array([nan]), 0.5, np.array([0.5, 0.5]))))
    # the estimate outside every replicate: BCa undefined (scipy: NaN too)
    assert all(np.isnan(bootstrap.bca_interval(np.array([0.1, 0.2]), 0.9, np.array([0.8, 0.9]))))
    # every jackknife value equal: no acceleration, the bias-corrected percentile interval
    reps = np.linspace(0.0, 1.0, 101)
    assert bootstrap.bca_interval(reps, 0.5, np.array([0.5, 0.5, 0.5]), 0.9) == \
        pytest.approx((0.05, 0.95))
    with pytest.raises(ValueError, match="unknown interval method"):
        bootstrap.interval("basic", reps, 0.5, None)
