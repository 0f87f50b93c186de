#!/usr/bin/env python3
"""Leaderboard speed: many submissions against one ground truth, in one run, as ratios.

Data (generated into a temporary folder, or ``--data``): ``--images`` street-scene-like
ground-truth label maps of 2048x1024 (19 classes, 255 ignore; the generator of
``bench_confusion.py``) and ``--submissions`` prediction folders, each the scene with shifted
boundaries and its own blobs of wrong classes. Cases, timed in interleaved rounds (medians):

* ``anchor``       -- the perf-anchors "ideal: Pillow decode + u16 bincount, 1 proc" recipe,
  looped over every (submission, image) pair: what an organiser's loop around the plain
  recipe costs (ground truth decoded once per submission), 1 process.
* ``score-loop``   -- ``segeval.evaluate`` once per submission (``segeval score`` in a loop),
  ``--jobs`` processes: the ground truth is decoded again for every submission.
* ``leaderboard``  -- ``run_leaderboard`` without a cache, ``--jobs`` processes: ground truth
  decoded once, every submission scored, 2000 bootstrap resamples, ranking (no reports).
* ``cached``       -- the same leaderboard again with a warm result cache (only hashing).

All cases must give the identical mIoU per submission before anything is timed. Prints ms per
(submission, image) pair and ratios to ``anchor`` and to ``score-loop``.

    python benchmarks/bench_leaderboard.py [--images 20] [--submissions 8] [--jobs 2]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _leaderboard_harness import arguments, check_and_time, print_table
from bench_confusion import IGNORE, C, _convex, realistic_pair

import segeval
from segeval.leaderboard import run_leaderboard


def make_data(root: Path, images: int, submissions: int) -> None:
    for i in range(images):
        gt, pred = realistic_pair(seed=i)
        Image.fromarray(gt).save(root / "gt" / f"img{i:03d}.png")
        for s in range(submissions):
            rng = np.random.default_rng(1000 * s + i)
            p = pred.copy()
            for _ in range(10 + 10 * s):  # later submissions are worse
                _convex(p, rng, int(rng.integers(0, C)), 5, 80)
            Image.fromarray(p).save(root / "subs" / f"team{s:02d}" / f"img{i:03d}.png")


def anchor_loop(root: Path) -> dict[str, float]:
    """The anchor recipe per pair: Pillow decode both, 65536-bin u16 bincount, sum."""
    out = {}
    gts = sorted((root / "gt").glob("*.png"))
    for sub in sorted((root / "subs").iterdir()):
        total = np.zeros((C, C), np.int64)
        for g in gts:
            gt = np.asarray(Image.open(g))
            pred = np.asarray(Image.open(sub / g.name))
            code = (gt.astype(np.uint16) << 8) | pred
            total += np.bincount(code.ravel(), minlength=65536).reshape(256, 256)[:C, :C]
        out[sub.name] = float(segeval.ConfusionMatrix(C, IGNORE, matrix=total).miou())
    return out


def score_loop(root: Path, jobs: int) -> dict[str, float]:
    return {sub.name: float(segeval.evaluate(sub, root / "gt", "folder", num_classes=C,
                                             jobs=jobs).miou)
            for sub in sorted((root / "subs").iterdir())}


def leaderboard(root: Path, jobs: int, cache: Path | None) -> dict[str, float]:
    board = run_leaderboard(root / "gt", root / "subs", "folder", num_classes=C, jobs=jobs,
                            cache=cache)
    return {e["submission"]: e["metrics"]["miou"] for e in board.ranked()}


def main(argv: list[str] | None = None) -> None:
    ap = arguments(__doc__.split("\n")[0], 20, 8)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        (root / "gt").mkdir(parents=True, exist_ok=True)
        for s in range(args.submissions):
            (root / "subs" / f"team{s:02d}").mkdir(parents=True, exist_ok=True)
        if not any((root / "gt").iterdir()):
            t = time.perf_counter()
            make_data(root, args.images, args.submissions)
            print(f"generated {args.images} images x {args.submissions} submissions "
                  f"in {time.perf_counter() - t:.1f} s")
        cache = Path(tmp) / "cache.sqlite"
        cases = {
            "anchor": lambda: anchor_loop(root),
            "score-loop": lambda: score_loop(root, args.jobs),
            "leaderboard": lambda: leaderboard(root, args.jobs, None),
            "cached": lambda: leaderboard(root, args.jobs, cache),
        }
        med = check_and_time(cases, args.repeat)
    pairs = args.images * args.submissions
    print(f"{args.images} ground-truth images 2048x1024, {args.submissions} submissions "
          f"({pairs} pairs), --jobs {args.jobs}, median of {args.repeat} rounds; identical mIoU "
          f"in every case")
    print_table(med, pairs, "ms/pair")


if __name__ == "__main__":
    main()
