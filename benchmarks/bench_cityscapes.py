#!/usr/bin/env python3
"""Cityscapes pixel-level evaluation end to end: ``segeval score`` against cityscapesScripts.

Generates N full-size (2048x1024) Cityscapes-layout triples -- labelIds, 16-bit instanceIds
and a prediction in label ids -- drawn with polygons like the real polygon-annotated ground
truth (sky, buildings, road and sidewalk bands; vegetation, poles, signs; void, ego vehicle and
ignored classes; cars, persons, riders, bicycles, ... as instances and a few groups), with
predictions that shift boundaries, confuse and miss objects and hallucinate others. PNGs are
written with Pillow's default settings, as cityscapesScripts writes them. Or pass ``--data
ROOT`` for an existing Cityscapes-layout root (``gtFine/val``, predictions under
``ROOT/results``).

Then, on the same files, in interleaved rounds (medians):

* ``official CLI``: ``csEvalPixelLevelSemanticLabeling`` (its ``main()`` run by a fresh
  interpreter with the environment variables it reads; iIoU on, its default; JSON export to a
  temp folder). cityscapesScripts 2.3.0 calls ``np.in1d``, removed in NumPy 2.4: the run adds
  that alias first, nothing else.
* ``official evaluateImgLists``: the same evaluation called in-process, iIoU on and off
  (no interpreter start, no printing).
* ``segeval score --format cityscapes``: the real command in a fresh interpreter, iIoU on and
  off (``--no-iiou``), with ``--jobs`` workers (default 2).
* ``segeval decode only``: ``read_label_png`` of the three files of every pair, in-process, one
  core -- where segeval's time goes (not a competitor).

Before timing, this checkout's modules are byte-compiled (``compileall``), as ``pip install``
compiles an installed package's, and segeval's numbers are checked against the official ones
(every class and category IoU / iIoU, abs 1e-9). Prints ms per image pair and the speed-up
ratios.

Sizes (``--sizes 1,40,500``, the default): the first 1, 40 and 500 pairs of the same files
(hard links, each size its own root), each timed in interleaved rounds as whole commands in
fresh interpreters: the official CLI, ``segeval score`` on worker processes (the default) and
on threads (``--scheduler threads``), and a bare ``python -c "import numpy, PIL.Image"`` --
the floor of any Python tool. Targets (issue 18): >= 10x the official CLI at 40 pairs, >= 18x
at ~500, and one pair within 3x of the bare interpreter. The per-case table above (``--detail``)
runs on the largest size.

    python benchmarks/bench_cityscapes.py [--sizes 1,40,500] [--repeat 3] [--jobs 2]
                                          [--data ROOT] [--detail]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # this checkout's segeval, in-process and in the commands run
H, W = 1024, 2048
CITIES = ("frankfurt", "lindau", "munster")
SHIM = ("import numpy as np\n"
        "if not hasattr(np, 'in1d'):\n"
        "    np.in1d = lambda a, b, assume_unique=False, invert=False: "
        "np.isin(np.ravel(a), b, assume_unique=assume_unique, invert=invert)\n")
# things: (label id, relative frequency, typical radius in px)
THINGS = ((26, 10, 150), (24, 8, 60), (25, 2, 60), (33, 2, 70), (27, 1, 250), (28, 1, 280),
          (32, 1, 80), (31, 0.3, 350), (29, 0.2, 250), (30, 0.2, 200))
# what a network predicts instead of an ignored id, and typical confusions
IGNORED_AS = {0: 7, 1: 7, 2: 23, 3: 23, 4: 11, 5: 26, 6: 8, 9: 7, 10: 7, 14: 13, 15: 11,
              16: 11, 18: 17, 29: 27, 30: 27}
CONFUSE = {26: 27, 27: 26, 24: 25, 25: 24, 33: 32, 28: 27, 21: 22, 22: 21, 12: 11, 13: 12,
           8: 7, 7: 8, 31: 28}


# ------------------------------------------------------------------------ data


def _polygon(canvas: np.ndarray, rng: np.random.Generator, value: int, cy: float, cx: float,
             r: float, aspect: float = 1.0) -> np.ndarray | None:
    """Fill a random convex polygon (3-9 vertices around (cy, cx), radius ~r); its mask."""
    k = int(rng.integers(3, 10))
    ang = np.sort(rng.uniform(0, 2 * np.pi, k))
    vy = cy + r * rng.uniform(0.6, 1.0, k) * np.sin(ang)
    vx = cx + r * aspect * rng.uniform(0.6, 1.0, k) * np.cos(ang)
    y0, y1 = max(int(vy.min()), 0), min(int(vy.max()) + 1, H)
    x0, x1 = max(int(vx.min()), 0), min(int(vx.max()) + 1, W)
    if y0 >= y1 or x0 >= x1:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1]
    inside = np.ones(yy.shape, bool)
    for i in range(k):
        ay, ax, by, bx = vy[i], vx[i], vy[(i + 1) % k], vx[(i + 1) % k]
        inside &= (bx - ax) * (yy - ay) - (by - ay) * (xx - ax) >= 0
    canvas[y0:y1, x0:x1][inside] = value
    mask = np.zeros((H, W), bool)
    mask[y0:y1, x0:x1] = inside
    return mask


def make_triple(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(labelIds uint8, instanceIds uint16, prediction uint8) of one street-like scene."""
    rng = np.random.default_rng(seed)
    lab = np.empty((H, W), np.uint8)
    horizon = int(H * rng.uniform(0.38, 0.5))
    lab[:horizon // 2], lab[horizon // 2:horizon], lab[horizon:] = 23, 11, 7
    for _ in range(int(rng.integers(6, 14))):  # facades, walls, fences, vegetation
        _polygon(lab, rng, int(rng.choice([11, 11, 21, 21, 12, 13, 15, 16, 4])),
                 rng.uniform(horizon * 0.3, horizon * 1.05), rng.uniform(0, W),
                 rng.uniform(60, 300), 1.5)
    side = int(rng.uniform(0.1, 0.3) * W)
    lab[horizon + 40:, :side] = 8
    lab[horizon + 40:, W - side:] = 8
    for _ in range(int(rng.integers(2, 6))):  # terrain, parking, ground, static
        _polygon(lab, rng, int(rng.choice([22, 22, 9, 6, 10, 14])), rng.uniform(horizon, H),
                 rng.uniform(0, W), rng.uniform(40, 160), 2)
    for _ in range(int(rng.integers(5, 15))):  # poles, signs, lights
        x, y = int(rng.uniform(0, W - 10)), int(rng.uniform(horizon * 0.4, horizon))
        lab[y:y + int(rng.uniform(100, 400)), x:x + int(rng.integers(4, 12))] = \
            rng.choice([17, 17, 18])
        lab[y:y + 30, max(x - 10, 0):x + 20] = rng.choice([20, 19])
    inst = lab.astype(np.uint16)
    labels, weights = [t[0] for t in THINGS], np.array([t[1] for t in THINGS])
    n = int(rng.integers(12, 30))
    things = []
    for k in range(n):
        j = int(rng.choice(len(THINGS), p=weights / weights.sum()))
        label_id, r = labels[j], THINGS[j][2] * rng.uniform(0.3, 1.3)
        cy = rng.uniform(horizon - r * 0.3, H - 60)
        mask = _polygon(lab, rng, label_id, cy, rng.uniform(0, W), r, 1.3)
        if mask is not None:
            group = k >= n - 2  # a crowd drawn without instance ids
            inst[mask] = label_id if group else label_id * 1000 + k
            things.append((label_id, mask))
    lab[H - 60:], inst[H - 60:] = 1, 1  # ego vehicle
    lab[:, :4], inst[:, :4] = 3, 3  # out of roi
    # prediction: no ignored ids, wobbly boundaries, confusions, misses, hallucinations
    lut = np.arange(256, dtype=np.uint8)
    for a, b in IGNORED_AS.items():
        lut[a] = b
    pred = lut[lab]
    for y in range(0, H, 32):
        pred[y:y + 32] = np.roll(pred[y:y + 32], int(rng.integers(-5, 6)), axis=1)
    for label_id, mask in things:
        u = rng.random()
        if u < 0.1:
            pred[mask] = 7  # missed
        elif u < 0.25:
            pred[mask] = CONFUSE.get(label_id, label_id)
    for _ in range(int(rng.integers(3, 10))):
        src = int(rng.choice([7, 8, 11, 21, 26, 24, 17, 32]))
        _polygon(pred, rng, CONFUSE.get(src, src), rng.uniform(0, H), rng.uniform(0, W),
                 rng.uniform(10, 120))
    return lab, inst, pred


def _write(args: tuple[Path, int, int]) -> None:
    from PIL import Image

    root, i, seed = args
    city = CITIES[i % len(CITIES)]
    key = f"{city}_{i // len(CITIES):06d}_{i:06d}"
    lab, inst, pred = make_triple(seed)
    gt_dir = root / "gtFine" / "val" / city
    gt_dir.mkdir(parents=True, exist_ok=True)
    (root / "results" / city).mkdir(parents=True, exist_ok=True)
    Image.fromarray(lab).save(gt_dir / f"{key}_gtFine_labelIds.png")
    Image.fromarray(inst).save(gt_dir / f"{key}_gtFine_instanceIds.png")
    Image.fromarray(pred).save(root / "results" / city / f"{key}_leftImg8bit.png")


def generate(root: Path, n: int, seed: int = 0) -> None:
    with get_context("fork").Pool(2) as pool:
        pool.map(_write, [(root, i, seed * 100003 + i) for i in range(n)])


# ------------------------------------------------------------------------ cases


def official_module(root: Path):
    os.environ["CITYSCAPES_DATASET"] = str(root)
    os.environ["CITYSCAPES_RESULTS"] = str(root / "results")
    exec(SHIM, {})
    import cityscapesscripts.evaluation.evalPixelLevelSemanticLabeling as ev

    return ev


def official_in_process(ev, gts: list[str], iiou: bool) -> dict:
    args = ev.args
    args.quiet, args.JSONOutput, args.evalInstLevelScore = True, False, iiou
    args.predictionPath = args.predictionWalk = None
    preds = [ev.getPrediction(args, g) for g in gts]
    return ev.evaluateImgLists(preds, gts, args)


def run(cmd: list[str], env: dict[str, str]) -> None:
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd[:4])} ... failed:\n{proc.stderr[-2000:]}")


def decode_only(gts: list[str]) -> None:
    from segeval.formats.png import read_label_png

    for g in gts:
        read_label_png(g)
        read_label_png(g.replace("_labelIds", "_instanceIds"))
    for p in sorted((Path(gts[0]).parents[3] / "results").rglob("*.png")):
        read_label_png(p)


def check_agreement(official: dict, ours: dict, iiou: bool) -> str:
    keys = ["classScores", "categoryScores"] + (["classInstScores", "categoryInstScores"]
                                                if iiou else [])
    worst = 0.0
    for key in keys:
        for name, want in official[key].items():
            got = ours[key][name]
            if math.isnan(want) or math.isnan(got):
                if math.isnan(want) != math.isnan(got):
                    raise SystemExit(f"MISMATCH {key}[{name}]: official {want}, segeval {got}")
                continue
            worst = max(worst, abs(want - got))
    if worst > 1e-9:
        raise SystemExit(f"MISMATCH: max |difference| {worst:.3g} > 1e-9")
    return f"{sum(len(official[k]) for k in keys)} scores agree (max |diff| {worst:.1e})"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sizes", default="1,40,500",
                    help="pair counts timed against the official CLI (default 1,40,500)")
    ap.add_argument("--detail", action="store_true",
                    help="also the per-case table (in-process official, decode only) on the "
                         "largest size")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds (default 3)")
    ap.add_argument("--jobs", type=int, default=2, help="segeval worker processes (default 2)")
    ap.add_argument("--data", type=Path, help="an existing Cityscapes-layout root instead")
    ap.add_argument("--keep", type=Path, help="generate into this folder and keep it")
    a = ap.parse_args(argv)
    tmp = Path(tempfile.mkdtemp(prefix="segeval-bench-cs-"))
    try:
        root = a.data or a.keep or tmp / "cityscapes"
        sizes = sorted({int(x) for x in a.sizes.split(",")})
        if a.data is None and not (root / "gtFine").is_dir():
            t0 = time.perf_counter()
            generate(root, sizes[-1])
            print(f"generated {sizes[-1]} triples 2048x1024 in {time.perf_counter() - t0:.1f} s")
        # byte-compile this checkout's modules first, as ``pip install`` does for an installed
        # package (cityscapesscripts' are): with PYTHONDONTWRITEBYTECODE set, or a stale cache,
        # every timed segeval command would compile its edited modules again
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "segeval")],
                       check=True, stdout=subprocess.DEVNULL)
        bench_sizes(root.resolve(), sizes, a, tmp)
        if a.detail:
            bench(root.resolve(), a, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def bench(root: Path, a: argparse.Namespace, tmp: Path) -> None:
    import cityscapesscripts
    import PIL

    gts = sorted(str(p) for p in (root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
    n = len(gts)
    if n > 100:  # the detail table on at most 100 pairs (the official in-process runs are long)
        root = subset(root, 100, tmp / "detail")
        gts = sorted(str(p) for p in (root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
        n = len(gts)
    env = dict(os.environ, CITYSCAPES_DATASET=str(root),
               CITYSCAPES_RESULTS=str(root / "results"), CITYSCAPES_EXPORT_DIR=str(tmp))
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    py = sys.executable
    official_cli = [py, "-c", SHIM + "from cityscapesscripts.evaluation."
                    "evalPixelLevelSemanticLabeling import main\nmain()\n"]
    ours = [py, "-m", "segeval.cli", "score", "--format", "cityscapes", "--gt", str(root),
            "--pred", str(root / "results"), "-q", "--jobs", str(a.jobs)]
    ev = official_module(root)
    print(f"{n} pairs 2048x1024 under {root}; Python {platform.python_version()}, numpy "
          f"{np.__version__}, Pillow {PIL.__version__}, cityscapesscripts "
          f"{getattr(cityscapesscripts, '__version__', '2.x')} (Cython helper: "
          f"{'yes' if ev.CSUPPORT else 'no'}), {os.cpu_count()} CPUs, segeval --jobs {a.jobs}")

    # correctness first: segeval's official-format JSON against the official numbers
    for iiou in (True, False):
        ref = official_in_process(ev, gts, iiou)
        out = tmp / f"ours_{iiou}.json"
        run(ours + ["--cityscapes-json", str(out)] + ([] if iiou else ["--no-iiou"]), env)
        print(f"  iIoU {'on ' if iiou else 'off'}: mIoU {ref['averageScoreClasses']:.10f}"
              + (f", iIoU {ref['averageScoreInstClasses']:.10f}" if iiou else "")
              + f"; {check_agreement(ref, json.loads(out.read_text()), iiou)}")

    cases = {
        "official CLI, iIoU on": lambda: run(official_cli, env),
        "official evaluateImgLists, iIoU on": lambda: official_in_process(ev, gts, True),
        "official evaluateImgLists, iIoU off": lambda: official_in_process(ev, gts, False),
        "segeval score, iIoU on": lambda: run(ours, env),
        "segeval score, iIoU off": lambda: run([*ours, "--no-iiou"], env),
        "segeval decode only (3 PNGs), 1 proc": lambda: decode_only(gts),
    }
    samples: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(a.repeat):
        for name, fn in cases.items():
            c0, t0 = cpu_seconds(), time.perf_counter()
            fn()
            samples[name].append(time.perf_counter() - t0)
            cpu[name].append(cpu_seconds() - c0)
    med = {k: float(np.median(v)) for k, v in samples.items()}
    med_cpu = {k: float(np.median(v)) for k, v in cpu.items()}
    print(f"\n{a.repeat} interleaved rounds, medians (the first round included); CPU = user + "
          f"system seconds of the case's processes, all workers summed")
    print(f"  {'case':<38} {'wall s':>7} {'ms/pair':>8} {'min..max s':>12} {'CPU s':>7}")
    for k, v in med.items():
        lo, hi = min(samples[k]), max(samples[k])
        print(f"  {k:<38} {v:7.2f} {v / n * 1e3:8.1f} {f'{lo:.2f}..{hi:.2f}':>12} "
              f"{med_cpu[k]:7.2f}")
    on, off = med["segeval score, iIoU on"], med["segeval score, iIoU off"]
    r_cli = med["official CLI, iIoU on"] / on
    print("\nspeed-up of segeval, wall time (same files, same run):")
    print(f"  iIoU on,  vs official CLI:              {r_cli:5.2f}x  (target >= 10x: "
          f"{'met' if r_cli >= 10 else 'MISSED'})")
    print(f"  iIoU on,  vs official evaluateImgLists: "
          f"{med['official evaluateImgLists, iIoU on'] / on:5.2f}x")
    print(f"  iIoU off, vs official evaluateImgLists: "
          f"{med['official evaluateImgLists, iIoU off'] / off:5.2f}x")
    cpu_on = med_cpu["segeval score, iIoU on"]
    print(f"CPU time (robust to other load on the machine; segeval's wall on {a.jobs} idle cores "
          f"is about its CPU / {a.jobs}):")
    print(f"  iIoU on,  official CLI CPU / segeval CPU: "
          f"{med_cpu['official CLI, iIoU on'] / cpu_on:5.2f}x")
    cpu_off = med_cpu["segeval score, iIoU off"]
    print(f"  iIoU off, official evaluateImgLists CPU / segeval CPU: "
          f"{med_cpu['official evaluateImgLists, iIoU off'] / cpu_off:5.2f}x")
    print(f"  official CLI per pair: {med['official CLI, iIoU on'] / n * 1e3:.1f} ms "
          f"(perf-anchors.md: 98.8 ms on the standard box); segeval iIoU on: {on / n * 1e3:.1f} "
          f"ms/pair")


def subset(root: Path, k: int, into: Path) -> Path:
    """A Cityscapes root holding the first ``k`` pairs of ``root`` as hard links (segeval refuses
    symbolic links in a prediction tree)."""
    gts = sorted((root / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))[:k]
    if len(gts) < k:
        raise SystemExit(f"{root} holds {len(gts)} pairs, fewer than {k}")
    for g in gts:
        key = g.name.removesuffix("_gtFine_labelIds.png")
        city = g.parent.name
        pred = min((root / "results" / city).glob(f"{key}*.png"))  # as the official matches
        for src, dst in ((g, into / "gtFine" / "val" / city / g.name),
                         (g.with_name(f"{key}_gtFine_instanceIds.png"),
                          into / "gtFine" / "val" / city / f"{key}_gtFine_instanceIds.png"),
                         (pred, into / "results" / city / pred.name)):
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
    return into


def bench_sizes(root: Path, sizes: list[int], a: argparse.Namespace, tmp: Path) -> None:
    """Whole commands on the first ``k`` pairs for every ``k`` of ``sizes`` (see the module
    docstring); prints wall seconds and the ratios against the targets of issue 18."""
    py = sys.executable
    bare = [py, "-c", "import numpy, PIL.Image"]
    print(f"\nwhole commands, fresh interpreters, {a.repeat} interleaved rounds (medians), "
          f"segeval --jobs {a.jobs}; {os.cpu_count()} CPUs")
    print(f"  {'pairs':>5} {'official s':>10} {'segeval s':>10} {'threads s':>10} "
          f"{'bare py s':>10} {'vs official':>11} {'threads vs off.':>15} {'/ bare py':>9}")
    for k in sizes:
        sub = subset(root, k, tmp / f"size{k}")
        env = dict(os.environ, CITYSCAPES_DATASET=str(sub),
                   CITYSCAPES_RESULTS=str(sub / "results"), CITYSCAPES_EXPORT_DIR=str(tmp))
        env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")]).rstrip(
            os.pathsep)
        ours = [py, "-m", "segeval.cli", "score", "--format", "cityscapes", "--gt", str(sub),
                "--pred", str(sub / "results"), "-q", "--jobs", str(a.jobs)]
        cases = {
            "official": [py, "-c", SHIM + "from cityscapesscripts.evaluation."
                         "evalPixelLevelSemanticLabeling import main\nmain()\n"],
            "segeval": ours,
            "threads": [*ours, "--scheduler", "threads"],
            "bare": bare,
        }
        times: dict[str, list[float]] = {c: [] for c in cases}
        for _ in range(a.repeat):
            for c, cmd in cases.items():
                t0 = time.perf_counter()
                run(cmd, env)
                times[c].append(time.perf_counter() - t0)
        med = {c: float(np.median(v)) for c, v in times.items()}
        print(f"  {k:5d} {med['official']:10.2f} {med['segeval']:10.3f} {med['threads']:10.3f} "
              f"{med['bare']:10.3f} {med['official'] / med['segeval']:10.1f}x "
              f"{med['official'] / med['threads']:14.1f}x {med['segeval'] / med['bare']:8.1f}x")
        shutil.rmtree(sub)
    print("  targets: >= 10x at 40 pairs, >= 18x at ~500, one pair within 3x of bare python")


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and of its finished children."""
    import resource

    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(
        resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


if __name__ == "__main__":
    main()
