"""The local engine: a plan's items in this process (``jobs=1``) or on a supervised pool of
worker processes (:mod:`segeval.engine.pool`), statistics merged in input order.

Each item's statistics come back as soon as it is done (only small statistics travel). The
first error raised by ``plan.score`` stops the run and is re-raised here; a worker that dies
(a signal, an out-of-memory kill) becomes a :class:`~segeval.errors.DataError` naming the item
it held, within moments, never a hang.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from segeval.core.device import available_cores
from segeval.errors import DataError

if TYPE_CHECKING:
    from segeval.engine.pool import WorkerDied

T = TypeVar("T")
R = TypeVar("R")

__all__ = ["add_up", "available_cores", "died", "map_items", "reduce", "workers_for"]


def workers_for(jobs: int | None, n: int) -> int:
    """Worker processes for ``n`` items: ``jobs`` (``None``: all cores), at most ``n``."""
    return max(1, min(available_cores() if jobs is None else int(jobs), n))


def died(err: WorkerDied, name: str) -> DataError:
    """The one-line error for a worker that died holding the item called ``name``."""
    return DataError(f"{name}: the worker process scoring it died "
                     f"({err.cause}); nothing was written")


def map_items(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int | None = None,
    name_of: Callable[[T], str] = str,
) -> Iterator[R]:
    """Yield ``func(item)`` for every item, in order, on ``jobs`` supervised workers (``None``:
    all cores; 1: in this process). An exception raised by ``func`` is re-raised here (the
    workers are stopped); a dead worker raises :func:`died` for its item."""
    workers = workers_for(jobs, len(items))
    if workers <= 1:
        for item in items:
            yield func(item)
        return
    # (imported here: multiprocessing is ~8 ms of start-up the thread engine does not need)
    from segeval.engine.pool import WorkerDied, imap_supervised

    results = imap_supervised(func, items, jobs=workers)
    try:
        for i, ok, value in results:
            if ok:
                yield value
            elif isinstance(value, WorkerDied):
                raise died(value, name_of(items[i]))
            else:
                raise value
    finally:
        results.close()


def add_up(plan: Any, results: Iterable[tuple[Any, Any]],
           progress: Callable[[int], Any] | None) -> tuple[Any, list[Any]]:
    """``plan.zero`` plus every item's statistics, and the rows that are not ``None``, in the
    order of ``results`` (the items' order); ``progress(1)`` after each item."""
    total = plan.zero
    rows: list[Any] = []
    for stats, row in results:
        total = total + stats
        if row is not None:
            rows.append(row)
        if progress:
            progress(1)
    return total, rows


def reduce(plan: Any, *, jobs: int | None = None, scheduler: str | None = None,
           progress: Callable[[int], Any] | None = None) -> tuple[Any, list[Any]]:
    """The local engine of :func:`segeval.engine.run`."""
    return add_up(plan, map_items(plan.score, plan.items, jobs=jobs, name_of=plan.name_of),
                  progress)
