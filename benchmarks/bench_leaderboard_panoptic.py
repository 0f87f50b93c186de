#!/usr/bin/env python3
"""Panoptic leaderboard speed: many COCO-panoptic submissions against one ground truth, as ratios.

Data: the shared bench's COCO-panoptic generator (``/work/shared/bench/make_data.py
--only coco_panoptic``: 640x480 images, ~28 segments each), ``--images`` of them, and
``--submissions`` submissions made from its predictions: submission ``s`` relabels a seeded
``s``-dependent share of the predicted segments to another category (JSON only, so every
submission has its own numbers and the same decoding work). Each submission is a folder holding
``panoptic_pred.json`` and ``panoptic_pred/`` (panopticapi's layout). Cases, in interleaved
rounds (medians):

* ``anchor``      -- the reference (cityscapesScripts' copy of panopticapi's evaluation:
  JSON loading, pairing, ``pq_compute_single_core``, ``average_pq``) once per submission,
  1 process: the perf anchor "PQ: panopticapi, 1 process" looped by an organiser.
* ``score-loop``  -- ``segeval.evaluate(..., "coco-panoptic")`` once per submission, ``--jobs``.
* ``leaderboard`` -- ``run_leaderboard`` without a cache, ``--jobs``: ground truth decoded once,
  every submission scored, 2000 bootstrap resamples, ranking (no reports).
* ``cached``      -- the same leaderboard with a warm result cache (only hashing).

Every case must give each submission the reference's PQ (to 1e-12) before anything is timed.
Prints ms per (submission, image) pair and the ratios to ``anchor`` and ``score-loop``.

    python benchmarks/bench_leaderboard_panoptic.py [--images 50] [--submissions 6] [--jobs 2]
"""

from __future__ import annotations

import contextlib
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _leaderboard_harness import arguments, check_and_time, print_table, shared_data

import segeval
from segeval.leaderboard import run_leaderboard


def make_data(root: Path, images: int, submissions: int, make_data_py: Path) -> None:
    base = shared_data(make_data_py, root / "gen", "coco_panoptic", images)
    shutil.move(str(base / "panoptic_val.json"), root / "gt.json")
    shutil.move(str(base / "panoptic_val"), root / "gt")
    doc = json.loads((base / "panoptic_pred.json").read_text())
    cats = [c["id"] for c in json.loads((root / "gt.json").read_text())["categories"]]
    for s in range(submissions):
        rng = np.random.default_rng(s)
        sub = json.loads(json.dumps(doc))
        for ann in sub["annotations"]:
            for seg in ann["segments_info"]:
                if rng.random() < 0.05 * s:
                    seg["category_id"] = int(rng.choice(cats))
        folder = root / "subs" / f"team{s:02d}"
        folder.mkdir(parents=True)
        (folder / "panoptic_pred.json").write_text(json.dumps(sub))
        shutil.copytree(base / "panoptic_pred", folder / "panoptic_pred")
    shutil.rmtree(root / "gen")


def reference_pq(gt_json: Path, pred_json: Path) -> float:
    from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs

    if not hasattr(np, "in1d"):  # removed in NumPy 2.4; the reference still calls it
        np.in1d = np.isin
    with open(gt_json) as f:
        gt = json.load(f)
    with open(pred_json) as f:
        pred = json.load(f)
    cats = {c["id"]: c for c in gt["categories"]}
    by_id = {a["image_id"]: a for a in pred["annotations"]}
    pairs = [(a, by_id[a["image_id"]]) for a in gt["annotations"]]
    with contextlib.redirect_stdout(io.StringIO()):
        stat = cs.pq_compute_single_core(0, pairs, str(gt_json.with_suffix("")),
                                         str(pred_json.with_suffix("")), cats)
        return float(cs.average_pq(stat, cats)["All"]["pq"])


def anchor_loop(root: Path) -> dict[str, float]:
    return {sub.name: reference_pq(root / "gt.json", sub / "panoptic_pred.json")
            for sub in sorted((root / "subs").iterdir())}


def score_loop(root: Path, jobs: int) -> dict[str, float]:
    return {sub.name: float(segeval.evaluate(sub / "panoptic_pred.json", root / "gt.json",
                                             "coco-panoptic", jobs=jobs).pq)
            for sub in sorted((root / "subs").iterdir())}


def leaderboard(root: Path, jobs: int, cache: Path | None) -> dict[str, float]:
    board = run_leaderboard(root / "gt.json", root / "subs", "coco-panoptic", jobs=jobs,
                            cache=cache)
    return {e["submission"]: e["metrics"]["pq"] for e in board.ranked()}


def main(argv: list[str] | None = None) -> None:
    ap = arguments(__doc__.split("\n")[0], 50, 6, generator=True)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        if not (root / "gt.json").exists():
            t = time.perf_counter()
            make_data(root, args.images, args.submissions, args.make_data)
            print(f"generated {args.images} images x {args.submissions} submissions "
                  f"in {time.perf_counter() - t:.1f} s")
        images = len(json.loads((root / "gt.json").read_text())["annotations"])
        subs = len(list((root / "subs").iterdir()))
        cache = Path(tmp) / "cache.sqlite"
        cases = {
            "anchor": lambda: anchor_loop(root),
            "score-loop": lambda: score_loop(root, args.jobs),
            "leaderboard": lambda: leaderboard(root, args.jobs, None),
            "cached": lambda: leaderboard(root, args.jobs, cache),
        }
        med = check_and_time(cases, args.repeat)
    pairs = images * subs
    print(f"{images} ground-truth images 640x480, {subs} submissions ({pairs} pairs), "
          f"--jobs {args.jobs}, median of {args.repeat} rounds; PQ equal to the reference's "
          f"(<= 1e-12) in every case")
    print_table(med, pairs, "ms/pair")


if __name__ == "__main__":
    main()
