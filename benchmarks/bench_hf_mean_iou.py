#!/usr/bin/env python3
"""``segeval.compat.hf_mean_iou`` against Hugging Face evaluate's own ``mean_iou`` algorithm.

The anchor is evaluate's NumPy algorithm (``metrics/mean_iou/mean_iou.py`` of
huggingface/evaluate), re-implemented here from a reading of it: per image, ``np.array`` of
both maps, ``label_map`` then ``reduce_labels`` on the reference (0 -> 255, minus 1, 254 ->
255), a boolean mask of ``reference != ignore_index``, the masked pixels, the intersection
``pred[pred == ref]``, and three ``np.histogram(x, bins=C, range=(0, C - 1))`` calls; float64
totals summed over images; ``I / U``, ``I / L``, ``nanmean``. evaluate itself cannot be used
here: its PyPI wheel (``evaluate`` 0.4.6) holds no metric code, and ``evaluate.load
("mean_iou")`` downloads the metric script from the Hugging Face Hub.

Data: 100 images of 512x512, 150 classes, ADE20K-style (references ``uint8`` 0..150 with 0 =
"other", ``reduce_labels=True``, ``ignore_index=255``; blocky regions), predictions the
references' classes with shifted boundaries and blobs of other classes, as

* ``int64`` predictions (a model's ``argmax``, what the transformers examples pass), and
* ``uint8`` predictions (PNG files read back).

Both functions must return the same values (per-class arrays equal, means within 1e-12)
before anything is timed. Times are medians of interleaved rounds on one pinned CPU, after one
untimed call each; segeval's first call (which may load its compiled kernels) is reported
apart.

    python benchmarks/bench_hf_mean_iou.py [--repeat 5] [--images 100] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from segeval.compat import hf_mean_iou

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_confusion import pin_one_cpu

C, SIZE, IGNORE = 150, 512, 255


# --------------------------------------------------------------------------- the anchor


def evaluate_algorithm(predictions: list[Any], references: list[Any], num_labels: int,
                       ignore_index: int, reduce_labels: bool = False) -> dict[str, Any]:
    """evaluate's mean_iou, step by step as its code does them (no label_map: not timed)."""
    edges = (0, num_labels - 1)
    inter = np.zeros(num_labels)
    union = np.zeros(num_labels)
    pred_area = np.zeros(num_labels)
    label_area = np.zeros(num_labels)
    for pred, label in zip(predictions, references, strict=False):
        pred, label = np.array(pred), np.array(label)
        if reduce_labels:
            label[label == 0] = 255
            label = label - 1
            label[label == 254] = 255
        keep = np.not_equal(label, ignore_index)
        p, g = pred[keep], np.array(label)[keep]
        hit = p[p == g]
        i = np.histogram(hit, bins=num_labels, range=edges)[0]
        pa = np.histogram(p, bins=num_labels, range=edges)[0]
        la = np.histogram(g, bins=num_labels, range=edges)[0]
        inter += i
        union += pa + la - i
        pred_area += pa
        label_area += la
    with np.errstate(invalid="ignore", divide="ignore"):
        iou = inter / union
        acc = inter / label_area
        return {"mean_iou": np.nanmean(iou), "mean_accuracy": np.nanmean(acc),
                "overall_accuracy": inter.sum() / label_area.sum(),
                "per_category_iou": iou, "per_category_accuracy": acc}


# --------------------------------------------------------------------------- data


def make_images(n: int, seed: int = 0) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``n`` (prediction as int64, reference as uint8) pairs, ADE20K-like."""
    rng = np.random.default_rng(seed)
    preds, refs = [], []
    for _ in range(n):
        ref = np.full((SIZE, SIZE), int(rng.integers(1, C + 1)), np.uint8)
        for _ in range(int(rng.integers(8, 25))):  # regions of classes 1..150, some "other"
            y, x = rng.integers(0, SIZE, 2)
            h, w = rng.integers(16, 256, 2)
            ref[y:y + h, x:x + w] = rng.integers(0, C + 1) if rng.random() > 0.1 else 0
        pred = np.roll(ref.astype(np.int64) - 1, (3, -4), axis=(0, 1))  # train ids, shifted
        pred[pred < 0] = rng.integers(0, C)
        for _ in range(int(rng.integers(4, 12))):
            y, x = rng.integers(0, SIZE, 2)
            h, w = rng.integers(8, 96, 2)
            pred[y:y + h, x:x + w] = rng.integers(0, C)
        preds.append(pred)
        refs.append(ref)
    return preds, refs


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    for k in ("per_category_iou", "per_category_accuracy"):
        if not np.array_equal(a[k], b[k], equal_nan=True):
            return False
    return all(abs(float(a[k]) - float(b[k])) <= 1e-12
               for k in ("mean_iou", "mean_accuracy", "overall_accuracy"))


def time_interleaved(fns: dict[str, Any], repeat: int) -> dict[str, float]:
    """Median seconds per call over ``repeat`` interleaved rounds after one untimed round."""
    samples: dict[str, list[float]] = {k: [] for k in fns}
    for r in range(repeat + 1):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            if r:
                samples[name].append(time.perf_counter() - t0)
    return {k: float(np.median(v)) for k, v in samples.items()}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=5, help="timed rounds (default 5)")
    ap.add_argument("--images", type=int, default=100, help="images (default 100)")
    ap.add_argument("--json", metavar="FILE", help="also save the numbers as JSON")
    args = ap.parse_args(argv)
    cpu = pin_one_cpu()
    preds, refs = make_images(args.images)
    kw = {"num_labels": C, "ignore_index": IGNORE, "reduce_labels": True}
    t0 = time.perf_counter()
    first = hf_mean_iou(preds, refs, **kw)
    first_s = time.perf_counter() - t0
    print(f"numpy {np.__version__}, Python {platform.python_version()}, pinned to CPU {cpu}; "
          f"{args.images} images {SIZE}x{SIZE}, {C} classes, reduce_labels=True, "
          f"ignore_index={IGNORE}; medians of {args.repeat} interleaved rounds")
    print(f"segeval's first call (kernel loading included): {first_s:.3f} s")
    out: dict[str, Any] = {"images": args.images, "size": SIZE, "classes": C,
                           "first_call_s": first_s, "cases": {}}
    for label, ps in (("int64 predictions", preds),
                      ("uint8 predictions", [p.astype(np.uint8) for p in preds])):
        want = evaluate_algorithm(ps, refs, **kw)
        got = hf_mean_iou(ps, refs, **kw)
        assert same(got, want), f"{label}: segeval differs from evaluate's algorithm"
        assert same(got, first) or label != "int64 predictions"
        med = time_interleaved({"evaluate": lambda ps=ps: evaluate_algorithm(ps, refs, **kw),
                                "segeval": lambda ps=ps: hf_mean_iou(ps, refs, **kw)},
                               args.repeat)
        ratio = med["evaluate"] / med["segeval"]
        print(f"\n{label} (uint8 references), identical results (mIoU {got['mean_iou']:.6f}):")
        print(f"  evaluate's algorithm {med['evaluate']:8.3f} s")
        print(f"  segeval hf_mean_iou  {med['segeval']:8.3f} s")
        print(f"  ratio: segeval {ratio:.1f}x faster")
        out["cases"][label] = {**med, "speedup": ratio, "mean_iou": float(got["mean_iou"])}
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(out, f, indent=2)


if __name__ == "__main__":
    main()
