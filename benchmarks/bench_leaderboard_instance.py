#!/usr/bin/env python3
"""Instance (COCO mask AP) leaderboard speed, and what a bootstrap over images would cost.

Data: the shared bench's COCO-instances generator (``/work/shared/bench/make_data.py --only
coco_instances``), ``--images`` images, and ``--submissions`` results files made from its
detections (submission ``s`` multiplies a seeded ``s``-dependent share of the scores by 0.1, so
every submission ranks its detections differently). Each submission is a folder holding
``results.json``. Cases, in interleaved rounds (medians):

* ``anchor``       -- pycocotools ``COCO`` + ``loadRes`` + ``COCOeval(iouType="segm")``
  ``evaluate/accumulate`` once per submission, 1 process (the perf anchor "Mask AP:
  pycocotools COCOeval segm"), with the bbox dropped as segeval does.
* ``score-loop``   -- ``segeval.evaluate(..., "coco")`` once per submission.
* ``leaderboard``  -- ``run_leaderboard`` without a cache, ``--jobs`` processes (ground truth
  read and checked once, one submission per worker).
* ``cached``       -- the same with a warm result cache.
* ``1 resample``   -- not a case of the leaderboard: the time of *one* bootstrap resample of
  one submission (``evaluate`` reused, ``accumulate`` re-run on the drawn image list), the
  reason the instance task reports no intervals. Printed with the 2000-resample total.

All cases must give each submission pycocotools' AP (to 1e-12) before timing.

    python benchmarks/bench_leaderboard_instance.py [--images 200] [--submissions 4] [--jobs 2]
"""

from __future__ import annotations

import contextlib
import io
import json
import statistics
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
    base = shared_data(make_data_py, root / "gen", "coco_instances", images)
    (root / "gt.json").write_bytes((base / "instances_val.json").read_bytes())
    dets = json.loads((base / "detections_segm.json").read_text())
    for s in range(submissions):
        rng = np.random.default_rng(s)
        sub = [dict(d, score=d["score"] * (0.1 if rng.random() < 0.1 * s else 1.0))
               for d in dets]
        folder = root / "subs" / f"team{s:02d}"
        folder.mkdir(parents=True)
        (folder / "results.json").write_text(json.dumps(sub))


def reference_ap(gt_json: Path, results_json: Path) -> float:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(str(gt_json))
        results = json.loads(results_json.read_text())
        for r in results:
            r.pop("bbox", None)
        dt = gt.loadRes(results)
        ev = COCOeval(gt, dt, iouType="segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return float(ev.stats[0])


def one_resample(root: Path) -> float:
    """Seconds of one bootstrap resample's ``accumulate`` for the first submission."""
    from segeval.core.coco_input import check_ground_truth, check_results, load_json
    from segeval.core.instance import _check_params, _run_pycocotools

    gt = check_ground_truth(load_json(root / "gt.json"))
    first = sorted((root / "subs").iterdir())[0] / "results.json"
    ev = _run_pycocotools(gt, check_results(load_json(first), gt),
                          _check_params(gt, None, None, None, None, None), False)
    p = ev._paramsEval
    imgs, n = list(p.imgIds), len(p.imgIds)
    k_count, a_count = len(p.catIds), len(p.areaRng)
    evals = ev.evalImgs
    draw = np.random.default_rng(0).integers(0, n, n)
    ev.evalImgs = [evals[k * a_count * n + a * n + i] for k in range(k_count)
                   for a in range(a_count) for i in draw]
    p.imgIds = ev.params.imgIds = [imgs[i] for i in draw]
    t = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        ev.accumulate()
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    ap = arguments(__doc__.split("\n")[0], 200, 4, generator=True)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data or Path(tmp)
        if not (root / "gt.json").exists():
            t = time.perf_counter()
            make_data(root, args.images, args.submissions, args.make_data)
            print(f"generated {args.images} images x {args.submissions} submissions "
                  f"in {time.perf_counter() - t:.1f} s")
        images = len(json.loads((root / "gt.json").read_text())["images"])
        subs = sorted((root / "subs").iterdir())
        cache = Path(tmp) / "cache.sqlite"
        cases = {
            "anchor": lambda: {s.name: reference_ap(root / "gt.json", s / "results.json")
                               for s in subs},
            "score-loop": lambda: {s.name: float(segeval.evaluate(
                s / "results.json", root / "gt.json", "coco").metrics["AP"]) for s in subs},
            "leaderboard": lambda: {e["submission"]: e["metrics"]["AP"] for e in
                                    run_leaderboard(root / "gt.json", root / "subs", "coco",
                                                    jobs=args.jobs).ranked()},
            "cached": lambda: {e["submission"]: e["metrics"]["AP"] for e in
                               run_leaderboard(root / "gt.json", root / "subs", "coco",
                                               jobs=args.jobs, cache=cache).ranked()},
        }
        med = check_and_time(cases, args.repeat)
        resample = statistics.median(one_resample(root) for _ in range(args.repeat))
    print(f"{images} ground-truth images, {len(subs)} submissions, --jobs {args.jobs}, median "
          f"of {args.repeat} rounds; AP equal to pycocotools' (<= 1e-12) in every case")
    print_table(med, len(subs), "s/submission", scale=1.0, digits=2)
    per_anchor = med["anchor"] / len(subs)
    print(f"one bootstrap resample (accumulate on the drawn images, 1 submission): "
          f"{resample:.2f} s = {resample / per_anchor:.2f}x a whole pycocotools evaluation; "
          f"2000 resamples: {2000 * resample / 60:.0f} min per submission")


if __name__ == "__main__":
    main()
