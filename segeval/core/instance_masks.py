"""Instance masks as arrays -> COCO annotations and results, RLE-encoded as they come.

Nothing here keeps a dense mask: each mask is encoded to compressed RLE
(:func:`segeval.core.rle.encode_mask`) as soon as it is made, so a whole dataset costs only its
RLE strings. The outputs are the dicts :func:`segeval.core.instance.coco_mask_ap` reads.

Instance-id maps follow Cityscapes' ``*_instanceIds.png`` convention: a pixel value ``v >=
1000`` (:data:`~segeval.core.kernels.cityscapes.INSTANCE_OFFSET`) is instance ``v % 1000`` of
label ``v // 1000``; a value ``v < 1000`` is the label
itself, and for a label that has instances it marks a *group* region (several objects not
separated), which becomes an ``iscrowd=1`` annotation (as detectron2 converts Cityscapes).
Ground-truth ``area`` is the mask's pixel count.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from segeval.core.kernels.cityscapes import INSTANCE_OFFSET
from segeval.core.rle import encode_mask
from segeval.errors import Shown, bad_value


def _values(ids: np.ndarray) -> np.ndarray:
    """The distinct values of an id map (bincount for 8/16-bit maps, else unique)."""
    if ids.dtype in (np.uint8, np.uint16):
        return np.flatnonzero(np.bincount(ids.ravel(), minlength=1))
    return np.unique(ids)


def annotations_from_instance_ids(
    ids: np.ndarray,
    image_id: Any,
    categories: Mapping[int, Any] | Iterable[int],
    *,
    crowd: bool = True,
) -> list[dict[str, Any]]:
    """COCO ground-truth annotations (without ``id``) from one ``H x W`` instance-id map.

    ``categories`` are the label ids that have instances (e.g. Cityscapes' 24..28, 31..33);
    other labels are skipped. Returns one dict per object, in increasing pixel value:
    ``image_id``, ``category_id`` (the label id), ``iscrowd`` (1 for a group region, only when
    ``crowd``), ``area`` (pixels, float), ``bbox`` ``[x, y, w, h]`` and ``segmentation``
    (compressed RLE).
    """
    from pycocotools import mask as mask_utils

    if getattr(ids, "ndim", None) != 2 or not np.issubdtype(ids.dtype, np.integer):
        raise bad_value("ids", "a 2-D integer array", ids)
    cats = set(categories)
    anns = []
    for v in _values(ids).tolist():
        label, is_group = (v // INSTANCE_OFFSET, False) if v >= INSTANCE_OFFSET else (v, True)
        if label not in cats or (is_group and not crowd):
            continue
        rle = encode_mask(ids == v)
        coco_rle = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
        anns.append({
            "image_id": image_id,
            "category_id": label,
            "iscrowd": int(is_group),
            "area": float(mask_utils.area(coco_rle)),
            "bbox": [float(x) for x in mask_utils.toBbox(coco_rle)],
            "segmentation": rle,
        })
    return anns


def results_from_masks(
    masks: Iterable[np.ndarray],
    category_ids: Sequence[Any],
    scores: Sequence[float],
    image_id: Any,
) -> list[dict[str, Any]]:
    """COCO results (``image_id``, ``category_id``, ``score``, ``segmentation``) from masks.

    ``masks`` is an ``N x H x W`` array or any iterable of ``H x W`` arrays (non-zero =
    inside), encoded one at a time; ``category_ids`` and ``scores`` have one entry per mask.
    """
    out = []
    for k, mask in enumerate(masks):
        for name, values in (("category_ids", category_ids), ("scores", scores)):
            if k >= len(values):
                raise bad_value(name, "one entry per mask",
                                Shown(f"{len(values)} entries for more masks"))
        out.append({"image_id": image_id, "category_id": category_ids[k],
                    "score": float(scores[k]), "segmentation": encode_mask(np.asarray(mask))})
    for name, values in (("category_ids", category_ids), ("scores", scores)):
        if len(values) != len(out):
            raise bad_value(name, "one entry per mask",
                            Shown(f"{len(values)} entries for {len(out)} masks"))
    return out
