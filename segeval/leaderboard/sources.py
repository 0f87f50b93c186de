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
* its end-of-central-directory record announces more members than the :class:`Limits` allow,
  or a central directory larger than they can need (checked before the archive is listed, so
  a 300,000-entry archive costs no listing),
* a member's path is absolute, has a drive letter, or has a ``..`` component (``unsafe path``),
* a member is a symbolic link (``symbolic link``), or encrypted,
* a member's declared uncompressed size exceeds the limit for one member, or the sum of them
  the limit for all (the :class:`Limits`, and ``max_bytes``).

While reading, a member is inflated as a stream and at most its declared size is kept: one
that inflates to more (a zip bomb that lies about its size), or whose CRC does not match,
fails its submission too. Each refusal is a :class:`SubmissionError` whose one-line message
names the archive and the member.

A folder submission is held to the same limits (from its files' sizes), and never follows a
symbolic link: a link anywhere in it, to a file or a folder, fails the submission with one line
naming the link (a participant's folder could otherwise link to the hidden ground truth).

The :class:`Limits` come from the ground truth (:func:`submission_limits`): a submission needs
no more than its ground truth, so a member may hold at most what the largest ground-truth file
can need (a PNG: its pixels x :data:`PNG_BYTES_PER_PIXEL` x :data:`SIZE_FACTOR`; a JSON file
:data:`JSON_FACTOR` times its size; a NIfTI volume its header's voxels x
:data:`NIFTI_BYTES_PER_VOXEL` times its bytes per voxel, uncompressed, x :data:`SIZE_FACTOR`;
plus :data:`SLACK_BYTES`), all members together the sum of
those, and the number of members :data:`MEMBERS_PER_FILE` per ground-truth file (256 for the
instance task, whose predictions are one mask PNG per instance) plus :data:`EXTRA_MEMBERS`.

The content hash of a submission (:attr:`Submission.digest`) is the SHA-256 of the zip file's
bytes, or for a folder of every member's path and bytes in sorted order; it keys the cache.
"""

from __future__ import annotations

import collections
import hashlib
import os
import re
import stat
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from segeval.errors import DataError, FileFormatError
from segeval.formats.base import Folder, check_no_links, list_tree

#: Default limit on a submission archive's total uncompressed size (``--max-bytes``): 4 GiB.
DEFAULT_MAX_BYTES = 4 << 30

#: Bytes per pixel a label PNG segeval reads can need at most (8-bit RGBA).
PNG_BYTES_PER_PIXEL = 4
#: A NIfTI prediction may store each voxel in up to this many times the ground truth's bytes
#: (an 8-bit ground truth, float64 predictions), uncompressed.
NIFTI_BYTES_PER_VOXEL = 8
#: A PNG file may be larger than its pixels (filter bytes, stored deflate blocks, chunks).
SIZE_FACTOR = 2
#: A prediction JSON (COCO results with masks, a panoptic segment table) may be this many times
#: the size of the ground truth's JSON.
JSON_FACTOR = 64
#: Added to every member's limit (headers, text chunks, small files).
SLACK_BYTES = 1 << 20
#: Members allowed per ground-truth file, by task (others: ``"*"``).
MEMBERS_PER_FILE = {"instance": 256, "*": 4}
#: Members allowed besides (folders, a README, hidden files).
EXTRA_MEMBERS = 64
#: Central-directory bytes allowed per member (46 bytes of header, the name, extra fields).
CD_BYTES_PER_MEMBER = 2048

_DRIVE = re.compile(r"^[A-Za-z]:")
_CHUNK = 1 << 20


class SubmissionError(DataError):
    """A submission that cannot be scored (unsafe or corrupt archive, missing or bad files)."""


@dataclass(frozen=True)
class Limits:
    """How much one submission may hold (see the module docstring): ``member_bytes`` for one
    member (uncompressed), ``total_bytes`` for all, ``members`` entries (folders included)."""

    member_bytes: int
    total_bytes: int
    members: int


def _head(file: Any, n: int = 33) -> tuple[bytes, int]:
    """The first ``n`` bytes of a ground-truth file (a PNG's signature and IHDR) and its
    size."""
    if not isinstance(file.tree, Folder):
        data = file.read()
        return data[:n], len(data)
    path = file.tree.root / file.member
    try:
        with open(path, "rb") as f:
            return f.read(n), os.fstat(f.fileno()).st_size
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from None


def _nifti_bytes(file: Any, name: str) -> int | None:
    """The uncompressed size a NIfTI-1 or NIfTI-2 file's header announces (header + voxels x
    bytes per voxel), or ``None`` when the header cannot be read so."""
    head, _ = _head(file, 1 << 16)
    if name.endswith(".gz"):
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 544)
        except zlib.error:
            return None
    for order in "<>":
        if len(head) >= 348 and struct.unpack_from(order + "i", head)[0] == 348:
            rank, *dims = struct.unpack_from(order + "8h", head, 40)
            bits = struct.unpack_from(order + "h", head, 72)[0]
            offset = 352
        elif len(head) >= 540 and struct.unpack_from(order + "i", head)[0] == 540:
            bits = struct.unpack_from(order + "h", head, 14)[0]
            rank, *dims = struct.unpack_from(order + "8q", head, 16)
            offset = 544
        else:
            continue
        if not 1 <= rank <= 7:
            return None
        voxels = 1
        for d in dims[:rank]:
            voxels *= max(int(d), 1)
        return offset + voxels * max(int(bits), 8) // 8
    return None


def file_need(file: Any) -> int:
    """The most bytes a prediction member standing for ground-truth ``file`` (a
    :class:`~segeval.formats.base.File`) can need: see the module docstring."""
    head, size = _head(file)
    name = file.member.lower()
    if head.startswith(b"\x89PNG\r\n\x1a\n") and head[12:16] == b"IHDR" and len(head) >= 24:
        width, height = struct.unpack_from(">II", head, 16)
        return SIZE_FACTOR * (width * height * PNG_BYTES_PER_PIXEL + height) + SLACK_BYTES
    if name.endswith(".json"):
        return JSON_FACTOR * size + SLACK_BYTES
    if name.endswith((".nii", ".nii.gz")):  # as stored uncompressed, in any voxel type
        raw = _nifti_bytes(file, name)
        if raw is not None:
            return SIZE_FACTOR * max(raw * NIFTI_BYTES_PER_VOXEL, size) + SLACK_BYTES
    return SIZE_FACTOR * size + SLACK_BYTES


def submission_limits(task: str, files: Any) -> Limits:
    """The :class:`Limits` of a submission scored against the ground-truth ``files`` (a
    reference's ``files``) for ``task``."""
    needs = [file_need(f) for f in files] or [SLACK_BYTES]
    per_file = MEMBERS_PER_FILE.get(task, MEMBERS_PER_FILE["*"])
    return Limits(max(needs), sum(needs), per_file * len(needs) + EXTRA_MEMBERS)


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
            if self.kind == "folder":
                check_no_links(self.path, member)
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
            sub.members.update(list_tree(sub.path, "refuse"))
    except (OSError, zipfile.BadZipFile, DataError):
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


def _central_directory(path: Path) -> tuple[int, int] | None:
    """``(entries, size in bytes)`` of an archive's central directory as its end record
    announces them (zip64 included), read from the file's last 64 KiB; ``None`` when there is
    no end record (:mod:`zipfile` then says what is wrong)."""
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        end = f.tell()
        start = max(0, end - (22 + 0xFFFF))
        f.seek(start)
        tail = f.read()
        at = tail.rfind(b"PK\x05\x06")
        if at < 0 or at + 22 > len(tail):
            return None
        entries, size = struct.unpack_from("<HI", tail, at + 10)
        if (entries == 0xFFFF or size == 0xFFFFFFFF) and at >= 20 \
                and tail[at - 20:at - 16] == b"PK\x06\x07":
            (offset,) = struct.unpack_from("<Q", tail, at - 12)
            if offset < end:
                f.seek(offset)
                record = f.read(56)
                if len(record) == 56 and record[:4] == b"PK\x06\x06":
                    entries, size = struct.unpack_from("<QQ", record, 32)
        return entries, size


def _check_count(path: Path, count: int, limits: Limits, what: str) -> None:
    if count > limits.members:
        raise SubmissionError(
            f"{path}: {what} {count} members, over the limit of {limits.members} for this "
            f"ground truth (a zip bomb?)")


def list_zip(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, limits: Limits | None = None
             ) -> tuple[dict[str, int], str]:
    """Check an archive and list it: ``({member: size}, sha256)``; :class:`SubmissionError`
    for anything in the module docstring's list (the :class:`Limits` only when given)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
        if limits is not None:
            announced = _central_directory(path)
            if announced is not None:
                _check_count(path, announced[0], limits, "announces")
                if announced[1] > limits.members * CD_BYTES_PER_MEMBER:
                    raise SubmissionError(
                        f"{path}: a central directory of {announced[1]} bytes, over the "
                        f"limit of {limits.members * CD_BYTES_PER_MEMBER} for "
                        f"{limits.members} members (a zip bomb?)")
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except SubmissionError:
        raise
    except Exception as e:  # zipfile raises many kinds for damage (struct.error, zlib.error...)
        why = (str(e) or type(e).__name__).replace("\n", " ")
        raise SubmissionError(f"{path}: corrupt archive ({why})") from None
    if limits is not None:
        _check_count(path, len(infos), limits, "holds")
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
        _check_sizes(path, info.filename, info.file_size, declared, max_bytes, limits)
        declared += info.file_size
        name = info.filename
        if name in members:
            raise SubmissionError(f"{path}: member {info.filename!r} appears twice")
        members[name] = info.file_size
    return members, digest.hexdigest()


def _check_sizes(path: Path, member: str, size: int, before: int, max_bytes: int,
                 limits: Limits | None) -> None:
    """Refuse a member of ``size`` bytes (``before``: the sizes of the members before it)."""
    if limits is not None and size > limits.member_bytes:
        raise SubmissionError(
            f"{path}: member {member!r} of {size} bytes (uncompressed) is over the limit of "
            f"{limits.member_bytes} bytes for one member of this ground truth (a zip bomb?)")
    if before + size > max_bytes:
        raise SubmissionError(
            f"{path}: uncompressed size exceeds the limit of {max_bytes} bytes "
            f"(--max-bytes) at member {member!r}")
    if limits is not None and before + size > limits.total_bytes:
        raise SubmissionError(
            f"{path}: uncompressed size exceeds the limit of {limits.total_bytes} bytes for "
            f"this ground truth at member {member!r} (a zip bomb?)")


def list_folder(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, limits: Limits | None = None
                ) -> tuple[dict[str, int], str]:
    """List a submission folder's regular files (recursively): ``({member: size}, sha256)``.
    A symbolic link in it, a folder that cannot be listed, or sizes over the limits (as for an
    archive) are a :class:`SubmissionError`."""
    try:
        found = list_tree(path, "refuse")
    except DataError as e:
        raise SubmissionError(str(e)) from None
    if limits is not None:
        _check_count(path, len(found), limits, "holds")
    members: dict[str, int] = {}
    declared = 0
    for rel in sorted(found, key=lambda m: m.split("/")):
        _check_sizes(path, rel, found[rel], declared, max_bytes, limits)
        declared += found[rel]
        members[rel] = found[rel]
    digest = hashlib.sha256()
    for rel in members:
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\x00")
        digest.update(str(members[rel]).encode() + b"\x00")
        with open(path / rel, "rb") as f:
            while chunk := f.read(_CHUNK):
                digest.update(chunk)
    return members, digest.hexdigest()


def _list_file(path: Path, max_bytes: int = DEFAULT_MAX_BYTES, limits: Limits | None = None
               ) -> tuple[dict[str, int], str]:
    """A bare ``.json`` submission file as one member: ``({name: size}, sha256)``."""
    _check_sizes(path.parent, path.name, path.stat().st_size, 0, max_bytes, limits)
    digest = hashlib.sha256(path.name.encode("utf-8", "surrogateescape") + b"\x00")
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return {path.name: path.stat().st_size}, digest.hexdigest()


def open_submission(path: Path, max_bytes: int = DEFAULT_MAX_BYTES,
                    limits: Limits | None = None) -> Submission:
    """List and hash one submission; a refused one comes back with ``error`` set. A folder,
    a ``.zip``, or (for the platform entry points, where a participant uploads one results
    file) a bare ``.json`` file, whose one member is itself. ``limits`` (from the ground truth,
    :func:`submission_limits`) bound its members' number and sizes."""
    name = submission_name(path)
    kind = "folder" if path.is_dir() else "file" if path.suffix.lower() == ".json" else "zip"
    lister = list_folder if kind == "folder" else _list_file if kind == "file" else list_zip
    try:
        members, digest = lister(path, max_bytes, limits)
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
    """A zip member's bytes, exactly its declared size (:class:`SubmissionError` for more or
    fewer, a CRC error or any other damage); inflated as a stream, never beyond
    ``declared + 1`` bytes."""
    try:
        with _zips_lock:
            zf = _zip_file(sub.path)
            declared = sub.members.get(member)
            if declared is None:
                declared = zf.getinfo(member).file_size
            with zf.open(member) as f:
                data = f.read(declared + 1)
    except SubmissionError:
        raise
    except Exception as e:  # zipfile lets zlib.error, lzma and bz2 errors through: all damage
        why = (str(e) or type(e).__name__).replace("\n", " ")
        raise SubmissionError(f"{sub.display(member)}: corrupt archive member ({why})"
                              ) from None
    if len(data) > declared:
        raise SubmissionError(
            f"{sub.display(member)}: inflates beyond its declared size of {declared} bytes")
    if len(data) < declared:
        raise SubmissionError(f"{sub.display(member)}: corrupt archive member (inflates to "
                              f"{len(data)} bytes, not its declared {declared})")
    return data


def close_archives() -> None:
    """Close the archives this process keeps open."""
    with _zips_lock:
        if _zips_pid == os.getpid():
            for zf in _zips.values():
                zf.close()
        _zips.clear()
