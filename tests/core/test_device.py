"""Device selection and array intake: DLPack objects, the ``device`` option, clear GPU errors.

No GPU is needed here: DLPack-only wrapper objects stand in for framework tensors (a CPU one is
read zero-copy through NumPy; one that says it lives on a CUDA device must go to CuPy), and a
stand-in ``cupy`` module plays "CuPy installed, no usable device". Real CuPy runs are in
``test_cuda_kernel.py``.
"""

from __future__ import annotations

import subprocess
import sys
import types

import numpy as np
import pytest

from segeval import ConfusionMatrix, confusion_matrix, miou
from segeval.core.device import is_on_gpu, label_arrays, require_cuda
from segeval.errors import DeviceError, UsageError
from tests.conftest import random_labels

C = 6


class DLPackOnly:
    """An array that offers nothing but the DLPack protocol (like a framework tensor)."""

    def __init__(self, array: np.ndarray, device: tuple[int, int] = (1, 0), *,
                 host_copy: bool = True) -> None:
        self._array, self._device, self._host_copy = array, device, host_copy

    def __dlpack__(self, **kwargs):
        if kwargs.get("dl_device") not in (None, (1, 0)) or (
                self._device != (1, 0) and not self._host_copy):
            raise BufferError("cannot export to that device")
        return self._array.__dlpack__(**kwargs)

    def __dlpack_device__(self) -> tuple[int, int]:
        return self._device


def _pair(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    gt = random_labels(rng, (2, 21, 29), C)
    pred = rng.integers(0, C, gt.shape).astype(np.uint8)
    return pred, gt


def test_cpu_dlpack_object_is_read_zero_copy_and_counts_the_same() -> None:
    pred, gt = _pair()
    expected = confusion_matrix(pred, gt, C)
    p, g = label_arrays(DLPackOnly(pred), DLPackOnly(gt))
    assert isinstance(g, np.ndarray) and np.shares_memory(g, gt) and np.shares_memory(p, pred)
    for device in ("auto", "cpu"):
        got = confusion_matrix(DLPackOnly(pred), DLPackOnly(gt), C, device=device)
        assert got == expected
    assert miou(DLPackOnly(pred), DLPackOnly(gt), C) == pytest.approx(float(expected.miou()),
                                                                       abs=0)


def test_streaming_update_with_dlpack_objects_equals_one_batch() -> None:
    pred, gt = _pair(1)
    cm = ConfusionMatrix(C)
    for i in range(gt.shape[0]):
        p, g = np.ascontiguousarray(pred[i]), np.ascontiguousarray(gt[i])
        cm.update(DLPackOnly(p), DLPackOnly(g))
    assert cm == confusion_matrix(pred, gt, C)


def test_cuda_dlpack_object_is_seen_on_the_gpu() -> None:
    pred, _ = _pair()
    assert is_on_gpu(DLPackOnly(pred, (2, 0)))
    assert is_on_gpu(DLPackOnly(pred, (13, 0)))  # CUDA managed memory
    assert not is_on_gpu(DLPackOnly(pred)) and not is_on_gpu(pred)


def _hide_cupy(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "cupy", None)  # import cupy -> ImportError


def _fake_cupy(monkeypatch, count=None, error=None) -> None:
    def get_device_count() -> int:
        if error is not None:
            raise error
        return count

    runtime = types.SimpleNamespace(getDeviceCount=get_device_count)
    fake = types.ModuleType("cupy")
    fake.cuda = types.SimpleNamespace(runtime=runtime)
    monkeypatch.setitem(sys.modules, "cupy", fake)


def test_cuda_without_cupy_names_cupy_and_the_extra(monkeypatch) -> None:
    _hide_cupy(monkeypatch)
    with pytest.raises(DeviceError) as err:
        ConfusionMatrix(C, device="cuda")
    msg = str(err.value)
    assert "CuPy" in msg and "not installed" in msg and "pip install segeval[gpu]" in msg
    assert "\n" not in msg and isinstance(err.value, UsageError) and err.value.exit_code == 2


@pytest.mark.parametrize(
    ("count", "error", "said"),
    [(None, RuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient for "
                         "CUDA runtime version"), "cudaErrorInsufficientDriver"),
     (None, RuntimeError("cudaErrorNoDevice: no CUDA-capable device is detected"),
      "cudaErrorNoDevice"),
     (0, None, "found no CUDA device")],
)
def test_cuda_with_cupy_but_no_device_names_the_device(monkeypatch, count, error, said) -> None:
    _fake_cupy(monkeypatch, count, error)
    with pytest.raises(DeviceError) as err:
        require_cuda("device='cuda'")
    msg = str(err.value)
    assert said in msg and "CuPy is installed" in msg and "pip install segeval[gpu]" in msg
    assert "\n" not in msg


def test_gpu_input_without_cupy_is_a_clear_error(monkeypatch) -> None:
    _hide_cupy(monkeypatch)
    pred, gt = _pair()
    cm = ConfusionMatrix(C)
    with pytest.raises(DeviceError, match=r"pred: counting a .*DLPackOnly on the GPU needs CuPy"):
        cm.update(DLPackOnly(pred, (2, 0), host_copy=False), gt)
    assert cm.total == 0


def test_cpu_device_copies_a_gpu_object_through_dlpack(monkeypatch) -> None:
    _hide_cupy(monkeypatch)  # the producer copies to the host itself: CuPy is not needed
    pred, gt = _pair(2)
    got = confusion_matrix(DLPackOnly(pred, (2, 0)), DLPackOnly(gt, (2, 0)), C, device="cpu")
    assert got == confusion_matrix(pred, gt, C)
    with pytest.raises(DeviceError, match="needs CuPy"):  # a producer that cannot: needs CuPy
        confusion_matrix(DLPackOnly(pred, (2, 0), host_copy=False), gt, C, device="cpu")


def test_cuda_for_host_arrays_needs_the_gpu(monkeypatch) -> None:
    _fake_cupy(monkeypatch, 0)
    pred, gt = _pair()
    with pytest.raises(DeviceError, match="found no CUDA device"):
        confusion_matrix(pred, gt, C, device="cuda")


def test_bad_device_value() -> None:
    with pytest.raises(ValueError, match=r"The 'device' parameter must be 'auto', 'cpu' or "
                                         r"'cuda'\. Got 'gpu' instead\."):
        ConfusionMatrix(C, device="gpu")


def test_float_labels_still_refused_through_dlpack() -> None:
    with pytest.raises(TypeError, match="'pred' parameter must be an array of integer"):
        confusion_matrix(DLPackOnly(np.zeros((2, 2), np.float32)), np.zeros((2, 2), np.uint8), 2)


def test_device_survives_copy_and_merge_but_not_equality() -> None:
    a, b = ConfusionMatrix(C, device="cpu"), ConfusionMatrix(C)
    pred, gt = _pair()
    a.update(pred, gt)
    assert a.copy().device == "cpu" and (a + b).device == "cpu"
    assert a == b.update(pred, gt)


def test_cpu_path_imports_neither_cupy_nor_numba_cuda() -> None:
    code = (
        "import sys, numpy as np\n"
        "from segeval import ConfusionMatrix\n"
        "cm = ConfusionMatrix(19)\n"
        "big = np.zeros((1100, 1000), np.uint8)\n"  # large: goes to the Numba CPU kernel
        "cm.update(big, big)\n"
        "class D:\n"
        "    def __init__(s, a): s.a = a\n"
        "    def __dlpack__(s, **k): return s.a.__dlpack__(**k)\n"
        "    def __dlpack_device__(s): return (1, 0)\n"
        "cm.update(D(big[:5]), D(big[:5]))\n"
        "print(sorted(m for m in sys.modules if m.startswith(('cupy', 'numba.cuda'))))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert proc.stdout.strip() == "[]"
