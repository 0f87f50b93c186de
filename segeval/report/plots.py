"""Plots of results, as PNG bytes (optional: the ``[plot]`` extra, matplotlib).

Every function takes JSON documents (``result.to_dict()``, leaderboard entries), so a cached
result plots like a fresh one, and returns the PNG file's bytes. matplotlib is driven through
its object interface (``Figure`` + the Agg canvas): no pyplot state, no display needed.

* :func:`per_class_bars` -- per-class IoU, one horizontal bar per class that occurs; a class
  absent from ground truth and prediction (IoU NaN) is left out, and the axis says how many.
* :func:`confusion_heatmap` -- the confusion matrix normalised by ground-truth row (each row
  sums to 1 over the predicted classes, plus a ``none`` column for unassigned pixels when there
  are any); a class without ground-truth pixels is a blank row.
* :func:`interval_chart` -- the leaderboard: each ranked submission's metric with its
  confidence interval, best at the top.
"""

from __future__ import annotations

import io
import math
from typing import Any

from segeval.errors import UsageError

_DPI = 100


def require_matplotlib() -> None:
    """Raise :class:`~segeval.errors.UsageError` naming the extra when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise UsageError(
            "plots need matplotlib: pip install 'segeval[plot]'"
        ) from None


def _figure(width: float, height: float) -> Any:
    require_matplotlib()
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=_DPI)


def _png(fig: Any) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _num(x: Any) -> float:
    return float("nan") if x is None else float(x)


def occurring(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """The rows of the classes that occur: ``key`` defined (not ``None`` / NaN) and, where the
    row counts pixels (semantic), some ground-truth or predicted pixels."""
    def occurs(r: dict[str, Any]) -> bool:
        if math.isnan(_num(r.get(key))):
            return False
        if "gt_pixels" in r and "pred_pixels" in r:
            return bool(r["gt_pixels"] or r["pred_pixels"])
        return True

    return [r for r in rows if occurs(r)]


def per_class_bars(document: dict[str, Any], title: str = "", key: str = "iou") -> bytes:
    """Horizontal bars of ``per_class[*][key]`` (IoU by default), classes top to bottom: only
    the classes that occur (see :func:`occurring`; the axis label says how many are left out),
    so that 133 COCO panoptic categories with a handful present stay readable."""
    rows = occurring(document["per_class"], key)
    hidden = len(document["per_class"]) - len(rows)
    names = [str(r["name"]) for r in rows]
    values = [_num(r.get(key)) for r in rows]
    fig = _figure(6.4, 1.0 + 0.25 * max(1, len(rows)))
    ax = fig.add_subplot()
    ys = list(range(len(rows)))[::-1]
    ax.barh(ys, values, color="#4477aa")
    for y, v in zip(ys, values, strict=True):
        ax.text(min(v, 0.88) + 0.01, y, f"{v:.3f}", va="center", fontsize=7)
    ax.set_yticks(ys, names, fontsize=7)
    ax.set_xlim(0, 1)
    label = f"per-class {key.upper() if key in ('iou', 'pq') else key}"
    if hidden:
        label += f" ({hidden} classes that do not occur are not shown)"
    ax.set_xlabel(label)
    metric = document.get("metrics", {}).get("miou")
    heading = title + (f"  (mIoU {metric:.4f})" if metric is not None and key == "iou" else "")
    ax.set_title(heading.strip(), fontsize=9)
    fig.tight_layout()
    return _png(fig)


def normalised_confusion(document: dict[str, Any]) -> tuple[Any, list[str]]:
    """The confusion matrix with each ground-truth row divided by its total, ``(C, C[+1])``
    float64, and the column names (a ``none`` column for unassigned pixels when there are
    any); a row without ground truth is NaN."""
    import numpy as np

    matrix = np.asarray(document["confusion_matrix"], dtype=np.float64)
    unassigned = np.asarray(document.get("unassigned") or [0] * len(matrix), dtype=np.float64)
    cols = [str(r["name"]) for r in document["per_class"]]
    if unassigned.any():
        matrix = np.column_stack([matrix, unassigned])
        cols.append("none")
    totals = matrix.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        norm = np.where(totals > 0, matrix / np.where(totals > 0, totals, 1), np.nan)
    return norm, cols


def confusion_heatmap(document: dict[str, Any], title: str = "") -> bytes:
    """The row-normalised confusion matrix (rows = ground truth) as a heat map."""
    import numpy as np

    norm, cols = normalised_confusion(document)
    names = [str(r["name"]) for r in document["per_class"]]
    size = 2.5 + 0.28 * len(cols)
    fig = _figure(size + 1.2, size)
    ax = fig.add_subplot()
    image = ax.imshow(np.ma.masked_invalid(norm), vmin=0.0, vmax=1.0, cmap="viridis",
                      interpolation="nearest")
    if len(cols) <= 60:
        ax.set_xticks(range(len(cols)), cols, rotation=90, fontsize=6)
        ax.set_yticks(range(len(names)), names, fontsize=6)
    ax.set_xlabel("prediction")
    ax.set_ylabel("ground truth")
    ax.set_title((f"{title}: " if title else "") + "confusion, normalised by ground-truth row",
                 fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return _png(fig)


def interval_chart(entries: list[dict[str, Any]], metric: str, level: float) -> bytes:
    """Ranked entries (``leaderboard.json``) as points with interval bars, best at the top."""
    ranked = [e for e in entries if e["status"] == "ok" and e["rank"] is not None]
    fig = _figure(7.0, 1.2 + 0.3 * max(1, len(ranked)))
    ax = fig.add_subplot()
    ys = list(range(len(ranked)))[::-1]
    values = [_num(e["metrics"][metric]) for e in ranked]
    # the interval is drawn as it is (with few images a percentile interval need not contain
    # the estimate: a resample that misses a rare class averages other classes)
    ax.hlines(ys, [_num(e["ci"]["low"]) for e in ranked], [_num(e["ci"]["high"]) for e in ranked],
              color="#999999", linewidth=2)
    ax.plot(values, ys, "o", color="#4477aa", markersize=4)
    ax.set_yticks(ys, [f"{e['rank']}. {e['submission']}" for e in ranked], fontsize=7)
    methods = {str(e["ci"].get("method", "bootstrap")).split(" (")[0] for e in ranked
               if e.get("ci")}
    method = methods.pop() if len(methods) == 1 else "bootstrap"
    ax.set_xlabel(f"{metric} ({round(level * 100)} % interval: {method})")
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    return _png(fig)


def result_plots(document: dict[str, Any], title: str = "") -> dict[str, bytes]:
    """The per-run plots of a result document, by file name (semantic: IoU bars and the
    confusion heat map; panoptic: per-category PQ bars; other tasks: none yet)."""
    if document.get("task") == "panoptic":
        return {"per_class_pq.png": per_class_bars(document, title, key="pq")}
    if document.get("task") != "semantic":
        return {}
    return {"per_class_iou.png": per_class_bars(document, title),
            "confusion_matrix.png": confusion_heatmap(document, title)}

