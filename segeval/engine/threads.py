"""The thread engine: a plan's items on a pool of threads of this process, statistics merged
in input order.

The compiled kernels (PNG un-filtering, the counting loops) and libdeflate's inflate release the
GIL, so threads decode and count images in parallel without forking or pickling; the Python
around them (reading files, parsing headers, small NumPy steps) takes the GIL in turns.
``benchmarks/bench_engines.py`` measures this engine against the process pool; which one
``scheduler=None`` picks follows those numbers (see :func:`segeval.engine.engine_name`).

Threads share the process: a kernel fault would end the whole run, where the process pool
turns it into the one-line error of the item it held. Leaderboards, which score strangers'
files, therefore always use the supervised process pool.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from segeval.engine.local import add_up, workers_for


def reduce(plan: Any, *, jobs: int | None = None, scheduler: str | None = None,
           progress: Callable[[int], Any] | None = None) -> tuple[Any, list[Any]]:
    """The thread engine of :func:`segeval.engine.run`: ``jobs`` threads (``None``: all cores,
    1: in the calling thread). The first error raised by ``plan.score`` (in item order) is
    re-raised here and the items not yet started are cancelled."""
    return add_up(plan, _map_threads(plan, jobs), progress)


def _map_threads(plan: Any, jobs: int | None) -> Iterator[tuple[Any, Any]]:
    """``plan.score(item)`` of every item, in item order, computed on ``jobs`` threads."""
    items = plan.items
    workers = workers_for(jobs, len(items))
    if workers <= 1:
        for item in items:
            yield plan.score(item)
        return
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segeval")
    try:
        futures = [pool.submit(plan.score, item) for item in items]
        for future in futures:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
