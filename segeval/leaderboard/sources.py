"""Submissions on disk: a sub-folder or a ``.zip`` file each, listed, hashed and read safely.

A submission is named after its folder, or its zip file without ``.zip``. Its *members* are
the regular files in it, by their path relative to the submission root with ``/`` separators.
A :class:`Submission` is a :class:`~segeval.formats.base.Tree`: the format adapter plans it as
``segeval score`` plans a prediction folder. When every member lies in one top-level folder
(``team.zip`` holding ``team/*.png``) and nothing at the top level pairs with the ground truth,
the leaderboard plans that folder instead (:func:`strip_common_folder`, :class:`PrefixView`).

Zip archives are never extracted: members are read into memory by name (through an archive
kept open per process), and an archive is refused as a whole, before anything is scored, when

* it is not a readable zip archive (``corrupt archive``),
* a member's path is absolute, has a drive letter, or has a ``..`` component (``unsafe path``),
* a member is a symbolic link (``symbolic link``), or encrypted,
* the sum of the members' declared uncompressed sizes exceeds ``max_bytes``.

While reading, a member that inflates to more than its declared size, or whose CRC does not
match, fails its submission too. Each refusal is a :class:`SubmissionError` whose one-line
message names the archive and the member.

The content hash of a submission (:attr:`Submission.digest`) is the SHA-256 of the zip file's
bytes, or for a folder of every member's path and bytes in sorted order; it keys the cache.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import stat
import threading
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segeval.errors import DataError, FileFormatError

#: Default limit on a submission archive's total uncompressed size (``--max-bytes``): 4 GiB.
DEFAULT_MAX_BYTES = 4 << 30

_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


class SubmissionError(DataError):
    """A submission that cannot be scored (unsafe or corrupt archive, missing or bad files)."""


@dataclass(frozen=True)
class Submission:
    """One submission: where it is and what is in it; a read-only
    :class:`~segeval.formats.base.Tree` of its members, so that a format adapter plans it the
    way ``segeval score`` plans a prediction folder.

    ``members`` maps each member's relative path (``/`` separators) to its uncompressed size in
    bytes. ``digest`` is the hex SHA-256 content hash. ``error`` is set (and ``members`` empty)
    when the submission was refused while listing. A submission pickles small (without its
    member list, which a copy lists again if asked): it travels with every work item.
    """

    name: str
    path: Path
    kind: str  # "folder", "zip", or "file" (one bare .json file, see open_submission)
    members: dict[str, int] = field(default_factory=dict)
    digest: str = ""
    error: str | None = None

    def __reduce__(self) -> tuple[Any, ...]:
        return _unpickle, (self.name, self.path, self.kind, self.digest, self.error)

    def __hash__(self) -> int:  # a File of it may be a dict key
        return hash((self.path, self.digest))

    @property
    def root(self) -> Path:
        """The submission's folder, zip file or bare file."""
        return self.path

    def files(self) -> dict[str, int]:
        """``{member: size}`` (:class:`~segeval.formats.base.Tree`)."""
        if getattr(self, "_unlisted", False):
            _relist(self)
        return self.members

    def read(self, member: str) -> bytes:
        """The bytes of ``member``; a zip member is read into memory through this process's
        cached archive, at most its declared size (more, or a CRC error, is a
        :class:`SubmissionError`)."""
        if self.kind in ("folder", "file"):
            path = self.path / member if self.kind == "folder" else self.path
            try:
                with open(path, "rb") as f:
                    return f.read()
            except OSError as e:
                raise FileFormatError(
                    f"{self.display(member)}: cannot be read ({e.strerror or e})") from None
        return _read_zip_member(self, member)

    def display(self, member: str) -> str:
        """How messages refer to a member: ``team.zip:a/b.png`` or ``subs/team/a/b.png``
        (a bare file: its path)."""
        if self.kind == "file":
            return str(self.path)
        return f"{self.path}:{member}" if self.kind == "zip" else str(self.path / member)


def _unpickle(name: str, path: Path, kind: str, digest: str, error: str | None) -> Submission:
    """A submission copied into another process: its members are listed again when asked for
    (no checks: they were made where it was opened)."""
    sub = Submission(name, path, kind, {}, digest, error)
    object.__setattr__(sub, "_unlisted", error is None)
    return sub


def _relist(sub: Submission) -> None:
    """Fill a copied submission's member list (see :func:`_unpickle`)."""
    object.__setattr__(sub, "_unlisted", False)
    try:
        if sub.kind == "zip":
            with _zips_lock:
                zf = _zip_file(sub.path)
                sub.members.update((i.filename, i.file_size) for i in zf.infolist()
                                   if not i.is_dir())
        elif sub.kind == "file":
            sub.members[sub.path.name] = sub.path.stat().st_size
        else:
            sub.members.update((p.relative_to(sub.path).as_posix(), p.stat().st_size)
                               for p in sorted(sub.path.rglob("*")) if p.is_file())
    except (OSError, zipfile.BadZipFile):
        pass  # reading a member then says what is wrong


class PrefixView:
    """The members of a tree below one folder (``prefix``, ending in ``/``), as a tree: what
    a submission holding everything in one top-level folder is planned on (see
    :func:`strip_common_folder`)."""

    def __init__(self, tree: Any, prefix: str) -> None:
        self.tree = tree
        self.prefix = prefix

    def __reduce__(self) -> tuple[Any, ...]:
        return PrefixView, (self.tree, self.prefix)

    def __repr__(self) -> str:
        return f"PrefixView({self.tree!r}, {self.prefix!r})"

    @property
    def root(self) -> Path:
        return Path(self.tree.root) / self.prefix.rstrip("/")

    def files(self) -> dict[str, int]:
        n = len(self.prefix)
        return {m[n:]: size for m, size in self.tree.files().items()
                if m.startswith(self.prefix)}

    def read(self, member: str) -> bytes:
        return self.tree.read(self.prefix + member)

    def display(self, member: str) -> str:
        return self.tree.display(self.prefix + member)


def discover(folder: Path) -> list[Path]:
    """Sub-folders and ``.zip`` files of ``folder`` (hidden entries skipped), sorted by name."""
    found = [p for p in sorted(folder.iterdir(), key=lambda p: p.name)
             if not p.name.startswith(".")
             and (p.is_dir() or (p.is_file() and p.suffix.lower() == ".zip"))]
    return found


def submission_name(path: Path) -> str:
    """The folder name, or the zip (or bare ``.json``) file name without its suffix."""
    if path.suffix.lower() in (".zip", ".json") and path.is_file():
        return path.stem
    return path.name


def _unsafe(name: str) -> str | None:
    """Why a zip member name is unsafe to treat as a relative path, or ``None``."""
    if name.startswith(("/", "\\")) or _DRIVE.match(name):
        return "absolute path"
    if any(part == ".." for part in re.split(r"[/\\]", name)):
        return "'..' in the path"
    if "\x00" in name:
        return "NUL in the path"
    return None


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)


def list_zip(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> tuple[dict[str, int], str]:
    """Check an archive and list it: ``({member: size}, sha256)``; :class:`SubmissionError`
    for anything in the module docstring's list."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise SubmissionError(f"{path}: corrupt archive ({e})") from None
    members: dict[str, int] = {}
    declared = 0
    for info in infos:
        why = _unsafe(info.filename)
        if why:
            raise SubmissionError(f"{path}: unsafe member {info.filename!r} ({why})")
        if _is_symlink(info):
            raise SubmissionError(f"{path}: member {info.filename!r} is a symbolic link")
        if info.is_dir():
            continue
        if info.flag_bits & 0x1:
            raise SubmissionError(f"{path}: member {info.filename!r} is encrypted")
        declared += info.file_size
        if declared > max_bytes:
            raise SubmissionError(
                f"{path}: uncompressed size exceeds the limit of {max_bytes} bytes "
                f"(--max-bytes) at member {info.filename!r}"
            )
        name = info.filename
        if name in members:
            raise SubmissionError(f"{path}: member {info.filename!r} appears twice")
        members[name] = info.file_size
    return members, digest.hexdigest()


def list_folder(path: Path) -> tuple[dict[str, int], str]:
    """List a submission folder's regular files (recursively): ``({member: size}, sha256)``."""
    digest = hashlib.sha256()
    members: dict[str, int] = {}
    for p in sorted(path.rglob("*")):
        if not p.is_file():
            continue
        rel = p.relative_to(path).as_posix()
        members[rel] = p.stat().st_size
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\x00")
        digest.update(str(members[rel]).encode() + b"\x00")
        with open(p, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return members, digest.hexdigest()


def _list_file(path: Path) -> tuple[dict[str, int], str]:
    """A bare ``.json`` submission file as one member: ``({name: size}, sha256)``."""
    digest = hashlib.sha256(path.name.encode("utf-8", "surrogateescape") + b"\x00")
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return {path.name: path.stat().st_size}, digest.hexdigest()


def open_submission(path: Path, max_bytes: int = DEFAULT_MAX_BYTES) -> Submission:
    """List and hash one submission; a refused one comes back with ``error`` set. A folder,
    a ``.zip``, or (for the platform entry points, where a participant uploads one results
    file) a bare ``.json`` file, whose one member is itself."""
    name = submission_name(path)
    kind = "folder" if path.is_dir() else "file" if path.suffix.lower() == ".json" else "zip"
    try:
        members, digest = (list_folder(path) if kind == "folder" else _list_file(path)
                           if kind == "file" else list_zip(path, max_bytes))
    except SubmissionError as e:
        return Submission(name, path, kind, error=str(e))
    except OSError as e:
        return Submission(name, path, kind, error=f"{path}: cannot be read ({e.strerror or e})")
    return Submission(name, path, kind, members, digest)


def strip_common_folder(members: list[str]) -> str:
    """The one top-level folder every member lies in (``"team/"``), or ``""``."""
    tops = {m.split("/", 1)[0] for m in members}
    if len(tops) == 1 and all("/" in m for m in members):
        return next(iter(tops)) + "/"
    return ""


#: Archives kept open per process (least recently used closed first).
_OPEN_ZIPS = 32
_zips: collections.OrderedDict[Path, zipfile.ZipFile] = collections.OrderedDict()
_zips_pid = os.getpid()
_zips_lock = threading.Lock()


def _zip_file(path: Path) -> zipfile.ZipFile:
    """This process's open :class:`zipfile.ZipFile` of ``path`` (an archive inherited from a
    parent process is never used: the two would share one file offset)."""
    global _zips_pid
    if _zips_pid != os.getpid():
        _zips.clear()  # the parent's: leave them to it
        _zips_pid = os.getpid()
    zf = _zips.get(path)
    if zf is None:
        zf = _zips[path] = zipfile.ZipFile(path)
        while len(_zips) > _OPEN_ZIPS:
            _zips.popitem(last=False)[1].close()
    else:
        _zips.move_to_end(path)
    return zf


def _read_zip_member(sub: Submission, member: str) -> bytes:
    """A zip member's bytes, at most its declared size (:class:`SubmissionError` beyond, or
    for a CRC error or any other damage)."""
    try:
        with _zips_lock:
            zf = _zip_file(sub.path)
            declared = sub.members.get(member)
            if declared is None:
                declared = zf.getinfo(member).file_size
            with zf.open(member) as f:
                data = f.read(declared + 1)
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, KeyError) as e:
        raise SubmissionError(f"{sub.display(member)}: corrupt archive member ({e})") from None
    if len(data) > declared:
        raise SubmissionError(
            f"{sub.display(member)}: inflates beyond its declared size of {declared} bytes")
    return data


def close_archives() -> None:
    """Close the archives this process keeps open."""
    with _zips_lock:
        if _zips_pid == os.getpid():
            for zf in _zips.values():
                zf.close()
        _zips.clear()
