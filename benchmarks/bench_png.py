#!/usr/bin/env python3
"""Label-PNG decoding speed: segeval's fast reader against Pillow and imagecodecs, one run.

For 2048x1024 label maps of three kinds, in interleaved rounds on one pinned CPU (medians of
ms per image, warm page cache):

* ``labelIds``    8-bit grey (Cityscapes ``*_gtFine_labelIds.png``) -> uint8
* ``instanceIds`` 16-bit grey (``*_gtFine_instanceIds.png``)        -> uint16
* ``panoptic``    RGB (``*_gtFine_panoptic.png``) -> uint32 ids R + 256 G + 256^2 B

cases: ``segeval fast`` (``read_label_png(p, decoder="fast")``), ``segeval fast/zlib`` (the
same with the ``deflate`` package hidden: stdlib zlib inflates), ``segeval pillow``
(``decoder="pillow"``), ``Pillow`` (``np.asarray(Image.open(p))``, plus the id packing for
panoptic: the perf-anchors' reference) and, where installed, ``imagecodecs`` (``png_decode`` of
the file's bytes, plus the packing). Every case must return the identical array before anything
is timed. Ratios are to ``Pillow`` of the same run. A second table times inflating the same
IDAT streams to their known size with every installed inflate library (stdlib ``zlib``, and
``deflate`` = libdeflate, ``isal`` = ISA-L, ``zlib_ng`` = zlib-ng where installed): the
measurement behind segeval's choice of libdeflate.

Data: ``--data DIR`` takes the files from a ``../shared/bench/make_data.py`` output (its
``cityscapes/`` folder); without it, ``--files`` label maps per kind are drawn here (random
polygons, saved by Pillow with its default settings, as cityscapesScripts writes them).

    python benchmarks/bench_png.py [--data DIR] [--files 5] [--repeat 15] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from segeval.formats.png import read_label_png

H, W = 1024, 2048
KINDS = {"labelIds": "*_gtFine_labelIds.png", "instanceIds": "*_gtFine_instanceIds.png",
         "panoptic": "*_gtFine_panoptic.png"}
THINGS = range(24, 34)  # Cityscapes labelIds that have instances


def pin_one_cpu() -> int | None:
    """Pin this process to its first allowed CPU; return it (``None`` where unsupported)."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def draw_scene(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(labelIds uint8, instanceIds uint16) of one street-like scene of random polygons."""
    label = Image.new("L", (W, H), 7)  # road
    inst = Image.new("I", (W, H), 7)
    dl, di = ImageDraw.Draw(label), ImageDraw.Draw(inst)
    dl.rectangle((0, 0, W, H // 3), fill=23)  # sky
    di.rectangle((0, 0, W, H // 3), fill=23)
    for k in range(1, int(rng.integers(40, 70)) + 1):
        cls = int(rng.choice([11, 17, 20, 21, 8, *THINGS]))
        cx, cy = rng.uniform(0, W), rng.uniform(H * 0.2, H)
        r = rng.uniform(20, 260)
        ang = np.sort(rng.uniform(0, 2 * np.pi, int(rng.integers(3, 12))))
        pts = [(float(cx + r * rng.uniform(0.4, 1) * np.cos(a)),
                float(cy + r * rng.uniform(0.4, 1) * np.sin(a))) for a in ang]
        dl.polygon(pts, fill=cls)
        di.polygon(pts, fill=cls * 1000 + k if cls in THINGS else cls)
    dl.rectangle((0, H - 40, W, H), fill=1)  # ego vehicle
    di.rectangle((0, H - 40, W, H), fill=1)
    return np.asarray(label), np.asarray(inst).astype(np.uint16)


def make_files(folder: Path, n: int) -> dict[str, list[Path]]:
    rng = np.random.default_rng(0)
    files: dict[str, list[Path]] = {k: [] for k in KINDS}
    for i in range(n):
        label, inst = draw_scene(rng)
        ids = np.where(inst >= 1000, inst.astype(np.uint32) * 7 + 1, inst)  # segment ids
        rgb = np.stack([ids & 255, (ids >> 8) & 255, (ids >> 16) & 255], -1).astype(np.uint8)
        for kind, img in (("labelIds", Image.fromarray(label)),
                          ("instanceIds", Image.fromarray(inst)),
                          ("panoptic", Image.fromarray(rgb))):
            path = folder / f"scene_{i:03d}_gtFine_{kind}.png"
            img.save(path)
            files[kind].append(path)
    return files


def find_files(data: Path, n: int) -> dict[str, list[Path]]:
    root = data / "cityscapes" if (data / "cityscapes").is_dir() else data
    files = {k: sorted(root.rglob(pattern))[:n] for k, pattern in KINDS.items()}
    for k, found in files.items():
        if not found:
            raise SystemExit(f"{data}: no {KINDS[k]} files (a make_data.py output?)")
    return files


def pack_ids(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return rgb[..., 0] | (rgb[..., 1] << 8) | (rgb[..., 2] << 16)


def _without_deflate(fn: Callable[..., np.ndarray], *args: object, **kwargs: object) -> np.ndarray:
    """``fn`` with libdeflate hidden (the ``deflate`` package and its library): the reader falls
    back to stdlib zlib, as it does where ``deflate`` is not installed."""
    from segeval.formats import png

    saved, saved_fn = sys.modules.get("deflate"), png._libdeflate_fn
    sys.modules["deflate"] = None  # type: ignore[assignment]
    png._libdeflate_fn = False
    try:
        return fn(*args, **kwargs)
    finally:
        png._libdeflate_fn = saved_fn
        if saved is None:
            del sys.modules["deflate"]
        else:
            sys.modules["deflate"] = saved


def cases(kind: str) -> dict[str, Callable[[Path], np.ndarray]]:
    panoptic = kind == "panoptic"
    out: dict[str, Callable[[Path], np.ndarray]] = {
        "segeval fast": lambda p: read_label_png(p, panoptic=panoptic, decoder="fast"),
        "segeval fast/zlib": lambda p: _without_deflate(read_label_png, p, panoptic=panoptic,
                                                        decoder="fast"),
        "segeval pillow": lambda p: read_label_png(p, panoptic=panoptic, decoder="pillow"),
    }
    if panoptic:
        out["Pillow"] = lambda p: pack_ids(np.asarray(Image.open(p)))
    else:
        out["Pillow"] = lambda p: np.asarray(Image.open(p))
    try:
        import imagecodecs
    except ImportError:
        return out
    if panoptic:
        out["imagecodecs"] = lambda p: pack_ids(imagecodecs.png_decode(p.read_bytes()))
    else:
        out["imagecodecs"] = lambda p: imagecodecs.png_decode(p.read_bytes())
    return out


def bench(files: list[Path], fns: dict[str, Callable[[Path], np.ndarray]],
          repeat: int) -> dict[str, float]:
    """Median ms per image of every case, cases interleaved file by file."""
    for path in files:  # identical arrays, and warm-up
        ref = fns["Pillow"](path)
        for name, fn in fns.items():
            got = fn(path)
            if got.dtype != ref.dtype or not np.array_equal(got, ref):
                raise SystemExit(f"{name} differs from Pillow on {path}")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for path in files:
            for name, fn in fns.items():
                t = time.perf_counter()
                fn(path)
                times[name].append(time.perf_counter() - t)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def inflaters() -> dict[str, Callable[[bytes, int], bytes]]:
    import zlib

    out: dict[str, Callable[[bytes, int], bytes]] = {
        "zlib (stdlib)": lambda d, n: zlib.decompress(d, bufsize=n)}
    try:
        import deflate

        out["deflate (libdeflate)"] = deflate.zlib_decompress
    except ImportError:
        pass
    try:
        from isal import isal_zlib

        out["isal (ISA-L)"] = lambda d, n: isal_zlib.decompress(d, bufsize=n)
    except ImportError:
        pass
    try:
        from zlib_ng import zlib_ng

        out["zlib_ng"] = lambda d, n: zlib_ng.decompress(d, bufsize=n)
    except ImportError:
        pass
    return out


def idat_stream(path: Path) -> tuple[bytes, int]:
    """The concatenated IDAT payload of a PNG and its inflated size."""
    import struct
    import zlib

    data, pos, parts = path.read_bytes(), 8, []
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        if data[pos + 4:pos + 8] == b"IDAT":
            parts.append(data[pos + 8:pos + 8 + n])
        pos += 12 + n
    stream = b"".join(parts)
    return stream, len(zlib.decompress(stream))


def bench_inflate(files: list[Path], repeat: int) -> dict[str, float]:
    streams = [idat_stream(p) for p in files]
    fns = inflaters()
    for stream, n in streams:
        ref = fns["zlib (stdlib)"](stream, n)
        for name, fn in fns.items():
            if fn(stream, n) != ref:
                raise SystemExit(f"{name} inflates differently")
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for stream, n in streams:
            for name, fn in fns.items():
                t = time.perf_counter()
                fn(stream, n)
                times[name].append(time.perf_counter() - t)
    return {name: 1e3 * statistics.median(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, help="a make_data.py output folder")
    ap.add_argument("--files", type=int, default=5, help="files per kind [5]")
    ap.add_argument("--repeat", type=int, default=15, help="rounds [15]")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    cpu = pin_one_cpu()
    t = time.perf_counter()
    from segeval.core.kernels import c_png  # noqa: F401 - the extension's import, reported apart
    startup = time.perf_counter() - t
    with tempfile.TemporaryDirectory() as tmp:
        files = (find_files(args.data, args.files) if args.data
                 else make_files(Path(tmp), args.files))
        print(f"label-PNG decoding, {W}x{H}, {args.files} files per kind, {args.repeat} rounds, "
              f"median ms/image, pinned to CPU {cpu}; {platform.python_version()}, numpy "
              f"{np.__version__}, Pillow {Image.__version__}; PNG extension import "
              f"{1e3 * startup:.1f} ms")
        results: dict[str, dict[str, float]] = {}
        for kind, paths in files.items():
            size = sum(p.stat().st_size for p in paths) / len(paths) / 1024
            ms = bench(paths, cases(kind), args.repeat)
            results[kind] = ms
            print(f"\n{kind} ({size:.0f} KB/file)")
            for name, v in ms.items():
                print(f"  {name:<18} {v:7.2f} ms   {v / ms['Pillow']:5.2f}x Pillow")
        print("\ninflate only (IDAT stream -> known size), ms/image")
        inflate = {kind: bench_inflate(paths, args.repeat) for kind, paths in files.items()}
        print(f"  {'':<22}" + "".join(f"{kind:>13}" for kind in inflate))
        for name in next(iter(inflate.values())):
            print(f"  {name:<22}" + "".join(f"{inflate[k][name]:13.2f}" for k in inflate))
        results["inflate"] = {f"{k}: {n}": v for k, d in inflate.items() for n, v in d.items()}
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
