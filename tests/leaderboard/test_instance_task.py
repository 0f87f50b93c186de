"""The instance leaderboard task: the COCO instances conformance cases as submissions (each equal
to the official numbers and to ``segeval score --format coco``), layouts, failure isolation,
the cache, no made-up intervals, and the command."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import segeval
from segeval.cli import cli
from segeval.errors import UsageError
from segeval.leaderboard import run_leaderboard, write_reports
from segeval.leaderboard.tasks import get_task
from tests.conftest import kill_on, load_expected

NAMES = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def by_name(board) -> dict:
    return {e["submission"]: e for e in board.entries}


@pytest.fixture
def suite(conformance: Path) -> Path:
    return conformance / "coco_instances"


@pytest.fixture
def subs(suite: Path, tmp_path: Path) -> Path:
    """The derived case's detections in three layouts, plus broken submissions."""
    derived = suite / "derived"
    root = tmp_path / "subs"
    (root / "segm").mkdir(parents=True)
    shutil.copy(derived / "detections_segm.json", root / "segm" / "results.json")
    with zipfile.ZipFile(root / "bbox.zip", "w") as zf:  # in one top-level folder
        zf.write(derived / "detections_segm_with_bbox.json", "bbox/detections.json")
    worse = json.loads((derived / "detections_segm.json").read_text())
    for r in worse[::2]:
        r["score"] = 0.001  # the same masks, half of them ranked last
    (root / "worse").mkdir()
    (root / "worse" / "r.json").write_text(json.dumps(worse))
    (root / "nojson").mkdir()
    (root / "nojson" / "notes.txt").write_text("x")
    (root / "twojson").mkdir()
    for name in ("a.json", "b.json"):
        shutil.copy(derived / "detections_segm.json", root / "twojson" / name)
    (root / "badjson").mkdir()
    (root / "badjson" / "r.json").write_text("[{")
    bad = json.loads((derived / "detections_segm.json").read_text())
    bad[3]["image_id"] = 987654321
    with zipfile.ZipFile(root / "badimage.zip", "w") as zf:
        zf.writestr("results.json", json.dumps(bad))
    return root


def test_conformance_cases_as_submissions_equal_score(suite: Path, subs: Path) -> None:
    cases = load_expected(suite)["cases"]
    gt = suite / "derived" / "instances_gt.json"
    board = run_leaderboard(gt, subs, "coco", jobs=2)
    assert board.task == "instance" and board.metric == "AP"
    entries = by_name(board)
    want = cases["derived_segm"]["expected"]["stats"]
    for name, file in (("segm", "segm/results.json"), ("bbox", None)):
        doc = board.outcomes[name].document
        assert [doc["metrics"][k] for k in NAMES] == pytest.approx(want, abs=1e-4)
        if file:
            assert doc == segeval.evaluate(subs / file, gt, "coco").to_dict()
        assert entries[name]["rank"] == 1  # the bbox key is dropped: equal numbers, a tie
    worse = board.outcomes["worse"].document
    assert worse == segeval.evaluate(subs / "worse" / "r.json", gt, "coco").to_dict()
    assert entries["worse"]["rank"] == 3 and worse["metrics"]["AP"] < want[0]
    # with keep_bbox (pycocotools' raw behaviour) the bbox case has its own expected numbers
    raw = run_leaderboard(gt, subs, "coco", keep_bbox=True, jobs=1)
    assert [raw.outcomes["bbox"].document["metrics"][k] for k in NAMES] == pytest.approx(
        cases["derived_segm_with_bbox"]["expected"]["stats"], abs=1e-4)


def test_real_val2014_case(suite: Path, tmp_path: Path) -> None:
    case = load_expected(suite)["cases"]["real_val2014_fakesegm100"]
    (tmp_path / "subs" / "fake").mkdir(parents=True)
    shutil.copy(suite / case["inputs"]["results_json"], tmp_path / "subs" / "fake")
    board = run_leaderboard(suite / case["inputs"]["gt_json"], tmp_path / "subs", "coco",
                            metric="AR100", jobs=1)
    doc = board.outcomes["fake"].document
    assert [doc["metrics"][k] for k in NAMES] == pytest.approx(case["expected"]["stats"],
                                                               abs=1e-4)
    assert board.num_images == 100 and board.ranked()[0]["ci"]["metric"] == "AR100"


def test_failures_are_isolated_and_no_interval_is_made_up(suite: Path, subs: Path,
                                                         tmp_path: Path) -> None:
    gt = suite / "derived" / "instances_gt.json"
    board = run_leaderboard(gt, subs, "coco", jobs=2)
    entries = by_name(board)
    assert [e["submission"] for e in board.ranked()] == ["bbox", "segm", "worse"]
    errors = {n: e["error"] for n, e in entries.items() if e["status"] == "failed"}
    assert errors == {
        "nojson": f"{subs / 'nojson'}: no results JSON (a .json file) at the top of the "
                  f"submission",
        "twojson": f"{subs / 'twojson'}: 2 .json files (a.json, b.json): a submission holds "
                   f"one results JSON",
        "badjson": errors["badjson"], "badimage": errors["badimage"]}
    assert errors["badjson"].startswith(f"{subs / 'badjson' / 'r.json'}: not valid JSON")
    assert errors["badimage"] == (f"{subs / 'badimage.zip'}:results.json: results[3]: "
                                  f"image_id 987654321 is not an image of {gt}")
    for e in board.ranked():
        assert e["ci"]["low"] is None and e["ci"]["high"] is None and e["beats_above"] is None
        assert e["ci"]["resamples"] == 0 and e["ci"]["method"].startswith("none: COCO AP")
    winners = {w["name"]: w for w in board.winners}
    assert all(w["winners"] == [] for w in winners.values() if w["AP"] is None)
    out = tmp_path / "board"
    write_reports(board, out, plots=False)
    md = (out / "leaderboard.md").read_text()
    assert "No intervals (none: COCO AP is not a sum" in md and "percentile" not in md
    saved = json.loads((out / "leaderboard.json").read_text())
    assert saved[0]["ci"]["low"] is None


def test_cache_and_options(suite: Path, subs: Path, tmp_path: Path) -> None:
    gt = suite / "derived" / "instances_gt.json"
    cache = tmp_path / "c.sqlite"
    first = run_leaderboard(gt, subs, "coco", jobs=1, cache=cache)
    again = run_leaderboard(gt, subs, "coco", jobs=1, cache=cache)
    assert again.evaluated == [] and again.entries == first.entries
    other = run_leaderboard(gt, subs, "coco", jobs=1, cache=cache, keep_bbox=True)
    assert sorted(other.evaluated) == sorted(first.evaluated)  # an option changes the key
    with pytest.raises(UsageError, match="--missing zero: not an option of the instance task"):
        run_leaderboard(gt, subs, "coco", missing="zero")
    with pytest.raises(UsageError, match="--metric miou: not a metric of the instance task"):
        run_leaderboard(gt, subs, "coco", metric="miou")
    assert get_task(None, "coco").name == "instance"
    assert get_task("instance", "cityscapes").name == "instance"  # any instance adapter


def test_leaderboard_command(suite: Path, subs: Path, tmp_path: Path) -> None:
    gt = suite / "derived" / "instances_gt.json"
    out = tmp_path / "board"
    r = run("leaderboard", "--gt", gt, "--submissions", subs, "--format", "coco", "--out", out,
            "--no-plots", "-j", 1)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.splitlines()[0].split()[:3] == ["rank", "submission", "AP"]
    mine = tmp_path / "segm.json"
    s = run("score", "--format", "coco", "--gt", gt, "--pred", subs / "segm" / "results.json",
            "--json", mine)
    assert s.exit_code == 0, s.stderr
    assert (out / "submissions" / "segm.json").read_bytes() == mine.read_bytes()


def test_codabench_scores_an_instance_submission(suite: Path, tmp_path: Path) -> None:
    ref, res = tmp_path / "input" / "ref", tmp_path / "input" / "res"
    ref.mkdir(parents=True)
    res.mkdir()
    shutil.copy(suite / "derived" / "instances_gt.json", ref)
    shutil.copy(suite / "derived" / "detections_segm.json", res)
    r = run("codabench", tmp_path / "input", tmp_path / "output", "--format", "coco")
    assert r.exit_code == 0, r.stderr
    scores = json.loads((tmp_path / "output" / "scores.json").read_text())
    want = load_expected(suite)["cases"]["derived_segm"]["expected"]["stats"]
    assert [scores[k] for k in NAMES] == pytest.approx(want, abs=1e-4)


def test_evalai_takes_the_json_files_themselves(suite: Path, tmp_path: Path) -> None:
    """EvalAI's test_annotation_file and user_submission_file are single files here."""
    import segeval.leaderboard.challenge

    gt = suite / "derived" / "instances_gt.json"
    out = segeval.leaderboard.challenge.evaluate(
        gt, suite / "derived" / "detections_segm.json", "dev", format="coco",
        split_codename="val")
    want = load_expected(suite)["cases"]["derived_segm"]["expected"]["stats"]
    assert [out["result"][0]["val"][k] for k in NAMES] == pytest.approx(want, abs=1e-4)
    assert out["submission_result"] == out["result"][0]["val"]
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(segeval.SegevalError, match=r"bad.json: not a COCO results list"):
        segeval.leaderboard.challenge.evaluate(gt, bad, "dev", format="coco")


def test_a_worker_that_dies_fails_only_its_submission(suite: Path, subs: Path,
                                                      monkeypatch) -> None:
    """Whole submissions run in a supervised pool: a worker killed while scoring one fails
    that one with one line, the others are ranked."""

    import segeval.formats.coco.instance

    gt = suite / "derived" / "instances_gt.json"
    shutil.copytree(subs / "segm", subs / "poisoned")
    kill_on(monkeypatch, segeval.formats.coco.instance, "parse_json")
    board = run_leaderboard(gt, subs, "coco", jobs=2)
    entries = by_name(board)
    assert [e["submission"] for e in board.ranked()] == ["bbox", "segm", "worse"]
    assert entries["poisoned"]["error"] == (f"{subs / 'poisoned'}: the worker process scoring "
                                            f"it died (killed by signal 9, SIGKILL)")
    assert board.outcomes["segm"].document == segeval.evaluate(
        subs / "segm" / "results.json", gt, "coco").to_dict()
