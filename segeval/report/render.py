"""Render a :class:`~segeval.SemanticResult` as a terminal table, JSON or CSV, and write files
atomically (a temporary file in the same folder, then a rename: never half a report)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from segeval.core.confusion import SemanticResult


def cell(x: float | None, digits: int = 4) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def table(result: Any) -> str:
    """The terminal table of any result, chosen by its ``task`` (and format, where a format has
    its own table: key ``"task/format"``)."""
    return TABLES.get(f"{result.task}/{getattr(result, 'format', None)}",
                      TABLES[result.task])(result)


def aligned(rows: list[tuple[str, ...]], left: int = 2) -> list[str]:
    """Rows of cells as aligned lines, a rule under the first; the first ``left`` columns
    left-aligned, the others right-aligned."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(v.ljust(w) if i < left else v.rjust(w)
                       for i, (v, w) in enumerate(zip(r, widths, strict=True))).rstrip()
             for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def semantic_table(result: SemanticResult) -> str:
    """Per-class IoU, accuracy and Dice, then the headline numbers, as aligned text."""
    rows = [("id", "class", "IoU", "Acc", "Dice", "GT pixels")]
    for r in result.per_class():
        rows.append((str(r["id"]), r["name"], cell(r["iou"]), cell(r["accuracy"]),
                     cell(r["dice"]), str(r["gt_pixels"])))
    lines = aligned(rows)
    m = result.metrics_dict()
    n = m["classes_averaged"]
    lines += [
        "",
        f"images               {result.num_images}",
        f"valid pixels         {m['valid_pixels']}",
        f"pixel accuracy       {cell(m['pixel_accuracy'])}",
        f"mean pixel accuracy  {cell(m['mean_pixel_accuracy'])}  "
        f"({n['mean_pixel_accuracy']} classes)",
        f"mIoU                 {cell(m['miou'])}  ({n['miou']} of {m['num_classes']} classes, "
        f"absent={m['absent']})",
        f"FWIoU                {cell(m['fwiou'])}",
        f"mean Dice            {cell(m['mean_dice'])}  ({n['mean_dice']} classes)",
    ]
    return "\n".join(lines) + "\n"


def cityscapes_table(result: Any) -> str:
    """Cityscapes: per-class IoU and iIoU, per-category IoU and iIoU, then the means."""
    rows = [("id", "class", "label id", "IoU", "iIoU", "Acc", "GT pixels")]
    for r in result.per_class():
        rows.append((str(r["id"]), r["name"], str(r["label_id"]), cell(r["iou"]),
                     cell(r["iiou"]), cell(r["accuracy"]), str(r["gt_pixels"])))
    lines = aligned(rows, left=3)
    cats = [("category", "IoU", "iIoU")]
    cats += [(c["name"], cell(c["iou"]), cell(c["iiou"])) for c in result.per_category()]
    m = result.metrics_dict()
    n = m["classes_averaged"]
    iiou_note = f"({n['iiou']} classes)" if m["instances_evaluated"] else "(not evaluated)"
    lines += ["", *aligned(cats, left=1), "",
              f"images               {result.num_images}  (predictions as {m['pred_ids']} ids)",
              f"valid pixels         {m['valid_pixels']}",
              f"pixel accuracy       {cell(m['pixel_accuracy'])}",
              f"mIoU                 {cell(m['miou'])}  ({n['miou']} of {m['num_classes']} "
              f"classes)",
              f"iIoU                 {cell(m['iiou'])}  {iiou_note}",
              f"category mIoU        {cell(m['category_miou'])}  ({n['category_miou']} "
              f"categories)",
              f"category iIoU        {cell(m['category_iiou'])}  ({n['category_iiou']} "
              f"categories)"]
    return "\n".join(lines) + "\n"


def panoptic_table(result: Any) -> str:
    """Per-category PQ, SQ, RQ and counts (categories with segments), then All / Things /
    Stuff, as aligned text."""
    rows = [("id", "category", "kind", "PQ", "SQ", "RQ", "TP", "FP", "FN")]
    hidden = 0
    for r in result.per_class():
        if r["pq"] is None:
            hidden += 1
            continue
        rows.append((str(r["id"]), r["name"], "thing" if r["isthing"] else "stuff",
                     cell(r["pq"]), cell(r["sq"]), cell(r["rq"]), str(r["tp"]), str(r["fp"]),
                     str(r["fn"])))
    lines = aligned(rows, left=3) if len(rows) > 1 else []
    if hidden:
        lines.append(f"({hidden} categories without any segment are not shown)")
    summary = [("", "PQ", "SQ", "RQ", "N")]
    for name, key in (("All", ""), ("Things", "_things"), ("Stuff", "_stuff")):
        m = result.metrics_dict()
        summary.append((name, cell(m[f"pq{key}"]), cell(m[f"sq{key}"]), cell(m[f"rq{key}"]),
                        str(m[f"n{key}"])))
    lines += ["", *aligned(summary, left=1), "", f"images  {result.num_images}"]
    return "\n".join(lines) + "\n"



def instance_table(result: Any) -> str:
    """COCO mask AP: the categories with ground truth or detections, then the 12 numbers."""
    rows = [("id", "category", "AP", "AP50", "AP75", "AR100", "GT", "dets")]
    shown = [r for r in result.per_class() if r["num_gt"] or r["num_dt"]]
    for r in shown:
        rows.append((str(r["id"]), r["name"], cell(r["AP"]), cell(r["AP50"]), cell(r["AP75"]),
                     cell(r["AR100"]), str(r["num_gt"]), str(r["num_dt"])))
    lines = aligned(rows)
    hidden = len(result.categories) - len(shown)
    if hidden:
        lines.append(f"({hidden} categories without ground truth or detections not shown)")
    m, s = result.metrics, result.settings
    area = ("box areas (bbox kept)" if s["detection_area"] == "bbox" else
            f"mask areas ({s['bboxes_dropped']} bbox dropped)" if s["bboxes_dropped"]
            else "mask areas")
    lines += [
        "",
        f"images {result.num_images}   ground truth {result.num_gt} (non-crowd)   "
        f"detections {result.num_dt}   backend {result.backend}",
        f"AP     {cell(m['AP'])}   AP50  {cell(m['AP50'])}   AP75   {cell(m['AP75'])}",
        f"APs    {cell(m['APs'])}   APm   {cell(m['APm'])}   APl    {cell(m['APl'])}",
        f"AR1    {cell(m['AR1'])}   AR10  {cell(m['AR10'])}   AR100  {cell(m['AR100'])}",
        f"ARs    {cell(m['ARs'])}   ARm   {cell(m['ARm'])}   ARl    {cell(m['ARl'])}",
        f"detection sizes from {area}",
    ]
    return "\n".join(lines) + "\n"


def medical_table(result: Any) -> str:
    """Per label: the mean and median over cases of Dice, IoU, HD95, ASSD and NSD (distances
    in mm; a case with the label in only one volume makes HD95/ASSD inf), then the means over
    labels."""
    rows = [("label", "cases", "Dice", "(med)", "IoU", "(med)", "HD95", "(med)", "ASSD",
             "(med)", "NSD", "(med)")]
    for r in result._per_class():
        cells = [str(r["label"]), f"{r['cases_with_gt']}/{result.num_cases}"]
        for m in ("dice", "iou", "hd95", "assd", "nsd"):
            digits = 4 if m in ("dice", "iou", "nsd") else 2
            cells += [cell(r[m], digits), cell(r[f"{m}_median"], digits)]
        rows.append(tuple(cells))
    lines = aligned(rows) if len(rows) > 1 else ["(no labels in any volume)"]
    m = result.metrics
    s = result.settings
    inf = [f"{m[k + '_inf']} labels with {k.upper()} inf" for k in ("hd95", "assd")
           if m[f"{k}_inf"]]
    lines += [
        "",
        f"cases {result.num_cases}   labels {len(result.labels)}   NSD tolerance "
        f"{s.get('nsd_tolerance_mm', 1.0):g} mm   (cases: with the label in the ground truth; "
        f"distances in mm)",
        f"mean Dice  {cell(m['dice'])}   IoU  {cell(m['iou'])}   NSD  {cell(m['nsd'])}   "
        f"HD95  {cell(m['hd95'], 2)}   ASSD  {cell(m['assd'], 2)}   (over {m['dice_n']} "
        f"labels)" + (f"   [{', '.join(inf)}]" if inf else ""),
    ]
    return "\n".join(lines) + "\n"


TABLES = {"semantic": semantic_table, "instance": instance_table, "panoptic": panoptic_table,
          "medical": medical_table}
TABLES["semantic/cityscapes"] = cityscapes_table


def to_json(document: Any) -> str:
    """JSON text with NaN (and infinity) written as ``null`` (JSON has neither)."""
    return json.dumps(_nan_to_none(document), indent=2, allow_nan=False) + "\n"


def _nan_to_none(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _nan_to_none(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_nan_to_none(v) for v in x]
    return x


def to_csv(rows: Iterable[dict[str, Any]]) -> str:
    """CSV text of dict rows (the keys of the first row are the columns); NaN/None empty."""
    rows = list(rows)
    buf = io.StringIO()
    if rows:
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: "" if v is None or (isinstance(v, float) and math.isnan(v))
                             else v for k, v in row.items()})
    return buf.getvalue()


def per_image_text(rows: list[dict[str, Any]], path: Path) -> str:
    """Per-image rows as JSON (``.json``) or CSV (anything else)."""
    return to_json(rows) if path.suffix.lower() == ".json" else to_csv(rows)


def write_files(outputs: dict[Path, str | bytes]) -> None:
    """Write every file, or none: all are rendered and staged first, then renamed into place.

    A path that is a symbolic link is written through to its target; a target that exists and is
    not a regular file (``/dev/stdout``, a pipe) is written directly. New files get the usual
    permissions (``0o666`` less the umask). Raises ``OSError`` with ``filename`` set to the path
    the caller gave.
    """
    umask = os.umask(0)
    os.umask(umask)
    staged: list[tuple[str, Path, Path]] = []
    direct: list[tuple[Path, str | bytes]] = []
    try:
        for path, text in outputs.items():
            target = Path(os.path.realpath(path))
            if target.exists() and not target.is_file():
                direct.append((target, text))
                continue
            try:
                fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(path)) from None
            staged.append((tmp, target, path))
            with os.fdopen(fd, "wb") as f:
                f.write(_encoded(text))
            os.chmod(tmp, 0o666 & ~umask)
        for tmp, target, path in staged:
            try:
                os.replace(tmp, target)
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(path)) from None
        for target, text in direct:
            with open(target, "wb") as f:
                f.write(_encoded(text))
    finally:
        for tmp, _, _ in staged:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _encoded(data: str | bytes) -> bytes:
    return data if isinstance(data, bytes) else data.encode("utf-8")
