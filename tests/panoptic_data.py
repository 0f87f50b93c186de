"""Panoptic test data: random image sets, COCO-panoptic files on disk, and the independent
reference (cityscapesScripts' copy of the COCO panoptic evaluation, run on the same files)."""

from __future__ import annotations

import contextlib
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CATEGORIES = [
    {"id": 1, "name": "person", "isthing": 1},
    {"id": 2, "name": "car", "isthing": 1},
    {"id": 7, "name": "road", "isthing": 0},
    {"id": 9, "name": "sky", "isthing": 0},
]


@dataclass
class PanopticImage:
    """One image: id maps (0 = VOID) and COCO ``segments_info`` lists."""

    gt: np.ndarray
    pred: np.ndarray
    gt_segments: list[dict]
    pred_segments: list[dict]


def gt_info(ids: np.ndarray, cats: dict[int, int], crowd: set[int] = frozenset(),
            area: dict[int, int] | None = None) -> list[dict]:
    """``segments_info`` of a ground-truth map: areas counted from the map unless given."""
    out = []
    for sid, cid in cats.items():
        a = int((ids == sid).sum()) if area is None or sid not in area else area[sid]
        out.append({"id": sid, "category_id": cid, "iscrowd": int(sid in crowd), "area": a})
    return out


def pred_info(cats: dict[int, int]) -> list[dict]:
    return [{"id": sid, "category_id": cid} for sid, cid in cats.items()]


def random_image(rng: np.random.Generator, categories: list[dict] = CATEGORIES) -> PanopticImage:
    """A small blocky ground truth with VOID and crowd, and a perturbed, relabelled prediction
    (merges, splits, category swaps, spurious segments, VOID holes)."""
    h, w = int(rng.integers(3, 10)), int(rng.integers(3, 10))
    ng = int(rng.integers(0, 6))
    a, b = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    coarse = rng.integers(0, ng + 1, (a, b))
    seg = coarse[(np.arange(h) * a // h)[:, None], (np.arange(w) * b // w)[None, :]]
    noise = rng.random((h, w)) < 0.15
    seg[noise] = rng.integers(0, ng + 1, int(noise.sum()))
    cat_ids = [c["id"] for c in categories]
    big = rng.random() < 0.5
    gt_ids = rng.choice(np.arange(1, (1 << 24) if big else 60), ng, replace=False)
    gt = np.where(seg > 0, gt_ids[np.maximum(seg - 1, 0)] if ng else 0, 0).astype(np.int64)
    gt_cat = {int(gt_ids[k]): int(rng.choice(cat_ids)) for k in range(ng)
              if (seg == k + 1).any()}
    crowd = {s for s in gt_cat if rng.random() < 0.2}
    # prediction: gt segments with noise, merges and spurious blobs
    pseg = seg.copy()
    flip = rng.random((h, w)) < 0.2
    pseg[flip] = rng.integers(0, ng + 3, int(flip.sum()))
    if rng.random() < 0.3 and ng >= 2:
        pseg[pseg == 2] = 1
    pred_ids = rng.choice(np.arange(1, (1 << 24) if big else 60), ng + 3, replace=False)
    pred = np.where(pseg > 0, pred_ids[np.maximum(pseg - 1, 0)], 0).astype(np.int64)
    pred_cat = {}
    for k in range(ng + 3):
        if not (pseg == k + 1).any():
            continue
        under = gt[pseg == k + 1]
        under = under[under > 0]
        guess = gt_cat.get(int(np.bincount(under).argmax())) if under.size else None
        cid = guess if guess is not None and rng.random() < 0.8 else int(rng.choice(cat_ids))
        pred_cat[int(pred_ids[k])] = cid
    return PanopticImage(gt, pred, gt_info(gt, gt_cat, crowd), pred_info(pred_cat))


def id2rgb(ids: np.ndarray) -> np.ndarray:
    ids = ids.astype(np.uint32)
    return np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)


def write_set(root: Path, images: list[PanopticImage], categories: list[dict] = CATEGORIES,
              image_ids: list | None = None) -> tuple[Path, Path]:
    """Write ``root/gt.json`` + ``root/gt/`` and ``root/pred.json`` + ``root/pred/``."""
    image_ids = image_ids if image_ids is not None else list(range(1, len(images) + 1))
    gt_anns, pred_anns = [], []
    for image_id, im in zip(image_ids, images, strict=True):
        name = f"{image_id}.png"
        for folder, ids in (("gt", im.gt), ("pred", im.pred)):
            (root / folder).mkdir(parents=True, exist_ok=True)
            Image.fromarray(id2rgb(ids), "RGB").save(root / folder / name)
        gt_anns.append({"image_id": image_id, "file_name": name, "segments_info": im.gt_segments})
        pred_anns.append({"image_id": image_id, "file_name": name,
                          "segments_info": im.pred_segments})
    gt_doc = {"images": [{"id": i, "file_name": f"{i}.png"} for i in image_ids],
              "annotations": gt_anns, "categories": categories}
    (root / "gt.json").write_text(json.dumps(gt_doc))
    (root / "pred.json").write_text(json.dumps({"annotations": pred_anns}))
    return root / "pred.json", root / "gt.json"


def reference_module():
    """cityscapesScripts' panoptic evaluation (a copy of panopticapi's), or skip."""
    if not hasattr(np, "in1d"):  # removed in NumPy 2.4; the reference still calls it
        np.in1d = np.isin
    return pytest.importorskip("cityscapesscripts.evaluation.evalPanopticSemanticLabeling",
                               reason="the reference needs the cityscapesscripts package "
                                      "(pip install -e '.[test]')")


@dataclass
class Reference:
    """The reference's per-category counts and its All / Things / Stuff averages."""

    counts: dict[int, tuple[int, int, int, float]]  # category id -> tp, fp, fn, iou
    averages: dict[str, dict | None]  # None where the reference divides by zero


def reference(root: Path, images: list[PanopticImage],
              categories: list[dict] = CATEGORIES) -> Reference:
    """Write the images and score them with the reference, single core, quietly."""
    cs = reference_module()
    write_set(root, images, categories)
    gt_doc = json.loads((root / "gt.json").read_text())
    pred_doc = json.loads((root / "pred.json").read_text())
    pairs = list(zip(gt_doc["annotations"], pred_doc["annotations"], strict=True))
    cats = {c["id"]: c for c in categories}
    with contextlib.redirect_stdout(io.StringIO()):
        stat = cs.pq_compute_single_core(0, pairs, str(root / "gt"), str(root / "pred"), cats)
    counts = {cid: (stat[cid].tp, stat[cid].fp, stat[cid].fn, stat[cid].iou) for cid in cats}
    averages: dict[str, dict | None] = {}
    for name, isthing in (("All", None), ("Things", True), ("Stuff", False)):
        try:
            averages[name] = stat.pq_average(cats, isthing)[0]
        except ZeroDivisionError:
            averages[name] = None
    return Reference(counts, averages)


def mask_ious(images: list[PanopticImage], categories: list[dict] = CATEGORIES) -> dict:
    """Per category, the list of matched IoUs, by brute force over boolean masks."""
    out: dict[int, list[float]] = {c["id"]: [] for c in categories}
    for im in images:
        void = im.gt == 0
        for g in im.gt_segments:
            if g["iscrowd"]:
                continue
            gm = im.gt == g["id"]
            for p in im.pred_segments:
                if p["category_id"] != g["category_id"]:
                    continue
                pm = im.pred == p["id"]
                inter = int((gm & pm).sum())
                union = g["area"] + int(pm.sum()) - inter - int((pm & void).sum())
                if inter and inter / union > 0.5:
                    out[g["category_id"]].append(inter / union)
    return out


def fsum_ious(images: list[PanopticImage], categories: list[dict] = CATEGORIES) -> list[float]:
    ious = mask_ious(images, categories)
    return [math.fsum(ious[c["id"]]) for c in categories]
