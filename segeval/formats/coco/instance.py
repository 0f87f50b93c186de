"""COCO instance segmentation: ``--gt instances.json --pred results.json``.

Ground truth is a COCO instances file (``images``, ``categories``, ``annotations`` with
polygons, uncompressed or compressed RLE, ``iscrowd``); predictions are the standard detection
results list (``image_id``, ``category_id``, ``score``, ``segmentation`` as compressed RLE;
polygons and uncompressed RLE are accepted and compressed). Scored with
:func:`segeval.core.instance.coco_mask_ap` (pycocotools ``COCOeval(iouType="segm")``); see
:mod:`segeval.core.coco_input` for every check and for the ``bbox`` rule.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from segeval.core.instance import InstanceResult, coco_mask_ap
from segeval.errors import UsageError
from segeval.formats import reject_options

TASK = "instance"

#: options of :func:`coco_mask_ap` that ``evaluate`` passes through
INSTANCE_OPTIONS = ("iou_thresholds", "max_dets", "area_ranges", "category_ids", "image_ids",
                    "keep_bbox", "backend", "verbose")


def split_instance_options(fmt: str, options: dict[str, Any], per_image: bool
                           ) -> dict[str, Any]:
    """The :func:`coco_mask_ap` options among ``options``; a UsageError for any other."""
    if per_image:
        raise UsageError(f"--per-image: the {fmt} format gives no per-image rows (COCO AP "
                         f"is defined over the whole dataset)")
    known = {k: options.pop(k) for k in INSTANCE_OPTIONS if k in options}
    reject_options(fmt, options)
    return known


def evaluate(
    pred: Path,
    gt: Path,
    *,
    jobs: int | None = None,
    per_image: bool = False,
    progress: Callable[[int], Any] | None = None,
    on_start: Callable[[int], Any] | None = None,
    **options: Any,
) -> InstanceResult:
    """Score the results file ``pred`` against the instances file ``gt`` (COCO mask AP)."""
    known = split_instance_options("coco", options, per_image)
    for path, role in ((gt, "--gt"), (pred, "--pred")):
        if Path(path).is_dir():
            raise UsageError(f"{path}: {role} of the coco format is a JSON file, not a folder")
    return coco_mask_ap(Path(gt), Path(pred), jobs=jobs, format="coco", **known)
