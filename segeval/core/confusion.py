"""The confusion matrix: the sufficient statistic of every semantic-segmentation metric.

A :class:`ConfusionMatrix` is a ``C x C`` int64 count with **rows = ground truth and columns =
prediction**, plus ``unassigned``, a ``(C,)`` int64 count of ground-truth pixels whose prediction
is no class at all (see :mod:`segeval.core.metrics`). Pixels whose ground truth equals
``ignore_index`` are never counted. Counts are exact integers, so ``a + b`` is exact,
associative and independent of order: per-image matrices, batches, process pools and clusters
all give the same totals.

Labels in ``pred`` and ``gt`` are class indices ``0 .. C-1``; any integer dtype (or bool) of
any shape, as long as both shapes are equal: one image ``H x W``, a batch ``N x H x W``.
A ground-truth value that is neither a class nor the ignore index is always an error; a
predicted value outside ``[0, C)`` on a counted pixel is an error unless ``invalid_pred="wrong"``,
which counts it as wrong for every class (in ``unassigned``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from segeval.core import metrics
from segeval.core.device import check_device, check_labels, label_arrays, require_cuda
from segeval.core.kernels import count_pixels
from segeval.core.kernels.xp import namespace_of
from segeval.errors import LabelError, Shown, SizeMismatchError, bad_value

if TYPE_CHECKING:
    import pandas as pd

InvalidPred = Literal["error", "wrong"]


def as_label_array(x: Any, name: str) -> np.ndarray:
    """Return ``x`` as a NumPy integer array without copying where possible.

    Accepts NumPy arrays, nested sequences and CPU objects with ``__dlpack__`` (a PyTorch CPU
    tensor, for example). Float arrays are refused (an
    :class:`~segeval.errors.InvalidParameterError` naming ``name``): take the argmax over the
    class axis first.
    """
    if not isinstance(x, np.ndarray):
        x = np.from_dlpack(x) if hasattr(x, "__dlpack__") else np.asarray(x)
    return check_labels(x, name)


def is_int(value: Any) -> bool:
    """``True`` for a Python or NumPy integer that is not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


#: the most classes a confusion matrix may have: its ``C x C`` int64 counts then take 2 GiB
#: (and each worker holds one); more is refused before anything is allocated
MAX_CLASSES = 16384


def check_num_classes(num_classes: Any) -> int:
    """``num_classes`` as an ``int``; :class:`~segeval.errors.InvalidParameterError` unless it
    is a positive integer of at most :data:`MAX_CLASSES` (the matrix needs ``C² x 8`` bytes)."""
    if not is_int(num_classes) or num_classes < 1:
        raise bad_value("num_classes", "a positive integer", num_classes)
    if num_classes > MAX_CLASSES:
        raise bad_value("num_classes", f"at most {MAX_CLASSES} (a confusion matrix of C classes "
                        f"needs C x C x 8 bytes: {_gib(MAX_CLASSES)} for {MAX_CLASSES}, "
                        f"{_gib(int(num_classes))} for {int(num_classes)})", num_classes)
    return int(num_classes)


def _gib(c: int) -> str:
    return f"{c * c * 8 / (1 << 30):.3g} GiB"


def check_ignore_index(ignore_index: Any) -> int | None:
    """``ignore_index`` as an ``int`` or ``None``; :class:`~segeval.errors.InvalidParameterError`
    for anything else."""
    if ignore_index is None:
        return None
    if not is_int(ignore_index):
        raise bad_value("ignore_index", "an integer label or None", ignore_index)
    return int(ignore_index)


def count_array(value: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    """A new int64 array of ``value``; :class:`~segeval.errors.InvalidParameterError` naming
    ``name`` unless it holds non-negative integers in ``shape``."""
    expected = f"an array of non-negative integer counts of shape {shape}"
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):  # a ragged list
        raise bad_value(name, expected, value) from None
    if not np.issubdtype(arr.dtype, np.integer) or arr.shape != shape \
            or (arr.size and arr.min() < 0):
        raise bad_value(name, expected, value if arr.dtype != object else Shown("objects"))
    return np.array(arr, dtype=np.int64)


class ConfusionMatrix:
    """Streaming, mergeable confusion matrix (rows = ground truth, columns = prediction).

    Parameters
    ----------
    num_classes:
        ``C``, the number of classes; labels are ``0 .. C-1``.
    ignore_index:
        Ground-truth value whose pixels are not counted (default 255; ``None`` for none).
    class_names:
        Optional ``C`` names, used in tables and reports (default ``"0" .. "C-1"``).
    matrix, unassigned:
        Optional starting counts, ``(C, C)`` and ``(C,)`` integers (e.g. a saved state).
    device:
        Where :meth:`update` counts: ``"auto"`` (default: where the input is; CuPy arrays and
        CUDA tensors from any framework on their GPU, zero-copy through DLPack), ``"cpu"`` or
        ``"cuda"`` (needs CuPy and a CUDA device, checked here: ``pip install segeval[gpu]``).
        See :mod:`segeval.core.device`. The counts do not depend on it.

    >>> import numpy as np
    >>> cm = ConfusionMatrix(3)
    >>> cm.update(np.array([[0, 1], [2, 2]]), np.array([[0, 1], [1, 255]]))
    ConfusionMatrix(num_classes=3, ignore_index=255, pixels=3)
    >>> cm.matrix
    array([[1, 0, 0],
           [0, 1, 1],
           [0, 0, 0]])
    >>> round(cm.miou(), 4), cm.miou().n
    (0.5, 3)
    """

    def __init__(
        self,
        num_classes: int,
        ignore_index: int | None = 255,
        class_names: Sequence[str] | None = None,
        *,
        matrix: np.ndarray | None = None,
        unassigned: np.ndarray | None = None,
        device: str = "auto",
    ) -> None:
        c = check_num_classes(num_classes)
        self.device = check_device(device)
        ignore_index = check_ignore_index(ignore_index)
        if class_names is not None:
            names = f"a sequence of num_classes={c} names or None"
            if isinstance(class_names, str | bytes) or not hasattr(class_names, "__len__") \
                    or not hasattr(class_names, "__iter__"):
                raise bad_value("class_names", names, class_names)
            if len(class_names) != c:
                raise bad_value("class_names", names, Shown(f"{len(class_names)} names"))
        self.matrix = count_array(np.zeros((c, c), np.int64) if matrix is None else matrix,
                                  (c, c), "matrix")
        self.unassigned = count_array(np.zeros(c, np.int64) if unassigned is None
                                      else unassigned, (c,), "unassigned")
        if self.device == "cuda":
            require_cuda("ConfusionMatrix(device='cuda')")
        self.num_classes = c
        self.ignore_index = ignore_index
        self.class_names: tuple[str, ...] = (
            tuple(str(n) for n in class_names) if class_names is not None
            else tuple(str(i) for i in range(c))
        )

    # ------------------------------------------------------------------ accumulation

    def update(
        self,
        pred: Any,
        gt: Any,
        *,
        invalid_pred: InvalidPred = "error",
        pred_name: str = "pred",
        gt_name: str = "gt",
    ) -> ConfusionMatrix:
        """Add the pixels of one image or a batch; returns ``self``.

        ``pred`` and ``gt`` are integer label arrays of the same shape. ``pred_name`` and
        ``gt_name`` are how errors refer to them (a file name, say). Raises
        :class:`~segeval.errors.SizeMismatchError` for different shapes and
        :class:`~segeval.errors.LabelError` for a ground-truth value that is neither a class nor
        the ignore index, or (with ``invalid_pred="error"``) a prediction outside ``[0, C)`` on a
        counted pixel. Nothing is added when an error is raised.
        """
        if not isinstance(invalid_pred, str) or invalid_pred not in ("error", "wrong"):
            raise bad_value("invalid_pred", "'error' or 'wrong'", invalid_pred)
        p, g = label_arrays(pred, gt, self.device)
        if p.shape != g.shape:
            raise SizeMismatchError(
                f"{pred_name}: shape {p.shape} does not match the ground truth {gt_name} "
                f"shape {g.shape}"
            )
        counts = count_pixels(p, g, self.num_classes, self.ignore_index)
        c = self.num_classes
        if counts.bad_gt_value is not None:
            allowed = f"0..{c - 1}" + (
                "" if self.ignore_index is None else f" or the ignore index {self.ignore_index}"
            )
            raise LabelError(
                f"{gt_name}: ground-truth label {counts.bad_gt_value} is not a class "
                f"(expected {allowed}; {counts.bad_gt_count} such pixels)"
            )
        if counts.bad_pred_value is not None and invalid_pred == "error":
            raise LabelError(
                f"{pred_name}: predicted label {counts.bad_pred_value} is not a class "
                f"(expected 0..{c - 1}; {int(counts.table[:, c].sum())} such pixels on valid "
                f"ground truth)"
            )
        self.matrix += counts.table[:, :c]
        self.unassigned += counts.table[:, c]
        return self

    def update_missing(self, gt: Any, *, gt_name: str = "gt") -> ConfusionMatrix:
        """Count every valid pixel of ``gt`` as wrong for every class (a missing prediction)."""
        g = label_arrays(gt, gt, self.device, ("gt", "gt"))[1]
        none = namespace_of(g).full(g.shape, self.num_classes,
                                    np.uint16 if self.num_classes < 65535 else np.int64)
        return self.update(none, g, invalid_pred="wrong", gt_name=gt_name)

    def _check_compatible(self, other: object) -> ConfusionMatrix:
        if not isinstance(other, ConfusionMatrix):
            raise TypeError(f"Can only add a ConfusionMatrix to a ConfusionMatrix, not "
                            f"{type(other).__name__}.")
        mine = (self.num_classes, self.ignore_index, self.class_names)
        theirs = (other.num_classes, other.ignore_index, other.class_names)
        if mine != theirs:
            raise ValueError(
                "Cannot merge confusion matrices with different settings: "
                f"(num_classes, ignore_index, class_names) {mine} vs {theirs}."
            )
        return other

    def __add__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        other = self._check_compatible(other)
        total = ConfusionMatrix(
            self.num_classes, self.ignore_index, self.class_names,
            matrix=self.matrix + other.matrix, unassigned=self.unassigned + other.unassigned,
        )
        total.device = self.device
        return total

    def __iadd__(self, other: ConfusionMatrix) -> ConfusionMatrix:
        other = self._check_compatible(other)
        self.matrix += other.matrix
        self.unassigned += other.unassigned
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConfusionMatrix):
            return NotImplemented
        return (
            (self.num_classes, self.ignore_index, self.class_names)
            == (other.num_classes, other.ignore_index, other.class_names)
            and np.array_equal(self.matrix, other.matrix)
            and np.array_equal(self.unassigned, other.unassigned)
        )

    __hash__ = None  # type: ignore[assignment]  # mutable

    def copy(self) -> ConfusionMatrix:
        """An independent copy."""
        twin = ConfusionMatrix(self.num_classes, self.ignore_index, self.class_names,
                               matrix=self.matrix, unassigned=self.unassigned)
        twin.device = self.device
        return twin

    @property
    def total(self) -> int:
        """Number of counted (valid ground-truth) pixels."""
        return int(self.matrix.sum() + self.unassigned.sum())

    def __repr__(self) -> str:
        return (f"ConfusionMatrix(num_classes={self.num_classes}, "
                f"ignore_index={self.ignore_index}, pixels={self.total})")

    # ------------------------------------------------------------------ metrics

    def iou(self, absent: metrics.Absent = "nan") -> np.ndarray:
        """Per-class IoU; see :func:`segeval.core.metrics.iou`."""
        return metrics.iou(self, absent)

    def miou(self, absent: metrics.Absent = "nan") -> metrics.MeanScore:
        """Mean IoU; see :func:`segeval.core.metrics.miou`."""
        return metrics.miou(self, absent)

    def pixel_accuracy(self) -> float:
        """See :func:`segeval.core.metrics.pixel_accuracy`."""
        return metrics.pixel_accuracy(self)

    def mean_pixel_accuracy(self, absent: metrics.Absent = "nan") -> metrics.MeanScore:
        """See :func:`segeval.core.metrics.mean_pixel_accuracy`."""
        return metrics.mean_pixel_accuracy(self, absent)

    def fwiou(self) -> float:
        """See :func:`segeval.core.metrics.fwiou`."""
        return metrics.fwiou(self)

    def dice(self, absent: metrics.Absent = "nan") -> np.ndarray:
        """Per-class Dice; see :func:`segeval.core.metrics.dice`."""
        return metrics.dice(self, absent)

    def mean_dice(self, absent: metrics.Absent = "nan") -> metrics.MeanScore:
        """See :func:`segeval.core.metrics.mean_dice`."""
        return metrics.mean_dice(self, absent)

    def result(self, absent: metrics.Absent = "nan", **info: Any) -> SemanticResult:
        """Every metric at once, as a :class:`SemanticResult` (``info`` fills its other fields)."""
        return SemanticResult(
            confusion=self.copy(),
            absent=absent,
            pixel_accuracy=metrics.pixel_accuracy(self),
            mean_pixel_accuracy=metrics.mean_pixel_accuracy(self, absent),
            miou=metrics.miou(self, absent),
            fwiou=metrics.fwiou(self),
            mean_dice=metrics.mean_dice(self, absent),
            iou=metrics.iou(self, absent),
            accuracy=metrics.class_accuracy(self, absent),
            dice=metrics.dice(self, absent),
            **info,
        )

    def to_frame(self, absent: metrics.Absent = "nan") -> pd.DataFrame:
        """Per-class table (a pandas DataFrame indexed by class id)."""
        return self.result(absent).to_frame()


def confusion_matrix(
    pred: Any,
    gt: Any,
    num_classes: int,
    ignore_index: int | None = 255,
    *,
    class_names: Sequence[str] | None = None,
    device: str = "auto",
) -> ConfusionMatrix:
    """The confusion matrix of one image (``H x W``) or a batch (``N x H x W``).

    ``pred`` and ``gt`` hold class indices ``0 .. num_classes-1`` (any integer dtype, same
    shape); ground-truth pixels equal to ``ignore_index`` are dropped. Rows are ground truth,
    columns prediction. ``device`` is where to count (see :class:`ConfusionMatrix`).

    >>> import numpy as np
    >>> confusion_matrix(np.array([0, 1, 1]), np.array([0, 0, 1]), 2).matrix
    array([[1, 1],
           [0, 1]])
    """
    return ConfusionMatrix(num_classes, ignore_index, class_names, device=device).update(pred, gt)


def json_float(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass
class SemanticResult:
    """Every semantic-segmentation metric of one evaluation.

    Scores are fractions; per-class arrays are ``(C,)`` float64 with NaN for undefined values
    (see :mod:`segeval.core.metrics`). ``per_image`` holds one dict per image when it was asked
    for. ``to_dict()`` is JSON-safe (NaN becomes ``None``); ``to_frame()`` is the per-class table.
    """

    confusion: ConfusionMatrix
    absent: str
    pixel_accuracy: float
    mean_pixel_accuracy: metrics.MeanScore
    miou: metrics.MeanScore
    fwiou: float
    mean_dice: metrics.MeanScore
    iou: np.ndarray
    accuracy: np.ndarray
    dice: np.ndarray
    task: str = "semantic"
    format: str | None = None
    num_images: int | None = None
    per_image: list[dict[str, Any]] | None = field(default=None, repr=False)

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.confusion.class_names

    def metrics_dict(self) -> dict[str, Any]:
        """The headline numbers and how they were averaged, JSON-safe."""
        cm = self.confusion
        return {
            "pixel_accuracy": json_float(self.pixel_accuracy),
            "mean_pixel_accuracy": json_float(self.mean_pixel_accuracy),
            "miou": json_float(self.miou),
            "fwiou": json_float(self.fwiou),
            "mean_dice": json_float(self.mean_dice),
            "classes_averaged": {
                "miou": self.miou.n,
                "mean_pixel_accuracy": self.mean_pixel_accuracy.n,
                "mean_dice": self.mean_dice.n,
            },
            "absent": self.absent,
            "num_classes": cm.num_classes,
            "ignore_index": cm.ignore_index,
            "valid_pixels": cm.total,
            "unassigned_pixels": int(cm.unassigned.sum()),
        }

    def per_class(self) -> list[dict[str, Any]]:
        """One JSON-safe dict per class: id, name, iou, accuracy, dice and pixel counts."""
        cm = self.confusion
        tp, gt, pr = (metrics.true_positives(cm), metrics.gt_pixels(cm),
                      metrics.pred_pixels(cm))
        return [
            {
                "id": c,
                "name": cm.class_names[c],
                "iou": json_float(self.iou[c]),
                "accuracy": json_float(self.accuracy[c]),
                "dice": json_float(self.dice[c]),
                "gt_pixels": int(gt[c]),
                "pred_pixels": int(pr[c]),
                "true_positives": int(tp[c]),
            }
            for c in range(cm.num_classes)
        ]

    def to_dict(self) -> dict[str, Any]:
        """The JSON document ``segeval score --json`` writes (``unassigned``: per class, the
        valid ground-truth pixels whose prediction was no class, e.g. missing)."""
        return {
            "task": self.task,
            "format": self.format,
            "num_images": self.num_images,
            "metrics": self.metrics_dict(),
            "per_class": self.per_class(),
            "confusion_matrix": self.confusion.matrix.tolist(),
            "unassigned": self.confusion.unassigned.tolist(),
        }

    def to_frame(self) -> pd.DataFrame:
        """Per-class table: a DataFrame indexed by class id, NaN kept as NaN."""
        import pandas as pd

        rows = self.per_class()
        frame = pd.DataFrame(rows).set_index("id")
        for col in ("iou", "accuracy", "dice"):
            frame[col] = frame[col].astype(float)
        return frame
