"""Bootstrap over images: confidence intervals and paired comparisons of submissions.

Images are resampled with replacement (``n`` draws from ``n`` images); a resample is a vector
of integer weights ``w`` (how often each image was drawn), and the metric of the resample is the
task's metric of the weighted sum of the per-image statistics rows, ``w @ rows``: the metric is
recomputed from summed statistics, never averaged per image. The same seeded resamples are used
for every submission, so two submissions' replicates are *paired* (same images each time), and a
submission's interval does not change when another submission is added.

* The interval is the percentile bootstrap interval at ``level`` (default 95 %) of the
  replicates (NaN replicates, from a resample with nothing to score, are left out).
* The paired comparison of a submission with the one ranked just above it is the fraction of
  resamples in which it scores strictly higher.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np

#: What ``ci.method`` says for the entries of a task with intervals.
METHOD = "percentile bootstrap over images"
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
