"""Where label arrays are counted: on the CPU (NumPy) or on a CUDA GPU (CuPy).

``device`` is one of

* ``"auto"`` (the default): where the input already is. CuPy arrays and CUDA objects from any
  framework are counted on their GPU; everything else on the CPU. With one input on the GPU and
  the other on the host, the host one is copied to the GPU.
* ``"cpu"``: on the host; GPU inputs are copied back first.
* ``"cuda"``: on the GPU; host inputs are copied to CuPy's current device. This needs CuPy and a
  usable CUDA device; without them it is a :class:`~segeval.errors.DeviceError` that names the
  missing piece and the install extra (``pip install segeval[gpu]``).

How an input is taken (no framework is imported; nothing is copied unless said):

* ``numpy.ndarray`` and ``cupy.ndarray``: as they are.
* an object with ``__dlpack__`` whose ``__dlpack_device__`` is CUDA (a PyTorch or JAX array on a
  GPU, ...): ``cupy.from_dlpack``, zero-copy, on the GPU. For ``device="cpu"`` it is copied to
  the host through DLPack (``numpy.from_dlpack(x, device="cpu")``) where the producer supports
  that, else through CuPy.
* an object with only ``__cuda_array_interface__`` (a Numba device array): ``cupy.asarray``,
  zero-copy.
* any other object with ``__dlpack__`` (a CPU tensor): ``numpy.from_dlpack``, zero-copy.
* anything else: ``numpy.asarray`` (nested lists, scalars).

Importing this module imports neither CuPy nor Numba; a CPU input never leads to either.
"""

from __future__ import annotations

import os
from types import ModuleType
from typing import Any, Literal

import numpy as np

from segeval.core.kernels.xp import is_cupy_array, namespace_of
from segeval.errors import DeviceError, bad_value

Device = Literal["auto", "cpu", "cuda"]
DEVICES = ("auto", "cpu", "cuda")
GPU_EXTRA = "pip install segeval[gpu]"

# DLPack device types (dlpack.h): memory a CUDA kernel can read.
_DLPACK_CUDA = 2
_DLPACK_CUDA_MANAGED = 13


def check_device(device: Any) -> str:
    """Return ``device`` if it is ``"auto"``, ``"cpu"`` or ``"cuda"``; else
    :class:`~segeval.errors.InvalidParameterError` (a ``ValueError``)."""
    if not isinstance(device, str) or device not in DEVICES:
        raise bad_value("device", "'auto', 'cpu' or 'cuda'", device)
    return str(device)


def require_cuda(what: str = "device='cuda'", parameters: tuple[str, ...] = ()) -> ModuleType:
    """Import CuPy and check that it sees a CUDA device; return the ``cupy`` module.

    Raises :class:`~segeval.errors.DeviceError` (one line: what asked for the GPU, which piece is
    missing, and ``pip install segeval[gpu]``; ``parameters`` are those ``what`` names) when
    CuPy is not installed, or when it is but no device is usable (no GPU, no driver, or a
    driver older than CuPy's CUDA).
    """
    try:
        import cupy
    except ImportError as e:
        raise DeviceError(
            f"{what} needs CuPy, which is not installed ({e}); install it with {GPU_EXTRA}",
            parameters=parameters) from None
    try:
        n = int(cupy.cuda.runtime.getDeviceCount())
    except Exception as e:  # CUDARuntimeError: no driver, driver too old, no device
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise DeviceError(
            f"{what}: CuPy is installed but no CUDA device is usable ({reason}); the GPU path "
            f"needs an NVIDIA GPU with its driver and {GPU_EXTRA}", parameters=parameters
        ) from None
    if n < 1:
        raise DeviceError(
            f"{what}: CuPy is installed but found no CUDA device; the GPU path needs an NVIDIA "
            f"GPU with its driver and {GPU_EXTRA}", parameters=parameters
        )
    return cupy


def dlpack_device_type(x: Any) -> int | None:
    """The DLPack device type of ``x`` (1 CPU, 2 CUDA, ...), ``None`` if it does not say."""
    get = getattr(x, "__dlpack_device__", None)
    if get is None:
        return None
    return int(get()[0])


def is_on_gpu(x: Any) -> bool:
    """``True`` for a CuPy array or an object in CUDA memory (by DLPack or CUDA interface)."""
    if is_cupy_array(x):
        return True
    if isinstance(x, np.ndarray):
        return False
    if hasattr(x, "__dlpack__"):
        return dlpack_device_type(x) in (_DLPACK_CUDA, _DLPACK_CUDA_MANAGED)
    return hasattr(x, "__cuda_array_interface__")


def _describe(x: Any) -> str:
    t = type(x)
    return f"{t.__module__}.{t.__qualname__}"


def _to_gpu(x: Any, name: str) -> Any:
    if is_cupy_array(x):
        return x
    cupy = require_cuda(f"{name}: counting a {_describe(x)} on the GPU")
    if isinstance(x, np.ndarray):
        return cupy.asarray(x)
    if is_on_gpu(x):
        return cupy.from_dlpack(x) if hasattr(x, "__dlpack__") else cupy.asarray(x)
    return cupy.asarray(_to_host(x, name))


def _to_host(x: Any, name: str) -> np.ndarray:
    if isinstance(x, np.ndarray):
        return x
    if is_cupy_array(x):
        return x.get()
    if is_on_gpu(x):
        if hasattr(x, "__dlpack__"):
            try:  # DLPack 1.0: the producer copies to the host itself
                return np.from_dlpack(x, device="cpu", copy=True)
            except (TypeError, BufferError, ValueError, RuntimeError):
                pass
        return _to_gpu(x, name).get()
    if hasattr(x, "__dlpack__"):
        return np.from_dlpack(x)
    return np.asarray(x)


LABELS = ("an array of integer class indices (for scores or logits, take the argmax over the "
          "class axis first)")


def check_labels(x: Any, name: str) -> Any:
    """``x`` (an array) if its dtype is an integer or bool; else
    :class:`~segeval.errors.InvalidParameterError` naming the parameter ``name``."""
    if x.dtype != np.bool_ and not np.issubdtype(x.dtype, np.integer):
        raise bad_value(name, LABELS, x)
    return x


def label_arrays(pred: Any, gt: Any, device: str = "auto",
                 names: tuple[str, str] = ("pred", "gt")) -> tuple[Any, Any]:
    """``pred`` and ``gt`` as integer arrays of one library: NumPy, or CuPy on one GPU.

    See the module docstring for ``device`` and how inputs are taken. Raises
    :class:`~segeval.errors.InvalidParameterError` (a ``TypeError``) for non-integer labels and
    :class:`~segeval.errors.DeviceError` when the GPU is needed but cannot be used; ``names``
    are the parameters the errors name.
    """
    check_device(device)
    gpu = device == "cuda" or (device == "auto" and (is_on_gpu(pred) or is_on_gpu(gt)))
    if gpu:
        p, g = _to_gpu(pred, "pred"), _to_gpu(gt, "gt")
        if p.device != g.device:
            with g.device:  # a copy between GPUs, onto the ground truth's
                p = namespace_of(g).array(p, copy=True)
    else:
        p, g = _to_host(pred, "pred"), _to_host(gt, "gt")
    return check_labels(p, names[0]), check_labels(g, names[1])


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1
