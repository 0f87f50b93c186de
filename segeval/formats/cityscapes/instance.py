"""Cityscapes instance segmentation scored as COCO mask AP (``--format cityscapes --task
instance``).

Ground truth: ``*_instanceIds.png`` below ``--gt`` (the dataset root, ``gtFine``,
``gtFine/<split>`` or a city folder; above the split folders, ``--split`` picks one, default
``val``). Pixel value
``label * 1000 + k`` is instance ``k`` of label id ``label``; a pixel equal to the label id of a
class with instances is a group region, scored as ``iscrowd=1`` (see
:mod:`segeval.core.instance_masks`). The evaluated classes are those with instances that are
not ignored in evaluation: person, rider, car, truck, bus, train, motorcycle, bicycle (label
ids 24..28, 31..33); caravan and trailer objects are not scored.

Predictions: the Cityscapes results layout. For image ``<city>_<seq>_<frame>`` one text file
``<city>_<seq>_<frame>*.txt`` anywhere below ``--pred`` lists one instance per line::

    relative/path/to/mask.png <label id> <confidence>

where the mask path is relative to the text file and the mask is a PNG of the image's size,
non-zero = inside. Two text files for one image are an error (as in the official script).

The numbers are COCO mask AP/AR (pycocotools, as detectron2 reports for Cityscapes), not the
official ``evalInstanceLevelSemanticLabeling`` AP, which matches and averages differently.
Images are read in worker processes, and each mask is RLE-encoded as it is read: memory holds
RLE strings, never a dataset of dense masks.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segeval.core.instance import InstanceResult, coco_mask_ap
from segeval.core.instance_masks import annotations_from_instance_ids, results_from_masks
from segeval.errors import (
    DataError,
    FileFormatError,
    MissingFileError,
    SizeMismatchError,
    UsageError,
)
from segeval.formats import log
from segeval.formats.coco.instance import split_instance_options
from segeval.formats.png import read_label_png

TASK = "instance"

#: label id -> name of the Cityscapes classes scored for instances
INSTANCE_CLASSES = {24: "person", 25: "rider", 26: "car", 27: "truck", 28: "bus", 31: "train",
                    32: "motorcycle", 33: "bicycle"}
_KEY = re.compile(r"^([^_]+_\d+_\d+)")
_SHOW = 5


@dataclass(frozen=True)
class _Image:
    key: str
    image_id: int
    gt: Path
    pred: Path | None


def _key(path: Path) -> str | None:
    m = _KEY.match(path.name)
    return m.group(1) if m else None


def _gt_root(gt: Path, split: str | None) -> Path:
    if (gt / "gtFine").is_dir():  # the dataset root
        gt = gt / "gtFine"
    if split is not None:
        root = gt / split
        if not root.is_dir():
            raise MissingFileError(f"{root}: no folder for split {split!r}")
        return root
    if any((gt / s).is_dir() for s in ("train", "val", "test")) and not any(
            gt.glob("*_instanceIds.png")):
        if not (gt / "val").is_dir():
            raise UsageError(f"{gt}: holds split folders but no 'val'; pass --split")
        return gt / "val"
    return gt


def find_images(pred: Path, gt: Path, split: str | None = None) -> list[_Image]:
    """Pair every ground-truth ``*_instanceIds.png`` with its prediction list file."""
    root = _gt_root(gt, split)
    gts: dict[str, Path] = {}
    for path in sorted(root.rglob("*_instanceIds.png")):
        key = _key(path)
        if key is None:
            raise DataError(f"{path}: not a Cityscapes name (<city>_<seq>_<frame>_...)")
        if key in gts:
            raise DataError(f"{path}: a second ground truth for {key} (also {gts[key]})")
        gts[key] = path
    if not gts:
        raise MissingFileError(f"{root}: no *_instanceIds.png ground-truth files found")
    lists: dict[str, Path] = {}
    extra = []
    for path in sorted(pred.rglob("*.txt")):
        key = _key(path)
        if key is None or key not in gts:
            extra.append(path)
            continue
        if key in lists:
            raise DataError(f"{path}: a second prediction list for {key} (also {lists[key]})")
        lists[key] = path
    if extra:
        shown = ", ".join(p.name for p in extra[:_SHOW])
        log.warning("%d text files under %s match no ground-truth image and are ignored: %s",
                    len(extra), pred, shown)
    return [_Image(key, i, path, lists.get(key)) for i, (key, path) in
            enumerate(gts.items(), 1)]


def read_prediction_list(path: Path) -> list[tuple[Path, int, float]]:
    """The ``(mask path, label id, confidence)`` lines of one Cityscapes prediction list."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: cannot be read ({getattr(e, 'strerror', None) or e})"
                              ) from None
    out = []
    for n, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        try:
            if len(fields) != 3:
                raise ValueError
            label, score = int(fields[1]), float(fields[2])
        except ValueError:
            raise FileFormatError(f"{path}:{n}: expected '<mask.png> <label id> <confidence>', "
                                  f"found {line.strip()!r}") from None
        if label not in INSTANCE_CLASSES:
            names = ", ".join(f"{k} {v}" for k, v in INSTANCE_CLASSES.items())
            raise DataError(f"{path}:{n}: label id {label} is not an evaluated instance class "
                            f"({names})")
        if not math.isfinite(score):
            raise DataError(f"{path}:{n}: confidence {fields[2]} is not a finite number")
        out.append((path.parent / fields[0], label, score))
    return out


def _read_image(missing: str, image: _Image) -> tuple[dict[str, Any], list[dict[str, Any]],
                                                       list[dict[str, Any]]]:
    """One image: its COCO image entry, ground-truth annotations and results (all RLE)."""
    ids = read_label_png(image.gt)
    h, w = ids.shape
    entry = {"id": image.image_id, "file_name": image.key, "height": h, "width": w}
    anns = annotations_from_instance_ids(ids, image.image_id, INSTANCE_CLASSES)
    del ids
    if image.pred is None:
        if missing != "zero":
            raise MissingFileError(f"no prediction list for {image.key} ({image.gt})")
        return entry, anns, []
    results = []
    for mask_path, label, score in read_prediction_list(image.pred):
        mask = read_label_png(mask_path)
        if mask.shape != (h, w):
            raise SizeMismatchError(f"{mask_path}: mask of size {mask.shape[0]}x{mask.shape[1]} "
                                    f"(height x width) for {image.key} of size {h}x{w}")
        results += results_from_masks([mask], [label], [score], image.image_id)
    return entry, anns, results


def evaluate(
    pred: Path,
    gt: Path,
    *,
    split: str | None = None,
    missing: str = "error",
    jobs: int | None = None,
    per_image: bool = False,
    progress: Callable[[int], Any] | None = None,
    on_start: Callable[[int], Any] | None = None,
    **options: Any,
) -> InstanceResult:
    """COCO mask AP of Cityscapes instance predictions under ``pred`` against ``gt``.

    ``missing="zero"`` counts an image without a prediction list as having no detections
    (default: an error). Other options as in :func:`segeval.core.instance.coco_mask_ap`.
    """
    known = split_instance_options("cityscapes instance", options, per_image)
    if missing not in ("error", "zero"):
        raise UsageError(f"--missing must be 'error' or 'zero', not {missing!r}")
    for path, role in ((gt, "--gt"), (pred, "--pred")):
        if not Path(path).is_dir():
            raise UsageError(f"{path}: {role} of the cityscapes format is a folder")
    images = find_images(Path(pred), Path(gt), split)
    absent = [im.key for im in images if im.pred is None]
    if absent and missing == "error":
        shown = ", ".join(absent[:_SHOW]) + (f" and {len(absent) - _SHOW} more"
                                              if len(absent) > _SHOW else "")
        raise MissingFileError(f"{pred}: no prediction list for {len(absent)} of {len(images)} "
                               f"ground-truth images ({shown}); use --missing zero to count "
                               f"them as having no detections")
    if on_start:
        on_start(len(images))
    from segeval.engine.local import map_items

    entries, anns, results = [], [], []
    for entry, a, r in map_items(functools.partial(_read_image, missing), images, jobs=jobs,
                                 progress=progress):
        entries.append(entry)
        anns += a
        results += r
    for k, ann in enumerate(anns, 1):
        ann["id"] = k
    dataset = {"images": entries, "annotations": anns,
               "categories": [{"id": k, "name": v} for k, v in INSTANCE_CLASSES.items()]}
    return coco_mask_ap(dataset, results, jobs=jobs, gt_name=str(gt), results_name=str(pred),
                        format="cityscapes", **known)
