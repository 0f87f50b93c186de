"""The panoptic leaderboard task: PQ, SQ, RQ (All, Things, Stuff) of COCO-panoptic submissions.

Ground truth: the formats ``coco-panoptic`` and ``cityscapes-panoptic`` (also ``coco`` /
``cityscapes`` with ``--task panoptic``), read as ``segeval score`` reads them: ``--gt`` is the
ground-truth JSON (for ``coco-panoptic`` also a folder holding exactly one ``.json`` file; for
``cityscapes-panoptic`` also the dataset root or ``gtFine``, see
:mod:`segeval.formats.cityscapes.panoptic`), its PNG folder the JSON path without ``.json``.
The JSON and its segment tables are read and checked once, and each ground-truth PNG is decoded
and checked once per run (:meth:`PanopticTask.decode_gt`).

A submission (folder or zip) holds one *predictions JSON* and its PNGs, as panopticapi users
submit them. Accepted layouts (``X`` any name):

* ``X.json`` and the folder ``X/`` beside it, each annotation's ``file_name`` inside ``X/``
  (panopticapi's ``pq_compute`` default);
* ``X.json`` with the PNGs beside it (no ``X/`` folder among the members);
* either of these inside one top-level folder (``team.zip`` holding ``team/X.json`` and
  ``team/X/*.png``), when no ``.json`` lies at the top.

More than one ``.json`` file where the predictions JSON is looked for fails the submission
(which one is meant is ambiguous), and so does none. Images are paired by ``image_id`` with the
same checks and messages as ``segeval score --format coco-panoptic``: a prediction for an image
not in the ground truth, an image without prediction (unless ``missing="zero"``: its segments
are then all false negatives), an unknown ``category_id``, a segment id twice, a PNG that is
missing, of the wrong size, or holds ids that its ``segments_info`` does not list.

Statistics: a submission's per-image row is that image's ``(5, C)`` count array of
:func:`segeval.core.panoptic.image_counts` flattened (per category TP, FP, FN and the IoU sum's
two integer words), so rows are integers and the sum of all rows is exactly the submission's
:class:`~segeval.core.panoptic.PanopticStats`. Bootstrap replicates are computed from summed
rows by :func:`segeval.core.panoptic.averages_from_counts`, the same function the result uses.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from segeval.errors import SegevalError, UsageError
from segeval.formats import json_in
from segeval.leaderboard.sources import (
    MemberReader,
    Submission,
    SubmissionError,
    one_json,
)


class Pairing(NamedTuple):
    """A prediction member with what its scoring needs besides the bytes (``meta``: here the
    image's predicted :class:`~segeval.core.panoptic.Segments`)."""

    member: str
    meta: Any


@dataclass(frozen=True)
class PanopticReference:
    """The ground truth of a panoptic leaderboard: tables and paths, no pixels."""

    format: str
    names: tuple[str, ...]  # str(image_id), for messages
    image_ids: tuple[Any, ...]  # as written in the JSON
    gt_json: Path
    gt_pngs: tuple[Path, ...]
    gt_segments: tuple[Any, ...]  # Segments per image
    categories: tuple[Any, ...]  # Category
    missing: str
    digest: str
    pixels: int = 0  # ground-truth pixels, from the JSON's images (0 when not given)

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.categories)

    @property
    def cat_index(self) -> dict[int, int]:
        return {c.id: k for k, c in enumerate(self.categories)}


def _gt_json(gt: Path, fmt: str, split: str | None) -> Path:
    """The ground-truth JSON ``--gt`` names, as ``segeval score`` finds it."""
    if fmt == "cityscapes-panoptic":
        from segeval.formats.cityscapes.panoptic import json_path

        return json_path(gt, split or "val", "ground-truth", dataset=True)
    if split is not None:
        raise UsageError(f"--split is not an option of the {fmt} format")
    return json_in(gt, "ground-truth panoptic JSON file")


def _parse_json(data: bytes, name: str) -> dict[str, Any]:
    """A predictions JSON from a member's bytes (the messages of ``segeval score``)."""
    from segeval.errors import FileFormatError

    try:
        doc = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{name}: not a valid JSON file ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise FileFormatError(f"{name}: not a COCO panoptic JSON (no 'annotations' list)")
    return doc


def _find_json(members: list[str], sub: Submission) -> tuple[str, str]:
    """``(json member, PNG prefix)`` of a submission (see the module docstring's layouts)."""
    member, prefix = one_json(sub, members, "predictions JSON",
                              "a .json file with its PNG folder")
    folder = member[:-5] + "/"
    if any(m.startswith(folder) for m in members):
        return member, folder
    return member, prefix


class PanopticTask:
    """Panoptic quality (COCO panoptic reference rules) on the panoptic formats."""

    name = "panoptic"
    metrics = ("pq", "sq", "rq", "pq_things", "sq_things", "rq_things", "pq_stuff", "sq_stuff",
               "rq_stuff")
    default_metric = "pq"
    per_class_metric = "pq"
    options = ("split", "missing")

    # ------------------------------------------------------------------ ground truth

    def load_reference(self, gt: Path, fmt: str, options: dict[str, Any]) -> PanopticReference:
        """Read and check the ground-truth JSON and its segment tables; hash the JSON, every
        ground-truth PNG and the options."""
        from segeval import __version__
        from segeval.core import panoptic
        from segeval.errors import FileFormatError, MissingFileError
        from segeval.formats import reject_options
        from segeval.formats.coco.panoptic import _by_image, png_folder, read_json
        from segeval.formats.registry import get_adapter

        options = dict(options)
        missing = options.pop("missing", "error")
        split = options.pop("split", None)
        if missing not in ("error", "zero"):
            raise UsageError(f"--missing must be 'error' or 'zero', not {missing!r}")
        adapter = get_adapter(fmt, self.name)
        if getattr(adapter, "TASK", None) != self.name:
            raise UsageError(f"--task panoptic: the {fmt} format has no panoptic evaluation")
        fmt_name = adapter.FORMAT
        reject_options(fmt_name, options)
        gt_json = _gt_json(Path(gt), fmt_name, split)
        doc = read_json(gt_json, "ground truth")
        if not isinstance(doc.get("categories"), list):
            raise FileFormatError(f"{gt_json}: no 'categories' list (a ground-truth panoptic "
                                  f"JSON is needed)")
        categories = panoptic.as_categories(doc["categories"], str(gt_json))
        cat_index = {c.id: k for k, c in enumerate(categories)}
        gt_dir = png_folder(gt_json, None, "--gt-folder")
        anns = _by_image(doc, gt_json)
        if not anns:
            from segeval.errors import DataError

            raise DataError(f"{gt_json}: no annotations")
        ids, names, pngs, segments = [], [], [], []
        digest = hashlib.sha256()
        digest.update(repr([self.name, __version__, fmt_name, missing]).encode())
        try:
            digest.update(gt_json.read_bytes())
        except OSError as e:
            raise MissingFileError(f"{gt_json}: cannot be read ({e.strerror or e})") from None
        for image_id, ann in anns.items():
            seg = panoptic.segment_table(ann["segments_info"], cat_index,
                                         f"{gt_json}: image {image_id!r}", gt=True)
            if seg.area is None and seg.ids.size:
                raise FileFormatError(f"{gt_json}: image {image_id!r}: ground-truth segments "
                                      f"need their 'area'")
            png = gt_dir / ann["file_name"]
            try:
                digest.update(png.read_bytes())
            except FileNotFoundError:
                raise MissingFileError(f"{png}: no such file") from None
            except OSError as e:
                raise MissingFileError(f"{png}: cannot be read ({e.strerror or e})") from None
            ids.append(image_id)
            names.append(str(image_id))
            pngs.append(png)
            segments.append(seg)
        pixels = sum(int(im.get("width", 0)) * int(im.get("height", 0))
                     for im in doc.get("images", []) if isinstance(im, dict))
        return PanopticReference(fmt_name, tuple(names), tuple(ids), gt_json, tuple(pngs),
                                 tuple(segments), categories, missing, digest.hexdigest(),
                                 pixels)

    def prepare(self, ref: PanopticReference, pending: int) -> None:
        """Load the compiled PNG reader and counting kernel in this (parent) process when the
        workers would load them anyway (images big enough for the compiled reader, see
        :data:`segeval.formats.png.FAST_MIN_BYTES`) or when the run is big enough to repay them
        (``segeval score``'s threshold on all the pixels to score): forked workers then inherit
        them instead of each loading them (~0.5 s per worker)."""
        import sys

        from segeval.core import panoptic
        from segeval.formats.coco.panoptic import JIT_MIN_TOTAL_PIXELS
        from segeval.formats.png import read_label_png

        if not ref.gt_pngs or pending < 1:
            return
        read_label_png(ref.gt_pngs[0], panoptic=True)  # loads the fast reader if it qualifies
        if "numba" in sys.modules or ref.pixels * pending >= JIT_MIN_TOTAL_PIXELS:
            panoptic.warm_jit()

    def pair(self, ref: PanopticReference, sub: Submission) -> list[Pairing | None]:
        """Read the submission's predictions JSON, pair its annotations with the ground truth
        by ``image_id`` and validate their segment tables; one :class:`Pairing` (PNG member
        and predicted segments) per ground-truth image, ``None`` where missing."""
        from segeval.core import panoptic
        from segeval.formats.coco.panoptic import _by_image, _names

        members = list(sub.members)
        json_member, folder = _find_json(members, sub)
        json_name = sub.display(json_member)
        try:
            with MemberReader() as reader:
                doc = _parse_json(reader.read(sub, json_member), json_name)
            pred_anns = _by_image(doc, Path(json_name))  # type: ignore[arg-type]
            gt_ids = set(ref.image_ids)
            extra = [i for i in pred_anns if i not in gt_ids]
            absent = [i for i in ref.image_ids if i not in pred_anns]
            hint = ""
            if {str(i) for i in extra} & {str(i) for i in absent}:
                hint = " (image ids differ in type: numbers vs strings)"
            if extra:
                raise SubmissionError(
                    f"{json_name}: predictions for {len(extra)} images that are not in the "
                    f"ground truth {ref.gt_json.name} ({_names(extra)}){hint}")
            if absent and ref.missing == "error":
                raise SubmissionError(
                    f"{json_name}: no prediction for {len(absent)} of {len(ref.image_ids)} "
                    f"ground-truth images ({_names(absent)}){hint}; use --missing zero to "
                    f"count them as missed")
            cat_index = ref.cat_index
            chosen: list[Pairing | None] = []
            for image_id in ref.image_ids:
                ann = pred_anns.get(image_id)
                if ann is None:
                    chosen.append(None)
                    continue
                seg = panoptic.segment_table(ann["segments_info"], cat_index,
                                             f"{json_name}: image {image_id!r}", gt=False)
                name = ann["file_name"]
                member = os.path.normpath(folder + str(name)).replace(os.sep, "/") \
                    if isinstance(name, str) else None
                if member is None or member not in sub.members:
                    raise SubmissionError(f"{sub.display(folder + str(name))}: no such file "
                                          f"(the PNG of image {image_id!r} in {json_name})")
                chosen.append(Pairing(member, seg))
        except SubmissionError:
            raise
        except SegevalError as e:
            raise SubmissionError(str(e)) from None
        return chosen

    def decode_gt(self, ref: PanopticReference, i: int) -> np.ndarray:
        """Decode ground-truth image ``i`` and check it against its segment table (ids not in
        the table, areas smaller than the pixels): the ground truth's errors, found here once
        rather than blamed on every submission."""
        from segeval.core import panoptic
        from segeval.formats.png import read_label_png

        gt = read_label_png(ref.gt_pngs[i], panoptic=True)
        empty = panoptic.Segments(np.zeros(0, np.int64), np.zeros(0, np.intp),
                                  np.zeros(0, bool), None)
        panoptic.image_counts(np.zeros(gt.shape, np.uint8), gt, empty, ref.gt_segments[i],
                              len(ref.categories), gt_name=str(ref.gt_pngs[i]))
        return gt

    # ------------------------------------------------------------------ scoring

    def row_width(self, ref: PanopticReference) -> int:
        return 5 * len(ref.categories)

    def empty_total(self, ref: PanopticReference) -> Any:
        from segeval.core.panoptic import PanopticStats

        return PanopticStats(ref.categories)

    def score_image(self, ref: PanopticReference, i: int, gt: np.ndarray, pred: bytes | None,
                    pred_name: str, meta: Any = None) -> tuple[np.ndarray, Any]:
        """Count one image exactly as ``segeval score`` does; the row is the flattened
        ``(5, C)`` counts."""
        from segeval.core import panoptic
        from segeval.formats.png import decode_label_png

        c = len(ref.categories)
        if pred is None:
            counts = panoptic.missing_counts(ref.gt_segments[i], c)
        else:
            ids = decode_label_png(pred, pred_name, panoptic=True)
            counts = panoptic.image_counts(ids, gt, meta, ref.gt_segments[i], c,
                                           pred_name=pred_name, gt_name=str(ref.gt_pngs[i]))
        return counts.reshape(-1), panoptic.PanopticStats(ref.categories, counts=counts)

    def result(self, ref: PanopticReference, total: Any) -> Any:
        return total.result(format=ref.format, num_images=len(ref.names))

    @staticmethod
    def class_has_gt(row: dict[str, Any]) -> bool:
        """Whether a per-class row has ground truth (a non-crowd segment: TP or FN)."""
        return bool(row.get("tp", 0) or row.get("fn", 0))

    # ------------------------------------------------------------------ bootstrap

    def replicates(self, ref: PanopticReference, sums: np.ndarray, metric: str) -> np.ndarray:
        """The metric of summed rows, ``(B, 5C)`` -> ``(B,)``: the averages of
        :mod:`segeval.core.panoptic` on count arrays with a leading batch axis."""
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
