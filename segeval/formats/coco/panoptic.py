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

Checks, each a one-line :class:`~segeval.errors.SegevalError` naming the file: a ground-truth
image without prediction (unless ``missing="zero"``: its segments are then all FN), a
prediction for an image that is not in the ground truth, an image listed twice, a missing or
unreadable PNG, prediction and ground truth of different sizes, a segment id twice in
``segments_info``, an id in a PNG that is not in its ``segments_info`` (or the reverse for
predictions), an unknown ``category_id``, a ground-truth ``area`` smaller than the segment's
pixels. The scores follow :mod:`segeval.core.panoptic`.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from segeval.core import panoptic
from segeval.core.panoptic import PanopticResult, PanopticStats, Segments
from segeval.errors import DataError, FileFormatError, MissingFileError, UsageError
from segeval.formats import log, reject_options

FORMAT = "coco-panoptic"
TASK = "panoptic"  # what --task this module serves (segeval.formats.registry)
#: Load the compiled counting kernel before the work starts when the ground truth's images hold
#: at least this many pixels in all (~440 COCO images): loading costs ~0.5 s, it saves ~2 ms
#: per 640x480 image over the NumPy path.
JIT_MIN_TOTAL_PIXELS = 1 << 27
_SHOW = 5  # ids listed in a message about many images


@dataclass(frozen=True)
class _Image:
    """What a worker needs to score one image (picklable)."""

    image_id: Any
    gt_png: Path
    pred_png: Path | None
    gt: Segments
    pred: Segments | None


def read_json(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from ``path``; one-line errors for a missing or malformed file."""
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
    except FileNotFoundError:
        raise MissingFileError(f"{path}: no such file ({what})") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: a folder where the {what} JSON file is expected") from None
    except OSError as e:
        raise FileFormatError(f"{path}: cannot be read ({e.strerror or e})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FileFormatError(f"{path}: not a valid JSON file ({e})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("annotations"), list):
        raise FileFormatError(f"{path}: not a COCO panoptic JSON (no 'annotations' list)")
    return doc


def png_folder(json_path: Path, folder: Path | None, flag: str) -> Path:
    """The PNG folder: ``folder`` if given, else the JSON path without ``.json``."""
    if folder is None:
        folder = Path(os.path.splitext(json_path)[0])
        if not folder.is_dir():
            raise MissingFileError(f"{folder}: no PNG folder beside {json_path.name} (give "
                                   f"{flag})")
    elif not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder ({flag})")
    return folder


def _names(ids: list[Any]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOW])
    return shown + (f" and {len(ids) - _SHOW} more" if len(ids) > _SHOW else "")


def _by_image(doc: dict[str, Any], path: Path) -> dict[Any, dict[str, Any]]:
    out: dict[Any, dict[str, Any]] = {}
    for k, ann in enumerate(doc["annotations"]):
        if not isinstance(ann, dict) or "image_id" not in ann or "file_name" not in ann \
                or not isinstance(ann.get("segments_info"), list):
            raise FileFormatError(f"{path}: annotation #{k} needs 'image_id', 'file_name' and "
                                  f"a 'segments_info' list")
        image_id = ann["image_id"]
        if isinstance(image_id, list | dict):
            raise FileFormatError(f"{path}: annotation #{k} has image_id {image_id!r}")
        if image_id in out:
            raise DataError(f"{path}: image {image_id!r} has two annotations")
        out[image_id] = ann
    return out


def _pairs(gt_json: Path, pred_json: Path, gt_doc: dict[str, Any], pred_doc: dict[str, Any],
           gt_dir: Path, pred_dir: Path, stats: PanopticStats, missing: str) -> list[_Image]:
    """Pair annotations by image id and validate their segment tables (no pixels read)."""
    gt_anns = _by_image(gt_doc, gt_json)
    pred_anns = _by_image(pred_doc, pred_json)
    if not gt_anns:
        raise DataError(f"{gt_json}: no annotations")
    extra = [i for i in pred_anns if i not in gt_anns]
    absent = [i for i in gt_anns if i not in pred_anns]
    hint = ""
    if {str(i) for i in extra} & {str(i) for i in absent}:
        hint = " (image ids differ in type: numbers vs strings)"
    if extra:
        raise DataError(f"{pred_json}: predictions for {len(extra)} images that are not in the "
                        f"ground truth {gt_json.name} ({_names(extra)}){hint}")
    if absent and missing == "error":
        raise MissingFileError(
            f"{pred_json}: no prediction for {len(absent)} of {len(gt_anns)} ground-truth "
            f"images ({_names(absent)}){hint}; use --missing zero to count them as missed"
        )
    if absent:
        log.warning("%d ground-truth images have no prediction; their segments count as false "
                    "negatives: %s", len(absent), _names(absent))
    images = []
    for image_id, ann in gt_anns.items():
        gt_seg = panoptic.segment_table(ann["segments_info"], stats.cat_index,
                                        f"{gt_json}: image {image_id!r}", gt=True)
        if gt_seg.area is None and gt_seg.ids.size:
            raise FileFormatError(f"{gt_json}: image {image_id!r}: ground-truth segments need "
                                  f"their 'area'")
        pred_ann = pred_anns.get(image_id)
        if pred_ann is None:
            images.append(_Image(image_id, gt_dir / ann["file_name"], None, gt_seg, None))
            continue
        pred_seg = panoptic.segment_table(pred_ann["segments_info"], stats.cat_index,
                                          f"{pred_json}: image {image_id!r}", gt=False)
        images.append(_Image(image_id, gt_dir / ann["file_name"],
                             pred_dir / pred_ann["file_name"], gt_seg, pred_seg))
    return images


def _score_image(categories: tuple[panoptic.Category, ...], per_image: bool,
                 image: _Image) -> tuple[np.ndarray, dict[str, Any] | None]:
    """Decode one image pair and count it (runs in a worker): the ``(5, C)`` counts of
    :func:`segeval.core.panoptic.image_counts` and the per-image row when asked for."""
    from segeval.formats.png import read_label_png

    if image.pred is None or image.pred_png is None:
        counts = panoptic.missing_counts(image.gt, len(categories))
    else:
        gt = read_label_png(image.gt_png, panoptic=True)
        pred = read_label_png(image.pred_png, panoptic=True)
        counts = panoptic.image_counts(pred, gt, image.pred, image.gt, len(categories),
                                       pred_name=str(image.pred_png), gt_name=str(image.gt_png))
    if not per_image:
        return counts, None
    avg = panoptic.average(PanopticStats(categories, counts=counts))
    row = {"image": image.image_id, "missing": image.pred is None, "pq": avg.pq,
           "sq": avg.sq, "rq": avg.rq, "n": avg.n, "tp": int(counts[panoptic.TP].sum()),
           "fp": int(counts[panoptic.FP].sum()), "fn": int(counts[panoptic.FN].sum())}
    return counts, row


def evaluate_files(
    fmt: str,
    pred_json: Path,
    gt_json: Path,
    *,
    gt_folder: Path | None = None,
    pred_folder: Path | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    missing: str = "error",
    per_image: bool = False,
    progress: Callable[[int], Any] | None = None,
    on_start: Callable[[int], Any] | None = None,
    **unused: Any,
) -> PanopticResult:
    """Score a COCO-panoptic prediction JSON (+ PNG folder) against the ground truth's; the
    options are those of :func:`evaluate`, and one ``fmt`` does not use is a usage error.

    See the module docstring for the paths and checks; ``jobs`` worker processes (default all
    cores) decode and count the images on the engine named by ``scheduler`` (default this
    machine; see :mod:`segeval.engine`), and only the per-category counts come back, so memory
    does not grow with the number of images. The result does not depend on ``jobs``.
    """
    reject_options(fmt, unused)
    if missing not in ("error", "zero"):
        raise UsageError(f"--missing must be 'error' or 'zero', not {missing!r}")
    gt_doc = read_json(gt_json, "ground truth")
    pred_doc = read_json(pred_json, "prediction")
    if not isinstance(gt_doc.get("categories"), list):
        raise FileFormatError(f"{gt_json}: no 'categories' list (a ground-truth panoptic JSON "
                              f"is needed)")
    stats = PanopticStats(panoptic.as_categories(gt_doc["categories"], str(gt_json)))
    gt_dir = png_folder(gt_json, gt_folder, "--gt-folder")
    pred_dir = png_folder(pred_json, pred_folder, "--pred-folder")
    images = _pairs(gt_json, pred_json, gt_doc, pred_doc, gt_dir, pred_dir, stats, missing)
    pixels = sum(int(im.get("width", 0)) * int(im.get("height", 0))
                 for im in gt_doc.get("images", []) if isinstance(im, dict))
    del gt_doc, pred_doc
    if pixels >= JIT_MIN_TOTAL_PIXELS:
        panoptic.warm_jit()
    if on_start:
        on_start(len(images))
    from segeval.engine import reduce_items

    work = functools.partial(_score_image, stats.categories, per_image)
    total, rows = reduce_items(work, images, scheduler=scheduler, jobs=jobs, progress=progress)
    stats.add_counts(total)
    return stats.result(format=fmt, num_images=len(images), per_image=rows if per_image else None)


def evaluate(pred: Path, gt: Path, **options: Any) -> PanopticResult:
    """Score ``pred`` (prediction JSON) against ``gt`` (ground-truth JSON); see the module
    docstring. Options: ``gt_folder``, ``pred_folder``, ``jobs``, ``scheduler``, ``missing``
    (``"error"``/``"zero"``), ``per_image``, ``progress``, ``on_start``."""
    for path, flag in ((gt, "--gt"), (pred, "--pred")):
        if Path(path).is_dir():
            raise UsageError(f"{path}: {flag} must be the panoptic JSON file for the "
                             f"{FORMAT} format, not a folder")
    return evaluate_files(FORMAT, Path(pred), Path(gt), **options)
