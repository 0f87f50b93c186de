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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from segeval.engine.local import workers_for


def reduce(plan: Any, *, jobs: int | None = None, scheduler: str | None = None,
           progress: Callable[[int], Any] | None = None) -> tuple[Any, list[Any]]:
    """The thread engine of :func:`segeval.engine.run`: ``jobs`` threads (``None``: all cores,
    1: in the calling thread). The first error raised by ``plan.score`` (in item order) is
    re-raised here and the items not yet started are cancelled."""
    items = plan.items
    total = plan.zero
    rows: list[Any] = []

    def add(stats: Any, row: Any) -> None:
        nonlocal total
        total = total + stats
        if row is not None:
            rows.append(row)
        if progress:
            progress(1)

    workers = workers_for(jobs, len(items))
    if workers <= 1:
        for item in items:
            add(*plan.score(item))
        return total, rows
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segeval")
    try:
        futures = [pool.submit(plan.score, item) for item in items]
        for future in futures:
            add(*future.result())
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return total, rows
