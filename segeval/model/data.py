"""Data for the reference model: a synthetic segmentation set, and readers for real folders.

**The synthetic set** (:func:`make_dataset`) is written as::

    DIR/classes.json                     ["background", "disc", "box", "triangle", "ring"]
    DIR/{train,val}/images/<stem>.png    RGB, uint8
    DIR/{train,val}/labels/<stem>.png    VOC-style palette PNG: class indices, 255 = void

Each image has a textured background (a colour gradient, a few random sinusoidal waves and
pixel noise) and 1-4 objects, each of one of four classes: a **disc** (flat colour), a **box**
(a rotated square with stripes), a **triangle** (checkered) and a **ring** (flat colour, like
the disc: only its hole tells them apart). Colours are random; objects are drawn in turn, so
later ones occlude earlier ones, and the label is the visible object. As in Pascal VOC, a band
of ``void`` (255) runs along every object boundary (where a pixel's 3x3 neighbourhood holds
more than one class); it is not scored. The set is a pure function of ``seed``.

**Reading** (:func:`load_split`) accepts that layout (any ``labels`` folder that the ``folder``
and ``voc`` adapters read as ground truth, with an ``images`` folder beside it holding an image
of the same stem: ``.png``, ``.jpg``, ``.jpeg`` or ``.bmp``), and a Pascal VOC root
(``JPEGImages``, ``SegmentationClass``, ``ImageSets/Segmentation/<split>.txt``). Label PNGs are
decoded by :func:`segeval.formats.png.read_label_png`, the reader ``segeval score`` uses.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segeval.errors import DataError, FileFormatError, MissingFileError, UsageError
from segeval.formats.base import Folder, png_files
from segeval.formats.png import read_label_png

log = logging.getLogger("segeval")

CLASS_NAMES = ("background", "disc", "box", "triangle", "ring")
IGNORE_INDEX = 255
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def files_by_key(folder: Path, suffixes: tuple[str, ...] = (".png",)) -> dict[str, Path]:
    """The files below ``folder`` with one of ``suffixes``, by their path without it."""
    tree = Folder(folder)
    return {k: tree.path(f.member) for k, f in png_files(tree, suffixes).items()}


def voc_palette() -> np.ndarray:
    """The Pascal VOC colour map, ``(256, 3)`` uint8: bits of the index spread over R, G, B."""
    idx = np.arange(256)
    pal = np.zeros((256, 3), np.int64)
    for j in range(8):
        for ch in range(3):
            pal[:, ch] |= ((idx >> (3 * j + ch)) & 1) << (7 - j)
    return pal.astype(np.uint8)


# --------------------------------------------------------------------------- synthesis

def _waves(rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray, n: int,
           period: tuple[float, float]) -> np.ndarray:
    """Sum of ``n`` random plane waves (values in about -1..1)."""
    out = np.zeros(yy.shape)
    for _ in range(n):
        theta, phase = rng.uniform(0, np.pi), rng.uniform(0, 2 * np.pi)
        k = 2 * np.pi / rng.uniform(*period)
        out += np.sin(k * (xx * np.cos(theta) + yy * np.sin(theta)) + phase)
    return out / max(n, 1)


def _shape_mask(cls: int, yy: np.ndarray, xx: np.ndarray, cy: float, cx: float, r: float,
                angle: float) -> np.ndarray:
    dy, dx = yy - cy, xx - cx
    u = dx * np.cos(angle) + dy * np.sin(angle)
    v = -dx * np.sin(angle) + dy * np.cos(angle)
    if cls == 1:                                                  # disc
        return dx * dx + dy * dy <= r * r
    if cls == 2:                                                  # box
        return (np.abs(u) <= 0.8 * r) & (np.abs(v) <= 0.8 * r)
    if cls == 3:                                                  # triangle
        inside = np.ones(yy.shape, bool)
        for k in range(3):
            a = angle + 2 * np.pi * k / 3
            inside &= dx * np.cos(a) + dy * np.sin(a) <= 0.5 * r
        return inside
    d2 = dx * dx + dy * dy                                        # ring
    return (d2 <= r * r) & (d2 >= (0.5 * r) ** 2)


def _texture(cls: int, rng: np.random.Generator, yy: np.ndarray, xx: np.ndarray,
             angle: float) -> np.ndarray:
    """Brightness pattern of a class, in -1..1 (0 for the flat classes)."""
    if cls == 2:                                                  # stripes
        period = rng.uniform(3.5, 5.0)
        return np.sign(np.sin(2 * np.pi * (xx * np.cos(angle) + yy * np.sin(angle)) / period))
    if cls == 3:                                                  # checks
        cell = int(rng.integers(2, 4))
        return ((yy.astype(int) // cell + xx.astype(int) // cell) % 2) * 2.0 - 1.0
    return np.zeros(yy.shape)


def void_boundaries(labels: np.ndarray, ignore_index: int = IGNORE_INDEX) -> np.ndarray:
    """``labels`` with ``ignore_index`` on every pixel whose 3x3 neighbourhood (edge-padded)
    holds more than one label: a 2-pixel void band along each boundary."""
    p = np.pad(labels, 1, mode="edge")
    h, w = labels.shape
    shifts = [p[i:i + h, j:j + w] for i in range(3) for j in range(3)]
    lo, hi = np.minimum.reduce(shifts), np.maximum.reduce(shifts)
    return np.where(lo != hi, ignore_index, labels).astype(labels.dtype)


def make_sample(rng: np.random.Generator, size: int = 64,
                classes: Sequence[int] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """One synthetic ``(image (size, size, 3) uint8, labels (size, size) uint8)`` pair.

    ``classes`` restricts the objects to some of the classes 1..4 (default: all of them).
    """
    choices = np.arange(1, len(CLASS_NAMES)) if classes is None else np.asarray(classes)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    base = rng.uniform(40, 215, 3)
    grad = rng.uniform(-40, 40, 3)
    theta = rng.uniform(0, 2 * np.pi)
    ramp = (xx * np.cos(theta) + yy * np.sin(theta)) / size
    img = base + ramp[..., None] * grad
    img += 30 * _waves(rng, yy, xx, 3, (6, 40))[..., None] * rng.uniform(-1, 1, 3)
    labels = np.zeros((size, size), np.uint8)
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.choice(choices))
        r = rng.uniform(0.11, 0.25) * size
        cy, cx = rng.uniform(0.1, 0.9, 2) * size
        angle = rng.uniform(0, 2 * np.pi)
        mask = _shape_mask(cls, yy, xx, cy, cx, r, angle)
        if not mask.any():
            continue
        bg = img[mask].mean(axis=0)
        offset = rng.normal(size=3)
        offset *= rng.uniform(70, 130) / np.linalg.norm(offset)
        colour = np.clip(bg + offset, 0, 255)
        colour = np.where(np.abs(colour - bg) < 35, bg - offset, colour)  # keep the contrast
        tex = _texture(cls, rng, yy, xx, angle)[..., None] * 30
        img[mask] = (colour + tex)[mask]
        labels[mask] = cls
    img += rng.normal(0, rng.uniform(4, 14), img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8), void_boundaries(labels)


def make_dataset(root: str | Path, *, train: int = 1000, val: int = 200, size: int = 64,
                 seed: int = 0, progress: Callable[[int], object] | None = None) -> Path:
    """Write the synthetic set (module docstring) under ``root``; returns ``root``.

    ``train``/``val`` images per split, ``size`` x ``size`` pixels, everything decided by
    ``seed`` (the train and val splits use independent streams). Refuses a ``root`` that
    already holds ``train``, ``val`` or ``classes.json`` (:class:`~segeval.errors.UsageError`).
    The files are written to a hidden staging folder inside ``root`` and moved into place at
    the end, so an interrupted run leaves no partial split behind.
    """
    import shutil
    import tempfile

    root = Path(root)
    if size < 8:
        raise UsageError(f"--size {size}: images must be at least 8 pixels wide")
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root}: exists and is not a folder")
    for name in ("train", "val", "classes.json"):
        if (root / name).exists():
            raise UsageError(f"{root / name}: already exists; choose an empty folder")
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".segeval-make-data-", dir=root))
    try:
        for split, count, stream in (("train", train, 0), ("val", val, 1)):
            rng = np.random.default_rng([seed, stream])
            (stage / split / "images").mkdir(parents=True)
            (stage / split / "labels").mkdir(parents=True)
            for i in range(count):
                img, lab = make_sample(rng, size)
                stem = f"{split}_{i:05d}"
                _write_rgb_png(stage / split / "images" / f"{stem}.png", img)
                write_label_png(stage / split / "labels" / f"{stem}.png", lab)
                if progress is not None:
                    progress(1)
        (stage / "classes.json").write_text(json.dumps(list(CLASS_NAMES)) + "\n",
                                            encoding="utf-8")
        for name in ("train", "val", "classes.json"):
            os.replace(stage / name, root / name)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return root


def _write_rgb_png(path: Path, image: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(image, "RGB").save(path, format="PNG")


# --------------------------------------------------------------------------- reading

@dataclass
class Split:
    """Images ``(N, H, W, 3)`` uint8 and labels ``(N, H, W)`` (uint8 or uint16) of one split,
    with the stems (keys) and label files they came from."""

    images: np.ndarray
    labels: np.ndarray
    stems: list[str]
    label_files: list[Path]

    def __len__(self) -> int:
        return len(self.stems)


def image_files(folder: Path) -> dict[str, Path]:
    """Image files below ``folder`` keyed by relative path without suffix."""
    return files_by_key(Path(folder), IMAGE_SUFFIXES)


def read_image(path: Path) -> np.ndarray:
    """An image file as ``(H, W, 3)`` uint8 RGB; errors name the file."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            return np.asarray(img.convert("RGB"))
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file") from None
    except (OSError, SyntaxError, ValueError, UnidentifiedImageError) as e:
        raise FileFormatError(f"{path}: not a readable image ({e})") from None


def has_split(root: str | Path, split: str) -> bool:
    """Whether ``root`` holds ``split`` in one of the layouts :func:`find_split` reads."""
    from segeval.formats.voc import voc_root

    root = Path(root)
    if (root / split / "labels").is_dir():
        return True
    if not root.is_dir() or (root / "train").is_dir():
        return False
    voc = voc_root(root)
    return voc is not None and (voc / "ImageSets" / "Segmentation" / f"{split}.txt").is_file()


def find_split(root: Path, split: str) -> list[tuple[str, Path, Path]]:
    """``(stem, image file, label file)`` of a split, for either layout (module docstring)."""
    from segeval.formats.voc import read_list, voc_root

    root = Path(root)
    if (root / split / "labels").is_dir():
        labels = files_by_key(root / split / "labels")
        images = image_files(root / split / "images") if (root / split / "images").is_dir() \
            else {}
        found = [(k, images.get(k), p) for k, p in labels.items()]
    elif root.is_dir() and (voc := voc_root(root)) is not None:
        list_file = voc / "ImageSets" / "Segmentation" / f"{split}.txt"
        if not list_file.is_file():
            raise MissingFileError(f"{list_file}: image list for split {split!r} not found")
        images = image_files(voc / "JPEGImages")
        found = [(i, images.get(i), voc / "SegmentationClass" / f"{i}.png")
                 for i in read_list(list_file)]
    else:
        raise MissingFileError(f"{root}: no {split}/labels folder and not a Pascal VOC root "
                               f"(make one with 'segeval model make-data {root}')")
    if not found:
        raise MissingFileError(f"{root}: the {split} split has no label PNG files")
    for stem, img, lab in found:
        if img is None:
            raise MissingFileError(f"{lab}: no image with stem {stem!r} beside it")
    return found  # type: ignore[return-value]


def load_split(root: str | Path, split: str, size: int | None = None) -> Split:
    """Read a whole split into memory.

    All images must share one size unless ``size`` is given: then every image is resized to
    ``size`` x ``size`` (bilinear; labels nearest). An image and its label map must have the
    same size (:class:`~segeval.errors.SizeMismatchError` otherwise).
    """
    from PIL import Image

    from segeval.errors import SizeMismatchError

    items = find_split(Path(root), split)
    images, labels = [], []
    for _stem, img_path, lab_path in items:
        img, lab = read_image(img_path), read_label_png(lab_path)
        if img.shape[:2] != lab.shape:
            raise SizeMismatchError(f"{img_path}: image {img.shape[1]}x{img.shape[0]} but its "
                                    f"labels {lab_path.name} are {lab.shape[1]}x{lab.shape[0]}")
        if size is not None and img.shape[:2] != (size, size):
            img = np.asarray(Image.fromarray(img).resize((size, size), Image.BILINEAR))
            lab = np.asarray(Image.fromarray(lab).resize((size, size), Image.NEAREST))
        if images and img.shape != images[0].shape:
            raise DataError(f"{img_path}: size {img.shape[1]}x{img.shape[0]} differs from "
                            f"{images[0].shape[1]}x{images[0].shape[0]} (pass --size to resize)")
        images.append(img)
        labels.append(lab)
    return Split(np.stack(images), np.stack(labels), [s for s, _, _ in items],
                 [p for _, _, p in items])


def read_class_names(root: str | Path, labels: np.ndarray | None = None,
                     ignore_index: int | None = IGNORE_INDEX) -> tuple[str, ...]:
    """The class names of a data folder: ``root/classes.json`` if present, the 21 VOC classes
    for a VOC root, else ``"0" .. "K-1"`` with ``K`` = the largest label in ``labels`` + 1."""
    from segeval.formats import folder, voc

    root = Path(root)
    if (root / "classes.json").is_file():
        return folder.read_class_names(root / "classes.json")
    if root.is_dir() and not (root / "train").is_dir() and voc.voc_root(root) is not None:
        return voc.CLASS_NAMES
    if labels is None:
        raise DataError(f"{root}: no classes.json; cannot tell the number of classes")
    valid = labels if ignore_index is None else labels[labels != ignore_index]
    k = int(valid.max()) + 1 if valid.size else 1
    return tuple(str(i) for i in range(k))


# --------------------------------------------------------------------------- writing predictions

def write_label_png(path: Path, labels: np.ndarray) -> None:
    """Write class indices ``(H, W)`` as a VOC-palette PNG (8-bit grey above 256 classes is
    impossible: raises ``ValueError``)."""
    from PIL import Image

    if labels.size and int(labels.max()) > 255:
        raise ValueError(f"{path}: label {int(labels.max())} does not fit an 8-bit PNG")
    img = Image.fromarray(labels.astype(np.uint8), "L").convert("P")
    img.putpalette(voc_palette().ravel().tolist())
    img.save(path, format="PNG")


def write_predictions(model: Any, files: dict[str, Path], out: str | Path, *,
                      batch_size: int = 32,
                      progress: Callable[[int], object] | None = None) -> list[Path]:
    """Predict every image of ``files`` (key -> image path) and write ``out/<key>.png``.

    Consecutive images of one size are predicted as a batch. The PNGs are first written to a
    hidden staging folder inside ``out`` and moved into place only when every image has been
    predicted: an unreadable image leaves ``out`` as it was. Returns the written paths.
    """
    import shutil
    import tempfile

    from segeval.model.unet import predict

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".segeval-predict-", dir=out))
    try:
        keys = list(files)
        pending: list[tuple[str, np.ndarray]] = []

        def flush() -> None:
            preds = predict(model, np.stack([im for _, im in pending]), batch_size)
            for (key, _), pred in zip(pending, preds, strict=True):
                target = stage / f"{key}.png"
                target.parent.mkdir(parents=True, exist_ok=True)
                write_label_png(target, pred)
            if progress is not None:
                progress(len(pending))
            pending.clear()

        for key in keys:
            img = read_image(files[key])
            if pending and (img.shape != pending[0][1].shape or len(pending) >= batch_size):
                flush()
            pending.append((key, img))
        if pending:
            flush()
        written = []
        for key in keys:
            target = out / f"{key}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(stage / f"{key}.png", target)
            written.append(target)
        return written
    finally:
        shutil.rmtree(stage, ignore_errors=True)
