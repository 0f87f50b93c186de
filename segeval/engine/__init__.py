"""Engines: map a per-item kernel over work items and merge the statistics exactly.

:func:`reduce_items` is the one entry point every task uses. The kernel ``func(item)`` returns
``(stats, row)``: ``stats`` supports exact ``+`` (a ``ConfusionMatrix``, ``PanopticStats``, ...)
and ``row`` is a per-image dict or ``None``. Items are grouped in chunks; each chunk is reduced
where it ran, so only small statistics travel, and the chunk results are merged in input order
(rows keep the input order too). Because every ``+`` is exact, the result is identical whatever
the engine, the number of workers or the chunk size.

Engines, chosen by ``scheduler``:

* ``None`` or ``"local"`` -- this machine: serial for ``jobs=1``, else a process pool
  (:mod:`segeval.engine.local`).
* ``"dask-local"`` -- a ``dask.distributed.LocalCluster`` started for the run;
  ``"tcp://host:port"`` (or any address a ``dask.distributed.Client`` accepts) -- an existing
  cluster (:mod:`segeval.engine.dask`, extra ``[dask]``).

An engine module defines ``reduce_chunks(func, chunks, *, jobs, progress, scheduler)``;
adding one is that module plus one line in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

ENGINES = {"local": "segeval.engine.local", "dask": "segeval.engine.dask"}


def engine_name(scheduler: str | None) -> str:
    """The :data:`ENGINES` key for a ``scheduler`` value."""
    return "local" if scheduler in (None, "local") else "dask"


def process_chunk(func: Callable[[Any], tuple[Any, Any]], chunk: Sequence[Any]
                  ) -> tuple[Any, list[Any]]:
    """Run ``func`` over one chunk: the sum of its stats and its non-``None`` rows, in order."""
    total: Any = None
    rows: list[Any] = []
    for item in chunk:
        stats, row = func(item)
        total = stats if total is None else total + stats
        if row is not None:
            rows.append(row)
    return total, rows


def merge(a: tuple[Any, list[Any]], b: tuple[Any, list[Any]]) -> tuple[Any, list[Any]]:
    """Merge two chunk results, ``a`` before ``b``."""
    return a[0] + b[0], a[1] + b[1]


def chunked(items: Sequence[Any], size: int) -> list[Sequence[Any]]:
    """``items`` cut into consecutive chunks of ``size`` (the last may be shorter)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def reduce_items(
    func: Callable[[Any], tuple[Any, Any]],
    items: Sequence[Any],
    *,
    scheduler: str | None = None,
    jobs: int | None = None,
    chunk_size: int | None = None,
    progress: Callable[[int], Any] | None = None,
) -> tuple[Any, list[Any]]:
    """Merged statistics and per-item rows of ``func`` over ``items`` (at least one).

    ``func`` and the items must be picklable for any engine but the serial one.
    ``chunk_size`` is the number of items per task (default: chosen by the engine);
    ``progress(k)`` is called as items finish.
    """
    if not items:
        raise ValueError("reduce_items needs at least one item")
    module = importlib.import_module(ENGINES[engine_name(scheduler)])
    return module.reduce_chunks(func, items, jobs=jobs, chunk_size=chunk_size,
                                progress=progress, scheduler=scheduler)
