"""The instance leaderboard task: COCO mask AP (pycocotools ``COCOeval(iouType="segm")``).

What a submission holds and how it is read and checked is the format adapter's
(:mod:`segeval.formats.coco.instance`): one COCO *results* JSON at the top of the submission or
inside its one top-level folder, scored exactly as ``segeval score --format coco`` scores it
(the same document and messages). COCO AP is not a sum of per-image statistics (detections of
all images are ranked together by score before precision is accumulated), so the plan has no
``score_with``: the leaderboard runs each submission's whole plan in a worker.

**No intervals** (``intervals = False``): a bootstrap over images would have to re-run
COCOeval's ``accumulate`` for every resample (the matching of ``evaluate`` can be reused, the
ranking cannot), ~1.4 s per 500 images with pycocotools (perf anchors) -- 2000 resamples of
COCO val (5000 images) would take hours per submission, and a handful of resamples gives no
usable percentile interval. The leaderboard therefore reports the interval and ``beats_above``
as ``null`` with the reason in the entry's ``ci.method``, rather than an interval it did not
compute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segeval.errors import UsageError

#: What ``ci.method`` says for this task's entries.
NO_INTERVAL = ("none: COCO AP is not a sum of per-image statistics; a bootstrap would re-run "
               "COCOeval.accumulate per resample (see docs/leaderboard.md)")


class InstanceTask:
    """COCO mask AP, whole submission by whole submission."""

    name = "instance"
    metrics = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
               "ARl")
    default_metric = "AP"
    per_class_metric = "AP"
    intervals = False
    interval_method = NO_INTERVAL

    @classmethod
    def from_options(cls, options: Any) -> InstanceTask:
        if options.missing != "error":
            raise UsageError("--missing zero: not an option of the instance task (an image "
                             "without detections simply has none)", parameters=("missing",))
        return cls()

    def class_names(self, ref: Any) -> tuple[str, ...]:
        """The categories of the per-class rows (empty where the reference does not list them:
        the runner then takes them from the documents)."""
        return tuple(getattr(ref, "class_names", ()))

    @staticmethod
    def class_has_gt(row: dict[str, Any]) -> bool:
        """Whether a per-class row has (non-crowd) ground truth."""
        return bool(row.get("num_gt", 0))

    def row(self, stats: Any) -> np.ndarray:
        raise UsageError(f"the {self.name} task has no per-image rows ({NO_INTERVAL})")

    def replicates(self, ref: Any, sums: np.ndarray, metric: str) -> np.ndarray:
        raise UsageError(f"the {self.name} task has no bootstrap intervals ({NO_INTERVAL})")
