#!/usr/bin/env python3
"""COCO mask AP speed: segeval's coco_mask_ap (both backends) against pycocotools itself.

On one COCO-instances data set (ground-truth polygons plus a few crowd RLEs, detections as
compressed RLE with scores), files in and the 12 numbers out, this times in interleaved rounds
(medians of ``--repeat``):

* ``pycocotools``           -- ``COCO(gt)``, ``loadRes(dt)``, ``COCOeval(segm)`` evaluate /
  accumulate / summarize: the official tool, as the performance anchor times it
* ``segeval pycocotools``   -- ``coco_mask_ap(gt, dt)``: the same tool plus segeval's input
  checks (every RLE decoded and checked) and naming
* ``faster-coco-eval 1 thr`` -- faster-coco-eval's own ``COCOeval_faster``, one RLE thread
* ``segeval faster 1 thr``  -- ``coco_mask_ap(gt, dt, backend="faster", jobs=1)``
* ``segeval faster``        -- ``coco_mask_ap(gt, dt, backend="faster")`` (threads = cores)

All must give the same 12 numbers (the largest difference to pycocotools is printed) before
any time is reported. Ratios are to ``pycocotools`` in the same run; the anchor in
``perf-anchors.md`` is pycocotools 6.74 s for 500 images (faster-coco-eval 1 thread 0.25x).

    python benchmarks/bench_coco.py [--data DIR | --images 500] [--repeat 3]

``--data`` is a folder with ``instances_val.json`` and ``detections_segm.json`` (the layout of
the shared ``bench/make_data.py --only coco_instances``); without it a data set is generated
here (``--images`` images of 640x480, ~10 objects and ~50 detections each, seed 0).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from segeval.core.instance import coco_mask_ap

H, W = 480, 640


def _polygon(rng: np.random.Generator) -> list[float]:
    cy, cx = rng.uniform(20, H - 20), rng.uniform(20, W - 20)
    r = rng.uniform(6, 120) if rng.random() < 0.7 else rng.uniform(3, 20)
    k = int(rng.integers(5, 13))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    rad = r * rng.uniform(0.6, 1.0, k)
    xs = np.clip(cx + 1.4 * rad * np.cos(ang), 0, W - 1)
    ys = np.clip(cy + rad * np.sin(ang), 0, H - 1)
    return np.stack([xs, ys], 1).ravel().round(2).tolist()


def generate(n: int, folder: Path, seed: int = 0) -> tuple[Path, Path]:
    """``n`` images with ~10 polygon objects (1 crowd RLE in 10 images) and ~50 detections."""
    from pycocotools import mask as mask_utils

    rng = np.random.default_rng(seed)
    images, anns, dets = [], [], []
    cats = [{"id": c, "name": f"class{c}"} for c in range(1, 11)]
    for img_id in range(1, n + 1):
        images.append({"id": img_id, "height": H, "width": W})
        for _ in range(int(rng.integers(7, 14))):
            poly = _polygon(rng)
            rle = mask_utils.merge(mask_utils.frPyObjects([poly], H, W))
            cat = int(rng.integers(1, 11))
            crowd = rng.random() < 0.01
            seg = {"size": [H, W], "counts": rle["counts"].decode()} if crowd else [poly]
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": cat,
                         "iscrowd": int(crowd), "area": float(mask_utils.area(rle)),
                         "segmentation": seg})
            mask = mask_utils.decode(rle)
            for _ in range(int(rng.integers(2, 6))):  # detections near the object
                moved = np.roll(mask, tuple(rng.integers(-6, 7, 2)), axis=(0, 1))
                label = cat if rng.random() < 0.85 else int(rng.integers(1, 11))
                d = mask_utils.encode(np.asfortranarray(moved))
                dets.append({"image_id": img_id, "category_id": label,
                             "score": round(float(rng.random()), 5),
                             "segmentation": {"size": [H, W], "counts": d["counts"].decode()}})
        for _ in range(int(rng.integers(5, 15))):  # false positives
            rle = mask_utils.merge(mask_utils.frPyObjects([_polygon(rng)], H, W))
            dets.append({"image_id": img_id, "category_id": int(rng.integers(1, 11)),
                         "score": round(float(rng.random()), 5),
                         "segmentation": {"size": [H, W], "counts": rle["counts"].decode()}})
    gt, dt = folder / "instances_val.json", folder / "detections_segm.json"
    gt.write_text(json.dumps({"images": images, "annotations": anns, "categories": cats}))
    dt.write_text(json.dumps(dets))
    return gt, dt


def run_pycocotools(gt: Path, dt: Path) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        cg = COCO(str(gt))
        ev = COCOeval(cg, cg.loadRes(str(dt)), iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.array(ev.stats, dtype=float)


def run_faster(gt: Path, dt: Path) -> np.ndarray:
    from faster_coco_eval import COCO, COCOeval_faster

    def quiet(*args: object, **kwargs: object) -> None:
        return None

    cg = COCO(str(gt), print_function=quiet)
    ev = COCOeval_faster(cg, cg.loadRes(str(dt)), iouType="segm", print_function=quiet,
                         rle_iou_max_workers=1)
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    return np.array(ev.stats[:12], dtype=float)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, help="folder with instances_val.json and "
                    "detections_segm.json")
    ap.add_argument("--images", type=int, default=500, help="images to generate (no --data)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", type=Path, help="also write the timings here")
    a = ap.parse_args()
    tmp = tempfile.TemporaryDirectory(prefix="segeval-bench-coco-")
    if a.data:
        gt, dt = a.data / "instances_val.json", a.data / "detections_segm.json"
    else:
        t0 = time.perf_counter()
        gt, dt = generate(a.images, Path(tmp.name))
        print(f"generated {a.images} images in {time.perf_counter() - t0:.1f} s")
    g = json.loads(gt.read_text())
    n_img, n_gt, n_dt = len(g["images"]), len(g["annotations"]), len(json.loads(dt.read_text()))
    del g

    def seg(**kw: object) -> Callable[[], np.ndarray]:
        return lambda: coco_mask_ap(gt, dt, **kw).stats

    cases: dict[str, Callable[[], np.ndarray]] = {
        "pycocotools": lambda: run_pycocotools(gt, dt),
        "segeval pycocotools": seg(),
    }
    try:
        import faster_coco_eval

        cases["faster-coco-eval 1 thr"] = lambda: run_faster(gt, dt)
        cases["segeval faster 1 thr"] = seg(backend="faster", jobs=1)
        cases["segeval faster"] = seg(backend="faster")
        faster_version = faster_coco_eval.__version__
    except ImportError:
        faster_version = "not installed"
    import importlib.metadata as md

    print(f"{n_img} images, {n_gt / n_img:.1f} GT and {n_dt / n_img:.1f} detections per image; "
          f"pycocotools {md.version('pycocotools')}, faster-coco-eval "
          f"{faster_version}, numpy {np.__version__}, {os.cpu_count()} CPUs, "
          f"{platform.processor() or platform.machine()}")
    times: dict[str, list[float]] = {k: [] for k in cases}
    stats: dict[str, np.ndarray] = {}
    for _ in range(a.repeat):  # interleaved rounds
        for name, fn in cases.items():
            t0 = time.perf_counter()
            stats[name] = fn()
            times[name].append(time.perf_counter() - t0)
    ref = stats["pycocotools"]
    base = float(np.median(times["pycocotools"]))
    print(f"\n{'case':<24}{'median s':>10}{'ms/image':>10}{'x pycocotools':>15}"
          f"{'max |stat diff|':>17}")
    rows = []
    for name in cases:
        med = float(np.median(times[name]))
        diff = float(np.nanmax(np.abs(np.where(stats[name] == -1, np.nan, stats[name]) -
                                      np.where(ref == -1, np.nan, ref))))
        rows.append({"case": name, "median_s": med, "runs_s": times[name],
                     "ratio_vs_pycocotools": med / base, "max_abs_stat_diff": diff})
        print(f"{name:<24}{med:>10.3f}{med / n_img * 1e3:>10.2f}{med / base:>14.2f}x"
              f"{diff:>17.1e}")
    print(f"\nNote: ratios are to pycocotools on the same data in this run (anchor: pycocotools "
          f"6.74 s / 500 images = 1.0, faster-coco-eval 1 thread 0.25x). segeval pycocotools "
          f"= {rows[1]['ratio_vs_pycocotools']:.2f}x"
          + (f"; segeval --backend faster = {rows[-1]['ratio_vs_pycocotools']:.2f}x "
             f"({rows[-2]['ratio_vs_pycocotools']:.2f}x on 1 thread)" if len(rows) > 2 else ""))
    if a.json:
        a.json.write_text(json.dumps({"images": n_img, "rows": rows}, indent=2))
    tmp.cleanup()


if __name__ == "__main__":
    main()
