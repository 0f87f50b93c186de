"""One line, never a traceback (issue 15, items 9 and 15), each through the real command
``segeval score``: deep or huge-integer JSON, odd panoptic field types, non-UTF-8 list and
class-name files, an unknown scheduler, too many classes, a PNG Pillow has not the memory to
decode; control characters in file names escaped; uint64 labels shown as they are; a bool
is not an ignore index."""

from __future__ import annotations

import json
import os
import resource
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segeval
from segeval.cli.common import escape
from segeval.core.kernels import count_pixels
from segeval.errors import InvalidParameterError, LabelError
from tests.conftest import random_labels, write_png
from tests.leaderboard.test_panoptic_task import make_board
from tests.test_cli import run


def one_line(r: Any, code: int = 1) -> str:
    """The one ``segeval: error:`` line of a finished command with exit ``code``."""
    assert r.exit_code == code, (r.exit_code, r.stderr)
    assert "Traceback" not in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("segeval: error: "), r.stderr
    return r.stderr.strip()


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(1)
    for i in range(2):
        gt = random_labels(rng, (6, 7), 3)
        write_png(tmp_path / "gt" / f"{i}.png", gt)
        write_png(tmp_path / "pred" / f"{i}.png", gt)
    return tmp_path / "pred", tmp_path / "gt"


# ------------------------------------------------------------------ item 9


@pytest.mark.parametrize(("body", "message"), [
    ("[" * 50000 + "]" * 50000, "not valid JSON here: arrays or objects nested 50000 deep"),
    ("[" + "1" * 5000 + "]", "not valid JSON here: a number of 5000 digits (at most 400)"),
    ('[{"image_id": 1, "score": 1' + "0" * 4400 + '.5}]', "a number of 4401 digits"),
    ("\xff\xfe[]", "not valid JSON"),
])
def test_coco_results_json(tmp_path: Path, body: str, message: str) -> None:
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"images": [{"id": 1, "height": 4, "width": 4}],
                              "categories": [{"id": 1}], "annotations": []}))
    res = tmp_path / "res.json"
    res.write_bytes(body.encode("latin-1"))
    line = one_line(run("score", "--format", "coco", "--gt", gt, "--pred", res))
    assert line.startswith(f"segeval: error: {res}: ") and message in line, line


PANOPTIC_FIELDS = [
    # (side, field, value, message)
    ("pred", "id", "5", "segment id '5' is not a 64-bit integer"),
    ("pred", "id", 5.0, "segment id 5.0 is not a 64-bit integer"),
    ("pred", "id", True, "segment id True is not a 64-bit integer"),
    ("pred", "id", [5], "segment id [5] is not a 64-bit integer"),
    ("pred", "id", 2 ** 70, "is not a 64-bit integer"),
    ("pred", "category_id", True, "has unknown category_id True"),
    ("pred", "category_id", {"a": 1}, "has unknown category_id {'a': 1}"),
    ("pred", "category_id", 1.0, "has unknown category_id 1.0"),
    ("gt", "iscrowd", 2, "has iscrowd 2 (expected 0/1)"),
    ("gt", "iscrowd", True, "has iscrowd True (expected 0/1)"),
    ("gt", "iscrowd", "1", "has iscrowd '1' (expected 0/1)"),
    ("gt", "area", -1, "has area -1 (expected a pixel count)"),
    ("gt", "area", float("nan"), "has area nan (expected a pixel count)"),
    ("gt", "area", "3", "has area '3' (expected a pixel count)"),
    ("gt", "area", 1e300, "has area 1e+300 (expected a pixel count)"),
    ("gt", "area", 2 ** 70, "has area 1180591620717411303424 (expected a pixel count)"),
    ("gt", "image_id", {"a": 1}, "annotation #0 has image_id {'a': 1}"),
    ("pred", "image_id", [1], "annotation #0 has image_id [1]"),
    ("pred", "segments_info", {"a": 1}, "needs 'image_id', 'file_name' and a 'segments_info'"),
]


@pytest.mark.parametrize(("side", "field", "value", "message"), PANOPTIC_FIELDS)
def test_odd_panoptic_fields(tmp_path: Path, side: str, field: str, value: Any,
                             message: str) -> None:
    gt, subs, _ = make_board(tmp_path)
    pred = subs / "team0" / "pred.json"
    target = pred if side == "pred" else gt
    doc = json.loads(target.read_text())
    k = next(i for i, a in enumerate(doc["annotations"]) if a["segments_info"])
    if field in ("image_id", "segments_info"):
        k = 0
        doc["annotations"][k][field] = value
    else:
        doc["annotations"][k]["segments_info"][0][field] = value
    target.write_text(json.dumps(doc))
    line = one_line(run("score", "--format", "coco-panoptic", "--gt", gt, "--pred", pred))
    assert line.startswith(f"segeval: error: {target}: "), line
    assert message in line, line


def test_non_utf8_class_names(folders: tuple[Path, Path], tmp_path: Path) -> None:
    pred, gt = folders
    for name, data, message in (("names.txt", b"road\n\xff\xfecar\nsky\n",
                                 "the class-names file is not UTF-8 text (byte 5)"),
                                ("names.json", b'["road", "\xff", "sky"]', "not valid JSON")):
        (tmp_path / name).write_bytes(data)
        line = one_line(run("score", "--pred", pred, "--gt", gt, "--class-names",
                            tmp_path / name))
        assert line == f"segeval: error: {tmp_path / name}: {message}" or \
            line.startswith(f"segeval: error: {tmp_path / name}: {message}"), line


def test_non_utf8_image_list(tmp_path: Path) -> None:
    root = tmp_path / "VOC2012"
    rng = np.random.default_rng(2)
    for i in ("a", "b"):
        labels = random_labels(rng, (5, 6), 21)
        write_png(root / "SegmentationClass" / f"{i}.png", labels, "P")
        write_png(tmp_path / "pred" / f"{i}.png", labels, "P")
    lists = root / "ImageSets" / "Segmentation"
    lists.mkdir(parents=True)
    (lists / "val.txt").write_bytes(b"a\n\xff\xfe\n")
    line = one_line(run("score", "--format", "voc", "--gt", root, "--pred", tmp_path / "pred"))
    assert line == f"segeval: error: {lists / 'val.txt'}: the image list is not UTF-8 text " \
                   f"(byte 2)"


def test_unknown_scheduler_is_a_usage_error(folders: tuple[Path, Path]) -> None:
    pytest.importorskip("distributed")
    pred, gt = folders
    line = one_line(run("score", "--pred", pred, "--gt", gt, "--num-classes", 3,
                        "--scheduler", "nope"), code=2)
    assert line.startswith("segeval: error: --scheduler 'nope' is neither 'dask-local' nor the "
                           "address of a Dask cluster such as tcp://host:8786"), line


def test_too_many_classes(folders: tuple[Path, Path]) -> None:
    pred, gt = folders
    line = one_line(run("score", "--pred", pred, "--gt", gt, "--num-classes", 1000000), code=2)
    assert line == ("segeval: error: --num-classes must be at most 16384 (a confusion matrix "
                    "of C classes needs C x C x 8 bytes: 2 GiB for 16384, 7.45e+03 GiB for "
                    "1000000). Got 1000000 instead.")
    with pytest.raises(InvalidParameterError, match="must be at most 16384"):
        segeval.confusion_matrix(np.zeros(3, np.uint8), np.zeros(3, np.uint8), 16385)
    zeros = np.zeros(3, np.uint8)
    assert segeval.confusion_matrix(zeros, zeros, 300).matrix.sum() == 3


def _png(width: int, height: int, depth: int, color: int) -> bytes:
    """A PNG whose header says ``width x height``, its image data all zero (compressed)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + \
            struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth,
                                                              color, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(bytes(height * (width * max(depth // 8, 1) + 1)), 9)) + \
        chunk(b"IEND", b"")


def test_png_pillow_has_not_the_memory_to_decode(tmp_path: Path) -> None:
    """A 68-byte 16-bit PNG of 9400 x 9400 (under Pillow's bomb limit): Pillow allocates 177 MB
    before reading a pixel; under a 240 MiB address-space limit (a run needs about 120 MB)
    that is a MemoryError."""
    for folder in ("gt", "pred"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "a.png").write_bytes(_png(9400, 9400, 16, 0))
    write_png(tmp_path / "small" / "a.png", np.zeros((5, 5), np.uint8))
    limit = 240 << 20

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    code = ("import sys; from segeval.cli import main; sys.argv = ['segeval', 'score', "
            "'--pred', sys.argv[1], '--gt', sys.argv[2], '--num-classes', '3', "
            "'--decoder', 'pillow', '-j', '1', '-q']; main()")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2")

    def score(pred: str, gt: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", code, pred, gt], cwd=tmp_path, env=env,
                              text=True, capture_output=True, timeout=300, preexec_fn=limited)

    good = score("small", "small")
    assert good.returncode == 0, good.stderr  # the limit leaves room to score
    r = score("pred", "gt")
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.strip() == "segeval: error: gt/a.png: a PNG of 9400x9400 (width x height) " \
                               "that there is not the memory to decode"


# ------------------------------------------------------------------ item 15


def test_control_characters_in_file_names_are_escaped(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    gt = random_labels(rng, (5, 6), 3)
    odd = "bad\nname\x1b[31m\tx"
    write_png(tmp_path / "gt" / f"{odd}.png", gt)
    write_png(tmp_path / "pred" / f"{odd}.png", np.full(gt.shape, 7, np.uint8))
    line = one_line(run("score", "--pred", tmp_path / "pred", "--gt", tmp_path / "gt",
                        "--num-classes", 3))
    assert "bad\\nname\\x1b[31m\\tx.png: predicted label 7 is not a class" in line, line
    assert escape("a\u2028b\udcff c\\d é") == "a\\u2028b\\udcff c\\d é"


def test_uint64_labels_are_shown_as_they_are() -> None:
    big = (1 << 63) + 5
    pred = np.array([[0, 1, 2]], np.uint64)
    gt = np.array([[0, big, 1]], np.uint64)
    with pytest.raises(LabelError, match=f"ground-truth label {big} is not a class"):
        segeval.confusion_matrix(pred, gt, 3)
    pred = np.array([[0, big, 1]], np.uint64)
    with pytest.raises(LabelError, match=f"predicted label {big} is not a class"):
        segeval.confusion_matrix(pred, np.array([[0, 1, 1]], np.uint64), 3)
    for kernel in ("reference", "compiled"):  # both kernels, the smallest bad label as it is
        counts = count_pixels(np.array([[0, big, 9]], np.uint64),
                              np.array([[0, 1, 1]], np.uint64), 3, 255, kernel=kernel)
        assert counts.bad_pred_value == 9
        counts = count_pixels(np.array([[0, big, 1]], np.uint64),
                              np.array([[0, 1, 1]], np.uint64), 3, 255, kernel=kernel)
        assert counts.bad_pred_value == big
        # the ignore index is compared modulo 2^64: -1 is the label 2^64 - 1, as before
        for ignore in (-1, (1 << 64) - 1):
            counts = count_pixels(np.zeros((1, 4), np.uint64),
                                  np.array([[0, (1 << 64) - 1, 7, big]], np.uint64), 3, ignore,
                                  kernel=kernel)
            assert (counts.bad_gt_count, counts.bad_gt_value) == (2, 7)
        counts = count_pixels(np.zeros((1, 3), np.uint64),
                              np.array([[0, (1 << 64) - 1, big]], np.uint64), 3, 1 << 64,
                              kernel=kernel)  # 2^64 is no uint64: nothing is ignored
        assert (counts.bad_gt_count, counts.bad_gt_value) == (2, big)
        counts = count_pixels(np.zeros((1, 3), np.uint64),
                              np.array([[0, (1 << 64) - 1, 1]], np.uint64), 3, (1 << 64) - 1,
                              kernel=kernel)
        assert counts.bad_gt_count == 0
        assert counts.table.sum() == 2


def test_a_bool_is_not_an_ignore_index(folders: tuple[Path, Path]) -> None:
    """Also in tests/test_public_functions.py (IGNORE_INDEX): here through evaluate."""
    pred, gt = folders
    with pytest.raises(InvalidParameterError, match=r"ignore_index.*Got True instead"):
        segeval.evaluate(pred, gt, "folder", num_classes=3, ignore_index=True)
