"""The Cityscapes counting kernel: one pass over labelIds, prediction and instanceIds.

For one image it returns

* ``hist``: ``(256, 256)`` int64, ``hist[g, p]`` = pixels whose ground-truth byte is ``g`` and
  whose *raw* prediction byte is ``p`` -- every pixel, ignored ids and unknown values included.
  Mapping train ids to label ids, dropping ignored rows and finding unknown values are done
  afterwards on this small table, never per pixel;
* for every instance (instanceIds value ``k > 1000``, as cityscapesScripts tests it): its size,
  ``tp`` = its pixels predicted as its own label id ``k // 1000``, and ``category_tp`` = its
  pixels predicted as any label id of the same category. The prediction byte is turned into a
  label id with ``pred_lut`` (identity for label ids, the train-id table for train ids) and a
  label id into a category index with ``category_of``; both are 256-entry ``uint8`` tables.

Two implementations give the same integers: a NumPy reference (chunked; the definition) and a
C loop (:func:`segeval.core.kernels.cc_count.count_with_instances`), chosen with
``kernel="auto"`` by the one policy :func:`segeval.core.kernels.compiled_available`.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from segeval.core.kernels import compiled_available

#: instanceIds values above this are instances (``label_id * 1000 + k``); at or below it, a
#: label id. The one definition of Cityscapes' convention: the label table
#: (:mod:`segeval.formats.cityscapes.labels`) and :mod:`segeval.core.instance_masks` import it.
INSTANCE_OFFSET = 1000
_CHUNK = 1 << 18


class CityscapesCounts(NamedTuple):
    """What the kernel returns for one image (see the module docstring).

    ``instance_ids``, ``size``, ``tp`` and ``category_tp`` are ``(n,)`` int64, one entry per
    instance id present in the image, in increasing id order (empty without instances).
    """

    hist: np.ndarray
    instance_ids: np.ndarray
    size: np.ndarray
    tp: np.ndarray
    category_tp: np.ndarray


def count_cityscapes(
    gt: np.ndarray,
    pred: np.ndarray,
    instances: np.ndarray | None,
    pred_lut: np.ndarray,
    category_of: np.ndarray,
    *,
    kernel: str = "auto",
) -> CityscapesCounts:
    """Count one image: ``gt`` and ``pred`` ``uint8``, ``instances`` ``uint16`` or ``None``.

    All arrays have the same shape. ``kernel`` is ``"auto"`` (chosen by
    :func:`~segeval.core.kernels.compiled_available`), ``"reference"`` or ``"compiled"``.
    """
    if gt.dtype != np.uint8 or pred.dtype != np.uint8:
        raise TypeError(f"gt and pred must be uint8 arrays, got {gt.dtype} and {pred.dtype}")
    if instances is not None and instances.dtype != np.uint16:
        raise TypeError(f"instances must be a uint16 array, got {instances.dtype}")
    if kernel == "auto":
        kernel = "compiled" if compiled_available() else "reference"
    if kernel == "compiled":
        return _count_compiled(gt, pred, instances, pred_lut, category_of)
    if kernel == "reference":
        return count_cityscapes_reference(gt, pred, instances, pred_lut, category_of)
    raise ValueError(
        f"The 'kernel' parameter must be 'auto', 'reference' or 'compiled'. Got {kernel!r} "
        f"instead."
    )


def instance_tables(category_of: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For every possible instanceIds value ``k`` (0..65535): its label id ``k // 1000`` and that
    label's category index (``uint8``; label ids beyond the table get ``category_of``'s value for
    them, normally 255). Read-only arrays, computed once per ``category_of`` table."""
    return _instance_tables(np.asarray(category_of, np.uint8).tobytes())


@functools.lru_cache(maxsize=4)
def _instance_tables(category_of: bytes) -> tuple[np.ndarray, np.ndarray]:
    label_of = (np.arange(65536) // INSTANCE_OFFSET).astype(np.uint8)
    inst_cat = np.frombuffer(category_of, np.uint8)[label_of]
    label_of.flags.writeable = inst_cat.flags.writeable = False
    return label_of, inst_cat


def compact(size: np.ndarray, tp: np.ndarray, cat_tp: np.ndarray) -> tuple[np.ndarray, ...]:
    """65536-entry per-value counts -> the entries of the instances present (ids > 1000)."""
    ids = np.flatnonzero(size[INSTANCE_OFFSET + 1:]) + (INSTANCE_OFFSET + 1)
    return ids.astype(np.int64), size[ids], tp[ids], cat_tp[ids]


def count_cityscapes_reference(
    gt: np.ndarray,
    pred: np.ndarray,
    instances: np.ndarray | None,
    pred_lut: np.ndarray,
    category_of: np.ndarray,
) -> CityscapesCounts:
    """NumPy definition of :func:`count_cityscapes` (chunks of 2^18 pixels)."""
    g_all, p_all = gt.reshape(-1), pred.reshape(-1)
    hist = np.zeros(65536, np.int64)
    for start in range(0, g_all.size, _CHUNK):
        g = g_all[start:start + _CHUNK].astype(np.uint16)
        hist += np.bincount((g << 8) | p_all[start:start + _CHUNK], minlength=65536)
    size = np.zeros(65536, np.int64)
    tp = np.zeros(65536, np.int64)
    cat_tp = np.zeros(65536, np.int64)
    if instances is not None:
        label_of, inst_cat = instance_tables(category_of)
        i_all = instances.reshape(-1)
        for start in range(0, i_all.size, _CHUNK):
            k = i_all[start:start + _CHUNK]
            inside = k > INSTANCE_OFFSET
            k = k[inside]
            q = pred_lut[p_all[start:start + _CHUNK][inside]]
            size += np.bincount(k, minlength=65536)
            tp += np.bincount(k[q == label_of[k]], minlength=65536)
            cat_tp += np.bincount(k[category_of[q] == inst_cat[k]], minlength=65536)
    return CityscapesCounts(hist.reshape(256, 256), *compact(size, tp, cat_tp))


def _count_compiled(gt: np.ndarray, pred: np.ndarray, instances: np.ndarray | None,
                    pred_lut: np.ndarray, category_of: np.ndarray) -> CityscapesCounts:
    """:func:`count_cityscapes` with the C loops of :mod:`segeval.core.kernels.c_count`."""
    from segeval.core.kernels import c_count

    g = np.ascontiguousarray(gt).reshape(-1)
    p = np.ascontiguousarray(pred).reshape(-1)
    if g.size != p.size or (instances is not None and instances.size != g.size):
        raise ValueError("gt, pred and instances must have the same number of pixels")
    hist = np.zeros(65536, np.int64)
    if instances is None:
        c_count.histogram_u8(g, p, hist)
        empty = np.zeros(0, np.int64)
        return CityscapesCounts(hist.reshape(256, 256), empty, empty, empty, empty)
    k = np.ascontiguousarray(instances).reshape(-1)
    label_of, inst_cat = instance_tables(category_of)
    size = np.zeros(65536, np.int64)
    tp = np.zeros(65536, np.int64)
    cat_tp = np.zeros(65536, np.int64)
    c_count.count_with_instances(g, p, k, INSTANCE_OFFSET, np.ascontiguousarray(pred_lut, np.uint8),
                         np.ascontiguousarray(category_of, np.uint8), label_of, inst_cat,
                         hist, size, tp, cat_tp)
    return CityscapesCounts(hist.reshape(256, 256), *compact(size, tp, cat_tp))
