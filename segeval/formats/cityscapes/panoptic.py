"""Cityscapes panoptic (``cityscapes-panoptic``): the COCO-panoptic files that the official
conversion (``cityscapesscripts.preparation.createPanopticImgs``) writes, scored exactly like
``coco-panoptic`` (the official ``evalPanopticSemanticLabeling`` is a copy of the COCO
evaluation). Image ids are strings ``<city>_<seq>_<frame>``; category ids are Cityscapes
label ids.

``gt`` may be the JSON file itself, the ``gtFine`` folder or the dataset root (then
``gtFine/cityscapes_panoptic_<split>.json``, ``split`` defaulting to ``val``); ``pred`` may be
the prediction JSON or the results folder holding ``cityscapes_panoptic_<split>.json``, as the
official script's defaults. PNG folders default to the JSON paths without ``.json``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from segeval.core.panoptic import PanopticResult
from segeval.errors import MissingFileError
from segeval.formats.coco.panoptic import evaluate_files

FORMAT = "cityscapes-panoptic"
TASK = "panoptic"  # what --task this module serves (segeval.formats.registry)


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


def evaluate(pred: Path, gt: Path, *, split: str | None = None, **options: Any
             ) -> PanopticResult:
    """Score Cityscapes panoptic predictions; see the module docstring and
    :func:`segeval.formats.coco.panoptic.evaluate` for the options (``split`` in addition)."""
    split = split or "val"
    return evaluate_files(FORMAT, json_path(pred, split, "prediction", dataset=False),
                          json_path(gt, split, "ground-truth", dataset=True), **options)
