"""Submissions on disk: a sub-folder or a ``.zip`` file each, listed, hashed and read safely.

A submission is named after its folder, or its zip file without ``.zip``. Its *members* are
the regular files in it, by their path relative to the submission root with ``/`` separators.
When every member lies in one top-level folder (``team.zip`` holding ``team/*.png``) and no
member at the top level pairs with the ground truth, the task may use that folder as the root
(see :func:`strip_common_folder`).

Zip archives are never extracted: members are read into memory by name, and an archive is
refused as a whole, before anything is scored, when

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

import hashlib
import re
import stat
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from segeval.errors import DataError, FileFormatError

#: Default limit on a submission archive's total uncompressed size (``--max-bytes``): 4 GiB.
DEFAULT_MAX_BYTES = 4 << 30

_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


class SubmissionError(DataError):
    """A submission that cannot be scored (unsafe or corrupt archive, missing or bad files)."""


@dataclass(frozen=True)
class Submission:
    """One submission: where it is and what is in it.

    ``members`` maps each member's relative path (``/`` separators) to its uncompressed size in
    bytes. ``digest`` is the hex SHA-256 content hash. ``error`` is set (and ``members`` empty)
    when the submission was refused while listing.
    """

    name: str
    path: Path
    kind: str  # "folder", "zip", or "file" (one bare .json file, see open_submission)
    members: dict[str, int] = field(default_factory=dict)
    digest: str = ""
    error: str | None = None

    def display(self, member: str) -> str:
        """How messages refer to a member: ``team.zip:a/b.png`` or ``subs/team/a/b.png``
        (a bare file: its path)."""
        if self.kind == "file":
            return str(self.path)
        return f"{self.path}:{member}" if self.kind == "zip" else str(self.path / member)


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


def one_json(sub: Submission, members: list[str], kind: str, hint: str) -> tuple[str, str]:
    """``(member, prefix)`` of the one ``.json`` at the top of a submission, or at the top of
    its one top-level folder (``prefix``); a :class:`SubmissionError` naming ``kind`` for none
    or several (``hint`` says what is expected)."""

    def jsons(prefix: str) -> list[str]:
        return sorted(m for m in members if m.startswith(prefix) and m.lower().endswith(".json")
                      and "/" not in m[len(prefix):] and not m[len(prefix):].startswith("."))

    prefix = ""
    found = jsons(prefix)
    if not found:
        prefix = strip_common_folder(members)
        found = jsons(prefix) if prefix else []
    if not found:
        raise SubmissionError(f"{sub.path}: no {kind} ({hint}) at the top of the submission")
    if len(found) > 1:
        raise SubmissionError(f"{sub.path}: {len(found)} .json files ({', '.join(found[:3])})"
                              f": a submission holds one {kind}")
    return found[0], prefix


class MemberReader:
    """Reads members of submissions, keeping each archive open while in use.

    ``read(sub, member)`` returns the member's bytes; for zips at most the declared size is
    accepted (more, or a CRC error, is a :class:`SubmissionError`). Use as a context manager.
    """

    def __init__(self) -> None:
        self._zips: dict[Path, zipfile.ZipFile] = {}

    def read(self, sub: Submission, member: str, declared: int | None = None) -> bytes:
        """The bytes of ``member``; ``declared`` is its listed size (default: from ``sub``)."""
        if sub.kind in ("folder", "file"):
            try:
                return (sub.path / member if sub.kind == "folder" else sub.path).read_bytes()
            except OSError as e:
                raise FileFormatError(
                    f"{sub.display(member)}: cannot be read ({e.strerror or e})") from None
        zf = self._zips.get(sub.path)
        try:
            if zf is None:
                zf = self._zips[sub.path] = zipfile.ZipFile(sub.path)
            if declared is None:
                declared = sub.members[member]
            with zf.open(member) as f:
                data = f.read(declared + 1)
        except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError, KeyError) as e:
            raise SubmissionError(f"{sub.display(member)}: corrupt archive member ({e})") from None
        if len(data) > declared:
            raise SubmissionError(
                f"{sub.display(member)}: inflates beyond its declared size of {declared} bytes")
        return data

    def close(self) -> None:
        for zf in self._zips.values():
            zf.close()
        self._zips.clear()

    def __enter__(self) -> MemberReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
