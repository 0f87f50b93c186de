"""What the leaderboard benchmarks share: check that every case gives the anchor's numbers,
then time the cases in interleaved rounds and print medians with their ratios."""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

SHARED_BENCH = Path(__file__).resolve().parents[2] / "shared" / "bench"


def arguments(description: str, images: int, submissions: int,
              generator: bool = False) -> argparse.ArgumentParser:
    """The options every leaderboard benchmark takes (``--make-data`` if it uses the shared
    bench's generator)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--images", type=int, default=images)
    ap.add_argument("--submissions", type=int, default=submissions)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None, help="keep the generated data here")
    if generator:
        ap.add_argument("--make-data", type=Path, default=SHARED_BENCH / "make_data.py",
                        help="the shared bench's generator")
    return ap


def shared_data(make_data_py: Path, out: Path, kind: str, images: int) -> Path:
    """Run the shared bench's generator for ``kind`` (``coco_panoptic``, ``coco_instances``)
    with ``images`` images into ``out``; the folder it wrote."""
    flag = "--" + kind.replace("_", "-")
    subprocess.run([sys.executable, str(make_data_py), str(out), "--only", kind, flag,
                    str(images)], check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return out / kind


def check_and_time(cases: dict[str, Callable[[], dict[str, float]]], repeat: int,
                   tol: float = 1e-12) -> dict[str, float]:
    """Run every case once (a warm-up that also fills a cache), assert that each gives the
    ``anchor`` case's value for every submission within ``tol``, then time ``repeat``
    interleaved rounds; return the median seconds per case."""
    results = {name: fn() for name, fn in cases.items()}
    for name, res in results.items():
        assert res.keys() == results["anchor"].keys(), name
        for sub, value in res.items():
            assert abs(value - results["anchor"][sub]) <= tol, (name, sub, value)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(repeat):
        for name, fn in cases.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: statistics.median(ts) for name, ts in times.items()}


def print_table(med: dict[str, float], units: int, unit_name: str, scale: float = 1000.0,
                digits: int = 1) -> None:
    """One row per case: seconds, per-unit time, and ratios to the anchor and the score loop."""
    print(f"{'case':<12} {'s':>7} {unit_name:>13} {'x anchor':>9} {'x score-loop':>13}")
    for name, t in med.items():
        print(f"{name:<12} {t:7.2f} {scale * t / units:13.{digits}f} {t / med['anchor']:9.2f} "
              f"{t / med['score-loop']:13.2f}")
