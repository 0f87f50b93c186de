"""The metrics as functions of label arrays: ``metric(confusion_matrix(pred, gt, ...))``.

Each function here is the metric of the same name in :mod:`segeval.core.metrics`, applied to
the confusion matrix of ``pred`` and ``gt``; no formula is written twice. For many images,
accumulate one :class:`~segeval.ConfusionMatrix` instead (metrics are computed on the summed
matrix, not averaged per image).

>>> import numpy as np
>>> from segeval import miou
>>> gt = np.array([[0, 0, 1], [1, 1, 255]])
>>> pred = np.array([[0, 1, 1], [1, 1, 0]])
>>> round(miou(pred, gt, num_classes=2), 4)
0.625
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from segeval.core import metrics
from segeval.core.confusion import confusion_matrix

__all__ = ["dice", "fwiou", "iou", "mean_dice", "mean_pixel_accuracy", "miou", "pixel_accuracy"]

_ARRAY_PARAMS = [
    inspect.Parameter("pred", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Any"),
    inspect.Parameter("gt", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="Any"),
    inspect.Parameter("num_classes", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation="int"),
    inspect.Parameter("ignore_index", inspect.Parameter.POSITIONAL_OR_KEYWORD, default=255,
                      annotation="int | None"),
]


def _array_face(metric: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a metric of a confusion matrix as a function of ``(pred, gt, num_classes, ...)``."""
    options = list(inspect.signature(metric).parameters.values())[1:]  # after the matrix

    def face(pred: Any, gt: Any, num_classes: int, ignore_index: int | None = 255,
             **kwargs: Any) -> Any:
        if "absent" in kwargs:  # refused before any counting
            metrics.check_absent(kwargs["absent"])
        return metric(confusion_matrix(pred, gt, num_classes, ignore_index), **kwargs)

    face.__name__ = face.__qualname__ = metric.__name__
    face.__module__ = __name__
    face.__signature__ = inspect.signature(metric).replace(  # type: ignore[attr-defined]
        parameters=_ARRAY_PARAMS + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
                                    for p in options]
    )
    face.__doc__ = (
        f"``segeval.core.metrics.{metric.__name__}`` of the confusion matrix of ``pred`` and "
        f"``gt``.\n\n``pred`` and ``gt``: integer class indices of the same shape (``H x W`` or "
        f"``N x H x W``); ground-truth pixels equal to ``ignore_index`` (default 255, ``None`` "
        f"for none) are dropped.\n\n{inspect.getdoc(metric)}"
    )
    return face


iou = _array_face(metrics.iou)
miou = _array_face(metrics.miou)
pixel_accuracy = _array_face(metrics.pixel_accuracy)
mean_pixel_accuracy = _array_face(metrics.mean_pixel_accuracy)
fwiou = _array_face(metrics.fwiou)
dice = _array_face(metrics.dice)
mean_dice = _array_face(metrics.mean_dice)
