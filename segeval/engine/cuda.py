"""Scoring label files with the counting on a GPU: decode on the CPU, count on the GPU in batches.

Worker processes (``jobs``, as on the CPU path) only decode the PNG pairs and send the label
arrays back; this process stacks up to :data:`BATCH` consecutive pairs of the same shape and
dtype, copies each stack to the GPU in one transfer and counts it there with one kernel launch
(:func:`segeval.core.kernels.cuda.count_pixels_cuda`, through ``ConfusionMatrix.update``). Only
this process touches CUDA, so the forked workers never use a CUDA context.

The counts are the same integers as on the CPU, so the result does not depend on the device,
the batch size or ``jobs``. When a batch holds a bad label, its pairs are counted one by one to
name the file (nothing of that batch is added). With per-image rows, every pair is counted on
its own; a missing prediction (``missing="zero"``) is counted on the CPU.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from segeval.errors import UsageError

#: Items counted per GPU launch.
BATCH = 8


def reduce(plan: Any, *, jobs: int | None = None, scheduler: str | None = None,
           progress: Callable[[int], Any] | None = None, device: str = "cuda",
           batch: int = BATCH) -> tuple[Any, list[Any]]:
    """The GPU engine of :func:`segeval.engine.run`: ``plan.load`` in the local workers,
    ``plan.count`` here on stacks of up to ``batch`` items of one shape and dtype.

    ``device="cpu"`` runs the same batching on the host (how it is tested without a GPU).
    Raises :class:`~segeval.errors.DeviceError` first if CuPy or a CUDA device is missing, and
    :class:`~segeval.errors.UsageError` for a plan that cannot count in batches.
    """
    from segeval.core.device import check_device, require_cuda

    if plan.load is None or plan.count is None:
        raise UsageError(f"device='cuda': the {plan.format} format counts on the CPU only",
                         parameters=("device",))
    if check_device(device) == "cuda":
        require_cuda("device='cuda'", parameters=("device",))
    from segeval.engine.local import add_up

    # (batched reports the progress itself, a batch at a time)
    return add_up(plan, batched(plan, jobs=jobs, progress=progress, device=device, batch=batch),
                  None)


def _key(loaded: Any) -> Any:
    """Items stack together when every array they hold has the same shape and dtype."""
    return tuple((a.shape, a.dtype) if hasattr(a, "shape") else None for a in loaded[1:])


def batched(plan: Any, *, jobs: int | None = None,
            progress: Callable[[int], Any] | None = None, device: str = "cuda",
            batch: int = BATCH) -> Iterator[tuple[Any, Any]]:
    """Yield ``(stats, row or None)`` for every item or batch of items, in input order."""
    from segeval.engine.local import map_items

    waiting: list[Any] = []

    def flush() -> Iterator[tuple[Any, Any]]:
        if waiting:
            yield from plan.count(list(waiting), device)
            if progress:
                progress(len(waiting))
            waiting.clear()

    for loaded in map_items(plan.load, plan.items, jobs=jobs, name_of=plan.name_of):
        if waiting and _key(waiting[0]) != _key(loaded):
            yield from flush()
        waiting.append(loaded)
        if len(waiting) >= batch:
            yield from flush()
    yield from flush()
