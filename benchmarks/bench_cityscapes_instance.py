#!/usr/bin/env python3
"""Cityscapes instance-level AP end to end: segeval against cityscapesScripts'
``evalInstanceLevelSemanticLabeling`` on the same files, in one run.

Generates N full-size (2048x1024) Cityscapes-layout images: a 16-bit ``*_instanceIds.png``
(sky, buildings, vegetation, road and sidewalk; void: ego vehicle, out-of-roi border, static
patches; about 20 instances drawn as polygons of realistic sizes -- cars, persons, riders,
bicycles, ..., caravans and trailers, a few group regions), and the results layout detectron2's
``CityscapesInstanceEvaluator`` writes: one ``<key>_pred.txt`` per image with exactly P lines
``<key>_<i>_<class>.png <label id> <score>`` (default 100, detectron2's default maximum of
detections per image) and one 8-bit 0/255 PNG per line next to it -- predictions jittered from
the ground truth (several per object, as a detector's overlapping proposals), confused classes
and low-scoring false positives.

Then, on the same files:

* ``official``: ``evaluateImgLists`` of the official script, in-process, with a fresh
  ground-truth cache (``gtInstances.json``, created from the PNGs as on a first run; its time is
  also shown alone) and quiet. cityscapesScripts 2.3.0 needs two NumPy shims on NumPy >= 2.3
  (``np.in1d``; ``np.count_nonzero`` returning a Python int for its JSON writer), applied for
  its run only.
* ``segeval (command)``: ``segeval score --format cityscapes --task instance`` in a fresh
  interpreter (start-up, imports and loading the compiled kernels included), ``--jobs`` workers.
* ``segeval (in-process)``: ``segeval.evaluate`` in this process (second call: nothing to load).

Before the ratios are printed, segeval's numbers are checked against the official ones (the
whole classes x overlaps AP matrix and the averages, abs 1e-9).

    python benchmarks/bench_cityscapes_instance.py [--n 5,40] [--preds 100] [--jobs 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
H, W = 1024, 2048
CITY = "frankfurt"
# (label id, relative frequency, typical radius in px), as in bench_cityscapes.py
THINGS = ((26, 10, 110), (24, 8, 45), (25, 2, 45), (33, 2, 50), (27, 1, 180), (28, 1, 200),
          (32, 1, 60), (31, 0.3, 250), (29, 0.2, 180), (30, 0.2, 150))
CLASSES = (24, 25, 26, 27, 28, 31, 32, 33)
CONFUSE = {26: 27, 27: 26, 24: 25, 25: 24, 33: 32, 32: 33, 28: 27, 31: 28}


# ------------------------------------------------------------------------ data


def _polygon(rng: np.random.Generator, cy: float, cx: float, r: float, aspect: float
             ) -> tuple[int, int, np.ndarray] | None:
    """A random convex polygon around (cy, cx): ``(y0, x0, mask of its box)``."""
    k = int(rng.integers(5, 10))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    vy = cy + r * rng.uniform(0.7, 1.0, k) * np.sin(ang)
    vx = cx + r * aspect * rng.uniform(0.7, 1.0, k) * np.cos(ang)
    y0, y1 = max(int(vy.min()), 0), min(int(vy.max()) + 1, H)
    x0, x1 = max(int(vx.min()), 0), min(int(vx.max()) + 1, W)
    if y1 - y0 < 2 or x1 - x0 < 2:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = np.ones(yy.shape, bool)
    for i in range(k):  # left of every edge (vertices in angle order: counter-clockwise)
        ay, ax, by, bx = vy[i], vx[i], vy[(i + 1) % k], vx[(i + 1) % k]
        inside &= (bx - ax) * (yy - ay) - (by - ay) * (xx - ax) >= 0
    return y0, x0, inside


def _image(rng: np.random.Generator) -> tuple[np.ndarray, list[tuple[int, int, int, np.ndarray]]]:
    """instanceIds and the objects drawn: ``(value, y0, x0, box mask)`` (the final pixels)."""
    ids = np.full((H, W), 7, np.uint16)  # road
    ids[: H // 3] = 23  # sky
    ids[H // 5: H // 2, : W // 3] = 11  # building
    ids[H // 4: H // 2, 2 * W // 3:] = 21  # vegetation
    ids[H // 2: 2 * H // 3, :W // 6] = 8  # sidewalk
    ids[-70:] = 1  # ego vehicle (void)
    ids[:, :4] = 3  # out of roi (void)
    ids[H // 2 - 30: H // 2, W // 2: W // 2 + 160] = 4  # static (void)
    freq = np.array([t[1] for t in THINGS], float)
    counts: dict[int, int] = {}
    for _ in range(int(rng.integers(15, 26))):
        label, _, radius = THINGS[int(rng.choice(len(THINGS), p=freq / freq.sum()))]
        r = radius * rng.uniform(0.2, 1.3)
        cy, cx = rng.uniform(H * 0.4, H - 80), rng.uniform(0, W)
        poly = _polygon(rng, cy, cx, r, rng.uniform(0.5, 2.0))
        if poly is None:
            continue
        y0, x0, m = poly
        counts[label] = counts.get(label, -1) + 1
        value = label if rng.random() < 0.05 else label * 1000 + counts[label]
        ids[y0:y0 + m.shape[0], x0:x0 + m.shape[1]][m] = value
    objects = []
    for v in np.unique(ids):
        if v >= 1000 or v in (24, 25, 26, 27, 28, 29, 30, 31, 32, 33):
            ys, xs = np.nonzero(ids == v)
            y0, x0 = int(ys.min()), int(xs.min())
            box = np.zeros((int(ys.max()) - y0 + 1, int(xs.max()) - x0 + 1), bool)
            box[ys - y0, xs - x0] = True
            objects.append((int(v), y0, x0, box))
    return ids, objects


def _predictions(rng: np.random.Generator, objects: list, n: int) -> list[tuple]:
    """``n`` detections ``(y0, x0, box mask, label id, score)``."""
    out = []
    for v, y0, x0, box in objects:
        label = v // 1000 if v >= 1000 else v
        if label in (29, 30):
            label = 27  # a caravan or trailer seen as a truck
        for j in range(int(rng.integers(1, 4))):
            dy, dx = (int(s) for s in rng.integers(-4, 5, 2))
            m = box
            if rng.random() < 0.5:  # a little fatter or thinner
                grow = np.zeros((box.shape[0] + 2, box.shape[1] + 2), bool)
                grow[1:-1, 1:-1] = box
                m = grow[1:-1, 2:] | grow[1:-1, :-2] if rng.random() < 0.5 else box & np.roll(
                    box, 1, axis=0)
            lab = CONFUSE.get(label, label) if rng.random() < 0.1 else label
            score = float(rng.uniform(0.5, 1.0) if j == 0 else rng.uniform(0.05, 0.7))
            out.append((max(y0 + dy, 0), max(x0 + dx, 0), m, lab, score))
    while len(out) < n:  # low-scoring false positives
        poly = _polygon(rng, rng.uniform(H * 0.35, H - 60), rng.uniform(0, W),
                        rng.uniform(8, 120), rng.uniform(0.5, 2.0))
        if poly is not None:
            y0, x0, m = poly
            out.append((y0, x0, m, int(rng.choice(CLASSES)), float(rng.uniform(0.01, 0.4))))
    rng.shuffle(out)  # type: ignore[arg-type]
    return out[:n]


def generate(root: Path, n: int, preds: int, seed: int = 0) -> None:
    """Write ``n`` images below ``root`` (``gtFine/val/frankfurt``, ``results``), once."""
    from PIL import Image

    done = root / ".complete"
    if done.exists():
        return
    rng = np.random.default_rng(seed)
    gt_dir = root / "gtFine" / "val" / CITY
    res = root / "results"
    gt_dir.mkdir(parents=True, exist_ok=True)
    res.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        key = f"{CITY}_000000_{i:06d}"
        ids, objects = _image(rng)
        Image.fromarray(ids).save(gt_dir / f"{key}_gtFine_instanceIds.png")
        lines = []
        full = np.zeros((H, W), np.uint8)
        for j, (y0, x0, m, label, score) in enumerate(_predictions(rng, objects, preds)):
            full[:] = 0
            h, w = min(m.shape[0], H - y0), min(m.shape[1], W - x0)
            full[y0:y0 + h, x0:x0 + w][m[:h, :w]] = 255
            name = f"{key}_{j}_{label}.png"  # as detectron2 names them, next to the list
            Image.fromarray(full).save(res / name)
            lines.append(f"{name} {label} {score}\n")
        (res / f"{key}_pred.txt").write_text("".join(lines))
    done.write_text("ok\n")


# ------------------------------------------------------------------------ the official script


@contextlib.contextmanager
def numpy_shims():
    had = hasattr(np, "in1d")
    count_nonzero = np.count_nonzero
    if not had:
        np.in1d = lambda a, b, **kw: np.isin(np.ravel(a), b, **kw)
    np.count_nonzero = lambda *a, **k: int(count_nonzero(*a, **k))
    try:
        yield
    finally:
        np.count_nonzero = count_nonzero
        if not had:
            del np.in1d


def run_official(root: Path, work: Path) -> tuple[dict, float, float]:
    """The official evaluation; ``(result dict, seconds in all, seconds building the
    ground-truth cache)``."""
    from cityscapesscripts.evaluation import evalInstanceLevelSemanticLabeling as ev

    args = ev.args
    args.gtInstancesFile = str(work / "gtInstances.json")
    if os.path.exists(args.gtInstancesFile):
        os.remove(args.gtInstancesFile)
    args.exportFile = str(work / "resultInstanceLevelSemanticLabeling.json")
    args.predictionPath = os.path.abspath(root / "results")
    args.predictionWalk = None
    args.quiet, args.JSONOutput = True, True
    gts = sorted(str(p) for p in (root / "gtFine" / "val").rglob("*_instanceIds.png"))
    old = os.getcwd()
    os.chdir(work)
    try:
        with numpy_shims(), contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            preds = [ev.getPrediction(g, args) for g in gts]
            ev.setInstanceLabels(args)
            t1 = time.perf_counter()
            ev.getGtInstances(gts, args)  # the cache alone (then reused by the run below)
            cache = time.perf_counter() - t1
            os.remove(args.gtInstancesFile)
            t2 = time.perf_counter()
            result = ev.evaluateImgLists(preds, gts, args)
            total = (t1 - t0) + time.perf_counter() - t2
    finally:
        os.chdir(old)
    return result, total, cache


# ------------------------------------------------------------------------ segeval


def run_command(root: Path, out: Path, jobs: int) -> float:
    code = ("import sys; from segeval.cli import main; sys.argv = ['segeval'] + sys.argv[1:]; "
            "main()")
    cmd = [sys.executable, "-c", code, "score", "--format", "cityscapes", "--task", "instance",
           "--gt", str(root / "gtFine" / "val"), "--pred", str(root / "results"), "--json",
           str(out), "-q", "--jobs", str(jobs)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t


def check(doc: dict, official: dict) -> None:
    avg = official["averages"]
    for ours, theirs in ((doc["metrics"]["AP"], avg["allAp"]),
                         (doc["metrics"]["AP50"], avg["allAp50%"])):
        assert ours is not None and abs(ours - theirs) <= 1e-9, (ours, theirs)
    for row in doc["per_class"]:
        want = avg["classes"][row["name"]]
        for key, theirs in (("AP", want["ap"]), ("AP50", want["ap50%"])):
            ours = row[key]
            assert (ours is None and theirs != theirs) or abs(ours - theirs) <= 1e-9, row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", default="5,40", help="image counts, comma-separated")
    parser.add_argument("--preds", type=int, default=100, help="predictions per image")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--data", type=Path, default=Path(tempfile.gettempdir()),
                        help="folder for the generated datasets (kept and reused)")
    a = parser.parse_args()
    import segeval

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores (load "
          f"average {load:.1f} at the start), segeval --jobs {a.jobs}, {a.preds} predictions "
          f"per image, {W}x{H}")
    for n in (int(x) for x in a.n.split(",")):
        root = a.data / f"segeval_bench_cs_instance_{n}x{a.preds}"
        t = time.perf_counter()
        generate(root, n, a.preds)
        print(f"\n## {n} images ({root}; generated/checked in {time.perf_counter() - t:.0f} s)")
        with tempfile.TemporaryDirectory() as tmp:
            work = Path(tmp)
            official, official_s, cache_s = run_official(root, work)
            command_s = run_command(root, work / "r.json", a.jobs)
            check(json.loads((work / "r.json").read_text()), official)
            segeval.evaluate(root / "results", root / "gtFine" / "val", "cityscapes",
                             task="instance", jobs=a.jobs)  # loads everything once
            t = time.perf_counter()
            r = segeval.evaluate(root / "results", root / "gtFine" / "val", "cityscapes",
                                 task="instance", jobs=a.jobs)
            inproc_s = time.perf_counter() - t
            check(r.to_dict(), official)
        print(f"official evaluateImgLists   {official_s:8.2f} s  ({official_s / n * 1e3:.0f} ms "
              f"per image; of which the ground-truth cache {cache_s:.2f} s)")
        warm = official_s - cache_s  # a rerun of the official script, its cache made
        print(f"segeval score (command)     {command_s:8.2f} s  ({command_s / n * 1e3:.0f} ms "
              f"per image)   ratio {official_s / command_s:6.1f}x  (cached official: "
              f"{warm / command_s:.1f}x)")
        print(f"segeval.evaluate (in-proc.) {inproc_s:8.2f} s  ({inproc_s / n * 1e3:.0f} ms "
              f"per image)   ratio {official_s / inproc_s:6.1f}x  (cached official: "
              f"{warm / inproc_s:.1f}x)")
        print(f"AP {r.metrics['AP']:.4f}  AP50 {r.metrics['AP50']:.4f}  (equal to the official "
              f"numbers to 1e-9)")


if __name__ == "__main__":
    main()
