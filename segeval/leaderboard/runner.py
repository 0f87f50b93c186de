"""Score many submissions against one ground truth, rank them, and say how sure each rank is.

Every submission is scored by the format's adapter exactly as ``segeval score`` scores a
prediction folder: the ground truth is listed once (``adapter.reference``), each submission (a
:class:`~segeval.leaderboard.sources.Submission`, a :class:`~segeval.formats.base.Tree`) is
planned with ``adapter.plan``, and a submission's document is ``plan.finish(total, [])`` of the
exact total ``plan.zero + stats...``, the same document.

Plans with ``load_gt``/``score_with`` (semantic, panoptic) share the ground truth: workers take
chunks of ground-truth images, decode each image once and score every pending submission's
prediction for it, returning per submission the chunk's exact total and one small statistics
row per image (the task's ``row``, for the bootstrap). Other plans (COCO AP) are run whole,
one submission per worker. The workers are always a supervised pool
(:func:`segeval.engine.pool.imap_supervised`), one worker process for ``jobs=1`` too: a worker
that dies (a segfault, the OOM killer) while scoring a submission fails that submission with
one line, and the others go on; nothing a submission does reaches the process that ranks.

The decode-once loop scores the submissions in *waves* of at most :data:`WAVE`: a submission's
outcome is final (and handed to ``on_outcome``, which the leaderboard uses to write it to the
cache at once) when its wave ends, so a run killed with SIGKILL loses at most the wave in
flight and a re-run resumes from the cache. Each wave decodes the ground truth once: with ``S``
submissions it is decoded ``ceil(S / WAVE)`` times instead of ``S`` times.

Names and error texts reach the reports through :func:`visible`: a byte of a file name that is
not UTF-8 (``surrogateescape``) becomes ``\\xNN``, a control or bidirectional-formatting
character ``\\n``/``\\xNN``/``\\uNNNN``, so every report is valid UTF-8 on one line per
entry.

A submission that fails (unsafe or corrupt archive, missing file, wrong size, bad label,
corrupt PNG, a dead worker) is marked failed with its one-line reason. The ranking uses the
exact totals; the intervals and the paired comparisons use the rows (see
:mod:`segeval.leaderboard.bootstrap`). Errors in the ground truth itself (unreadable, bad
labels) stop the run: they are the organiser's, not a submission's.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import itertools
import json
import logging
import math
import signal
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from segeval.errors import DataError, SegevalError, UsageError
from segeval.formats.base import Options
from segeval.leaderboard import bootstrap
from segeval.leaderboard.cache import CachedOutcome, ResultCache, cache_key
from segeval.leaderboard.sources import (
    DEFAULT_MAX_BYTES,
    Limits,
    PrefixView,
    Submission,
    discover,
    open_submission,
    strip_common_folder,
    submission_limits,
)

log = logging.getLogger("segeval")

CACHE_NAME = "leaderboard-cache.sqlite"
_U32 = np.iinfo(np.uint32).max
#: Options that change no number (left out of the cache key).
_NO_NUMBERS = frozenset({"task", "decoder", "device", "per_image", "gt_folder", "pred_folder"})

#: ``progress(done, total)``: ground-truth images (or whole submissions) done, and all.
Progress = Callable[[int, int], Any]
#: Most submissions the decode-once loop scores together (one wave; see the module docstring).
WAVE = 8

#: Characters :func:`visible` escapes besides control characters and surrogates: line and
#: paragraph separators and the bidirectional formatting characters (a name could reorder the
#: text of the report around it).
_INVISIBLE = frozenset("\u2028\u2029\u200e\u200f\u061c"
                       + "".join(map(chr, range(0x202A, 0x202F)))
                       + "".join(map(chr, range(0x2066, 0x206A))))
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def visible(text: str) -> str:
    """``text`` with what cannot be shown safely on one line escaped, everything else kept:

    * a byte that was not UTF-8 in a file name (a lone surrogate ``U+DC80..U+DCFF`` from
      ``surrogateescape``) becomes ``\\xNN`` (the byte), any other lone surrogate
      ``\\uNNNN``;
    * ``\\n``, ``\\r``, ``\\t`` as such, other ASCII control characters ``\\xNN``, the C1
      controls, line/paragraph separators and bidirectional formatting characters
      ``\\uNNNN``.

    The result encodes to UTF-8 and has no line break. A backslash already in ``text`` is kept
    as it is, so two names may look alike (``a\\xff`` typed and the byte ``0xFF``): the
    leaderboard then fails the second one as a duplicate name.

    >>> visible("team\\udcff\\n2")
    'team\\\\xff\\\\n2'
    """
    if text.isprintable() and text.isascii():
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _SHORT:
            out.append(_SHORT[ch])
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif ch in _INVISIBLE or unicodedata.category(ch) in ("Cc", "Cs"):
            out.append(f"\\u{code:04x}")
        else:
            out.append(ch)
    return "".join(out)


@dataclass
class SubmissionOutcome:
    """One submission's evaluation: ``document`` is ``segeval score``'s JSON (ok only) and
    ``rows`` its ``(images, K)`` per-image statistics (ok, with intervals, only)."""

    name: str
    path: Path
    status: str  # "ok" or "failed"
    error: str | None = None
    document: dict[str, Any] | None = None
    rows: np.ndarray | None = field(default=None, repr=False)
    cached: bool = False


# ---------------------------------------------------------------------- the ground truth


@dataclass
class Setup:
    """What every submission of a run is scored with: the format's adapter, the options, the
    ground truth's reference (listed once), the task (how to rank) and the cache digest of
    the ground truth and the options; ``limits`` bound what a submission may hold (from the
    ground truth, :func:`~segeval.leaderboard.sources.submission_limits`)."""

    format: str
    adapter: ModuleType
    options: Options
    ref: Any
    task: Any
    digest: str
    limits: Limits | None = None


def make_options(fmt: str, task: str | None, options: dict[str, Any]) -> Options:
    """:class:`~segeval.formats.base.Options` from keyword options (``segeval.evaluate``'s);
    a :class:`~segeval.errors.UsageError` naming any that is not one."""
    names = {f.name for f in fields(Options)}
    extra = sorted(set(options) - names)
    if extra:
        what = "an option" if len(extra) == 1 else "options"
        raise UsageError(f"{', '.join(extra)}: not {what} of the {fmt} format",
                         parameters=tuple(extra))
    known = dict(options)
    if known.get("class_names") is not None:
        known["class_names"] = tuple(str(n) for n in known["class_names"])
    for key in ("gt_folder", "pred_folder"):
        if known.get(key) is not None:
            known[key] = Path(known[key])
    return Options(task=task, **known)


def reference_digest(task_name: str, ref: Any, options: Options) -> str:
    """The hex SHA-256 of the task, segeval's version, the reference's settings, the options
    that change numbers and every ground-truth file's name and bytes (the cache key's ground
    truth half)."""
    from segeval import __version__

    digest = hashlib.sha256()
    numbers = {k: v for k, v in options.set().items() if k not in _NO_NUMBERS}
    head = {"task": task_name, "version": __version__, "settings": ref.settings(),
            "options": numbers}
    digest.update(json.dumps(head, sort_keys=True, default=repr).encode())
    for f in ref.files:  # every reference lists its ground truth as Files
        data = f.read()
        digest.update(b"\x00" + f.member.encode("utf-8", "surrogateescape") + b"\x00")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def _reference(adapter: ModuleType, gt: Path, options: Options) -> Any:
    """``adapter.reference(gt, options)``; where the format's ground truth is one JSON file
    and ``gt`` is a folder (a platform's ground-truth folder, an unpacked archive), the one
    ``.json`` file of that folder."""
    from segeval.formats.base import json_in

    try:
        return adapter.reference(gt, options)
    except UsageError as e:
        if "gt" not in e.parameters or not gt.is_dir():
            raise
    return adapter.reference(json_in(gt, f"ground-truth {adapter.TASK} JSON file"), options)


def prepare(gt: str | Path, fmt: str, *, task: str | None = None, metric: str | None = None,
            **options: Any) -> Setup:
    """List the ground truth once with the format's adapter (``segeval score``'s checks and
    messages) and hash it; the :class:`Setup` every submission is then scored with. ``metric``,
    when given, must be one of the task's (checked before the ground truth is read)."""
    from segeval.formats.registry import get_adapter
    from segeval.leaderboard.tasks import make_task, unknown_metric

    opts = make_options(fmt, task, options)
    adapter = get_adapter(fmt, task)
    the_task = make_task(adapter.TASK, opts)
    if metric is not None and metric not in the_task.metrics:
        raise unknown_metric(the_task, metric)
    ref = _reference(adapter, Path(gt), opts)
    return Setup(fmt, adapter, opts, ref, the_task, reference_digest(the_task.name, ref, opts),
                 submission_limits(adapter.TASK, ref.files))


# ---------------------------------------------------------------------- planning


@contextlib.contextmanager
def _held_logs(keep: list[bool]) -> Iterator[None]:
    """Hold back what ``segeval`` logs inside the block; re-log it at the end if ``keep[0]``
    (the first pairing attempt's warnings are dropped when another one is used)."""
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        held.append(record)
        return False

    log.addFilter(hold)
    try:
        yield
    finally:
        log.removeFilter(hold)
        if keep[0]:
            for record in held:
                log.handle(record)


def plan_submission(setup: Setup, sub: Submission) -> Any:
    """``adapter.plan`` of a submission, as ``segeval score`` plans a prediction folder; when
    nothing pairs (an error, or ``plan.matched == 0``) and every member lies in one top-level
    folder (``team.zip`` holding ``team/*``), the plan of that folder. Raises the adapter's
    :class:`~segeval.errors.SegevalError` for a submission that cannot be scored."""
    prefix = strip_common_folder(list(sub.files()))
    if not prefix:
        return setup.adapter.plan(sub, setup.ref, setup.options)
    keep = [False]
    with _held_logs(keep):
        try:
            plan = setup.adapter.plan(sub, setup.ref, setup.options)
        except SegevalError:
            plan = None
        keep[0] = plan is not None and plan.matched != 0
    if keep[0]:
        return plan
    return setup.adapter.plan(PrefixView(sub, prefix), setup.ref, setup.options)


# ---------------------------------------------------------------------- scoring


def _cause(err: Any) -> str:
    """``killed by signal 9, SIGKILL`` or ``exit code 1``: how a worker died."""
    cause = getattr(err, "cause", None)
    if cause:
        return str(cause)
    code = int(getattr(err, "exitcode", 0))
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by signal {-code}, {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def _died(sub: Submission, err: Any) -> str:
    return f"{sub.path}: the worker process scoring it died ({_cause(err)})"


def _unexpected(name: str, e: Exception) -> str:
    """One line for an error that is not a :class:`~segeval.errors.SegevalError`."""
    return f"{name}: cannot be scored ({type(e).__name__}: {e})".replace("\n", " ")


@dataclass(frozen=True)
class _Shared:
    """What every worker of the decode-once loop needs: the plans' pieces (inherited where
    workers are forked)."""

    first: int  # the plan whose load_gt decodes the ground truth
    plans: dict[int, Any]
    row: Callable[[Any], np.ndarray]


_ChunkResult = tuple[dict[int, tuple[Any, np.ndarray]], dict[int, tuple[int, str]]]


def _score_chunk(shared: _Shared, item: tuple[Sequence[int], tuple[int, ...]]) -> _ChunkResult:
    """Score ground-truth images ``indices`` against the ``pending`` submissions: decode each
    image once (an error there is the ground truth's and is raised), then every submission's
    prediction for it. Per submission: the chunk's total and rows, or the image where it
    failed and its one-line error."""
    from segeval.engine.pool import note

    indices, pending = item
    first = shared.plans[shared.first]
    totals: dict[int, Any] = {}
    rows: dict[int, np.ndarray] = {}
    failures: dict[int, tuple[int, str]] = {}
    for j, i in enumerate(indices):
        note(("gt", i))
        gt = first.load_gt(first.items[i])
        for s in pending:
            if s in failures:
                continue
            plan = shared.plans[s]
            note(s)
            try:
                stats, _ = plan.score_with(plan.items[i], gt)
                row = np.asarray(shared.row(stats))
            except SegevalError as e:
                failures[s] = (i, str(e))
                continue
            except Exception as e:  # one broken submission never stops the others
                failures[s] = (i, _unexpected(plan.name_of(plan.items[i]), e))
                continue
            totals[s] = stats if s not in totals else totals[s] + stats
            if s not in rows:
                rows[s] = np.zeros((len(indices), row.size), np.int64)
            rows[s][j] = row
        del gt
    note(None)
    return {s: (totals[s], rows[s]) for s in totals if s not in failures}, failures


def _workers(jobs: int | None, n: int) -> int:
    from segeval.core.device import available_cores

    return max(1, min(available_cores() if jobs is None else int(jobs), n))


def _run_items(func: Callable[[Any], Any], items: list[Any], jobs: int | None
               ) -> Iterator[tuple[int, bool, Any]]:
    """``(index, ok, value)`` for every item, in order, from a supervised pool of
    ``_workers(jobs)`` processes (one for ``jobs=1``: a submission that kills its worker never
    kills this process). An exception comes back as ``ok=False`` with the exception; a dead
    worker as ``ok=False`` with a :class:`~segeval.engine.pool.WorkerDied`."""
    from segeval.engine.pool import imap_supervised

    results = imap_supervised(func, items, jobs=_workers(jobs, len(items)), batch=1)
    try:
        yield from results
    finally:
        results.close()


def _score_per_image(setup: Setup, subs: Sequence[Submission], plans: dict[int, Any], *,
                     jobs: int | None, progress: Progress | None) -> dict[int, SubmissionOutcome]:
    """The decode-once loop over one wave (see the module docstring); one outcome per planned
    submission of ``plans``."""
    from segeval.engine.pool import WorkerDied

    n = len(setup.ref.names)
    order = sorted(plans)
    for s in order:
        if len(plans[s].items) != n:  # pragma: no cover - an adapter bug
            raise RuntimeError(f"{subs[s].path}: the plan has {len(plans[s].items)} items for "
                               f"{n} ground-truth images")
    workers = _workers(jobs, n)
    size = max(1, math.ceil(n / (4 * workers)))
    chunks = [tuple(range(a, min(a + size, n))) for a in range(0, n, size)]
    shared = _Shared(order[0], plans, setup.task.row)
    totals = {s: plans[s].zero for s in order}
    rows: dict[int, np.ndarray] = {}
    failed: dict[int, tuple[int, str]] = {}  # the first image where each failed, and why

    def fail(s: int, i: int, message: str) -> None:  # the same error whatever the chunks
        if s not in failed or i < failed[s][0]:
            failed[s] = (i, message)

    func = functools.partial(_score_chunk, shared)
    done = 0
    if progress:
        progress(0, n)
    todo = [(c, tuple(order)) for c in chunks]
    while todo:  # a second round only for the chunks of dead workers
        again: list[tuple[tuple[int, ...], tuple[int, ...]]] = []
        for k, ok, value in _run_items(func, todo, jobs):
            indices, pending = todo[k]
            if not ok:
                if not isinstance(value, WorkerDied):
                    raise value  # the ground truth's error (or a bug): it stops the run
                s = value.note
                if not isinstance(s, int) or s not in pending:
                    i = s[1] if isinstance(s, tuple) else indices[0]
                    raise DataError(f"ground-truth image {setup.ref.names[i]}: the worker "
                                    f"process decoding it died ({_cause(value)})")
                fail(s, indices[0], _died(subs[s], value))
                again.append((indices, pending))  # the others, without it (below)
                continue
            done_subs, failures = value
            for s, (i, message) in failures.items():
                fail(s, i, message)
            for s, (total, chunk_rows) in done_subs.items():
                if s in failed:
                    continue
                totals[s] = totals[s] + total  # exact: the order of chunks does not matter
                if s not in rows:
                    rows[s] = np.zeros((n, chunk_rows.shape[1]), np.uint32)
                if chunk_rows.size and (chunk_rows.min() < 0 or chunk_rows.max() > _U32) \
                        and rows[s].dtype != np.int64:
                    rows[s] = rows[s].astype(np.int64)
                rows[s][indices[0]:indices[-1] + 1] = chunk_rows
            done += len(indices)
            if progress:
                progress(done, n)
        todo = []
        for indices, pending in again:
            rest = tuple(t for t in pending if t not in failed)
            if rest:
                todo.append((indices, rest))
            else:
                done += len(indices)
                if progress:
                    progress(done, n)
    out: dict[int, SubmissionOutcome] = {}
    for s in order:
        sub = subs[s]
        if s in failed:
            out[s] = SubmissionOutcome(sub.name, sub.path, "failed", failed[s][1])
            continue
        document = plans[s].finish(totals[s], []).to_dict()
        out[s] = SubmissionOutcome(sub.name, sub.path, "ok", None, document,
                                   rows.get(s, np.zeros((n, 0), np.uint32)))
    return out


def _score_whole_one(plans: dict[int, Any], names: dict[int, str], s: int
                     ) -> tuple[bool, Any]:
    """Run submission ``s``'s plan serially (in a worker): ``(True, document)`` or
    ``(False, one-line error)``."""
    from segeval.engine import run
    from segeval.engine.pool import note

    note(s)
    try:
        return True, run(plans[s], jobs=1).to_dict()
    except SegevalError as e:
        return False, str(e)
    except Exception as e:  # one broken submission never stops the others
        return False, _unexpected(names[s], e)


def _score_whole(subs: Sequence[Submission], plans: dict[int, Any], *, jobs: int | None,
                 progress: Progress | None, done: Callable[[int, SubmissionOutcome], Any]
                 ) -> None:
    """Every plan run whole, one submission per work item, each outcome handed to ``done(s,
    outcome)`` as soon as it is there; the progress counts submissions."""
    from segeval.engine.pool import WorkerDied

    order = sorted(plans)
    names = {s: str(subs[s].path) for s in order}
    func = functools.partial(_score_whole_one, plans, names)
    if progress:
        progress(0, len(order))
    for k, ok, value in _run_items(func, order, jobs):
        s = order[k]
        sub = subs[s]
        if not ok:
            if not isinstance(value, WorkerDied):
                raise value
            done(s, SubmissionOutcome(sub.name, sub.path, "failed", _died(sub, value)))
        elif value[0]:
            done(s, SubmissionOutcome(sub.name, sub.path, "ok", None, value[1], None))
        else:
            done(s, SubmissionOutcome(sub.name, sub.path, "failed", value[1]))
        if progress:
            progress(k + 1, len(order))


def _waves(order: list[int]) -> list[list[int]]:
    """``order`` cut into as few waves of at most :data:`WAVE` as can be, of even sizes."""
    if not order:
        return []
    count = math.ceil(len(order) / max(1, WAVE))
    size, extra = divmod(len(order), count)  # the first ``extra`` waves get one more
    bounds = [k * size + min(k, extra) for k in range(count + 1)]
    return [order[a:b] for a, b in itertools.pairwise(bounds)]


def score_submissions(
    setup: Setup,
    subs: Sequence[Submission],
    *,
    jobs: int | None = None,
    progress: Progress | None = None,
    on_outcome: Callable[[SubmissionOutcome], Any] | None = None,
) -> list[SubmissionOutcome]:
    """Score ``subs`` (already listed) with ``setup``; one outcome per submission, in order.

    ``jobs`` worker processes (default all cores; always at least one supervised worker
    process, never this one); ``progress(done, total)`` counts ground-truth images, once per
    wave (whole submissions for plans run whole); ``on_outcome(outcome)`` is called for each
    submission as soon as its outcome is final (the leaderboard caches it then). Error texts
    pass through :func:`visible`.
    """
    outcomes: dict[int, SubmissionOutcome] = {}

    def done(s: int, outcome: SubmissionOutcome) -> None:
        if outcome.error is not None:
            outcome.error = visible(outcome.error)
        outcomes[s] = outcome
        if on_outcome is not None:
            on_outcome(outcome)

    plans: dict[int, Any] = {}
    for s, sub in enumerate(subs):
        if sub.error is not None:
            done(s, SubmissionOutcome(sub.name, sub.path, "failed", sub.error))
            continue
        try:
            plans[s] = plan_submission(setup, sub)
        except SegevalError as e:
            done(s, SubmissionOutcome(sub.name, sub.path, "failed", str(e)))
        except Exception as e:  # one broken submission never stops the others
            done(s, SubmissionOutcome(sub.name, sub.path, "failed",
                                      _unexpected(str(sub.path), e)))
    if plans and not setup.ref.names:
        for s in plans:
            done(s, SubmissionOutcome(subs[s].name, subs[s].path, "failed",
                                      "no ground-truth images to score"))
    elif plans:
        first = plans[min(plans)]
        per_image = first.load_gt is not None and first.score_with is not None
        if setup.task.intervals and not per_image:
            raise UsageError(f"the {setup.format} format cannot be ranked on a leaderboard of "
                             f"the {setup.task.name} task: its plans have no per-image "
                             f"statistics for the bootstrap (load_gt and score_with)")
        if per_image and setup.task.intervals:
            n = len(setup.ref.names)
            waves = _waves(sorted(plans))

            def shifted(offset: int, d: int, t: int) -> None:
                progress(offset + d, n * len(waves))  # type: ignore[misc]

            for w, wave in enumerate(waves):
                wave_out = _score_per_image(
                    setup, subs, {s: plans[s] for s in wave}, jobs=jobs,
                    progress=None if progress is None else functools.partial(shifted, w * n))
                for s in wave:
                    done(s, wave_out[s])
        else:
            _score_whole(subs, plans, jobs=jobs, progress=progress, done=done)
    return [outcomes[s] for s in range(len(subs))]


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
    ci: str = "bca"  # the interval method (a key of bootstrap.METHODS)

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
    ci: str = bootstrap.DEFAULT_METHOD,
    exclude: Sequence[str | Path] = (),
    progress: Progress | None = None,
    on_start: Callable[[int], Any] | None = None,
    **options: Any,
) -> Leaderboard:
    """Evaluate every sub-folder and ``.zip`` of ``submissions`` against ``gt`` and rank them.

    ``format``, ``task`` and ``options`` (``split``, ``num_classes``, ``class_names``,
    ``ignore_index``, ``absent``, ``missing``, ...) are those of :func:`segeval.evaluate`, and
    every submission is scored as ``segeval score`` scores a prediction folder. ``metric``
    ranks (default: the task's headline, mIoU); ``cache`` is a SQLite file of earlier results
    (``None``: no cache); ``max_bytes`` limits an archive's uncompressed size; ``resamples``,
    ``level`` and ``seed`` set the bootstrap and ``ci`` its interval (``"bca"``, the default,
    or ``"percentile"``: see :mod:`segeval.leaderboard.bootstrap`); ``exclude`` lists folders of
    ``submissions`` that are not submissions (the report folder, when it lies there); ``jobs``
    worker processes (default all cores; 1: one supervised worker, never this process);
    ``progress(done, total)`` counts ground-truth images once per wave (whole submissions for
    COCO AP), ``on_start(total)`` is called before the work. Each submission is written to
    ``cache`` as soon as it is scored (a killed run resumes there); a damaged cache row is a
    warning and is scored again. Submission names and error texts are :func:`visible` (a
    non-UTF-8 name is scored under its escaped name). Raises
    :class:`~segeval.errors.SegevalError` only for the ground truth or the options; a bad
    submission is a failed entry.
    """
    if not 0 < level < 1:
        raise UsageError(f"--level must be between 0 and 1, not {level}")
    if resamples < 1:
        raise UsageError(f"--resamples must be at least 1, not {resamples}")
    if ci not in bootstrap.METHODS:
        raise UsageError(f"--ci must be one of {', '.join(bootstrap.METHODS)}, not {ci!r}")
    folder = Path(submissions)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such submissions folder")
    setup = prepare(gt, format, task=task, metric=metric, **options)
    the_task = setup.task
    metric = metric or the_task.default_metric
    skip = {Path(p).resolve() for p in exclude}
    paths = [p for p in discover(folder) if p.resolve() not in skip]
    if not paths:
        raise UsageError(f"{folder}: no submissions (sub-folders or .zip files) found")
    subs = [_shown(open_submission(p, max_bytes, setup.limits)) for p in paths]
    seen: dict[str, Path] = {}
    for k, sub in enumerate(subs):
        if sub.name in seen:  # fails, under a name of its own (every entry has one)
            name = base = sub.name + ".zip" if sub.kind == "zip" else sub.name
            copy = 1
            while name in seen:
                copy += 1
                name = f"{base} ({copy})"
            subs[k] = Submission(name, sub.path, sub.kind, error=visible(
                f"{sub.path}: same name as {seen[sub.name]}"))
        seen.setdefault(subs[k].name, sub.path)

    def report(done: int, total: int) -> None:
        if done == 0 and on_start is not None:
            on_start(total)
        if progress is not None:
            progress(done, total)

    outcomes: dict[str, SubmissionOutcome] = {}
    keys: dict[str, str] = {}
    todo: list[Submission] = []
    with ResultCache(Path(cache) if cache is not None else None) as store:
        for sub in subs:
            if sub.error is not None:
                outcomes[sub.name] = SubmissionOutcome(sub.name, sub.path, "failed", sub.error)
                continue
            keys[sub.name] = cache_key(the_task.name, setup.digest, sub.digest)
            hit = store.get(keys[sub.name])
            why = None if hit is None else damaged(setup, hit)
            if why is not None:
                log.warning("%s: damaged cache row for %s (%s); scoring it again", store.path,
                            sub.name, why)
            if hit is None or why is not None:
                todo.append(sub)
            else:
                outcomes[sub.name] = SubmissionOutcome(sub.name, sub.path, hit.status, hit.error,
                                                       hit.document, hit.rows, cached=True)
        if todo:
            log.info("scoring %d of %d submissions (%d from the cache)", len(todo), len(subs),
                     len(subs) - len(todo) - sum(s.error is not None for s in subs))

        def keep(outcome: SubmissionOutcome) -> None:  # cached as soon as it is scored
            outcomes[outcome.name] = outcome
            store.put(keys[outcome.name], outcome.name,
                      CachedOutcome(outcome.status, outcome.error, outcome.document,
                                    outcome.rows))

        score_submissions(setup, todo, jobs=jobs, progress=report, on_outcome=keep)
    ordered = [outcomes[s.name] for s in subs]
    return _rank(the_task, setup.ref, format, metric, ordered, level, resamples, seed,
                 evaluated=[s.name for s in todo], ci=ci)


def _shown(sub: Submission) -> Submission:
    """``sub`` with its name and listing error as reports show them (:func:`visible`)."""
    name = visible(sub.name)
    error = None if sub.error is None else visible(sub.error)
    return sub if (name, error) == (sub.name, sub.error) else replace(sub, name=name, error=error)


def _same(a: Any, b: Any) -> bool:
    """Two metric values agree (``None`` and NaN are the same; else to 1e-9 relative)."""
    a = float("nan") if a is None else float(a)
    b = float("nan") if b is None else float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)


def damaged(setup: Setup, hit: CachedOutcome) -> str | None:
    """Why a cached outcome cannot be what scoring a submission of ``setup`` produced, or
    ``None``: a wrong status, an ok row without the task's document (``task``, ``metrics``,
    ``per_class`` as long as the class list), and where the task has intervals, rows that are
    not ``(images, K)`` integers whose sum gives back every rankable metric of the document. A
    damaged row is scored again (a cache row written by hand to agree with itself is not
    caught: the cache is the organiser's own file)."""
    task = setup.task
    if hit.status == "failed":
        return None if isinstance(hit.error, str) and hit.document is None else "failed row"
    if hit.status != "ok":
        return f"status {hit.status!r}"
    doc = hit.document
    if not isinstance(doc, dict) or doc.get("task") != task.name \
            or not isinstance(doc.get("metrics"), dict) \
            or not isinstance(doc.get("per_class"), list) \
            or not all(isinstance(r, dict) for r in doc["per_class"]):
        return "not a result document of the task"
    names = task.class_names(setup.ref)
    if names and len(doc["per_class"]) != len(names):
        return f"{len(doc['per_class'])} per-class rows for {len(names)} classes"
    for m in task.metrics:
        v = doc["metrics"].get(m)
        if v is not None and not isinstance(v, (int, float)):
            return f"metric {m} is not a number"
    if not task.intervals:
        return None
    rows = hit.rows
    n = len(setup.ref.names)
    if not isinstance(rows, np.ndarray) or rows.ndim != 2 or rows.shape[0] != n \
            or rows.dtype.kind not in "iu":
        return "per-image rows of the wrong shape or type"
    try:
        sums = rows.astype(np.int64).sum(axis=0)[None]
        for m in task.metrics:
            if not _same(task.replicates(setup.ref, sums, metric=m)[0], doc["metrics"].get(m)):
                return f"the rows do not give the document's {m}"
    except (ValueError, TypeError, IndexError, ArithmeticError) as e:
        return f"the rows do not fit the task ({type(e).__name__})"
    return None


def _rank(task: Any, ref: Any, fmt: str, metric: str, ordered: list[SubmissionOutcome],
          level: float, resamples: int, seed: int, evaluated: list[str],
          ci: str = bootstrap.DEFAULT_METHOD) -> Leaderboard:
    ok = [o for o in ordered if o.status == "ok"]
    values = [_value(o.document, metric) for o in ok]  # type: ignore[arg-type]
    ranks = rank_entries([o.name for o in ok], values)
    order = sorted(range(len(ok)), key=lambda k: (ranks[k] is None, ranks[k] or 0, ok[k].name))
    ok = [ok[k] for k in order]
    ranks = [ranks[k] for k in order]
    intervals = task.intervals
    if intervals:
        statistic = functools.partial(task.replicates, ref, metric=metric)
        reps = bootstrap.replicate_matrix([o.rows for o in ok], statistic,  # type: ignore[misc]
                                          resamples=resamples, seed=seed)
    entries: list[dict[str, Any]] = []
    for k, (o, r) in enumerate(zip(ok, ranks, strict=True)):
        if intervals:
            rows = np.asarray(o.rows, dtype=np.float64)
            estimate = float(statistic(rows.sum(axis=0)[None, :])[0])
            jack = bootstrap.jackknife(rows, statistic) if ci == "bca" else None
            low, high = bootstrap.interval(ci, reps[:, k], estimate, jack, level)
            above = bootstrap.beats_fraction(reps[:, k], reps[:, k - 1]) if k and r else None
            method = bootstrap.METHODS[ci].replace("images", getattr(task, "unit", "images"))
            interval = {"metric": metric, "low": low, "high": high, "level": level,
                        "resamples": resamples, "method": method}
        else:  # a task without intervals says why instead of making one up
            above = None
            interval = {"metric": metric, "low": None, "high": None, "level": level,
                        "resamples": 0, "method": task.interval_method}
        entries.append({
            "submission": o.name, "status": "ok", "error": None, "rank": r,
            "metrics": o.document["metrics"],  # type: ignore[index]
            "ci": interval,
            "beats_above": above,
        })
    for o in sorted((o for o in ordered if o.status != "ok"), key=lambda o: o.name):
        entries.append({"submission": o.name, "status": "failed", "error": o.error,
                        "rank": None, "metrics": None, "ci": None, "beats_above": None})
    class_names = task.class_names(ref)
    if not class_names and ok:  # the reference does not list them: the documents do
        class_names = tuple(str(row.get("name", row.get("id", c))) for c, row in
                            enumerate(ok[0].document["per_class"]))  # type: ignore[index]
    winners = per_class_winners(ok, task.per_class_metric, class_names, task.class_has_gt)
    return Leaderboard(task.name, fmt, metric, level, resamples, seed, len(ref.names),
                       tuple(class_names), entries, {o.name: o for o in ordered}, winners,
                       evaluated, ci)
