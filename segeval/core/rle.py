"""COCO run-length encoding (RLE): encoding masks and checking RLEs before pycocotools sees them.

Conventions (those of ``pycocotools.mask``):

* A mask is ``H x W``, non-zero = inside. It is run-length encoded in **column-major** (Fortran)
  order: ``counts`` alternates runs of 0s and 1s and always starts with a run of 0s (possibly of
  length 0). A valid RLE's runs are non-negative and sum to ``H * W``; ``size`` is ``[H, W]``.
* *Uncompressed* RLE stores ``counts`` as a list of ints; *compressed* RLE as an ASCII string:
  each run is written in 5-bit groups, least significant first, as characters ``48 + v`` where
  bit ``0x20`` of ``v`` says "more groups follow" and bit ``0x10`` of the last group is the
  sign; from the third run on, the value stored is the difference to the run two before.
* pycocotools itself does not check any of this: a string whose runs do not add up to
  ``H * W`` silently gives wrong areas and IoUs (or writes past the mask when decoded), and
  masks of different sizes silently never match. :func:`compressed_run_lengths` decodes many
  strings at once with NumPy so that every RLE can be checked before evaluation.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from segeval.errors import bad_value

_MAX_GROUPS = 10  # 50 bits: far more than any real run, and no int64 overflow
#: characters decoded at once by :func:`compressed_totals`
CHUNK_CHARS = 1 << 18


def encode_mask(mask: np.ndarray) -> dict[str, Any]:
    """Compressed COCO RLE of one ``H x W`` mask (any dtype; non-zero = inside).

    Returns ``{"size": [H, W], "counts": str}``, JSON-ready (``counts`` decoded from the bytes
    ``pycocotools.mask.encode`` returns).

    >>> encode_mask(np.array([[0, 1], [1, 1]]))
    {'size': [2, 2], 'counts': '13'}
    """
    from pycocotools import mask as mask_utils

    if getattr(mask, "ndim", None) != 2:
        raise bad_value("mask", "a 2-D array", mask)
    rle = mask_utils.encode(np.asfortranarray(mask != 0, dtype=np.uint8))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": rle["counts"].decode("ascii")}


def compressed_run_lengths(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray]:
    """Decode compressed RLE ``counts`` strings into their run lengths, all at once.

    Returns ``(runs, offsets)``: int64 ``runs[offsets[i]:offsets[i + 1]]`` are the run lengths
    of ``strings[i]`` (``offsets`` has ``len(strings) + 1`` entries). A string that is not a
    compressed RLE at all (a character outside ``'0'..'o'``, a last group that says "more
    follows", a run wider than 50 bits) gets no runs; :func:`compressed_totals` reports it.
    """
    runs, offsets, _ = _decode(strings)
    return runs, offsets


def compressed_totals(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """Per string: ``(sum of runs, smallest run, undecodable)``.

    ``undecodable[i]`` is True when ``strings[i]`` is not a compressed RLE string at all; its sum
    and minimum are then meaningless. An empty string has sum 0 and minimum 0. Strings are
    decoded in chunks of about :data:`CHUNK_CHARS` characters, so that the temporaries stay
    small (a few MiB) whatever the number of strings.
    """
    n = len(strings)
    totals = np.zeros(n, np.int64)
    minima = np.zeros(n, np.int64)
    bad = np.zeros(n, bool)
    start = 0
    while start < n:
        stop, size = start, 0
        while stop < n and (size < CHUNK_CHARS or stop == start):
            size += len(strings[stop])
            stop += 1
        runs, offsets, chunk_bad = _decode(strings[start:stop])
        has = np.diff(offsets) > 0
        if runs.size:
            totals[start:stop][has] = np.add.reduceat(runs, offsets[:-1][has])
            minima[start:stop][has] = np.minimum.reduceat(runs, offsets[:-1][has])
        bad[start:stop] = chunk_bad
        start = stop
    return totals, minima, bad


def _decode(strings: Sequence[str | bytes]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n = len(strings)
    bad = np.zeros(n, bool)
    raw: list[bytes] = []
    for i, s in enumerate(strings):
        if isinstance(s, str):
            try:
                s = s.encode("ascii")
            except UnicodeEncodeError:
                bad[i] = True
                s = b""
        raw.append(s)
    lens = np.fromiter((len(s) for s in raw), np.int64, n)
    v = np.frombuffer(b"".join(raw), np.uint8) - np.uint8(48)  # wraps below '0'
    ends = (v & 0x20) == 0
    last = np.cumsum(lens) - 1
    nonempty = lens > 0
    bad[nonempty] |= ~ends[last[nonempty]]  # a string must end with a complete group
    if (v > 63).any():
        bad[np.unique(np.searchsorted(last, np.flatnonzero(v > 63)))] = True
    if bad.any():  # rare: decode only the good strings, keep the bad ones empty
        keep = np.repeat(~bad, lens)
        v, ends = v[keep], ends[keep]
        lens = np.where(bad, 0, lens)
    end_idx = np.flatnonzero(ends)  # one per run, in order
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(lens, out=offsets[1:])
    offsets = np.searchsorted(end_idx, offsets)  # first run of each string
    starts = np.empty_like(end_idx)
    if end_idx.size:
        starts[0] = 0
        starts[1:] = end_idx[:-1] + 1
    width = end_idx - starts + 1  # characters per run
    max_width = int(width.max()) if width.size else 0
    if max_width > _MAX_GROUPS:  # rare: blank those strings and start again
        wide = np.searchsorted(offsets, np.flatnonzero(width > _MAX_GROUPS), side="right") - 1
        bad[wide] = True
        runs, offsets, _ = _decode([b"" if bad[i] else raw[i] for i in range(n)])
        return runs, offsets, bad
    last_v = v[end_idx]
    value = (last_v & 0x1F).astype(np.int64) << (5 * (width - 1))  # the most significant group
    for j in range(max_width - 1):  # the less significant groups, one position at a time
        sel = np.flatnonzero(width > j + 1)
        value[sel] += (v[starts[sel] + j] & 0x1F).astype(np.int64) << (5 * j)
    negative = (last_v & 0x10) != 0
    value[negative] -= np.int64(1) << (5 * width[negative])  # sign of the last group
    return _undelta(value, offsets), offsets, bad


def _undelta(value: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Run lengths from stored values: ``run[j] = value[j] + run[j - 2]`` for ``j > 2``.

    Both chains (odd ``j`` and even ``j >= 2``) are running sums taken over the *global*
    parity of the concatenated runs (runs ``j`` and ``j - 2`` of one string always share it),
    minus each string's sum before its first run; run 0 is in neither chain.
    """
    if value.size == 0:
        return value
    first, last = offsets[:-1], offsets[1:]
    nonempty = first[last > first]
    w = value.copy()
    w[nonempty] = 0
    runs = np.empty_like(value)
    for parity in (0, 1):
        chain = np.cumsum(w[parity::2])
        if chain.size == 0:
            continue
        before = (first + 1 - parity) // 2  # chain entries before each string
        count = (last + 1 - parity) // 2 - before  # chain entries inside each string
        base = np.where(before > 0, chain[np.maximum(before - 1, 0)], 0)
        runs[parity::2] = chain - np.repeat(base, count)
    runs[nonempty] = value[nonempty]
    return runs
