"""The instance leaderboard task: COCO mask AP (pycocotools ``COCOeval(iouType="segm")``).

Ground truth: ``--format coco``, ``--gt`` the COCO instances JSON (or a folder holding exactly
one ``.json`` file), read and checked once per run
(:func:`segeval.core.coco_input.check_ground_truth`). A submission (folder or zip) holds one
COCO *results* JSON (the list of ``image_id``, ``category_id``, ``score``, ``segmentation``), at
its top or inside its one top-level folder; none, or more than one, fails the submission. Each
submission is scored by :func:`segeval.core.instance.coco_mask_ap` on the checked ground
truth, exactly as ``segeval score --format coco`` scores it (the same document); its checks
and messages are that function's, naming ``team.zip:results.json``.

COCO AP is not a sum of per-image statistics (detections of all images are ranked together by
score before precision is accumulated), so this task does not fit the per-image loop of the
other tasks: it scores whole submissions, one per worker process (``score_submission``).

**No intervals** (``intervals = False``): a bootstrap over images would have to re-run
COCOeval's ``accumulate`` for every resample (the matching of ``evaluate`` can be reused, the
ranking cannot), ~1.4 s per 500 images with pycocotools (perf anchors) -- 2000 resamples of
COCO val (5000 images) would take hours per submission, and a handful of resamples gives no
usable percentile interval. The leaderboard therefore reports the interval and ``beats_above``
as ``null`` with the reason in the entry's ``ci.method``, rather than an interval it did not
compute.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segeval.errors import UsageError
from segeval.formats import json_in
from segeval.leaderboard.sources import (
    MemberReader,
    Submission,
    one_json,
)

#: What ``ci.method`` says for this task's entries.
NO_INTERVAL = ("none: COCO AP is not a sum of per-image statistics; a bootstrap would re-run "
               "COCOeval.accumulate per resample (see docs/leaderboard.md)")


@dataclass(frozen=True)
class InstanceReference:
    """The checked ground truth of an instance leaderboard and the scoring options."""

    format: str
    names: tuple[str, ...]  # str(image id), sorted ids
    gt: Any  # segeval.core.coco_input.GroundTruth
    class_names: tuple[str, ...]  # in the order of the result's per_class rows (sorted ids)
    options: dict[str, Any]
    digest: str


def _find_results(sub: Submission) -> str:
    """The results JSON member of a submission (top level, else its one top-level folder)."""
    return one_json(sub, list(sub.members), "results JSON", "a .json file")[0]


class InstanceTask:
    """COCO mask AP on the ``coco`` format, whole submission by whole submission."""

    name = "instance"
    metrics = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm",
               "ARl")
    default_metric = "AP"
    per_class_metric = "AP"
    intervals = False
    interval_method = NO_INTERVAL

    def load_reference(self, gt: Path, fmt: str, options: dict[str, Any]) -> InstanceReference:
        """Read and check the instances JSON once; hash it with the options."""
        from segeval import __version__
        from segeval.core.coco_input import check_ground_truth, load_json
        from segeval.core.instance import _sorted
        from segeval.errors import MissingFileError
        from segeval.formats.coco.instance import split_instance_options
        from segeval.formats.registry import get_adapter

        adapter = get_adapter(fmt, self.name)
        if adapter.__name__ != "segeval.formats.coco.instance":
            raise UsageError(f"--task instance: the leaderboard reads COCO results JSON "
                             f"(--format coco), not the {fmt} format")
        options = dict(options)
        if options.pop("missing", "error") != "error":
            raise UsageError("--missing zero: not an option of the instance task (an image "
                             "without detections simply has none)")
        known = split_instance_options("coco", options, per_image=False)
        known.pop("verbose", None)
        gt = json_in(Path(gt), "ground-truth instances JSON file")
        try:
            data = gt.read_bytes()
        except FileNotFoundError:
            raise MissingFileError(f"{gt}: no such file") from None
        except OSError as e:
            raise MissingFileError(f"{gt}: cannot be read ({e.strerror or e})") from None
        checked = check_ground_truth(load_json(gt), str(gt))
        digest = hashlib.sha256()
        digest.update(repr([self.name, __version__, "coco", sorted(
            (k, repr(v)) for k, v in known.items())]).encode())
        digest.update(data)
        cats = known.get("category_ids") or list(checked.category_names)
        names = tuple(checked.category_names[c] for c in _sorted(list(set(cats))))
        images = tuple(str(i) for i in _sorted(list(checked.sizes)))
        return InstanceReference("coco", images, checked, names, known, digest.hexdigest())

    def score_submission(self, ref: InstanceReference, sub: Submission
                         ) -> tuple[Any, np.ndarray | None]:
        """Score one whole submission: ``(result, rows)`` (no per-image rows: ``None``).
        Raises a :class:`~segeval.errors.SegevalError` naming the submission's file."""
        from segeval.core.instance import coco_mask_ap
        from segeval.errors import FileFormatError

        member = _find_results(sub)
        name = sub.display(member)
        with MemberReader() as reader:
            data = reader.read(sub, member)
        try:
            results = json.loads(data)
        except json.JSONDecodeError as e:
            raise FileFormatError(f"{name}: not valid JSON ({e.msg} at line {e.lineno}, "
                                  f"column {e.colno})") from None
        except UnicodeDecodeError:
            raise FileFormatError(f"{name}: not a JSON text file") from None
        del data
        result = coco_mask_ap(ref.gt, results, results_name=name, format=ref.format, jobs=1,
                              **ref.options)
        return result, None

    @staticmethod
    def class_has_gt(row: dict[str, Any]) -> bool:
        """Whether a per-class row has (non-crowd) ground truth."""
        return bool(row.get("num_gt", 0))

    def replicates(self, ref: InstanceReference, sums: np.ndarray, metric: str) -> np.ndarray:
        raise UsageError(f"the {self.name} task has no bootstrap intervals ({NO_INTERVAL})")
