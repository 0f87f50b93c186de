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
The plan's items are the images: each is read in a worker (its instanceIds PNG, its list file
and masks, through :class:`~segeval.formats.base.File` reads, so a leaderboard submission's
archive works as a folder does), and each mask is RLE-encoded as it is read: memory holds RLE
strings, never a dataset of dense masks. The statistic is the images' COCO parts in image order
(:class:`~segeval.core.instance.InstanceParts`), and finishing runs COCOeval once.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from segeval.core.instance import InstanceParts, InstanceResult, finish_parts
from segeval.core.instance_masks import annotations_from_instance_ids, results_from_masks
from segeval.errors import (
    DataError,
    FileFormatError,
    MissingFileError,
    SizeMismatchError,
    UsageError,
)
from segeval.formats.base import File, Folder, Options, Plan, Tree, check_missing, log, shown
from segeval.formats.cityscapes.labels import INSTANCE_CLASSES
from segeval.formats.coco.instance import check_options
from segeval.formats.png import image_pixels, read_label

FORMAT = "cityscapes"
TASK = "instance"
OPTIONS = frozenset({"split", "missing", "backend", "keep_bbox"})
#: The format's name in messages about its options.
_NAME = "cityscapes instance"
_KEY = re.compile(r"^([^_]+_\d+_\d+)")


@dataclass(frozen=True)
class _Image:
    """One ground-truth image (its key ``name``, COCO image id, instanceIds file) and its
    prediction list file (``None`` when there is none)."""

    name: str
    image_id: int
    gt: File
    pred: File | None


@dataclass(frozen=True)
class CityscapesInstanceReference:
    """The ground truth: the given path, the folder searched and the instanceIds file of each
    image key (in report order)."""

    path: Path
    root: Path
    gt: dict[str, File]
    split: str | None = None

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.gt)

    @property
    def files(self) -> tuple[File, ...]:
        return tuple(self.gt.values())

    def settings(self) -> dict[str, Any]:
        return {"format": FORMAT, "task": TASK, "split": self.split}


def _key(name: str) -> str | None:
    m = _KEY.match(name.rsplit("/", 1)[-1])
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
            raise UsageError(f"{gt}: holds folders of other splits than 'val'; pass --split",
                             parameters=("split",))
        return gt / "val"
    return gt


def reference(gt: Path, options: Options) -> CityscapesInstanceReference:
    """Every ground-truth ``*_instanceIds.png`` below ``gt`` (see the module docstring)."""
    check_options(_NAME, options, OPTIONS)
    gt = Path(gt)
    if not gt.is_dir():
        raise UsageError(f"{gt}: gt of the cityscapes format is a folder", parameters=("gt",))
    root = _gt_root(gt, options.split)
    tree = Folder(root)
    gts: dict[str, File] = {}
    for path in sorted(root.rglob("*_instanceIds.png")):
        key = _key(path.name)
        if key is None:
            raise DataError(f"{path}: not a Cityscapes name (<city>_<seq>_<frame>_...)")
        if key in gts:
            raise DataError(f"{path}: a second ground truth for {key} (also {gts[key]})")
        gts[key] = File(tree, path.relative_to(root).as_posix())
    if not gts:
        raise MissingFileError(f"{root}: no *_instanceIds.png ground-truth files found")
    return CityscapesInstanceReference(gt, root, gts, options.split)


def find_images(pred: Tree, ref: CityscapesInstanceReference) -> list[_Image]:
    """Pair every ground-truth image of ``ref`` with its prediction list file in ``pred``
    (warning about ``.txt`` files that match no image)."""
    lists: dict[str, File] = {}
    extra = []
    members = sorted((m for m in pred.files() if m.endswith(".txt")), key=lambda m: m.split("/"))
    for member in members:
        key = _key(member)
        if key is None or key not in ref.gt:
            extra.append(File(pred, member))
            continue
        if key in lists:
            raise DataError(f"{pred.display(member)}: a second prediction list for {key} (also "
                            f"{lists[key]})")
        lists[key] = File(pred, member)
    if extra:
        log.warning("%d text files under %s match no ground-truth image and are ignored: %s",
                    len(extra), pred.root, shown(extra))
    return [_Image(key, i, gt, lists.get(key)) for i, (key, gt) in enumerate(ref.gt.items(), 1)]


def read_prediction_list(file: File) -> list[tuple[File, int, float]]:
    """The ``(mask file, label id, confidence)`` lines of one Cityscapes prediction list (mask
    paths are relative to the list's folder)."""
    try:
        text = file.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{file}: cannot be read ({e})") from None
    folder = PurePosixPath(file.member).parent
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
            raise FileFormatError(f"{file}:{n}: expected '<mask.png> <label id> <confidence>', "
                                  f"found {line.strip()!r}") from None
        if label not in INSTANCE_CLASSES:
            names = ", ".join(f"{k} {v}" for k, v in INSTANCE_CLASSES.items())
            raise DataError(f"{file}:{n}: label id {label} is not an evaluated instance class "
                            f"({names})")
        if not math.isfinite(score):
            raise DataError(f"{file}:{n}: confidence {fields[2]} is not a finite number")
        out.append((File(file.tree, (folder / fields[0]).as_posix()), label, score))
    return out


@dataclass(frozen=True)
class _Task:
    missing: str
    decoder: str


def read_image(task: _Task, image: _Image) -> tuple[InstanceParts, None]:
    """One image: its COCO image entry, ground-truth annotations and results (all RLE)."""
    ids = read_label(image.gt, decoder=task.decoder)
    h, w = ids.shape
    entry = {"id": image.image_id, "file_name": image.name, "height": h, "width": w}
    anns = annotations_from_instance_ids(ids, image.image_id, INSTANCE_CLASSES)
    del ids
    if image.pred is None:
        if task.missing != "zero":
            raise MissingFileError(f"no prediction list for {image.name} ({image.gt})")
        return InstanceParts([entry], anns, []), None
    results = []
    for mask_file, label, score in read_prediction_list(image.pred):
        mask = read_label(mask_file, decoder=task.decoder)
        if mask.shape != (h, w):
            raise SizeMismatchError(f"{mask_file}: mask of size {mask.shape[0]}x{mask.shape[1]} "
                                    f"(height x width) for {image.name} of size {h}x{w}")
        results += results_from_masks([mask], [label], [score], image.image_id)
    return InstanceParts([entry], anns, results), None


def _finish(ref: CityscapesInstanceReference, results_name: str, backend: str, keep_bbox: bool,
            parts: InstanceParts, rows: list[dict[str, Any]]) -> InstanceResult:
    return finish_parts(parts, [{"id": k, "name": v} for k, v in INSTANCE_CLASSES.items()],
                        gt_name=str(ref.path), results_name=results_name, format=FORMAT,
                        backend=backend, keep_bbox=keep_bbox)


def _image_name(image: _Image) -> str:
    return str(image.pred if image.pred is not None else image.gt)


def plan(pred: Tree, ref: CityscapesInstanceReference, options: Options) -> Plan:
    """One item per ground-truth image; see the module docstring.

    Raises :class:`~segeval.errors.MissingFileError` for images without a prediction list
    unless ``options.missing == "zero"`` (then they have no detections).
    """
    check_options(_NAME, options, OPTIONS)
    if isinstance(pred, Folder) and not pred.root.is_dir():
        raise UsageError(f"{pred.root}: pred of the cityscapes format is a folder",
                         parameters=("pred",))
    images = find_images(pred, ref)
    check_missing(images, options.missing, pred.root, what="prediction list",
                  hint="count them as having no detections", counted="have no detections")
    task = _Task(options.missing, options.decoder)
    return Plan(
        format=FORMAT, task=TASK, items=images,
        score=functools.partial(read_image, task),
        zero=InstanceParts(),
        finish=functools.partial(_finish, ref, str(pred.root), options.backend,
                                 options.keep_bbox),
        name_of=_image_name,
        pixels=image_pixels(images[0].gt) * len(images) if images else 0,
        matched=sum(im.pred is not None for im in images),
        settings={**ref.settings(), "missing": options.missing, "backend": options.backend,
                  "keep_bbox": options.keep_bbox},
    )
