"""COCO panoptic format (``coco-panoptic``), also read for Cityscapes panoptic.

A panoptic set is a JSON file plus a folder of RGB PNGs (segment id = R + 256 G + 256^2 B,
0 = VOID). The ground-truth JSON has ``categories`` (``id``, ``name``, ``isthing``) and
``annotations``: one per image with ``image_id``, ``file_name`` and ``segments_info``
(``id``, ``category_id``, ``iscrowd``, ``area``). The prediction JSON has the same
``annotations`` without ``iscrowd`` / ``area`` (predicted areas are counted from the PNGs);
its categories, if any, are not read: the ground truth's are used.

Paths, as the reference (``panopticapi.evaluation.pq_compute``) takes them: ``gt`` and ``pred``
are the JSON files; each PNG folder defaults to its JSON path without ``.json`` and can be
given as ``gt_folder`` / ``pred_folder``. Images are paired by ``image_id`` (integers for COCO,
strings for Cityscapes), compared as they are written in the JSON.

``pred`` may also be a tree holding the prediction (a folder, a leaderboard submission), as
panopticapi users submit it; ``X`` any name:

* ``X.json`` and the folder ``X/`` beside it, each annotation's ``file_name`` inside ``X/``;
* ``X.json`` with the PNGs beside it (no ``X/`` folder among the members);
* either of these inside one top-level folder (``team.zip`` holding ``team/X.json`` and
  ``team/X/*.png``), when no ``.json`` lies at the top.

More than one ``.json`` where the JSON is looked for is an error, and so is none
(:func:`segeval.formats.coco.one_json`).

Checks, each a one-line :class:`~segeval.errors.SegevalError` naming the file: a ground-truth
image without prediction (unless ``missing="zero"``: its segments are then all FN), a
prediction for an image that is not in the ground truth, an image listed twice, a missing or
unreadable PNG, prediction and ground truth of different sizes, a segment id twice in
``segments_info``, an id in a PNG that is not in its ``segments_info`` (or the reverse for
predictions), an unknown ``category_id``, a ground-truth ``area`` smaller than the segment's
pixels. The scores follow :mod:`segeval.core.panoptic`.

The adapter reads the ground-truth JSON once (:func:`reference_from`) and pairs a prediction
with it (:func:`plan_from`); each item is one image, decoded and counted in a worker: only the
``(5, C)`` per-category counts come back, so the result does not depend on the number of
workers, and memory does not grow with the number of images.
"""

from __future__ import annotations

import functools
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segeval.core import jsonio, panoptic
from segeval.core.panoptic import Category, PanopticResult, PanopticStats, Segments
from segeval.errors import DataError, FileFormatError, MissingFileError, UsageError
from segeval.formats.base import File, Folder, Options, Plan, Tree, shown
from segeval.formats.coco import file_of, given_file, one_json
from segeval.formats.png import read_label

log = logging.getLogger("segeval")

FORMAT = "coco-panoptic"
TASK = "panoptic"
OPTIONS = frozenset({"gt_folder", "pred_folder", "missing"})


# ------------------------------------------------------------------------------ JSON files


def parse_json(data: bytes, name: str) -> dict[str, Any]:
    """A COCO panoptic JSON object from the bytes of the file ``name`` (read within the bounds
    of :func:`segeval.core.jsonio.parse_json`: nesting, number length, size)."""
    return _panoptic_doc(jsonio.parse_json(data, name), name)


def _panoptic_doc(doc: Any, name: object) -> dict[str, Any]:
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise FileFormatError(f"{name}: not a COCO panoptic JSON (no 'annotations' list)")
    return doc


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A COCO panoptic JSON object from ``path`` (``what``: "ground truth", "prediction"), read
    with :func:`segeval.core.jsonio.read_json`; one-line errors for a missing, oversized or
    malformed file."""
    if Path(path).is_dir():
        raise UsageError(f"{path}: a folder where the {what} JSON file is expected")
    return _panoptic_doc(jsonio.read_json(path, what=f"{what} JSON"), path)


def png_folder(json_path: Path, folder: Path | None, parameter: str) -> Path:
    """The PNG folder: ``folder`` if given, else the JSON path without ``.json``
    (``parameter``: ``gt_folder`` or ``pred_folder``, the option that gives it)."""
    flag = "--" + parameter.replace("_", "-")
    if folder is None:
        folder = Path(os.path.splitext(json_path)[0])
        if not folder.is_dir():
            raise MissingFileError(f"{folder}: no PNG folder beside {Path(json_path).name} "
                                   f"(give {flag})", parameters=(parameter,))
    elif not Path(folder).is_dir():
        raise MissingFileError(f"{folder}: no such folder ({parameter})",
                               parameters=(parameter,))
    return Path(folder)


def by_image(doc: dict[str, Any], name: object) -> dict[Any, dict[str, Any]]:
    """The annotations of a panoptic JSON by ``image_id`` (``name``: the file, in errors)."""
    out: dict[Any, dict[str, Any]] = {}
    for k, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "file_name" not in ann \
                or not isinstance(ann.get("segments_info"), list):
            raise FileFormatError(f"{name}: annotation #{k} needs 'image_id', 'file_name' and "
                                  f"a 'segments_info' list")
        image_id = ann["image_id"]
        if isinstance(image_id, list | dict):
            raise FileFormatError(f"{name}: annotation #{k} has image_id {image_id!r}")
        if image_id in out:
            raise DataError(f"{name}: image {image_id!r} has two annotations")
        out[image_id] = ann
    return out


# ------------------------------------------------------------------------------ ground truth


@dataclass(frozen=True, eq=False)
class PanopticReference:
    """The ground truth of a panoptic format: its category table and, per image (in the JSON's
    order), the ``image_id``, the PNG and the checked segment table; no pixels."""

    format: str
    gt_json: Path
    categories: tuple[Category, ...]
    image_ids: tuple[Any, ...]
    gt: tuple[File, ...]
    gt_segments: tuple[Segments, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """The image ids as text, for messages and per-image rows of a leaderboard."""
        return tuple(str(i) for i in self.image_ids)

    @property
    def files(self) -> tuple[File, ...]:
        """The ground-truth JSON and every PNG (what a cache digest hashes)."""
        return (file_of(self.gt_json), *self.gt)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    @property
    def cat_index(self) -> dict[int, int]:
        return {c.id: k for k, c in enumerate(self.categories)}

    def settings(self) -> dict[str, Any]:
        return {"format": self.format,
                "categories": [[c.id, c.name, c.isthing] for c in self.categories]}


def reference_from(fmt: str, gt_json: Path, options: Options) -> PanopticReference:
    """Read and check the ground-truth panoptic JSON file ``gt_json`` once: its categories, each
    image's segment table, and its PNG folder (``options.gt_folder``, default the JSON path
    without ``.json``). ``fmt`` names the format; its options are not checked here (the
    caller's :func:`reference` does)."""
    gt_json = Path(gt_json)
    doc = read_json(gt_json, "ground truth")
    if not isinstance(doc.get("categories"), list):
        raise FileFormatError(f"{gt_json}: no 'categories' list (a ground-truth panoptic JSON "
                              f"is needed)")
    categories = panoptic.as_categories(doc["categories"], str(gt_json))
    cat_index = {c.id: k for k, c in enumerate(categories)}
    gt_dir = Folder(png_folder(gt_json, options.gt_folder, "gt_folder"))
    anns = by_image(doc, gt_json)
    if not anns:
        raise DataError(f"{gt_json}: no annotations")
    files, segments = [], []
    for image_id, ann in anns.items():
        seg = panoptic.segment_table(ann["segments_info"], cat_index,
                                     f"{gt_json}: image {image_id!r}", gt=True)
        if seg.area is None and seg.ids.size:
            raise FileFormatError(f"{gt_json}: image {image_id!r}: ground-truth segments need "
                                  f"their 'area'")
        files.append(File(gt_dir, str(ann["file_name"])))
        segments.append(seg)
    return PanopticReference(fmt, gt_json, categories, tuple(anns), tuple(files),
                             tuple(segments))


def reference(gt: Path, options: Options) -> PanopticReference:
    """The ground truth of ``coco-panoptic``: ``gt`` is the panoptic JSON file."""
    options.check(FORMAT, OPTIONS)
    if Path(gt).is_dir():
        raise UsageError(f"{gt}: gt must be the panoptic JSON file for the {FORMAT} format, "
                         f"not a folder", parameters=("gt",))
    return reference_from(FORMAT, Path(gt), options)


# ------------------------------------------------------------------------------ pairing


@dataclass(frozen=True)
class Image:
    """One work item: a ground-truth image and its prediction (``pred`` ``None``: missing)."""

    image_id: Any
    gt: File
    pred: File | None
    gt_segments: Segments
    pred_segments: Segments | None


def _prediction(pred: Path | Tree, options: Options) -> tuple[dict[str, Any], str, Tree, str]:
    """Read the prediction JSON: ``(doc, its name, the tree of its PNGs, their prefix)``."""
    path = Path(pred) if isinstance(pred, str | os.PathLike) else given_file(pred)
    if path is not None:
        doc = read_json(path, "prediction")
        folder = png_folder(path, options.pred_folder, "pred_folder")
        return doc, str(path), Folder(folder, links="refuse"), ""
    tree: Tree = pred  # type: ignore[assignment]
    member, prefix = one_json(tree, "predictions JSON", "a .json file with its PNG folder")
    name = tree.display(member)
    doc = parse_json(tree.read(member), name)
    if options.pred_folder is not None:
        folder = png_folder(Path(name), options.pred_folder, "pred_folder")
        return doc, name, Folder(folder, links="refuse"), ""
    folder = member[:-5] + "/"
    if any(m.startswith(folder) for m in tree.files()):
        prefix = folder
    return doc, name, tree, prefix


def pair(ref: PanopticReference, pred: Path | Tree, options: Options) -> list[Image]:
    """Read the prediction JSON of ``pred`` (the file, or the one of a tree), pair its
    annotations with the ground truth by ``image_id`` and check their segment tables and that
    their PNGs exist (no pixels read). See the module docstring for the checks."""
    doc, json_name, pngs, prefix = _prediction(pred, options)
    pred_anns = by_image(doc, json_name)
    del doc
    gt_ids = ref.image_ids
    known = set(gt_ids)
    extra = [i for i in pred_anns if i not in known]
    absent = [i for i in gt_ids if i not in pred_anns]
    hint = ""
    if {str(i) for i in extra} & {str(i) for i in absent}:
        hint = " (image ids differ in type: numbers vs strings)"
    if extra:
        raise DataError(f"{json_name}: predictions for {len(extra)} images that are not in the "
                        f"ground truth {ref.gt_json.name} ({shown(extra, quote=True)}){hint}")
    if absent and options.missing == "error":
        raise MissingFileError(
            f"{json_name}: no prediction for {len(absent)} of {len(gt_ids)} ground-truth "
            f"images ({shown(absent, quote=True)}){hint}; use --missing zero to count them as "
            f"missed", parameters=("missing",))
    if absent:
        log.warning("%d ground-truth images have no prediction; their segments count as false "
                    "negatives: %s", len(absent), shown(absent, quote=True))
    if isinstance(pngs, Folder):  # on disk: a look per file, no listing of the folder
        def exists(member: str) -> bool:
            return (pngs.root / member).is_file()
    else:
        exists = pngs.files().__contains__
    cat_index = ref.cat_index
    images = []
    for image_id, gt_file, gt_seg in zip(gt_ids, ref.gt, ref.gt_segments, strict=True):
        ann = pred_anns.get(image_id)
        if ann is None:
            images.append(Image(image_id, gt_file, None, gt_seg, None))
            continue
        seg = panoptic.segment_table(ann["segments_info"], cat_index,
                                     f"{json_name}: image {image_id!r}", gt=False)
        name = ann["file_name"]
        member = os.path.normpath(prefix + name).replace(os.sep, "/") \
            if isinstance(name, str) else None
        if member is None or not exists(member):
            raise MissingFileError(f"{pngs.display(prefix + str(name))}: no such file (the PNG "
                                   f"of image {image_id!r} in {json_name})")
        images.append(Image(image_id, gt_file, File(pngs, member), gt_seg, seg))
    return images


# ------------------------------------------------------------------------------ scoring


@dataclass(frozen=True)
class _Task:
    """What a worker needs to score one image (picklable)."""

    categories: tuple[Category, ...]
    per_image: bool
    decoder: str


def load_gt(task: _Task, image: Image) -> np.ndarray:
    """Decode one ground-truth PNG and check it against its segment table (ids not in the
    table, areas smaller than the pixels): the ground truth's errors, so that a leaderboard
    finds them once rather than blaming them on every submission."""
    gt = read_label(image.gt, panoptic=True, decoder=task.decoder)
    empty = Segments(np.zeros(0, np.int64), np.zeros(0, np.intp), np.zeros(0, bool), None)
    panoptic.image_counts(np.zeros(gt.shape, np.uint8), gt, empty, image.gt_segments,
                          len(task.categories), gt_name=str(image.gt))
    return gt


def score_with(task: _Task, image: Image, gt: np.ndarray | None
               ) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Count one image against its decoded ground truth: the ``(5, C)`` counts of
    :func:`segeval.core.panoptic.image_counts` and the per-image row when asked for."""
    if image.pred is None or image.pred_segments is None:
        counts = panoptic.missing_counts(image.gt_segments, len(task.categories))
    else:
        pred = read_label(image.pred, panoptic=True, decoder=task.decoder,
                          shape=(gt.shape[0], gt.shape[1]), against=str(image.gt))
        counts = panoptic.image_counts(pred, gt, image.pred_segments, image.gt_segments,
                                       len(task.categories), pred_name=str(image.pred),
                                       gt_name=str(image.gt))
    if not task.per_image:
        return counts, None
    avg = panoptic.average(PanopticStats(task.categories, counts=counts))
    row = {"image": image.image_id, "missing": image.pred is None, "pq": avg.pq,
           "sq": avg.sq, "rq": avg.rq, "n": avg.n, "tp": int(counts[panoptic.TP].sum()),
           "fp": int(counts[panoptic.FP].sum()), "fn": int(counts[panoptic.FN].sum())}
    return counts, row


def score_image(task: _Task, image: Image) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Decode one image pair and count it (runs in a worker); a missing prediction's ground
    truth is not decoded."""
    gt = None
    if image.pred is not None:
        gt = read_label(image.gt, panoptic=True, decoder=task.decoder)
    return score_with(task, image, gt)


def _finish(task: _Task, fmt: str, num_images: int, counts: np.ndarray,
            rows: list[dict[str, Any]]) -> PanopticResult:
    stats = PanopticStats(task.categories, counts=counts)
    return stats.result(format=fmt, num_images=num_images,
                        per_image=rows if task.per_image else None)


def _image_name(image: Image) -> str:
    return str(image.pred if image.pred is not None else image.gt)


def plan_from(fmt: str, pred: Path | Tree, ref: PanopticReference, options: Options) -> Plan:
    """Pair the prediction ``pred`` with ``ref`` (:func:`pair`) and plan the counting, for the
    format ``fmt``. ``pred`` is the prediction JSON's path, or a tree holding it (see the module
    docstring; a :class:`~segeval.formats.base.Folder` whose root is a file is that file)."""
    images = pair(ref, pred, options)
    task = _Task(ref.categories, options.per_image, options.decoder)
    return Plan(
        format=fmt, task=TASK, items=images,
        score=functools.partial(score_image, task),
        zero=np.zeros((5, len(ref.categories)), np.int64),
        finish=functools.partial(_finish, task, fmt, len(images)),
        name_of=_image_name,
        load_gt=functools.partial(load_gt, task),
        score_with=functools.partial(score_with, task),
        matched=sum(im.pred is not None for im in images),
        settings={**ref.settings(), "missing": options.missing},
    )


def plan(pred: Tree, ref: PanopticReference, options: Options) -> Plan:
    """The plan of ``coco-panoptic``: ``pred`` is the prediction JSON (or a tree holding it)."""
    return plan_from(FORMAT, pred, ref, options)
