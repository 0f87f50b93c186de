"""Drop-in replacements for other tools' metric functions, computed by segeval.

:func:`hf_mean_iou` is Hugging Face ``evaluate``'s ``mean_iou`` metric (what
``evaluate.load("mean_iou").compute(...)`` returns, as used by the transformers
semantic-segmentation examples) without the Hub and without its per-image histograms: the
pixels are counted once into segeval's :class:`~segeval.ConfusionMatrix` and the scores are
:mod:`segeval.core.metrics`' formulas, which give evaluate's values (``docs/metrics.md``,
"Hugging Face evaluate's mean_iou").

>>> import numpy as np
>>> from segeval.compat import hf_mean_iou
>>> r = hf_mean_iou([np.array([[1, 2], [3, 4], [5, 255]])],
...                 [np.array([[0, 3], [5, 4], [6, 255]])], num_labels=10, ignore_index=255)
>>> round(float(r["overall_accuracy"]), 4), int(np.isnan(r["per_category_iou"]).sum())
(0.2, 3)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from segeval.core import metrics
from segeval.core.confusion import (
    ConfusionMatrix,
    check_ignore_index,
    is_int,
)
from segeval.core.device import check_labels
from segeval.errors import InvalidParameterError, SizeMismatchError, bad_value

__all__ = ["hf_mean_iou"]

log = logging.getLogger("segeval")

#: An integer label array spanning more values than this is mapped through ``np.unique``
#: instead of a lookup table.
_TABLE_SPAN = 1 << 20


def hf_mean_iou(
    predictions: Iterable[Any],
    references: Iterable[Any],
    num_labels: int,
    ignore_index: int | None,
    nan_to_num: float | None = None,
    label_map: Mapping[int, int] | None = None,
    reduce_labels: bool = False,
) -> dict[str, Any]:
    """Hugging Face evaluate's ``mean_iou``: the same arguments, the same dict, the same values.

    Parameters
    ----------
    predictions, references
        Sequences (or iterables) of integer label maps, one pair per image; the images may have
        different sizes (each pair must match). Arrays, nested lists, PIL images or CPU tensors;
        float arrays are accepted when every value is a whole number.
    num_labels
        ``C``: the classes are ``0..C-1``.
    ignore_index
        The reference value not scored (after ``label_map`` and ``reduce_labels``); ``None``:
        none.
    nan_to_num
        If given, every NaN of the result (the means and the overall accuracy included) is
        replaced by it, after the means are taken (as evaluate does).
    label_map
        ``{old: new}`` applied to the *references* only, entry after entry in the mapping's
        order, each on the result of the previous one (evaluate assigns in place): ``{1: 2,
        2: 3}`` sends 1 to 3. segeval never modifies the caller's arrays (evaluate writes into
        a NumPy reference it is given).
    reduce_labels
        ADE20K's convention, on the *references* only: 0 -> 255, every other value ``v`` ->
        ``v - 1``, and 255 stays 255 (so 255 is ignored only if ``ignore_index`` is 255).
        Predictions are taken as they are (0..C-1).

    Returns
    -------
    dict
        ``mean_iou``, ``mean_accuracy``, ``overall_accuracy`` (``numpy.float64``),
        ``per_category_iou``, ``per_category_accuracy`` (``(C,)`` float64): fractions. A class
        without reference pixels has accuracy NaN; one also never predicted has IoU NaN (one
        predicted but absent from the references has IoU 0); the means are over the non-NaN
        classes (NaN when there are none), the overall accuracy is NaN without any counted
        pixel.

    Values outside ``0..C-1`` are dropped as evaluate drops them: a predicted one is wrong for
    its pixel's reference class and a false positive of none; a reference one (not
    ``ignore_index``) is no class's pixel, but the prediction there still counts as predicted.
    evaluate does this silently; segeval logs one warning per call saying how many pixels.
    ``predictions`` and ``references`` of different lengths are scored pair by pair up to the
    shorter (evaluate ``zip``\\ s them), with a warning.

    Raises :class:`~segeval.errors.InvalidParameterError` for a bad argument and
    :class:`~segeval.errors.SizeMismatchError` for a pair of different shapes (naming the
    image's index).
    """
    if not is_int(num_labels) or num_labels < 1:
        raise bad_value("num_labels", "a positive integer", num_labels)
    c = int(num_labels)
    ignore = check_ignore_index(ignore_index)
    if nan_to_num is not None and (isinstance(nan_to_num, bool) or
                                   not isinstance(nan_to_num, int | float | np.number)):
        raise bad_value("nan_to_num", "a number or None", nan_to_num)
    steps = _check_label_map(label_map)
    if not isinstance(reduce_labels, bool | np.bool_):
        raise bad_value("reduce_labels", "True or False", reduce_labels)
    reference_classes = _ReferenceClasses(c, ignore, steps, bool(reduce_labels))

    # classes 0..C-1, C = "a reference value outside 0..C-1", C+1 = ignored
    cm = ConfusionMatrix(c + 1, ignore_index=c + 1)
    end = object()
    for i, (pred, ref) in enumerate(itertools.zip_longest(predictions, references,
                                                          fillvalue=end)):
        if pred is end or ref is end:
            log.warning("hf_mean_iou: %s predictions than references; only the first %d pairs "
                        "are scored (as evaluate's zip does)",
                        "fewer" if pred is end else "more", i)
            break
        p = _labels(pred, f"predictions[{i}]")
        g = _labels(ref, f"references[{i}]")
        if p.shape != g.shape:
            raise SizeMismatchError(f"predictions[{i}]: shape {p.shape} does not match "
                                    f"references[{i}] shape {g.shape}")
        cm.update(p, reference_classes(g), invalid_pred="wrong",
                  pred_name=f"predictions[{i}]", gt_name=f"references[{i}]")

    m, unassigned = cm.matrix, cm.unassigned
    pred_outside = int(m[:, c].sum() + unassigned.sum())
    ref_outside = int(m[c].sum() + unassigned[c])
    if pred_outside or ref_outside:
        log.warning("hf_mean_iou: %d predicted and %d reference pixels (not ignore_index) hold "
                    "values outside 0..%d; they are dropped as evaluate's mean_iou drops them",
                    pred_outside, ref_outside, c - 1)
    counts = metrics.ClassCounts(tp=np.diagonal(m)[:c].copy(),
                                 gt=m[:c].sum(axis=1) + unassigned[:c],
                                 pr=m[:, :c].sum(axis=0))
    result: dict[str, Any] = {
        "mean_iou": np.float64(metrics.miou(counts)),
        "mean_accuracy": np.float64(metrics.mean_pixel_accuracy(counts)),
        "overall_accuracy": np.float64(metrics.pixel_accuracy(counts)),
        "per_category_iou": metrics.iou(counts),
        "per_category_accuracy": metrics.class_accuracy(counts),
    }
    if nan_to_num is not None:
        result = {k: np.nan_to_num(v, nan=nan_to_num) for k, v in result.items()}
    return result


def _check_label_map(label_map: Any) -> tuple[tuple[int, int], ...]:
    """``label_map`` as ``((old, new), ...)`` in its order; refused unless it maps integers to
    integers."""
    if label_map is None:
        return ()
    expected = "a mapping of integer labels to integer labels, or None"
    if not isinstance(label_map, Mapping) or not all(is_int(k) and is_int(v)
                                                     for k, v in label_map.items()):
        raise bad_value("label_map", expected, label_map)
    return tuple((int(k), int(v)) for k, v in label_map.items())


def _labels(x: Any, name: str) -> np.ndarray:
    """An image's labels as an integer array (whole-valued floats converted)."""
    try:
        a = x if isinstance(x, np.ndarray) else (
            np.from_dlpack(x) if hasattr(x, "__dlpack__") else np.asarray(x))
    except (TypeError, ValueError, RuntimeError, BufferError):
        raise InvalidParameterError(f"{name}: not an array of labels ({type(x).__name__})",
                                    parameters=(name.split("[")[0],)) from None
    if a.dtype.kind == "f":
        whole = np.isfinite(a).all() and bool((a == np.round(a)).all())
        if not whole:
            raise InvalidParameterError(f"{name}: float labels that are not whole numbers; "
                                        f"take the argmax over the class axis first",
                                        parameters=(name.split("[")[0],))
        a = a.astype(np.int64)
    return check_labels(a, name)


class _ReferenceClasses:
    """A reference image's values -> what segeval counts: the class ``0..C-1``, ``C`` for a
    value outside the classes, ``C + 1`` for ``ignore_index``; after evaluate's ``label_map``
    (in sequence) and ``reduce_labels``, computed on the integer values (evaluate computes in
    the array's dtype, where a ``label_map`` value that does not fit wraps or raises)."""

    def __init__(self, c: int, ignore: int | None, steps: tuple[tuple[int, int], ...],
                 reduce: bool) -> None:
        self.c, self.ignore, self.steps, self.reduce = c, ignore, steps, reduce
        self.out = np.uint8 if c + 1 < 256 else (np.uint16 if c + 1 < 65536 else np.int64)
        self._tables: dict[int, np.ndarray] = {}

    def of_values(self, v: np.ndarray) -> np.ndarray:
        """The mapping applied to an int64 vector of values."""
        v = v.astype(np.int64, copy=True)
        for old, new in self.steps:
            v[v == old] = new
        if self.reduce:
            v[v == 0] = 255
            v -= 1
            v[v == 254] = 255
        out = np.where((v >= 0) & (v < self.c), v, self.c)
        if self.ignore is not None:
            out[v == self.ignore] = self.c + 1
        return out.astype(self.out)

    def __call__(self, g: np.ndarray) -> np.ndarray:
        if g.dtype == np.bool_:
            g = g.view(np.uint8)
        if g.dtype.kind == "u" and g.dtype.itemsize <= 2:
            bits = 8 * g.dtype.itemsize
            if bits not in self._tables:
                self._tables[bits] = self.of_values(np.arange(1 << bits))
            return np.take(self._tables[bits], g)  # faster than fancy indexing
        if g.size == 0:
            return np.zeros(g.shape, self.out)
        lo, hi = int(g.min()), int(g.max())
        if hi - lo < _TABLE_SPAN:
            table = self.of_values(np.arange(lo, hi + 1))
            return np.take(table, (g - lo) if lo else g)
        values, inverse = np.unique(g, return_inverse=True)
        return self.of_values(values)[inverse].reshape(g.shape)
