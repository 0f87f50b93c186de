"""Format adapters: a dataset's files in, pairs of label files plus class metadata out.

Each adapter pairs predictions with ground truth the way the dataset's official tooling does
and knows its label table. :mod:`segeval.formats.registry` maps ``--format`` names to adapters.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("segeval")


@dataclass(frozen=True)
class Pair:
    """One ground-truth image and its prediction (``pred`` is ``None`` when it is missing)."""

    name: str
    gt: Path
    pred: Path | None


@dataclass
class SemanticDataset:
    """What a semantic adapter returns: the pairs to score and how to score them."""

    format: str
    pairs: list[Pair]
    class_names: tuple[str, ...]
    ignore_index: int | None
    pred_root: Path
    extra_predictions: list[Path] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def reject_options(fmt: str, options: dict[str, object]) -> None:
    """Raise :class:`~segeval.errors.UsageError` naming options that ``fmt`` does not use."""
    from segeval.errors import UsageError

    if options:
        names = ", ".join("--" + k.replace("_", "-") for k in sorted(options))
        raise UsageError(f"{names}: not an option of the {fmt} format")


def json_in(path: Path, what: str) -> Path:
    """``path`` itself, or the one ``.json`` file of the folder ``path`` (``what`` names it in
    the error for none or several: "ground-truth panoptic JSON file")."""
    from segeval.errors import MissingFileError

    if not path.is_dir():
        return path
    found = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
    if len(found) != 1:
        raise MissingFileError(f"{path}: expected the {what}, or a folder holding exactly one "
                               f".json file (found {len(found)})")
    return found[0]


def png_files(folder: Path, suffixes: tuple[str, ...] = (".png",)) -> dict[str, Path]:
    """PNG files (or files with other lower-case ``suffixes``) below ``folder``, keyed by their
    path relative to it without the suffix.

    Raises :class:`~segeval.errors.DataError` when two files share a key (``a.png``, ``a.PNG``).
    """
    from segeval.errors import DataError

    found: dict[str, Path] = {}
    for path in sorted(folder.rglob("*")):
        if path.suffix.lower() not in suffixes or not path.is_file():
            continue
        key = path.relative_to(folder).with_suffix("").as_posix()
        if key in found:
            raise DataError(f"{path}: the same image as {found[key]} (two files for one stem)")
        found[key] = path
    return found


def pair_by_name(
    fmt: str,
    gt_files: dict[str, Path],
    pred_root: Path,
    class_names: tuple[str, ...],
    ignore_index: int | None,
) -> SemanticDataset:
    """Pair ground-truth files with the PNGs under ``pred_root`` that have the same key."""
    pred_files = png_files(pred_root)
    pairs = [Pair(name, gt, pred_files.get(name)) for name, gt in gt_files.items()]
    extra = [p for name, p in pred_files.items() if name not in gt_files]
    return SemanticDataset(fmt, pairs, class_names, ignore_index, pred_root, extra)
