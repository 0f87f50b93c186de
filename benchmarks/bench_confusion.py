#!/usr/bin/env python3
"""Confusion-matrix counting speed: segeval's kernels against a plain NumPy recipe and a floor.

On one 2048x1024 uint8 (ground truth, prediction) pair with 19 classes and 255 as the ignore
index, this times, in interleaved rounds on one pinned CPU and as medians:

* ``compiled``  -- ``count_pixels(pred, gt, 19, 255, kernel="compiled")`` (the C loop)
* ``reference`` -- ``count_pixels(pred, gt, 19, 255, kernel="reference")``
* ``recipe``    -- ``m = gt != 255; np.bincount(19 * gt[m].astype(np.int64) + pred[m], ...)``
* ``np.sum``    -- ``np.sum(gt) + np.sum(pred)``: one read of the same bytes, the memory floor

on two inputs: ``realistic`` (large constant polygons, ~9 % ignore, predictions = ground truth
with shifted boundaries and blobs of other classes) and ``random`` (i.i.d. classes, 10 % ignore).
All kernels must give the identical 19x19 matrix before anything is timed. The compiled
kernel's start-up (importing the extension module, then the first call) is measured once,
before the warm-up, and reported apart.

    python benchmarks/bench_confusion.py [--repeat 15] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable

import numpy as np

from segeval.core.kernels import count_pixels

C, IGNORE, H, W = 19, 255, 1024, 2048
CASES = ("compiled", "reference", "recipe", "np.sum")


def pin_one_cpu() -> int | None:
    """Pin this process to its first allowed CPU; return it (``None`` where unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def _convex(canvas: np.ndarray, rng: np.random.Generator, value: int, rmin: int, rmax: int) -> None:
    """Draw a random convex polygon: 3-8 vertices on an ellipse of radius ``rmin..rmax``."""
    cy, cx, r = rng.uniform(0, H), rng.uniform(0, W), rng.uniform(rmin, rmax)
    k = int(rng.integers(3, 9))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    vy = cy + r * rng.uniform(0.5, 1.0) * np.sin(ang)
    vx = cx + 2 * r * rng.uniform(0.5, 1.0) * np.cos(ang)
    y0, y1 = max(int(vy.min()), 0), min(int(vy.max()) + 1, canvas.shape[0])
    x0, x1 = max(int(vx.min()), 0), min(int(vx.max()) + 1, canvas.shape[1])
    if y0 >= y1 or x0 >= x1:
        return
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = np.ones(yy.shape, bool)
    for i in range(k):  # counter-clockwise vertices: inside is left of every edge
        ay, ax, by, bx = vy[i], vx[i], vy[(i + 1) % k], vx[(i + 1) % k]
        inside &= (bx - ax) * (yy - ay) - (by - ay) * (xx - ax) >= 0
    canvas[y0:y1, x0:x1][inside] = value


def _rect(canvas: np.ndarray, rng: np.random.Generator, value: int, hmax: int, wmax: int) -> None:
    y, x = int(rng.integers(0, H)), int(rng.integers(0, W))
    canvas[y : y + int(rng.integers(4, hmax)), x : x + int(rng.integers(4, wmax))] = value


def realistic_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A street-scene-like pair: bands, polygons and boxes; ignore holes in gt only."""
    rng = np.random.default_rng(seed)
    layout = np.empty((H, W), np.uint8)
    layout[: H * 2 // 5], layout[H * 2 // 5 : H * 3 // 5], layout[H * 3 // 5 :] = 10, 2, 0
    for _ in range(60):
        _convex(layout, rng, int(rng.integers(0, C)), 20, 200)
    for _ in range(40):
        _rect(layout, rng, int(rng.integers(11, C)), 200, 120)
    gt = layout.copy()
    gt[H - H // 16 :] = IGNORE  # ego-vehicle strip
    for _ in range(40):
        _convex(gt, rng, IGNORE, 5, 50)
    pred = np.roll(layout, (3, -4), axis=(0, 1))  # shifted boundaries
    for _ in range(40):
        _convex(pred, rng, int(rng.integers(0, C)), 5, 60)
    return gt, pred


def random_pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """I.i.d. classes in both maps; 10 % of gt set to the ignore index."""
    rng = np.random.default_rng(seed)
    gt = rng.integers(0, C, (H, W), dtype=np.uint8)
    gt[rng.random((H, W)) < 0.10] = IGNORE
    return gt, rng.integers(0, C, (H, W), dtype=np.uint8)


def recipe(gt: np.ndarray, pred: np.ndarray) -> np.ndarray:
    m = gt != IGNORE
    return np.bincount(C * gt[m].astype(np.int64) + pred[m], minlength=C * C).reshape(C, C)


def segeval_matrix(gt: np.ndarray, pred: np.ndarray, kernel: str) -> np.ndarray:
    counts = count_pixels(pred, gt, C, IGNORE, kernel=kernel)
    assert counts.bad_gt_count == 0 and counts.bad_pred_value is None
    assert not counts.table[:, C].any()
    return counts.table[:, :C]


def cases(gt: np.ndarray, pred: np.ndarray) -> dict[str, Callable[[], object]]:
    return {
        "compiled": lambda: count_pixels(pred, gt, C, IGNORE, kernel="compiled"),
        "reference": lambda: count_pixels(pred, gt, C, IGNORE, kernel="reference"),
        "recipe": lambda: recipe(gt, pred),
        "np.sum": lambda: np.sum(gt) + np.sum(pred),
    }


def time_interleaved(fns: dict[str, Callable[[], object]], repeat: int) -> dict[str, list[float]]:
    """``repeat`` rounds of A, B, C, D, ... after two untimed rounds; seconds per call."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for r in range(repeat + 2):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            dt = time.perf_counter() - t0
            if r >= 2:
                samples[name].append(dt)
    return samples


def startup_cost(gt: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """Seconds to import the compiled module, then for the first compiled call."""
    t0 = time.perf_counter()
    from segeval.core.kernels import c_count  # noqa: F401 - the extension module

    t1 = time.perf_counter()
    count_pixels(pred, gt, C, IGNORE, kernel="compiled")
    t2 = time.perf_counter()
    return {"import_s": t1 - t0, "first_call_s": t2 - t1}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=15, help="timed rounds (default 15)")
    ap.add_argument("--json", metavar="FILE", help="also save the numbers as JSON")
    args = ap.parse_args(argv)
    cpu = pin_one_cpu()
    inputs = {"realistic": realistic_pair(), "random": random_pair()}
    start = startup_cost(*inputs["realistic"])
    print(
        f"numpy {np.__version__}, Python {platform.python_version()}"
        f", pinned to CPU {cpu}, {args.repeat} interleaved rounds, medians"
    )
    print(
        f"start-up: import the compiled module {start['import_s'] * 1e3:.1f} ms, "
        f"first compiled call {start['first_call_s'] * 1e3:.1f} ms"
    )
    results: dict[str, dict[str, object]] = {}
    for label, (gt, pred) in inputs.items():
        want = recipe(gt, pred)
        for kernel in ("compiled", "reference"):
            assert np.array_equal(segeval_matrix(gt, pred, kernel), want), f"{kernel} != recipe"
        med = {
            k: float(np.median(v))
            for k, v in time_interleaved(cases(gt, pred), args.repeat).items()
        }
        ign = float(np.mean(gt == IGNORE))
        changes = float(np.count_nonzero(np.diff(gt.ravel().astype(np.int16)))) / gt.size
        print(
            f"\n{label}: {H}x{W} uint8, {ign:.1%} ignore, "
            f"{changes:.4f} gt value changes/pixel, identical 19x19 matrices"
        )
        print(f"  {'case':<10} {'ms':>8} {'ns/px':>7} {'Gpx/s':>7} {'x np.sum':>9}")
        for name in CASES:
            m = med[name]
            print(
                f"  {name:<10} {m * 1e3:8.3f} {m / gt.size * 1e9:7.3f} "
                f"{gt.size / m / 1e9:7.3f} {m / med['np.sum']:9.2f}"
            )
        ratios = {
            "compiled_speedup_vs_recipe": med["recipe"] / med["compiled"],
            "compiled_speedup_vs_reference": med["reference"] / med["compiled"],
            "compiled_time_over_np_sum": med["compiled"] / med["np.sum"],
        }
        print(
            f"  compiled vs plain recipe: {ratios['compiled_speedup_vs_recipe']:.1f}x faster"
            f" (target >= 3.7x: "
            f"{'met' if ratios['compiled_speedup_vs_recipe'] >= 3.7 else 'MISSED'})"
        )
        print(f"  compiled vs reference:    {ratios['compiled_speedup_vs_reference']:.1f}x faster")
        print(f"  compiled / np.sum time:   {ratios['compiled_time_over_np_sum']:.2f}")
        results[label] = {
            "ignore_fraction": ign,
            "value_changes_per_pixel": changes,
            "median_s": med,
            "gpixel_per_s": {k: gt.size / v / 1e9 for k, v in med.items()},
            "ratios": ratios,
        }
    if args.json:
        report = {
            "numpy": np.__version__,
            "cpu": cpu,
            "repeat": args.repeat,
            "shape": [H, W],
            "startup": start,
            "inputs": results,
        }
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
