"""Run a per-item function serially or over a local process pool, results in input order.

The function and items must be picklable (a module-level function, or a ``functools.partial``
of one). Workers are forked where the platform allows it (no re-import, no re-compilation), and
each result is sent back as soon as its item is done, so only small statistics travel. The pool
is always closed, also on error: the first exception raised by a worker is re-raised here.
"""

from __future__ import annotations

import functools
import itertools
import multiprocessing
import os
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from segeval.core.device import available_cores

T = TypeVar("T")
R = TypeVar("R")


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


def reduce_chunks(
    func: Callable[[Any], tuple[Any, Any]],
    items: Sequence[Any],
    *,
    jobs: int | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], Any] | None = None,
    scheduler: str | None = None,
) -> tuple[Any, list[Any]]:
    """The local engine of :func:`segeval.engine.reduce_items`: chunks over :func:`map_items`."""
    from segeval.engine import chunked, merge, process_chunk

    jobs = available_cores() if jobs is None else max(1, int(jobs))
    first: list[Sequence[Any]] = []
    if jobs > 1 and len(items) > 1:
        # The first item runs here, before the pool forks: what it loads (the JIT and the
        # compiled decoders and kernels, ~0.5 s of CPU) is inherited by every worker instead of
        # being loaded by each, and stays loaded for the caller's next evaluation.
        first, items = [items[:1]], items[1:]
    if chunk_size is None:  # small chunks: a smooth progress bar, balanced workers
        chunk_size = max(1, min(8, len(items) // (jobs * 4)))
    chunks = chunked(items, chunk_size)
    here = (process_chunk(func, chunk) for chunk in first)
    pooled = map_items(functools.partial(process_chunk, func), chunks, jobs=jobs)
    result: Any = None
    for chunk, part in zip(first + chunks, itertools.chain(here, pooled), strict=True):
        result = part if result is None else merge(result, part)
        if progress:
            progress(len(chunk))
    return result
