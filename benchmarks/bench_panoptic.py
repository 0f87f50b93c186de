#!/usr/bin/env python3
"""Panoptic quality speed: segeval against the COCO panoptic reference on the same files.

The reference is ``pq_compute_single_core`` / ``pq_compute_multi_core`` from cityscapesScripts'
``evalPanopticSemanticLabeling``, line for line the algorithm of panopticapi's
``evaluation.py`` (the perf anchor "PQ: panopticapi, 1 process", 16.7 ms/image on the project
box); panopticapi itself is not on PyPI. On a COCO-panoptic set (``make_data.py`` of the shared
bench: 200 images 640x480, ~28 segments each) this times, in interleaved rounds, as medians:

* ``reference, 1 proc``       -- JSON loading, pairing, ``pq_compute_single_core``, averages
* ``reference, all cores``    -- the same with ``pq_compute_multi_core`` (one process per core,
  its only setting)
* ``segeval, 1 proc``         -- ``segeval.evaluate(pred, gt, "coco-panoptic", jobs=1)``
* ``segeval, all cores``      -- ``jobs=None``
* ``segeval, 1 proc, what-if Pillow RGBX decoder`` -- segeval with its PNG reader swapped,
  for this run only, for Pillow's RGBX buffer viewed as uint32 (what a packaged decoder gives
  without an RGB -> id pass; identical ids)
* ``decode only``             -- the reference's decode (Pillow + ``rgb2id``) and segeval's
  (``read_label_png(panoptic=True)``) of both PNGs of every image, 1 proc: the floor each
  pipeline sits on

Both answers must agree (per-category TP/FP/FN exact, PQ/SQ/RQ to 1e-12) before timing.
Ratios > 1 mean segeval is faster.

    python benchmarks/bench_panoptic.py --data DIR/coco_panoptic [--repeat 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def reference_module():
    from cityscapesscripts.evaluation import evalPanopticSemanticLabeling as cs

    return cs


def reference_pq(base: Path, multi: bool) -> dict:
    """The reference pipeline (what ``pq_compute`` runs), its prints swallowed."""
    cs = reference_module()
    with open(base / "panoptic_val.json") as f:
        gt = json.load(f)
    with open(base / "panoptic_pred.json") as f:
        pred = json.load(f)
    cats = {c["id"]: c for c in gt["categories"]}
    by_id = {a["image_id"]: a for a in pred["annotations"]}
    pairs = [(a, by_id[a["image_id"]]) for a in gt["annotations"]]
    gdir, pdir = str(base / "panoptic_val"), str(base / "panoptic_pred")
    with contextlib.redirect_stdout(io.StringIO()):
        if multi:
            stat = cs.pq_compute_multi_core(pairs, gdir, pdir, cats)
        else:
            stat = cs.pq_compute_single_core(0, pairs, gdir, pdir, cats)
        out = cs.average_pq(stat, cats)
    out["counts"] = {c: (stat[c].tp, stat[c].fp, stat[c].fn) for c in cats}
    return out


def segeval_pq(base: Path, jobs: int | None):
    import segeval

    return segeval.evaluate(base / "panoptic_pred.json", base / "panoptic_val.json",
                            "coco-panoptic", jobs=jobs)


def pillow_rgbx_ids(path, *, panoptic: bool = True) -> np.ndarray:
    """What-if decoder: Pillow keeps RGB as 4-byte RGBX internally, so ``tobytes("raw",
    "RGBX")`` viewed as little-endian uint32 gives the ids without an RGB -> id pass."""
    from PIL import Image

    with Image.open(path) as im:
        im.load()
        if im.mode != "RGB":
            im = im.convert("RGB")
        raw = im.tobytes("raw", "RGBX")
        return np.frombuffer(raw, "<u4").reshape(im.height, im.width) & 0xFFFFFF


@contextlib.contextmanager
def decoder(read) -> object:
    """Temporarily make ``read`` segeval's PNG reader (in this process and forked workers)."""
    from segeval.formats import png

    saved = png.read_label_png
    png.read_label_png = read
    try:
        yield
    finally:
        png.read_label_png = saved


def segeval_pq_rgbx(base: Path, jobs: int | None):
    with decoder(pillow_rgbx_ids):
        return segeval_pq(base, jobs)


def decode_reference(base: Path, files: list[str]) -> None:
    from PIL import Image

    cs = reference_module()
    for name in files:
        for folder in ("panoptic_val", "panoptic_pred"):
            cs.rgb2id(np.array(Image.open(base / folder / name), dtype=np.uint32))


def decode_segeval(base: Path, files: list[str]) -> None:
    from segeval.formats.png import read_label_png

    for name in files:
        for folder in ("panoptic_val", "panoptic_pred"):
            read_label_png(base / folder / name, panoptic=True)


def check_agreement(ref: dict, ours) -> None:
    rows = {r["id"]: r for r in ours.per_class()}
    for cid, (tp, fp, fn) in ref["counts"].items():
        got = (rows[cid]["tp"], rows[cid]["fp"], rows[cid]["fn"])
        if got != (tp, fp, fn):
            raise SystemExit(f"category {cid}: segeval {got} != reference {(tp, fp, fn)}")
    for name, avg in (("All", ours.all), ("Things", ours.things), ("Stuff", ours.stuff)):
        want = ref[name]
        if avg.n != want["n"] or any(abs(getattr(avg, k) - want[k]) > 1e-12
                                     for k in ("pq", "sq", "rq")):
            raise SystemExit(f"{name}: segeval {avg} != reference {want}")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True,
                    help="the coco_panoptic folder written by the shared make_data.py")
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds (median)")
    ap.add_argument("--json", type=Path, help="also write the medians here")
    a = ap.parse_args(argv)
    base = a.data
    with open(base / "panoptic_val.json") as f:
        gt = json.load(f)
    n = len(gt["annotations"])
    files = [x["file_name"] for x in gt["annotations"]]
    segs = sum(len(x["segments_info"]) for x in gt["annotations"]) / n
    w, h = gt["images"][0]["width"], gt["images"][0]["height"]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"{n} images {w}x{h}, {segs:.1f} ground-truth segments/image, {cores} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")

    ref = reference_pq(base, multi=False)
    for jobs in (1, None):
        check_agreement(ref, segeval_pq(base, jobs))
    check_agreement(ref, segeval_pq_rgbx(base, 1))
    print(f"agreement: PQ {ref['All']['pq']:.12f}  SQ {ref['All']['sq']:.12f}  "
          f"RQ {ref['All']['rq']:.12f}  n {ref['All']['n']}: identical counts, scores to 1e-12")

    cases: dict[str, Callable[[], object]] = {
        "reference, 1 proc": lambda: reference_pq(base, multi=False),
        "segeval, 1 proc": lambda: segeval_pq(base, 1),
        "segeval, 1 proc, what-if Pillow RGBX decoder": lambda: segeval_pq_rgbx(base, 1),
        "reference, all cores": lambda: reference_pq(base, multi=True),
        "segeval, all cores": lambda: segeval_pq(base, None),
        "decode only: reference (Pillow + rgb2id), 1 proc": lambda: decode_reference(base, files),
        "decode only: segeval read_label_png, 1 proc": lambda: decode_segeval(base, files),
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for _ in range(a.repeat):
        for name, fn in cases.items():
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    med = {k: statistics.median(v) for k, v in times.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}

    print(f"\nmedian of {a.repeat} interleaved rounds (load average before: "
          f"{os.getloadavg()[0]:.1f} on {cores} cores)")
    print(f"{'case':50s} {'wall s':>7s} {'ms/img':>8s} {'img/s':>7s} {'CPU ms/img':>11s}")
    for name, t in med.items():
        c = f"{med_cpu[name] / n * 1e3:11.2f}" if "all cores" not in name else f"{'-':>11s}"
        print(f"{name:50s} {t:7.3f} {t / n * 1e3:8.2f} {n / t:7.1f} {c}")
    print("(CPU: this process only, so shown for the 1-process cases; on a busy box it is the "
          "steadier per-core figure)")
    c1 = med_cpu["reference, 1 proc"] / med_cpu["segeval, 1 proc"]
    cx = med_cpu["reference, 1 proc"] / med_cpu["segeval, 1 proc, what-if Pillow RGBX decoder"]
    r1 = med["reference, 1 proc"] / med["segeval, 1 proc"]
    ra = med["reference, all cores"] / med["segeval, all cores"]
    r1a = med["reference, 1 proc"] / med["segeval, all cores"]
    dec = med["decode only: segeval read_label_png, 1 proc"]
    print("\nratios (reference time / segeval time; > 1 = segeval faster)")
    print(f"  per core, 1 proc vs 1 proc (anchor 'PQ: panopticapi, 1 process'): {r1:.2f}x wall, "
          f"{c1:.2f}x CPU")
    print(f"  all cores vs the reference on all cores (its CLI default):         {ra:.2f}x")
    print(f"  segeval all cores vs reference 1 proc:                               {r1a:.2f}x")
    rx = med["reference, 1 proc"] / med["segeval, 1 proc, what-if Pillow RGBX decoder"]
    print(f"  per core with a what-if Pillow RGBX decoder instead of read_label_png: {rx:.2f}x "
          f"wall, {cx:.2f}x CPU")
    rest = (med["segeval, 1 proc"] - dec) / n * 1e3
    print(f"  segeval 1 proc spends {dec / med['segeval, 1 proc']:.0%} of its time decoding "
          f"({dec / n * 1e3:.2f} ms/img); the rest is {rest:.2f} ms/img")
    if a.json:
        a.json.write_text(json.dumps({"images": n, "median_s": med, "ratios": {
            "per_core": r1, "all_cores": ra, "all_cores_vs_reference_1proc": r1a,
            "per_core_pillow_rgbx": rx, "per_core_cpu": c1, "per_core_pillow_rgbx_cpu": cx},
            "median_cpu_s": med_cpu}, indent=2))


if __name__ == "__main__":
    main()
