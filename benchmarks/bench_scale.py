#!/usr/bin/env python3
"""Driver memory and time of the process pool, threads and Dask, for 500 and 2,000 pairs.

``--task semantic`` (default) generates (once) 2,000 pairs of 1024x512 8-bit label PNGs with 19
classes and 255 holes into ``--data`` (``gt/`` and ``pred/``, plus ``n500/`` holding hard links
to the first 500 pairs: segeval refuses symbolic links in a prediction tree). ``--task panoptic``
generates 2,000 COCO-panoptic images of 640x480 (RGB id PNGs, ~25 segments each, things and
stuff, a JSON per side; ``n500/`` holds the first 500).
Each (engine, size) case runs in a fresh interpreter, which reports its wall time and the peak
resident memory of that *driver* process (``ru_maxrss`` of the process itself; workers are not
counted: they are where the pixels are). Flat driver memory from 500 to 2,000 images shows that
nothing per image accumulates there but the small statistics (and, for panoptic, the JSON).

The engines: ``local`` (the supervised process pool, the default of ``segeval score``),
``threads`` (``scheduler="threads"``: threads of the driver process, the compiled kernels
releasing the GIL) and ``dask-local``. For threads, the driver's peak RSS includes the
pixels being scored.

    python benchmarks/bench_scale.py --data /tmp/scale [--task semantic|panoptic] [--jobs 2]
        [--engines local threads dask-local]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

C, H, W, N = 19, 512, 1024, 2000


def make_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A blocky scene: rectangles of classes, a void band, and a prediction with errors."""
    gt = np.full((H, W), rng.integers(0, C), np.uint8)
    for _ in range(25):
        y, x = rng.integers(0, H), rng.integers(0, W)
        h, w = rng.integers(20, 200), rng.integers(20, 300)
        gt[y:y + h, x:x + w] = rng.integers(0, C)
    pred = np.roll(gt, (int(rng.integers(-6, 7)), int(rng.integers(-6, 7))), axis=(0, 1))
    for _ in range(5):
        y, x = rng.integers(0, H), rng.integers(0, W)
        pred[y:y + 40, x:x + 60] = rng.integers(0, C)
    gt[H - 30:] = 255
    return gt, pred


def make_data(root: Path) -> None:
    if (root / "n500").is_dir():
        return
    rng = np.random.default_rng(0)
    for sub in ("gt", "pred", "n500/gt", "n500/pred"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(N):
        gt, pred = make_pair(rng)
        name = f"im{i:05d}.png"
        Image.fromarray(gt).save(root / "gt" / name)
        Image.fromarray(pred).save(root / "pred" / name)
        if i < 500:
            for sub in ("gt", "pred"):
                os.link(root / sub / name, root / "n500" / sub / name)


PH, PW = 480, 640
CATEGORIES = [{"id": i + 1, "name": f"c{i + 1}", "isthing": int(i < 10)} for i in range(20)]


def panoptic_image(rng: np.random.Generator) -> tuple[np.ndarray, list[dict]]:
    """Segment ids (uint32, 0 = VOID) and segments_info of one generated panoptic image."""
    ids = np.zeros((PH, PW), np.uint32)
    info = []
    for k in range(25):
        seg_id = 1 + k * 40503  # spread over R, G and B
        y, x = rng.integers(0, PH - 20), rng.integers(0, PW - 20)
        ids[y:y + rng.integers(20, 200), x:x + rng.integers(20, 300)] = seg_id
        info.append({"id": seg_id, "category_id": int(rng.integers(1, 21)), "iscrowd": 0})
    present = np.unique(ids)
    areas = dict(zip(*np.unique(ids, return_counts=True), strict=True))
    return ids, [dict(s, area=int(areas[s["id"]])) for s in info if s["id"] in present]


def write_rgb(path: Path, ids: np.ndarray) -> None:
    rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], axis=-1).astype(np.uint8)
    Image.fromarray(rgb).save(path)


def make_panoptic(root: Path) -> None:
    if (root / "n500" / "gt.json").is_file():
        return
    rng = np.random.default_rng(0)
    docs: dict[str, dict] = {}
    for side in ("gt", "pred"):
        (root / side).mkdir(parents=True, exist_ok=True)
        docs[side] = {"images": [], "annotations": [], "categories": CATEGORIES}
    for i in range(N):
        ids, info = panoptic_image(rng)
        pred = np.roll(ids, (int(rng.integers(-8, 9)), int(rng.integers(-8, 9))), axis=(0, 1))
        name = f"im{i:05d}.png"
        write_rgb(root / "gt" / name, ids)
        write_rgb(root / "pred" / name, pred)
        pred_info = [{"id": s["id"], "category_id": s["category_id"]} for s in info
                     if (pred == s["id"]).any()]
        for side, segs in (("gt", info), ("pred", pred_info)):
            docs[side]["images"].append({"id": i, "file_name": name.replace(".png", ".jpg"),
                                         "height": PH, "width": PW})
            docs[side]["annotations"].append({"image_id": i, "file_name": name,
                                              "segments_info": segs})
    (root / "n500").mkdir(exist_ok=True)
    for side in ("gt", "pred"):
        (root / f"{side}.json").write_text(json.dumps(docs[side]))
        small = dict(docs[side], images=docs[side]["images"][:500],
                     annotations=docs[side]["annotations"][:500])
        (root / "n500" / f"{side}.json").write_text(json.dumps(small))
        (root / "n500" / side).mkdir(exist_ok=True)
        for image in small["annotations"]:
            os.link(root / side / image["file_name"], root / "n500" / side / image["file_name"])


def child(gt: str, pred: str, scheduler: str, jobs: int, task: str) -> None:
    """One case in this (fresh) process: print its time and its own peak RSS as JSON."""
    import segeval

    t = time.perf_counter()
    sched = None if scheduler == "local" else scheduler
    if task == "panoptic":
        result = segeval.evaluate(f"{pred}.json", f"{gt}.json", "coco-panoptic", jobs=jobs,
                                  scheduler=sched)
        score = result.to_dict()["metrics"]["pq"]
    else:
        result = segeval.evaluate(pred, gt, "folder", num_classes=C, jobs=jobs, scheduler=sched)
        score = float(result.miou)
    seconds = time.perf_counter() - t
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rss_mib": rss_kib / 1024,
                      "score": score, "images": result.num_images}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=["local", "threads", "dask-local"])
    ap.add_argument("--task", choices=["semantic", "panoptic"], default="semantic")
    ap.add_argument("--child", nargs=3, metavar=("GT", "PRED", "SCHEDULER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, jobs=args.jobs, task=args.task)
        return
    t = time.perf_counter()
    (make_panoptic if args.task == "panoptic" else make_data)(args.data)
    print(f"data ready in {args.data} ({time.perf_counter() - t:.0f} s)")
    rows = []
    metric = "PQ" if args.task == "panoptic" else "mIoU"
    for engine in args.engines:
        for n, root in ((500, args.data / "n500"), (N, args.data)):
            out = subprocess.run(
                [sys.executable, __file__, "--data", str(args.data), "--jobs", str(args.jobs),
                 "--task", args.task, "--child", str(root / "gt"), str(root / "pred"), engine],
                capture_output=True, text=True, check=True)
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            assert rec["images"] == n
            rows.append((engine, n, rec))
            print(f"{engine:>10}  {n:>5} pairs  {rec['seconds']:7.2f} s  "
                  f"{rec['seconds'] / n * 1e3:6.2f} ms/pair  driver peak RSS "
                  f"{rec['rss_mib']:7.1f} MiB  {metric} {rec['score']:.6f}", flush=True)
    print()
    for engine in args.engines:
        small, big = (rec for e, _, rec in rows if e == engine)
        print(f"{engine:>10}: driver RSS 2000/500 pairs = {big['rss_mib'] / small['rss_mib']:.3f}"
              f"; time per pair 2000/500 = "
              f"{(big['seconds'] / N) / (small['seconds'] / 500):.2f}")
    scores = {rec["score"] for _, n, rec in rows if n == N}
    print(f"identical {metric} across engines on 2000 images: {len(scores) == 1}")


if __name__ == "__main__":
    main()
