#!/usr/bin/env python3
"""Driver memory and time of the local engine and of Dask, for 500 and 2,000 image pairs.

Generates (once) 2,000 pairs of 1024x512 8-bit label PNGs with 19 classes and 255 holes into
``--data`` (``gt/`` and ``pred/``, plus ``n500/`` holding links to the first 500 pairs), then
evaluates each (engine, size) case in a fresh interpreter and reports its wall time and the peak
resident memory of that *driver* process (``ru_maxrss`` of the process itself; workers are not
counted: they are where the pixels are). Flat driver memory from 500 to 2,000 pairs shows that
nothing per image accumulates there but the small statistics.

    python benchmarks/bench_scale.py --data /tmp/scale [--jobs 2] [--engines local dask-local]
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
                os.symlink(root / sub / name, root / "n500" / sub / name)


def child(gt: str, pred: str, scheduler: str, jobs: int) -> None:
    """One case in this (fresh) process: print its time and its own peak RSS as JSON."""
    import segeval

    t = time.perf_counter()
    result = segeval.evaluate(pred, gt, "folder", num_classes=C, jobs=jobs,
                              scheduler=None if scheduler == "local" else scheduler)
    seconds = time.perf_counter() - t
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    print(json.dumps({"seconds": seconds, "rss_mib": rss_kib / 1024,
                      "miou": float(result.miou), "images": result.num_images}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--engines", nargs="+", default=["local", "dask-local"])
    ap.add_argument("--child", nargs=3, metavar=("GT", "PRED", "SCHEDULER"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(*args.child, jobs=args.jobs)
        return
    t = time.perf_counter()
    make_data(args.data)
    print(f"data ready in {args.data} ({time.perf_counter() - t:.0f} s)")
    rows = []
    for engine in args.engines:
        for n, root in ((500, args.data / "n500"), (N, args.data)):
            out = subprocess.run(
                [sys.executable, __file__, "--data", str(args.data), "--jobs", str(args.jobs),
                 "--child", str(root / "gt"), str(root / "pred"), engine],
                capture_output=True, text=True, check=True)
            rec = json.loads(out.stdout.strip().splitlines()[-1])
            assert rec["images"] == n
            rows.append((engine, n, rec))
            print(f"{engine:>10}  {n:>5} pairs  {rec['seconds']:7.2f} s  "
                  f"{rec['seconds'] / n * 1e3:6.2f} ms/pair  driver peak RSS "
                  f"{rec['rss_mib']:7.1f} MiB  mIoU {rec['miou']:.6f}", flush=True)
    print()
    for engine in args.engines:
        small, big = (rec for e, _, rec in rows if e == engine)
        print(f"{engine:>10}: driver RSS 2000/500 pairs = {big['rss_mib'] / small['rss_mib']:.3f}"
              f"; time per pair 2000/500 = "
              f"{(big['seconds'] / N) / (small['seconds'] / 500):.2f}")
    mious = {round(rec["miou"], 12) for _, n, rec in rows if n == N}
    print(f"identical mIoU across engines on 2000 pairs: {len(mious) == 1}")


if __name__ == "__main__":
    main()
