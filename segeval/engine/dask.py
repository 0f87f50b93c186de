"""The Dask engine: chunks of items as tasks on a ``dask.distributed`` cluster (extra ``[dask]``).

``scheduler="dask-local"`` starts a ``LocalCluster`` (one single-threaded worker process per
core, or ``jobs``) for the run and closes it afterwards; any other value is passed to
``dask.distributed.Client`` as the address of an existing cluster (``tcp://host:8786``).

What moves over the network: each task carries the kernel (a small picklable function with its
settings) and a chunk of work items (file paths, not pixels); each returns the chunk's merged
statistics (e.g. a C x C integer matrix) and its per-image rows when they were asked for.
Workers read the files themselves, so they must see the same paths. The chunk results are merged
by a tree reduction on the cluster, adjacent pairs first, so the order of rows is kept and the
result is bit-identical to the local engine. Dask re-runs the tasks of a worker that dies; an
error raised by the kernel (a bad file) is re-raised here as the same exception, naming the file.

A ``LocalCluster`` is started and closed with SIGINT blocked in the calling (main) thread, so
its worker processes inherit SIGINT blocked: a Ctrl-C to the terminal's process group reaches
only this process, which then closes the cluster cleanly (no worker prints a traceback).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from segeval.engine import chunked, merge, process_chunk
from segeval.errors import UsageError


@contextlib.contextmanager
def _sigint_held() -> Iterator[None]:
    """SIGINT blocked in this thread inside the block, where this is the main thread of a POSIX
    process: threads and processes started meanwhile inherit the blocked signal (so the Dask
    workers never see a Ctrl-C sent to the terminal's process group), and a Ctrl-C that comes
    meanwhile is delivered here when the block ends."""
    if not hasattr(signal, "pthread_sigmask") \
            or threading.current_thread() is not threading.main_thread():
        yield
        return
    old = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


@contextlib.contextmanager
def client_for(scheduler: str, jobs: int | None) -> Iterator[Any]:
    """A connected ``dask.distributed.Client`` (and its own ``LocalCluster`` if asked for).

    A ``LocalCluster`` is started and closed with SIGINT held (:func:`_sigint_held`): its
    worker processes inherit SIGINT blocked and never print a ``KeyboardInterrupt``
    traceback, and a Ctrl-C while the cluster starts or closes interrupts the run only once
    the cluster is up (then closed cleanly) or closed, never half-built (whose clean-up would
    print tracebacks at exit).
    """
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(f"scheduler {scheduler!r} needs dask.distributed: "
                         f"pip install 'segeval[dask]'", parameters=("scheduler",)) from None
    if scheduler == "dask-local":
        from segeval.core.device import available_cores

        workers = jobs or available_cores()
        # started now, unblocked: starting it later (from a Dask thread, for the first worker)
        # would unblock SIGINT in that thread, and the workers it starts would see Ctrl-C
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
        stack = contextlib.ExitStack()
        try:
            with _sigint_held():
                cluster = stack.enter_context(LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=":0", silence_logs=logging.CRITICAL))
                client = stack.enter_context(Client(cluster))
            yield client
        finally:
            with _sigint_held():
                stack.close()
        return
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as e:
        raise UsageError(f"scheduler {scheduler!r}: cannot connect ({e})",
                         parameters=("scheduler",)) from None
    with client:
        yield client


def reduce(plan: Any, *, jobs: int | None = None, scheduler: str | None = None,
           progress: Callable[[int], Any] | None = None) -> tuple[Any, list[Any]]:
    """The Dask engine of :func:`segeval.engine.run`."""
    from dask.distributed import as_completed

    items = plan.items
    with client_for(scheduler or "dask-local", jobs) as client:
        workers = max(1, len(client.scheduler_info().get("workers", {})) or (jobs or 1))
        # a few tasks per worker, each big enough to amortise the overhead
        chunk_size = max(1, min(256, -(-len(items) // (workers * 4))))
        chunks = chunked(items, chunk_size)
        futures = client.map(process_chunk, [plan.score] * len(chunks), chunks, pure=False)
        size = {f.key: len(c) for f, c in zip(futures, chunks, strict=True)}
        level = list(futures)
        while len(level) > 1:  # tree reduction, adjacent pairs: keeps the order of rows
            nxt = [client.submit(merge, a, b, pure=False) for a, b in zip(level[::2], level[1::2],
                                                                            strict=False)]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        for done in as_completed(futures):
            done.result()  # raise a kernel's error (a bad file) as soon as it happens
            if progress:
                progress(size[done.key])
        stats, rows = level[0].result()
    return plan.zero + stats, rows
