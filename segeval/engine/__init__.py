"""Engines: run any plan, merging its statistics exactly and in order.

:func:`run` is the one entry point. A plan (:class:`segeval.formats.base.Plan`, built by a
format adapter) holds the work items, a pure per-item function ``score(item) -> (stats, row)``,
the zero statistic and a finish step. The engine maps ``score`` over the items, adds the
statistics in input order starting from ``plan.zero`` (every ``+`` is exact, so the result is
identical whatever the engine, the number of workers or the chunk size), keeps the per-image
rows in input order, and returns ``plan.finish(stats, rows)``.

Engines, chosen by ``scheduler`` and ``device``:

* ``None`` or ``"local"`` -- this machine: in this process for ``jobs=1``, else a supervised
  process pool (:mod:`segeval.engine.local`): a worker that dies becomes the one-line error of
  the item it held, never a hang.
* ``"threads"`` -- this machine, a pool of threads of this process (:mod:`segeval.engine.threads`):
  the compiled kernels release the GIL; no fork, no pickling, but no isolation either.
* ``"dask-local"`` -- a ``dask.distributed.LocalCluster`` started for the run;
  ``"tcp://host:port"`` (or any address a ``dask.distributed.Client`` accepts) -- an existing
  cluster (:mod:`segeval.engine.dask`, extra ``[dask]``).
* ``device="cuda"`` -- decode on the CPU, count on this machine's GPU in batches
  (:mod:`segeval.engine.cuda`, extra ``[gpu]``), for plans that can (``plan.count``).

An engine module defines ``reduce(plan, *, jobs, scheduler, progress) -> (stats, rows)``;
adding one is that module plus one line in :data:`ENGINES`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Sequence
from typing import Any

from segeval.errors import UsageError, bad_value

ENGINES = {"local": "segeval.engine.local", "threads": "segeval.engine.threads",
           "dask": "segeval.engine.dask", "cuda": "segeval.engine.cuda"}

#: ``progress(done, total)``: items finished so far, and all items of the run.
Progress = Callable[[int, int], Any]


def engine_name(scheduler: str | None, device: str = "auto") -> str:
    """The :data:`ENGINES` key for a ``scheduler`` and ``device``."""
    if device == "cuda":
        if scheduler not in (None, "local"):
            raise UsageError(f"device='cuda' counts on this machine's GPU; it does not run on "
                             f"scheduler {scheduler!r}", parameters=("device", "scheduler"))
        return "cuda"
    if device not in ("auto", "cpu"):
        raise bad_value("device", "'auto', 'cpu' or 'cuda'", device)
    if scheduler is not None and not isinstance(scheduler, str):
        raise bad_value("scheduler", "None, 'local', 'threads', 'dask-local' or a Dask address",
                        scheduler)
    if scheduler == "threads":
        return "threads"
    return "local" if scheduler in (None, "local") else "dask"


def check_jobs(jobs: int | None) -> int | None:
    """``jobs`` as given; :func:`~segeval.errors.bad_value` unless ``None`` or a positive int."""
    if jobs is not None and (isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1):
        raise bad_value("jobs", "a positive integer or None (all cores)", jobs)
    return jobs


def run(plan: Any, *, jobs: int | None = None, scheduler: str | None = None,
        device: str = "auto", progress: Progress | None = None) -> Any:
    """Run ``plan`` and return ``plan.finish(stats, rows)``.

    ``jobs`` worker processes (``None``: all cores; ``1``: in this process); ``scheduler`` and
    ``device`` pick the engine (see the module docstring); ``progress(done, total)`` is called
    once before the work starts (``done`` 0) and as items finish. Errors raised by
    ``plan.score`` (a :class:`~segeval.errors.SegevalError` naming the file) are re-raised
    here; the other items' work is stopped.
    """
    check_jobs(jobs)
    module = importlib.import_module(ENGINES[engine_name(scheduler, device)])
    total = len(plan.items)
    done = 0

    def advance(k: int) -> None:
        nonlocal done
        done += k
        if progress is not None:
            progress(done, total)

    if progress is not None:
        progress(0, total)
    if not plan.items:
        return plan.finish(plan.zero, [])
    stats, rows = module.reduce(plan, jobs=jobs, scheduler=scheduler, progress=advance)
    return plan.finish(stats, rows)


# ---------------------------------------------------------------- pieces the engines share


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
