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

from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from segeval.core.confusion import ConfusionMatrix
from segeval.errors import LabelError

if TYPE_CHECKING:
    from segeval.formats import Pair
    from segeval.formats.semantic import _Task

#: Pairs counted per GPU launch.
BATCH = 8


def check_cuda_options(scheduler: str | None) -> None:
    """Raise before any work if ``--device cuda`` cannot run: no GPU, or a cluster scheduler.

    :class:`~segeval.errors.DeviceError` names the missing piece (CuPy, a CUDA device);
    :class:`~segeval.errors.UsageError` for a ``scheduler`` other than this machine's.
    """
    from segeval.core.device import require_cuda
    from segeval.errors import UsageError

    if scheduler not in (None, "local"):
        raise UsageError(f"--device cuda counts on this machine's GPU; it does not run on "
                         f"--scheduler {scheduler}")
    require_cuda("--device cuda")


def reduce_pairs_cuda(
    task: _Task,
    pairs: Sequence[Pair],
    *,
    jobs: int | None = None,
    progress: Callable[[int], Any] | None = None,
    batch: int = BATCH,
    device: str = "cuda",
) -> tuple[ConfusionMatrix, list[dict[str, Any]]]:
    """The dataset's confusion matrix and per-image rows (when asked for), in input order.

    What :func:`segeval.engine.reduce_items` returns for the CPU path, from
    :func:`score_pairs_batched`.
    """
    total = ConfusionMatrix(task.num_classes, task.ignore_index, task.class_names)
    rows: list[dict[str, Any]] = []
    for cm, row in score_pairs_batched(task, pairs, device=device, jobs=jobs,
                                       progress=progress, batch=batch):
        total += cm
        if row is not None:
            rows.append(row)
    return total, rows


def decode_pair(pair: Pair) -> tuple[np.ndarray | None, np.ndarray]:
    """Decode one pair of label PNGs: ``(pred or None when missing, gt)``."""
    from segeval.formats.png import read_label_png

    gt = read_label_png(pair.gt)
    return (None if pair.pred is None else read_label_png(pair.pred)), gt


def score_pairs_batched(
    task: _Task,
    pairs: Sequence[Pair],
    *,
    device: str = "cuda",
    jobs: int | None = None,
    progress: Callable[[int], Any] | None = None,
    batch: int = BATCH,
) -> Iterator[tuple[ConfusionMatrix, dict[str, Any] | None]]:
    """Yield ``(confusion matrix, per-image row or None)`` for every pair or batch of pairs.

    Summing the matrices gives the dataset's matrix. ``task`` is the semantic pipeline's
    :class:`~segeval.formats.semantic._Task`; ``progress(1)`` is called as each pair is decoded.
    ``device`` is where the stacks are counted (``"cuda"``; ``"cpu"`` runs the same batching on
    the host, which is how it is tested without a GPU). Raises
    :class:`~segeval.errors.DeviceError` first if CuPy or a CUDA device is missing.
    """
    from segeval.core.device import check_device, require_cuda
    from segeval.engine.local import map_items
    from segeval.formats.semantic import _image_row

    if check_device(device) == "cuda":
        require_cuda("--device cuda")

    def new() -> ConfusionMatrix:
        cm = ConfusionMatrix(task.num_classes, task.ignore_index, task.class_names)
        cm.device = device
        return cm

    waiting: list[tuple[Pair, np.ndarray, np.ndarray]] = []

    def flush() -> Iterator[tuple[ConfusionMatrix, None]]:
        if not waiting:
            return
        cm = new()
        try:
            if len(waiting) == 1:
                pair, p, g = waiting[0]
                cm.update(p, g, pred_name=str(pair.pred), gt_name=str(pair.gt))
            else:
                cm.update(np.stack([p for _, p, _ in waiting]),
                          np.stack([g for _, _, g in waiting]))
        except LabelError:
            for pair, p, g in waiting:  # find the file: this raises for the first bad one
                new().update(p, g, pred_name=str(pair.pred), gt_name=str(pair.gt))
            raise
        waiting.clear()
        yield cm, None

    decoded = map_items(decode_pair, pairs, jobs=jobs, progress=progress)
    try:
        for pair, (pred, gt) in zip(pairs, decoded, strict=True):
            if pred is None or task.per_image:
                cm = ConfusionMatrix(task.num_classes, task.ignore_index, task.class_names)
                if pred is None:
                    cm.update_missing(gt, gt_name=str(pair.gt))
                else:
                    cm = new().update(pred, gt, pred_name=str(pair.pred), gt_name=str(pair.gt))
                yield cm, (_image_row(task, pair, cm) if task.per_image else None)
                continue
            if pred.shape != gt.shape:  # update() raises SizeMismatchError naming the files
                new().update(pred, gt, pred_name=str(pair.pred), gt_name=str(pair.gt))
            if waiting and (waiting[0][1].shape, waiting[0][1].dtype, waiting[0][2].dtype) != (
                    pred.shape, pred.dtype, gt.dtype):
                yield from flush()
            waiting.append((pair, pred, gt))
            if len(waiting) >= batch:
                yield from flush()
        yield from flush()
    finally:
        decoded.close()  # the worker pool is closed also when a pair is bad
