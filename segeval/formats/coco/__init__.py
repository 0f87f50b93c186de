"""The COCO formats: instance masks (:mod:`.instance`, ``--format coco``) and panoptic
(:mod:`.panoptic`, ``--format coco-panoptic``; Cityscapes panoptic reuses it).

A prediction of these formats is one JSON file. It is given as the file itself (``segeval score
--pred results.json``: the adapter receives a :class:`~segeval.formats.base.Folder` whose root
is that file), or as a tree that holds it (a folder, a leaderboard submission): then the one
``.json`` file at the top of the tree is the prediction, or, when none lies there and every
member is inside one top-level folder, the one ``.json`` at the top of that folder
(:func:`one_json`).
"""

from __future__ import annotations

from pathlib import Path

from segeval.errors import DataError, MissingFileError
from segeval.formats.base import File, Folder, Tree


def given_file(tree: Tree) -> Path | None:
    """The JSON file path a prediction names directly (a :class:`Folder` whose root is not a
    folder: a file, or nothing at all, which reading then reports), or ``None`` for a tree to
    look into."""
    if isinstance(tree, Folder) and not tree.root.is_dir():
        return tree.root
    return None


def file_of(path: Path) -> File:
    """A file on disk as a :class:`File` (named by its path in messages)."""
    path = Path(path)
    return File(Folder(path.parent), path.name)


def common_folder(members: list[str]) -> str:
    """The one top-level folder every member lies in (``"team/"``), or ``""``."""
    tops = {m.split("/", 1)[0] for m in members}
    if len(tops) == 1 and all("/" in m for m in members):
        return next(iter(tops)) + "/"
    return ""


def one_json(tree: Tree, kind: str, hint: str) -> tuple[str, str]:
    """``(member, prefix)``: the one ``.json`` member at the top of ``tree``, or at the top of
    its one top-level folder (``prefix``, e.g. ``"team/"``; ``""`` at the top). Hidden files
    (``.x.json``) do not count.

    Raises :class:`~segeval.errors.MissingFileError` for none and
    :class:`~segeval.errors.DataError` for several, naming ``kind`` ("results JSON"); ``hint``
    says what is expected ("a .json file").
    """
    members = list(tree.files())

    def jsons(prefix: str) -> list[str]:
        return sorted(m for m in members if m.startswith(prefix) and m.lower().endswith(".json")
                      and "/" not in m[len(prefix):] and not m[len(prefix):].startswith("."))

    prefix = ""
    found = jsons(prefix)
    if not found:
        prefix = common_folder(members)
        found = jsons(prefix) if prefix else []
    if not found:
        raise MissingFileError(f"{tree.root}: no {kind} ({hint}) at the top of the submission")
    if len(found) > 1:
        raise DataError(f"{tree.root}: {len(found)} .json files ({', '.join(found[:3])}): a "
                        f"submission holds one {kind}")
    return found[0], prefix
