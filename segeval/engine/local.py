"""Run a per-item function serially or over a local process pool, results in input order.

The function and items must be picklable (a module-level function, or a ``functools.partial``
of one). Workers are forked where the platform allows it (no re-import, no re-compilation), and
each result is sent back as soon as its item is done, so only small statistics travel. The pool
is always closed, also on error: the first exception raised by a worker is re-raised here.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def map_items(
    func: Callable[[T], R],
    items: Sequence[T],
    *,
    jobs: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> Iterator[R]:
    """Yield ``func(item)`` for every item, in order.

    ``jobs`` is the number of worker processes (``None``: all available cores; 1: run here).
    ``progress(n)`` is called after every ``n`` finished items.
    """
    jobs = available_cores() if jobs is None else max(1, int(jobs))
    jobs = min(jobs, len(items))
    if jobs <= 1:
        for item in items:
            yield func(item)
            if progress:
                progress(1)
        return
    methods = multiprocessing.get_all_start_methods()
    ctx = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    chunksize = max(1, min(16, len(items) // (jobs * 8)))
    with ctx.Pool(jobs) as pool:
        for result in pool.imap(func, items, chunksize=chunksize):
            yield result
            if progress:
                progress(1)
