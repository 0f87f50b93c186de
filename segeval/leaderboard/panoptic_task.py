"""The panoptic leaderboard task: PQ, SQ, RQ (All, Things, Stuff) on the panoptic formats
(``coco-panoptic``, ``cityscapes-panoptic``; ``coco`` / ``cityscapes`` with ``--task
panoptic``).

What a submission holds and how it is read, paired and checked is the format adapter's
(:mod:`segeval.formats.coco.panoptic`): one predictions JSON and its PNGs, with the same checks
and messages as ``segeval score``. This module only says how to rank.

Statistics: a submission's per-image row is that image's ``(5, C)`` count array of
:func:`segeval.core.panoptic.image_counts` flattened (per category TP, FP, FN and the IoU sum's
two integer words), so rows are integers and the sum of all rows is exactly the submission's
:class:`~segeval.core.panoptic.PanopticStats`. Bootstrap replicates are computed from summed
rows by :func:`segeval.core.panoptic.averages_from_counts`, the same function the result uses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segeval.errors import UsageError
from segeval.leaderboard.bootstrap import METHOD


class PanopticTask:
    """Panoptic quality (COCO panoptic reference rules) on the panoptic formats."""

    name = "panoptic"
    metrics = ("pq", "sq", "rq", "pq_things", "sq_things", "rq_things", "pq_stuff", "sq_stuff",
               "rq_stuff")
    default_metric = "pq"
    per_class_metric = "pq"
    intervals = True
    interval_method = METHOD

    @classmethod
    def from_options(cls, options: Any) -> PanopticTask:
        return cls()

    def row(self, stats: Any) -> np.ndarray:
        """One image's ``(5, C)`` counts (or :class:`~segeval.core.panoptic.PanopticStats`),
        flattened."""
        return np.asarray(getattr(stats, "counts", stats)).reshape(-1)

    def class_names(self, ref: Any) -> tuple[str, ...]:
        return tuple(c.name for c in ref.categories)

    @staticmethod
    def class_has_gt(row: dict[str, Any]) -> bool:
        """Whether a per-class row has ground truth (a non-crowd segment: TP or FN)."""
        return bool(row.get("tp", 0) or row.get("fn", 0))

    def replicates(self, ref: Any, sums: np.ndarray, metric: str) -> np.ndarray:
        """The metric of summed rows, ``(B, 5C)`` -> ``(B,)``: the averages of
        :mod:`segeval.core.panoptic` on count arrays with a leading batch axis (``ref``:
        anything with ``categories``)."""
        from segeval.core import panoptic

        if metric not in self.metrics:
            raise UsageError(f"--metric {metric}: not a metric of the {self.name} task "
                             f"(known: {', '.join(self.metrics)})")
        c = len(ref.categories)
        counts = np.asarray(sums, dtype=np.float64).reshape(-1, 5, c)
        base, _, part = metric.partition("_")
        keep = None if not part else [cat.isthing == (part == "things")
                                      for cat in ref.categories]
        pq, sq, rq, _ = panoptic.averages_from_counts(
            counts[:, panoptic.TP], counts[:, panoptic.FP], counts[:, panoptic.FN],
            panoptic.iou_sums_of(counts), keep)
        return {"pq": pq, "sq": sq, "rq": rq}[base]
