#!/usr/bin/env python3
"""The reference U-Net against its target: default ``make-data`` + ``train`` must reach a
validation mIoU of at least 0.85 within 5 minutes on 2 CPU cores.

One run, the same code as the CLI with its defaults (1000 + 200 synthetic 64x64 images, width
16, 3 levels, 10 epochs, batch 16, Adam 3e-3 cosine, seed 0, one BLAS thread):

1. ``make_dataset`` into a temporary folder (timed);
2. ``train`` with validation after every epoch (segeval's ConfusionMatrix; timed per epoch);
3. ``predict`` writing the validation PNGs, scored by ``segeval.evaluate(..., "voc")`` from the
   files, which must give the same mIoU as the training loop's last validation.

It prints each epoch, then the figures as ratios to the anchor (300 s, mIoU 0.85): the time
to the first epoch at or above 0.85 and the whole run's time over 300 s, the mIoU over 0.85.
No official tool exists for this one; the anchor is the issue's budget. Wall time on a shared
machine depends on its load, so the process's CPU time (which is the wall time the same run
takes on an idle core, the BLAS being single-threaded) and the load average are printed too.

    python benchmarks/bench_model.py [--threads 1] [--epochs 10] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from segeval.model import DEFAULT_EPOCHS

BUDGET_S, TARGET = 300.0, 0.85


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=1, help="BLAS threads (CLI default 1)")
    ap.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(args.threads)

    import numpy as np

    from segeval.model import data as D
    from segeval.model.train import train
    from segeval.model.unet import UNet
    from segeval.scoring import evaluate

    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{len(os.sched_getaffinity(0))} cores, {args.threads} BLAS thread(s), "
          f"load average {os.getloadavg()[0]:.1f}")
    cpu0 = time.process_time()
    with tempfile.TemporaryDirectory(prefix="segeval-bench-model-") as tmp:
        root = Path(tmp) / "data"
        t0 = time.perf_counter()
        D.make_dataset(root, seed=args.seed)
        t_data = time.perf_counter() - t0
        t1 = time.perf_counter()
        tr, va = D.load_split(root, "train"), D.load_split(root, "val")
        names = D.read_class_names(root)
        t_load = time.perf_counter() - t1
        print(f"make-data: {len(tr)} + {len(va)} images {tr.images.shape[1]}x"
              f"{tr.images.shape[2]} in {t_data:.1f} s; read back in {t_load:.1f} s")
        model = UNet(len(names), seed=args.seed)

        cpu_at: dict[int, float] = {}

        def on_epoch(s) -> None:
            cpu_at[s.epoch] = time.process_time() - cpu0
            print(f"  epoch {s.epoch:2d}  loss {s.loss:.4f}  val mIoU {s.val_miou:.4f}  "
                  f"val PA {s.val_pixel_accuracy:.4f}  {s.seconds:6.1f} s wall  "
                  f"{cpu_at[s.epoch]:6.1f} s CPU", flush=True)

        hist = train(model, tr.images, tr.labels, class_names=names, val_images=va.images,
                     val_labels=va.labels, epochs=args.epochs, seed=args.seed,
                     on_epoch=on_epoch)
        t_train = hist.epochs[-1].seconds
        total = t_data + t_load + t_train
        first = next((e for e in hist.epochs if e.val_miou >= TARGET), None)
        preds = Path(tmp) / "preds"
        from segeval.model.data import image_files, write_predictions

        t2 = time.perf_counter()
        write_predictions(model, image_files(root / "val" / "images"), preds)
        t_pred = time.perf_counter() - t2
        res = evaluate(preds, root / "val" / "labels", "voc", jobs=1)
        final = hist.epochs[-1].val_miou
        if abs(float(res.miou) - final) > 1e-12:
            sys.exit(f"segeval score of the written PNGs {float(res.miou)!r} differs from the "
                     f"training loop's {final!r}")
    to_target = None if first is None else t_data + t_load + first.seconds
    print()
    print(f"anchor: {BUDGET_S:.0f} s on 2 cores, val mIoU >= {TARGET}")
    print(f"make-data + train ({len(hist.epochs)} epochs): {total:.1f} s = "
          f"{total / BUDGET_S:.2f}x the 300 s budget")
    cpu_total = cpu_at[hist.epochs[-1].epoch]
    print(f"  CPU time (make-data included): {cpu_total:.1f} s = "
          f"{cpu_total / BUDGET_S:.2f}x the budget")
    if first is None:
        print(f"val mIoU never reached {TARGET}")
    else:
        print(f"first val mIoU >= {TARGET}: epoch {first.epoch} at {to_target:.1f} s = "
              f"{to_target / BUDGET_S:.2f}x the budget (mIoU {first.val_miou:.4f}); CPU time "
              f"{cpu_at[first.epoch]:.1f} s = {cpu_at[first.epoch] / BUDGET_S:.2f}x")
    print(f"final val mIoU {final:.4f} = {final / TARGET:.3f}x the 0.85 target "
          f"(segeval score --format voc on the written PNGs: {float(res.miou):.4f}); "
          f"pixel accuracy {float(res.pixel_accuracy):.4f}")
    print(f"predict + write 200 PNGs: {t_pred:.2f} s; load average now "
          f"{os.getloadavg()[0]:.1f}")
    if args.json:
        args.json.write_text(json.dumps({
            "make_data_s": t_data, "load_s": t_load, "train_s": t_train, "total_s": total,
            "to_target_s": to_target, "final_val_miou": final, "budget_s": BUDGET_S,
            "target": TARGET, "threads": args.threads, "history": hist.to_dict(),
            "cpu_s": cpu_at,
        }, indent=2) + "\n")


if __name__ == "__main__":
    main()
