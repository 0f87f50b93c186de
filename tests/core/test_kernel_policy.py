"""The one "which kernel" policy of :mod:`segeval.core.kernels`: the compiled kernels wherever
they import (``compiled_available``), the NumPy reference and Pillow with one warning where
they do not, and the same integers whichever kernel runs."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from segeval.core import kernels, panoptic
from segeval.core.kernels import cityscapes, count_pixels
from segeval.formats import png
from tests.conftest import REPO
from tests.formats import pngenc


def fresh(code: str) -> list[str]:
    """What ``code`` prints, run by a new interpreter (no module loaded yet)."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, cwd=REPO, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def encode(arr: np.ndarray, mode: str) -> bytes:
    """A PNG of ``arr`` ("L", "I;16", "RGB" or "RGBA"), rows cycling through every filter."""
    colour = {"L": pngenc.GREY, "I;16": pngenc.GREY, "RGB": pngenc.RGB, "RGBA": pngenc.RGBA}
    return pngenc.encode(arr, colour[mode], bit_depth=16 if mode == "I;16" else 8,
                         filters=(0, 1, 2, 3, 4))


# ---------------------------------------------------------------------------- the rule


def test_compiled_modules_are_the_extension_sources() -> None:
    here = Path(kernels.__file__).parent
    on_disk = {f"segeval.core.kernels.{p.stem}" for p in here.glob("c_*.pyx")}
    assert set(kernels.COMPILED_MODULES) == on_disk


def test_the_compiled_kernels_load_without_a_jit() -> None:
    """Compiled ahead of time: a process uses them from its first call, and never imports
    Numba (or llvmlite) to do so."""
    out = fresh("""
        import sys
        import numpy as np
        from segeval.core import kernels as k
        a = np.zeros(16, np.uint8)
        print(k.compiled_available(), k.count_pixels(a, a, 2, 255).table[0, 0])
        print("numba" in sys.modules, "llvmlite" in sys.modules,
              all(m in sys.modules for m in k.COMPILED_MODULES))
    """)
    assert out == ["True", "16", "False", "False", "True"]


def spy(monkeypatch, owner, name: str) -> list[int]:
    """Count the calls of ``owner.name`` (still calling it)."""
    calls: list[int] = []
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


def test_every_decision_site_takes_the_compiled_kernel_at_any_size(monkeypatch) -> None:
    from segeval.core.kernels import c_count

    sites = {
        "count_pixels": (spy(monkeypatch, c_count, "histogram_u8"),
                         lambda a: count_pixels(a, a, 3, 255)),
        "intersections": (spy(monkeypatch, c_count, "pair_counts"),
                          lambda a: panoptic.intersections(a, a, np.array([1, 2]),
                                                           np.array([1, 2]))),
        "count_cityscapes": (spy(monkeypatch, c_count, "count_with_instances"),
                             lambda a: cityscapes.count_cityscapes(
                                 a, a, a.astype(np.uint16), np.arange(256, dtype=np.uint8),
                                 np.zeros(256, np.uint8))),
        "png auto": (spy(monkeypatch, png, "_decode_fast"),
                     lambda a: png.decode_label_png(encode(a, "L"), "x.png")),
    }
    rng = np.random.default_rng(0)
    for name, (calls, site) in sites.items():
        site(rng.integers(0, 3, (1, 1)).astype(np.uint8))  # one pixel
        site(rng.integers(0, 3, (300, 200)).astype(np.uint8))
        assert len(calls) == 2, name


_FALLBACK = """
    # the extension modules cannot be imported (an exotic platform): every kernel falls back
    import importlib.abc
    import sys
    import warnings

    class NoExtension(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name in ("segeval.core.kernels.c_count", "segeval.core.kernels.c_png"):
                raise ImportError(f"no module named {name!r} (blocked by the test)")
            return None

    sys.meta_path.insert(0, NoExtension())
    warnings.simplefilter("always")
    import numpy as np
    from segeval.core import kernels as k, panoptic
    from segeval.core.kernels import cityscapes
    from segeval.formats import png
    from segeval.formats.cityscapes import fused
    from tests.core.test_kernel_policy import encode as enc

    class Member:  # a File: read() and a name
        def __init__(self, data):
            self.data = data
        def read(self):
            return self.data
        def __str__(self):
            return "member.png"

    rng = np.random.default_rng(1)
    labels = rng.integers(0, 30, (60, 70)).astype(np.uint8)
    ids16 = (rng.integers(0, 3, (60, 70)) * 1000 + 26000).astype(np.uint16)
    rgb = rng.integers(0, 3, (60, 70, 3)).astype(np.uint8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        print(k.compiled_available(), k.compiled_available())
        print(k.count_pixels(labels, labels, 30, 255).table.trace() == labels.size)
        print((png.decode_label_png(enc(labels, "L"), "a") == labels).all(),
              (png.decode_label_png(enc(ids16, "I;16"), "b") == ids16).all())
        ids = png.decode_label_png(enc(rgb, "RGB"), "c", panoptic=True)
        seg = np.unique(ids[ids > 0]).astype(np.int64)
        print(panoptic.intersections(ids, ids, seg, seg).trace() == ids.size)
        lut, cat = np.arange(256, dtype=np.uint8), np.zeros(256, np.uint8)
        print(cityscapes.count_cityscapes(labels, labels, ids16, lut, cat).size.sum()
              == ids16.size)
        print(fused.pair_stats(Member(enc(labels, "L")), Member(enc(labels, "L")),
                               Member(enc(ids16, "I;16")), "label"))
    print(len(caught), caught[0].category.__name__, "not available" in str(caught[0].message))
    print(any(m in sys.modules for m in k.COMPILED_MODULES))
"""


def test_without_the_extension_everything_falls_back_with_one_warning() -> None:
    out = fresh(_FALLBACK)
    assert out == ["False", "False", "True", "True", "True", "True", "True", "None",
                   "1", "RuntimeWarning", "True", "False"]


# ---------------------------------------------------------------------------- same integers


@pytest.mark.parametrize("gt_dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("pred_dtype", [np.uint8, np.uint16])
def test_count_pixels_same_integers_whichever_kernel(gt_dtype, pred_dtype) -> None:
    rng = np.random.default_rng(3)
    for c, ignore in ((19, 255), (5, None), (300, 255)):
        gt = rng.integers(0, c + 3, (37, 41))
        gt[rng.random(gt.shape) < 0.1] = 255
        gt = gt.astype(gt_dtype)
        pred = (rng.integers(0, c + 4, gt.shape) % (np.iinfo(pred_dtype).max + 1))
        pred = pred.astype(pred_dtype)
        oracle = count_pixels(pred, gt, c, ignore, kernel="reference")
        for kernel in ("compiled", "auto"):
            got = count_pixels(pred, gt, c, ignore, kernel=kernel)
            np.testing.assert_array_equal(got.table, oracle.table)
            assert got[1:] == oracle[1:]


def test_intersections_same_integers_whichever_kernel() -> None:
    rng = np.random.default_rng(4)
    for _ in range(5):
        gt_ids = rng.choice(np.arange(1, 1 << 24, 997), 12, replace=False)
        pred_ids = rng.choice(np.arange(1, 1 << 24, 991), 9, replace=False)
        gt = rng.choice(np.r_[0, gt_ids, 5], (23, 29)).astype(np.uint32)  # 5: an unknown id
        pred = rng.choice(np.r_[0, pred_ids], gt.shape).astype(np.uint32)
        oracle = panoptic.intersections(pred, gt, pred_ids, gt_ids, kernel="general")
        for kernel in ("compiled", "table", "auto"):
            got = panoptic.intersections(pred, gt, pred_ids, gt_ids, kernel=kernel)
            np.testing.assert_array_equal(got, oracle)


def test_cityscapes_same_integers_whichever_kernel() -> None:
    rng = np.random.default_rng(5)
    lut = rng.integers(0, 34, 256).astype(np.uint8)
    category_of = rng.integers(0, 8, 256).astype(np.uint8)
    for _ in range(3):
        gt = rng.integers(0, 34, (31, 37)).astype(np.uint8)
        pred = rng.integers(0, 256, gt.shape).astype(np.uint8)
        inst = (gt.astype(np.uint16) * 1000 + rng.integers(0, 4, gt.shape)).astype(np.uint16)
        for instances in (None, inst):
            oracle = cityscapes.count_cityscapes(gt, pred, instances, lut, category_of,
                                                 kernel="reference")
            for kernel in ("compiled", "auto"):
                got = cityscapes.count_cityscapes(gt, pred, instances, lut, category_of,
                                                  kernel=kernel)
                for a, b in zip(got, oracle, strict=True):
                    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("mode", ["L", "I;16", "RGB", "RGBA"])
def test_png_same_integers_whichever_decoder(mode) -> None:
    rng = np.random.default_rng(6)
    shape = {"RGB": (13, 17, 3), "RGBA": (13, 17, 4)}.get(mode, (13, 17))
    dtype = np.uint16 if mode == "I;16" else np.uint8
    arr = rng.integers(0, np.iinfo(dtype).max + 1, shape).astype(dtype)
    data = encode(arr, mode)
    panoptic_ids = mode.startswith("RGB")
    oracle = png.decode_label_png(data, "x.png", panoptic=panoptic_ids, decoder="pillow")
    for decoder in ("fast", "auto"):
        got = png.decode_label_png(data, "x.png", panoptic=panoptic_ids, decoder=decoder)
        assert got.dtype == oracle.dtype
        np.testing.assert_array_equal(got, oracle)
