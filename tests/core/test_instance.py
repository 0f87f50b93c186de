"""coco_mask_ap against the conformance corpus and against pycocotools run directly."""

from __future__ import annotations

import contextlib
import copy
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segeval import errors
from segeval.core.instance import METRIC_NAMES, coco_mask_ap
from tests.conftest import load_expected


@pytest.fixture(scope="module")
def suite(conformance: Path) -> Path:
    return conformance / "coco_instances"


@pytest.fixture(scope="module")
def expected(suite: Path) -> dict:
    return load_expected(suite)["cases"]


def derived(suite: Path) -> tuple[dict, list]:
    gt = json.loads((suite / "derived/instances_gt.json").read_text())
    dt = json.loads((suite / "derived/detections_segm.json").read_text())
    return gt, dt


def direct(gt: dict, dt: list, **params) -> COCOeval:
    """pycocotools on deep copies, exactly as its README runs it (params set before evaluate)."""
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO()
        cg.dataset = copy.deepcopy(gt)
        cg.createIndex()
        cd = cg.loadRes(copy.deepcopy(dt))
        ev = COCOeval(cg, cd, iouType="segm")
        for k, v in params.items():
            setattr(ev.params, k, v)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def nan_equal(a, b, tol=0.0) -> bool:
    a = np.asarray(a, float)
    b = np.asarray(b, float)
    return bool(np.all((np.isnan(a) & np.isnan(b)) | (np.abs(a - b) <= tol)))


def from_stats(stats) -> list[float]:
    return [math.nan if s == -1 else s for s in stats]


@pytest.mark.parametrize("case", ["real_val2014_fakesegm100", "derived_segm",
                                  "derived_segm_with_bbox"])
def test_conformance_stats_and_per_category(suite: Path, expected: dict, case: str) -> None:
    c = expected[case]
    keep = case.endswith("with_bbox")  # the reference ran raw pycocotools on the bbox file
    r = coco_mask_ap(suite / c["inputs"]["gt_json"], suite / c["inputs"]["results_json"],
                     keep_bbox=keep)
    e = c["expected"]
    assert list(r.metrics) == list(METRIC_NAMES)
    assert nan_equal(r.stats, from_stats(e["stats"]), 1e-9)
    assert r.num_images == e["num_images"] and r.num_dt == e["num_dt"]
    seen = set()
    for row in r.categories:
        ref = e["per_category"].get(str(row["id"]))
        if ref is None:  # the reference omits categories with neither GT nor detections
            assert row["num_gt"] == row["num_dt"] == 0 and math.isnan(row["AP"])
            continue
        seen.add(str(row["id"]))
        for k in ("AP", "AP50", "AP75", "AR100"):
            assert nan_equal(row[k], math.nan if ref[k] is None else ref[k], 1e-9), (row, ref)
        assert (row["num_gt"], row["num_dt"], row["name"]) == \
            (ref["num_gt_noncrowd"], ref["num_dt"], ref["name"])
    assert seen == set(e["per_category"])
    frame = r.to_frame()
    assert list(frame.index) == [row["id"] for row in r.categories]
    assert nan_equal(frame["AP"].to_numpy(), [row["AP"] for row in r.categories])


def test_bbox_is_dropped_by_default(suite: Path, expected: dict) -> None:
    """The same detections with a bbox key give the no-bbox numbers unless keep_bbox."""
    r = coco_mask_ap(suite / "derived/instances_gt.json",
                     suite / "derived/detections_segm_with_bbox.json")
    assert nan_equal(r.stats, expected["derived_segm"]["expected"]["stats"], 1e-12)
    assert r.settings["bboxes_dropped"] == 184 and r.settings["detection_area"] == "mask"
    kept = coco_mask_ap(suite / "derived/instances_gt.json",
                        suite / "derived/detections_segm_with_bbox.json", keep_bbox=True)
    assert kept.settings["detection_area"] == "bbox" and kept.settings["bboxes_dropped"] == 0
    assert kept.metrics["APl"] != r.metrics["APl"]


def test_per_category_is_the_documented_slice_of_pycocotools(suite: Path) -> None:
    gt, dt = derived(suite)
    ev = direct(gt, dt)
    r = coco_mask_ap(gt, dt)
    assert r.stats.tolist() == from_stats(ev.stats)  # bit for bit
    prec, rec = ev.eval["precision"], ev.eval["recall"]
    assert [row["id"] for row in r.categories] == ev.params.catIds
    for k, row in enumerate(r.categories):
        p = prec[:, :, k, 0, 2]
        rr = rec[:, k, 0, 2]
        want = [p[p > -1].mean() if (p > -1).any() else math.nan,
                p[0][p[0] > -1].mean() if (p[0] > -1).any() else math.nan,
                p[5][p[5] > -1].mean() if (p[5] > -1).any() else math.nan,
                rr[rr > -1].mean() if (rr > -1).any() else math.nan]
        assert nan_equal([row["AP"], row["AP50"], row["AP75"], row["AR100"]], want)
    np.testing.assert_array_equal(r.precision, prec)


def test_options_reach_cocoeval_params(suite: Path) -> None:
    gt, dt = derived(suite)
    cats, imgs = [1, 19], [142238, 3439180]
    thr = np.array([0.5, 0.6, 0.75])
    ranges = {"all": [0, 1e10], "small": [0, 48**2], "large": [48**2, 1e10]}
    r = coco_mask_ap(gt, dt, iou_thresholds=thr, category_ids=cats, image_ids=imgs,
                     area_ranges=ranges, max_dets=[1, 5, 100])
    ev = direct(gt, dt, iouThrs=thr, catIds=cats, imgIds=imgs, maxDets=[1, 5, 100],
                areaRng=list(ranges.values()), areaRngLbl=list(ranges))
    want = from_stats(ev.stats)
    want[4] = want[10] = math.nan  # no 'medium' range: pycocotools averages an empty slice
    assert nan_equal(r.stats, want)
    assert [row["id"] for row in r.categories] == cats and r.num_images == 2
    assert r.settings["max_dets"] == [1, 5, 100]
    assert r.settings["area_ranges"] == {k: [float(a), float(b)] for k, (a, b) in ranges.items()}


def test_custom_max_dets_take_ap_at_the_last_limit(suite: Path) -> None:
    gt, dt = derived(suite)
    r = coco_mask_ap(gt, dt, max_dets=[1, 10, 20])
    ev = direct(gt, dt, maxDets=[1, 10, 20])
    p = ev.eval["precision"][:, :, :, 0, 2]
    assert r.metrics["AP"] == p[p > -1].mean()
    assert r.stats[6:9].tolist() == list(ev.stats[6:9])  # AR at the three limits
    assert ev.stats[0] == -1  # raw summarize() looks for maxDets=100 and finds nothing


def test_empty_results_score_zero_not_a_crash(suite: Path) -> None:
    gt, _ = derived(suite)
    r = coco_mask_ap(gt, [])
    assert r.stats.tolist() == [0.0] * 12 and r.num_dt == 0
    assert {row["AP"] for row in r.categories if row["num_gt"]} == {0.0}


def test_annotation_id_zero_is_renumbered(suite: Path, expected: dict) -> None:
    gt, dt = derived(suite)
    anns = gt["annotations"]
    person = next(i for i, a in enumerate(anns) if a["category_id"] == 1 and not a["iscrowd"])
    anns[person]["id"] = 0  # no other annotation has id 0
    raw = direct(gt, dt)  # pycocotools can never match this object
    assert raw.stats[0] < expected["derived_segm"]["expected"]["stats"][0]
    r = coco_mask_ap(gt, dt)
    assert r.settings["gt_ids_renumbered"] is True
    assert nan_equal(r.stats, expected["derived_segm"]["expected"]["stats"], 1e-12)
    assert gt["annotations"][person]["id"] == 0  # the caller's data is not changed


def test_inputs_are_not_mutated(suite: Path) -> None:
    gt, dt = derived(suite)
    gt0, dt0 = copy.deepcopy(gt), copy.deepcopy(dt)
    coco_mask_ap(gt, dt)
    assert gt == gt0 and dt == dt0


def test_polygon_and_uncompressed_results_are_compressed(suite: Path) -> None:
    gt, _ = derived(suite)
    from pycocotools import mask as mask_utils

    # ground-truth polygons and uncompressed (crowd) RLEs as results
    polys = [{"image_id": a["image_id"], "category_id": a["category_id"], "score": 1.0 - k / 1e3,
              "segmentation": a["segmentation"]} for k, a in enumerate(gt["annotations"])
             if isinstance(a["segmentation"], list) or isinstance(a["segmentation"]["counts"],
                                                                   list)]
    assert any(isinstance(p["segmentation"], dict) for p in polys)
    r = coco_mask_ap(gt, polys)
    assert r.settings["results_converted_to_rle"] == len(polys)
    rles = []
    for p in polys:
        img = next(i for i in gt["images"] if i["id"] == p["image_id"])
        seg = p["segmentation"]
        rle = mask_utils.merge(mask_utils.frPyObjects(seg, img["height"], img["width"])) \
            if isinstance(seg, list) else mask_utils.frPyObjects(seg, img["height"], img["width"])
        rles.append({**p, "segmentation": {"size": rle["size"],
                                           "counts": rle["counts"].decode()}})
    assert nan_equal(r.stats, coco_mask_ap(gt, rles).stats)


def test_faster_backend_equals_pycocotools(suite: Path, expected: dict) -> None:
    pytest.importorskip("faster_coco_eval", reason="the [fast] extra is not installed")
    for case, c in expected.items():
        for keep in (False, True):
            args = (suite / c["inputs"]["gt_json"], suite / c["inputs"]["results_json"])
            a = coco_mask_ap(*args, keep_bbox=keep)
            b = coco_mask_ap(*args, keep_bbox=keep, backend="faster", jobs=2)
            assert b.backend == "faster"
            assert nan_equal(a.stats, b.stats, 1e-12), case
            for ra, rb in zip(a.categories, b.categories, strict=True):
                assert nan_equal([ra[k] for k in ("AP", "AP50", "AP75", "AR100")],
                                 [rb[k] for k in ("AP", "AP50", "AP75", "AR100")], 1e-12)
    gt, _ = derived(suite)
    assert coco_mask_ap(gt, [], backend="faster").stats.tolist() == [0.0] * 12


def test_nothing_printed_unless_verbose(suite: Path, capfd) -> None:
    gt, dt = derived(suite)
    coco_mask_ap(gt, dt)
    assert capfd.readouterr().out == ""
    coco_mask_ap(gt, dt, verbose=True)
    assert "Average Precision" in capfd.readouterr().out


def _error(gt, dt, **kw) -> str:
    with pytest.raises(errors.SegevalError) as info:
        coco_mask_ap(gt, dt, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_bad_results_name_the_entry(suite: Path) -> None:
    gt, dt = derived(suite)
    bad = copy.deepcopy(dt)
    bad[3]["image_id"] = 999
    assert "results[3]: image_id 999 is not an image" in _error(gt, bad)
    bad = copy.deepcopy(dt)
    bad[5]["category_id"] = 1000
    assert "results[5] (image_id" in _error(gt, bad) and "category_id 1000" in _error(gt, bad)
    bad = copy.deepcopy(dt)
    del bad[7]["score"]
    assert "results[7]" in _error(gt, bad) and "has no 'score'" in _error(gt, bad)
    bad = copy.deepcopy(dt)
    bad[2]["score"] = float("nan")
    assert "'score' must be a finite number" in _error(gt, bad)
    bad = copy.deepcopy(dt)
    bad[4]["segmentation"]["size"] = [10, 10]
    assert "results[4]" in _error(gt, bad) and "mask of size 10x10" in _error(gt, bad)
    bad = copy.deepcopy(dt)
    bad[6]["segmentation"]["counts"] = bad[6]["segmentation"]["counts"][:-3]
    msg = _error(gt, bad)
    assert "results[6]" in msg and "malformed RLE" in msg
    bad = copy.deepcopy(dt)
    bad[1]["segmentation"]["counts"] = "~~~"
    assert "not a COCO compressed RLE string" in _error(gt, bad)
    bad = copy.deepcopy(dt)
    bad[0]["segmentation"] = [[1, 2, 3]]
    assert "malformed polygon 0: 3 coordinates" in _error(gt, bad)


def test_bad_ground_truth_and_not_coco(suite: Path) -> None:
    gt, dt = derived(suite)
    assert "a JSON list" in _error(dt, dt) and "results list" in _error(dt, dt)
    assert "'annotations' is missing" in _error({"images": [], "categories": []}, dt)
    assert "it looks like ground truth" in _error(gt, gt)
    bad = copy.deepcopy(gt)
    bad["annotations"][2]["segmentation"] = {"size": [5, 5], "counts": [1, 2]}
    assert "annotations[2]" in _error(bad, dt) and "mask of size 5x5" in _error(bad, dt)
    bad = copy.deepcopy(gt)
    seg = next(a for a in bad["annotations"] if isinstance(a["segmentation"], dict)
               and isinstance(a["segmentation"]["counts"], list))
    seg["segmentation"]["counts"][-1] += 1
    assert "runs add up to" in _error(bad, dt)
    bad = copy.deepcopy(gt)
    bad["annotations"][0]["segmentation"] = [[0, 0, 5, 5, 7]]
    assert "malformed polygon" in _error(bad, dt)
    bad = copy.deepcopy(gt)
    bad["images"][0]["height"] = 0
    assert "images[0]" in _error(bad, dt)


def test_errors_from_files_name_the_file(suite: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"images": [')
    msg = _error(broken, suite / "derived/detections_segm.json")
    assert msg.startswith(f"{broken}: not valid JSON")
    results = tmp_path / "results.json"
    dt = json.loads((suite / "derived/detections_segm.json").read_text())
    del dt[10]["score"]
    results.write_text(json.dumps(dt))
    msg = _error(suite / "derived/instances_gt.json", results)
    assert msg.startswith(f"{results}: results[10]")


def test_bad_options_are_usage_errors(suite: Path) -> None:
    gt, dt = derived(suite)
    for kw in ({"max_dets": [10, 1, 100]}, {"iou_thresholds": [0.7, 0.5]},
               {"category_ids": [12345]}, {"image_ids": [1]}, {"backend": "gpu"},
               {"area_ranges": {"small": [0, 10]}}):
        with pytest.raises(errors.UsageError):
            coco_mask_ap(gt, dt, **kw)


def test_faster_backend_missing_names_the_extra(suite: Path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "faster_coco_eval", None)  # import fails
    gt, dt = derived(suite)
    with pytest.raises(errors.UsageError, match=r"pip install 'segeval\[fast\]'"):
        coco_mask_ap(gt, dt, backend="faster")
