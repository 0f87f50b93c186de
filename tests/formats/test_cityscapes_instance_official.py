"""``--format cityscapes --task instance`` against cityscapesScripts' own
``evalInstanceLevelSemanticLabeling`` (the ``cityscapesscripts`` test dependency), run here on
the same files.

Every dataset is generated here (small 64 x 128 images): random scenes with instances of every
class, group regions, instances under 100 pixels, caravan and trailer instances and groups,
void; predictions shifted from the ground truth, duplicated, false, on void, on group regions,
on caravans, with tied confidences, empty masks, lines naming the same mask twice and lines of
labels that are not instance classes; and hand-made cases for each quirk of the official script
(``docs/instance.md``). Every number is compared with the official script's, to 1e-9.

The official script caches the ground truth in ``gtInstances.json`` inside its installed
package and needs NumPy < 2.3 (``np.in1d``; ``np.count_nonzero`` returning a Python int, which
its JSON writer needs). :func:`run_official` points the cache at a fresh file in the test's
folder, runs it from that folder (it writes ``matches.json`` into the working directory) and
applies the two shims for the duration of the call only; segeval itself never uses them.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from segeval import errors, evaluate
from segeval.cli import cli
from segeval.core import cityscapes_ap
from segeval.core.cityscapes_ap import OVERLAPS, APStats, image_stats
from segeval.report.render import table

ev = pytest.importorskip("cityscapesscripts.evaluation.evalInstanceLevelSemanticLabeling")

H, W = 64, 128
CLASSES = (24, 25, 26, 27, 28, 31, 32, 33)
NAMES = ("person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle")
CITY = "aachen"


# ----------------------------------------------------------------------- the official script


@contextlib.contextmanager
def _numpy_shims() -> Iterator[None]:
    """``np.in1d`` (removed in NumPy 2.4) and an ``np.count_nonzero`` that returns a Python
    int (NumPy >= 2.3 returns ``np.int64``, which the script's JSON writer cannot write), for the
    official script's duration only."""
    had_in1d = hasattr(np, "in1d")
    count_nonzero = np.count_nonzero
    if not had_in1d:
        np.in1d = lambda a, b, **kw: np.isin(np.ravel(a), b, **kw)  # type: ignore[attr-defined]
    np.count_nonzero = lambda *a, **k: int(count_nonzero(*a, **k))  # type: ignore[assignment]
    try:
        yield
    finally:
        np.count_nonzero = count_nonzero  # type: ignore[assignment]
        if not had_in1d:
            del np.in1d  # type: ignore[attr-defined]


def run_official(root: Path, distances: bool = False) -> dict:
    """The official evaluation of ``root/results`` against ``root/gtFine/val``, with a fresh
    ground-truth cache; returns its result dictionary (what it writes as JSON), and leaves the
    exported file at ``root/official.json``. ``distances``: its ``distanceAvailable`` switch."""
    args = ev.args
    work = root / "official_work"
    work.mkdir(exist_ok=True)
    args.gtInstancesFile = str(work / "gtInstances.json")
    if os.path.exists(args.gtInstancesFile):
        os.remove(args.gtInstancesFile)
    args.exportFile = str(root / "official.json")
    args.predictionPath = os.path.abspath(root / "results")
    args.predictionWalk = None
    args.quiet = True
    args.JSONOutput = True
    args.distanceAvailable = distances
    gts = sorted(str(p) for p in (root / "gtFine" / "val").rglob("*_instanceIds.png"))
    old = os.getcwd()
    os.chdir(work)
    try:
        with _numpy_shims():
            preds = [ev.getPrediction(g, args) for g in gts]
            return ev.evaluateImgLists(preds, gts, args)
    finally:
        os.chdir(old)
        args.distanceAvailable = False


def official_table(averages: dict) -> list[str]:
    """The official script's printed table, uncoloured."""
    args = ev.args
    args.colorized, args.csv, args.distanceAvailable = False, False, False
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        ev.printResults(averages, args)
    return buf.getvalue().splitlines()


def same(a: float | None, b: float) -> bool:
    a = math.nan if a is None else a
    return (math.isnan(a) and math.isnan(b)) or abs(a - b) <= 1e-9


def assert_equal_official(result, official: dict) -> None:
    """Every number of ``result`` equals the official script's to 1e-9 (NaN where NaN)."""
    ours = np.array(result.official_dict()["resultApMatrix"])
    theirs = np.array(official["resultApMatrix"])
    assert ours.shape == theirs.shape == (1, 8, 10)
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-9)  # NaN == NaN
    avg = official["averages"]
    assert same(result.metrics["AP"], avg["allAp"])
    assert same(result.metrics["AP50"], avg["allAp50%"])
    assert result.metrics["AP100m"] is None and result.metrics["AP50m"] is None
    rows = result.per_class()
    assert [r["name"] for r in rows] == official["instLabels"] == list(NAMES)
    for r in rows:
        assert same(r["AP"], avg["classes"][r["name"]]["ap"]), r
        assert same(r["AP50"], avg["classes"][r["name"]]["ap50%"]), r


def ours(root: Path, **kw):
    kw.setdefault("jobs", 1)
    return evaluate(root / "results", root / "gtFine" / "val", "cityscapes", task="instance",
                    **kw)


# ----------------------------------------------------------------------- data


class Dataset:
    """Ground truth and predictions in the Cityscapes layouts, written as they are added."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.n = 0

    def add(self, ids: np.ndarray, preds: list[tuple], *, lines: list[str] | None = None
            ) -> str:
        """One image: ``ids`` (instanceIds values), ``preds`` = ``(mask, label, score)`` or
        ``(mask, label, score, name)`` (a name reused writes one file, two lines); ``lines``:
        extra raw lines for the list. Returns the image key."""
        key = f"{CITY}_000000_{self.n:06d}"
        self.n += 1
        gt = self.root / "gtFine" / "val" / CITY / f"{key}_gtFine_instanceIds.png"
        gt.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(ids.astype(np.uint16)).save(gt)
        out = self.root / "results"
        (out / "masks").mkdir(parents=True, exist_ok=True)
        text = []
        for j, p in enumerate(preds):
            mask, label, score = p[:3]
            name = p[3] if len(p) > 3 else f"masks/{key}_{j}.png"
            if not (out / name).exists():
                value = 255 if j % 3 else 1  # any non-zero value is "in"
                Image.fromarray(mask.astype(np.uint8) * value).save(out / name)
            text.append(f"{name} {label} {score}\n")
        text += lines or []
        (out / f"{key}_pred.txt").write_text("".join(text))
        return key


def rect(y: int, x: int, h: int, w: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y:y + h, x:x + w] = True
    return m


def background() -> np.ndarray:
    ids = np.full((H, W), 7, np.uint16)  # road
    ids[:6] = 23  # sky
    ids[-5:] = 1  # ego vehicle: void
    ids[6:12, :16] = 4  # static: void
    return ids


def random_scene(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple], list[str]]:
    """A scene and predictions covering every case in the module docstring."""
    ids = background()
    counts: dict[int, int] = {}
    for _ in range(int(rng.integers(8, 16))):
        c = int(rng.choice((*CLASSES, *CLASSES, 29, 30)))
        small = rng.random() < 0.25
        hh = int(rng.integers(4, 9) if small else rng.integers(10, 26))
        ww = int(rng.integers(4, 11) if small else rng.integers(10, 40))
        y, x = int(rng.integers(6, H - hh)), int(rng.integers(0, W - ww))
        counts[c] = counts.get(c, -1) + 1
        value = c if rng.random() < 0.15 else c * 1000 + counts[c]
        yy, xx = np.ogrid[:hh, :ww]
        shape = (((yy - hh / 2) / (hh / 2)) ** 2 + ((xx - ww / 2) / (ww / 2)) ** 2 <= 1.2
                 if rng.random() < 0.5 else np.ones((hh, ww), bool))
        ids[y:y + hh, x:x + ww][shape] = value
    preds: list[tuple] = []
    for v in np.unique(ids):
        label = int(v if v < 1000 else v // 1000)
        if label not in (*CLASSES, 29, 30):
            continue
        region = ids == v
        for _ in range(int(rng.integers(0, 4))):
            m = np.roll(region, tuple(int(s) for s in rng.integers(-2, 3, 2)), axis=(0, 1))
            if rng.random() < 0.3:
                m = m | np.roll(m, 1, axis=1)  # a little bigger
            lab = label if label in CLASSES else 26  # a car on a caravan or trailer
            if rng.random() < 0.1:
                lab = int(rng.choice(CLASSES))
            preds.append((m, lab, round(float(rng.random()), 1)))  # ties: one decimal
    for _ in range(int(rng.integers(2, 6))):  # false positives
        y, x = int(rng.integers(0, H - 12)), int(rng.integers(0, W - 12))
        preds.append((rect(y, x, int(rng.integers(3, 12)), int(rng.integers(3, 12))),
                      int(rng.choice(CLASSES)), round(float(rng.random()), 1)))
    preds.append((rect(H - 5, 40, 5, 30), 24, 0.9))  # on the ego vehicle: void
    preds.append((np.zeros((H, W), bool), 26, 0.7))  # empty: skipped
    preds.append((rect(20, 20, 8, 8), 7, 0.8))  # road: skipped
    preds.append((rect(30, 30, 8, 8), 29, 0.8))  # caravan: skipped
    preds.append((rect(30, 60, 8, 8), -1, 0.8))  # licence plate: skipped
    rng.shuffle(preds)  # type: ignore[arg-type]
    if preds:  # one mask named twice: the last line counts
        first = preds[0]
        preds.append((first[0], int(rng.choice(CLASSES)), 0.3, "masks/dup.png"))
        preds.append((first[0], int(rng.choice(CLASSES)), 0.6, "masks/dup.png"))
    return ids, preds, []


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("cs_official")
    data = Dataset(root)
    rng = np.random.default_rng(7)
    for i in range(6):
        ids, preds, lines = random_scene(rng)
        # the twice-named mask gets a name of its own per image (a shared name is one file)
        data.add(ids, [(*p[:3], f"masks/dup{i}.png") if len(p) > 3 else p for p in preds],
                 lines=lines)
    return root, run_official(root)


# ----------------------------------------------------------------------- equal to the official


def test_random_scenes_equal_the_official_script(scenes: tuple[Path, dict]) -> None:
    root, official = scenes
    for jobs in (1, 2):
        r = ours(root, jobs=jobs)
        assert_equal_official(r, official)
    assert r.num_images == 6 and r.format == "cityscapes" and r.task == "instance"
    d = r.to_dict()
    assert 0.1 < d["metrics"]["AP"] < 0.9, d["metrics"]  # something to measure
    assert d["skipped_lines"] == 6 * 3 and d["empty_masks"] == 6 and d["duplicate_lines"] == 6
    # decoders do not change a number (fast: the compiled one-pass mask kernel for every mask)
    assert_equal_official(ours(root, decoder="pillow"), official)
    assert_equal_official(ours(root, decoder="fast"), official)


def test_the_json_the_table_and_the_official_file(scenes: tuple[Path, dict],
                                                  tmp_path: Path) -> None:
    root, official = scenes
    out, cs = tmp_path / "r.json", tmp_path / "cs.json"
    r = CliRunner().invoke(cli, ["score", "--format", "cityscapes", "--task", "instance",
                                 "--gt", str(root / "gtFine" / "val"), "--pred",
                                 str(root / "results"), "--json", str(out), "--cityscapes-json",
                                 str(cs), "-j", "1"])
    assert r.exit_code == 0, r.output
    doc = json.loads(out.read_text())
    assert list(doc["metrics"]) == ["AP", "AP50", "AP100m", "AP50m"]
    assert doc["metrics"]["AP100m"] is None and doc["metrics"]["AP50m"] is None
    assert "disparity" in doc["notes"]["AP100m"] and "disparity" in doc["notes"]["AP50m"]
    assert same(doc["metrics"]["AP"], official["averages"]["allAp"])
    assert same(doc["metrics"]["AP50"], official["averages"]["allAp50%"])
    for row in doc["per_class"]:
        assert {"name", "AP", "AP50", "AP100m", "AP50m"} <= set(row)
        assert row["AP100m"] is None and row["AP50m"] is None
    assert doc["ap"] == "cityscapes" and doc["settings"]["ap"] == "cityscapes"
    # --cityscapes-json: the structure the official script writes, the same numbers
    mine = json.loads(cs.read_text())
    theirs = json.loads((root / "official.json").read_text())
    assert _structure(mine) == _structure(theirs)
    _assert_close(mine, theirs)
    # the terminal table is the official layout, line for line
    lines = r.output.splitlines()
    want = official_table(official["averages"])
    start = lines.index(want[1])
    assert lines[start - 1:start - 1 + len(want) - 1] == want[:-1]


@pytest.mark.filterwarnings("ignore:Mean of empty slice:RuntimeWarning")  # the official script's
def test_the_public_script_has_no_distance_numbers(scenes: tuple[Path, dict],
                                                   tmp_path: Path) -> None:
    """Why AP100m and AP50m are null: forced on, the public script keeps no ground truth at 100
    m or 50 m (no instance has a stereo confidence: nothing reads disparity or camera files),
    so both are NaN, whatever the predictions; the distance-free numbers do not change."""
    root, official = scenes
    forced = run_official(root, distances=True)
    avg = forced["averages"]
    assert math.isnan(avg["allAp100m"]) and math.isnan(avg["allAp50m"])
    assert all(math.isnan(c["ap100m"]) and math.isnan(c["ap50m"])
               for c in avg["classes"].values())
    assert same(avg["allAp"], official["averages"]["allAp"])


def _structure(x):
    if isinstance(x, dict):
        return {k: _structure(v) for k, v in x.items()}
    if isinstance(x, list):
        return [_structure(v) for v in x]
    return type(x).__name__ if not isinstance(x, int | float) else "number"


def _assert_close(a, b) -> None:
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_close(a[k], b[k])
    elif isinstance(a, list):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_close(x, y)
    elif isinstance(a, float | int) and not isinstance(a, bool):
        assert a == b or same(float(a), float(b)), (a, b)
    else:
        assert a == b


def test_statistics_add_up_in_any_order(scenes: tuple[Path, dict]) -> None:
    from segeval.formats.base import Folder, Options
    from segeval.formats.cityscapes import instance as adapter

    root, official = scenes
    options = Options(task="instance")
    ref = adapter.reference(root / "gtFine" / "val", options)
    plan = adapter.plan(Folder(root / "results"), ref, options)
    parts = [plan.score(item)[0] for item in plan.items]
    forward = sum(parts, plan.zero)
    backward = sum(reversed(parts), plan.zero)
    for stats in (forward, backward, (parts[0] + parts[1]) + sum(parts[2:], plan.zero)):
        assert_equal_official(plan.finish(stats, []), official)


# ----------------------------------------------------------------------- each quirk


def _one(tmp_path: Path, images: list[tuple[np.ndarray, list[tuple]]]) -> tuple:
    data = Dataset(tmp_path)
    for ids, preds in images:
        data.add(ids, preds)
    official = run_official(tmp_path)
    result = ours(tmp_path)
    assert_equal_official(result, official)
    return result, official


def _k(label: int) -> int:
    return CLASSES.index(label)


def test_small_ground_truth_is_dropped_and_a_class_of_small_ones_is_nan(tmp_path: Path) -> None:
    ids = background()
    ids[20:29, 10:20] = 24000  # person, 90 px: dropped
    ids[20:40, 40:50] = 26000  # car, 200 px
    preds = [(ids == 24000, 24, 0.9), (ids == 26000, 26, 0.8)]
    r, _ = _one(tmp_path, [(ids, preds)])
    assert np.isnan(r.ap[_k(24)]).all()  # predicted, but no ground truth of 100 px or more
    assert (r.ap[_k(26)] == 1.0).all()
    assert r.per_class()[_k(24)]["AP"] is None and r.per_class()[_k(26)]["num_gt"] == 1


def test_iou_must_exceed_each_threshold(tmp_path: Path) -> None:
    ids = background()
    preds = []
    # per class one 200-px instance and one prediction of IoU exactly 0.5, 0.6, 0.7, 0.75, 0.8
    for n, (label, inside, outside) in enumerate(((24, 100, 0), (25, 150, 50), (26, 140, 0),
                                                   (27, 150, 0), (28, 160, 0))):
        y, x = 14, 4 + n * 24
        ids[y:y + 20, x:x + 10] = label * 1000
        m = np.zeros((H, W), bool)
        m.reshape(-1)[np.flatnonzero((ids == label * 1000).reshape(-1))[:inside]] = True
        if outside:
            m[y:y + 5, x + 10:x + 20] = True  # 50 px of road
        preds.append((m, label, 0.5))
    r, _ = _one(tmp_path, [(ids, preds)])
    for label, iou in ((24, 0.5), (25, 0.6), (26, 0.7), (27, 0.75), (28, 0.8)):
        assert ((r.ap[_k(label)] == 1.0) == (iou > OVERLAPS)).all(), label


def test_unmatched_predictions_on_ignored_pixels(tmp_path: Path) -> None:
    ids = background()
    ids[30:50, 4:14] = 24000  # person, 200 px
    ids[30:36, 30:40] = 24  # a person group region of 60 px: counted twice (group and small)
    ids[14:44, 60:70] = 26  # a car group region of 300 px
    ids[14:34, 90:100] = 26000  # car, 200 px
    p = rect(30, 25, 10, 10)  # 100 px: 30 on the small group region, 70 on road -> 60% ignored
    preds = [(ids == 24000, 24, 0.5), (p, 24, 0.9),
             (ids == 26, 26, 0.9),  # exactly the car group region: neither TP nor FP
             (ids == 26000, 26, 0.5)]
    r, _ = _one(tmp_path, [(ids, preds)])
    # the person false positive (0.9) outranks the true positive (0.5) from 0.6 on, where
    # 60% <= the threshold; below it the prediction is ignored
    person = r.ap[_k(24)]
    assert (person[OVERLAPS < 0.6] == 1.0).all() and (person[OVERLAPS >= 0.6] < 1.0).all()
    assert (r.ap[_k(26)] == 1.0).all()


def test_caravan_and_trailer_instances_are_not_void(tmp_path: Path) -> None:
    ids = background()
    ids[14:34, 4:14] = 26000  # car
    ids[14:34, 30:40] = 29000  # caravan instance: not void
    ids[14:34, 60:70] = 30  # trailer group region: void
    preds = [(ids == 26000, 26, 0.5), (ids == 30, 26, 0.8)]
    r, _ = _one(tmp_path / "a", [(ids, preds)])
    assert (r.ap[_k(26)] == 1.0).all()  # a car on the trailer group is ignored (void)
    r, _ = _one(tmp_path / "b", [(ids, [*preds, (ids == 29000, 26, 0.9)])])
    assert (r.ap[_k(26)] < 1.0).all()  # a car on a caravan instance is a false positive


def test_ties_are_one_point_and_a_class_never_predicted_is_zero(tmp_path: Path) -> None:
    ids = background()
    for n in range(4):
        ids[14:34, 4 + 20 * n:14 + 20 * n] = 26000 + n
    ids[40:55, 100:120] = 24000  # a person nobody predicts
    preds = [(ids == 26000, 26, 0.5), (ids == 26001, 26, 0.5), (rect(40, 4, 10, 10), 26, 0.5),
             (ids == 26002, 26, 0.7), (rect(40, 30, 10, 10), 26, 0.7)]
    r, _ = _one(tmp_path, [(ids, preds)])
    assert (r.ap[_k(24)] == 0.0).all()
    assert np.isnan(r.ap[_k(25)]).all()


def test_images_without_void_or_instances(tmp_path: Path) -> None:
    road = np.full((H, W), 7, np.uint16)
    ids = road.copy()
    ids[14:34, 4:14] = 26000
    _one(tmp_path, [(road, [(rect(10, 10, 10, 10), 26, 0.9)]),
                    (ids, [(ids == 26000, 26, 0.5), (rect(40, 40, 10, 10), 24, 0.4)])])


def test_empty_lists_and_a_missing_list(tmp_path: Path) -> None:
    data = Dataset(tmp_path)
    ids = background()
    ids[14:34, 4:14] = 26000
    data.add(ids, [])
    data.add(ids, [])
    r, official = ours(tmp_path), run_official(tmp_path)
    assert_equal_official(r, official)
    assert (r.ap[_k(26)] == 0.0).all() and r.metrics["AP"] == 0.0
    (tmp_path / "results" / f"{CITY}_000000_000001_pred.txt").unlink()
    with pytest.raises(errors.MissingFileError, match="no prediction list for 1 of 2"):
        ours(tmp_path)
    assert_equal_official(ours(tmp_path, missing="zero"), official)


def test_every_prediction_of_a_class_ignored(tmp_path: Path) -> None:
    """The official script crashes (IndexError on an empty array); segeval gives 0, the value
    its algorithm implies, which is also what it gives without those predictions."""
    ids = background()
    ids[14:34, 4:14] = 26000
    ids[14:34, 30:40] = 24000
    preds = [(ids == 24000, 24, 0.5)]
    on_void = [(rect(H - 5, 40, 5, 30), 26, 0.9), (rect(6, 0, 6, 16), 26, 0.4)]
    Dataset(tmp_path / "crash").add(ids, preds + on_void)
    with pytest.raises(IndexError):
        run_official(tmp_path / "crash")
    r = ours(tmp_path / "crash")
    assert (r.ap[_k(26)] == 0.0).all() and r.per_class()[_k(26)]["num_pred"] == 2
    Dataset(tmp_path / "without").add(ids, preds)
    assert_equal_official(r, run_official(tmp_path / "without"))


def test_list_lines(tmp_path: Path) -> None:
    ids = background()
    ids[14:34, 4:14] = 26000
    ids[14:34, 30:40] = 24000
    data = Dataset(tmp_path)
    key = data.add(ids, [(ids == 26000, 26, 0.5), (ids == 24000, 26, 0.9, "masks/p.png"),
                         (ids == 24000, 24, 0.3, "masks/p.png")],
                   lines=["masks/p.png 7 0.9\n", "./masks/../masks/p.png 24 0.8\n"])
    # the mask named three times counts once, as the last line says (person, 0.8); road skipped
    r, official = ours(tmp_path), run_official(tmp_path)
    assert_equal_official(r, official)
    assert r.to_dict()["duplicate_lines"] == 3 and r.per_class()[_k(24)]["num_pred"] == 1
    listing = tmp_path / "results" / f"{key}_pred.txt"
    text = listing.read_text()
    for bad, message in (
            (text + "\n", ":6: a blank line"),
            ("masks/p.png 99 0.5\n", ":1: label id 99 is not a Cityscapes label id"),
            ("masks/p.png 26 nan\n", ":1: confidence nan is not a finite number"),
            ("masks/p.png 26\n", ":1: expected '<mask.png> <label id> <confidence>'"),
            ("../p.png 26 0.5\n", ":1: mask ../p.png is not a path inside"),
            ("/etc/p.png 26 0.5\n", ":1: mask /etc/p.png is not a path inside"),
            ("masks/none.png 26 0.5\n", "none.png: no such file"),
            ("masks/bad.png 26 0.5\n", "bad.png: "),
    ):
        (tmp_path / "results" / "masks" / "bad.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
        listing.write_text(bad)
        with pytest.raises(errors.SegevalError) as info:
            ours(tmp_path)
        assert message in str(info.value) and "\n" not in str(info.value), str(info.value)
    listing.write_text(text + "\n")  # the official script refuses a blank line too
    with pytest.raises(SystemExit), contextlib.redirect_stdout(io.StringIO()):
        run_official(tmp_path)
    Image.fromarray(np.ones((10, 12), np.uint8)).save(tmp_path / "results" / "masks" / "s.png")
    listing.write_text("masks/s.png 26 0.5\n")
    with pytest.raises(errors.SizeMismatchError, match="mask of size 10x12"):
        ours(tmp_path)


def test_mask_kinds_are_read_as_the_official_grey_conversion(tmp_path: Path) -> None:
    ids = background()
    ids[14:34, 4:14] = 26000
    ids[14:34, 30:40] = 24000
    ids[14:34, 60:70] = 33000
    ids[40:55, 60:80] = 32000
    data = Dataset(tmp_path)
    key = data.add(ids, [])
    masks = tmp_path / "results" / "masks"
    # a palette mask whose index 1 is black (grey 0: out) and index 2 blue (grey 14: in)
    pal = np.zeros((H, W), np.uint8)
    pal[ids == 26000] = 2
    pal[14:34, 40:50] = 1
    img = Image.frombytes("P", (W, H), pal.tobytes())
    img.putpalette([0, 0, 0, 0, 0, 0, 0, 0, 120] + [0] * 759)
    img.save(masks / "p.png")
    rgb = np.zeros((H, W, 3), np.uint8)
    rgb[ids == 24000] = (0, 0, 200)
    rgb[40:44, 0:4] = (0, 0, 1)  # grey 0: out
    Image.fromarray(rgb).save(masks / "rgb.png")
    Image.fromarray((ids == 33000).astype(np.uint16) * 300).save(masks / "i16.png")
    Image.fromarray(ids == 32000).save(masks / "one.png")  # 1-bit
    (tmp_path / "results" / f"{key}_pred.txt").write_text(
        "masks/p.png 26 0.5\nmasks/rgb.png 24 0.5\nmasks/i16.png 33 0.5\n"
        "masks/one.png 32 0.5\n")
    official = run_official(tmp_path)
    for decoder in ("auto", "fast", "pillow"):
        r = ours(tmp_path, decoder=decoder)
        assert_equal_official(r, official)
    assert (r.ap[[_k(24), _k(26), _k(32), _k(33)]] == 1.0).all()


# ----------------------------------------------------------------------- the algorithm itself


def _png_filter(rows: np.ndarray, types: np.ndarray) -> np.ndarray:
    """PNG-filter 8-bit rows (ISO/IEC 15948, 9.2: None, Sub, Up, Average, Paeth; bytes mod
    256), written here from the standard: the inflated image data of an 8-bit grey PNG."""
    h, w = rows.shape
    out = np.zeros((h, w + 1), np.uint8)
    r = rows.astype(np.int64)
    for y in range(h):
        b = r[y - 1] if y else np.zeros(w, np.int64)
        a = np.concatenate(([0], r[y, :-1]))
        c = np.concatenate(([0], b[:-1]))
        p = a + b - c
        pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
        paeth = np.where((pa <= pb) & (pa <= pc), a, np.where(pb <= pc, b, c))
        pred = (np.zeros(w, np.int64), a, b, (a + b) // 2, paeth)[types[y]]
        out[y, 0] = types[y]
        out[y, 1:] = (r[y] - pred) % 256
    return out.reshape(-1)


def test_the_mask_kernel_counts_what_numpy_counts() -> None:
    """:func:`segeval.core.kernels.c_png.mask_overlaps` (C: rows un-filtered one at a time,
    zero rows skipped) against NumPy on the unfiltered mask, for every filter type in every
    order."""
    native = pytest.importorskip("segeval.core.kernels.c_png",
                                 reason="the compiled PNG kernels are not built")
    rng = np.random.default_rng(3)
    h, w = 40, 37
    for trial in range(30):
        mask = np.zeros((h, w), np.uint8)
        for _ in range(int(rng.integers(0, 4))):
            y, x = int(rng.integers(0, h - 5)), int(rng.integers(0, w - 5))
            mask[y:y + int(rng.integers(1, 12)), x:x + int(rng.integers(1, 15))] = \
                rng.choice((1, 255, 7))
        if trial % 3 == 0:
            mask[rng.random((h, w)) < 0.05] = 200  # scattered pixels
        ids = rng.integers(0, 6, (h, w)).astype(np.uint16 if trial % 2 else np.uint8)
        index = np.array([0, 1, 2, 3, 4, 5], np.int32)
        store = np.zeros(h * (w + 1) + 16, np.uint8)  # every alignment of the data
        raw = store[trial % 8:trial % 8 + h * (w + 1)]
        raw[:] = _png_filter(mask, rng.integers(0, 5, h))
        counts = np.zeros(6, np.int64)
        bad, top, bottom, left, right = native.mask_overlaps(raw, h, w, ids.reshape(-1), index,
                                                             counts)
        want = np.bincount(index[ids[mask != 0]], minlength=6)
        assert bad == -1 and (counts == want).all(), trial
        ys, xs = np.nonzero(mask)
        box = (-1, 0, w, 0) if ys.size == 0 else (ys.min(), ys.max() + 1, xs.min(),
                                                   xs.max() + 1)
        assert (top, bottom, left, right) == tuple(int(v) for v in box), trial
    raw[0] = 9
    assert native.mask_overlaps(raw, h, w, ids.reshape(-1), index, counts)[0] == 0


def test_image_stats_counts_a_small_group_region_twice() -> None:
    # a prediction of 100 px with 30 px on a 60-px group region: 60 ignored pixels (group and
    # small), so a false positive only where 0.6 <= the threshold (docs/instance.md, quirk 3)
    s = image_stats(8, gt_class=[0], gt_pixels=[60], gt_group=[True], pred_class=[0],
                    pred_score=[0.9], pred_pixels=[100], pred_void=[0], pair_pred=[0],
                    pair_gt=[0], pair_pixels=[30])
    e = s.all_entries()
    assert e["thr"].tolist() == [t for t, th in enumerate(OVERLAPS) if th >= 0.6]
    assert not e["true"].any() and s.num_gt.sum() == 0 and s.num_pred[0] == 1


def test_empty_statistics_and_average_precision_edges() -> None:
    zero = APStats(8)
    assert np.isnan(cityscapes_ap.ap_matrix(zero)).all()
    assert (zero + zero).num_images == 0
    assert cityscapes_ap.average_precision(np.empty(0), np.empty(0, bool), 3) == 0.0
    # one true positive: the curve (recall 1, precision 1) then (0, 1): area 1
    assert cityscapes_ap.average_precision(np.array([0.5]), np.array([True]), 0) == 1.0
    with pytest.raises(TypeError):
        _ = zero + 1  # type: ignore[operator]


def test_options(tmp_path: Path) -> None:
    root = tmp_path / "data"
    ids = background()
    ids[14:34, 4:14] = 26000
    Dataset(root).add(ids, [(ids == 26000, 26, 0.5)])  # --ap coco refuses non-instance labels
    coco = ours(root, ap="coco")
    assert "AR100" in coco.metrics  # COCO mask AP
    with pytest.raises(errors.UsageError, match="backend: only with ap='coco'"):
        ours(root, backend="faster")
    with pytest.raises(errors.UsageError, match="keep_bbox: only with ap='coco'"):
        ours(root, ap="cityscapes", keep_bbox=True)
    with pytest.raises(errors.UsageError, match="ap: not an option of the cityscapes format"):
        evaluate(root / "results", root / "gtFine" / "val", "cityscapes", ap="coco")
    with pytest.raises(errors.InvalidParameterError):
        ours(root, ap="official")  # type: ignore[arg-type]
    r = CliRunner().invoke(cli, ["score", "--format", "cityscapes", "--task", "instance",
                                 "--gt", str(root / "gtFine" / "val"), "--pred",
                                 str(root / "results"), "--ap", "coco", "--cityscapes-json",
                                 str(tmp_path / "x.json")])
    assert r.exit_code == 2 and "--cityscapes-json" in r.output
    r = CliRunner().invoke(cli, ["score", "--format", "cityscapes", "--task", "instance",
                                 "--gt", str(root / "gtFine" / "val"), "--pred",
                                 str(root / "results"), "--ap", "coco", "-j", "1"])
    assert r.exit_code == 0 and "AR100" in r.output
    assert table(coco).startswith("id")
