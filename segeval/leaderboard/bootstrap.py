"""Bootstrap over images: confidence intervals and paired comparisons of submissions.

Images are resampled with replacement (``n`` draws from ``n`` images); a resample is a vector
of integer weights ``w`` (how often each image was drawn), and the metric of the resample is the
task's metric of the weighted sum of the per-image statistics rows, ``w @ rows``: the metric is
recomputed from summed statistics, never averaged per image. The same seeded resamples are used
for every submission, so two submissions' replicates are *paired* (same images each time), and a
submission's interval does not change when another submission is added.

* The interval at ``level`` (default 95 %) is, by default, the bias-corrected and accelerated
  (BCa) bootstrap interval as :func:`scipy.stats.bootstrap` defines it (``method="BCa"``;
  Efron & Tibshirani 1993, 14.3 and eq. 15.36): the bias correction ``z0`` from the fraction
  of replicates below the estimate, the acceleration ``a`` from the jackknife over images
  (each image left out once, the metric recomputed from the summed statistics less that
  image's row), and the replicates' quantiles at the adjusted levels. With ``ci="percentile"``
  it is the plain percentile interval of the replicates, which for a biased statistic (mIoU
  of few images: a resample that misses a rare class averages other classes) need not
  contain the estimate. NaN replicates, from a resample with nothing to score, are left out.
* The paired comparison of a submission with the one ranked just above it is the fraction of
  resamples in which it scores strictly higher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

#: The interval methods (``--ci``) and what an entry's ``ci.method`` says for each.
METHODS = {"bca": "BCa bootstrap over images (bias-corrected and accelerated, as "
                  "scipy.stats.bootstrap)",
           "percentile": "percentile bootstrap over images"}
DEFAULT_METHOD = "bca"
#: What ``ci.method`` says for the entries of a task with intervals, by default.
METHOD = METHODS[DEFAULT_METHOD]
DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95
_BLOCK = 250


def resample_weights(n: int, resamples: int, seed: int,
                     block: int = _BLOCK) -> Iterator[np.ndarray]:
    """Blocks of resampling weights, ``(b, n)`` float64 with rows summing to ``n``.

    Deterministic for a given ``(n, resamples, seed)`` whatever the submissions.
    """
    rng = np.random.default_rng(seed)
    done = 0
    while done < resamples:
        b = min(block, resamples - done)
        draws = rng.integers(0, n, size=(b, n))
        flat = (draws + n * np.arange(b)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def replicate_matrix(
    rows: list[np.ndarray],
    statistic: Callable[[np.ndarray], np.ndarray],
    *,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> np.ndarray:
    """``(resamples, S)``: the statistic of each resample for each of ``S`` submissions.

    ``rows[s]`` is submission ``s``'s ``(n, K)`` per-image statistics (the same ``n`` images in
    the same order for all); ``statistic`` maps ``(b, K)`` summed rows to ``(b,)`` values.
    Submissions are stacked side by side (in groups of at most :data:`_GROUP_BYTES`) so that
    each block of resamples is one matrix product for the group: the sums are integers in
    float64, exact below ``2^53``, so the grouping does not change them.
    """
    if not rows:
        return np.empty((resamples, 0))
    n = rows[0].shape[0]
    out = np.empty((resamples, len(rows)))
    for group in _groups([r.shape[1] for r in rows], n):
        stacked = np.concatenate([rows[s].astype(np.float64) for s in group], axis=1)
        edges = np.cumsum([0] + [rows[s].shape[1] for s in group])
        start = 0
        for weights in resample_weights(n, resamples, seed):
            b = weights.shape[0]
            sums = weights @ stacked
            for k, s in enumerate(group):
                out[start:start + b, s] = statistic(sums[:, edges[k]:edges[k + 1]])
            start += b
    return out


#: Largest float64 stack of per-image rows multiplied at once by :func:`replicate_matrix`.
_GROUP_BYTES = 64 << 20


def _groups(widths: list[int], n: int) -> list[list[int]]:
    """Consecutive submissions whose stacked ``n x sum(widths)`` float64 rows fit the limit
    (at least one per group)."""
    groups: list[list[int]] = [[]]
    size = 0
    for s, k in enumerate(widths):
        if groups[-1] and size + 8 * n * k > _GROUP_BYTES:
            groups.append([])
            size = 0
        groups[-1].append(s)
        size += 8 * n * k
    return groups


def percentile_interval(replicates: np.ndarray, level: float = DEFAULT_LEVEL
                        ) -> tuple[float, float]:
    """The percentile interval ``(low, high)`` of one submission's replicates (NaN if none)."""
    values = replicates[~np.isnan(replicates)]
    if values.size == 0:
        return float("nan"), float("nan")
    alpha = (1.0 - level) / 2.0
    low, high = np.percentile(values, [100 * alpha, 100 * (1 - alpha)])
    return float(low), float(high)


def beats_fraction(challenger: np.ndarray, incumbent: np.ndarray) -> float:
    """Fraction of paired resamples in which ``challenger`` scores strictly higher."""
    return float(np.mean(challenger > incumbent)) if challenger.size else float("nan")


def jackknife(rows: np.ndarray, statistic: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """``(n,)``: the statistic with each image left out once, from the summed statistics
    (``rows.sum(0) - rows[i]``); ``rows`` is one submission's ``(n, K)`` per-image rows."""
    rows = np.asarray(rows, dtype=np.float64)
    return np.asarray(statistic(rows.sum(axis=0)[None, :] - rows), dtype=np.float64)


def bca_interval(replicates: np.ndarray, estimate: float, jackknife_values: np.ndarray,
                 level: float = DEFAULT_LEVEL) -> tuple[float, float]:
    """The BCa interval ``(low, high)`` of one submission, as ``scipy.stats.bootstrap(...,
    method="BCa")`` computes it from the same replicates.

    ``estimate`` is the statistic of all images, ``jackknife_values`` the ``(n,)``
    leave-one-out values (:func:`jackknife`). ``z0 = Phi^-1(p)`` where ``p`` is the mean of
    the fractions of replicates ``< estimate`` and ``<= estimate``; ``a = sum(U^3) / (6
    sum(U^2)^1.5)`` with ``U = (n - 1) (mean(jackknife) - jackknife)`` (``a = 0`` when every
    jackknife value is equal, where scipy gives NaN); the bounds are the replicates' linear
    quantiles at ``Phi(z0 + (z0 + z) / (1 - a (z0 + z)))`` for ``z = Phi^-1((1 -+ level) / 2)``.
    NaN replicates are left out; ``(nan, nan)`` when none is left, when the estimate is NaN,
    or when it lies outside every replicate (``p`` 0 or 1: BCa is undefined there).
    """
    from scipy.special import ndtr, ndtri

    values = replicates[~np.isnan(replicates)]
    if values.size == 0 or not np.isfinite(estimate):
        return float("nan"), float("nan")
    p = (np.count_nonzero(values < estimate) + np.count_nonzero(values <= estimate)) / (
        2.0 * values.size)
    if p <= 0.0 or p >= 1.0:
        return float("nan"), float("nan")
    z0 = float(ndtri(p))
    jack = np.asarray(jackknife_values, dtype=np.float64)
    jack = jack[~np.isnan(jack)]
    u = (jack.size - 1) * (jack.mean() - jack) if jack.size else np.zeros(0)
    den = float(np.sum(u ** 2))
    a = float(np.sum(u ** 3)) / (6.0 * den ** 1.5) if den > 0 else 0.0
    alpha = (1.0 - level) / 2.0
    levels = []
    for z in (float(ndtri(alpha)), -float(ndtri(alpha))):
        num = z0 + z
        levels.append(float(ndtr(z0 + num / (1.0 - a * num))))
    low, high = np.quantile(values, levels)
    return float(low), float(high)


def interval(method: str, replicates: np.ndarray, estimate: float,
             jackknife_values: np.ndarray | None, level: float = DEFAULT_LEVEL
             ) -> tuple[float, float]:
    """The interval of ``method`` (``"bca"`` or ``"percentile"``, see :data:`METHODS`)."""
    if method == "percentile":
        return percentile_interval(replicates, level)
    if method == "bca":
        if jackknife_values is None:
            raise ValueError("the BCa interval needs the jackknife values")
        return bca_interval(replicates, estimate, jackknife_values, level)
    raise ValueError(f"unknown interval method {method!r}: one of {', '.join(METHODS)}")
