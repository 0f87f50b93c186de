"""Platform entry points: EvalAI-style evaluate() and the Codabench scorer."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest

import segeval
from segeval import challenge
from segeval.errors import SegevalError
from tests.leaderboard.conftest import C, zip_folder

METRICS = ("miou", "pixel_accuracy", "mean_pixel_accuracy", "fwiou", "mean_dice")


def expected_metrics(pred: Path, gt: Path) -> dict:
    doc = segeval.evaluate(pred, gt, "folder", num_classes=C, jobs=1).to_dict()
    return {m: doc["metrics"][m] for m in METRICS}


def test_evalai_evaluate_folder_zip_and_gt_zip(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    want = expected_metrics(subs / "bravo", gt)
    out = challenge.evaluate(gt, subs / "bravo", "dev", num_classes=C, jobs=1,
                             submission_metadata={"id": 1, "participant_team_name": "x"})
    assert out == {"result": [{"test_split": want}], "submission_result": want}
    json.dumps(out)  # JSON-safe
    archive = zip_folder(subs / "bravo", tmp_path / "upload.zip", prefix="bravo/")
    gt_zip = zip_folder(gt, tmp_path / "annotations.zip", prefix="gt/")
    out = challenge.evaluate(str(gt_zip), str(archive), "test", format="folder",
                             split_codename="val_split", num_classes=C, jobs=1)
    assert out["result"] == [{"val_split": want}]
    assert out["submission_result"] == want


def test_evalai_bad_submissions_raise_one_line(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    slip = tmp_path / "slip.zip"
    with zipfile.ZipFile(slip, "w") as zf:
        zf.writestr("../x.png", b"")
    with pytest.raises(SegevalError, match=r"unsafe member '\.\./x\.png'"):
        challenge.evaluate(gt, slip, "dev", num_classes=C)
    partial = tmp_path / "partial"
    shutil.copytree(subs / "alpha", partial)
    (partial / "im003.png").unlink()
    with pytest.raises(SegevalError, match=r"no prediction for 1 of 12 .*\(im003\)"):
        challenge.evaluate(gt, partial, "dev", num_classes=C)
    with pytest.raises(SegevalError, match="no such submission"):
        challenge.evaluate(gt, tmp_path / "nothing", "dev", num_classes=C)
    with pytest.raises(SegevalError, match="not an option of the folder format"):
        challenge.evaluate(gt, partial, "dev", num_classes=C, bogus=1)


def codabench_input(root: Path, gt: Path, submission: Path, as_zip: bool) -> Path:
    shutil.copytree(gt, root / "ref")
    if as_zip:
        (root / "res").mkdir()
        zip_folder(submission, root / "res" / "submission.zip")
    else:
        shutil.copytree(submission, root / "res")
    return root


@pytest.mark.parametrize("as_zip", [False, True])
def test_codabench_writes_scores(board_data, tmp_path: Path, as_zip: bool) -> None:
    gt, subs, _ = board_data
    inp = codabench_input(tmp_path / "input", gt, subs / "charlie", as_zip)
    scores = challenge.codabench(inp, tmp_path / "output", "folder", num_classes=C, jobs=1)
    want = expected_metrics(subs / "charlie", gt)
    assert scores == want
    assert json.loads((tmp_path / "output" / "scores.json").read_text()) == want
    lines = (tmp_path / "output" / "scores.txt").read_text().splitlines()
    assert lines == [f"{k}: {v!r}" for k, v in want.items()]


def test_corrupt_ground_truth_archive_is_one_line(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    gt_zip = zip_folder(gt, tmp_path / "gt.zip")
    data = bytearray(gt_zip.read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central + 16:central + 20] = b"\0\0\0\0"  # wrong CRC-32 for the first member
    gt_zip.write_bytes(bytes(data))
    with pytest.raises(SegevalError, match=r"gt\.zip:im000\.png: corrupt ground-truth archive"):
        challenge.evaluate(gt_zip, subs / "alpha", "dev", num_classes=C)
