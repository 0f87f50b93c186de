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

from typing import TYPE_CHECKING, Literal

import numpy as np

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


def _check_absent(absent: str) -> None:
    if absent not in ABSENT_POLICIES:
        raise ValueError(
            f"The 'absent' parameter must be one of {', '.join(map(repr, ABSENT_POLICIES))}. "
            f"Got {absent!r} instead."
        )


def true_positives(cm: ConfusionMatrix) -> np.ndarray:
    """``(C,)`` int64: pixels of each class predicted as that class (the diagonal)."""
    return np.diagonal(cm.matrix).copy()


def gt_pixels(cm: ConfusionMatrix) -> np.ndarray:
    """``(C,)`` int64: valid ground-truth pixels of each class (row sums plus unassigned)."""
    return cm.matrix.sum(axis=1) + cm.unassigned


def pred_pixels(cm: ConfusionMatrix) -> np.ndarray:
    """``(C,)`` int64: pixels predicted as each class, on valid ground truth (column sums)."""
    return cm.matrix.sum(axis=0)


def _ratio(num: np.ndarray, den: np.ndarray, undefined: np.ndarray, absent: str,
           gt: np.ndarray) -> np.ndarray:
    """``num / den`` per class, then the absent policy: NaN or 0 where the class drops out."""
    _check_absent(absent)
    out = np.full(num.shape, np.nan)
    np.divide(num, den, out=out, where=~undefined)
    if absent == "exclude-no-gt":
        out[gt == 0] = np.nan
    elif absent == "zero":
        out[np.isnan(out)] = 0.0
    return out


def _mean(values: np.ndarray, absent: str) -> MeanScore:
    defined = values[~np.isnan(values)]
    value = float(defined.mean()) if defined.size else float("nan")
    return MeanScore(value, int(defined.size), absent)


def iou(cm: ConfusionMatrix, absent: Absent = "nan") -> np.ndarray:
    """Per-class intersection over union, ``(C,)`` float64: ``TP / (TP + FP + FN)``.

    NaN where the class is absent from ground truth and prediction (see the module docstring for
    ``absent``).
    """
    tp, gt, pr = true_positives(cm), gt_pixels(cm), pred_pixels(cm)
    union = gt + pr - tp
    return _ratio(tp, union, union == 0, absent, gt)


def miou(cm: ConfusionMatrix, absent: Absent = "nan") -> MeanScore:
    """Mean IoU over the classes whose IoU is defined; ``.n`` says how many."""
    return _mean(iou(cm, absent), absent)


def class_accuracy(cm: ConfusionMatrix, absent: Absent = "nan") -> np.ndarray:
    """Per-class pixel accuracy (recall), ``(C,)`` float64: ``TP / GT``; NaN where ``GT = 0``
    (0 under ``absent="zero"``)."""
    tp, gt = true_positives(cm), gt_pixels(cm)
    return _ratio(tp, gt, gt == 0, absent, gt)


def mean_pixel_accuracy(cm: ConfusionMatrix, absent: Absent = "nan") -> MeanScore:
    """MPA: mean of :func:`class_accuracy` over the classes where it is defined."""
    return _mean(class_accuracy(cm, absent), absent)


def pixel_accuracy(cm: ConfusionMatrix) -> float:
    """PA: correctly classified valid pixels / all valid pixels; NaN when there are none."""
    total = int(gt_pixels(cm).sum())
    return float(true_positives(cm).sum() / total) if total else float("nan")


def fwiou(cm: ConfusionMatrix) -> float:
    """Frequency-weighted IoU: ``sum_c (GT_c / N) IoU_c`` over classes with ground truth.

    Classes without ground truth weigh 0, so the absent policy does not matter. NaN when there
    are no valid pixels.
    """
    gt = gt_pixels(cm)
    total = int(gt.sum())
    if not total:
        return float("nan")
    present = gt > 0
    return float(np.sum(gt[present] / total * iou(cm)[present]))


def dice(cm: ConfusionMatrix, absent: Absent = "nan") -> np.ndarray:
    """Per-class Dice (F1), ``(C,)`` float64: ``2 TP / (GT + PR)``; NaN like :func:`iou`."""
    tp, gt, pr = true_positives(cm), gt_pixels(cm), pred_pixels(cm)
    den = gt + pr
    return _ratio(2 * tp, den, den == 0, absent, gt)


def mean_dice(cm: ConfusionMatrix, absent: Absent = "nan") -> MeanScore:
    """Mean Dice over the classes whose Dice is defined; ``.n`` says how many."""
    return _mean(dice(cm, absent), absent)
