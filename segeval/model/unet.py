"""A small U-Net (or FCN) built from :mod:`segeval.model.layers`, with Adam and ``.npz`` files.

Architecture (``levels=3``, ``width=c``; sizes for a ``H x W`` input)::

    encoder                                   decoder
    [conv3x3-BN-ReLU]x2  c   @ H   ─ skip ─▶  concat ─ [conv3x3-BN-ReLU]x2  c  ─ conv1x1 ─▶ K logits
       │ maxpool 2                                 ▲ up 2 (transposed conv 2x2 / stride 2)
    [conv3x3-BN-ReLU]x2  2c  @ H/2 ─ skip ─▶  concat ─ [conv3x3-BN-ReLU]x2  2c
       │ maxpool 2                                 ▲ up 2
    [conv3x3-BN-ReLU]x2  4c  @ H/4  ───────────────┘   (the bottleneck)

* ``skips=False`` gives the FCN variant: the decoder sees only the up-sampled features.
* ``up="unpool"`` gives the SegNet-style decoder: a 1x1 convolution to the skip's width, then
  :func:`~segeval.model.layers.max_unpool2d` with the encoder's pooling indices.
* ``H`` and ``W`` must be multiples of ``2 ** (levels - 1)`` (:func:`predict` pads for you).

Every layer object keeps what its backward pass needs from the last training forward pass;
``forward(x, training=False)`` keeps nothing and uses the batch-norm running statistics.
Parameters are float32 arrays in ``model.params()`` (a name -> array dict); ``backward`` fills
``model.grads()`` with arrays of the same names. Initialisation and every random choice come
from one seeded ``numpy.random.Generator``, so a run is reproducible.

Files: :func:`save` writes a ``.npz`` of plain arrays plus ``__header__``, a uint8 array holding
UTF-8 JSON (format name, architecture, class names, input normalisation, training notes);
:func:`load` reads it with ``allow_pickle=False``. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from segeval.errors import FileFormatError, MissingFileError
from segeval.model import layers as L

FORMAT = "segeval-unet/1"
DTYPE = np.float32
INPUT_MEAN, INPUT_STD = 0.5, 0.25  # an image is (rgb / 255 - mean) / std


class Layer:
    """A layer: ``forward``, ``backward`` and its named parameters and gradients."""

    def __init__(self) -> None:
        self.p: dict[str, np.ndarray] = {}
        self.g: dict[str, np.ndarray] = {}

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class Conv(Layer):
    """``conv2d`` with 'same' padding for odd kernels; He-normal weights."""

    def __init__(self, rng: np.random.Generator, c_in: int, c_out: int, k: int,
                 bias: bool = False, first: bool = False) -> None:
        super().__init__()
        std = np.sqrt(2.0 / (c_in * k * k))
        self.p["weight"] = (rng.standard_normal((c_out, c_in, k, k)) * std).astype(DTYPE)
        if bias:
            self.p["bias"] = np.zeros(c_out, DTYPE)
        self.pad, self.first = k // 2, first

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y, cols = L._conv2d(x, self.p["weight"], 1, self.pad, self.p.get("bias"))
        if training:
            self.x, self.cols = x, cols
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw, db = L.conv2d_backward(dy, self.x, self.p["weight"], 1, self.pad,
                                       cols=self.cols, need_dx=not self.first)
        self.g["weight"] = dw
        if "bias" in self.p:
            self.g["bias"] = db
        del self.x, self.cols
        return dx  # type: ignore[return-value]  # None only for the first layer


class UpConv(Layer):
    """Learnable 2x up-sampling: ``conv_transpose2d`` with a 2x2 kernel and stride 2, from
    ``c_in`` to ``c_out`` channels. The weight is ``(c_in, c_out, 2, 2)``: the weight of the
    2x2/stride-2 ``conv2d`` from ``c_out`` to ``c_in`` channels that this layer transposes."""

    def __init__(self, rng: np.random.Generator, c_in: int, c_out: int) -> None:
        super().__init__()
        std = np.sqrt(2.0 / c_in)
        self.p["weight"] = (rng.standard_normal((c_in, c_out, 2, 2)) * std).astype(DTYPE)
        self.p["bias"] = np.zeros(c_out, DTYPE)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if training:
            self.x = x
        return L.conv_transpose2d(x, self.p["weight"], 2, 0, bias=self.p["bias"])

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, dw, db = L.conv_transpose2d_backward(dy, self.x, self.p["weight"], 2, 0)
        self.g["weight"], self.g["bias"] = dw, db
        del self.x
        return dx


class BatchNorm(Layer):
    """Batch normalisation with running statistics (momentum 0.1, as PyTorch)."""

    momentum, eps = 0.1, 1e-5

    def __init__(self, c: int) -> None:
        super().__init__()
        self.p["gamma"], self.p["beta"] = np.ones(c, DTYPE), np.zeros(c, DTYPE)
        self.running_mean, self.running_var = np.zeros(c, DTYPE), np.ones(c, DTYPE)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        if not training:
            return L.batch_norm(x, self.p["gamma"], self.p["beta"], eps=self.eps,
                                mean=self.running_mean, var=self.running_var)
        self.x = x
        m = x.shape[0] * x.shape[2] * x.shape[3]
        mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
        self.running_mean += self.momentum * (mean - self.running_mean)
        self.running_var += self.momentum * (var * m / max(m - 1, 1) - self.running_var)
        return L.batch_norm(x, self.p["gamma"], self.p["beta"], eps=self.eps, mean=mean, var=var)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx, self.g["gamma"], self.g["beta"] = L.batch_norm_backward(dy, self.x, self.p["gamma"],
                                                                    eps=self.eps)
        del self.x
        return dx


class ReLU(Layer):
    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        y = L.relu(x)
        if training:
            self.y = y
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        dx = L.relu_backward(dy, self.y)
        del self.y
        return dx


class Sequential(Layer):
    """Layers applied in order; parameters named ``<index>.<name>``."""

    def __init__(self, *items: Layer) -> None:
        super().__init__()
        self.items = list(items)

    def forward(self, x: np.ndarray, training: bool) -> np.ndarray:
        for layer in self.items:
            x = layer.forward(x, training)
        return x

    def backward(self, dy: np.ndarray) -> np.ndarray:
        for layer in reversed(self.items):
            dy = layer.backward(dy)
        return dy


def conv_block(rng: np.random.Generator, c_in: int, c_out: int, first: bool = False
               ) -> Sequential:
    """``[conv3x3 - batch norm - ReLU] x 2``."""
    return Sequential(Conv(rng, c_in, c_out, 3, first=first), BatchNorm(c_out), ReLU(),
                      Conv(rng, c_out, c_out, 3), BatchNorm(c_out), ReLU())


class UNet:
    """The model; see the module docstring for the architecture.

    Parameters
    ----------
    num_classes: ``K``, the number of output classes (logits per pixel).
    levels: resolution levels, 2 or more (``levels - 1`` poolings).
    width: channels at full resolution (doubled at each level down).
    skips: ``True`` for U-Net skip connections, ``False`` for the FCN variant.
    up: ``"transpose"`` (2x2 transposed convolution) or ``"unpool"`` (max-unpooling).
    seed: seed of the weight initialisation.
    in_channels: input channels (3 for RGB).
    """

    def __init__(self, num_classes: int, *, levels: int = 3, width: int = 16, skips: bool = True,
                 up: str = "transpose", seed: int = 0, in_channels: int = 3) -> None:
        if levels < 2:
            raise ValueError(f"The 'levels' parameter must be 2 or more. Got {levels}.")
        if up not in ("transpose", "unpool"):
            raise ValueError(f"The 'up' parameter must be 'transpose' or 'unpool'. Got {up!r}.")
        self.config = {"num_classes": int(num_classes), "levels": int(levels),
                       "width": int(width), "skips": bool(skips), "up": up, "seed": int(seed),
                       "in_channels": int(in_channels)}
        rng = np.random.default_rng(seed)
        ch = [width * 2 ** i for i in range(levels)]
        self.down = [conv_block(rng, in_channels if i == 0 else ch[i - 1], ch[i], first=i == 0)
                     for i in range(levels)]
        self.ups: list[Layer] = []
        self.up_blocks: list[Sequential] = []
        for i in reversed(range(levels - 1)):           # decoder, from the bottom up
            if up == "transpose":
                self.ups.append(UpConv(rng, ch[i + 1], ch[i]))
            else:
                self.ups.append(Conv(rng, ch[i + 1], ch[i], 1, bias=True))
            self.up_blocks.append(conv_block(rng, 2 * ch[i] if skips else ch[i], ch[i]))
        self.head = Conv(rng, ch[0], num_classes, 1, bias=True)

    @property
    def num_classes(self) -> int:
        return self.config["num_classes"]

    @property
    def multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** (self.config["levels"] - 1)

    # ---------------------------------------------------------------- parameters

    def named_layers(self) -> Iterator[tuple[str, Layer]]:
        """Every layer that owns parameters or running statistics, with a stable name."""
        groups: list[tuple[str, Sequence[Layer]]] = [
            ("down", self.down), ("up", self.ups), ("dec", self.up_blocks)]
        for prefix, group in groups:
            for i, block in enumerate(group):
                items = block.items if isinstance(block, Sequential) else [block]
                for j, layer in enumerate(items):
                    if layer.p:
                        yield f"{prefix}{i}.{j}", layer
        yield "head", self.head

    def params(self) -> dict[str, np.ndarray]:
        """Name -> parameter array (the arrays themselves, updated in place by optimisers)."""
        return {f"{n}.{k}": v for n, layer in self.named_layers() for k, v in layer.p.items()}

    def grads(self) -> dict[str, np.ndarray]:
        """Name -> gradient of the last :meth:`backward` (same names as :meth:`params`)."""
        return {f"{n}.{k}": v for n, layer in self.named_layers() for k, v in layer.g.items()}

    def buffers(self) -> dict[str, np.ndarray]:
        """Name -> batch-norm running statistics (saved, not trained)."""
        return {f"{n}.{k}": getattr(layer, k) for n, layer in self.named_layers()
                if isinstance(layer, BatchNorm) for k in ("running_mean", "running_var")}

    def state(self) -> dict[str, np.ndarray]:
        return {**self.params(), **self.buffers()}

    def load_state(self, state: dict[str, np.ndarray], source: str = "state") -> None:
        """Copy arrays into the model; :class:`FileFormatError` naming ``source`` on a
        missing, extra or misshapen array."""
        mine = self.state()
        missing, extra = sorted(set(mine) - set(state)), sorted(set(state) - set(mine))
        if missing or extra:
            raise FileFormatError(f"{source}: arrays do not match the architecture (missing "
                                  f"{missing[:3]}, unexpected {extra[:3]})")
        for k, v in mine.items():
            if state[k].shape != v.shape:
                raise FileFormatError(f"{source}: array {k} has shape {state[k].shape}, "
                                      f"expected {v.shape}")
            v[...] = state[k]

    # ---------------------------------------------------------------- passes

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        """Logits ``(N, K, H, W)`` for a normalised float32 batch ``x`` ``(N, C, H, W)``."""
        h, w = x.shape[2:]
        if h % self.multiple or w % self.multiple:
            raise ValueError(f"The input size {h}x{w} must be a multiple of {self.multiple}.")
        skips, pool_idx = [], []
        for i, block in enumerate(self.down):
            x = block.forward(x, training)
            if i < len(self.down) - 1:
                skips.append(x)
                x, idx = L.max_pool2d(x)
                pool_idx.append(idx)
        if training:
            self._pool_idx = list(pool_idx)
            self._pool_size = [s.shape[2:] for s in skips]
        for up, block in zip(self.ups, self.up_blocks, strict=True):
            skip, idx = skips.pop(), pool_idx.pop()
            x = up.forward(x, training)
            if self.config["up"] == "unpool":
                x = L.max_unpool2d(x, idx, skip.shape[2:])
            if self.config["skips"]:
                x = np.concatenate([x, skip], axis=1)
            x = block.forward(x, training)
        return self.head.forward(x, training)

    def backward(self, dlogits: np.ndarray) -> None:
        """Back-propagate ``dlogits`` (the gradient of the loss with respect to the logits of the
        last training forward pass) and fill :meth:`grads`."""
        dx = self.head.backward(dlogits)
        dskips: list[np.ndarray | None] = []           # top level first
        for level, (up, block) in enumerate(
                zip(reversed(self.ups), reversed(self.up_blocks), strict=True)):
            dx = block.backward(dx)
            if self.config["skips"]:
                c = dx.shape[1] // 2
                dx, dskip = dx[:, :c], dx[:, c:]
                dskips.append(dskip)
            else:
                dskips.append(None)
            if self.config["up"] == "unpool":
                dx = L.max_unpool2d_backward(dx, self._pool_idx[level])
            dx = up.backward(np.ascontiguousarray(dx))
        for level in reversed(range(len(self.down))):
            if level < len(self.down) - 1:
                dx = L.max_pool2d_backward(dx, self._pool_idx[level], self._pool_size[level])
                dskip = dskips[level]
                if dskip is not None:
                    dx = dx + dskip
            dx = self.down[level].backward(dx)
        del self._pool_idx, self._pool_size


class Adam:
    """The Adam optimiser (Kingma & Ba), updating the model's parameter arrays in place.

    ``step(grads)`` applies one update with bias-corrected first and second moments; ``lr`` is
    the step size, ``betas`` the moment decay rates, ``eps`` the denominator guard.
    """

    def __init__(self, params: dict[str, np.ndarray], lr: float = 1e-3,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8) -> None:
        self.params, self.lr, self.betas, self.eps = params, lr, betas, eps
        self.m = {k: np.zeros_like(v) for k, v in params.items()}
        self.v = {k: np.zeros_like(v) for k, v in params.items()}
        self.t = 0

    def step(self, grads: dict[str, np.ndarray]) -> None:
        self.t += 1
        b1, b2 = self.betas
        lr = self.lr * np.sqrt(1 - b2 ** self.t) / (1 - b1 ** self.t)
        for k, p in self.params.items():
            g = grads[k]
            m, v = self.m[k], self.v[k]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            p -= (lr * m / (np.sqrt(v) + self.eps)).astype(p.dtype, copy=False)


# --------------------------------------------------------------------------- inputs and outputs

def normalise(images: np.ndarray) -> np.ndarray:
    """uint8 RGB images ``(N, H, W, 3)`` -> float32 network input ``(N, 3, H, W)``."""
    x = images.astype(DTYPE).transpose(0, 3, 1, 2)
    return np.ascontiguousarray((x / 255.0 - INPUT_MEAN) / INPUT_STD, dtype=DTYPE)


def predict(model: UNet, images: np.ndarray, batch_size: int = 16) -> np.ndarray:
    """Class indices ``(N, H, W)`` uint8 (int64 above 256 classes) for uint8 RGB images
    ``(N, H, W, 3)`` of any size: each batch is padded by reflection to a multiple of
    :attr:`UNet.multiple`, the padding is cropped from the answer."""
    n, h, w = images.shape[:3]
    m = model.multiple
    ph, pw = -h % m, -w % m
    out = np.empty((n, h, w), np.uint8 if model.num_classes <= 256 else np.int64)
    for i in range(0, n, batch_size):
        x = normalise(images[i:i + batch_size])
        if ph or pw:
            x = np.pad(x, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="reflect" if min(h, w) > 1
                       else "edge")
        out[i:i + batch_size] = model.forward(x, training=False)[:, :, :h, :w].argmax(axis=1)
    return out


def save(model: UNet, path: str | os.PathLike[str], *, class_names: Sequence[str],
         info: dict[str, Any] | None = None) -> None:
    """Write the model to ``path`` (``.npz``: arrays plus a JSON ``__header__``), atomically."""
    if len(class_names) != model.num_classes:
        raise ValueError(f"The 'class_names' parameter must have {model.num_classes} names. "
                         f"Got {len(class_names)}.")
    header = {"format": FORMAT, "architecture": model.config, "class_names": list(class_names),
              "input": {"layout": "RGB uint8 / 255", "mean": INPUT_MEAN, "std": INPUT_STD},
              "info": info or {}}
    arrays = dict(model.state())
    arrays["__header__"] = np.frombuffer(json.dumps(header).encode("utf-8"), np.uint8)
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".npz", dir=path.parent or ".")
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def load(path: str | os.PathLike[str]) -> tuple[UNet, dict[str, Any]]:
    """Read a model written by :func:`save`: ``(model, header)``. Errors name the file."""
    import zipfile

    path = Path(path)
    if not path.is_file():
        raise MissingFileError(f"{path}: no such model file")
    with open(path, "rb") as f:
        if f.read(4) not in (b"PK\x03\x04", b"PK\x05\x06"):
            raise FileFormatError(f"{path}: not a segeval model (not an .npz archive; "
                                  f"'segeval model train' writes one)")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:
        raise FileFormatError(f"{path}: not a segeval model (.npz) file ({e})") from None
    if "__header__" not in arrays:
        raise FileFormatError(f"{path}: not a segeval model (no __header__ array)")
    try:
        header = json.loads(arrays.pop("__header__").tobytes().decode("utf-8"))
        if header.get("format") != FORMAT:
            raise FileFormatError(f"{path}: model format {header.get('format')!r}, expected "
                                  f"{FORMAT!r}")
        arch = header["architecture"]
        model = UNet(arch["num_classes"], levels=arch["levels"], width=arch["width"],
                     skips=arch["skips"], up=arch["up"], seed=arch["seed"],
                     in_channels=arch["in_channels"])
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
        if isinstance(e, FileFormatError):
            raise
        raise FileFormatError(f"{path}: malformed model header ({e!r})") from None
    model.load_state(arrays, str(path))
    return model, header
