"""segeval: fast, exact evaluation of image segmentation.

Public names (imported lazily, so that ``import segeval`` and the CLI start fast)::

    from segeval import confusion_matrix, ConfusionMatrix, SemanticResult
    from segeval import miou, iou, pixel_accuracy, mean_pixel_accuracy, fwiou, dice, mean_dice
    from segeval import evaluate, SegevalError
    from segeval import coco_mask_ap, InstanceResult
    from segeval import panoptic_quality, PanopticStats, PanopticResult
    from segeval import surface_metrics   # Dice, HD95, ASSD, NSD of 2-D/3-D label arrays

See ``docs/metrics.md`` for the formulas and the NaN / ignore rules.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_LAZY = {
    "ConfusionMatrix": "segeval.core.confusion",
    "SemanticResult": "segeval.core.confusion",
    "confusion_matrix": "segeval.core.confusion",
    "MeanScore": "segeval.core.metrics",
    "iou": "segeval.core.functional",
    "miou": "segeval.core.functional",
    "pixel_accuracy": "segeval.core.functional",
    "mean_pixel_accuracy": "segeval.core.functional",
    "fwiou": "segeval.core.functional",
    "dice": "segeval.core.functional",
    "mean_dice": "segeval.core.functional",
    "evaluate": "segeval.scoring",
    "SegevalError": "segeval.errors",
    "coco_mask_ap": "segeval.core.instance",
    "InstanceResult": "segeval.core.instance",
    "panoptic_quality": "segeval.core.panoptic",
    "PanopticStats": "segeval.core.panoptic",
    "PanopticResult": "segeval.core.panoptic",
    "surface_metrics": "segeval.core.surface",
}

__all__ = [
    "ConfusionMatrix",
    "InstanceResult",
    "MeanScore",
    "PanopticResult",
    "PanopticStats",
    "SegevalError",
    "SemanticResult",
    "__version__",
    "coco_mask_ap",
    "confusion_matrix",
    "dice",
    "evaluate",
    "fwiou",
    "iou",
    "mean_dice",
    "mean_pixel_accuracy",
    "miou",
    "panoptic_quality",
    "pixel_accuracy",
    "surface_metrics",
]

if TYPE_CHECKING:
    from segeval.core.confusion import ConfusionMatrix, SemanticResult, confusion_matrix
    from segeval.core.functional import (
        dice,
        fwiou,
        iou,
        mean_dice,
        mean_pixel_accuracy,
        miou,
        pixel_accuracy,
    )
    from segeval.core.instance import InstanceResult, coco_mask_ap
    from segeval.core.metrics import MeanScore
    from segeval.core.panoptic import PanopticResult, PanopticStats, panoptic_quality
    from segeval.core.surface import surface_metrics
    from segeval.errors import SegevalError
    from segeval.scoring import evaluate


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'segeval' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
