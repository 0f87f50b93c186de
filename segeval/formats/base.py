"""What every adapter shares: the typed options, the file trees, and the plan it returns.

An adapter (one module per convention, see :mod:`segeval.formats.registry`) turns a dataset's
files into a :class:`Plan` in two steps, so that a leaderboard reads the ground truth once and
pairs every submission the way ``segeval score`` pairs one prediction folder::

    ref = adapter.reference(gt, options)        # the ground truth's listing and metadata
    plan = adapter.plan(pred_tree, ref, options)  # pairs, the per-item function, zero, finish

Adapters never schedule work: :func:`segeval.engine.run` maps ``plan.score`` over
``plan.items`` (serially, on a supervised process pool, on Dask or in GPU batches), merges the
statistics in input order with ``+`` starting from ``plan.zero``, and calls ``plan.finish``.

Predictions are read through a :class:`Tree` (a folder, or a leaderboard submission's zip
archive) by member name, so the same pairing code serves both; ground truth is a folder.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from segeval.errors import (
    DataError,
    FileFormatError,
    MissingFileError,
    UsageError,
    bad_value,
    one_of,
)

log = logging.getLogger("segeval")

Missing = Literal["error", "zero"]
Absent = Literal["nan", "exclude-no-gt", "zero"]
Decoder = Literal["auto", "fast", "pillow"]
Device = Literal["auto", "cpu", "cuda"]
SHOW = 5  # names listed in a message about many files


def shown(names: Sequence[Any], quote: bool = False) -> str:
    """The first :data:`SHOW` of ``names`` joined, and how many more: ``a, b and 3 more``."""
    text = ", ".join(repr(n) if quote else str(getattr(n, "name", n)) for n in names[:SHOW])
    return text + (f" and {len(names) - SHOW} more" if len(names) > SHOW else "")


# ------------------------------------------------------------------------------ options


@dataclass(frozen=True)
class Options:
    """Every setting that changes what an evaluation computes (output-only settings aside).

    The defaults are those of ``segeval score``. A format uses some of them (its adapter's
    ``OPTIONS``); one that is set to a value other than its default but not used by the format
    is a :class:`~segeval.errors.UsageError` (:meth:`check`). See :func:`segeval.evaluate` for
    what each one means.
    """

    task: str | None = None
    split: str | None = None
    num_classes: int | None = None
    class_names: tuple[str, ...] | None = None
    ignore_index: int | None = 255
    absent: Absent = "nan"
    missing: Missing = "error"
    gt_folder: Path | None = None
    pred_folder: Path | None = None
    pred_ids: Literal["label", "train"] = "label"
    reduce_zero_label: bool = False
    iiou: bool = True
    backend: Literal["pycocotools", "faster"] = "pycocotools"
    keep_bbox: bool = False
    decoder: Decoder = "auto"
    device: Device = "auto"
    per_image: bool = False
    labels: tuple[int, ...] | None = None
    nsd_tolerance: float = 1.0
    spacing: tuple[float, ...] | None = None
    ap: Literal["cityscapes", "coco"] | None = None

    def __post_init__(self) -> None:
        for name, allowed in _CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise bad_value(name, one_of(allowed), value)
        if self.ignore_index is not None and (isinstance(self.ignore_index, bool)
                                              or not isinstance(self.ignore_index, int)):
            raise bad_value("ignore_index", "an integer label or None", self.ignore_index)
        if self.num_classes is not None and (isinstance(self.num_classes, bool)
                                             or not isinstance(self.num_classes, int)
                                             or self.num_classes < 1):
            raise bad_value("num_classes", "a positive integer or None", self.num_classes)
        if self.labels is not None and (
                not isinstance(self.labels, tuple) or not self.labels
                or not all(isinstance(v, int) and not isinstance(v, bool) and v != 0
                           for v in self.labels)):
            raise bad_value("labels", "non-zero integer labels or None (every label)",
                            self.labels)
        if (isinstance(self.nsd_tolerance, bool)
                or not isinstance(self.nsd_tolerance, int | float)
                or not math.isfinite(self.nsd_tolerance) or self.nsd_tolerance < 0):
            raise bad_value("nsd_tolerance", "a finite number of mm >= 0", self.nsd_tolerance)
        if self.spacing is not None and (
                not isinstance(self.spacing, tuple) or len(self.spacing) not in (2, 3)
                or not all(isinstance(v, int | float) and not isinstance(v, bool)
                           and math.isfinite(v) and v > 0 for v in self.spacing)):
            raise bad_value("spacing", "2 or 3 positive numbers (mm per voxel along each "
                            "axis) or None", self.spacing)

    def set(self) -> dict[str, Any]:
        """The options whose value differs from the default, by name."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if getattr(self, f.name) != f.default}

    def check(self, fmt: str, used: frozenset[str] | set[str]) -> None:
        """Raise :class:`~segeval.errors.UsageError` naming every option that is set but not
        among ``used`` (the options of format ``fmt``); ``task`` and ``decoder`` and
        ``per_image`` are the engine's and always allowed."""
        extra = sorted(set(self.set()) - set(used) - {"task", "decoder", "per_image", "device"})
        if extra:
            what = "an option" if len(extra) == 1 else "options"
            raise UsageError(f"{', '.join(extra)}: not {what} of the {fmt} format",
                             parameters=tuple(extra))

    def replace(self, **changes: Any) -> Options:
        return replace(self, **changes)


_CHOICES: dict[str, tuple[Any, ...]] = {
    "absent": ("nan", "exclude-no-gt", "zero"), "missing": ("error", "zero"),
    "pred_ids": ("label", "train"), "backend": ("pycocotools", "faster"),
    "decoder": ("auto", "fast", "pillow"), "device": ("auto", "cpu", "cuda"),
    "iiou": (True, False), "keep_bbox": (True, False), "per_image": (True, False),
    "reduce_zero_label": (True, False),
    "ap": (None, "cityscapes", "coco"),
}


# ------------------------------------------------------------------------------ file trees


class Tree(Protocol):
    """A read-only tree of files read by member name: a folder (:class:`Folder`) or a
    leaderboard submission (:class:`segeval.leaderboard.sources.Submission`).

    ``files()`` maps every regular file's path relative to the root (``/`` separators) to its
    size in bytes; ``read(member)`` returns its bytes (a :class:`~segeval.errors.DataError`
    naming it when it cannot be read); ``display(member)`` is its name in messages. A tree must
    pickle small (it travels with every work item).
    """

    @property
    def root(self) -> Path: ...

    def files(self) -> Mapping[str, int]: ...

    def read(self, member: str) -> bytes: ...

    def display(self, member: str) -> str: ...


class Folder:
    """A folder on disk as a :class:`Tree` (listed once, lazily; pickles as its path)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self._root = Path(root)
        self._files: dict[str, int] | None = None

    @property
    def root(self) -> Path:
        return self._root

    def __reduce__(self) -> tuple[Any, ...]:
        return Folder, (self._root,)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Folder) and other._root == self._root

    def __hash__(self) -> int:
        return hash(self._root)

    def __repr__(self) -> str:
        return f"Folder({str(self._root)!r})"

    def files(self) -> Mapping[str, int]:
        if self._files is None:
            found: dict[str, int] = {}
            for dirpath, dirnames, names in os.walk(self._root):
                dirnames.sort()
                rel = Path(dirpath).relative_to(self._root)
                for name in sorted(names):
                    path = Path(dirpath) / name
                    try:
                        st = path.stat()
                    except OSError:
                        continue
                    if os.path.isfile(path):
                        found[(rel / name).as_posix()] = st.st_size
            # the order of ``sorted(root.rglob("*"))``: by path components
            self._files = dict(sorted(found.items(), key=lambda kv: kv[0].split("/")))
        return self._files

    def path(self, member: str) -> Path:
        return self._root / member

    def read(self, member: str) -> bytes:
        return read_bytes(self._root / member)

    def display(self, member: str) -> str:
        return str(self._root / member)


def read_bytes(path: Path) -> bytes:
    """The bytes of a file; one-line errors for a missing or unreadable file."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: a folder where a file is expected") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot be read ({e.strerror or e})") from None


@dataclass(frozen=True)
class File:
    """One member of a tree: what a work item holds instead of a path."""

    tree: Tree
    member: str

    def read(self) -> bytes:
        return self.tree.read(self.member)

    def __str__(self) -> str:
        return self.tree.display(self.member)

    @property
    def name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


def as_tree(path: str | os.PathLike[str] | Tree) -> Tree:
    """A :class:`Folder` for a path; a tree as it is."""
    return path if hasattr(path, "files") else Folder(path)  # type: ignore[arg-type,return-value]


def png_files(tree: Tree, suffixes: tuple[str, ...] = (".png",), prefix: str = ""
              ) -> dict[str, File]:
    """The files of ``tree`` below ``prefix`` whose lower-case suffix is in ``suffixes``, keyed
    by their path below ``prefix`` without the suffix (``a/b.png`` -> ``a/b``).

    Raises :class:`~segeval.errors.DataError` when two files share a key (``a.png``, ``a.PNG``).
    """
    found: dict[str, File] = {}
    for member in tree.files():
        if not member.startswith(prefix):
            continue
        stem, dot, suffix = member.rpartition(".")
        if not dot or "/" in suffix or "." + suffix.lower() not in suffixes:
            continue
        key = stem[len(prefix):]
        if key in found:
            raise DataError(f"{tree.display(member)}: the same image as {found[key]} (two files "
                            f"for one stem)")
        found[key] = File(tree, member)
    return found


def require_folder(path: Path, what: str) -> None:
    """:class:`~segeval.errors.MissingFileError` unless ``path`` is a folder (``what``:
    "prediction", "ground-truth")."""
    if not Path(path).is_dir():
        raise MissingFileError(f"{path}: no such {what} folder")


def json_in(path: Path, what: str) -> Path:
    """``path`` itself, or the one ``.json`` file of the folder ``path`` (``what`` names it in
    the error for none or several: "ground-truth panoptic JSON file")."""
    if not path.is_dir():
        return path
    found = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
    if len(found) != 1:
        raise MissingFileError(f"{path}: expected the {what}, or a folder holding exactly one "
                               f".json file (found {len(found)})")
    return found[0]


# ------------------------------------------------------------------------------ plans


@dataclass(frozen=True)
class Pair:
    """One ground-truth image and its prediction (``pred`` is ``None`` when it is missing)."""

    name: str
    gt: File
    pred: File | None


@dataclass
class Plan:
    """What an adapter returns: the work and how to do it; the engine does the rest.

    ``items``
        The work items in report order (pairs, images, whole files); picklable.
    ``score(item) -> (stats, row)``
        A pure, picklable function run in a worker: the item's sufficient statistics (exact
        ``+``) and its per-image row (a dict) or ``None``. It raises a
        :class:`~segeval.errors.SegevalError` naming the file for bad input.
    ``zero``
        The zero of the statistics: ``zero + s == s``.
    ``finish(stats, rows) -> result``
        The merged statistics and the rows (in item order; ``[]`` without per-image rows) to
        the result object (``to_dict()``, ``per_class()``, ``per_image``).
    ``name_of(item) -> str``
        The item in messages (the file a dead worker held).
    ``pixels``
        About how many pixels the whole run decodes (``0``: unknown or none); the engine loads
        the compiled kernels before forking where this repays it
        (:func:`segeval.core.kernels.warm`).
    ``load_gt(item) -> gt`` and ``score_with(item, gt) -> (stats, row)``
        Optional halves of ``score`` (``score(i) == score_with(i, load_gt(i))``), so that a
        leaderboard decodes each ground-truth image once for all submissions.
    ``load(item)`` and ``count(loaded, device) -> list[(stats, row)]``
        Optional halves for GPU batches (:mod:`segeval.engine.cuda`): decode on the CPU,
        count a list of decoded items on the device.
    ``matched``
        How many items have a prediction (a leaderboard tries a submission's single top-level
        folder when this is 0).
    """

    format: str
    task: str
    items: Sequence[Any]
    score: Callable[[Any], tuple[Any, dict[str, Any] | None]]
    zero: Any
    finish: Callable[[Any, list[dict[str, Any]]], Any]
    name_of: Callable[[Any], str] = str
    pixels: int = 0
    load_gt: Callable[[Any], Any] | None = None
    score_with: Callable[[Any, Any], tuple[Any, dict[str, Any] | None]] | None = None
    load: Callable[[Any], Any] | None = None
    count: Callable[[list[Any], str], list[tuple[Any, dict[str, Any] | None]]] | None = None
    matched: int = -1
    settings: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Iterator[Any]:
        return iter(self.items)


def check_missing(pairs: Sequence[Any], missing: Missing, where: object, *,
                  what: str = "prediction", hint: str = "count them as wrong",
                  counted: str = "count as all wrong", extra: Sequence[Any] = ()) -> None:
    """Raise for items whose ``pred`` is ``None`` (unless ``missing="zero"``: then warn that
    they ``counted``); warn about ``extra`` predictions that pair with no ground truth. ``hint``
    ends the error: "use --missing zero to <hint>"."""
    absent = [p.name for p in pairs if p.pred is None]
    if absent and missing == "error":
        raise MissingFileError(
            f"{where}: no {what} for {len(absent)} of {len(pairs)} ground-truth images "
            f"({shown(absent)}); use --missing zero to {hint}", parameters=("missing",))
    if absent:
        log.warning("%d ground-truth images have no %s and %s: %s", len(absent), what, counted,
                    shown(absent))
    if extra:
        n = len(extra)
        log.warning("%d prediction%s no ground truth and %s ignored: %s", n,
                    "s have" if n > 1 else " has", "are" if n > 1 else "is", shown(extra))
