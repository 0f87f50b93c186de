"""Reading label maps from PNG files: one reader for every adapter.

``read_label_png`` returns the stored *indices*, never colours: a palette PNG (Pascal VOC)
gives its palette indices, an 8-bit grey PNG ``uint8``, a 16-bit grey PNG ``uint16``
(Cityscapes instanceIds), a 1-bit PNG ``uint8`` 0/1. An RGB image is refused where indices are
expected, and turned into panoptic segment ids ``R + 256 G + 256^2 B`` (``uint32``) with
``panoptic=True``. Every failure is a :class:`~segeval.errors.SegevalError` naming the file.
"""

from __future__ import annotations

import os
import zlib
from pathlib import Path

import numpy as np

from segeval.errors import FileFormatError, MissingFileError

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

_INDEX_MODES = {"P": np.uint8, "L": np.uint8, "1": np.uint8, "I;16": np.uint16,
                "I;16B": np.uint16, "I;16L": np.uint16, "I": np.int32}


def read_label_png(path: str | os.PathLike[str], *, panoptic: bool = False) -> np.ndarray:
    """Decode one label PNG into an ``H x W`` integer array (see the module docstring)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot be read ({e.strerror or e})") from None
    return decode_label_png(data, str(path), panoptic=panoptic)


def decode_label_png(data: bytes, name: str, *, panoptic: bool = False) -> np.ndarray:
    """Decode the bytes of one label PNG (read from ``name``: a file, a zip member) like
    :func:`read_label_png`; errors name ``name``."""
    from PIL import Image, UnidentifiedImageError

    path = name
    if not data.startswith(PNG_SIGNATURE):
        raise FileFormatError(f"{path}: not a PNG file (the PNG signature is missing)")
    import io

    try:
        with Image.open(io.BytesIO(data)) as img:
            img.load()
            mode = img.mode
            if mode in ("RGB", "RGBA") and panoptic:
                rgb = np.asarray(img.convert("RGB"), dtype=np.uint32)
                return rgb[..., 0] + (rgb[..., 1] << 8) + (rgb[..., 2] << 16)
            if mode not in _INDEX_MODES:
                what = "an RGB image" if mode.startswith("RGB") else f"a PNG of mode {mode}"
                raise FileFormatError(
                    f"{path}: {what} where label indices are expected (save single-channel "
                    f"class indices: 8-bit grey, palette, or 16-bit grey)"
                )
            if panoptic:
                raise FileFormatError(
                    f"{path}: a single-channel image where an RGB panoptic PNG is expected"
                )
            arr = np.asarray(img)
    except (OSError, SyntaxError, ValueError, zlib.error, UnidentifiedImageError) as e:
        raise FileFormatError(f"{path}: corrupt PNG ({e})") from None
    return arr.astype(_INDEX_MODES[mode], copy=False)
