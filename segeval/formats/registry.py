"""``--format`` name -> adapter module. Adding a format touches its module and one line here.

An adapter module defines ``TASK`` (the task it serves: ``"semantic"``, ``"panoptic"`` or
``"instance"``), ``OPTIONS`` (the :class:`~segeval.formats.base.Options` fields it uses),
``reference(gt, options)`` (the ground truth's listing and metadata) and
``plan(pred_tree, reference, options)`` (a :class:`~segeval.formats.base.Plan`). A key
``"<format>/<task>"`` serves ``task=<task>`` of that format.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from segeval.errors import UsageError, bad_value, one_of

ADAPTERS: dict[str, str] = {
    "voc": "segeval.formats.voc",
    "folder": "segeval.formats.folder",
    "coco": "segeval.formats.coco.instance",
    "coco/panoptic": "segeval.formats.coco.panoptic",
    "coco-panoptic": "segeval.formats.coco.panoptic",
    "cityscapes": "segeval.formats.cityscapes.semantic",
    "cityscapes/instance": "segeval.formats.cityscapes.instance",
    "cityscapes/panoptic": "segeval.formats.cityscapes.panoptic",
    "cityscapes-panoptic": "segeval.formats.cityscapes.panoptic",
    "ade20k": "segeval.formats.ade20k",
    "nifti": "segeval.formats.nifti",
}

#: The ``--format`` names (no task suffix), in the order the CLI lists them.
FORMATS: tuple[str, ...] = tuple(dict.fromkeys(k.split("/")[0] for k in ADAPTERS))
#: The tasks (``--task``).
TASKS: tuple[str, ...] = ("semantic", "panoptic", "instance")


def get_adapter(name: str, task: str | None = None) -> ModuleType:
    """The adapter module for a format name (and ``task``);
    :class:`~segeval.errors.InvalidParameterError` for an unknown name or task, and
    :class:`~segeval.errors.UsageError` for a task the format does not have.

    With a ``task``, a ``"<format>/<task>"`` entry (e.g. ``cityscapes/instance``) comes first;
    else the format's own adapter, which must serve ``task``.
    """
    if not isinstance(name, str) or name not in ADAPTERS:
        raise bad_value("format", one_of(sorted(FORMATS)), name)
    if task is not None and (not isinstance(task, str) or task not in TASKS):
        raise bad_value("task", one_of((*TASKS, None)), task)
    if task is not None and f"{name}/{task}" in ADAPTERS:
        return importlib.import_module(ADAPTERS[f"{name}/{task}"])
    adapter = importlib.import_module(ADAPTERS[name])
    if task is not None and task != adapter.TASK:
        does = ("has only semantic evaluation" if adapter.TASK == "semantic"
                else f"does {adapter.TASK} evaluation")
        raise UsageError(f"task {task!r}: the {name} format {does}", parameters=("task",))
    return adapter
