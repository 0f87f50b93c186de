"""Cityscapes, every task in one place.

* :mod:`~segeval.formats.cityscapes.labels` -- the official label table and what derives from
  it (evaluated classes and categories, iIoU weights, the instance classes);
* :mod:`~segeval.formats.cityscapes.semantic` -- pixel-level semantic labeling
  (``--format cityscapes``): pairing, per-pair scoring, the official result JSON;
* :mod:`~segeval.formats.cityscapes.stats` -- its mergeable statistics and scores (as
  cityscapesScripts' ``evalPixelLevelSemanticLabeling``);
* :mod:`~segeval.formats.cityscapes.fused` -- the one-pass decode-and-count of a pair;
* :mod:`~segeval.formats.cityscapes.instance` -- instance masks scored as COCO mask AP
  (``--task instance``);
* :mod:`~segeval.formats.cityscapes.panoptic` -- ``cityscapes-panoptic``.

The names below are re-exported for convenience (``segeval.formats.cityscapes.LABELS``).
"""

from __future__ import annotations

from segeval.formats.cityscapes.labels import (
    AVG_CLASS_SIZE,
    BY_ID,
    CATEGORIES,
    CLASS_NAMES,
    EVAL_CATEGORIES,
    EVAL_LABEL_IDS,
    EVAL_LABELS,
    INSTANCE_CLASSES,
    INSTANCE_OFFSET,
    LABELS,
    NUM_LABEL_IDS,
    Label,
    category_label_ids,
    instance_categories,
)
from segeval.formats.cityscapes.semantic import (
    GT_SUFFIX,
    INSTANCE_SUFFIX,
    CityscapesPair,
    CityscapesReference,
    ground_truth_files,
    image_key,
    official_json,
)

__all__ = [
    "AVG_CLASS_SIZE", "BY_ID", "CATEGORIES", "CLASS_NAMES", "EVAL_CATEGORIES", "EVAL_LABELS",
    "EVAL_LABEL_IDS", "GT_SUFFIX", "INSTANCE_CLASSES", "INSTANCE_OFFSET", "INSTANCE_SUFFIX",
    "LABELS", "NUM_LABEL_IDS", "CityscapesPair", "CityscapesReference", "Label",
    "category_label_ids", "ground_truth_files", "image_key", "instance_categories",
    "official_json",
]
