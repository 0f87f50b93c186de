"""The one "which kernel" policy of :mod:`segeval.core.kernels`: ``use_compiled`` per call,
``warm`` per run, and the same integers whichever kernel it picks."""

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


def test_compiled_modules_are_the_jit_files() -> None:
    here = Path(kernels.__file__).parent
    on_disk = {f"segeval.core.kernels.{p.stem}" for p in here.glob("*_jit.py")}
    assert set(kernels.COMPILED_MODULES) == on_disk


def test_small_inputs_stay_off_numba_until_something_compiled_is_loaded() -> None:
    out = fresh("""
        import sys
        import numpy as np
        from segeval.core import kernels as k
        n = k.COMPILED_MIN_BYTES
        small, big = np.zeros(n - 1, np.uint8), np.zeros(n, np.uint8)
        print(k.compiled_loaded(), k.use_compiled(n - 1))
        k.count_pixels(small, small, 2, 255)
        print("numba" in sys.modules, k.compiled_loaded())
        print(k.use_compiled(n), k.compiled_loaded())
        k.count_pixels(big, big, 2, 255)
        print("segeval.core.kernels.confusion_jit" in sys.modules, k.compiled_loaded())
        print(k.use_compiled(1))
    """)
    assert out == ["False", "False",  # nothing loaded, small: reference
                   "False", "False",  # ... and Numba was not even imported
                   "True", "False",  # large: compiled (deciding loads nothing)
                   "True", "True",  # the large call loaded it
                   "True"]  # loaded: compiled for any size


def spy(monkeypatch, owner, name: str) -> list[int]:
    """Count the calls of ``owner.name`` (still calling it)."""
    calls: list[int] = []
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, wrapper)
    return calls


@pytest.mark.parametrize("loaded", [False, True])
def test_every_decision_site_follows_use_compiled(monkeypatch, loaded) -> None:
    from segeval.core.kernels import cityscapes_jit, confusion_jit, panoptic_jit

    monkeypatch.setattr(kernels, "COMPILED_MIN_BYTES", 100)
    monkeypatch.setattr(kernels, "compiled_loaded", lambda: loaded)
    sites = {
        "count_pixels": (spy(monkeypatch, confusion_jit, "count_pixels_jit"),
                         lambda a: count_pixels(a, a, 3, 255)),
        "intersections": (spy(monkeypatch, panoptic_jit, "pair_counts"),
                          lambda a: panoptic.intersections(a, a, np.array([1, 2]),
                                                           np.array([1, 2]))),
        "count_cityscapes": (spy(monkeypatch, cityscapes_jit, "_histogram_u8"),
                             lambda a: cityscapes.count_cityscapes(
                                 a, a, None, np.arange(256, dtype=np.uint8),
                                 np.zeros(256, np.uint8))),
    }
    rng = np.random.default_rng(0)
    for name, (calls, site) in sites.items():
        small = rng.integers(0, 3, (9, 11)).astype(np.uint8)  # 99 pixels of one byte
        site(small)
        assert len(calls) == (1 if loaded else 0), name
        site(rng.integers(0, 3, (10, 10)).astype(np.uint8))  # 100 pixels
        assert len(calls) == (2 if loaded else 1), name


# ---------------------------------------------------------------------------- warm

_WORKLOAD = """
    # what real runs pass to the compiled kernels once they are loaded
    import numpy as np
    from segeval.core import panoptic
    from segeval.core.kernels import cityscapes, count_pixels
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
    labels = rng.integers(0, 30, (6, 7)).astype(np.uint8)
    ids16 = (rng.integers(0, 3, (6, 7)) * 1000 + 26000).astype(np.uint16)
    rgb = rng.integers(0, 3, (6, 7, 3)).astype(np.uint8)
    rgba = np.concatenate([rgb, np.full((6, 7, 1), 255, np.uint8)], axis=2)
    l8 = png.decode_label_png(enc(labels, "L"), "a")
    l16 = png.decode_label_png(enc(ids16, "I;16"), "b")
    ids = png.decode_label_png(enc(rgb, "RGB"), "c", panoptic=True)
    ids4 = png.decode_label_png(enc(rgba, "RGBA"), "d", panoptic=True)
    for gt in (l8, l16):
        for pred in (l8, l16):
            count_pixels(pred, gt, 30, 255)
    seg = np.unique(ids[ids > 0]).astype(np.int64)
    panoptic.intersections(ids, ids4, seg, seg)
    lut, cat = np.arange(256, dtype=np.uint8), np.zeros(256, np.uint8)
    for inst in (None, l16):
        cityscapes.count_cityscapes(l8, l8, inst, lut, cat)
    for inst in (None, Member(enc(ids16, "I;16"))):
        fused.pair_stats(Member(enc(labels, "L")), Member(enc(labels, "L")), inst, "label")
"""


def test_warm_loads_everything_above_its_threshold_only() -> None:
    out = fresh(textwrap.dedent("""
        import sys
        from segeval.core import kernels as k

        def signatures():
            found = {}
            for name in k.COMPILED_MODULES:
                for attr, obj in vars(sys.modules[name]).items():
                    if hasattr(obj, "signatures") and obj.targetoptions.get("inline") != "always":
                        found[f"{obj.__module__}.{attr}"] = set(obj.signatures)
            return found

        print(k.warm(k.WARM_MIN_PIXELS - 1), "numba" in sys.modules, k.compiled_loaded())
        print(k.warm(k.WARM_MIN_PIXELS), all(m in sys.modules for m in k.COMPILED_MODULES),
              k.use_compiled(1))
        warmed = signatures()
        print(all(warmed.values()))  # every compiled entry point was called
    """) + textwrap.dedent(_WORKLOAD) + textwrap.dedent("""
        after = signatures()
        print(sorted(f"{n}:{s - warmed[n]}" for n, s in after.items() if s != warmed[n]) or "-")
    """))
    assert out[:7] == ["False", "False", "False",  # below: nothing loaded, not even Numba
                       "True", "True", "True",  # above: every compiled module loaded
                       "True"]
    # a real run after warm() finds every kernel ready for its argument types: nothing new to
    # load or compile in a forked worker
    assert out[7:] == ["-"]


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
        for kernel in ("jit", "auto"):
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
        for kernel in ("jit", "table", "auto"):
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
            for kernel in ("jit", "auto"):
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


def test_warm_loads_only_the_kernels_a_plan_names() -> None:
    """A plan names the kernels it uses (``Plan.kernels``): the others stay unloaded."""
    out = fresh("""
        import sys
        from segeval.core import kernels as k
        print(k.warm(k.WARM_MIN_PIXELS, ("png", "confusion")))
        print(sorted(m.rsplit(".", 1)[1] for m in k.COMPILED_MODULES if m in sys.modules))
    """)
    assert out == ["True", "['confusion_jit']"]  # the PNG kernels are C, not Numba
    assert set(kernels.WARMERS) >= {"png", "confusion", "panoptic", "cityscapes", "fused", "mask"}
