"""Cityscapes pixel-level semantic labeling (``--format cityscapes``): the adapter.

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
:mod:`segeval.formats.cityscapes.stats`; the label table in
:mod:`segeval.formats.cityscapes.labels`.

Each pair is decoded and counted in one compiled pass where the files allow it
(:mod:`segeval.formats.cityscapes.fused`), else decoded file by file and counted; both give
the same statistics.
"""

from __future__ import annotations

import functools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segeval.errors import DataError, MissingFileError, UsageError
from segeval.formats.base import (
    File,
    Folder,
    Options,
    Plan,
    Tree,
    check_missing,
    require_folder,
)
from segeval.formats.cityscapes import fused
from segeval.formats.cityscapes.stats import (
    CityscapesResult,
    CityscapesStats,
    image_stats,
    official_result,
)
from segeval.formats.png import read_label

FORMAT = "cityscapes"
TASK = "semantic"
OPTIONS = frozenset({"split", "pred_ids", "iiou", "missing"})

GT_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
_KEY_IN_NAME = re.compile(r"(?<![A-Za-z0-9])([A-Za-z][A-Za-z0-9-]*_\d+_\d+)(?!\d)")


# --------------------------------------------------------------------------- pairing


@dataclass(frozen=True)
class CityscapesPair:
    """One ground-truth image: its key ``<city>_<seq>_<frame>``, labelIds and instanceIds
    files, and its prediction (``None`` when there is none)."""

    name: str
    gt: File
    instances: File
    pred: File | None


@dataclass(frozen=True)
class CityscapesReference:
    """The Cityscapes ground truth: the folder searched and, per image key (in report order),
    its labelIds and instanceIds files; no pixels."""

    base: Path
    gt: dict[str, tuple[File, File]]
    split: str | None
    iiou: bool

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.gt)

    @property
    def files(self) -> tuple[File, ...]:
        return tuple(f for labels, inst in self.gt.values()
                     for f in ((labels, inst) if self.iiou else (labels,)))

    def settings(self) -> dict[str, Any]:
        return {"format": FORMAT, "split": self.split, "iiou": self.iiou}


def image_key(gt_file: Path | str) -> str:
    """``<city>_<seq>_<frame>`` of a ground-truth file name (its first three ``_`` parts)."""
    parts = Path(gt_file).name.split("_")
    return "_".join(parts[:3])


def ground_truth_files(gt: Path, split: str | None) -> tuple[Path, list[Path]]:
    """The folder searched and every ``*_gtFine_labelIds.png`` below it, sorted."""
    if (gt / "gtFine").is_dir():
        base = gt / "gtFine" / (split or "val")
        if not base.is_dir():
            raise MissingFileError(f"{base}: no such folder (the split {split or 'val'!r} of the "
                                   f"Cityscapes root {gt})")
    elif split is not None:
        base = gt / split
        if not base.is_dir():
            raise UsageError(f"split={split!r}: {gt} is neither the Cityscapes root (no gtFine "
                             f"folder) nor a folder holding {split}/; point --gt at the folder "
                             f"to score instead", parameters=("split",))
    else:
        base = gt
    files = sorted(p for p in base.rglob("*" + GT_SUFFIX) if p.is_file())
    if not files:
        raise MissingFileError(f"{base}: no *{GT_SUFFIX} files found")
    return base, files


def reference(gt: Path, options: Options) -> CityscapesReference:
    """List the ground truth under ``gt`` (see the module docstring): the labelIds files and
    the instanceIds files beside them. Raises :class:`~segeval.errors.DataError` when two
    ground-truth files share a key."""
    options.check(FORMAT, OPTIONS)
    gt = Path(gt)
    require_folder(gt, "ground-truth")
    base, gt_files = ground_truth_files(gt, options.split)
    tree = Folder(base)
    found: dict[str, tuple[File, File]] = {}
    for g in gt_files:
        key = image_key(g)
        if key in found:
            raise DataError(f"{g}: the same image {key} as {found[key][0]} (two ground-truth "
                            f"files)")
        member = g.relative_to(base).as_posix()
        inst = member[: -len(GT_SUFFIX)] + INSTANCE_SUFFIX
        found[key] = (File(tree, member), File(tree, inst))
    return CityscapesReference(base, found, options.split, bool(options.iiou))


def prediction_index(pred: Tree) -> dict[str, list[File]]:
    """Every PNG of ``pred`` (any depth), under each image key its file name contains."""
    index: dict[str, list[File]] = {}
    for member in pred.files():
        name = member.rsplit("/", 1)[-1]
        if not name.lower().endswith(".png"):
            continue
        for key in dict.fromkeys(_KEY_IN_NAME.findall(name)):
            index.setdefault(key, []).append(File(pred, member))
    return index


def pair_files(pred: Tree, ref: CityscapesReference
               ) -> tuple[list[CityscapesPair], list[File]]:
    """Pair every ground-truth image of ``ref`` with its prediction in ``pred`` (see the
    module docstring).

    Returns the pairs (``pred`` is ``None`` where no file matches) and the PNGs of ``pred``
    that match no ground-truth image. Raises :class:`~segeval.errors.DataError` when several
    files match one image.
    """
    index = prediction_index(pred)
    pairs: list[CityscapesPair] = []
    for key, (labels, inst) in ref.gt.items():
        found = index.get(key, [])
        if len(found) > 1:
            names = ", ".join(str(p) for p in found[:3]) + (" ..." if len(found) > 3 else "")
            raise DataError(f"{pred.root}: {len(found)} predictions for {key} ({names}); keep "
                            f"exactly one file whose name contains {key}")
        pairs.append(CityscapesPair(key, labels, inst, found[0] if found else None))
    used = {p.pred.member for p in pairs if p.pred is not None}
    extra = {f.member: f for files in index.values() for f in files if f.member not in used}
    return pairs, [extra[m] for m in sorted(extra)]


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class _Task:
    """What a worker needs to score one pair (picklable). ``kernel`` is the counting kernel
    of the decode-then-count path (``"auto"``: core's choice)."""

    pred_ids: str
    iiou: bool
    per_image: bool
    decoder: str = "auto"
    kernel: str = "auto"


class _Once:
    """A file read at most once (the one-pass path and the fallback share its bytes)."""

    def __init__(self, file: File) -> None:
        self.file = file
        self.data: bytes | None = None

    def read(self) -> bytes:
        if self.data is None:
            self.data = self.file.read()
        return self.data

    def __str__(self) -> str:
        return str(self.file)


def score_pair(task: _Task, pair: CityscapesPair
               ) -> tuple[CityscapesStats, dict[str, Any] | None]:
    """Decode one pair once (labelIds, prediction, instanceIds) and count it; the per-image
    row when asked for."""
    gt, inst = _Once(pair.gt), _Once(pair.instances)
    pred = None if pair.pred is None else _Once(pair.pred)
    stats = None
    if pred is not None:  # decoded and counted in one pass where the files allow it
        stats = fused.pair_stats(gt, pred, inst if task.iiou else None, task.pred_ids,
                                 task.decoder)
    if stats is None:
        stats = _decode_and_count(task, gt, inst, pred)
    if not task.per_image:
        return stats, None
    res = CityscapesResult.from_stats(stats, instances_evaluated=task.iiou)
    m = res.metrics_dict()
    row = {"image": pair.name, "missing": pair.pred is None, "valid_pixels": m["valid_pixels"],
           "pixel_accuracy": m["pixel_accuracy"], "miou": m["miou"], "iiou": m["iiou"],
           "category_miou": m["category_miou"], "category_iiou": m["category_iiou"],
           "classes_averaged": m["classes_averaged"]["miou"]}
    return stats, row


def _decode_and_count(task: _Task, gt_file: Any, inst_file: Any, pred_file: Any | None
                      ) -> CityscapesStats:
    """Decode the pair's files (each once) into arrays, then count them."""
    gt = read_label(gt_file, decoder=task.decoder)
    inst = read_label(inst_file, decoder=task.decoder) if task.iiou else None
    if pred_file is None:  # missing="zero": label id 0 (unlabeled) everywhere, wrong for all
        pred, pred_ids = np.zeros(gt.shape, np.uint8), "label"
    else:
        pred, pred_ids = read_label(pred_file, decoder=task.decoder), task.pred_ids
    return image_stats(pred, gt, inst, pred_ids=pred_ids, pred_name=str(pred_file),
                       gt_name=str(gt_file), instances_name=str(inst_file), kernel=task.kernel)


def decode_and_count(task: _Task, pair: CityscapesPair) -> CityscapesStats:
    """The statistics of ``pair`` by the decode-then-count path (never the one-pass one)."""
    return _decode_and_count(task, pair.gt, pair.instances, pair.pred)


def _finish(task: _Task, num_images: int, total: CityscapesStats,
            rows: list[dict[str, Any]]) -> CityscapesResult:
    return CityscapesResult.from_stats(total, instances_evaluated=task.iiou,
                                       pred_ids=task.pred_ids, num_images=num_images,
                                       per_image=rows if task.per_image else None)


def _pair_name(pair: CityscapesPair) -> str:
    return str(pair.pred if pair.pred is not None else pair.gt)


def plan(pred: Tree, ref: CityscapesReference, options: Options) -> Plan:
    """Pair the predictions in ``pred`` with ``ref`` (see the module docstring) and plan their
    scoring.

    Raises :class:`~segeval.errors.MissingFileError` for missing predictions unless
    ``options.missing == "zero"`` (then they count as label id 0, unlabeled, everywhere: wrong
    for every class); warns about PNGs that match no ground-truth image.
    """
    if isinstance(pred, Folder):
        require_folder(pred.root, "prediction")
    pairs, extra = pair_files(pred, ref)
    check_missing(pairs, options.missing, pred.root, extra=extra)
    task = _Task(options.pred_ids, ref.iiou, options.per_image, options.decoder)
    return Plan(
        format=FORMAT, task=TASK, items=pairs,
        score=functools.partial(score_pair, task),
        zero=CityscapesStats(),
        finish=functools.partial(_finish, task, len(pairs)),
        name_of=_pair_name,
        matched=sum(p.pred is not None for p in pairs),
        settings={**ref.settings(), "pred_ids": options.pred_ids, "missing": options.missing},
    )


def official_json(result: CityscapesResult) -> str:
    """The text of cityscapesScripts' ``resultPixelLevelSemanticLabeling.json`` for ``result``:
    the same keys and values, sorted keys, 4-space indent, NaN written as ``NaN``."""
    return json.dumps(official_result(result.stats), sort_keys=True, indent=4)
