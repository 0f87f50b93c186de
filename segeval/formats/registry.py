"""``--format`` name -> adapter module. Adding a format touches its module and one line here.

An adapter module defines ``load(pred, gt, **options) -> SemanticDataset``, or
``evaluate(pred, gt, **options)``. A key ``"<format>/<task>"`` serves ``--task <task>`` of that
format; a module's ``TASK`` names the task it serves (semantic when absent).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from segeval.errors import UsageError

ADAPTERS: dict[str, str] = {
    "voc": "segeval.formats.voc",
    "folder": "segeval.formats.folder",
    "coco": "segeval.formats.coco.instance",
    "cityscapes/instance": "segeval.formats.cityscapes.instance",
    "coco-panoptic": "segeval.formats.coco.panoptic",
    "cityscapes-panoptic": "segeval.formats.cityscapes.panoptic",
    "coco/panoptic": "segeval.formats.coco.panoptic",
    "cityscapes/panoptic": "segeval.formats.cityscapes.panoptic",
    "cityscapes": "segeval.formats.cityscapes",
}


def get_adapter(name: str, task: str | None = None) -> ModuleType:
    """The adapter module for a format name; :class:`UsageError` for an unknown name.

    With a ``task``, a ``"<format>/<task>"`` entry (e.g. ``cityscapes/instance``) comes first.
    """
    if task is not None and f"{name}/{task}" in ADAPTERS:
        return importlib.import_module(ADAPTERS[f"{name}/{task}"])
    try:
        return importlib.import_module(ADAPTERS[name])
    except KeyError:
        formats = sorted({k.split("/")[0] for k in ADAPTERS})
        raise UsageError(
            f"unknown format {name!r} (known: {', '.join(formats)})" if name not in formats
            else f"the {name} format has no {task or 'semantic'} evaluation"
        ) from None
