"""Semantic-segmentation metrics: pure functions of a confusion matrix.

Conventions (they decide agreement with the official tools):

* The confusion matrix ``M`` is ``C x C`` with **rows = ground truth, columns = prediction**,
  summed over the whole dataset (metrics are *not* averaged per image). Pixels whose ground truth
  is the ignore index are not in it. ``unassigned[c]`` counts ground-truth pixels of class ``c``
  whose prediction is no class at all (a missing prediction counted as wrong, or an id the format
  treats as wrong for every class): they are false negatives of ``c`` and false positives of
  nothing.
* With ``TP_c = M[c, c]``, ``GT_c = sum_j M[c, j] + unassigned[c]``, ``PR_c = sum_i M[i, c]``
  and ``N = sum_c GT_c``:

  ========== ========================================== ============================
  metric     formula                                    undefined (NaN) when
  ========== ========================================== ============================
  PA         ``sum_c TP_c / N``                         ``N = 0``
  acc_c      ``TP_c / GT_c``                            ``GT_c = 0``
  MPA        mean of the defined ``acc_c``
  IoU_c      ``TP_c / (GT_c + PR_c - TP_c)``            ``GT_c + PR_c = 0``
  mIoU       mean of the defined ``IoU_c``
  FWIoU      ``sum_{c: GT_c > 0} (GT_c / N) IoU_c``     ``N = 0``
  Dice_c     ``2 TP_c / (GT_c + PR_c)``                 ``GT_c + PR_c = 0``
  mDice      mean of the defined ``Dice_c``
  ========== ========================================== ============================

* **Absent classes** are where tools disagree, so the policy is a named option, ``absent=``:

  - ``"nan"`` (default; Cityscapes, mmsegmentation, the VOC conformance suite): a class absent
    from the ground truth *and* never predicted is NaN and left out of the mean; a class
    predicted but absent from the ground truth has IoU 0 and counts.
  - ``"exclude-no-gt"`` (detectron2): every class without ground-truth pixels is NaN and left
    out, predicted or not.
  - ``"zero"`` (scikit-learn's ``jaccard_score(average="macro", zero_division=0)``, ADE20K's
    official code): undefined values are 0 and every class counts.

  The policy changes the per-class values (``iou(cm, absent="zero")`` has 0 where the default
  has NaN) and so the means, which are always the mean of the non-NaN per-class values.
  ``pixel_accuracy`` and ``fwiou`` do not depend on it.
* Scores are fractions in ``[0, 1]``, never percent. A mean is a :class:`MeanScore`: a float
  that also carries ``n``, the number of classes averaged, and the ``absent`` policy used. With
  no class defined the mean is NaN with ``n = 0``.

Example:

>>> import numpy as np
>>> from segeval import ConfusionMatrix
>>> cm = ConfusionMatrix(3, matrix=np.array([[3, 1, 0], [0, 2, 0], [0, 0, 0]]))
>>> iou(cm)
array([0.75      , 0.66666667,        nan])
>>> m = miou(cm)
>>> round(m, 6), m.n
(0.708333, 2)
>>> round(miou(cm, absent="zero"), 6), miou(cm, absent="zero").n
(0.472222, 3)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

import numpy as np

from segeval.errors import bad_value, one_of

if TYPE_CHECKING:
    from segeval.core.confusion import ConfusionMatrix

Absent = Literal["nan", "exclude-no-gt", "zero"]
ABSENT_POLICIES: tuple[str, ...] = ("nan", "exclude-no-gt", "zero")


class MeanScore(float):
    """A mean over classes: a ``float`` that also says how it was made.

    ``n`` is the number of classes averaged (those whose value is defined under the policy) and
    ``absent`` the policy. It compares, formats and serialises as the plain float.
    """

    n: int
    absent: str

    def __new__(cls, value: float, n: int, absent: str) -> MeanScore:
        self = super().__new__(cls, value)
        self.n = n
        self.absent = absent
        return self

    def __reduce__(self):  # keep n and absent through pickle (process pools)
        return (MeanScore, (float(self), self.n, self.absent))


def check_absent(absent: Any) -> None:
    """:class:`~segeval.errors.InvalidParameterError` unless ``absent`` is a policy name."""
    if not isinstance(absent, str) or absent not in ABSENT_POLICIES:
        raise bad_value("absent", one_of(ABSENT_POLICIES), absent)


@dataclass(frozen=True)
class ClassCounts:
    """Per-class counts, the only statistics the metrics need: ``tp``, ``gt``, ``pr``.

    Arrays of shape ``(..., C)``: with a leading batch axis ``(B, C)`` every metric of this
    module is computed for all ``B`` rows at once (per-class metrics give ``(B, C)``, means and
    ``pixel_accuracy`` / ``fwiou`` give ``(B,)`` arrays instead of a float), e.g. for bootstrap
    replicates.
    """

    tp: np.ndarray
    gt: np.ndarray
    pr: np.ndarray


Stats = Union["ConfusionMatrix", ClassCounts]


def true_positives(cm: Stats) -> np.ndarray:
    """``(C,)`` int64: pixels of each class predicted as that class (the diagonal)."""
    return cm.tp if isinstance(cm, ClassCounts) else np.diagonal(cm.matrix).copy()


def gt_pixels(cm: Stats) -> np.ndarray:
    """``(C,)`` int64: valid ground-truth pixels of each class (row sums plus unassigned)."""
    return cm.gt if isinstance(cm, ClassCounts) else cm.matrix.sum(axis=1) + cm.unassigned


def pred_pixels(cm: Stats) -> np.ndarray:
    """``(C,)`` int64: pixels predicted as each class, on valid ground truth (column sums)."""
    return cm.pr if isinstance(cm, ClassCounts) else cm.matrix.sum(axis=0)


def _ratio(num: np.ndarray, den: np.ndarray, undefined: np.ndarray, absent: str,
           gt: np.ndarray) -> np.ndarray:
    """``num / den`` per class, then the absent policy: NaN or 0 where the class drops out."""
    check_absent(absent)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=~undefined)
    if absent == "exclude-no-gt":
        out[gt == 0] = np.nan
    elif absent == "zero":
        out[np.isnan(out)] = 0.0
    return out


def _mean(values: np.ndarray, absent: str) -> Any:
    """Mean of the non-NaN values over the last axis: a MeanScore, or ``(B,)`` for a batch."""
    if values.ndim > 1:
        defined = ~np.isnan(values)
        n = defined.sum(axis=-1)
        total = np.where(defined, values, 0.0).sum(axis=-1)
        return np.where(n > 0, total / np.maximum(n, 1), np.nan)
    defined_values = values[~np.isnan(values)]
    value = float(defined_values.mean()) if defined_values.size else float("nan")
    return MeanScore(value, int(defined_values.size), absent)


def iou(cm: Stats, absent: Absent = "nan") -> np.ndarray:
    """Per-class intersection over union, ``(C,)`` float64: ``TP / (TP + FP + FN)``.

    NaN where the class is absent from ground truth and prediction (see the module docstring for
    ``absent``).
    """
    tp, gt, pr = true_positives(cm), gt_pixels(cm), pred_pixels(cm)
    union = gt + pr - tp
    return _ratio(tp, union, union == 0, absent, gt)


def miou(cm: Stats, absent: Absent = "nan") -> MeanScore:
    """Mean IoU over the classes whose IoU is defined; ``.n`` says how many."""
    return _mean(iou(cm, absent), absent)


def class_accuracy(cm: Stats, absent: Absent = "nan") -> np.ndarray:
    """Per-class pixel accuracy (recall), ``(C,)`` float64: ``TP / GT``; NaN where ``GT = 0``
    (0 under ``absent="zero"``)."""
    tp, gt = true_positives(cm), gt_pixels(cm)
    return _ratio(tp, gt, gt == 0, absent, gt)


def mean_pixel_accuracy(cm: Stats, absent: Absent = "nan") -> MeanScore:
    """MPA: mean of :func:`class_accuracy` over the classes where it is defined."""
    return _mean(class_accuracy(cm, absent), absent)


def pixel_accuracy(cm: Stats) -> Any:
    """PA: correctly classified valid pixels / all valid pixels; NaN when there are none."""
    total, correct = gt_pixels(cm).sum(axis=-1), true_positives(cm).sum(axis=-1)
    if np.ndim(total):
        return np.where(total > 0, correct / np.maximum(total, 1), np.nan)
    return float(correct / total) if total else float("nan")


def fwiou(cm: Stats) -> float:
    """Frequency-weighted IoU: ``sum_c (GT_c / N) IoU_c`` over classes with ground truth.

    Classes without ground truth weigh 0, so the absent policy does not matter. NaN when there
    are no valid pixels.
    """
    gt = gt_pixels(cm)
    total = gt.sum(axis=-1, keepdims=True)
    weighted = np.where(gt > 0, gt / np.maximum(total, 1) * iou(cm), 0.0).sum(axis=-1)
    if gt.ndim > 1:
        return np.where(total[..., 0] > 0, weighted, np.nan)
    return float(weighted) if total[0] else float("nan")


def dice(cm: Stats, absent: Absent = "nan") -> np.ndarray:
    """Per-class Dice (F1), ``(C,)`` float64: ``2 TP / (GT + PR)``; NaN like :func:`iou`."""
    tp, gt, pr = true_positives(cm), gt_pixels(cm), pred_pixels(cm)
    den = gt + pr
    return _ratio(2 * tp, den, den == 0, absent, gt)


def mean_dice(cm: Stats, absent: Absent = "nan") -> MeanScore:
    """Mean Dice over the classes whose Dice is defined; ``.n`` says how many."""
    return _mean(dice(cm, absent), absent)
