"""Reading a user's file whole, with the one-line errors every reader gives."""

from __future__ import annotations

import os

from segeval.errors import FileFormatError, MissingFileError


def size_text(n: int) -> str:
    """``n`` bytes for a message: ``"1.5 MiB"``, ``"300 bytes"``."""
    for unit, shift in (("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.1f} {unit}"
    return f"{n} bytes"


def read_bytes(path: str | os.PathLike[str], *, what: str = "file",
               max_bytes: int | None = None) -> bytes:
    """The bytes of the file ``path``. ``what`` names the file in messages ("ground truth
    JSON"); ``max_bytes`` bounds its size, checked with ``stat`` before anything is read.

    Raises :class:`~segeval.errors.MissingFileError` for a missing file and
    :class:`~segeval.errors.FileFormatError` for a folder, an unreadable file or one over
    ``max_bytes``; each message starts with ``path``."""
    try:
        with open(path, "rb") as f:
            if max_bytes is None:
                return f.read()
            size = os.fstat(f.fileno()).st_size
            if size > max_bytes:
                raise FileFormatError(f"{path}: {size_text(size)}, more than the "
                                      f"{size_text(max_bytes)} a {what} may have (max_bytes)")
            return f.read(max_bytes + 1)
    except FileNotFoundError:
        named = "" if what == "file" else f" ({what})"
        raise MissingFileError(f"{path}: no such file{named}") from None
    except IsADirectoryError:
        raise FileFormatError(f"{path}: a folder where a {what} is expected") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot be read ({e.strerror or e})") from None
