"""Submission sources: discovery, safe archive listing, content hashes."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from segeval.leaderboard.sources import (
    SubmissionError,
    discover,
    list_zip,
    open_submission,
    strip_common_folder,
)


def test_discover_folders_and_zips_only(tmp_path: Path) -> None:
    for name in ("b", "a", ".hidden"):
        (tmp_path / name).mkdir()
    for name in ("c.zip", "D.ZIP", "notes.txt", ".x.zip"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in discover(tmp_path)] == ["D.ZIP", "a", "b", "c.zip"]
    assert open_submission(tmp_path / "D.ZIP").name == "D"


@pytest.mark.parametrize("member, why", [
    ("../a.png", "'..' in the path"), ("a/../../b.png", "'..' in the path"),
    ("..\\a.png", "'..' in the path"), ("/abs.png", "absolute path"),
    ("\\abs.png", "absolute path"), ("C:/x.png", "absolute path"),
])
def test_unsafe_member_names(tmp_path: Path, member: str, why: str) -> None:
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("ok.png", b"1")
        zf.writestr(member, b"2")
    with pytest.raises(SubmissionError, match="unsafe member") as err:
        list_zip(archive)
    assert why in str(err.value) and str(archive) in str(err.value)


def test_declared_size_limit_and_reading(tmp_path: Path) -> None:
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("dir/", b"")
        zf.writestr("a.png", b"x" * 600)
        zf.writestr("b.png", b"y" * 600)
    members, digest = list_zip(archive, max_bytes=1200)
    assert members == {"a.png": 600, "b.png": 600} and len(digest) == 64
    with pytest.raises(SubmissionError, match=r"exceeds the limit of 1199 bytes .* 'b\.png'"):
        list_zip(archive, max_bytes=1199)
    sub = open_submission(archive)
    assert sub.read("b.png") == b"y" * 600


def test_folder_digest_follows_content(tmp_path: Path) -> None:
    (tmp_path / "s" / "d").mkdir(parents=True)
    (tmp_path / "s" / "d" / "a.png").write_bytes(b"1")
    first = open_submission(tmp_path / "s")
    assert first.members == {"d/a.png": 1} and first.error is None
    assert open_submission(tmp_path / "s").digest == first.digest
    (tmp_path / "s" / "d" / "a.png").write_bytes(b"2")
    assert open_submission(tmp_path / "s").digest != first.digest
    (tmp_path / "s" / "d" / "a.png").rename(tmp_path / "s" / "d" / "b.png")
    assert open_submission(tmp_path / "s").digest != first.digest


def test_strip_common_folder() -> None:
    assert strip_common_folder(["t/a.png", "t/b/c.png"]) == "t/"
    assert strip_common_folder(["t/a.png", "u/b.png"]) == ""
    assert strip_common_folder(["a.png"]) == ""


def test_encrypted_member_refused(tmp_path: Path) -> None:
    archive = tmp_path / "s.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("a.png", b"1")
    data = bytearray(archive.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 8] |= 0x1  # general-purpose flag bit 0: encrypted
    archive.write_bytes(bytes(data))
    with pytest.raises(SubmissionError, match=r"member 'a\.png' is encrypted"):
        list_zip(archive)
