"""Zip bombs and oversized submissions (issue 15, items 5 and 12): a submission may hold no more
than its ground truth can need, checked before the archive is listed and while it is inflated,
with bounded memory (``resource.setrlimit(RLIMIT_AS)`` in a subprocess).

The archives are written here byte by byte (``bomb``): one gigabyte of zeros is a few identical
deflate blocks repeated, so building it costs a CRC pass, not a compression of 1 GB.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from segeval.errors import SegevalError
from segeval.formats.base import File, Folder
from segeval.leaderboard.runner import prepare
from segeval.leaderboard.sources import (
    CD_BYTES_PER_MEMBER,
    EXTRA_MEMBERS,
    MEMBERS_PER_FILE,
    NIFTI_BYTES_PER_VOXEL,
    PNG_BYTES_PER_PIXEL,
    SIZE_FACTOR,
    SLACK_BYTES,
    Limits,
    SubmissionError,
    close_archives,
    file_need,
    list_zip,
    open_submission,
)
from tests.leaderboard.conftest import QUALITY, SHAPE, C, zip_folder

ROOT = Path(__file__).resolve().parents[2]
GB = 1 << 30
_ZEROS = bytes(1 << 20)


def deflate_zeros(size: int) -> tuple[bytes, int]:
    """A raw deflate stream of ``size`` zero bytes (a multiple of 1 MiB) and its CRC-32."""
    assert size % len(_ZEROS) == 0
    n = size // len(_ZEROS)
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    first = c.compress(_ZEROS) + c.flush(zlib.Z_FULL_FLUSH)
    again = c.compress(_ZEROS) + c.flush(zlib.Z_FULL_FLUSH)  # no history: the same each time
    assert c.compress(_ZEROS) + c.flush(zlib.Z_FULL_FLUSH) == again
    stream = first + again * (n - 1) + c.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(n):
        crc = zlib.crc32(_ZEROS, crc)
    return stream, crc


def write_zip(path: Path, members: list[tuple[str, bytes, int, int]], *,
              announce: int | None = None, zip64_count: bool = False) -> Path:
    """An archive of deflated ``(name, stream, crc, declared size)`` members; ``announce``
    overrides the member count of the end record (``zip64_count``: in a zip64 end record)."""
    body, central = [], []
    offset = 0
    for name, stream, crc, size in members:
        raw = name.encode()
        local = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 8, 0, 0x21, crc, len(stream),
                            size, len(raw), 0) + raw
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", 0x031E, 20, 0, 8, 0, 0x21,
                                   crc, len(stream), size, len(raw), 0, 0, 0, 0,
                                   0o100644 << 16, offset) + raw)
        body += [local, stream]
        offset += len(local) + len(stream)
    cd = b"".join(central)
    count = len(members) if announce is None else announce
    tail = b""
    if zip64_count:
        record = struct.pack("<4sQ2H2L4Q", b"PK\x06\x06", 44, 45, 45, 0, 0, count, count,
                             len(cd), offset)
        locator = struct.pack("<4sLQL", b"PK\x06\x07", 0, offset + len(cd), 1)
        tail = record + locator
        count = 0xFFFF
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(cd), offset, 0)
    path.write_bytes(b"".join(body) + cd + tail + end)
    return path


def bomb(path: Path, size: int = GB, declared: int | None = None) -> Path:
    """A zip of one member ``im000.png`` that inflates to ``size`` zero bytes and declares
    ``declared`` (default: the truth)."""
    stream, crc = deflate_zeros(size)
    return write_zip(path, [("im000.png", stream, crc, size if declared is None else declared)])


def limits_of(gt: Path) -> Limits:
    return prepare(gt, "folder", num_classes=C).limits  # type: ignore[return-value]


def test_limits_follow_the_ground_truth(board) -> None:
    """The documented formula: per PNG ``SIZE_FACTOR * (w * h * PNG_BYTES_PER_PIXEL + h) +
    SLACK_BYTES``, the sum for all members, ``MEMBERS_PER_FILE`` per file plus
    ``EXTRA_MEMBERS`` members."""
    gt, _ = board
    h, w = SHAPE
    need = SIZE_FACTOR * (w * h * PNG_BYTES_PER_PIXEL + h) + SLACK_BYTES
    assert limits_of(gt) == Limits(need, 12 * need, MEMBERS_PER_FILE["*"] * 12 + EXTRA_MEMBERS)


def test_the_bomb_is_what_it_claims(tmp_path: Path) -> None:
    """The hand-written archive is a valid zip that Python's zipfile inflates (checked on a
    small one): the tests below refuse it for its size, not for damage."""
    path = bomb(tmp_path / "small.zip", 4 << 20)
    with zipfile.ZipFile(path) as zf:
        assert zf.testzip() is None and zf.read("im000.png") == bytes(4 << 20)
    assert (tmp_path / "small.zip").stat().st_size < 64 << 10


def _in_subprocess(code: str, limit: int = 1 * GB) -> dict:
    """Run ``code`` (which prints one JSON line) under an address-space limit of ``limit``
    bytes; its JSON line (``hwm()`` there: the peak resident size in KiB)."""
    prelude = (
        "import json, resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
        # the peak resident size of this process: VmHWM, not RUSAGE_SELF, whose ru_maxrss
        # Linux carries over from the parent that forked it (pytest, hundreds of MB)
        "def hwm():\n"
        "    status = open('/proc/self/status').read()\n"
        "    return int(status.split('VmHWM:')[1].split()[0])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    r = subprocess.run([sys.executable, "-c", prelude + code], capture_output=True, text=True,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_gigabyte_member_fails_its_submission_with_bounded_memory(board,
                                                                    tmp_path: Path) -> None:
    gt, subs = board
    bomb(subs / "bomb.zip")
    assert (subs / "bomb.zip").stat().st_size < 2 << 20  # a 1 MB upload...
    code = (
        "from segeval.leaderboard import run_leaderboard\n"
        f"b = run_leaderboard({str(gt)!r}, {str(subs)!r}, jobs=2, resamples=20, "
        f"num_classes={C})\n"
        "peak = max(hwm(), resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
        "print(json.dumps({'entries': b.entries, 'peak_kib': peak}))\n"
    )
    out = _in_subprocess(code)
    entries = {e["submission"]: e for e in out["entries"]}
    assert entries["bomb"]["status"] == "failed"
    assert f"member 'im000.png' of {GB} bytes (uncompressed) is over the limit" \
        in entries["bomb"]["error"]
    assert sorted(n for n, e in entries.items() if e["status"] == "ok") == sorted(QUALITY)
    assert out["peak_kib"] < 600 << 10  # ...never inflated: far below the 1 GiB it holds


def test_a_member_lying_about_its_size_is_cut_off_while_inflating(tmp_path: Path) -> None:
    """Declared 100 bytes, inflates to 1 GB: the limits pass (they are checked on the declared
    size) and the stream check stops reading after 101 bytes."""
    path = bomb(tmp_path / "liar.zip", GB, declared=100)
    code = (
        "from segeval.leaderboard.sources import Limits, open_submission\n"
        "from segeval.errors import SegevalError\n"
        f"sub = open_submission(__import__('pathlib').Path({str(path)!r}), "
        "limits=Limits(1 << 20, 1 << 20, 10))\n"
        "assert sub.error is None, sub.error\n"
        "try:\n"
        "    sub.read('im000.png')\n"
        "    message = None\n"
        "except SegevalError as e:\n"
        "    message = str(e)\n"
        "peak = hwm()\n"
        "print(json.dumps({'message': message, 'peak_kib': peak}))\n"
    )
    out = _in_subprocess(code, limit=GB // 2)
    assert out["message"] is not None and str(path) in out["message"]
    assert "inflates beyond its declared size of 100 bytes" in out["message"] \
        or "Bad CRC-32" in out["message"]
    assert out["peak_kib"] < 400 << 10


def _no_listing(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("the archive was listed")
    monkeypatch.setattr(zipfile, "ZipFile", refuse)


def _entries(n: int) -> list[tuple[str, bytes, int, int]]:
    empty = zlib.compressobj(9, zlib.DEFLATED, -15).flush()
    return [(f"{i}.png", empty, 0, 0) for i in range(n)]


def test_300000_entries_are_refused_before_listing(tmp_path: Path, monkeypatch) -> None:
    path = write_zip(tmp_path / "many.zip", _entries(300_000), zip64_count=True)
    _no_listing(monkeypatch)
    limits = Limits(1 << 20, 1 << 24, 112)
    with pytest.raises(SubmissionError, match=r"many\.zip: announces 300000 members, over "
                                              r"the limit of 112"):
        list_zip(path, limits=limits)
    # an end record that understates the count: the central directory's size gives it away
    path = write_zip(tmp_path / "liar.zip", _entries(300_000), announce=5)
    with pytest.raises(SubmissionError, match=rf"liar\.zip: a central directory of \d+ bytes, "
                                              rf"over the limit of {112 * CD_BYTES_PER_MEMBER}"):
        list_zip(path, limits=limits)


def test_member_count_and_total_limits(board, tmp_path: Path) -> None:
    gt, _ = board
    limits = limits_of(gt)
    # more members than 4 per ground-truth image (+ 64): refused before listing
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(limits.members + 1):
            zf.writestr(f"x{i}.txt", b"")
    sub = open_submission(many, limits=limits)
    assert sub.error == (f"{many}: announces {limits.members + 1} members, over the limit of "
                         f"{limits.members} for this ground truth (a zip bomb?)")
    # members each under the limit, together over it
    stream, crc = deflate_zeros(1 << 20)
    n = limits.total_bytes // (1 << 20) + 1
    big = write_zip(tmp_path / "big.zip", [(f"{i}.png", stream, crc, 1 << 20)
                                           for i in range(n)])
    sub = open_submission(big, limits=limits)
    assert sub.error is not None and f"exceeds the limit of {limits.total_bytes} bytes for " \
        "this ground truth" in sub.error
    # the same limits hold for a folder submission (the sizes of its files)
    folder = tmp_path / "folder"
    folder.mkdir()
    with open(folder / "im000.png", "wb") as f:
        f.truncate(limits.member_bytes + 1)  # sparse: costs no disk
    sub = open_submission(folder, limits=limits)
    assert sub.error is not None and "im000.png' of" in sub.error \
        and "over the limit" in sub.error


def test_a_submission_within_the_limits_is_scored(board, tmp_path: Path) -> None:
    """The limits do not get in the way of an honest archive (with a folder inside, deflated
    or stored)."""
    gt, subs = board
    zip_folder(subs / "alpha", subs / "alpha2.zip", prefix="alpha2/")
    from segeval.leaderboard import run_leaderboard

    board_ = run_leaderboard(gt, subs, jobs=2, resamples=20, num_classes=C)
    ranked = {e["submission"]: e for e in board_.ranked()}
    assert set(ranked) == {*QUALITY, "alpha2"}
    assert ranked["alpha2"]["metrics"] == ranked["alpha"]["metrics"]


def test_png_over_the_pixel_limit_is_refused_from_its_header(tmp_path: Path) -> None:
    """A 1 KB PNG that declares 2**31 - 1 x 2**31 - 1 pixels, and one that declares 100 000 x
    1 000 (within the limit) over a few bytes of data: both refused before anything of their
    size is allocated, by every decoder, under a 512 MiB address-space limit."""
    from tests.formats import pngenc

    huge = pngenc.encode(np.zeros((1, 1), np.uint8), pngenc.GREY,
                         size=(2**31 - 1, 2**31 - 1))
    wide = pngenc.encode(np.zeros((1, 1), np.uint8), pngenc.GREY, size=(100_000, 1_000))
    code = (
        "from segeval.formats.png import decode_label_png\n"
        "from segeval.errors import SegevalError\n"
        "out = []\n"
        f"for data in ({huge!r}, {wide!r}):\n"
        "    for decoder in ('fast', 'pillow', 'auto'):\n"
        "        try:\n"
        "            decode_label_png(data, 'x.png', decoder=decoder)\n"
        "            out.append(None)\n"
        "        except SegevalError as e:\n"
        "            out.append(str(e))\n"
        "print(json.dumps(out))\n"
    )
    out = _in_subprocess(code, limit=GB // 2)
    assert all(m is not None for m in out)
    assert len(set(out[:3])) == 1 and "over the limit of" in out[0]
    assert len(set(out[3:])) == 1 and "cannot hold a 100000x1000" in out[3]


def test_a_prediction_of_another_shape_is_refused_from_its_header(tmp_path: Path) -> None:
    """~170 KB of PNG that inflates to 169 million pixels: with the ground truth's shape
    given, refused from the header (nothing inflated) under a 256 MiB address-space limit."""
    raw_row = bytes(13_001)
    c = zlib.compressobj(9)
    stream = b"".join(c.compress(raw_row) for _ in range(13_000)) + c.flush()
    from tests.formats import pngenc

    data = (pngenc.SIGNATURE
            + pngenc.chunk(b"IHDR", struct.pack(">IIBBBBB", 13_000, 13_000, 8, 0, 0, 0, 0))
            + pngenc.chunk(b"IDAT", stream) + pngenc.chunk(b"IEND", b""))
    assert len(data) < 200_000
    path = tmp_path / "p.png"
    path.write_bytes(data)
    code = (
        "from segeval.formats.png import decode_label_png\n"
        "from segeval.errors import SegevalError\n"
        "out = []\n"
        "for decoder in ('fast', 'pillow', 'auto'):\n"
        "    try:\n"
        f"        decode_label_png(open({str(path)!r}, 'rb').read(), 'p.png', "
        "decoder=decoder, shape=(24, 32), against='gt/p.png')\n"
        "        out.append(None)\n"
        "    except SegevalError as e:\n"
        "        out.append(type(e).__name__ + ': ' + str(e))\n"
        "print(json.dumps(out))\n"
    )
    out = _in_subprocess(code, limit=GB // 4)
    assert out == ["SizeMismatchError: p.png: shape (13000, 13000) does not match the ground "
                   "truth gt/p.png shape (24, 32)"] * 3


# ---------------------------------------------------------------- fuzzing the archive reader

_LONG = int(os.environ.get("SEGEVAL_FUZZ_EXAMPLES", "0"))


@st.composite
def mutated_zips(draw: st.DrawFn) -> bytes:
    """A small valid archive (deflated or stored members, a folder entry) with one to three
    mutations: a flipped byte, a truncation, or a header field set to an extreme value (sizes,
    counts, offsets, name lengths, flags, compression method) -- in the local headers, the
    central directory or the end record."""
    members = draw(st.lists(st.tuples(st.sampled_from(["a.png", "b/c.png", "d.json", "e/"]),
                                      st.binary(max_size=300),
                                      st.sampled_from([zipfile.ZIP_STORED,
                                                       zipfile.ZIP_DEFLATED])),
                            min_size=1, max_size=4, unique_by=lambda m: m[0]))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data, method in members:
            zf.writestr(name, b"" if name.endswith("/") else data, compress_type=method)
    data = bytearray(buf.getvalue())
    fields = [(b"PK\x03\x04", off, fmt) for off, fmt in ((6, "<H"), (8, "<H"), (14, "<L"),
                                                          (18, "<L"), (22, "<L"), (26, "<H"))]
    fields += [(b"PK\x01\x02", off, fmt) for off, fmt in ((8, "<H"), (10, "<H"), (16, "<L"),
                                                          (20, "<L"), (24, "<L"), (28, "<H"),
                                                          (30, "<H"), (38, "<L"), (42, "<L"))]
    fields += [(b"PK\x05\x06", off, fmt) for off, fmt in ((8, "<H"), (10, "<H"), (12, "<L"),
                                                          (16, "<L"), (20, "<H"))]
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["flip", "truncate", "field"]))
        if not data:
            break
        if op == "flip":
            pos = draw(st.integers(0, len(data) - 1))
            data[pos] ^= draw(st.integers(1, 255))
        elif op == "truncate":
            del data[draw(st.integers(0, len(data) - 1)):]
        else:
            sig, off, fmt = draw(st.sampled_from(fields))
            starts = [i for i in range(len(data)) if data.startswith(sig, i)]
            if not starts:
                continue
            at = draw(st.sampled_from(starts)) + off
            top = (1 << (8 * struct.calcsize(fmt))) - 1
            value = draw(st.one_of(st.sampled_from([0, 1, top, top - 1, top // 2]),
                                   st.integers(0, top)))
            if at + struct.calcsize(fmt) <= len(data):
                struct.pack_into(fmt, data, at, value)
    return bytes(data)


@settings(max_examples=_LONG or 300, deadline=None, derandomize=not _LONG,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(mutated_zips())
def test_the_archive_reader_refuses_damage_in_one_line(tmp_path_factory, data: bytes) -> None:
    """Whatever the damage: the submission is listed or refused with one line naming the
    archive (never another exception), and every listed member is read to at most its
    declared size, which the limits bound, or refused in one line."""
    path = tmp_path_factory.mktemp("z") / "s.zip"
    path.write_bytes(data)
    limits = Limits(4096, 8192, 8)
    sub = open_submission(path, limits=limits)
    if sub.error is not None:
        assert str(path) in sub.error and "\n" not in sub.error
        event("refused: " + re.sub(r"'[^']*'|[0-9]+", "X", sub.error.split(": ", 1)[1])[:60])
        return
    assert len(sub.members) <= limits.members
    assert all(size <= limits.member_bytes for size in sub.members.values())
    assert sum(sub.members.values()) <= limits.total_bytes
    read = 0
    for member, size in sub.members.items():
        try:
            got = sub.read(member)
        except SegevalError as e:
            assert str(path) in str(e) and "\n" not in str(e)
            continue
        assert len(got) == size
        read += 1
    event(f"listed, {read} of {len(sub.members)} members read")
    close_archives()


@pytest.mark.parametrize("suffix", [".nii", ".nii.gz"])
def test_a_nifti_ground_truth_limits_by_its_header(tmp_path: Path, suffix: str) -> None:
    """A volume's limit comes from its header (NIfTI-1: ``dim`` at byte 40, ``bitpix`` at 72,
    data from byte 352), not from its compressed size: 10 x 20 x 30 8-bit voxels."""
    import gzip

    header = bytearray(348)
    struct.pack_into("<i", header, 0, 348)
    struct.pack_into("<8h", header, 40, 3, 10, 20, 30, 1, 1, 1, 1)
    struct.pack_into("<hh", header, 70, 2, 8)  # datatype uint8, bitpix 8
    struct.pack_into("<f", header, 108, 352.0)  # vox_offset
    header[344:348] = b"n+1\x00"
    data = bytes(header) + bytes(4) + bytes(6000)
    path = tmp_path / f"case{suffix}"
    path.write_bytes(gzip.compress(data) if suffix.endswith(".gz") else data)
    import nibabel  # a test dependency: the header is what the spec says

    assert nibabel.load(path).shape == (10, 20, 30)
    raw = 352 + 10 * 20 * 30
    need = file_need(File(Folder(tmp_path), path.name))
    assert need == SIZE_FACTOR * raw * NIFTI_BYTES_PER_VOXEL + SLACK_BYTES


def test_a_png_there_is_not_the_memory_for_is_one_line(tmp_path: Path) -> None:
    """A valid 12000 x 12000 PNG (144 MB of pixels in 140 KB) with 100 MB of address space
    left: every decoder says so in one line (the fast reader's output array, and Pillow's
    image, cannot be allocated; the check before Pillow inflates a megabyte at a time)."""
    from tests.formats import pngenc

    c = zlib.compressobj(9)
    row = bytes(12_001)
    stream = b"".join(c.compress(row) for _ in range(12_000)) + c.flush()
    path = tmp_path / "big.png"
    path.write_bytes(pngenc.SIGNATURE
                     + pngenc.chunk(b"IHDR", struct.pack(">IIBBBBB", 12_000, 12_000, 8, 0, 0,
                                                         0, 0))
                     + pngenc.chunk(b"IDAT", stream) + pngenc.chunk(b"IEND", b""))
    code = (
        "from segeval.formats.png import decode_label_png\n"
        "from segeval.core.kernels import c_png\n"
        "from segeval.errors import SegevalError\n"
        f"data = open({str(path)!r}, 'rb').read()\n"
        "status = open('/proc/self/status').read()\n"
        "size = int(status.split('VmSize:')[1].split()[0]) << 10\n"
        "resource.setrlimit(resource.RLIMIT_AS, (size + (100 << 20), size + (100 << 20)))\n"
        "out = []\n"
        "for decoder in ('fast', 'pillow', 'auto'):\n"
        "    try:\n"
        "        decode_label_png(data, 'big.png', decoder=decoder)\n"
        "        out.append(None)\n"
        "    except SegevalError as e:\n"
        "        out.append(str(e))\n"
        "print(json.dumps(out))\n"
    )
    out = _in_subprocess(code, limit=-1)
    assert out == ["big.png: a PNG of 12000x12000 (width x height) that there is not the "
                   "memory to decode"] * 3
