"""The leaderboard on generated submissions of known quality: order, failures, cache, equality
with ``segeval.evaluate`` and with the VOC conformance numbers."""

from __future__ import annotations

import json
import math
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest

import segeval
from segeval.errors import UsageError
from segeval.leaderboard import run_leaderboard, write_reports
from segeval.leaderboard.runner import (
    SubmissionOutcome,
    per_class_winners,
    prepare,
    rank_entries,
)
from tests.conftest import kill_on, load_expected, write_png
from tests.leaderboard.conftest import QUALITY, C, make_gt, make_submission, zip_folder


def run(gt: Path, subs: Path, **kw):
    kw.setdefault("jobs", 1)
    kw.setdefault("resamples", 200)
    return run_leaderboard(gt, subs, "folder", num_classes=C, **kw)


def by_name(board) -> dict:
    return {e["submission"]: e for e in board.entries}


def test_order_follows_quality_and_equals_evaluate(board_data) -> None:
    gt, subs, _ = board_data
    board = run(gt, subs, jobs=2)
    ranked = [e["submission"] for e in board.ranked()]
    assert ranked == sorted(QUALITY, key=QUALITY.get, reverse=True)
    assert [e["rank"] for e in board.ranked()] == [1, 2, 3, 4]
    for name in QUALITY:
        expected = segeval.evaluate(subs / name, gt, "folder", num_classes=C, jobs=1).to_dict()
        assert board.outcomes[name].document == expected
        assert by_name(board)[name]["metrics"] == expected["metrics"]
    assert board.num_images == 12 and board.metric == "miou"


def test_other_metric_ranks_by_it(board_data) -> None:
    gt, subs, _ = board_data
    board = run(gt, subs, metric="pixel_accuracy")
    values = [e["metrics"]["pixel_accuracy"] for e in board.ranked()]
    assert values == sorted(values, reverse=True)
    assert all(e["ci"]["metric"] == "pixel_accuracy" for e in board.ranked())
    with pytest.raises(UsageError, match="--metric iou: not a metric"):
        run(gt, subs, metric="iou")


def test_ranks_ties_share_a_rank() -> None:
    assert rank_entries(list("abcde"), [0.5, 0.7, 0.7, 0.1, math.nan]) == [3, 1, 1, 4, None]


def test_identical_submissions_tie(board_data) -> None:
    gt, subs, _ = board_data
    shutil.copytree(subs / "bravo", subs / "bravo2")
    zip_folder(subs / "bravo", subs / "bravo3.zip")
    board = run(gt, subs)
    e = by_name(board)
    assert e["bravo"]["rank"] == e["bravo2"]["rank"] == e["bravo3"]["rank"] == 2
    assert e["charlie"]["rank"] == 5
    assert board.outcomes["bravo3"].document == board.outcomes["bravo"].document


def test_each_broken_submission_fails_alone_with_its_reason(board_data, tmp_path: Path) -> None:
    gt, subs, gts = board_data
    (subs / "corrupt.zip").write_bytes(b"PK\x03\x04 this is not an archive")
    with zipfile.ZipFile(subs / "slip.zip", "w") as zf:
        zf.writestr("../../outside.png", b"\x89PNG")
    with zipfile.ZipFile(subs / "absolute.zip", "w") as zf:
        zf.writestr("/etc/im000.png", b"\x89PNG")
    zip_folder(subs / "alpha", subs / "link.zip")
    with zipfile.ZipFile(subs / "link.zip", "a") as zf:
        info = zipfile.ZipInfo("im999.png")
        info.create_system = 3
        info.external_attr = (0o120777 << 16)
        zf.writestr(info, "/etc/passwd")
    shutil.copytree(subs / "alpha", subs / "missing")
    (subs / "missing" / "im004.png").unlink()
    shutil.copytree(subs / "alpha", subs / "wrongsize")
    write_png(subs / "wrongsize" / "im007.png", np.zeros((5, 5), np.uint8))
    shutil.copytree(subs / "alpha", subs / "badlabel")
    write_png(subs / "badlabel" / "im002.png", np.full(gts[2].shape, 9, np.uint8))
    shutil.copytree(subs / "alpha", subs / "badpng")
    (subs / "badpng" / "im010.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    zip_folder(subs / "alpha", subs / "big.zip")
    with zipfile.ZipFile(subs / "big.zip", "a", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("notes.txt", b"\0" * 200_000)  # compresses to a few hundred bytes
    assert sum(p.stat().st_size for p in (subs / "alpha").iterdir()) < 100_000

    board = run(gt, subs, jobs=2, max_bytes=100_000)
    e = by_name(board)
    assert [x["submission"] for x in board.ranked()] == ["alpha", "bravo", "charlie", "delta"]
    expected = {
        "corrupt": "corrupt archive",
        "slip": "unsafe member '../../outside.png' ('..' in the path)",
        "absolute": "unsafe member '/etc/im000.png' (absolute path)",
        "link": "member 'im999.png' is a symbolic link",
        "missing": "no prediction for 1 of 12 ground-truth images (im004)",
        "wrongsize": "im007.png: shape (5, 5) does not match the ground truth",
        "badlabel": "im002.png: predicted label 9 is not a class",
        "badpng": "im010.png: corrupt PNG",
        "big": "uncompressed size exceeds the limit of 100000 bytes (--max-bytes) at member "
               "'notes.txt'",
    }
    for name, reason in expected.items():
        assert e[name]["status"] == "failed" and e[name]["rank"] is None, name
        assert reason in e[name]["error"], (name, e[name]["error"])
        assert "\n" not in e[name]["error"]
        assert e[name]["metrics"] is None and e[name]["ci"] is None
    assert not (tmp_path / "outside.png").exists()
    # the same submissions pass with a larger limit, and missing counts as wrong with zero
    board = run(gt, subs, missing="zero")
    assert by_name(board)["missing"]["status"] == "ok"
    assert by_name(board)["big"]["status"] == "ok"
    assert by_name(board)["missing"]["metrics"]["unassigned_pixels"] > 0


def test_zip_with_a_top_folder_and_folder_submission_agree(board_data) -> None:
    gt, subs, _ = board_data
    zip_folder(subs / "charlie", subs / "charlie_zip.zip", prefix="team-charlie/")
    board = run(gt, subs)
    assert board.outcomes["charlie_zip"].document == board.outcomes["charlie"].document


def test_member_inflating_beyond_its_declared_size_fails(board_data) -> None:
    gt, subs, _ = board_data
    archive = zip_folder(subs / "alpha", subs / "liar.zip")
    data = bytearray(archive.read_bytes())
    central = data.find(b"PK\x01\x02")  # first central-directory entry: im000.png
    data[central + 24:central + 28] = (10).to_bytes(4, "little")  # declared size: 10 bytes
    archive.write_bytes(bytes(data))
    board = run(gt, subs)
    entry = by_name(board)["liar"]
    assert entry["status"] == "failed"
    assert "liar.zip:im000.png: corrupt archive member" in entry["error"]


def test_cache_skips_unchanged_and_changes_nothing_but_time(board_data, tmp_path: Path) -> None:
    gt, subs, gts = board_data
    cache = tmp_path / "cache.sqlite"
    first = run(gt, subs, cache=cache)
    assert sorted(first.evaluated) == sorted(QUALITY)
    again = run(gt, subs, cache=cache)
    assert again.evaluated == []
    assert again.entries == first.entries
    for name in QUALITY:  # 3 C small integers per image and submission, kept compact
        fresh, cached = first.outcomes[name].rows, again.outcomes[name].rows
        assert fresh.dtype == cached.dtype == np.uint32 and fresh.shape == (12, 3 * C)
        assert np.array_equal(fresh, cached) and again.outcomes[name].cached
    # a new submission: only it is scored
    shutil.copytree(subs / "charlie", subs / "echo")
    write_png(subs / "echo" / "im000.png", gts[0] % C)
    third = run(gt, subs, cache=cache)
    assert third.evaluated == ["echo"]
    # a changed submission is scored again
    write_png(subs / "delta" / "im001.png", gts[1] % C)
    fourth = run(gt, subs, cache=cache)
    assert fourth.evaluated == ["delta"]
    # deleting the cache changes nothing but time
    cache.unlink()
    fresh = run(gt, subs, cache=cache)
    assert sorted(fresh.evaluated) == sorted([*QUALITY, "echo"])
    assert fresh.entries == fourth.entries
    # another option is another key
    other = run(gt, subs, cache=cache, absent="zero")
    assert sorted(other.evaluated) == sorted([*QUALITY, "echo"])


def test_failures_found_while_scoring_are_cached(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    shutil.copytree(subs / "alpha", subs / "badpng")
    (subs / "badpng" / "im003.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    cache = tmp_path / "cache.sqlite"
    first = run(gt, subs, cache=cache)
    second = run(gt, subs, cache=cache)
    assert second.evaluated == []
    assert by_name(second)["badpng"] == by_name(first)["badpng"]


def test_reports_written_and_equal_score_json(board_data, tmp_path: Path) -> None:
    gt, subs, _ = board_data
    (subs / "corrupt.zip").write_bytes(b"not a zip")
    board = run(gt, subs)
    out = tmp_path / "out"
    write_reports(board, out, plots=False)
    entries = json.loads((out / "leaderboard.json").read_text())
    assert [e["submission"] for e in entries] == [*sorted(QUALITY, key=QUALITY.get,
                                                          reverse=True), "corrupt"]
    for e in entries:
        assert set(e) >= {"submission", "status", "error", "rank", "metrics", "ci"}
    assert set(entries[0]["ci"]) >= {"low", "high", "level"}
    for name in QUALITY:
        doc = json.loads((out / "submissions" / f"{name}.json").read_text())
        expected = segeval.evaluate(subs / name, gt, "folder", num_classes=C, jobs=1)
        assert doc == json.loads(json.dumps(expected.to_dict()))
    failed = json.loads((out / "submissions" / "corrupt.json").read_text())
    assert failed["status"] == "failed" and "corrupt archive" in failed["error"]
    csv_lines = (out / "leaderboard.csv").read_text().splitlines()
    assert csv_lines[0].startswith("rank,submission,status,miou,ci_low,ci_high")
    assert csv_lines[1].startswith("1,alpha,ok,")
    md = (out / "leaderboard.md").read_text()
    assert "| 1 | alpha |" in md and "## Failed submissions" in md and "corrupt" in md
    winners = (out / "per_class_winners.csv").read_text().splitlines()
    assert len(winners) == C + 1


def test_ground_truth_errors_stop_the_run(board_data) -> None:
    gt, subs, gts = board_data
    write_png(gt / "im005.png", np.full(gts[5].shape, 7, np.uint8))
    with pytest.raises(segeval.SegevalError, match=r"im005\.png: ground-truth label 7"):
        run(gt, subs, jobs=2)


def test_voc_conformance_through_the_leaderboard(conformance: Path, tmp_path: Path) -> None:
    suite = conformance / "voc"
    expected = load_expected(suite)["cases"]
    results = suite / "results" / "VOC2012" / "Segmentation"
    subs = tmp_path / "subs"
    subs.mkdir()
    (subs / "comp6").symlink_to(results / "comp6_val_cls")
    zip_folder(results / "comp5_val_cls", subs / "comp5.zip", prefix="comp5_val_cls/")
    board = run_leaderboard(suite / "VOC2012", subs, "voc", jobs=2, resamples=200)
    assert [e["submission"] for e in board.ranked()] == ["comp6", "comp5"]
    for name in ("comp5", "comp6"):
        want = expected[f"{name}_val_cls"]["expected"]
        doc = board.outcomes[name].document
        assert doc["confusion_matrix"] == want["confusion_matrix"]
        for key, mine in (("pixel_accuracy", "pixel_accuracy"), ("mean_iou", "miou"),
                          ("mean_pixel_accuracy", "mean_pixel_accuracy"), ("fw_iou", "fwiou"),
                          ("mean_dice", "mean_dice")):
            assert doc["metrics"][mine] == pytest.approx(want[key], abs=1e-9)
        assert board.outcomes[name].rows.shape == (12, 63)


def test_intervals_contain_the_estimate_and_shrink_with_more_images(tmp_path: Path) -> None:
    widths = []
    for n in (6, 48):
        root = tmp_path / str(n)
        gts = make_gt(root / "gt", n, seed=n)
        make_submission(root / "subs" / "x", gts, 0.6, seed=1)
        make_submission(root / "subs" / "y", gts, 0.5, seed=2)
        board = run(root / "gt", root / "subs", resamples=500)
        for e in board.ranked():
            assert e["ci"]["low"] <= e["metrics"]["miou"] <= e["ci"]["high"]
            assert e["ci"]["level"] == 0.95
        widths.append(np.mean([e["ci"]["high"] - e["ci"]["low"] for e in board.ranked()]))
        # the whole-sample statistic of the rows is the reported metric
        setup = prepare(root / "gt", "folder", num_classes=C)
        task, ref = setup.task, setup.ref
        for name, outcome in board.outcomes.items():
            full = task.replicates(ref, outcome.rows.sum(axis=0)[None, :], "miou")[0]
            assert full == pytest.approx(by_name(board)[name]["metrics"]["miou"], abs=1e-12)
    assert widths[1] < widths[0] / 2


def test_per_class_winners(board_data) -> None:
    gt, subs, _ = board_data
    board = run(gt, subs)
    for w in board.winners:
        values = {n: o.document["per_class"][w["id"]]["iou"] for n, o in board.outcomes.items()}
        assert w["iou"] == max(values.values())
        assert w["winners"] == sorted(n for n, v in values.items() if v == w["iou"])

    def outcome(name: str, ious: list, gt_pixels: list) -> SubmissionOutcome:
        rows = [{"iou": v, "gt_pixels": g} for v, g in zip(ious, gt_pixels, strict=True)]
        return SubmissionOutcome(name, Path(name), "ok", document={"per_class": rows})

    table = per_class_winners([outcome("a", [0.5, None, 0.0], [10, 0, 0]),
                               outcome("b", [0.5, None, None], [10, 0, 0])], "iou", "xyz")
    assert table == [{"id": 0, "name": "x", "iou": 0.5, "winners": ["a", "b"]},
                     {"id": 1, "name": "y", "iou": None, "winners": []},
                     {"id": 2, "name": "z", "iou": None, "winners": []}]  # no ground truth


def test_results_do_not_depend_on_jobs(board_data) -> None:
    gt, subs, _ = board_data
    (subs / "broken.zip").write_bytes(b"x")
    one, two = run(gt, subs, jobs=1), run(gt, subs, jobs=2)
    assert one.entries == two.entries and one.winners == two.winners
    for name in QUALITY:
        assert np.array_equal(one.outcomes[name].rows, two.outcomes[name].rows)


def test_a_worker_that_dies_fails_only_its_submission(board_data, monkeypatch) -> None:
    """A prediction that kills the worker scoring it (a segfault, the OOM killer) fails that
    submission with one line; the others are ranked with their exact numbers, within seconds."""
    import signal
    import time

    import segeval.formats.semantic

    gt, subs, _ = board_data
    for name in ("charlie", "delta"):
        shutil.rmtree(subs / name)
    shutil.copytree(subs / "bravo", subs / "poisoned")
    kill_on(monkeypatch, segeval.formats.semantic, "read_label")

    def hang(signum, frame):
        raise TimeoutError("the leaderboard hangs after a worker died")

    previous = signal.signal(signal.SIGALRM, hang)
    signal.alarm(60)
    try:
        start = time.monotonic()
        board = run(gt, subs, jobs=2)
        took = time.monotonic() - start
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert took < 30
    assert [e["submission"] for e in board.ranked()] == ["alpha", "bravo"]
    for name in ("alpha", "bravo"):
        expected = segeval.evaluate(subs / name, gt, "folder", num_classes=C, jobs=1).to_dict()
        assert board.outcomes[name].document == expected
    entry = by_name(board)["poisoned"]
    assert entry["status"] == "failed" and entry["rank"] is None
    assert entry["error"] == (f"{subs / 'poisoned'}: the worker process scoring it died "
                              f"(killed by signal 9, SIGKILL)")
    # the rows of the others are those of a run without the poisoned submission
    shutil.rmtree(subs / "poisoned")
    clean = run(gt, subs, jobs=1)
    for name in ("alpha", "bravo"):
        assert np.array_equal(board.outcomes[name].rows, clean.outcomes[name].rows)
        assert by_name(board)[name]["ci"] == by_name(clean)[name]["ci"]
