"""Leaderboard tasks: how a kind of evaluation is *ranked*. What is scored, and how, is the
format adapter's (:mod:`segeval.formats.registry`): the leaderboard lists the ground truth with
``adapter.reference`` and plans every submission with ``adapter.plan``, exactly as
``segeval score`` does, so a submission's document is ``segeval score``'s.

A task object (one per run, built by :func:`make_task` from the adapter's ``TASK`` and the
run's :class:`~segeval.formats.base.Options`; picklable) has:

``name``
    ``"semantic"``, ``"panoptic"``, ``"instance"`` or ``"medical"`` (the adapter's ``TASK``).
``metrics``
    The metric keys of ``result.to_dict()["metrics"]`` that can rank submissions (all "higher
    is better"); ``default_metric`` is the one used without ``--metric``.
``per_class_metric``
    The key of the rows of ``to_dict()["per_class"]`` compared in the per-class winners table.
``row(stats) -> 1-D integer array``
    One image's bootstrap row from the statistics ``plan.score_with`` returned for it: integers
    whose *sum over images* determines the headline metrics (called in worker processes).
``replicates(ref, sums, metric) -> (B,) float64``
    The metric of each row of ``sums`` (``(B, K)``, summed rows of resampled images),
    vectorised; for the row sum over all images it equals the document's ``metrics[metric]``
    (the tests check this for every metric).
``class_names(ref) -> tuple[str, ...]``
    The names of the document's ``per_class`` rows, in order (the winners table).
``intervals``, ``interval_method``
    ``intervals = False``: no bootstrap (``row`` and ``replicates`` are not used); entries get
    ``ci`` low/high ``None`` and ``beats_above`` ``None``, and ``interval_method`` says why.
``class_has_gt(per_class_row) -> bool``
    Whether a class has ground truth, for the winners table (a class without any has no
    winner).

To add a task: its format adapters (``TASK = "<name>"``, ``reference``, ``plan``; with
``load_gt``/``score_with`` in the plan for the decode-once loop, else every submission's plan is
run whole in a worker) and such a class here, in :data:`TASKS`.

The semantic task's row is ``[TP_0..TP_{C-1}, GT_0..GT_{C-1}, PR_0..PR_{C-1}]`` (true
positives, ground-truth pixels and predicted pixels per class, as defined in
:mod:`segeval.core.metrics`): ``3 C`` integers per image instead of a ``C x C`` matrix.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from segeval.errors import UsageError
from segeval.leaderboard.bootstrap import METHOD


def unknown_metric(task: Any, metric: str) -> UsageError:
    return UsageError(f"--metric {metric}: not a metric of the {task.name} task "
                      f"(known: {', '.join(task.metrics)})")


class SemanticTask:
    """Semantic segmentation (mIoU and friends) on the voc, folder and cityscapes formats."""

    name = "semantic"
    metrics = ("miou", "pixel_accuracy", "mean_pixel_accuracy", "fwiou", "mean_dice")
    default_metric = "miou"
    per_class_metric = "iou"
    intervals = True
    interval_method = METHOD

    def __init__(self, absent: str = "nan") -> None:
        self.absent = absent

    @classmethod
    def from_options(cls, options: Any) -> SemanticTask:
        return cls(options.absent)

    def row(self, stats: Any) -> np.ndarray:
        """``(TP, GT, PR)`` per class of one image's :class:`~segeval.core.confusion.
        ConfusionMatrix`."""
        from segeval.core import metrics

        return np.concatenate([metrics.true_positives(stats), metrics.gt_pixels(stats),
                               metrics.pred_pixels(stats)])

    def class_names(self, ref: Any) -> tuple[str, ...]:
        return tuple(ref.class_names)

    @staticmethod
    def class_has_gt(row: dict[str, Any]) -> bool:
        """Whether a per-class row has ground-truth pixels."""
        return row.get("gt_pixels", 1) != 0

    def replicates(self, ref: Any, sums: np.ndarray, metric: str) -> np.ndarray:
        """The metric of summed rows, ``(B, 3C)`` -> ``(B,)``: :mod:`segeval.core.metrics` on
        :class:`~segeval.core.metrics.ClassCounts` with a leading batch axis (``ref``: anything
        with ``num_classes``)."""
        from segeval.core import metrics

        c = ref.num_classes
        sums = np.asarray(sums, dtype=np.float64).reshape(-1, 3 * c)
        counts = metrics.ClassCounts(sums[:, :c], sums[:, c:2 * c], sums[:, 2 * c:])
        if metric in ("pixel_accuracy", "fwiou"):
            return getattr(metrics, metric)(counts)
        if metric not in ("miou", "mean_pixel_accuracy", "mean_dice"):
            raise unknown_metric(self, metric)
        return getattr(metrics, metric)(counts, self.absent)


#: Fixed-point scale of the medical task's rows: a per-case Dice/IoU/NSD in [0, 1] is stored as
#: ``round(value * 2**32)`` (the runner keeps integer rows), exact to 1.2e-10 per case, and sums
#: over up to 2**20 resampled cases stay exact in float64.
MEDICAL_SCALE = float(1 << 32)
MEDICAL_NO_INTERVAL = ("none: without labels= the label set depends on each submission's "
                       "predictions; give the labels to get intervals (see docs/medical.md)")


class MedicalTask:
    """3-D medical volumes (the nifti format): ranked by the mean over labels of the mean over
    cases of Dice (or IoU, NSD: all higher-is-better; HD95/ASSD are in the documents).

    With ``labels`` given, the bootstrap resamples *cases*: a case's row is, per label,
    ``[dice, iou, nsd]`` in fixed point (:data:`MEDICAL_SCALE`, 0 where undefined) and 1 if the
    label is defined in that case (in either volume), so a resample's per-label mean is
    ``sum / (scale * count)``, exactly the document's mean of that resample up to the fixed
    point's 1.2e-10. Without ``labels`` each submission may add labels of its own, so there is
    no common row: no intervals (``ci`` null, the reason in ``ci.method``).
    """

    name = "medical"
    metrics = ("dice", "iou", "nsd")
    default_metric = "dice"
    per_class_metric = "dice"

    def __init__(self, labels: tuple[int, ...] | None = None) -> None:
        self.labels = labels
        self.intervals = labels is not None
        self.interval_method = METHOD.replace("images", "cases") if self.intervals \
            else MEDICAL_NO_INTERVAL

    @classmethod
    def from_options(cls, options: Any) -> MedicalTask:
        return cls(options.labels)

    def row(self, stats: Any) -> np.ndarray:
        """One case's row (see the class docstring) from its
        :class:`~segeval.core.medical.CaseStats`."""
        (case,) = stats.cases
        out = np.zeros((len(self.labels or ()), 4), np.int64)
        where = {lab: k for k, lab in enumerate(case.labels)}
        for j, lab in enumerate(self.labels or ()):
            k = where.get(lab)
            if k is None or np.isnan(case.values[k, 0]):
                continue
            out[j, :3] = np.round(case.values[k, [0, 1, 4]] * MEDICAL_SCALE)
            out[j, 3] = 1
        return out.ravel()

    def class_names(self, ref: Any) -> tuple[str, ...]:
        return tuple(str(v) for v in (self.labels or ()))

    @staticmethod
    def class_has_gt(row: dict[str, Any]) -> bool:
        """Whether some case has the label in its ground truth."""
        return bool(row.get("cases_with_gt", 1))

    def replicates(self, ref: Any, sums: np.ndarray, metric: str) -> np.ndarray:
        """The metric of summed case rows, ``(B, 4 L)`` -> ``(B,)``: the mean over labels (NaN
        left out) of each label's mean over the resampled cases."""
        if metric not in self.metrics:
            raise unknown_metric(self, metric)
        sums = np.asarray(sums, np.float64).reshape(sums.shape[0], -1, 4)
        count = sums[:, :, 3]
        with np.errstate(invalid="ignore", divide="ignore"):
            per_label = sums[:, :, self.metrics.index(metric)] / (MEDICAL_SCALE * count)
        per_label[count == 0] = np.nan
        defined = ~np.isnan(per_label)
        n = defined.sum(axis=1)
        total = np.where(defined, per_label, 0.0).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(n > 0, total / np.maximum(n, 1), np.nan)


#: Task name -> task class (the adapters' ``TASK``).
TASKS: dict[str, type] = {"semantic": SemanticTask, "medical": MedicalTask}


def _register() -> None:
    from segeval.leaderboard.instance_task import InstanceTask
    from segeval.leaderboard.panoptic_task import PanopticTask

    TASKS["panoptic"] = PanopticTask
    TASKS["instance"] = InstanceTask


_register()


def make_task(name: str, options: Any = None) -> Any:
    """The task object for an adapter's ``TASK`` and the run's options."""
    try:
        cls = TASKS[name]
    except KeyError:
        raise UsageError(f"unknown task {name!r} (known: {', '.join(sorted(TASKS))})"
                         ) from None
    return cls() if options is None else cls.from_options(options)


def get_task(name: str | None, fmt: str) -> Any:
    """The task object for ``task`` (default: the format adapter's ``TASK``), with default
    options."""
    if name is None:
        from segeval.formats.registry import get_adapter

        name = get_adapter(fmt).TASK
    return make_task(name)
