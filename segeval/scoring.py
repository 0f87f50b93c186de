"""Files in, a result out: what ``segeval score`` runs, for every format.

``evaluate(pred, gt, format, **options)`` hands the paths and options to the format's adapter
(see :mod:`segeval.formats.registry`). An adapter module either defines ``evaluate(pred, gt,
**options)`` itself, or only ``load(pred, gt, ...)`` returning a
:class:`~segeval.formats.SemanticDataset`, which is then scored by
:func:`segeval.formats.semantic.evaluate_semantic`.

Every result has ``task``, ``to_dict()`` (the JSON document), ``per_class()`` (JSON-safe rows)
and ``per_image`` (rows, when asked for).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from segeval.errors import UsageError
from segeval.formats.registry import get_adapter


def evaluate(
    pred: str | os.PathLike[str],
    gt: str | os.PathLike[str],
    format: str = "folder",
    **options: Any,
) -> Any:
    """Score the predictions at ``pred`` against the ground truth at ``gt``.

    ``format`` names the adapter (``"voc"``, ``"folder"``, ``"coco"``, ...); ``task``
    (``"semantic"``, ``"panoptic"``, ``"instance"``) picks one of a format's evaluations, e.g.
    ``format="cityscapes", task="instance"``. Options common to all formats:
    ``jobs`` (worker processes, default all cores), ``per_image`` (fill ``result.per_image``),
    ``progress(k)`` and ``on_start(n)`` callbacks. Semantic formats also take ``num_classes``,
    ``class_names``, ``ignore_index``, ``split``, ``missing`` (``"error"`` or ``"zero"``) and
    ``absent`` (see :func:`segeval.formats.semantic.evaluate_semantic`). An option a format does not
    use is a :class:`~segeval.errors.UsageError`.

    Example (the bundled example data, from the repository root)::

        result = segeval.evaluate("examples/voc/predictions", "examples/voc/VOC2012", "voc")
        print(result.miou, result.miou.n)
    """
    task = options.pop("task", None)
    adapter = get_adapter(format, task)
    adapter_task = getattr(adapter, "TASK", None)
    if task is not None and task != (adapter_task or task):
        raise UsageError(f"--task {task}: the {format} format does {adapter_task} evaluation")
    if task not in (None, "semantic") and adapter_task is None:
        if not hasattr(adapter, "evaluate"):
            raise UsageError(f"--task {task}: the {format} format has only semantic evaluation")
        options["task"] = task  # the adapter decides
    if hasattr(adapter, "evaluate"):
        return adapter.evaluate(Path(pred), Path(gt), **options)
    from segeval.formats.semantic import evaluate_semantic

    return evaluate_semantic(adapter.load, Path(pred), Path(gt), **options)
