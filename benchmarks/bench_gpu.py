#!/usr/bin/env python3
"""GPU confusion-matrix counting: segeval against cupy.bincount, torchmetrics and a memory floor.

On a batch of ``--batch`` 2048x1024 uint8 (ground truth, prediction) label maps already resident
on the GPU (CuPy arrays), 19 classes, 255 as the ignore index, this times, in interleaved rounds
and as medians of CUDA-event times:

* ``segeval``        -- ``count_pixels(pred, gt, 19, 255)``: the shared-memory kernel of
                        ``segeval.core.kernels.cuda``, including the copy of the table to the host
* ``segeval-xp``     -- ``count_pixels_xp(...)``: segeval's CuPy fallback (chunked bincount)
* ``cupy.bincount``  -- ``bincount(where(gt != 255, 19 * gt + pred, 361))``: the combined index
* ``torchmetrics``   -- ``MulticlassJaccardIndex(19, ignore_index=255, average=None)`` update +
                        compute on the same memory (``torch.from_dlpack``), where torch with CUDA
                        and torchmetrics are installed
* ``cupy.sum``       -- ``cupy.sum(gt) + cupy.sum(pred)``: one read of the same bytes, the floor

on two inputs: ``realistic`` (street-scene-like polygons from ``bench_confusion.py``, long runs
of one class) and ``random`` (i.i.d. classes, 10 % ignore). Every case must give the same 19x19
matrix (torchmetrics: the same IoUs) before anything is timed. The kernel's first call (Numba
CUDA compile for the dtype pair) is measured once and reported apart. Target: segeval within 3x
of ``cupy.sum``.

    python benchmarks/bench_gpu.py [--batch 8] [--repeat 20] [--json FILE]

Needs CuPy and a CUDA device (``pip install segeval[gpu]``); without them it says so and exits 2.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_confusion import IGNORE, C, H, W, random_pair, realistic_pair

CASES = ("segeval", "segeval-xp", "cupy.bincount", "torchmetrics", "cupy.sum")


def make_batch(cupy, kind: str, n: int) -> tuple[object, object]:
    """``n`` different (gt, pred) maps on the GPU (up to 4 generated, then repeated)."""
    make = realistic_pair if kind == "realistic" else random_pair
    pairs = [make(seed) for seed in range(min(n, 4))]
    gt = np.stack([pairs[i % len(pairs)][0] for i in range(n)])
    pred = np.stack([pairs[i % len(pairs)][1] for i in range(n)])
    return cupy.asarray(gt), cupy.asarray(pred)


def bincount_recipe(cupy, gt, pred):
    idx = cupy.where(gt != IGNORE, gt.astype(cupy.int32) * C + pred, C * C)
    return cupy.bincount(idx.ravel(), minlength=C * C + 1)[: C * C].reshape(C, C)


def torchmetrics_case(gt, pred, widen: bool = False
                      ) -> tuple[Callable[[], object], Callable[[], np.ndarray]] | None:
    """(timed call, IoU getter) for torchmetrics on the same GPU memory, or ``None``.

    ``widen`` gives it int64 copies (made once, untimed) instead of the uint8 maps.
    """
    try:
        import torch
        from torchmetrics.classification import MulticlassJaccardIndex
    except ImportError:
        return None
    if not torch.cuda.is_available():
        return None
    tg, tp = torch.from_dlpack(gt), torch.from_dlpack(pred)  # zero-copy
    if widen:
        tg, tp = tg.long(), tp.long()
    metric = MulticlassJaccardIndex(num_classes=C, ignore_index=IGNORE, average=None,
                                    validate_args=False).to(tg.device)

    def run() -> object:
        metric.reset()
        metric.update(tp, tg)
        return metric.compute()

    return run, lambda: run().double().cpu().numpy()


def time_interleaved(cupy, fns: dict[str, Callable[[], object]],
                     repeat: int) -> dict[str, list[float]]:
    """``repeat`` rounds of every case after two untimed ones; seconds per call (CUDA events)."""
    samples: dict[str, list[float]] = {name: [] for name in fns}
    start, stop = cupy.cuda.Event(), cupy.cuda.Event()
    for r in range(repeat + 2):
        for name, fn in fns.items():
            cupy.cuda.get_current_stream().synchronize()
            start.record()
            fn()
            stop.record()
            stop.synchronize()
            if r >= 2:
                samples[name].append(cupy.cuda.get_elapsed_time(start, stop) / 1e3)
    return samples


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8, help="label maps per batch (default 8)")
    ap.add_argument("--repeat", type=int, default=20, help="timed rounds (default 20)")
    ap.add_argument("--json", metavar="FILE", help="also save the numbers as JSON")
    args = ap.parse_args(argv)

    from segeval.core.device import require_cuda
    from segeval.errors import DeviceError

    try:
        cupy = require_cuda("bench_gpu.py")
    except DeviceError as e:
        print(f"bench_gpu.py: {e}", file=sys.stderr)
        return 2
    from segeval.core.kernels import count_pixels
    from segeval.core.kernels import cuda as gpu_kernel
    from segeval.core.kernels.xp import count_pixels_xp

    props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    name = props["name"].decode() if isinstance(props["name"], bytes) else props["name"]
    import numba

    results: dict[str, dict[str, object]] = {}
    first_call_s = None
    for kind in ("realistic", "random"):
        gt, pred = make_batch(cupy, kind, args.batch)
        pixels = gt.size
        if first_call_s is None:
            t0 = time.perf_counter()
            count_pixels(pred[:1], gt[:1], C, IGNORE)
            first_call_s = time.perf_counter() - t0
            if gpu_kernel.kernel_unusable():
                print(f"WARNING: shared-memory kernel unusable: {gpu_kernel.kernel_unusable()}")

        want = cupy.asnumpy(bincount_recipe(cupy, gt, pred))
        for label, got in (("segeval", count_pixels(pred, gt, C, IGNORE)),
                           ("segeval-xp", count_pixels_xp(pred, gt, C, IGNORE))):
            assert got.bad_gt_count == 0 and got.bad_pred_value is None, label
            assert np.array_equal(got.table[:, :C], want), f"{label} != cupy.bincount"
        fns: dict[str, Callable[[], object]] = {
            "segeval": lambda g=gt, p=pred: count_pixels(p, g, C, IGNORE),
            "segeval-xp": lambda g=gt, p=pred: count_pixels_xp(p, g, C, IGNORE),
            "cupy.bincount": lambda g=gt, p=pred: bincount_recipe(cupy, g, p),
            "cupy.sum": lambda g=gt, p=pred: cupy.sum(g) + cupy.sum(p),
        }
        tm_note = "torch with CUDA or torchmetrics not installed: torchmetrics not timed"
        union = want.sum(0) + want.sum(1) - np.diag(want)
        with np.errstate(invalid="ignore", divide="ignore"):
            ours = np.where(union > 0, np.diag(want) / union, 0.0)  # torchmetrics: 0 if absent
        for widen in (False, True):
            tm = torchmetrics_case(gt, pred, widen)
            if tm is None:
                break
            if np.allclose(tm[1](), ours, atol=1e-6):
                fns["torchmetrics"] = tm[0]
                tm_note = (f"torchmetrics on {'int64 copies' if widen else 'the same uint8'} "
                           f"maps: same IoUs (abs 1e-6)")
                break
            tm_note = "torchmetrics IoUs differ from segeval's: not timed"
        med = {k: float(np.median(v)) for k, v in time_interleaved(cupy, fns, args.repeat).items()}
        ign = float(cupy.mean(gt == IGNORE))
        print(f"\n{kind}: {args.batch} x {H}x{W} uint8 on the GPU ({pixels / 1e6:.1f} Mpx), "
              f"{ign:.1%} ignore; identical 19x19 matrices; {tm_note}")
        print(f"  {'case':<14} {'ms':>9} {'Gpx/s':>8} {'x cupy.sum':>11}")
        for case in CASES:
            if case in med:
                m = med[case]
                print(f"  {case:<14} {m * 1e3:9.3f} {pixels / m / 1e9:8.2f} "
                      f"{m / med['cupy.sum']:11.2f}")
        ratio = med["segeval"] / med["cupy.sum"]
        print(f"  segeval / cupy.sum time: {ratio:.2f} (target <= 3: "
              f"{'met' if ratio <= 3 else 'MISSED'}); "
              f"segeval vs cupy.bincount: {med['cupy.bincount'] / med['segeval']:.1f}x faster")
        if "torchmetrics" in med:
            print(f"  segeval vs torchmetrics: {med['torchmetrics'] / med['segeval']:.1f}x faster")
        results[kind] = {"ignore_fraction": ign, "pixels": pixels, "median_s": med,
                         "gpixel_per_s": {k: pixels / v / 1e9 for k, v in med.items()},
                         "segeval_over_floor": ratio}
    print(f"\ndevice: {name}; CuPy {cupy.__version__}, Numba {numba.__version__}, "
          f"Python {platform.python_version()}; {args.repeat} interleaved rounds, medians; "
          f"first segeval call (Numba CUDA compile) {first_call_s * 1e3:.0f} ms")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": name, "cupy": cupy.__version__, "numba": numba.__version__,
                       "batch": args.batch, "repeat": args.repeat, "shape": [H, W],
                       "first_call_s": first_call_s, "inputs": results}, f, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
