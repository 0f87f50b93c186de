"""COCO instance segmentation: ``--gt instances.json --pred results.json``.

Ground truth is a COCO instances file (``images``, ``categories``, ``annotations`` with
polygons, uncompressed or compressed RLE, ``iscrowd``); predictions are the standard detection
results list (``image_id``, ``category_id``, ``score``, ``segmentation`` as compressed RLE;
polygons and uncompressed RLE are accepted and compressed). Scored with
:func:`segeval.core.instance.coco_mask_ap` (pycocotools ``COCOeval(iouType="segm")``); see
:mod:`segeval.core.coco_input` for every check and for the ``bbox`` rule.

``gt`` is the instances JSON file (read and checked once by :func:`reference`). ``pred`` is the
results JSON file, or a tree holding it (a folder, a leaderboard submission: see
:func:`segeval.formats.coco.one_json`). The plan has one item, the results file: scoring it
reads and checks it (errors name the file), and finishing runs COCOeval. COCO AP is defined
over the whole dataset, so there are no per-image rows.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from segeval.core.coco_input import (
    GroundTruth,
    Results,
    check_ground_truth,
    check_results,
    load_json,
)
from segeval.core.instance import InstanceResult, coco_mask_ap, sorted_ids
from segeval.core.jsonio import parse_json
from segeval.errors import UsageError
from segeval.formats.base import File, Options, Plan, Tree
from segeval.formats.coco import file_of, given_file, one_json

FORMAT = "coco"
TASK = "instance"
OPTIONS = frozenset({"backend", "keep_bbox"})


def check_options(fmt: str, options: Options, used: frozenset[str] = OPTIONS) -> None:
    """The option checks of an instance format: no per-image rows (a usage error), and no
    option that ``fmt`` does not use (:meth:`Options.check`)."""
    if options.per_image:
        raise UsageError(f"per_image: the {fmt} format gives no per-image rows (COCO AP "
                         f"is defined over the whole dataset)", parameters=("per_image",))
    options.check(fmt, used)


@dataclass(frozen=True, eq=False)
class InstanceReference:
    """The checked ground truth of the coco format (no results)."""

    format: str
    path: Path
    gt: GroundTruth

    @property
    def names(self) -> tuple[str, ...]:
        """The image ids (as text), sorted as COCOeval sorts them."""
        return tuple(str(i) for i in sorted_ids(list(self.gt.sizes)))

    @property
    def files(self) -> tuple[File, ...]:
        return (file_of(self.path),)

    @property
    def class_names(self) -> tuple[str, ...]:
        """The category names in the order of the result's per-class rows (sorted ids)."""
        return tuple(self.gt.category_names[c] for c in sorted_ids(list(self.gt.category_names)))

    def settings(self) -> dict[str, Any]:
        return {"format": self.format}


def reference(gt: Path, options: Options) -> InstanceReference:
    """Read and check the instances JSON ``gt`` (a file, not a folder)."""
    check_options(FORMAT, options)
    gt = Path(gt)
    if gt.is_dir():
        raise UsageError(f"{gt}: gt of the coco format is a JSON file, not a folder",
                         parameters=("gt",))
    return InstanceReference(FORMAT, gt, check_ground_truth(load_json(gt), str(gt)))


@dataclass(frozen=True)
class Checked:
    """The plan's statistic: the checked results of its one file (``None``: the zero)."""

    results: Results | None = None

    def __add__(self, other: Checked) -> Checked:
        if self.results is None:
            return other
        if other.results is None:
            return self
        raise ValueError("a coco plan scores one results file")


@dataclass(frozen=True)
class _Task:
    gt: GroundTruth
    keep_bbox: bool


def results_file(pred: Tree) -> File:
    """The results JSON of a prediction: the file itself, or the one ``.json`` of a tree."""
    path = given_file(pred)
    if path is not None:
        return file_of(path)
    return File(pred, one_json(pred, "results JSON", "a .json file")[0])


def read_results(task: _Task, file: File) -> tuple[Checked, None]:
    """Read and check one results file (errors name it)."""
    results = parse_json(file.read(), str(file))
    return Checked(check_results(results, task.gt, str(file), task.keep_bbox)), None


def _finish(ref: InstanceReference, backend: str, stats: Checked,
            rows: list[dict[str, Any]]) -> InstanceResult:
    results = stats.results if stats.results is not None else []
    return coco_mask_ap(ref.gt, results, backend=backend, format=ref.format,
                        gt_name=ref.gt.name)


def plan(pred: Tree, ref: InstanceReference, options: Options) -> Plan:
    """One item, the results file of ``pred``; see the module docstring."""
    check_options(ref.format, options)
    item = results_file(pred)
    return Plan(
        format=ref.format, task=TASK, items=[item],
        score=functools.partial(read_results, _Task(ref.gt, options.keep_bbox)),
        zero=Checked(),
        finish=functools.partial(_finish, ref, options.backend),
        name_of=str, matched=1,
        settings={**ref.settings(), "backend": options.backend,
                  "keep_bbox": options.keep_bbox},
    )
