"""Cityscapes instance-level semantic labeling (``--format cityscapes --task instance``): the
official AP of cityscapesScripts' ``evalInstanceLevelSemanticLabeling`` (``ap="cityscapes"``,
the default), or COCO mask AP (``ap="coco"``).

Ground truth: ``*_instanceIds.png`` below ``--gt`` (the dataset root, ``gtFine``,
``gtFine/<split>`` or a city folder; above the split folders, ``--split`` picks one, default
``val``). Pixel value
``label * 1000 + k`` is instance ``k`` of label id ``label``; a pixel equal to the label id of a
class with instances is a group region (``ap="coco"``: scored as ``iscrowd=1``, see
:mod:`segeval.core.instance_masks`). The evaluated classes are those with instances that are
not ignored in evaluation: person, rider, car, truck, bus, train, motorcycle, bicycle (label
ids 24..28, 31..33); caravan and trailer objects are not scored.

Predictions: the Cityscapes results layout. For image ``<city>_<seq>_<frame>`` one text file
``<city>_<seq>_<frame>*.txt`` anywhere below ``--pred`` lists one instance per line::

    relative/path/to/mask.png <label id> <confidence>

where the mask path is relative to the text file and the mask is a PNG of the image's size,
non-zero = inside. Two text files for one image are an error (as in the official script).

The plan's items are the images: each is read in a worker (its instanceIds PNG, its list file
and masks, through :class:`~segeval.formats.base.File` reads, so a leaderboard submission's
archive works as a folder does).

``ap="cityscapes"``: each mask is decoded once and reduced at once to its bounding box, its
pixel count, its void pixels and its intersections with the ground-truth regions it covers
(one gather of the ground truth under its pixels: no comparison with regions it does not
touch); the image's statistics are the official matching's entries at every threshold
(:func:`segeval.core.cityscapes_ap.image_stats`), merged exactly with ``+``, and finishing
computes the official AP (:func:`segeval.core.cityscapes_ap.finish`). Prediction lists are read
as the official script reads them (see :func:`read_official_list`); the official script's
quirks are listed in ``docs/instance.md``.

``ap="coco"``: the numbers are COCO mask AP/AR (pycocotools, as detectron2 reports for
Cityscapes). Each mask is RLE-encoded as it is read: memory holds RLE strings, never a dataset
of dense masks. The statistic is the images' COCO parts in image order
(:class:`~segeval.core.instance.InstanceParts`), and finishing runs COCOeval once.
"""

from __future__ import annotations

import functools
import io
import math
import posixpath
import re
import struct
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from segeval.core.cityscapes_ap import APStats, CityscapesAPResult, image_stats
from segeval.core.cityscapes_ap import finish as finish_ap
from segeval.core.files import read_bytes
from segeval.core.instance import InstanceParts, InstanceResult, finish_parts
from segeval.core.instance_masks import annotations_from_instance_ids, results_from_masks
from segeval.core.kernels import compiled_available
from segeval.errors import (
    DataError,
    FileFormatError,
    MissingFileError,
    SizeMismatchError,
    UsageError,
)
from segeval.formats.base import (
    File,
    Folder,
    KeyedGroundTruth,
    Options,
    Plan,
    Tree,
    check_missing,
    log,
    shown,
)
from segeval.formats.cityscapes.labels import INSTANCE_CLASSES, LABELS
from segeval.formats.coco.instance import check_options
from segeval.formats.png import PNG_SIGNATURE, decode_label_png, max_pixels, read_label
from segeval.formats.png import _check_size as check_png_size
from segeval.formats.png import _corrupt as corrupt_png
from segeval.formats.png import _inflate as inflate_png
from segeval.formats.png import _parse as parse_png

FORMAT = "cityscapes"
TASK = "instance"
OPTIONS = frozenset({"split", "missing", "backend", "keep_bbox", "ap"})
#: ``ap``: the official Cityscapes AP (the default) or COCO mask AP.
AP_KINDS = ("cityscapes", "coco")
#: The format's name in messages about its options.
_NAME = "cityscapes instance"
_KEY = re.compile(r"^([^_]+_\d+_\d+)")
#: The evaluated classes ``(label id, name)`` in the official order (``instLabels``).
CLASSES: tuple[tuple[int, str], ...] = tuple(INSTANCE_CLASSES.items())
#: Label ids whose pixels are void (``ignoreInEval``), compared with the instanceIds *pixel
#: value* as the official script does: a caravan or trailer instance (29xxx, 30xxx) is not void.
VOID_IDS: tuple[int, ...] = tuple(lb.id for lb in LABELS if lb.ignore_in_eval)
_LABEL_IDS = frozenset(lb.id for lb in LABELS)


@dataclass(frozen=True)
class _Image:
    """One ground-truth image (its key ``name``, COCO image id, instanceIds file) and its
    prediction list file (``None`` when there is none)."""

    name: str
    image_id: int
    gt: File
    pred: File | None


@dataclass(frozen=True)
class CityscapesInstanceReference(KeyedGroundTruth):
    """The ground truth: the given path, the folder searched and the instanceIds file of each
    image key (in report order)."""

    path: Path
    root: Path
    gt: dict[str, File]
    split: str | None = None


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


# ------------------------------------------------------------------ the official AP (default)


def read_official_list(file: File) -> tuple[dict[str, tuple[int, float]], int, int]:
    """The predictions of one list file as the official script reads them.

    Returns ``({mask member: (label id, confidence)}, duplicates, skipped)`` in the order the
    masks first appear. Mask paths are relative to the list's folder and normalised (``./``,
    ``a/../``); a mask named by two lines counts once, with the *last* line's label and
    confidence (the official script keys a dictionary by the path); lines whose label id is a
    Cityscapes label that is not an evaluated instance class are skipped (``skipped``).

    Raises :class:`~segeval.errors.FileFormatError` naming the file and line for a blank line
    (the official script refuses it), a line that is not ``<mask> <label id> <confidence>``, a
    label id that is not a Cityscapes label (official: a crash), a confidence that is not a
    finite number, and an absolute mask path or one leading out of the prediction folder.
    Whitespace between fields may be any run of blanks (the official script wants one space).
    """
    try:
        text = file.read().decode("utf-8")
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{file}: cannot be read ({e})") from None
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    if lines[-1] == "":
        lines.pop()  # the newline that ends the last line (or an empty file)
    folder = PurePosixPath(file.member).parent.as_posix()
    found: dict[str, tuple[int, float]] = {}
    duplicates = skipped = 0
    for n, line in enumerate(lines, 1):
        fields = line.split()
        where = f"{file}:{n}"
        if not fields:
            raise FileFormatError(f"{where}: a blank line (the official script refuses it; "
                                  f"expected '<mask.png> <label id> <confidence>')")
        try:
            if len(fields) != 3:
                raise ValueError
            label_value, score = float(fields[1]), float(fields[2])
        except ValueError:
            raise FileFormatError(f"{where}: expected '<mask.png> <label id> <confidence>', "
                                  f"found {line.strip()!r}") from None
        if not math.isfinite(label_value) or int(label_value) not in _LABEL_IDS:
            raise FileFormatError(f"{where}: label id {fields[1]} is not a Cityscapes label id")
        if not math.isfinite(score):
            raise FileFormatError(f"{where}: confidence {fields[2]} is not a finite number")
        name = fields[0]
        member = posixpath.normpath(posixpath.join(folder, name))
        if name.startswith("/") or member == ".." or member.startswith("../"):
            raise FileFormatError(f"{where}: mask {name} is not a path inside the prediction "
                                  f"folder")
        if member in found:
            duplicates += 1
        found[member] = (int(label_value), score)  # the last line wins, the first place stays
    for member, (label, _) in list(found.items()):
        if label not in INSTANCE_CLASSES:
            del found[member]
            skipped += 1
    return found, duplicates, skipped


def _mask(file: File, decoder: str) -> np.ndarray:
    """A prediction mask as the official script sees it: in where the image converted to
    8-bit grey is non-zero (an integer array, non-zero = in). Grey PNGs (any depth: the
    conversion keeps non-zero values non-zero) are read by segeval's reader; other images
    (palette, RGB: a pixel is in when its grey level is) by Pillow's ``convert("L")``, as in
    the official script."""
    data = file.read()
    grey_png = (data.startswith(PNG_SIGNATURE) and len(data) >= 26 and data[12:16] == b"IHDR"
                and data[25] == 0)
    if grey_png:
        return decode_label_png(data, str(file), decoder=decoder)
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as img:
            return np.ascontiguousarray(img.convert("L"))
    except Image.DecompressionBombError as e:
        raise FileFormatError(f"{file}: over the decompression-bomb limit ({e})") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError, struct.error) as e:
        raise FileFormatError(f"{file}: not a readable mask image ({e})") from None


def _box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(top, bottom, left, right)`` (end-exclusive) of the non-zero pixels of a C-contiguous
    2-D array; ``None`` if there are none. Rows are found 8 bytes at a time where the row
    length allows it, columns only within the rows found."""
    h, w = mask.shape
    nbytes = w * mask.itemsize
    if nbytes % 8 == 0 and mask.flags.c_contiguous:
        rows = np.flatnonzero(mask.reshape(-1).view(np.uint64).reshape(h, -1).any(axis=1))
    else:
        rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    top, bottom = int(rows[0]), int(rows[-1]) + 1
    cols = np.flatnonzero(mask[top:bottom].any(axis=0))
    return top, bottom, int(cols[0]), int(cols[-1]) + 1


def _size_error(file: File, shape: tuple[int, int], image: str, size: tuple[int, int]
                ) -> SizeMismatchError:
    return SizeMismatchError(f"{file}: mask of size {shape[0]}x{shape[1]} (height x width) for "
                             f"{image} of size {size[0]}x{size[1]}")


def mask_counts(file: File, decoder: str, ids: np.ndarray, index: np.ndarray, size: int,
                image: str) -> np.ndarray | None:
    """The region indices under a prediction mask: ``counts[r]`` (``size`` of them, more than
    ``index.max()``) = its pixels on ground-truth pixels of region index ``r`` (``index[ids]``),
    ``None`` for an empty mask. The mask's pixels
    are those where the official script's grey conversion is non-zero (see :func:`_mask`).

    An 8-bit grey PNG of the image's size goes through
    :func:`segeval.core.kernels.c_png.mask_overlaps_png` where the compiled kernels are available
    (:func:`segeval.core.kernels.compiled_available`) and the decoder is not ``"pillow"``: one
    C call walks the chunks, inflates the image data a row at a time (a streaming inflater:
    the megabytes of zeros a mask inflates to are never written out) and counts each row as
    it comes. A file that call does not take (another kind of PNG, or anything it would
    refuse: a damaged file, a bad filter type) takes the general path, which words the error:
    an 8-bit grey PNG is inflated whole and counted by
    :func:`segeval.core.kernels.c_png.mask_overlaps`; anything else is decoded, boxed and
    counted with NumPy inside its box. All give the same counts.
    """
    h, w = ids.shape
    counts = np.zeros(size, np.int64)
    if decoder != "pillow":
        if isinstance(file.tree, Folder):  # one path for the read and the messages
            path = file.tree.path(file.member)
            data, name = read_bytes(path), str(path)
        else:
            data, name = file.read(), str(file)
        native = compiled_available() and ids.dtype in (np.uint8, np.uint16)
        limit = max_pixels()
        if native and (limit is None or w * h <= limit):
            from segeval.core.kernels.c_png import mask_overlaps_png

            box = mask_overlaps_png(data, h, w, ids.reshape(-1), index, counts)
            if box is not None:
                return None if box[0] < 0 else counts
        header = parse_png(name, data) if data.startswith(PNG_SIGNATURE) else None
        if (header is not None and (header.bit_depth, header.colour_type) == (8, 0)
                and not header.interlaced and not header.animated and native):
            if (header.height, header.width) != (h, w):
                raise _size_error(file, (header.height, header.width), image, (h, w))
            check_png_size(name, w, h)
            raw = inflate_png(name, header.idat, h * (w + 1), f"{w}x{h} 8-bit colour-type-0")
            from segeval.core.kernels.c_png import mask_overlaps

            bad, top, *_ = mask_overlaps(raw, h, w, ids.reshape(-1), index, counts)
            if bad >= 0:
                raise corrupt_png(name, f"row {bad} has filter type {raw[bad * (w + 1)]} "
                                        f"(0..4 expected)")
            return None if top < 0 else counts
    mask = _mask(file, decoder)
    if mask.shape != (h, w):
        raise _size_error(file, mask.shape, image, (h, w))  # type: ignore[arg-type]
    box = _box(mask)
    if box is None:
        return None
    top, bottom, left, right = box
    under = index[ids[top:bottom, left:right][mask[top:bottom, left:right] != 0]]
    counts += np.bincount(under, minlength=counts.size)
    return counts


@dataclass
class _Regions:
    """The ground-truth regions of one image that the official matching needs: ``value``
    (instanceIds pixel value), ``cls`` (class index), ``pixels``, ``group``; ``index`` maps
    pixel values to ``0`` (other), ``1`` (void) or ``2 + j`` (region ``j``)."""

    value: np.ndarray
    cls: np.ndarray
    pixels: np.ndarray
    group: np.ndarray
    index: np.ndarray


_CLASS_INDEX = {label_id: k for k, (label_id, _) in enumerate(CLASSES)}


def ground_truth_regions(ids: np.ndarray) -> _Regions:
    """The regions of an instanceIds array (see :class:`_Regions`). A value ``v >= 1000`` is
    instance ``v % 1000`` of label ``v // 1000``, a value ``v < 1000`` label ``v`` itself (a
    group region for the classes with instances); values of labels that are not evaluated
    instance classes are not regions (void ones are void)."""
    if ids.dtype.itemsize <= 2 and ids.dtype.kind == "u":
        if compiled_available():
            from segeval.core.kernels.c_count import value_counts

            counts = np.zeros(1 << (8 * ids.dtype.itemsize), np.int64)
            value_counts(np.ascontiguousarray(ids).reshape(-1), counts)  # True: all fit
        else:
            counts = np.bincount(ids.reshape(-1))
        values = np.flatnonzero(counts)
        counts = counts[values]
    else:
        values, counts = np.unique(ids, return_counts=True)
    values = values.astype(np.int64)
    labels = np.where(values >= 1000, values // 1000, values)
    keep = np.isin(labels, list(_CLASS_INDEX))
    value = values[keep]
    cls = np.array([_CLASS_INDEX[int(x)] for x in labels[keep]], np.int64)
    top = int(values.max()) + 1 if values.size else 1
    index = np.zeros(top, np.int32)
    void = np.asarray([v for v in VOID_IDS if 0 <= v < top], np.int64)
    index[void] = 1
    index[value] = 2 + np.arange(value.size, dtype=np.int32)
    return _Regions(value, cls, counts[keep].astype(np.int64), value < 1000, index)


def read_image_official(task: _Task, image: _Image) -> tuple[APStats, None]:
    """One image: the official matching's statistics (see the module docstring)."""
    ids = read_label(image.gt, decoder=task.decoder)
    regions = ground_truth_regions(ids)
    pred_class: list[int] = []
    pred_score: list[float] = []
    rows: list[np.ndarray] = []  # each non-empty mask's counts (see mask_counts)
    duplicates = skipped = empty = 0
    if image.pred is None:
        if task.missing != "zero":
            raise MissingFileError(f"no prediction list for {image.name} ({image.gt})")
        found: dict[str, tuple[int, float]] = {}
    else:
        found, duplicates, skipped = read_official_list(image.pred)
    size = 2 + regions.value.size
    for member, (label, score) in found.items():
        mask_file = File(image.pred.tree, member)  # type: ignore[union-attr]
        counts = mask_counts(mask_file, task.decoder, ids, regions.index, size, image.name)
        if counts is None:
            empty += 1  # the official script skips an empty mask
            continue
        pred_class.append(_CLASS_INDEX[label])
        pred_score.append(score)
        rows.append(counts)
    # the table of every mask's counts (masks x (other, void, regions...)); the pairs are its
    # non-zero region entries of the mask's class, by mask and then by region
    table = np.stack(rows) if rows else np.zeros((0, size), np.int64)
    inter = table[:, 2:]
    pair_pred, pair_gt = np.nonzero(inter)
    same = regions.cls[pair_gt] == np.asarray(pred_class, np.int64)[pair_pred]
    pair_pred, pair_gt = pair_pred[same], pair_gt[same]
    stats = image_stats(
        len(CLASSES), gt_class=regions.cls, gt_pixels=regions.pixels, gt_group=regions.group,
        pred_class=pred_class, pred_score=pred_score, pred_pixels=table.sum(axis=1),
        pred_void=table[:, 1], pair_pred=pair_pred, pair_gt=pair_gt,
        pair_pixels=inter[pair_pred, pair_gt])
    stats.duplicates, stats.skipped, stats.empty = duplicates, skipped, empty
    return stats, None


def _finish_official(settings: dict[str, Any], stats: APStats, rows: list[dict[str, Any]]
                     ) -> CityscapesAPResult:
    if stats.skipped:
        log.warning("%d prediction lines name labels that are not evaluated instance classes "
                    "and were skipped (as the official script skips them)", stats.skipped)
    if stats.duplicates:
        log.warning("%d prediction lines name a mask that an earlier line of the same list "
                    "names; each mask counts once, with its last line's label and confidence "
                    "(as in the official script)", stats.duplicates)
    return finish_ap(stats, CLASSES, settings, FORMAT)


def ap_kind(options: Options) -> str:
    """The ``ap`` of ``options`` for this format (``None``: ``"cityscapes"``);
    :class:`~segeval.errors.UsageError` for COCO-only options with the official AP."""
    ap = options.ap or "cityscapes"
    if ap == "cityscapes":
        extra = [n for n in ("backend", "keep_bbox") if n in options.set()]
        if extra:
            raise UsageError(f"{', '.join(extra)}: only with ap='coco' (COCO mask AP); the "
                             f"official Cityscapes AP has no such setting",
                             parameters=(*extra, "ap"))
    return ap


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
    ap = ap_kind(options)
    if isinstance(pred, Folder) and not pred.root.is_dir():
        raise UsageError(f"{pred.root}: pred of the cityscapes format is a folder",
                         parameters=("pred",))
    images = find_images(pred, ref)
    check_missing(images, options.missing, pred.root, what="prediction list",
                  hint="count them as having no detections", counted="have no detections")
    task = _Task(options.missing, options.decoder)
    common = dict(format=FORMAT, task=TASK, items=images, name_of=_image_name,
                  matched=sum(im.pred is not None for im in images))
    if ap == "cityscapes":
        settings = {**ref.settings(), "missing": options.missing, "ap": ap}
        return Plan(score=functools.partial(read_image_official, task),
                    zero=APStats(len(CLASSES)),
                    finish=functools.partial(_finish_official, settings),
                    settings=settings, **common)  # type: ignore[arg-type]
    return Plan(
        score=functools.partial(read_image, task),
        zero=InstanceParts(),
        finish=functools.partial(_finish, ref, str(pred.root), options.backend,
                                 options.keep_bbox),
        settings={**ref.settings(), "missing": options.missing, "backend": options.backend,
                  "keep_bbox": options.keep_bbox, "ap": ap},
        **common,  # type: ignore[arg-type]
    )


def official_json(result: CityscapesAPResult) -> str:
    """The text of cityscapesScripts' ``resultInstanceLevelSemanticLabeling.json`` for
    ``result``: the same structure and values, sorted keys, 4-space indent, NaN written as
    ``NaN`` and the infinite distance threshold as ``Infinity`` (as Python's ``json`` writes
    them)."""
    import json

    return json.dumps(result.official_dict(), sort_keys=True, indent=4)
