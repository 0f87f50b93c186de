"""Cityscapes panoptic (``cityscapes-panoptic``): the COCO-panoptic files that the official
conversion (``cityscapesscripts.preparation.createPanopticImgs``) writes, scored exactly like
``coco-panoptic`` (the official ``evalPanopticSemanticLabeling`` is a copy of the COCO
evaluation). Image ids are strings ``<city>_<seq>_<frame>``; category ids are Cityscapes
label ids.

``gt`` may be the JSON file itself, the ``gtFine`` folder or the dataset root (then
``gtFine/cityscapes_panoptic_<split>.json``, ``split`` defaulting to ``val``); ``pred`` may be
the prediction JSON or the results folder holding ``cityscapes_panoptic_<split>.json``, as the
official script's defaults (a leaderboard submission's archive is read as ``coco-panoptic``
reads it). PNG folders default to the JSON paths without ``.json``.

The adapter resolves those paths and hands the rest to the ``coco-panoptic`` adapter's
:func:`~segeval.formats.coco.panoptic.reference_from` and
:func:`~segeval.formats.coco.panoptic.plan_from` under this format's name.
"""

from __future__ import annotations

from pathlib import Path

from segeval.errors import MissingFileError
from segeval.formats.base import Folder, Options, Plan, Tree
from segeval.formats.coco import panoptic as coco_panoptic
from segeval.formats.coco.panoptic import PanopticReference

FORMAT = "cityscapes-panoptic"
TASK = "panoptic"  # what --task this module serves (segeval.formats.registry)
OPTIONS = coco_panoptic.OPTIONS | {"split"}


def json_path(path: Path, split: str, what: str, *, dataset: bool) -> Path:
    """The panoptic JSON that ``path`` names: the file itself, or the one inside the folder
    (``gtFine/`` too for the ground truth's dataset root)."""
    path = Path(path)
    if not path.is_dir():
        return path
    name = f"cityscapes_panoptic_{split}.json"
    candidates = [path / name] + ([path / "gtFine" / name] if dataset else [])
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise MissingFileError(f"{path}: no {what} {name} in it"
                           + (" or in its gtFine folder" if dataset else ""))


def reference(gt: Path, options: Options) -> PanopticReference:
    """Read the ground-truth panoptic JSON that ``gt`` names (see the module docstring)."""
    options.check(FORMAT, OPTIONS)
    gt_json = json_path(Path(gt), options.split or "val", "ground-truth", dataset=True)
    return coco_panoptic.reference_from(FORMAT, gt_json, options)


def plan(pred: Tree, ref: PanopticReference, options: Options) -> Plan:
    """Pair the prediction with ``ref``: ``pred`` is the prediction JSON, a results folder
    holding ``cityscapes_panoptic_<split>.json``, or a submission tree."""
    if isinstance(pred, Folder):
        path = json_path(pred.root, options.split or "val", "prediction", dataset=False)
        return coco_panoptic.plan_from(FORMAT, path, ref, options)
    return coco_panoptic.plan_from(FORMAT, pred, ref, options)
