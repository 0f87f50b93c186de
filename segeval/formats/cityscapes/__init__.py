"""Cityscapes pixel-level semantic labeling: the label table, file pairing, ``evaluate``.

**Label table.** The same rows as cityscapesScripts' ``helpers/labels.py``.
Each :class:`Label` has the *label id* (``id``, what ``*_gtFine_labelIds.png`` and official
result PNGs store), the *train id* (``train_id``: 0..18 for the 19 evaluated classes, 255 for
classes that are not evaluated, -1 for the licence plate), its category, whether it has
instances (``*_gtFine_instanceIds.png`` stores ``id * 1000 + k`` for them) and whether it is
ignored in evaluation. Label ids run 0..33 (the licence plate, -1, never appears in label
maps); 19 of them are evaluated, in 7 evaluated categories (``void`` is all ignored).

**Pairing** (as the official ``evalPixelLevelSemanticLabeling``): the ground truth is every
``*_gtFine_labelIds.png`` below ``gt`` -- ``gt/gtFine/<split>`` when ``gt`` is the dataset
root (``split`` default ``val``), else ``gt/<split>`` with a ``split``, else the whole folder --
with its ``*_gtFine_instanceIds.png`` beside it. The prediction of ``<city>_<seq>_<frame>`` is
the one PNG below ``pred`` (searched recursively) whose file name contains that key, not
preceded by a letter or digit and not followed by a digit (the official script takes names
*starting* with the key, so it would also take frame ``0000191`` for ``000019``). None or
several such files is an error naming the image.

**Predictions** hold label ids (the official format) or, with ``pred_ids="train"``, train ids
0..18 (255 is read as label id 0, "unlabeled": wrong for every class). The scores are in
:mod:`segeval.formats.cityscapes.stats`.

This module imports nothing heavy at import time.
"""

from __future__ import annotations

import functools
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from segeval.formats.cityscapes.stats import CityscapesResult, CityscapesStats


class Label(NamedTuple):
    """One row of the Cityscapes label table."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    #     name                    id  trainId category        catId inst   ignore  color
    Label("unlabeled",             0, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("ego vehicle",           1, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("rectification border",  2, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("out of roi",            3, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("static",                4, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("dynamic",               5, 255, "void",          0, False, True,  (111, 74, 0)),
    Label("ground",                6, 255, "void",          0, False, True,  (81, 0, 81)),
    Label("road",                  7,   0, "flat",          1, False, False, (128, 64, 128)),
    Label("sidewalk",              8,   1, "flat",          1, False, False, (244, 35, 232)),
    Label("parking",               9, 255, "flat",          1, False, True,  (250, 170, 160)),
    Label("rail track",           10, 255, "flat",          1, False, True,  (230, 150, 140)),
    Label("building",             11,   2, "construction",  2, False, False, (70, 70, 70)),
    Label("wall",                 12,   3, "construction",  2, False, False, (102, 102, 156)),
    Label("fence",                13,   4, "construction",  2, False, False, (190, 153, 153)),
    Label("guard rail",           14, 255, "construction",  2, False, True,  (180, 165, 180)),
    Label("bridge",               15, 255, "construction",  2, False, True,  (150, 100, 100)),
    Label("tunnel",               16, 255, "construction",  2, False, True,  (150, 120, 90)),
    Label("pole",                 17,   5, "object",        3, False, False, (153, 153, 153)),
    Label("polegroup",            18, 255, "object",        3, False, True,  (153, 153, 153)),
    Label("traffic light",        19,   6, "object",        3, False, False, (250, 170, 30)),
    Label("traffic sign",         20,   7, "object",        3, False, False, (220, 220, 0)),
    Label("vegetation",           21,   8, "nature",        4, False, False, (107, 142, 35)),
    Label("terrain",              22,   9, "nature",        4, False, False, (152, 251, 152)),
    Label("sky",                  23,  10, "sky",           5, False, False, (70, 130, 180)),
    Label("person",               24,  11, "human",         6, True,  False, (220, 20, 60)),
    Label("rider",                25,  12, "human",         6, True,  False, (255, 0, 0)),
    Label("car",                  26,  13, "vehicle",       7, True,  False, (0, 0, 142)),
    Label("truck",                27,  14, "vehicle",       7, True,  False, (0, 0, 70)),
    Label("bus",                  28,  15, "vehicle",       7, True,  False, (0, 60, 100)),
    Label("caravan",              29, 255, "vehicle",       7, True,  True,  (0, 0, 90)),
    Label("trailer",              30, 255, "vehicle",       7, True,  True,  (0, 0, 110)),
    Label("train",                31,  16, "vehicle",       7, True,  False, (0, 80, 100)),
    Label("motorcycle",           32,  17, "vehicle",       7, True,  False, (0, 0, 230)),
    Label("bicycle",              33,  18, "vehicle",       7, True,  False, (119, 11, 32)),
    Label("license plate",        -1,  -1, "vehicle",       7, False, True,  (0, 0, 142)),
)
# fmt: on

#: Label ids 0..33 appear in label maps; the confusion matrix is ``NUM_LABEL_IDS`` square.
NUM_LABEL_IDS = 34
#: Labels by id, for ids 0..33 (index = label id).
BY_ID: tuple[Label, ...] = tuple(sorted((lb for lb in LABELS if lb.id >= 0), key=lambda lb: lb.id))
#: The 19 evaluated classes in train-id order (index = train id).
EVAL_LABELS: tuple[Label, ...] = tuple(
    sorted((lb for lb in LABELS if not lb.ignore_in_eval), key=lambda lb: lb.train_id)
)
EVAL_LABEL_IDS: tuple[int, ...] = tuple(lb.id for lb in EVAL_LABELS)
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in EVAL_LABELS)
#: The 8 categories in the table's order (the official result JSON lists all of them).
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(lb.category for lb in LABELS))
#: The 7 categories with at least one evaluated class.
EVAL_CATEGORIES: tuple[str, ...] = tuple(
    c for c in CATEGORIES if any(lb.category == c for lb in EVAL_LABELS)
)

#: Average instance size in pixels per class, over the Cityscapes training set: the weights of
#: iIoU (``avgClassSize`` in cityscapesScripts' ``evalPixelLevelSemanticLabeling.py``).
AVG_CLASS_SIZE: dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}

#: Instance ids above this value are instances (``id * 1000 + k``); at or below it, a label id.
INSTANCE_OFFSET = 1000


def category_label_ids(category: str, *, evaluated_only: bool) -> tuple[int, ...]:
    """Label ids (>= 0) of ``category``: all of them, or only the evaluated ones."""
    return tuple(lb.id for lb in BY_ID
                 if lb.category == category and not (evaluated_only and lb.ignore_in_eval))


def instance_categories() -> tuple[str, ...]:
    """Categories whose every label (id >= 0) has instances: those with a category iIoU
    (``human`` and ``vehicle``)."""
    return tuple(c for c in CATEGORIES
                 if all(lb.has_instances for lb in BY_ID if lb.category == c))


# --------------------------------------------------------------------------- pairing

GT_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
_KEY_IN_NAME = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9-]*_\d+_\d+)(?!\d)")


@dataclass(frozen=True)
class CityscapesPair:
    """One ground-truth image: its key ``<city>_<seq>_<frame>``, labelIds and instanceIds
    files, and its prediction (``None`` when there is none)."""

    name: str
    gt: Path
    instances: Path
    pred: Path | None


def image_key(gt_file: Path) -> str:
    """``<city>_<seq>_<frame>`` of a ground-truth file name (its first three ``_`` parts)."""
    parts = gt_file.name.split("_")
    return "_".join(parts[:3])


def ground_truth_files(gt: Path, split: str | None) -> tuple[Path, list[Path]]:
    """The folder searched and every ``*_gtFine_labelIds.png`` below it, sorted."""
    from segeval.errors import MissingFileError, UsageError

    if (gt / "gtFine").is_dir():
        base = gt / "gtFine" / (split or "val")
        if not base.is_dir():
            raise MissingFileError(f"{base}: no such folder (the split {split or 'val'!r} of the "
                                   f"Cityscapes root {gt})")
    elif split is not None:
        base = gt / split
        if not base.is_dir():
            raise UsageError(f"--split {split}: {gt} is neither the Cityscapes root (no gtFine "
                             f"folder) nor a folder holding {split}/; point --gt at the folder "
                             f"to score instead")
    else:
        base = gt
    files = sorted(p for p in base.rglob("*" + GT_SUFFIX) if p.is_file())
    if not files:
        raise MissingFileError(f"{base}: no *{GT_SUFFIX} files found")
    return base, files


def prediction_index(pred: Path) -> dict[str, list[Path]]:
    """Every PNG below ``pred``, under each image key its file name contains."""
    index: dict[str, list[Path]] = {}
    for root, _dirs, files in os.walk(pred):
        for name in sorted(files):
            if not name.lower().endswith(".png"):
                continue
            for key in dict.fromkeys(_KEY_IN_NAME.findall(name)):
                index.setdefault(key, []).append(Path(root) / name)
    return index


def pair_files(pred: Path, gt: Path, split: str | None = None) -> tuple[list[CityscapesPair],
                                                                         list[Path]]:
    """Pair every ground-truth image with its prediction (see the module docstring).

    Returns the pairs (``pred`` is ``None`` where no file matches) and the PNGs under ``pred``
    that match no ground-truth image. Raises :class:`~segeval.errors.DataError` when several
    files match one image or two ground-truth files share a key.
    """
    from segeval.errors import DataError

    _base, gt_files = ground_truth_files(gt, split)
    index = prediction_index(pred)
    pairs: list[CityscapesPair] = []
    seen: dict[str, Path] = {}
    for g in gt_files:
        key = image_key(g)
        if key in seen:
            raise DataError(f"{g}: the same image {key} as {seen[key]} (two ground-truth files)")
        seen[key] = g
        found = index.get(key, [])
        if len(found) > 1:
            names = ", ".join(str(p) for p in found[:3]) + (" ..." if len(found) > 3 else "")
            raise DataError(f"{pred}: {len(found)} predictions for {key} ({names}); keep exactly "
                            f"one file whose name contains {key}")
        inst = g.with_name(g.name[: -len(GT_SUFFIX)] + INSTANCE_SUFFIX)
        pairs.append(CityscapesPair(key, g, inst, found[0] if found else None))
    used = {p.pred for p in pairs}
    extra = sorted({p for files in index.values() for p in files} - used)
    return pairs, extra


# --------------------------------------------------------------------------- evaluation


#: The JIT kernel saves about 7 ms per 2048x1024 image with instanceIds (2.5 ms without) over
#: the NumPy one, and loading it (Numba's import and first call) costs about 0.45 s before the
#: workers start: below this many images per worker, the NumPy kernel finishes first -- unless
#: Numba is loaded anyway (by the PNG decoder), in which case the JIT is used.
JIT_MIN_IMAGES_PER_WORKER = {True: 64, False: 160}


@dataclass(frozen=True)
class _Task:
    """What a worker needs to score one pair (picklable)."""

    pred_ids: str
    iiou: bool
    per_image: bool
    kernel: str = "auto"


def _score_pair(task: _Task, pair: CityscapesPair) -> tuple[CityscapesStats,
                                                           dict[str, Any] | None]:
    """Decode one pair once (labelIds, prediction, instanceIds) and count it."""
    stats = None
    if pair.pred is not None:  # decoded and counted in one pass where the files allow it
        from segeval.formats.cityscapes.fused import pair_stats

        stats = pair_stats(pair.gt, pair.pred, pair.instances if task.iiou else None,
                           task.pred_ids)
    if stats is None:
        stats = _decode_and_count(task, pair)
    if not task.per_image:
        return stats, None
    from segeval.formats.cityscapes.stats import CityscapesResult

    res = CityscapesResult.from_stats(stats, instances_evaluated=task.iiou)
    m = res.metrics_dict()
    row = {"image": pair.name, "missing": pair.pred is None, "valid_pixels": m["valid_pixels"],
           "pixel_accuracy": m["pixel_accuracy"], "miou": m["miou"], "iiou": m["iiou"],
           "category_miou": m["category_miou"], "category_iiou": m["category_iiou"],
           "classes_averaged": m["classes_averaged"]["miou"]}
    return stats, row


def _decode_and_count(task: _Task, pair: CityscapesPair) -> CityscapesStats:
    """Decode the pair's files (each once) into arrays, then count them."""
    import numpy as np

    from segeval.formats.cityscapes.stats import image_stats
    from segeval.formats.png import read_label_png

    gt = read_label_png(pair.gt)
    inst = read_label_png(pair.instances) if task.iiou else None
    if pair.pred is None:  # --missing zero: label id 0 (unlabeled) everywhere, wrong for all
        pred, pred_ids = np.zeros(gt.shape, np.uint8), "label"
    else:
        pred, pred_ids = read_label_png(pair.pred), task.pred_ids
    kernel = "auto" if "numba" in sys.modules else task.kernel
    return image_stats(pred, gt, inst, pred_ids=pred_ids, pred_name=str(pair.pred),
                       gt_name=str(pair.gt), instances_name=str(pair.instances), kernel=kernel)


def evaluate(
    pred: Path,
    gt: Path,
    *,
    split: str | None = None,
    pred_ids: str = "label",
    iiou: bool = True,
    missing: str = "error",
    jobs: int | None = None,
    scheduler: str | None = None,
    per_image: bool = False,
    progress: Callable[[int], Any] | None = None,
    on_start: Callable[[int], Any] | None = None,
    **unused: Any,
) -> CityscapesResult:
    """Score Cityscapes predictions under ``pred`` against the ground truth under ``gt``.

    ``split``: the split folder when ``gt`` is the dataset root (default ``val``).
    ``pred_ids``: ``"label"`` (official result PNGs) or ``"train"`` (train ids 0..18, 255).
    ``iiou=False`` skips the instanceIds files (iIoU is then NaN). ``missing="zero"`` counts an
    image without prediction as wrong everywhere instead of raising. ``jobs`` worker processes
    decode and count (default: all cores) on the engine named by ``scheduler`` (see
    :mod:`segeval.engine`); ``per_image=True`` fills ``result.per_image``; ``on_start(n)`` and
    ``progress(k)`` report progress.

    Returns a :class:`~segeval.formats.cityscapes.stats.CityscapesResult` equal to cityscapesScripts'
    ``evalPixelLevelSemanticLabeling`` (see :mod:`segeval.formats.cityscapes.stats`). Bad input raises a
    :class:`~segeval.errors.SegevalError` naming the file.
    """
    from segeval.errors import MissingFileError, UsageError
    from segeval.formats import Pair, SemanticDataset, reject_options

    reject_options("cityscapes", unused)
    if pred_ids not in ("label", "train"):
        raise UsageError(f"--pred-ids must be 'label' or 'train', not {pred_ids!r}")
    pred, gt = Path(pred), Path(gt)
    for folder, what in ((pred, "prediction"), (gt, "ground-truth")):
        if not folder.is_dir():
            raise MissingFileError(f"{folder}: no such {what} folder")
    pairs, extra = pair_files(pred, gt, split)
    from segeval.formats.semantic import check_pairs

    check_pairs(SemanticDataset("cityscapes", [Pair(p.name, p.gt, p.pred) for p in pairs],
                                CLASS_NAMES, None, pred, extra), missing)  # type: ignore[arg-type]
    from segeval.formats.cityscapes.stats import CityscapesResult
    from segeval.engine import reduce_items
    from segeval.core.device import available_cores

    if on_start:
        on_start(len(pairs))
    workers = max(1, min(len(pairs), available_cores() if jobs is None else int(jobs)))
    many = len(pairs) >= JIT_MIN_IMAGES_PER_WORKER[bool(iiou)] * workers
    task = _Task(pred_ids, bool(iiou), per_image, "auto" if many else "reference")
    score = functools.partial(_score_pair, task)
    total, rows = reduce_items(score, pairs, scheduler=scheduler, jobs=jobs, progress=progress)
    return CityscapesResult.from_stats(total, instances_evaluated=bool(iiou), pred_ids=pred_ids,
                                       num_images=len(pairs),
                                       per_image=rows if per_image else None)


def official_json(result: CityscapesResult) -> str:
    """The text of cityscapesScripts' ``resultPixelLevelSemanticLabeling.json`` for ``result``:
    the same keys and values, sorted keys, 4-space indent, NaN written as ``NaN``."""
    import json

    from segeval.formats.cityscapes.stats import official_result

    return json.dumps(official_result(result.stats), sort_keys=True, indent=4)
