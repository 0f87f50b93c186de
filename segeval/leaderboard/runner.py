"""Score many submissions against one ground truth, rank them, and say how sure each rank is.

The ground truth is decoded once: workers take chunks of ground-truth images, decode each image
once and score every pending submission's prediction for it, returning per submission the
chunk's mergeable total (exact) and one small statistics row per image (for the bootstrap).
A submission that fails (unsafe or corrupt archive, missing file, wrong size, bad label,
corrupt PNG) is marked failed with its one-line reason; the others go on. The ranking uses the
exact totals (the numbers ``segeval score`` gives); the intervals and the paired comparisons use
the rows (see :mod:`segeval.leaderboard.bootstrap`).

Errors in the ground truth itself (unreadable, bad labels) stop the run: they are the
organiser's, not a submission's.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from segeval.errors import SegevalError, UsageError
from segeval.leaderboard import bootstrap
from segeval.leaderboard.cache import CachedOutcome, ResultCache, cache_key
from segeval.leaderboard.sources import (
    DEFAULT_MAX_BYTES,
    MemberReader,
    Submission,
    SubmissionError,
    discover,
    open_submission,
)

log = logging.getLogger("segeval")

CACHE_NAME = "leaderboard-cache.sqlite"
_U32 = np.iinfo(np.uint32).max


@dataclass
class SubmissionOutcome:
    """One submission's evaluation: ``document`` is ``segeval score``'s JSON (ok only) and
    ``rows`` its ``(images, K)`` per-image statistics (ok only)."""

    name: str
    path: Path
    status: str  # "ok" or "failed"
    error: str | None = None
    document: dict[str, Any] | None = None
    rows: np.ndarray | None = field(default=None, repr=False)
    cached: bool = False


# ---------------------------------------------------------------------- workers


@dataclass(frozen=True)
class _Slim:
    """What a worker needs of a submission (its member list travels per chunk)."""

    name: str
    path: Path
    kind: str

    def display(self, member: str) -> str:
        return f"{self.path}:{member}" if self.kind == "zip" else str(self.path / member)


_Plan = list[tuple[int, list[tuple[str, int, Any] | None]]]  # (submission, member per image)


def _planned(sub: Submission, chosen: Any) -> tuple[str, int, Any] | None:
    """``(member, size, meta)`` of what ``task.pair`` chose for one image: a member name, or
    an object with ``member`` and ``meta`` (what ``score_image`` gets as ``meta=``)."""
    if chosen is None:
        return None
    if isinstance(chosen, str):
        return chosen, sub.members[chosen], None
    return chosen.member, sub.members[chosen.member], chosen.meta


_Chunk = tuple[list[int], dict[int, tuple[Any, np.ndarray]], dict[int, tuple[int, str]]]


def _score_chunk(task: Any, ref: Any, subs: tuple[_Slim, ...],
                 item: tuple[list[int], _Plan]) -> _Chunk:
    """Score a chunk of ground-truth images against every submission in its plan."""
    indices, plan = item
    width = task.row_width(ref)
    totals: dict[int, Any] = {}
    rows: dict[int, np.ndarray] = {}
    failures: dict[int, tuple[int, str]] = {}
    with MemberReader() as reader:
        for j, i in enumerate(indices):
            gt = task.decode_gt(ref, i)
            for s, members in plan:
                if s in failures:
                    continue
                sub, member = subs[s], members[j]
                name = sub.display(member[0]) if member else f"{sub.path} ({ref.names[i]})"
                try:
                    data = None if member is None else reader.read(sub, member[0], member[1])
                    if member is not None and member[2] is not None:
                        row, delta = task.score_image(ref, i, gt, data, name, meta=member[2])
                    else:
                        row, delta = task.score_image(ref, i, gt, data, name)
                except SegevalError as e:
                    failures[s] = (i, str(e))
                    continue
                except Exception as e:  # one broken submission never stops the others
                    failures[s] = (i, f"{name}: cannot be scored ({type(e).__name__}: {e})")
                    continue
                if s not in totals:
                    totals[s] = task.empty_total(ref)
                    rows[s] = np.zeros((len(indices), width), np.int64)
                totals[s] += delta
                rows[s][j] = row
    done = {s: (totals[s], rows[s]) for s in totals if s not in failures}
    return indices, done, failures


def score_submissions(
    task: Any,
    ref: Any,
    subs: Sequence[Submission],
    *,
    jobs: int | None = None,
    progress: Callable[[int], Any] | None = None,
    on_start: Callable[[int], Any] | None = None,
) -> list[SubmissionOutcome]:
    """Score ``subs`` (already listed) against ``ref``; one outcome per submission, in order.

    ``jobs`` worker processes (default all cores); ``on_start(n)`` gets the number of
    ground-truth images to go through and ``progress(k)`` the images done.
    """
    from segeval.engine.local import available_cores, map_items

    if hasattr(task, "score_submission"):  # statistics that are not per-image sums
        return _score_whole(task, ref, subs, jobs=jobs, progress=progress, on_start=on_start)
    outcomes: list[SubmissionOutcome | None] = [None] * len(subs)
    plan: _Plan = []
    for s, sub in enumerate(subs):
        if sub.error is not None:
            outcomes[s] = SubmissionOutcome(sub.name, sub.path, "failed", sub.error)
            continue
        try:
            chosen = task.pair(ref, sub)
        except SubmissionError as e:
            outcomes[s] = SubmissionOutcome(sub.name, sub.path, "failed", str(e))
            continue
        plan.append((s, [_planned(sub, m) for m in chosen]))
    n = len(ref.names)
    if plan and n:
        workers = available_cores() if jobs is None else max(1, int(jobs))
        size = max(1, math.ceil(n / (4 * workers)))
        chunks = [list(range(a, min(a + size, n))) for a in range(0, n, size)]
        items = [(c, [(s, members[c[0]:c[-1] + 1]) for s, members in plan]) for c in chunks]
        slim = tuple(_Slim(sub.name, sub.path, sub.kind) for sub in subs)
        width = task.row_width(ref)
        totals = {s: task.empty_total(ref) for s, _ in plan}
        rows = {s: np.zeros((n, width), np.uint32) for s, _ in plan}
        failed: dict[int, tuple[int, str]] = {}
        if hasattr(task, "prepare"):  # e.g. load compiled kernels before workers are forked
            task.prepare(ref, len(plan))
        if on_start:
            on_start(n)
        func = functools.partial(_score_chunk, task, ref, slim)
        for indices, done, failures in map_items(func, items, jobs=workers):
            for s, (i, message) in failures.items():
                if s not in failed or i < failed[s][0]:
                    failed[s] = (i, message)
            for s, (total, chunk_rows) in done.items():
                if s in failed:
                    continue
                totals[s] += total
                if chunk_rows.size and (chunk_rows.min() < 0 or chunk_rows.max() > _U32) \
                        and rows[s].dtype != np.int64:
                    rows[s] = rows[s].astype(np.int64)
                rows[s][indices[0]:indices[-1] + 1] = chunk_rows
            if progress:
                progress(len(indices))
        for s, _ in plan:
            sub = subs[s]
            if s in failed:
                outcomes[s] = SubmissionOutcome(sub.name, sub.path, "failed", failed[s][1])
            else:
                document = task.result(ref, totals[s]).to_dict()
                outcomes[s] = SubmissionOutcome(sub.name, sub.path, "ok", None, document,
                                                rows[s])
    for s, sub in enumerate(subs):
        if outcomes[s] is None:  # nothing to score: no ground-truth images
            outcomes[s] = SubmissionOutcome(sub.name, sub.path, "failed",
                                            "no ground-truth images to score")
    return [o for o in outcomes if o is not None]


def _score_one_whole(task: Any, ref: Any, sub: Submission) -> SubmissionOutcome:
    """One whole submission through ``task.score_submission`` (runs in a worker)."""
    try:
        result, rows = task.score_submission(ref, sub)
        document = result.to_dict()
    except SegevalError as e:
        return SubmissionOutcome(sub.name, sub.path, "failed", str(e))
    except Exception as e:  # one broken submission never stops the others
        return SubmissionOutcome(sub.name, sub.path, "failed",
                                 f"{sub.path}: cannot be scored ({type(e).__name__}: {e})")
    return SubmissionOutcome(sub.name, sub.path, "ok", None, document, rows)


def _score_whole(task: Any, ref: Any, subs: Sequence[Submission], *, jobs: int | None,
                 progress: Callable[[int], Any] | None,
                 on_start: Callable[[int], Any] | None) -> list[SubmissionOutcome]:
    """Score submissions one whole submission per work item, ``jobs`` processes; the
    progress counts submissions."""
    from segeval.engine.local import map_items

    todo = [sub for sub in subs if sub.error is None]
    if on_start:
        on_start(len(todo))
    scored = iter(map_items(functools.partial(_score_one_whole, task, ref), todo, jobs=jobs,
                            progress=progress))
    return [SubmissionOutcome(sub.name, sub.path, "failed", sub.error) if sub.error is not None
            else next(scored) for sub in subs]


# ---------------------------------------------------------------------- the leaderboard


@dataclass
class Leaderboard:
    """A ranked leaderboard: ``entries`` is what ``leaderboard.json`` holds (ranked entries by
    rank, then failed ones), ``outcomes`` the per-submission evaluations by name."""

    task: str
    format: str
    metric: str
    level: float
    resamples: int
    seed: int
    num_images: int
    class_names: tuple[str, ...]
    entries: list[dict[str, Any]]
    outcomes: dict[str, SubmissionOutcome]
    winners: list[dict[str, Any]]
    evaluated: list[str] = field(default_factory=list)  # scored in this run (not from cache)

    def ranked(self) -> list[dict[str, Any]]:
        return [e for e in self.entries if e["status"] == "ok"]


def _value(document: dict[str, Any], metric: str) -> float:
    v = document["metrics"].get(metric)
    return float("nan") if v is None else float(v)


def rank_entries(names: list[str], values: list[float]) -> list[int | None]:
    """Competition ranks (``1, 2, 2, 4``) by value, higher first; ties share a rank and NaN
    gets ``None``."""
    ranks: list[int | None] = []
    for v in values:
        ranks.append(None if math.isnan(v) else
                     1 + sum(1 for w in values if not math.isnan(w) and w > v))
    return ranks


def per_class_winners(outcomes: list[SubmissionOutcome], key: str,
                      class_names: Sequence[str],
                      has_gt: Callable[[dict[str, Any]], bool] | None = None
                      ) -> list[dict[str, Any]]:
    """For each class, the best per-class value among ok submissions and who reached it.

    A class without ground truth (``gt_pixels`` 0 in the per-class rows) has no winner: being
    the only one to predict it (IoU 0 against NaN) is no achievement. ``has_gt(row)`` says
    whether a row has ground truth, for rows without ``gt_pixels`` (the task's
    ``class_has_gt``).
    """
    if has_gt is None:
        def has_gt(row: dict[str, Any]) -> bool:
            return row.get("gt_pixels", 1) != 0

    table = []
    for c, cname in enumerate(class_names):
        rows = [(o.name, o.document["per_class"][c]) for o in outcomes if o.document is not None]
        values = {name: row.get(key) for name, row in rows if has_gt(row)}
        defined = {k: v for k, v in values.items() if v is not None and not math.isnan(v)}
        best = max(defined.values()) if defined else None
        cid = rows[0][1].get("id", c) if rows else c  # the category id where rows have one
        table.append({"id": cid, "name": cname, key: best,
                      "winners": sorted(k for k, v in defined.items() if v == best)})
    return table


def run_leaderboard(
    gt: str | Path,
    submissions: str | Path,
    format: str = "folder",
    *,
    task: str | None = None,
    metric: str | None = None,
    jobs: int | None = None,
    cache: str | Path | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    resamples: int = bootstrap.DEFAULT_RESAMPLES,
    level: float = bootstrap.DEFAULT_LEVEL,
    seed: int = 0,
    exclude: Sequence[str | Path] = (),
    progress: Callable[[int], Any] | None = None,
    on_start: Callable[[int], Any] | None = None,
    **options: Any,
) -> Leaderboard:
    """Evaluate every sub-folder and ``.zip`` of ``submissions`` against ``gt`` and rank them.

    ``format``, and ``options`` (``split``, ``num_classes``, ``class_names``, ``ignore_index``,
    ``absent``, ``missing``) are those of :func:`segeval.evaluate`. ``metric`` ranks (default:
    the task's headline, mIoU); ``cache`` is a SQLite file of earlier results (``None``: no
    cache); ``max_bytes`` limits an archive's uncompressed size; ``resamples``, ``level`` and
    ``seed`` set the bootstrap; ``exclude`` lists folders of ``submissions`` that are not
    submissions (the report folder, when it lies there). Raises
    :class:`~segeval.errors.SegevalError` only for the ground truth or the options; a bad
    submission is a failed entry.
    """
    from segeval.leaderboard.tasks import get_task

    the_task = get_task(task, format)
    metric = metric or the_task.default_metric
    if metric not in the_task.metrics:
        raise UsageError(f"--metric {metric}: not a metric of the {the_task.name} task "
                         f"(known: {', '.join(the_task.metrics)})")
    if not 0 < level < 1:
        raise UsageError(f"--level must be between 0 and 1, not {level}")
    if resamples < 1:
        raise UsageError(f"--resamples must be at least 1, not {resamples}")
    folder = Path(submissions)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such submissions folder")
    ref = the_task.load_reference(Path(gt), format, options)
    skip = {Path(p).resolve() for p in exclude}
    paths = [p for p in discover(folder) if p.resolve() not in skip]
    if not paths:
        raise UsageError(f"{folder}: no submissions (sub-folders or .zip files) found")
    subs = [open_submission(p, max_bytes) for p in paths]
    seen: dict[str, Path] = {}
    for k, sub in enumerate(subs):
        if sub.name in seen:
            subs[k] = Submission(sub.name + ".zip" if sub.kind == "zip" else sub.name, sub.path,
                                 sub.kind, error=f"{sub.path}: same name as {seen[sub.name]}")
        seen.setdefault(sub.name, sub.path)

    outcomes: dict[str, SubmissionOutcome] = {}
    keys: dict[str, str] = {}
    todo: list[Submission] = []
    with ResultCache(Path(cache) if cache is not None else None) as store:
        for sub in subs:
            if sub.error is not None:
                outcomes[sub.name] = SubmissionOutcome(sub.name, sub.path, "failed", sub.error)
                continue
            keys[sub.name] = cache_key(the_task.name, ref.digest, sub.digest)
            hit = store.get(keys[sub.name])
            if hit is None:
                todo.append(sub)
            else:
                outcomes[sub.name] = SubmissionOutcome(sub.name, sub.path, hit.status, hit.error,
                                                       hit.document, hit.rows, cached=True)
        if todo:
            log.info("scoring %d of %d submissions (%d from the cache)", len(todo), len(subs),
                     len(subs) - len(todo) - sum(s.error is not None for s in subs))
        for outcome in score_submissions(the_task, ref, todo, jobs=jobs, progress=progress,
                                         on_start=on_start):
            outcomes[outcome.name] = outcome
            store.put(keys[outcome.name], outcome.name,
                      CachedOutcome(outcome.status, outcome.error, outcome.document,
                                    outcome.rows))
    ordered = [outcomes[s.name] for s in subs]
    return _rank(the_task, ref, format, metric, ordered, level, resamples, seed,
                 evaluated=[s.name for s in todo])


def _rank(task: Any, ref: Any, fmt: str, metric: str, ordered: list[SubmissionOutcome],
          level: float, resamples: int, seed: int, evaluated: list[str]) -> Leaderboard:
    ok = [o for o in ordered if o.status == "ok"]
    values = [_value(o.document, metric) for o in ok]  # type: ignore[arg-type]
    ranks = rank_entries([o.name for o in ok], values)
    order = sorted(range(len(ok)), key=lambda k: (ranks[k] is None, ranks[k] or 0, ok[k].name))
    ok = [ok[k] for k in order]
    ranks = [ranks[k] for k in order]
    intervals = getattr(task, "intervals", True)
    if intervals:
        statistic = functools.partial(task.replicates, ref, metric=metric)
        reps = bootstrap.replicate_matrix([o.rows for o in ok], statistic,  # type: ignore[misc]
                                          resamples=resamples, seed=seed)
    entries: list[dict[str, Any]] = []
    for k, (o, r) in enumerate(zip(ok, ranks, strict=True)):
        if intervals:
            low, high = bootstrap.percentile_interval(reps[:, k], level)
            above = bootstrap.beats_fraction(reps[:, k], reps[:, k - 1]) if k and r else None
            ci = {"metric": metric, "low": low, "high": high, "level": level,
                  "resamples": resamples, "method": "percentile bootstrap over images"}
        else:  # a task without intervals says why instead of making one up
            above = None
            ci = {"metric": metric, "low": None, "high": None, "level": level,
                  "resamples": 0, "method": task.interval_method}
        entries.append({
            "submission": o.name, "status": "ok", "error": None, "rank": r,
            "metrics": o.document["metrics"],  # type: ignore[index]
            "ci": ci,
            "beats_above": above,
        })
    for o in sorted((o for o in ordered if o.status != "ok"), key=lambda o: o.name):
        entries.append({"submission": o.name, "status": "failed", "error": o.error,
                        "rank": None, "metrics": None, "ci": None, "beats_above": None})
    winners = per_class_winners(ok, task.per_class_metric, ref.class_names,
                                getattr(task, "class_has_gt", None))
    return Leaderboard(task.name, fmt, metric, level, resamples, seed, len(ref.names),
                       tuple(ref.class_names), entries, {o.name: o for o in ordered}, winners,
                       evaluated)
