"""Hostile JSON (issue 15, items 1, 3, 9): COCO polygons and RLE checked before pycocotools sees
them (memory bounded under RLIMIT_AS, no segfault), one bounded JSON reader for every JSON
file (size, nesting, number length), a panoptic board that ranks the good submissions when one
is hostile, and hypothesis fuzzing of the COCO and panoptic JSON checks (either a result or a
SegevalError, never another exception)."""

from __future__ import annotations

import copy
import json
import os
import resource
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from segeval.core import coco_input, jsonio
from segeval.core.rle import encode_mask
from segeval.errors import DataError, FileFormatError, MissingFileError, SegevalError
from segeval.formats.coco import panoptic as coco_panoptic
from tests.leaderboard.test_panoptic_task import make_board
from tests.test_cli import run

#: hypothesis examples per fuzz test; SEGEVAL_FUZZ_EXAMPLES sets a longer run (read here only)
FUZZ_EXAMPLES = int(os.environ.get("SEGEVAL_FUZZ_EXAMPLES", "150"))

#: a crowd mask as pycocotools compresses it (segeval.core.rle.encode_mask calls it)
CROWD = encode_mask(np.pad(np.ones((5, 7), np.uint8), ((3, 12), (4, 19))))
GT = {"images": [{"id": 1, "height": 50, "width": 60}, {"id": 2, "height": 20, "width": 30}],
      "categories": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}],
      "annotations": [
          {"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0, "area": 400,
           "segmentation": [[10, 10, 30, 10, 30, 30, 10, 30]]},
          {"id": 2, "image_id": 2, "category_id": 2, "iscrowd": 0,
           "segmentation": {"size": [20, 30], "counts": [100, 50, 450]}},
          {"id": 3, "image_id": 2, "category_id": 1, "iscrowd": 1,
           "segmentation": CROWD}]}
RESULTS = [{"image_id": 1, "category_id": 1, "score": 0.9,
            "segmentation": [[10, 10, 25, 10, 25, 30, 10, 30]]},
           {"image_id": 2, "category_id": 2, "score": 0.5,
            "segmentation": {"size": [20, 30], "counts": [90, 60, 450]}}]


def write(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(doc))
    return path


def far_polygon(coord: float) -> list[dict[str, Any]]:
    """Results whose polygon has one x coordinate at ``coord`` (pycocotools rasterizes an
    outline of 5 * coord points: 1e7 costs it 1.2 GB, 1e9 overflows its ints)."""
    res = copy.deepcopy(RESULTS)
    res[0]["segmentation"] = [[10, 10, coord, 10, 30, 30, 10, 30]]
    return res


# ------------------------------------------------------------------ item 1: polygons, RLE

LIMIT = 1 << 30  # address space for the subprocesses: the good file fits, 1e7 would not


def limited(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh Python whose address space is limited to :data:`LIMIT`."""
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (LIMIT, LIMIT))

    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MALLOC_ARENA_MAX="2",
               NUMBA_NUM_THREADS="1")
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, text=True,
                          capture_output=True, timeout=300, preexec_fn=limit)


ENTRIES = {
    "score": "import sys; from segeval.cli import main; sys.argv = ['segeval', 'score', "
             "'--format', 'coco', '--gt', 'gt.json', '--pred', 'sub/res.json', '-q', '-j', '1']"
             "; main()",
    "coco_mask_ap": "from segeval.core.instance import coco_mask_ap\n"
                    "from segeval.errors import SegevalError\n"
                    "try:\n    print(coco_mask_ap('gt.json', 'sub/res.json').stats)\n"
                    "except SegevalError as e:\n    raise SystemExit('segeval: error: ' + str(e))",
    "evalai": "from segeval.leaderboard.challenge import evaluate\n"
              "from segeval.errors import SegevalError\n"
              "try:\n    print(evaluate('gt.json', 'sub', 'dev', format='coco', jobs=1))\n"
              "except SegevalError as e:\n    raise SystemExit('segeval: error: ' + str(e))",
}


@pytest.mark.parametrize("entry", list(ENTRIES))
def test_far_polygon_is_refused_in_bounded_memory(tmp_path: Path, entry: str) -> None:
    write(tmp_path / "gt.json", GT)
    write(tmp_path / "sub" / "res.json", RESULTS)
    good = limited(ENTRIES[entry], tmp_path)
    assert good.returncode == 0, good.stderr  # the limit leaves room for a real evaluation
    for coord in (1e7, 1e9):
        write(tmp_path / "sub" / "res.json", far_polygon(coord))
        r = limited(ENTRIES[entry], tmp_path)
        assert r.returncode == 1, (coord, r.returncode, r.stderr[-2000:])
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
        assert lines[0].startswith("segeval: error: ") and "res.json" in lines[0]
        assert "far outside the image of 50x60" in lines[0]
        assert "x in [-60, 120] and y in [-50, 100]" in lines[0]


def test_far_polygon_in_ground_truth(tmp_path: Path) -> None:
    gt = copy.deepcopy(GT)
    gt["annotations"][0]["segmentation"] = [[10, 10, 1e9, 10, 30, 30]]
    write(tmp_path / "gt.json", gt)
    write(tmp_path / "sub" / "res.json", RESULTS)
    r = limited(ENTRIES["score"], tmp_path)
    assert r.returncode == 1 and r.stderr.count("\n") == 1, r.stderr
    assert r.stderr.startswith("segeval: error: gt.json: annotations[0] (id 1, image_id 1): "
                               "polygon 0 has the point (1e+09, 10) far outside")


def test_costly_outline_is_refused() -> None:
    """A zigzag inside the margin: 20 000 edges across 180 pixels cost pycocotools 18M outline
    points (about 400 MiB); one annotation may have 8M."""
    gt = coco_input.check_ground_truth(GT, "gt.json")
    zigzag = [v for i in range(20000) for v in ((-60 if i % 2 else 120), i % 50)]
    res = [{"image_id": 1, "category_id": 1, "score": 0.5, "segmentation": [zigzag]}]
    with pytest.raises(DataError, match=r"^res\.json: results\[0\] \(image_id 1\): polygons "
                                        r"with 18\d{6} outline points to rasterize"):
        coco_input.check_results(res, gt, "res.json")
    # a real outline, many points close together, is fine
    circle = [v for t in np.linspace(0, 2 * np.pi, 5000, endpoint=False)
              for v in (30 + 20 * np.cos(t), 25 + 20 * np.sin(t))]
    res[0]["segmentation"] = [circle]
    assert coco_input.check_results(res, gt, "res.json").converted == 1


def test_polygons_on_huge_images_are_refused() -> None:
    gt = copy.deepcopy(GT)
    gt["images"][0].update(height=50000, width=50000)  # 2.5e9 pixels: past pycocotools' 2^31
    with pytest.raises(DataError, match="which pycocotools cannot rasterize"):
        coco_input.check_ground_truth(gt, "gt.json")


@pytest.mark.parametrize(("seg", "message"), [
    ({"size": [21, 30], "counts": [100, 50, 450]}, "mask of size 21x30"),
    ({"size": [20, 30], "counts": [100, 50, 449]}, "runs add up to 599 pixels, not 20x30"),
    ({"size": [20, 30], "counts": [100, -50, 550]}, "'counts' must be non-negative"),
    ({"size": [20, 30], "counts": CROWD["counts"] + "1"}, "pixels, not 20x30 = 600"),
    ({"size": [20, 30], "counts": "\u00ff"}, "not a COCO compressed RLE string"),
    ({"size": [20, 30], "counts": "o" * 20 + "0"}, "malformed RLE"),
    ({"size": "20x30", "counts": "0"}, "'size' must be [height, width]"),
    ([[1, 2, float("nan"), 4, 5, 6]], "not a flat list of numbers"),
])
def test_rle_and_polygon_checks_name_the_annotation(seg: Any, message: str) -> None:
    gt = coco_input.check_ground_truth(GT, "gt.json")
    res = copy.deepcopy(RESULTS)
    res[1]["segmentation"] = seg
    with pytest.raises(DataError) as e:
        coco_input.check_results(res, gt, "res.json")
    assert str(e.value).startswith("res.json: results[1] (image_id 2)")
    assert message in str(e.value)


# ------------------------------------------------------------------ item 3: one bounded reader


def test_deep_nesting_and_long_numbers_are_one_line(tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(FileFormatError) as e:
        jsonio.read_json(deep)
    assert str(e.value) == f"{deep}: not valid JSON here: arrays or objects nested 100000 " \
                           f"deep (at most 64)"
    big = tmp_path / "big.json"
    big.write_text('{"annotations": [' + "7" * 5000 + "]}")
    with pytest.raises(FileFormatError, match=r"big\.json: not valid JSON here: a number of "
                                              r"5000 digits \(at most 400\)"):
        jsonio.read_json(big)
    # what the scan must not count: brackets and digits inside strings, escaped quotes
    inside = '{"a": "' + "[" * 200 + '\\"' + "1" * 600 + '", "b": [[1.5e300]]}'
    assert jsonio.parse_json(inside.encode(), "x") == {"a": "[" * 200 + '"' + "1" * 600,
                                                       "b": [[1.5e300]]}
    assert jsonio.scan(inside.encode()) == (3, 3)


def test_size_is_bounded_before_reading(tmp_path: Path) -> None:
    path = write(tmp_path / "r.json", RESULTS)
    with pytest.raises(FileFormatError, match=r"r\.json: \d+ bytes, more than the 100 bytes a "
                                              r"JSON file may have \(max_bytes\)"):
        jsonio.read_json(path, max_bytes=100)
    assert jsonio.read_json(path, max_bytes=path.stat().st_size) == RESULTS
    with pytest.raises(MissingFileError, match="no such file"):
        jsonio.read_json(tmp_path / "absent.json")
    with pytest.raises(FileFormatError, match="a folder where"):
        jsonio.read_json(tmp_path)


def test_python_int_limit_is_caught(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Past the scan (a bound raised by a platform), Python's own 4300-digit limit is one line
    too."""
    monkeypatch.setattr(jsonio, "MAX_JSON_DIGITS", 10 ** 6)
    with pytest.raises(FileFormatError, match=r"^n\.json: not valid JSON \(ValueError: "
                                              r"Exceeds the limit"):
        jsonio.parse_json(b"[" + b"9" * 5000 + b"]", "n.json")


@pytest.mark.parametrize("reader", ["coco gt", "coco results", "panoptic", "class names",
                                    "state"])
@pytest.mark.parametrize("body", [b"[" * 5000 + b"]" * 5000, b"[" + b"1" * 5000 + b"]",
                                  b"\xff\xfe\x00garbage"])
def test_every_json_reader_is_bounded(tmp_path: Path, reader: str, body: bytes) -> None:
    path = tmp_path / "x.json"
    path.write_bytes(body)
    gt = write(tmp_path / "gt.json", GT)
    with pytest.raises(DataError) as e:
        if reader == "coco gt":
            coco_input.load_json(path)
        elif reader == "coco results":
            from segeval.core.instance import coco_mask_ap

            coco_mask_ap(gt, path)
        elif reader == "panoptic":
            coco_panoptic.read_json(path, "prediction")
        elif reader == "class names":
            from segeval.formats.folder import read_class_names

            read_class_names(path)
        else:
            import io

            from segeval.engine.state import load_state
            buf = io.BytesIO()
            np.savez(buf, header=np.array(body.decode("latin-1")))
            state = tmp_path / "s.npz"
            state.write_bytes(buf.getvalue())
            path = state
            load_state(state)
    assert str(e.value).startswith(str(path)), str(e.value)
    assert "\n" not in str(e.value)


def test_panoptic_board_ranks_the_others(tmp_path: Path) -> None:
    from segeval.leaderboard import run_leaderboard

    gt, subs, _ = make_board(tmp_path)
    for name, body in (("deep", "[" * 100000 + "]" * 100000),
                       ("huge", '{"annotations": [' + "9" * 5000 + "]}")):
        (subs / name).mkdir()
        (subs / name / "pred.json").write_text(body)
    board = run_leaderboard(gt, subs, "coco-panoptic", jobs=1, resamples=20)
    entries = {e["submission"]: e for e in board.entries}
    assert {e["submission"] for e in board.ranked()} == {"team0", "team1", "team2"}
    assert entries["deep"]["status"] == "failed"
    assert "pred.json: not valid JSON here: arrays or objects nested 100000 deep" in \
        entries["deep"]["error"]
    assert entries["huge"]["status"] == "failed"
    assert "pred.json: not valid JSON here: a number of 5000 digits" in entries["huge"]["error"]


def test_score_panoptic_deep_json_is_one_line(tmp_path: Path) -> None:
    gt, subs, _ = make_board(tmp_path)
    pred = subs / "team0" / "pred.json"
    pred.write_text("[" * 100000 + "]" * 100000)
    r = run("score", "--format", "coco-panoptic", "--gt", gt, "--pred", pred)
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
    assert r.stderr.startswith(f"segeval: error: {pred}: not valid JSON here")


# ------------------------------------------------------------------ fuzzing

LEAVES = st.one_of(
    st.none(), st.booleans(), st.integers(-(10 ** 30), 10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
    st.just([]), st.just({}), st.just([[1, 2, 3]]), st.just({"size": [1, 2], "counts": "0"}))


def mutate(doc: Any, data: st.DataObject, depth: int = 0) -> Any:
    """A copy of ``doc`` with random changes: a value replaced by another type, a key removed
    or added, a list entry dropped or repeated, a huge number, extra nesting."""
    choice = data.draw(st.integers(0, 9), label="op")
    if choice == 0 or depth > 6:
        return data.draw(LEAVES, label="leaf")
    if choice == 1:
        return [doc]
    if isinstance(doc, dict) and doc:
        out = dict(doc)
        key = data.draw(st.sampled_from(sorted(out)), label="key")
        op = data.draw(st.integers(0, 3), label="dict op")
        if op == 0:
            del out[key]
        elif op == 1:
            out[data.draw(st.text(max_size=4), label="new key")] = data.draw(LEAVES)
        else:
            out[key] = mutate(out[key], data, depth + 1)
        return out
    if isinstance(doc, list) and doc:
        out = list(doc)
        k = data.draw(st.integers(0, len(out) - 1), label="index")
        op = data.draw(st.integers(0, 3), label="list op")
        if op == 0:
            del out[k]
        elif op == 1:
            out.append(copy.deepcopy(out[k]))
        else:
            out[k] = mutate(out[k], data, depth + 1)
        return out
    if isinstance(doc, int | float) and not isinstance(doc, bool):
        return data.draw(st.sampled_from([doc * 10 ** 12, -doc, 1e308, float("nan"), 2 ** 64,
                                          doc + 0.5, 0]), label="number")
    return data.draw(LEAVES, label="leaf")


FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=FUZZ_EXAMPLES <= 200,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.data())
def test_fuzz_coco_ground_truth_and_results(data: st.DataObject) -> None:
    gt_doc = mutate(GT, data) if data.draw(st.booleans(), label="mutate gt") else GT
    res_doc = mutate(RESULTS, data)
    as_text = data.draw(st.booleans(), label="through the reader")
    try:
        if as_text:
            gt_doc = jsonio.parse_json(json.dumps(gt_doc).encode(), "gt.json")
            res_doc = jsonio.parse_json(json.dumps(res_doc).encode(), "res.json")
        gt = coco_input.check_ground_truth(gt_doc, "gt.json")
        coco_input.check_results(res_doc, gt, "res.json")
    except SegevalError as e:
        assert "\n" not in str(e)


PANOPTIC = {"annotations": [
    {"image_id": 1, "file_name": "1.png",
     "segments_info": [{"id": 1, "category_id": 1, "iscrowd": 0, "area": 4},
                       {"id": 2, "category_id": 7, "iscrowd": 1, "area": 3}]},
    {"image_id": 2, "file_name": "2.png", "segments_info": []}],
    "categories": [{"id": 1, "name": "person", "isthing": 1},
                   {"id": 7, "name": "road", "isthing": 0}]}


@pytest.fixture(scope="module")
def panoptic_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with ``gt.json`` (of :data:`PANOPTIC`), its PNG folder ``gt/`` and the
    prediction's PNG folder ``pred/`` (their pixels are never read by the JSON checks)."""
    root = tmp_path_factory.mktemp("panoptic")
    write(root / "gt.json", PANOPTIC)
    for folder in ("gt", "pred"):
        (root / folder).mkdir()
        for name in ("1.png", "2.png"):
            (root / folder / name).write_bytes(b"")
    return root


@FUZZ
@given(st.data())
def test_fuzz_panoptic_json(panoptic_files: Path, data: st.DataObject) -> None:
    """The panoptic reader as ``segeval score`` runs it: the mutated document as the ground
    truth (read and checked by ``reference``), and as the prediction (paired with the good
    ground truth)."""
    from segeval.formats.base import Options

    doc = mutate(PANOPTIC, data)
    as_gt = data.draw(st.booleans(), label="as ground truth")
    target = panoptic_files / ("bad.json" if as_gt else "pred.json")
    target.write_text(json.dumps(doc))
    try:
        if as_gt:
            coco_panoptic.reference_from("coco-panoptic", target,
                                         Options(gt_folder=panoptic_files / "gt"))
        else:
            ref = coco_panoptic.reference_from("coco-panoptic", panoptic_files / "gt.json",
                                               Options())
            coco_panoptic.pair(ref, target, Options(missing="zero"))
    except SegevalError as e:
        assert "\n" not in str(e)


@settings(max_examples=FUZZ_EXAMPLES, deadline=None, derandomize=FUZZ_EXAMPLES <= 200)
@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                    | st.text(),
                    lambda kids: st.lists(kids, max_size=4)
                    | st.dictionaries(st.text(max_size=4), kids, max_size=4), max_leaves=30))
def test_fuzz_reader_equals_json_within_bounds(doc: Any) -> None:
    """The scan never refuses what the bounds allow: any document Python writes reads back."""
    text = json.dumps(doc).encode()
    depth, digits = jsonio.scan(text)
    if depth <= jsonio.MAX_JSON_DEPTH and digits <= jsonio.MAX_JSON_DIGITS:
        assert jsonio.parse_json(text, "x.json") == json.loads(text)
