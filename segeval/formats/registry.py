"""``--format`` name -> adapter module. Adding a format touches its module and one line here.

An adapter module defines ``load(pred, gt, **options) -> SemanticDataset``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from segeval.errors import UsageError

ADAPTERS: dict[str, str] = {
    "voc": "segeval.formats.voc",
    "folder": "segeval.formats.folder",
    "coco-panoptic": "segeval.formats.coco_panoptic",
    "cityscapes-panoptic": "segeval.formats.cityscapes_panoptic",
}


def get_adapter(name: str) -> ModuleType:
    """The adapter module for a format name; :class:`UsageError` for an unknown name."""
    try:
        return importlib.import_module(ADAPTERS[name])
    except KeyError:
        raise UsageError(
            f"unknown format {name!r} (known: {', '.join(sorted(ADAPTERS))})"
        ) from None
