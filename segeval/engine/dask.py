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
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

from segeval.engine import chunked, merge, process_chunk
from segeval.errors import UsageError


@contextlib.contextmanager
def client_for(scheduler: str, jobs: int | None) -> Iterator[Any]:
    """A connected ``dask.distributed.Client`` (and its own ``LocalCluster`` if asked for)."""
    try:
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise UsageError(f"scheduler {scheduler!r} needs dask.distributed: "
                         f"pip install 'segeval[dask]'", parameters=("scheduler",)) from None
    if scheduler == "dask-local":
        from segeval.core.device import available_cores

        workers = jobs or available_cores()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                          dashboard_address=":0", silence_logs=logging.CRITICAL) as cluster, \
                Client(cluster) as client:
            yield client
        return
    try:
        client = Client(scheduler, timeout="10s")
    except OSError as e:
        raise UsageError(f"scheduler {scheduler!r}: cannot connect ({e})",
                         parameters=("scheduler",)) from None
    except (ValueError, TypeError) as e:  # distributed cannot parse it as an address
        why = " ".join(str(e).split())
        raise UsageError(f"scheduler {scheduler!r} is neither 'dask-local' nor the address of "
                         f"a Dask cluster such as tcp://host:8786 ({why})",
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
