"""The statistics and the result of a medical evaluation: per case and label, the seven numbers
of :mod:`segeval.core.surface`, and their means and medians over cases.

The statistics of a run are the per-case rows themselves (:class:`CaseStats`, added by
concatenation): a mean of per-case Dice is not a function of summed counts. The result
(:class:`MedicalResult`) averages them:

* per label (``per_class``): the mean over cases of ``dice``, ``iou``, ``hd95``, ``assd``,
  ``nsd``; a NaN case (the label in neither volume) is left out and ``<metric>_n`` says how
  many cases were averaged; a +inf case (the label in only one volume) makes the mean +inf,
  and ``hd95_inf`` / ``assd_inf`` count those cases. Medians likewise (``<metric>_median``).
* over labels (``metrics``): the mean of the per-label means, by the same rules
  (``<metric>_n`` labels averaged, ``hd95_inf`` / ``assd_inf`` labels whose mean is +inf).

In ``to_dict()`` (the JSON document) +inf is written ``null`` like NaN; the ``_inf`` counts
tell which it was.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from segeval.core.surface import KEYS

#: The metrics averaged over cases and labels.
AVERAGED = ("dice", "iou", "hd95", "assd", "nsd")
#: The metrics that can be +inf (one mask empty).
CAN_BE_INF = ("hd95", "assd")


@dataclass(frozen=True)
class CaseRow:
    """One case: its name, the labels scored and their numbers (``values[k]`` is label
    ``labels[k]``'s :data:`~segeval.core.surface.KEYS`); ``missing``: no prediction (scored as
    an empty one)."""

    name: str
    labels: tuple[int, ...]
    values: np.ndarray
    missing: bool = False


@dataclass(frozen=True)
class CaseStats:
    """The per-case rows of a run, in the order added (``a + b``: ``a``'s then ``b``'s)."""

    cases: tuple[CaseRow, ...] = ()

    def __add__(self, other: CaseStats) -> CaseStats:
        return CaseStats(self.cases + other.cases)


def mean_of(values: np.ndarray) -> tuple[float, int, int]:
    """``(mean, n, inf)`` of a 1-D array: NaN left out, +inf propagates (the mean is +inf),
    ``inf`` counts the +inf entries; the mean of nothing is NaN."""
    kept = values[~np.isnan(values)]
    inf = int(np.count_nonzero(np.isinf(kept)))
    if kept.size == 0:
        return math.nan, 0, inf
    return (math.inf if inf else float(np.mean(kept))), int(kept.size), inf


def median_of(values: np.ndarray) -> float:
    """The median of the non-NaN entries (+inf entries count as the largest); NaN if none."""
    kept = np.sort(values[~np.isnan(values)])
    if kept.size == 0:
        return math.nan
    mid = kept.size // 2
    if kept.size % 2:
        return float(kept[mid])
    lo, hi = kept[mid - 1], kept[mid]
    return float(hi if math.isinf(hi) else (lo + hi) / 2.0)


def _json_number(x: Any) -> Any:
    return None if isinstance(x, float) and not math.isfinite(x) else x


@dataclass
class MedicalResult:
    """The result of ``segeval.evaluate(..., format="nifti")``.

    ``labels``: the labels scored; ``cases``: the case names in order; ``values``: float64
    ``(cases, labels, 7)`` (:data:`~segeval.core.surface.KEYS`; a label in neither volume of a
    case is NaN with volumes 0). ``metrics`` (floats, +inf kept) and ``per_class()`` are the
    averages of the module docstring; ``per_image`` the per-case rows when asked for.
    """

    labels: tuple[int, ...]
    cases: tuple[str, ...]
    values: np.ndarray
    missing: tuple[bool, ...] = ()
    format: str | None = "nifti"
    settings: dict[str, Any] = field(default_factory=dict)
    per_image: list[dict[str, Any]] | None = None
    task: str = "medical"

    @classmethod
    def from_stats(cls, stats: CaseStats, labels: Sequence[int] | None = None, *,
                   order: Sequence[str] | None = None, per_image: bool = False,
                   **kwargs: Any) -> MedicalResult:
        """The result of the per-case rows (in the order of the names ``order`` when given);
        ``labels``: the labels to report (default: every label of any case)."""
        rows = list(stats.cases)
        if order is not None:
            rank = {name: k for k, name in enumerate(order)}
            rows.sort(key=lambda r: rank.get(r.name, len(rank)))
        if labels is None:
            labels = sorted({lab for r in rows for lab in r.labels})
        labels = tuple(int(v) for v in labels)
        column = {lab: j for j, lab in enumerate(labels)}
        values = np.full((len(rows), len(labels), len(KEYS)), np.nan)
        values[:, :, 5:] = 0.0
        for i, r in enumerate(rows):
            for lab, v in zip(r.labels, r.values, strict=True):
                if lab in column:
                    values[i, column[lab]] = v
        result = cls(labels, tuple(r.name for r in rows), values,
                     tuple(r.missing for r in rows), **kwargs)
        if per_image:
            result.per_image = result.case_rows()
        return result

    @property
    def num_cases(self) -> int:
        return len(self.cases)

    @property
    def num_images(self) -> int:
        """The number of cases (the name every result has)."""
        return len(self.cases)

    def case_rows(self) -> list[dict[str, Any]]:
        """One row per case and label: ``case, label`` and :data:`~segeval.core.surface.KEYS`
        (NaN: undefined, +inf kept)."""
        return [{"case": name, "label": lab,
                 **{k: float(v) for k, v in zip(KEYS, self.values[i, j], strict=True)}}
                for i, name in enumerate(self.cases) for j, lab in enumerate(self.labels)]

    def per_class(self) -> list[dict[str, Any]]:
        """One row per label: the mean of each metric over cases, ``<metric>_n``, the median
        ``<metric>_median``, ``hd95_inf`` / ``assd_inf``, and how many cases have the label in
        the ground truth / prediction (+inf and NaN as ``None``)."""
        return [{k: _json_number(v) for k, v in row.items()} for row in self._per_class()]

    def _per_class(self) -> list[dict[str, Any]]:
        out = []
        for j, lab in enumerate(self.labels):
            row: dict[str, Any] = {"label": lab, "name": str(lab)}
            for m in AVERAGED:
                col = self.values[:, j, KEYS.index(m)]
                mean, n, inf = mean_of(col)
                row[m], row[f"{m}_n"] = mean, n
                row[f"{m}_median"] = median_of(col)
                if m in CAN_BE_INF:
                    row[f"{m}_inf"] = inf
            row["cases_with_gt"] = int(np.count_nonzero(self.values[:, j, 5] > 0))
            row["cases_with_pred"] = int(np.count_nonzero(self.values[:, j, 6] > 0))
            out.append(row)
        return out

    @property
    def metrics(self) -> dict[str, Any]:
        """The mean over labels of the per-label means (NaN left out, +inf propagates), with
        ``<metric>_n`` (labels averaged) and ``hd95_inf`` / ``assd_inf`` (labels whose mean is
        +inf)."""
        rows = self._per_class()
        out: dict[str, Any] = {}
        for m in AVERAGED:
            mean, n, inf = mean_of(np.array([r[m] for r in rows], np.float64))
            out[m], out[f"{m}_n"] = mean, n
            if m in CAN_BE_INF:
                out[f"{m}_inf"] = inf
        return out

    def to_dict(self) -> dict[str, Any]:
        """The JSON document: settings, ``metrics``, ``per_class`` (+inf and NaN as ``None``)."""
        return {
            "task": self.task,
            "format": self.format,
            "settings": dict(self.settings),
            "num_cases": self.num_cases,
            "missing_predictions": int(sum(self.missing)),
            "labels": list(self.labels),
            "metrics": {k: _json_number(v) for k, v in self.metrics.items()},
            "per_class": self.per_class(),
        }
