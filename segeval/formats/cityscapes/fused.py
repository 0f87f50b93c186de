"""One Cityscapes pair decoded and counted in one compiled pass, without the decoded images.

:func:`pair_stats` reads a pair's labelIds, prediction and (for iIoU) instanceIds PNGs
(:class:`~segeval.formats.base.File` objects: members of a folder or of a submission archive),
inflates their image data into this thread's reusable buffers and hands the three inflated
streams to :func:`segeval.core.kernels.c_png.count_cityscapes_rows` (C), which un-filters them
row by row (the same row functions as :func:`segeval.formats.png.read_label_png`'s fast
decoder) and counts the rows while they are in cache. The counts are the ones
:func:`segeval.core.kernels.cityscapes.count_cityscapes` gives for the decoded arrays, and
they go through the same checks (:func:`segeval.formats.cityscapes.stats.stats_from_counts`),
so the statistics are identical to those of the decode-then-count path.

The count tables are reused from call to call in the same thread (a fresh set of multi-MB
arrays per image costs a page fault per 4 KiB: measured ~1.8 ms of system time per pair).

Where this path does not apply -- the PNG decoder (``decoder``) is ``pillow``, the compiled
kernels are not available (:func:`segeval.core.kernels.compiled_available`), a file cannot be
read or is not an 8-bit grey/palette (labelIds, prediction) or 16-bit grey (instanceIds)
non-interlaced PNG, the sizes differ, or a row has a bad filter byte -- :func:`pair_stats`
returns ``None`` and the caller decodes the files one by one, which raises the usual one-line
errors.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np

from segeval.core.kernels import compiled_available
from segeval.errors import SegevalError
from segeval.formats import png

if TYPE_CHECKING:
    from segeval.formats.cityscapes.stats import CityscapesStats

_GREY8 = ((8, 0), (8, 3))
_GREY16 = ((16, 0),)
_local = threading.local()


def _read(file: Any) -> bytes | None:
    try:
        return file.read()
    except (SegevalError, OSError):
        return None  # the plain path says what is wrong


def _header(name: str, data: bytes | None,
            kinds: tuple[tuple[int, int], ...]) -> png._Header | None:
    if data is None or not data.startswith(png.PNG_SIGNATURE):
        return None
    h = png._parse(name, data)
    if (h.bit_depth, h.colour_type) not in kinds or h.interlaced or h.animated:
        return None
    return h


def _tables() -> dict[str, np.ndarray]:
    """This thread's count tables (65536 int64 each, all zero: every user zeroes what it
    touched). The kernel's row buffers are its own (a few bytes per pixel of one row)."""
    s = getattr(_local, "tables", None)
    if s is None:
        s = {name: np.zeros(65536, np.int64) for name in ("hist", "size", "tp", "cat_tp")}
        _local.tables = s
    return s


def pair_stats(gt: Any, pred: Any, instances: Any | None, pred_ids: str,
               decoder: str = "auto") -> CityscapesStats | None:
    """The statistics of one pair (``instances=None``: no iIoU counts), or ``None`` where this
    path does not apply (see the module docstring).

    ``gt``, ``pred`` and ``instances`` are :class:`~segeval.formats.base.File` objects
    (anything with ``read() -> bytes`` and a ``str()`` naming it in messages); ``decoder`` is
    the PNG decoder option (``"auto"``, ``"fast"``, ``"pillow"``). Raises the errors of
    :func:`segeval.formats.cityscapes.stats.image_stats` (values outside the label table) and the
    :class:`~segeval.errors.FileFormatError` of a corrupt PNG."""
    files = [gt, pred] if instances is None else [gt, pred, instances]
    datas = [_read(f) for f in files]
    headers = [_header(str(f), d, _GREY16 if i == 2 else _GREY8)
               for i, (f, d) in enumerate(zip(files, datas, strict=True))]
    if any(h is None for h in headers):
        return None
    h0 = headers[0]
    assert h0 is not None
    width, height = h0.width, h0.height
    if any((h.width, h.height) != (width, height) for h in headers):  # type: ignore[union-attr]
        return None
    if decoder == "pillow" or not compiled_available():
        return None  # the decoder's own rule (segeval.formats.png.decode_label_png)
    png._check_size(str(gt), width, height)
    raws = []
    for slot, (f, h) in enumerate(zip(files, headers, strict=True)):
        assert h is not None
        bpp = 2 if h.bit_depth == 16 else 1
        what = f"{width}x{height} {h.bit_depth}-bit colour-type-{h.colour_type}"
        raws.append(png._inflate(str(f), h.idat, height * (width * bpp + 1), what, slot))
    if instances is None:
        raws.append(np.zeros(0, np.uint8))

    from segeval.core.kernels.c_png import count_cityscapes_rows
    from segeval.core.kernels.cityscapes import (
        INSTANCE_OFFSET,
        CityscapesCounts,
        compact,
        instance_tables,
    )
    from segeval.formats.cityscapes.stats import CATEGORY_OF, PRED_LUTS, stats_from_counts

    lut = PRED_LUTS[pred_ids]
    label_of, inst_cat = instance_tables(CATEGORY_OF)
    s = _tables()
    hist, size, tp, cat_tp = s["hist"], s["size"], s["tp"], s["cat_tp"]
    touched = None  # the instance ids counted (compact finds them), else found again below
    try:
        bad = count_cityscapes_rows(raws[0], raws[1], raws[2], height, width,
                                    instances is not None, INSTANCE_OFFSET, lut, CATEGORY_OF,
                                    label_of, inst_cat, hist, size, tp, cat_tp)
        if bad >= 0:
            return None  # a bad filter byte: the plain decoder names the file and row
        counts = CityscapesCounts(hist.reshape(256, 256), *compact(size, tp, cat_tp))
        touched = counts.instance_ids  # only ids above 1000 are ever counted
        return stats_from_counts(counts, pred_ids=pred_ids, pred_name=str(pred),
                                 gt_name=str(gt), instances_name=str(instances))
    finally:
        hist[:] = 0
        if touched is None:
            touched = np.flatnonzero(size)
        size[touched] = 0
        tp[touched] = 0
        cat_tp[touched] = 0
