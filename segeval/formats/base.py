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

import errno
import functools
import logging
import math
import numbers
import os
import stat
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Literal, Protocol

from segeval.core.files import read_bytes
from segeval.errors import (
    DataError,
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
Links = Literal["follow", "refuse"]
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
        # the list options also come as text ("1,2,3": a command line) or NumPy arrays
        object.__setattr__(self, "labels", _labels(self.labels))
        object.__setattr__(self, "spacing", _spacing(self.spacing))
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


def _labels(value: Any) -> tuple[int, ...] | None:
    """``labels`` as a tuple (a ``"1,2,3"`` string split, a NumPy array listed); any other bad
    value is left to :class:`Options` to refuse in the one voice."""
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # a NumPy array
        value = value.tolist()
    if isinstance(value, str):
        try:
            return tuple(int(v) for v in value.split(",") if v.strip())
        except ValueError:
            raise bad_value("labels", "non-zero integer labels or None (every label)",
                            value) from None
    if isinstance(value, Sequence):
        return tuple(int(v) if isinstance(v, numbers.Integral) and not isinstance(v, bool)
                     else v for v in value)
    return value


def _spacing(value: Any) -> tuple[float, ...] | None:
    """``spacing`` as a tuple (a ``"0.8,0.8,2"`` string split, a NumPy array listed)."""
    if hasattr(value, "tolist") and getattr(value, "ndim", 0) == 1:  # a NumPy array
        value = value.tolist()
    if isinstance(value, str):
        try:
            return tuple(float(v) for v in value.split(","))
        except ValueError:
            raise bad_value("spacing", "2 or 3 positive numbers (mm per voxel along each "
                            "axis) or None", value) from None
    if isinstance(value, Sequence):
        return tuple(value)
    return value


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
    """A folder on disk as a :class:`Tree` (listed once, lazily; pickles as its path).

    ``links`` says what a symbolic link below the root is:

    * ``"follow"`` (the default; ground truth and the organiser's own files): links to files
      and to folders are followed. What cannot be listed or read -- a link to nothing, a link
      loop, a folder that cannot be listed -- is a :class:`~segeval.errors.DataError` naming
      it, never skipped (a run on fewer images than the folder holds would be silently wrong).
    * ``"refuse"`` (prediction folders, see :func:`as_tree`): every symbolic link below the
      root, to a file or a folder, inside the root or out of it, is a
      :class:`~segeval.errors.DataError` naming it, when listing and when reading a member; so
      is a member name with a ``..`` component or an absolute one. A participant's folder
      cannot then reach the hidden ground truth through a link (zip archives refuse link
      members likewise, :mod:`segeval.leaderboard.sources`). The root itself may be a link.

    Other entries that are not regular files or folders (sockets, FIFOs, devices) are left out
    of the listing.
    """

    def __init__(self, root: str | os.PathLike[str], links: Links = "follow") -> None:
        if links not in ("follow", "refuse"):
            raise bad_value("links", one_of(("follow", "refuse")), links)
        self._root = Path(root)
        self._links: Links = links
        self._files: dict[str, int] | None = None

    @property
    def root(self) -> Path:
        return self._root

    @property
    def links(self) -> Links:
        return self._links

    def __reduce__(self) -> tuple[Any, ...]:
        return Folder, (self._root, self._links)

    def __eq__(self, other: object) -> bool:
        return (isinstance(other, Folder) and other._root == self._root
                and other._links == self._links)

    def __hash__(self) -> int:
        return hash((self._root, self._links))

    def __repr__(self) -> str:
        extra = "" if self._links == "follow" else f", links={self._links!r}"
        return f"Folder({str(self._root)!r}{extra})"

    def files(self) -> Mapping[str, int]:
        """``{member: size in bytes}`` of every regular file below the root, ordered by path
        components (the order of ``sorted(root.rglob("*"))``); ``{}`` when the root is not a
        folder (the adapters say so). Raises :class:`~segeval.errors.DataError` as the class
        docstring says."""
        if self._files is None:
            found = list_tree(self._root, self._links)
            self._files = dict(sorted(found.items(), key=lambda kv: kv[0].split("/")))
        return self._files

    def path(self, member: str) -> Path:
        if self._links == "refuse":
            check_no_links(self._root, member)
        return self._root / member

    def read(self, member: str) -> bytes:
        if self._links == "refuse":
            check_no_links(self._root, member)
        return read_bytes(self._root / member)

    def display(self, member: str) -> str:
        return str(self._root / member)


def _why(err: OSError) -> str:
    if err.errno == errno.ELOOP:
        return "a symbolic link loop"
    if err.errno == errno.ENOENT:
        return "a symbolic link to nothing (dangling)"
    return err.strerror or str(err)


def _link_refused(path: Path | str) -> DataError:
    return DataError(f"{path}: a symbolic link in a prediction folder (links are not "
                     f"followed: copy the file there instead)")


def list_tree(root: Path, links: Links = "follow") -> dict[str, int]:
    """``{member: size}`` of the regular files below ``root`` (``/`` separators, unordered),
    following or refusing symbolic links as :class:`Folder` says; ``{}`` when ``root`` is not a
    folder. A folder reached again below itself through a link is a link loop (an error)."""
    if not root.is_dir():
        return {}
    found: dict[str, int] = {}
    st = os.stat(root)
    # (folder, its member prefix, the (device, inode) of it and the folders above it)
    stack = [(str(root), "", frozenset({(st.st_dev, st.st_ino)}))]
    while stack:
        folder, rel, above = stack.pop()
        try:
            with os.scandir(folder) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError as e:
            raise DataError(f"{folder}: cannot list the folder ({_why(e)})") from None
        for entry in entries:
            path = os.path.join(folder, entry.name)
            try:
                link = entry.is_symlink()
                if link and links == "refuse":
                    raise _link_refused(path)
                st = entry.stat()  # follows a link
            except OSError as e:
                raise DataError(f"{path}: cannot be read ({_why(e)})") from None
            if stat.S_ISDIR(st.st_mode):
                key = (st.st_dev, st.st_ino)
                if key in above:
                    raise DataError(f"{path}: a symbolic link loop (a link to a folder that "
                                    f"holds it)")
                stack.append((path, rel + entry.name + "/", above | {key}))
            elif stat.S_ISREG(st.st_mode):
                found[rel + entry.name] = st.st_size
    return found


def check_no_links(root: Path, member: str) -> None:
    """Raise :class:`~segeval.errors.DataError` unless ``member`` names a path below ``root``
    without symbolic links on the way (``..`` components, an absolute name and a link are
    refused; a missing component is left to the reading, which says so)."""
    parts = member.replace("\\", "/").split("/")
    if member.startswith(("/", "\\")) or os.path.isabs(member) or ".." in parts:
        raise DataError(f"{root / member}: the name leaves the prediction folder ('..' or an "
                        f"absolute path)")
    path = str(root)  # (joined as text: this runs once per file read)
    for part in parts:
        if not part or part == ".":
            continue
        path = os.path.join(path, part)
        try:
            mode = os.lstat(path).st_mode
        except OSError:
            return
        if stat.S_ISLNK(mode):
            raise _link_refused(Path(path))


@dataclass(frozen=True)
class File:
    """One member of a tree: what a work item holds instead of a path."""

    tree: Tree
    member: str

    def read(self) -> bytes:
        return self.tree.read(self.member)

    def __str__(self) -> str:
        return self._display

    @functools.cached_property
    def _display(self) -> str:  # (a Path join per call: ~15 us, and messages ask often)
        return self.tree.display(self.member)

    @property
    def name(self) -> str:
        return self.member.rsplit("/", 1)[-1]


class KeyedGroundTruth:
    """For a reference whose ground truth is ``gt``: image (or case) key -> :class:`File`, in
    report order. Gives the ``names`` and ``files`` every reference has."""

    gt: dict[str, File]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.gt)

    @property
    def files(self) -> tuple[File, ...]:
        return tuple(self.gt.values())


def as_tree(path: str | os.PathLike[str] | Tree) -> Tree:
    """The prediction tree of a path: a :class:`Folder` that refuses symbolic links
    (``links="refuse"``); a tree as it is."""
    if hasattr(path, "files"):
        return path  # type: ignore[return-value]
    return Folder(path, links="refuse")  # type: ignore[arg-type]


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
