"""The GPU kernel: under Numba's CUDA simulator here, on CuPy arrays where there is a GPU.

The simulator runs the very kernel source (:mod:`segeval.core.kernels.cuda`) thread by thread in
Python, shared memory, atomics and barriers included, on NumPy arrays. It must be switched on
before Numba is imported, so it runs in a child process (``NUMBA_ENABLE_CUDASIM=1``) that saves
the kernel's raw counts; this process compares them with the NumPy reference kernel. The inputs
are small (the simulator is slow) but span several blocks, runs that cross grid strides, every
dtype and every kind of bad value.

The CuPy tests need CuPy and a CUDA device; they are skipped, with the reason, elsewhere.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from segeval.core.kernels import count_pixels

REPO = Path(__file__).resolve().parents[2]

# (name, gt dtype, pred dtype, ignore, C, shape, threads per block)
CASES = [
    ("u8", "uint8", "uint8", 255, 7, (2, 23, 41), 32),
    ("i64_negative", "int64", "int32", -1, 5, (37, 29), 16),
    ("u16_no_ignore", "uint16", "uint8", None, 9, (1100,), 32),
    ("bool", "bool", "bool", None, 2, (33, 17), 32),
    ("u64_as_i64", "uint64", "int16", -1, 4, (600,), 8),
    ("one_class", "uint8", "uint8", 255, 1, (300,), 32),
    ("long_runs", "uint8", "uint8", 255, 19, (4, 64, 48), 64),
    ("all_ignored", "uint8", "uint8", 255, 3, (50,), 32),
    ("empty", "uint8", "uint8", 255, 3, (0, 5), 32),
    ("too_many_bins", "uint16", "uint16", 65535, 120, (400,), 32),  # CuPy-free fallback path
]


def make_case(name: str, gt_dtype: str, pred_dtype: str, ignore: int | None, c: int,
              shape: tuple[int, ...], seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels with every kind of value: classes, ignore, bad gt, bad (also negative) preds."""
    rng = np.random.default_rng(seed)
    signed_gt = np.dtype(gt_dtype).kind == "i"
    signed_pred = np.dtype(pred_dtype).kind == "i"
    if name == "long_runs":  # constant blocks: long runs of one bin, as in real label maps
        tiles = rng.integers(0, c, (shape[0], shape[1] // 16, shape[2] // 16))
        gt = np.kron(tiles, np.ones((1, 16, 16), np.int64))
        pred = np.where(rng.random(shape) < 0.9, gt, rng.integers(0, c + 2, shape))
    else:
        gt = rng.integers(-2 if signed_gt else 0, c + 2, shape)
        pred = rng.integers(-3 if signed_pred else 0, c + 3, shape)
    if ignore is not None:
        gt[rng.random(shape) < (1.0 if name == "all_ignored" else 0.2)] = ignore
    if gt_dtype == "bool":
        return (pred % 2).astype(bool), (gt % 2).astype(bool)
    return pred.astype(pred_dtype), gt.astype(gt_dtype)


CHILD = """
import json, sys
import numpy as np
from numba.core import config
assert config.ENABLE_CUDASIM, "the CUDA simulator is not on"
from segeval.core.kernels import count_pixels
from segeval.core.kernels.cuda import count_pixels_cuda
from tests.core.test_cuda_kernel import CASES, make_case
out = {}
for i, (name, gd, pd, ignore, c, shape, threads) in enumerate(CASES):
    pred, gt = make_case(name, gd, pd, ignore, c, shape, seed=i)
    r = count_pixels_cuda(pred, gt, c, ignore, threads=threads)
    out[name] = [r.table.tolist(), r.bad_gt_count, r.bad_gt_value, r.bad_pred_value,
                 str(r.table.dtype)]
r = count_pixels(*make_case(*CASES[0][:6], seed=0), CASES[0][4], CASES[0][3], kernel="cuda")
out["dispatch"] = [r.table.tolist(), r.bad_gt_count, r.bad_gt_value, r.bad_pred_value,
                   str(r.table.dtype)]
json.dump(out, sys.stdout)
"""


@pytest.fixture(scope="module")
def simulated() -> dict:
    if importlib.util.find_spec("numba.cuda") is None:  # a Numba without its CUDA target
        pytest.skip("numba.cuda is not installed (pip install numba-cuda)")
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1",
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                          env=env, cwd=REPO, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout)


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_simulated_kernel_equals_reference(simulated: dict, case: int) -> None:
    name, gd, pd, ignore, c, shape, _ = CASES[case]
    pred, gt = make_case(name, gd, pd, ignore, c, shape, seed=case)
    ref = count_pixels(pred, gt, c, ignore, kernel="reference")
    table, bad_gt_count, bad_gt_value, bad_pred_value, dtype = simulated[name]
    np.testing.assert_array_equal(np.array(table, np.int64).reshape(ref.table.shape), ref.table)
    assert dtype == "int64"
    assert (bad_gt_count, bad_gt_value, bad_pred_value) == ref[1:]


def test_simulated_dispatch_kernel_cuda(simulated: dict) -> None:
    name, gd, pd, ignore, c, shape, _ = CASES[0]
    ref = count_pixels(*make_case(name, gd, pd, ignore, c, shape, seed=0), c, ignore,
                       kernel="reference")
    assert simulated["dispatch"][0] == ref.table.tolist()
    assert tuple(simulated["dispatch"][1:4]) == ref[1:]


def test_cases_exercise_every_branch() -> None:
    """The cases above are only a test if they contain what the kernel must sort out."""
    seen = {"ignore": False, "bad_gt": False, "bad_pred": False, "negative_pred": False}
    for i, (name, gd, pd, ignore, c, shape, _) in enumerate(CASES):
        pred, gt = make_case(name, gd, pd, ignore, c, shape, seed=i)
        ref = count_pixels(pred, gt, c, ignore, kernel="reference")
        seen["ignore"] |= ignore is not None and bool((gt == ignore).any())
        seen["bad_gt"] |= ref.bad_gt_count > 0
        seen["bad_pred"] |= ref.bad_pred_value is not None
        seen["negative_pred"] |= ref.bad_pred_value is not None and ref.bad_pred_value < 0
    assert all(seen.values()), seen


# ----------------------------------------------------------------------------- real GPU


def _cupy():
    try:
        from segeval.core.device import require_cuda

        return require_cuda("the CuPy tests")
    except Exception as e:  # DeviceError: no CuPy or no device
        pytest.skip(f"needs CuPy and a CUDA device: {e}")


@pytest.mark.parametrize("case", range(len(CASES)), ids=[c[0] for c in CASES])
def test_cupy_kernel_equals_reference(case: int) -> None:
    cupy = _cupy()
    from segeval.core.kernels.xp import count_pixels_xp

    name, gd, pd, ignore, c, shape, _ = CASES[case]
    pred, gt = make_case(name, gd, pd, ignore, c, shape, seed=case)
    ref = count_pixels(pred, gt, c, ignore, kernel="reference")
    for got in (count_pixels(cupy.asarray(pred), cupy.asarray(gt), c, ignore),
                count_pixels_xp(cupy.asarray(pred), cupy.asarray(gt), c, ignore, chunk=97)):
        np.testing.assert_array_equal(got.table, ref.table)
        assert got[1:] == ref[1:]


def test_cupy_full_size_batch_and_devices() -> None:
    cupy = _cupy()
    from segeval import ConfusionMatrix

    rng = np.random.default_rng(5)
    gt = rng.integers(0, 19, (2, 1024, 2048)).astype(np.uint8)
    gt[:, :100] = 255
    pred = np.where(rng.random(gt.shape) < 0.8, gt, 3).astype(np.uint8)
    expected = ConfusionMatrix(19).update(pred, gt)
    on_gpu = ConfusionMatrix(19).update(cupy.asarray(pred), cupy.asarray(gt))  # auto
    uploaded = ConfusionMatrix(19, device="cuda").update(pred, gt)
    downloaded = ConfusionMatrix(19, device="cpu").update(cupy.asarray(pred), cupy.asarray(gt))
    assert on_gpu == expected and uploaded == expected and downloaded == expected


def test_torch_cuda_tensor_through_dlpack() -> None:
    cupy = _cupy()
    torch = pytest.importorskip("torch", reason="torch is not installed")
    if not torch.cuda.is_available():
        pytest.skip("torch has no CUDA device")
    from segeval import confusion_matrix

    pred, gt = make_case(*CASES[0][:6], seed=0)
    got = confusion_matrix(torch.from_numpy(pred).cuda(), torch.from_numpy(gt).cuda(), 7)
    assert got == confusion_matrix(pred, gt, 7)
    assert cupy.cuda.runtime.getDeviceCount() >= 1
