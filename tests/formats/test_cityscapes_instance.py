"""Cityscapes instance PNGs scored as COCO mask AP (``ap="coco"``), checked against the JSON path.

(The default, the official ``evalInstanceLevelSemanticLabeling`` AP, is tested against
cityscapesScripts itself in ``test_cityscapes_instance_official.py``.)

The ground truth is the conformance corpus' ``*_instanceIds.png``; predictions are written here
as per-instance binary PNGs with Cityscapes list files, made from the ground-truth instances
(shifted, relabelled, dropped, plus false positives). The reference builds COCO JSON from the
same PNGs with its own code (Pillow + ``pycocotools.mask.encode``) and runs COCOeval itself.
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from segeval import errors, evaluate
from segeval.core.instance_masks import annotations_from_instance_ids, results_from_masks
from tests.conftest import write_png

CLASSES = (24, 25, 26, 27, 28, 31, 32, 33)


@pytest.fixture(scope="module")
def gt_root(conformance: Path) -> Path:
    return conformance / "cityscapes" / "gtFine"


def make_predictions(gt_root: Path, out: Path, seed: int = 3) -> None:
    """Per image a list file ``<key>_pred.txt`` and one PNG per predicted instance."""
    rng = np.random.default_rng(seed)
    for path in sorted(gt_root.rglob("*_instanceIds.png")):
        ids = np.asarray(Image.open(path))
        key = "_".join(path.name.split("_")[:3])
        lines = []
        values = [v for v in np.unique(ids) if v >= 1000 and v // 1000 in CLASSES]
        for n, v in enumerate(values):
            if rng.random() < 0.15:
                continue  # missed
            mask = np.roll(ids == v, tuple(rng.integers(-3, 4, 2)), axis=(0, 1))
            label = int(v // 1000) if rng.random() > 0.1 else int(rng.choice(CLASSES))
            lines.append((f"masks/{key}_{n}.png", mask, label, round(float(rng.random()), 4)))
        for n in range(2):  # false positives
            mask = np.zeros(ids.shape, bool)
            y, x = rng.integers(0, ids.shape[0] - 30), rng.integers(0, ids.shape[1] - 30)
            mask[y:y + rng.integers(5, 30), x:x + rng.integers(5, 30)] = True
            lines.append((f"masks/{key}_fp{n}.png", mask, int(rng.choice(CLASSES)),
                          round(float(rng.random()), 4)))
        for name, mask, _, _ in lines:
            write_png(out / key.split("_")[0] / name, mask.astype(np.uint8) * 255)
        (out / key.split("_")[0]).mkdir(parents=True, exist_ok=True)
        (out / key.split("_")[0] / f"{key}_pred.txt").write_text(
            "".join(f"{name} {label} {score}\n" for name, _, label, score in lines))


def reference_stats(gt_root: Path, pred_root: Path, tmp: Path) -> np.ndarray:
    """COCO JSON written from the PNGs with independent code, then pycocotools on the files."""
    images, anns, dets = [], [], []
    for img_id, path in enumerate(sorted(gt_root.rglob("*_instanceIds.png")), 1):
        ids = np.asarray(Image.open(path)).astype(np.int64)
        key = "_".join(path.name.split("_")[:3])
        images.append({"id": img_id, "height": ids.shape[0], "width": ids.shape[1]})
        for v in np.unique(ids):
            label = v // 1000 if v >= 1000 else v
            if label not in CLASSES:
                continue
            m = np.asfortranarray((ids == v).astype(np.uint8))
            rle = mask_utils.encode(m)
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": int(label),
                         "iscrowd": int(v < 1000), "area": float(m.sum()),
                         "segmentation": {"size": rle["size"],
                                          "counts": rle["counts"].decode()}})
        listing = next(pred_root.rglob(f"{key}*.txt"))
        for line in listing.read_text().splitlines():
            name, label, score = line.split()
            m = np.asfortranarray((np.asarray(Image.open(listing.parent / name)) > 0)
                                  .astype(np.uint8))
            rle = mask_utils.encode(m)
            dets.append({"image_id": img_id, "category_id": int(label), "score": float(score),
                         "segmentation": {"size": rle["size"],
                                          "counts": rle["counts"].decode()}})
    (tmp / "gt.json").write_text(json.dumps({
        "images": images, "annotations": anns,
        "categories": [{"id": c, "name": str(c)} for c in CLASSES]}))
    (tmp / "dt.json").write_text(json.dumps(dets))
    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(str(tmp / "gt.json"))
        ev = COCOeval(cg, cg.loadRes(str(tmp / "dt.json")), iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.array([np.nan if s == -1 else s for s in ev.stats])


@pytest.fixture(scope="module")
def preds(gt_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cs_instance") / "results"
    make_predictions(gt_root, out)
    return out


def test_png_path_equals_json_path(gt_root: Path, preds: Path, tmp_path: Path) -> None:
    want = reference_stats(gt_root, preds, tmp_path)
    for jobs, gt in ((1, gt_root), (2, gt_root.parent), (1, gt_root / "val")):
        r = evaluate(preds, gt, "cityscapes", task="instance", jobs=jobs, ap="coco")
        assert r.task == "instance" and r.format == "cityscapes" and r.num_images == 12
        np.testing.assert_allclose(r.stats, want, rtol=0, atol=1e-12)
    assert 0.2 < r.metrics["AP"] < 0.9  # the perturbations leave something to measure
    names = {row["name"] for row in r.per_class()}
    assert names == {"person", "rider", "car", "truck", "bus", "train", "motorcycle", "bicycle"}


def test_png_path_faster_backend(gt_root: Path, preds: Path) -> None:
    pytest.importorskip("faster_coco_eval", reason="the [fast] extra is not installed")
    a = evaluate(preds, gt_root, "cityscapes", task="instance", jobs=1, ap="coco")
    f = evaluate(preds, gt_root, "cityscapes", task="instance", backend="faster", jobs=1,
                 ap="coco")
    np.testing.assert_allclose(f.stats, a.stats, rtol=0, atol=1e-12)


def test_group_regions_are_crowd(gt_root: Path) -> None:
    path = next(gt_root.rglob("*_instanceIds.png"))
    ids = np.asarray(Image.open(path))
    anns = annotations_from_instance_ids(ids, 1, CLASSES)
    crowd = {a["category_id"] for a in anns if a["iscrowd"]}
    groups = {int(v) for v in np.unique(ids) if v < 1000 and v in CLASSES}
    assert crowd == groups
    assert sum(not a["iscrowd"] for a in anns) == sum(
        1 for v in np.unique(ids) if v >= 1000 and v // 1000 in CLASSES)
    for a in anns:
        v = a["category_id"] if a["iscrowd"] else None
        m = mask_utils.decode({"size": a["segmentation"]["size"],
                               "counts": a["segmentation"]["counts"].encode()})
        assert a["area"] == m.sum()
        if v is not None:
            assert (m == (ids == v)).all()


def test_masks_api_matches_encode() -> None:
    rng = np.random.default_rng(0)
    masks = rng.random((3, 9, 7)) < 0.4
    out = results_from_masks(masks, [1, 2, 1], [0.9, 0.5, 0.1], image_id=5)
    for m, r in zip(masks, out, strict=True):
        assert mask_utils.decode({"size": r["segmentation"]["size"],
                                  "counts": r["segmentation"]["counts"].encode()}).tolist() \
            == m.astype(np.uint8).tolist()
    with pytest.raises(ValueError):
        results_from_masks(masks, [1, 2], [0.9, 0.5, 0.1], image_id=5)


def _copy(preds: Path, tmp_path: Path) -> Path:
    out = tmp_path / "results"
    shutil.copytree(preds, out)
    return out


def first_list(root: Path) -> Path:
    return sorted(root.rglob("*.txt"))[0]


def test_bad_predictions(gt_root: Path, preds: Path, tmp_path: Path) -> None:
    def error(pred: Path, **kw) -> str:
        with pytest.raises(errors.SegevalError) as info:
            evaluate(pred, gt_root, "cityscapes", task="instance", jobs=1, ap="coco", **kw)
        assert "\n" not in str(info.value)
        return str(info.value)

    p = _copy(preds, tmp_path)
    listing = first_list(p)
    lines = listing.read_text().splitlines()
    listing.write_text("\n".join([lines[0], "masks/x.png 7 0.5", *lines[1:]]))
    assert error(p).startswith(f"{listing}:2: label id 7 is not an evaluated instance class")
    listing.write_text("\n".join([lines[0], "masks/x.png 26", *lines[1:]]))
    assert error(p).startswith(f"{listing}:2: expected '<mask.png> <label id> <confidence>'")
    listing.write_text("\n".join(lines))
    mask = listing.parent / lines[0].split()[0]
    write_png(mask, np.ones((10, 12), np.uint8))
    assert error(p) == (f"{mask}: mask of size 10x12 (height x width) for "
                        f"{listing.name[:-9]} of size 256x512")
    listing.unlink()
    msg = error(p)
    assert "no prediction list for 1 of 12" in msg and "--missing zero" in msg
    r = evaluate(p, gt_root, "cityscapes", task="instance", jobs=1, missing="zero", ap="coco")
    assert r.num_images == 12
    with pytest.raises(errors.UsageError):
        evaluate(p, gt_root, "cityscapes", task="instance", per_image=True)
    with pytest.raises(errors.UsageError, match="num_classes: not an option"):
        evaluate(p, gt_root, "cityscapes", task="instance", num_classes=3)
