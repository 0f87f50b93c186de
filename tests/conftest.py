"""Shared fixtures: the conformance corpora and small label-PNG writers."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]


def conformance_root() -> Path | None:
    """``$SEGEVAL_CONFORMANCE``, else ``../shared/conformance`` beside the checkout."""
    env = os.environ.get("SEGEVAL_CONFORMANCE")
    if env:
        return Path(env)
    default = REPO.parent / "shared" / "conformance"
    return default if default.is_dir() else None


@pytest.fixture(scope="session")
def conformance() -> Path:
    root = conformance_root()
    if root is None:
        pytest.skip("conformance corpora not found: set SEGEVAL_CONFORMANCE")
    if not root.is_dir():
        pytest.fail(f"SEGEVAL_CONFORMANCE={root} is not a folder")
    return root


def load_expected(suite: Path) -> dict:
    with open(suite / "expected.json", encoding="utf-8") as f:
        return json.load(f)


VOC_PALETTE = np.zeros((256, 3), np.uint8)
for _i in range(256):
    _c, _r, _g, _b = _i, 0, 0, 0
    for _j in range(8):
        _r |= ((_c >> 0) & 1) << (7 - _j)
        _g |= ((_c >> 1) & 1) << (7 - _j)
        _b |= ((_c >> 2) & 1) << (7 - _j)
        _c >>= 3
    VOC_PALETTE[_i] = (_r, _g, _b)


def write_png(path: Path, labels: np.ndarray, mode: str = "L") -> Path:
    """Write a label map: mode 'L' (8-bit grey), 'P' (VOC palette), 'I;16' or 'RGB'."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "P":
        img = Image.frombytes("P", labels.shape[::-1], labels.astype(np.uint8).tobytes())
        img.putpalette(VOC_PALETTE.ravel().tolist())
    elif mode == "I;16":
        img = Image.fromarray(labels.astype(np.uint16))
    elif mode == "RGB":
        img = Image.fromarray(labels.astype(np.uint8))
    else:
        img = Image.frombytes("L", labels.shape[::-1], labels.astype(np.uint8).tobytes())
    img.save(path)
    return path


def random_labels(rng: np.random.Generator, shape: tuple[int, ...], num_classes: int,
                  ignore: float = 0.1, ignore_index: int = 255) -> np.ndarray:
    labels = rng.integers(0, num_classes, shape).astype(np.uint8)
    labels[rng.random(shape) < ignore] = ignore_index
    return labels


def mask_image(shape: str, h: int, w: int, rng: np.random.Generator,
               box: tuple[int, int] = (40, 60), density: float = 0.02) -> np.ndarray:
    """An (h, w) uint8 instance mask drawn as ``shape``: ``"empty"``; ``"boxes"`` (three boxes
    of up to ``box`` pixels, of 1, 7 or 255); ``"scattered"`` (a ``density`` of pixels of 200);
    ``"edges"`` (the bottom-right quarter 255: Sub and Paeth rows carry on to the edges);
    ``"noise"`` (random bytes on about 30% of the pixels)."""
    mask = np.zeros((h, w), np.uint8)
    if shape == "boxes":
        for _ in range(3):
            y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
            mask[y:y + int(rng.integers(1, box[0])), x:x + int(rng.integers(1, box[1]))] = \
                rng.choice([1, 7, 255])
    elif shape == "scattered":
        mask[rng.random((h, w)) < density] = 200
    elif shape == "edges":
        mask[h // 2:, w // 2:] = 255
    elif shape == "noise":
        mask[:] = rng.integers(0, 256, (h, w))
        mask[rng.random((h, w)) < 0.7] = 0
    return mask


def kill_on(monkeypatch: pytest.MonkeyPatch, module: object, reader: str,
            marker: str = "poisoned") -> None:
    """Make ``module.reader`` kill the process calling it (SIGKILL, as the OOM killer does)
    when an argument other than raw bytes names a file holding ``marker``: a worker that dies
    on one input. Forked workers inherit the patch."""
    import signal

    real = getattr(module, reader)

    def deadly(*args, **kwargs):
        if any(marker in str(a) for a in args if not isinstance(a, bytes | bytearray)):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    monkeypatch.setattr(module, reader, deadly)
