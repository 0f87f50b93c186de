"""The one bounded JSON reader: every JSON file segeval reads from a user goes through it.

A JSON file may come from a stranger (a challenge submission), so reading one is bounded before
Python's parser sees it:

* **size**: a file larger than ``max_bytes`` (default :data:`MAX_JSON_BYTES`, 512 MiB: the
  largest COCO file, ``instances_train2017.json``, is 448 MiB) is refused from its size on disk,
  before a byte is read. Parsed JSON costs several times its size in memory; a platform that
  knows its data better passes a smaller ``max_bytes``.
* **nesting**: arrays and objects nested more than :data:`MAX_JSON_DEPTH` (64) deep are refused
  (COCO needs 4); Python's parser would otherwise recurse into a ``RecursionError``.
* **numbers**: a number with more than :data:`MAX_JSON_DIGITS` (400) digits is refused
  (Python refuses integers of more than 4300 digits with a ``ValueError``, and converting one
  costs time quadratic in its length).

Strings are not looked into: brackets and digits inside a string count for nothing. Every
failure is one :class:`~segeval.errors.DataError` (a :class:`~segeval.errors.FileFormatError`,
or a :class:`~segeval.errors.MissingFileError` for a missing file) whose message starts with the
file's name. The scan before parsing reads the bytes in chunks of :data:`SCAN_CHUNK` with NumPy
(a few passes over each chunk, temporaries of a few bytes a byte of the chunk).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from segeval.core.files import read_bytes, size_text
from segeval.errors import FileFormatError, UsageError

#: the default bound on a JSON file's size in bytes (512 MiB)
MAX_JSON_BYTES = 512 << 20
#: arrays and objects nested deeper than this are refused
MAX_JSON_DEPTH = 64
#: numbers with more digits than this are refused
MAX_JSON_DIGITS = 400
#: bytes scanned at once for nesting and number length
SCAN_CHUNK = 1 << 18

_QUOTE, _BACKSLASH = ord('"'), ord("\\")


def read_json(path: str | os.PathLike[str], *, max_bytes: int | None = None,
              what: str = "JSON file") -> Any:
    """Parse the JSON file at ``path`` within the bounds of this module.

    ``max_bytes`` bounds the file's size (default :data:`MAX_JSON_BYTES`), checked with
    ``stat`` before reading; ``what`` says what the file is in messages ("ground truth").
    Raises :class:`~segeval.errors.MissingFileError` for a missing file and
    :class:`~segeval.errors.FileFormatError` for a folder, an unreadable file, one too large,
    or bytes that are not bounded JSON text; each message starts with ``path``.
    """
    path = Path(path)
    limit = MAX_JSON_BYTES if max_bytes is None else max_bytes
    return parse_json(read_bytes(path, what=what, max_bytes=limit), str(path), max_bytes=limit)


def parse_json(data: bytes | str, name: str, *, max_bytes: int | None = None) -> Any:
    """Parse the bytes of a JSON document read from ``name`` (a file, a submission's member).

    Bounds as :func:`read_json` (``max_bytes`` bounds ``len(data)``); raises
    :class:`~segeval.errors.FileFormatError` naming ``name`` for anything that is not bounded
    JSON text (UTF-8, UTF-16 or UTF-32, as :func:`json.loads` reads it). ``NaN`` and
    ``Infinity`` are read as floats, as Python's parser does; the callers check values.
    """
    limit = MAX_JSON_BYTES if max_bytes is None else max_bytes
    if isinstance(data, str):
        try:
            data = data.encode("utf-8")
        except UnicodeEncodeError:
            raise FileFormatError(f"{name}: not valid JSON (not UTF-8 text)") from None
    elif not isinstance(data, bytes | bytearray | memoryview):
        raise UsageError(f"parse_json needs bytes, not {type(data).__name__}")
    data = bytes(data)
    if len(data) > limit:
        raise FileFormatError(f"{name}: {size_text(len(data))}, more than the "
                              f"{size_text(limit)} a JSON file may have (max_bytes)")
    depth, digits = scan(data)
    if depth > MAX_JSON_DEPTH:
        raise FileFormatError(f"{name}: not valid JSON here: arrays or objects nested "
                              f"{depth} deep (at most {MAX_JSON_DEPTH})")
    if digits > MAX_JSON_DIGITS:
        raise FileFormatError(f"{name}: not valid JSON here: a number of {digits} digits (at "
                              f"most {MAX_JSON_DIGITS})")
    try:
        return json.loads(data)
    except json.JSONDecodeError as e:
        raise FileFormatError(f"{name}: not valid JSON ({e.msg} at line {e.lineno}, "
                              f"column {e.colno})") from None
    except UnicodeDecodeError:
        raise FileFormatError(f"{name}: not valid JSON (not UTF-8 text)") from None
    except (ValueError, RecursionError, MemoryError) as e:  # bounded above; never trusted
        raise FileFormatError(f"{name}: not valid JSON ({type(e).__name__}: "
                              f"{str(e).splitlines()[0] if str(e) else ''})") from None


def scan(data: bytes) -> tuple[int, int]:
    """``(deepest nesting, longest run of digits)`` of JSON text outside its strings.

    A quote ends a string unless an odd number of backslashes stands before it. Text that is
    not JSON gets some numbers too (the parser then reports what is wrong with it). UTF-16 and
    UTF-32 text is scanned as it is: its ASCII characters are the same bytes with zeros between
    them, so brackets count the same and digit runs are cut short (the parser still bounds
    those by Python's 4300 digits).
    """
    in_string = 0
    backslashes = 0  # backslashes just before the chunk
    depth = deepest = 0
    run = longest = 0  # digits just before the chunk
    for start in range(0, len(data), SCAN_CHUNK):
        b = np.frombuffer(data, np.uint8, min(SCAN_CHUNK, len(data) - start), start)
        n = b.size
        cls = _CLASS[b]
        quotes = np.flatnonzero(cls == _Q)
        if quotes.size:  # the quotes that are not escaped: the string boundaries
            escaped = np.zeros(quotes.size, bool)
            after_bs = np.flatnonzero(b[np.maximum(quotes - 1, 0)] == _BACKSLASH)
            after_bs = after_bs[quotes[after_bs] > 0]
            if after_bs.size or (quotes[0] == 0 and backslashes):
                others = np.flatnonzero(b != _BACKSLASH)
                at = quotes[after_bs]
                prev = np.searchsorted(others, at) - 1  # last byte before q not a backslash
                count = np.where(prev >= 0, at - 1 - others[np.maximum(prev, 0)],
                                 at + backslashes)
                escaped[after_bs] = count % 2 == 1
                if quotes[0] == 0:
                    escaped[0] = backslashes % 2 == 1
            real = quotes[~escaped]
        else:
            real = quotes

        def outside(pos: np.ndarray, real: np.ndarray = real, state: int = in_string
                    ) -> np.ndarray:
            return (np.searchsorted(real, pos) + state) % 2 == 0

        brackets = np.flatnonzero(cls >= _OPEN)
        if brackets.size:
            brackets = brackets[outside(brackets)]
        if brackets.size:
            levels = depth + np.cumsum(np.where(cls[brackets] == _OPEN, 1, -1))
            deepest = max(deepest, int(levels.max()))
            depth = int(levels[-1])
        digit = (cls == _D).view(np.int8)
        edges = np.flatnonzero(np.diff(digit, prepend=0, append=0))
        if edges.size:
            starts, stops = edges[::2], edges[1::2]
            keep = outside(starts)  # a run of digits never crosses a quote
            lengths = (stops - starts)[keep]
            if starts[0] == 0 and keep[0]:
                lengths[0] += run
            if lengths.size:
                longest = max(longest, int(lengths.max()))
            run = int(lengths[-1]) if lengths.size and stops[-1] == n and keep[-1] else 0
        else:
            run = 0
        in_string = (in_string + real.size) % 2
        if b[-1] == _BACKSLASH:
            others = np.flatnonzero(b != _BACKSLASH)
            backslashes = n - 1 - int(others[-1]) if others.size else n + backslashes
        else:
            backslashes = 0
    return deepest, longest


_D, _Q, _OPEN, _CLOSE = 1, 2, 3, 4
_CLASS = np.zeros(256, np.uint8)
_CLASS[ord("0"):ord("9") + 1] = _D
_CLASS[_QUOTE] = _Q
_CLASS[[ord("["), ord("{")]] = _OPEN
_CLASS[[ord("]"), ord("}")]] = _CLOSE
