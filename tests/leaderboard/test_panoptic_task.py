"""The panoptic leaderboard task: the COCO panoptic conformance cases as submissions (each equal
to panopticapi's numbers and to ``segeval score``), the accepted layouts, failure isolation, the
cache, the bootstrap replicates against PanopticStats, and the command."""

from __future__ import annotations

import json
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

import segeval
from segeval.cli import cli
from segeval.core import panoptic
from segeval.core.panoptic import PanopticStats
from segeval.errors import DataError, UsageError
from segeval.formats.coco.panoptic import PanopticReference
from segeval.leaderboard import run_leaderboard
from segeval.leaderboard.panoptic_task import PanopticTask
from segeval.leaderboard.runner import prepare
from segeval.leaderboard.tasks import get_task
from tests.conftest import load_expected
from tests.panoptic_data import CATEGORIES, id2rgb, random_image, write_set

TASK = PanopticTask()
CASES = ("c01_identity", "c03_boundary", "c04_instance_errors", "c05_spurious_and_void",
         "c06_mixed")


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def by_name(board) -> dict:
    return {e["submission"]: e for e in board.entries}


def zip_tree(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, prefix + p.relative_to(folder).as_posix())
    return archive


def check_document(doc: dict, expected: dict, tol: float = 1e-6) -> None:
    """A result document against the suite's expected numbers (README: n and counts exact)."""
    m = doc["metrics"]
    for group, suffix in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
        assert m[f"n{suffix}"] == expected[group]["n"], group
        for key in ("pq", "sq", "rq"):
            assert m[f"{key}{suffix}"] == pytest.approx(expected[group][key], abs=tol), \
                (group, key)
    rows = {str(r["id"]): r for r in doc["per_class"]}
    for cid, want in expected["per_class"].items():
        got = rows[cid]
        assert (got["tp"], got["fp"], got["fn"]) == (want["tp"], want["fp"], want["fn"]), cid
        assert got["iou_sum"] == pytest.approx(want["iou_sum"], abs=tol)


@pytest.fixture
def conformance_subs(conformance: Path, tmp_path: Path):
    """The suite's cases as submissions, in each accepted layout: a folder (JSON + folder named
    like it), a zip of that, a zip with everything in one top-level folder, and a folder whose
    PNGs lie beside the JSON."""
    suite = conformance / "coco_panoptic"
    cases = load_expected(suite)["cases"]
    subs = tmp_path / "subs"
    layouts = {}
    for k, name in enumerate(CASES):
        src = suite / "cases" / name
        folder = subs / name if k % 4 in (0, 3) else tmp_path / "staging" / name
        folder.mkdir(parents=True)
        if k % 4 == 3:  # PNGs beside the JSON, the JSON under another name
            shutil.copy(src / "panoptic_pred.json", folder / "predictions.json")
            for png in (src / "panoptic_pred").iterdir():
                shutil.copy(png, folder / png.name)
        else:
            shutil.copy(src / "panoptic_pred.json", folder / "panoptic_pred.json")
            shutil.copytree(src / "panoptic_pred", folder / "panoptic_pred")
        if k % 4 == 1:
            zip_tree(folder, subs / f"{name}.zip")
        elif k % 4 == 2:
            zip_tree(folder, subs / f"{name}.zip", prefix=f"{name}/")
        layouts[name] = cases[name]
    return suite / "gt" / "panoptic_examples.json", subs, layouts


def test_conformance_cases_as_submissions(conformance_subs) -> None:
    gt, subs, cases = conformance_subs
    board = run_leaderboard(gt, subs, "coco-panoptic", jobs=2, resamples=200)
    assert board.task == "panoptic" and board.metric == "pq" and board.num_images == 2
    assert all(e["status"] == "ok" for e in board.entries), board.entries
    entries = by_name(board)
    for name, case in cases.items():
        doc = board.outcomes[name].document
        check_document(doc, case["expected"])
        assert entries[name]["metrics"] == doc["metrics"]
        paths = {k: gt.parent.parent / v for k, v in case["inputs"].items()}
        score = segeval.evaluate(paths["pred_json"], paths["gt_json"], "coco-panoptic", jobs=1)
        assert doc == score.to_dict()  # exactly what `segeval score` computes
    ranked = [e["submission"] for e in board.ranked()]
    pqs = {n: c["expected"]["All"]["pq"] for n, c in cases.items()}
    assert ranked == sorted(pqs, key=lambda n: (-pqs[n], n))
    identity = entries["c01_identity"]
    assert identity["rank"] == 1 and identity["ci"]["low"] == identity["ci"]["high"] == 1.0


def test_every_metric_ranks_and_winners_skip_categories_without_ground_truth(
        conformance_subs) -> None:
    gt, subs, _ = conformance_subs
    board = run_leaderboard(gt, subs, "coco-panoptic", metric="rq_things", jobs=1,
                            resamples=50)
    values = [e["metrics"]["rq_things"] for e in board.ranked()]
    assert values == sorted(values, reverse=True)
    with pytest.raises(UsageError, match="--metric miou: not a metric of the panoptic task"):
        run_leaderboard(gt, subs, "coco-panoptic", metric="miou")
    winners = {w["id"]: w for w in board.winners}
    dog = winners[18]  # predicted by c04 only, absent from the ground truth
    assert dog["name"] == "dog" and dog["pq"] is None and dog["winners"] == []
    person = winners[1]
    assert person["winners"] == ["c01_identity"] and person["pq"] == 1.0


# ---------------------------------------------------------------------- generated sets


def make_board(root: Path, n: int = 6, seed: int = 0) -> tuple[Path, Path, list]:
    """``root/gt.json`` + ``root/gt/`` and ``root/subs/`` with three random submissions."""
    rng = np.random.default_rng(seed)
    images = [random_image(rng) for _ in range(n)]
    write_set(root, images)
    subs = root / "subs"
    for k in range(3):
        other = [random_image(np.random.default_rng(100 + k * 17 + i)) for i in range(n)]
        mixed = [im if (i + k) % 3 else o for i, (im, o) in enumerate(zip(images, other,
                                                                         strict=True))]
        # a prediction of another random image has other shapes: keep the gt's shape
        preds = [im if o.pred.shape != im.gt.shape else
                 type(im)(im.gt, o.pred, im.gt_segments, o.pred_segments) for im, o in
                 zip(images, mixed, strict=True)]
        folder = subs / f"team{k}"
        (folder / "pred").mkdir(parents=True)
        anns = []
        for i, im in enumerate(preds, start=1):
            Image.fromarray(id2rgb(im.pred), "RGB").save(folder / "pred" / f"{i}.png")
            anns.append({"image_id": i, "file_name": f"{i}.png",
                         "segments_info": im.pred_segments})
        (folder / "pred.json").write_text(json.dumps({"annotations": anns}))
    return root / "gt.json", subs, images


def test_random_submissions_equal_score(tmp_path: Path) -> None:
    gt, subs, _ = make_board(tmp_path)
    board = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=100)
    for k in range(3):
        name = f"team{k}"
        want = segeval.evaluate(subs / name / "pred.json", gt, "coco-panoptic", jobs=1)
        assert board.outcomes[name].document == want.to_dict()
        rows = board.outcomes[name].rows
        assert rows.shape == (6, 5 * len(CATEGORIES))
        total = rows.astype(np.int64).sum(axis=0).reshape(5, -1)
        assert PanopticStats(CATEGORIES, counts=total) == want.stats  # exact, to the IoU bit


def damage(subs: Path) -> dict[str, str]:
    """Broken copies of team0; returns the expected error fragment of each."""
    base = subs / "team0"
    expect = {}

    def copy(name: str) -> Path:
        shutil.copytree(base, subs / name)
        return subs / name

    doc = json.loads((base / "pred.json").read_text())
    (copy("nojson") / "pred.json").unlink()
    expect["nojson"] = "no predictions JSON"
    (copy("twojson") / "other.json").write_text("{}")
    expect["twojson"] = "2 .json files"
    (copy("badjson") / "pred.json").write_text("{not json")
    expect["badjson"] = "pred.json: not valid JSON"
    (copy("nopng") / "pred" / "3.png").unlink()
    expect["nopng"] = "3.png: no such file (the PNG of image 3"
    extra = dict(doc, annotations=doc["annotations"] + [dict(doc["annotations"][0],
                                                              image_id=99)])
    (copy("extra") / "pred.json").write_text(json.dumps(extra))
    expect["extra"] = "predictions for 1 images that are not in the ground truth"
    short = dict(doc, annotations=doc["annotations"][1:])
    (copy("short") / "pred.json").write_text(json.dumps(short))
    expect["short"] = "no prediction for 1 of 6 ground-truth images (1)"
    cat = json.loads(json.dumps(doc))
    cat["annotations"][2]["segments_info"].append({"id": 12345, "category_id": 77})
    (copy("badcat") / "pred.json").write_text(json.dumps(cat))
    expect["badcat"] = "unknown category_id 77"
    Image.fromarray(np.zeros((2, 2, 3), np.uint8), "RGB").save(copy("size") / "pred" / "2.png")
    expect["size"] = "does not match the ground truth"
    (copy("corrupt") / "pred" / "4.png").write_bytes(b"\x89PNG garbage")
    expect["corrupt"] = "4.png"
    (subs / "truncated.zip").write_bytes(zip_tree(base, subs.parent / "t.zip")
                                         .read_bytes()[:100])
    expect["truncated"] = "corrupt archive"
    return expect


def test_failures_are_isolated_and_worded_as_score_words_them(tmp_path: Path) -> None:
    gt, subs, _ = make_board(tmp_path)
    expect = damage(subs)
    board = run_leaderboard(gt, subs, "coco-panoptic", jobs=2, resamples=50)
    entries = by_name(board)
    assert {e["submission"] for e in board.ranked()} == {"team0", "team1", "team2"}
    for name, fragment in expect.items():
        assert entries[name]["status"] == "failed", name
        assert fragment in entries[name]["error"], (name, entries[name]["error"])
        assert "\n" not in entries[name]["error"]
    # the same image problems as `segeval score` finds them, with the same words
    for name in ("extra", "badcat", "size"):
        with pytest.raises(DataError) as e:
            segeval.evaluate(subs / name / "pred.json", gt, "coco-panoptic", jobs=1)
        assert str(e.value).split(": ", 1)[1] in entries[name]["error"]


def test_missing_zero_counts_missing_images_as_score_does(tmp_path: Path) -> None:
    gt, subs, _ = make_board(tmp_path)
    damage(subs)
    board = run_leaderboard(gt, subs, "coco-panoptic", missing="zero", jobs=1, resamples=50)
    want = segeval.evaluate(subs / "short" / "pred.json", gt, "coco-panoptic", missing="zero",
                            jobs=1)
    assert board.outcomes["short"].document == want.to_dict()


def test_ground_truth_errors_stop_the_run(tmp_path: Path) -> None:
    gt, subs, _ = make_board(tmp_path)
    doc = json.loads(gt.read_text())
    victim = next(a for a in doc["annotations"] if a["segments_info"])
    victim["segments_info"] = victim["segments_info"][1:]
    gt.write_text(json.dumps(doc))
    with pytest.raises(DataError, match=r"gt/\d+.png: segment id \d+ is in the PNG but not in "
                                        r"the ground-truth segments_info"):
        run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=10)
    with pytest.raises(UsageError, match="split: not an option of the coco-panoptic format"):
        run_leaderboard(gt, subs, "coco-panoptic", split="val")


def test_cache_scores_only_changed_submissions(tmp_path: Path) -> None:
    gt, subs, _ = make_board(tmp_path)
    cache = tmp_path / "cache.sqlite"
    first = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=50, cache=cache)
    assert sorted(first.evaluated) == ["team0", "team1", "team2"]
    again = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=50, cache=cache)
    assert again.evaluated == [] and again.entries == first.entries
    shutil.copytree(subs / "team1", subs / "team3")  # same content as team1: a cache hit
    doc = json.loads((subs / "team3" / "pred.json").read_text())
    (subs / "team3" / "pred.json").write_text(json.dumps(doc, indent=1))  # changed bytes
    third = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=50, cache=cache)
    assert third.evaluated == ["team3"]
    assert third.outcomes["team3"].document == third.outcomes["team1"].document
    fresh = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=50)
    assert third.entries == fresh.entries


# ---------------------------------------------------------------------- bootstrap


@st.composite
def image_rows(draw):
    n = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    stats = PanopticStats(CATEGORIES)
    cat_index = stats.cat_index
    rows = []
    for _ in range(n):
        im = random_image(rng)
        counts = panoptic.image_counts(
            im.pred, im.gt, panoptic.segment_table(im.pred_segments, cat_index, "p", gt=False),
            panoptic.segment_table(im.gt_segments, cat_index, "g", gt=True), len(CATEGORIES))
        rows.append(counts.reshape(-1))
    weights = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    return np.stack(rows), np.array(weights)


@settings(max_examples=60, deadline=None)
@given(image_rows())
def test_replicates_equal_panoptic_stats_results(data) -> None:
    rows, weights = data
    ref = PanopticReference("coco-panoptic", Path("gt.json"), panoptic.as_categories(CATEGORIES),
                            (), (), ())
    sums = weights.astype(np.float64) @ rows.astype(np.float64)
    total = (weights[:, None] * rows).sum(axis=0).reshape(5, -1)
    want = PanopticStats(CATEGORIES, counts=total).result().metrics_dict()
    for metric in TASK.metrics:
        got = TASK.replicates(ref, np.stack([sums, sums]), metric)
        assert got.shape == (2,)
        if want[metric] is None:
            assert np.isnan(got).all(), metric
        else:
            assert got.tolist() == [want[metric]] * 2, metric  # bit for bit


def test_task_lookup_and_formats() -> None:
    assert get_task(None, "coco-panoptic").name == "panoptic"
    assert get_task(None, "cityscapes-panoptic").default_metric == "pq"
    assert get_task("panoptic", "coco").name == "panoptic"
    with pytest.raises(UsageError, match="the folder format has only semantic evaluation"):
        prepare(Path("."), "folder", task="panoptic")


def test_cityscapes_panoptic_and_coco_task_panoptic(conformance: Path, tmp_path: Path) -> None:
    suite = conformance / "cityscapes"
    gt = next(suite.rglob("cityscapes_panoptic_val.json"), None)
    if gt is None:
        pytest.skip("the cityscapes suite has no panoptic ground truth")
    pred = next(p for p in suite.rglob("cityscapes_panoptic_val.json") if p != gt)
    subs = tmp_path / "subs"
    (subs / "team").mkdir(parents=True)
    shutil.copy(pred, subs / "team" / pred.name)
    shutil.copytree(pred.with_suffix(""), subs / "team" / pred.stem)
    board = run_leaderboard(gt, subs, "cityscapes-panoptic", jobs=1, resamples=20)
    want = segeval.evaluate(pred, gt, "cityscapes-panoptic", jobs=1).to_dict()
    assert board.outcomes["team"].document == want


# ---------------------------------------------------------------------- the command


def test_leaderboard_command_writes_score_documents(conformance_subs, tmp_path: Path) -> None:
    gt, subs, cases = conformance_subs
    out = tmp_path / "board"
    r = run("leaderboard", "--gt", gt, "--submissions", subs, "--format", "coco-panoptic",
            "--out", out, "--resamples", 100, "--no-plots", "-j", 1)
    assert r.exit_code == 0, r.stderr
    header = r.stdout.splitlines()[0].split()
    assert header[:3] == ["rank", "submission", "pq"]
    for name, case in cases.items():
        paths = {k: gt.parent.parent / v for k, v in case["inputs"].items()}
        mine = tmp_path / f"{name}.json"
        s = run("score", "--format", "coco-panoptic", "--gt", gt, "--pred", paths["pred_json"],
                "--json", mine, "-j", 1)
        assert s.exit_code == 0, s.stderr
        assert (out / "submissions" / f"{name}.json").read_bytes() == mine.read_bytes()
    board = json.loads((out / "leaderboard.json").read_text())
    assert board[0]["submission"] == "c01_identity"
    assert "sq_things" in (out / "leaderboard.csv").read_text().splitlines()[0]
    r = run("leaderboard", "--gt", gt, "--submissions", subs, "--format", "coco-panoptic",
            "--out", out, "--metric", "miou", "-q")
    assert r.exit_code == 2 and "not a metric of the panoptic task" in r.stderr
    # a folder is accepted as --gt when it holds exactly one .json (here: three)
    r = run("leaderboard", "--gt", gt.parent, "--submissions", subs, "--format",
            "coco-panoptic", "--out", out, "-q")
    assert r.exit_code == 1 and "exactly one .json file (found 3)" in r.stderr
    assert r.stderr.count("\n") == 1


def test_ground_truth_folder_with_one_json(tmp_path: Path) -> None:
    gt, subs, _ = make_board(tmp_path)
    folder = tmp_path / "hidden"
    folder.mkdir()
    shutil.copy(gt, folder / "panoptic_val.json")
    shutil.copytree(gt.with_suffix(""), folder / "panoptic_val")
    a = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=20)
    b = run_leaderboard(folder, subs, "coco-panoptic", jobs=1, resamples=20)
    assert a.entries == b.entries and len(a.ranked()) == 3


def test_codabench_scores_a_panoptic_submission(conformance: Path, tmp_path: Path) -> None:
    suite = conformance / "coco_panoptic"
    case = load_expected(suite)["cases"]["c06_mixed"]
    ref, res = tmp_path / "input" / "ref", tmp_path / "input" / "res"
    res.mkdir(parents=True)
    shutil.copytree(suite / "gt" / "panoptic_examples", ref / "panoptic_examples")
    shutil.copy(suite / "gt" / "panoptic_examples.json", ref)
    shutil.copy(suite / "cases" / "c06_mixed" / "panoptic_pred.json", res)
    shutil.copytree(suite / "cases" / "c06_mixed" / "panoptic_pred", res / "panoptic_pred")
    r = run("codabench", tmp_path / "input", tmp_path / "output", "--format", "coco-panoptic")
    assert r.exit_code == 0, r.stderr
    scores = json.loads((tmp_path / "output" / "scores.json").read_text())
    assert scores["pq"] == pytest.approx(case["expected"]["All"]["pq"], abs=1e-6)
    assert scores["rq_things"] == pytest.approx(case["expected"]["Things"]["rq"], abs=1e-6)
