"""Leaderboard reports: CSV, JSON, Markdown, a self-contained HTML page, and plots.

:func:`write_reports` writes into ``out``:

* ``leaderboard.json`` -- the list of entries (see
  :class:`~segeval.leaderboard.runner.Leaderboard`),
* ``leaderboard.csv``, ``leaderboard.md``, ``leaderboard.html`` -- the same table for people;
  the HTML embeds its plots (``data:`` URIs) and needs no other file,
* ``per_class_winners.csv`` -- for each class the best per-class value and who reached it,
* ``submissions/<name>.json`` -- per ok submission exactly the document ``segeval score --json``
  writes; per failed one ``{"submission", "status": "failed", "error"}``,
* ``plots/leaderboard.png`` and ``plots/<name>/{per_class_iou,confusion_matrix}.png`` for the
  ``plot_top`` best-ranked submissions, when plots are on (they need the ``[plot]`` extra).

``<name>`` is the submission's name as the reports show it
(:func:`~segeval.leaderboard.runner.visible`; cut with a hash beyond 240 bytes, see
:func:`file_name`). After writing, ``submissions/*.json`` and ``plots/**/*.png`` files that this
run did not write (submissions no longer there, plots no longer drawn) are removed.

Names and error texts are submitters' text: Markdown cells escape them (:func:`md_text`), HTML
escapes them (``html.escape``), JSON and CSV quote them; all are valid UTF-8.

Every file is rendered in memory first, then all are written through temporary files and
renames (:func:`segeval.report.render.write_files`): never half a report.
NaN is ``null`` in JSON, empty in CSV and ``n/a`` in Markdown and HTML.
"""

from __future__ import annotations

import base64
import contextlib
import html
import logging
import math
from pathlib import Path
from typing import Any

from segeval.leaderboard.runner import Leaderboard, visible
from segeval.report import render

log = logging.getLogger("segeval")

DEFAULT_PLOT_TOP = 10


def cell(x: Any, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    return f"{x:.{digits}f}" if isinstance(x, float) else str(x)


def _other_metrics(board: Leaderboard) -> list[str]:
    from segeval.leaderboard.tasks import TASKS

    return [m for m in TASKS[board.task].metrics if m != board.metric]


def csv_rows(board: Leaderboard) -> list[dict[str, Any]]:
    """One flat row per entry: rank, submission, status, the metric, its interval, the paired
    comparison with the entry above, the other metrics and the error."""
    rows = []
    for e in board.entries:
        m, ci = e["metrics"] or {}, e["ci"] or {}
        row = {"rank": e["rank"], "submission": e["submission"], "status": e["status"],
               board.metric: m.get(board.metric), "ci_low": ci.get("low"),
               "ci_high": ci.get("high"), "ci_level": ci.get("level"),
               "beats_above": e["beats_above"]}
        row.update({k: m.get(k) for k in _other_metrics(board)})
        row["error"] = e["error"]
        rows.append(row)
    return rows


def _header(board: Leaderboard) -> str:
    from segeval.leaderboard.tasks import TASKS

    head = (f"Task {board.task}, format {board.format}, {board.num_images} ground-truth images; "
            f"ranked by {board.metric} (higher is better, ties share a rank). ")
    task = TASKS[board.task]
    if not getattr(task, "intervals", True):
        return head + f"No intervals ({task.interval_method})."
    return head + (f"Intervals: "
            f"{round(board.level * 100)} % percentile bootstrap over images ({board.resamples} "
            f"resamples, seed {board.seed}); 'beats above': the fraction of the same resamples "
            f"in which a submission scores higher than the one ranked just above it.")


#: Markdown characters escaped with a backslash in a text cell (``<``, ``>`` and ``&`` become
#: entities): no name or error text can close a table cell, open code, emphasis or a link, or
#: inject HTML into the rendered page.
_MD_SPECIAL = frozenset("\\`*_[]|~")
_MD_ENTITY = {"<": "&lt;", ">": "&gt;", "&": "&amp;"}


def md_text(text: str) -> str:
    """``text`` as one inert Markdown table cell: :func:`~segeval.leaderboard.runner.visible`
    (line breaks and control characters as ``\\n``/``\\xNN``), then ``\\ ` * _ [ ] | ~``
    backslash-escaped and ``< > &`` as HTML entities.

    >>> md_text("a|b`<i>")
    'a\\\\|b\\\\`&lt;i&gt;'
    """
    return "".join("\\" + ch if ch in _MD_SPECIAL else _MD_ENTITY.get(ch, ch)
                   for ch in visible(text))


def _md_cell(x: Any) -> str:
    return md_text(x) if isinstance(x, str) else md_text(cell(x))


def to_markdown(board: Leaderboard) -> str:
    """The leaderboard, the failed submissions and the per-class winners as Markdown."""
    level = f"{round(board.level * 100)} % CI"
    others = _other_metrics(board)
    lines = ["# Leaderboard", "", _header(board), "",
             "| rank | submission | " + " | ".join([board.metric, level, "beats above",
                                                    *others]) + " |",
             "|" + "---|" * (5 + len(others))]
    for e in board.ranked():
        ci = e["ci"]
        lines.append("| " + " | ".join(_md_cell(v) for v in [
            e["rank"], e["submission"], e["metrics"][board.metric]]) + " | "
            + f"{cell(ci['low'])} – {cell(ci['high'])} | "
            + f"{_md_cell(e['beats_above'])} | "
            + " | ".join(_md_cell(e["metrics"].get(k)) for k in others) + " |")
    failed = [e for e in board.entries if e["status"] != "ok"]
    if failed:
        lines += ["", "## Failed submissions", "", "| submission | reason |", "|---|---|"]
        lines += [f"| {_md_cell(e['submission'])} | {_md_cell(e['error'])} |" for e in failed]
    key = next(iter(k for k in board.winners[0] if k not in ("id", "name", "winners")), "value") \
        if board.winners else "value"
    lines += ["", f"## Per-class winners ({key})", "",
              f"| id | class | best {key} | submission(s) |", "|---|---|---|---|"]
    for w in board.winners:
        lines.append(f"| {_md_cell(w['id'])} | {_md_cell(w['name'])} | {_md_cell(w[key])} | "
                     f"{_md_cell(', '.join(w['winners']) or '—')} |")
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:sans-serif;margin:2em;max-width:70em}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:.2em .5em}
td.n{text-align:right;font-variant-numeric:tabular-nums}tr.failed{color:#a00}
img{max-width:100%}details{margin:.5em 0}"""


def _e(x: Any) -> str:
    """A value as HTML text: :func:`~segeval.leaderboard.runner.visible`, then escaped."""
    return html.escape(visible(cell(x)), quote=True)


def _img(data: bytes, alt: str) -> str:
    return (f'<img alt="{html.escape(visible(alt), quote=True)}" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode("ascii")}"/>')


def to_html(board: Leaderboard, plots: dict[str, bytes] | None = None) -> str:
    """A self-contained HTML page (also well-formed XML) with the plots embedded."""
    plots = plots or {}
    others = _other_metrics(board)
    heads = ["rank", "submission", board.metric, f"{round(board.level * 100)} % CI",
             "beats above", *others]
    out = ['<!DOCTYPE html>', '<html lang="en">', '<head><meta charset="utf-8"/>',
           '<title>segeval leaderboard</title>', f"<style>{_CSS}</style></head>", "<body>",
           "<h1>Leaderboard</h1>", f"<p>{html.escape(_header(board))}</p>"]
    if "leaderboard.png" in plots:
        out.append(f"<p>{_img(plots['leaderboard.png'], 'leaderboard with intervals')}</p>")
    out.append("<table><thead><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in heads)
               + "</tr></thead><tbody>")
    for e in board.ranked():
        m, ci = e["metrics"], e["ci"]
        cells = [f'<td class="n">{_e(e["rank"])}</td>', f"<td>{_e(e['submission'])}</td>",
                 f'<td class="n">{_e(m[board.metric])}</td>',
                 f'<td class="n">{_e(ci["low"])} – {_e(ci["high"])}</td>',
                 f'<td class="n">{_e(e["beats_above"])}</td>']
        cells += [f'<td class="n">{_e(m.get(k))}</td>' for k in others]
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</tbody></table>")
    failed = [e for e in board.entries if e["status"] != "ok"]
    if failed:
        out.append("<h2>Failed submissions</h2><table><thead><tr><th>submission</th>"
                   "<th>reason</th></tr></thead><tbody>")
        out += [f'<tr class="failed"><td>{_e(e["submission"])}</td><td>{_e(e["error"])}</td>'
                "</tr>" for e in failed]
        out.append("</tbody></table>")
    if board.winners:
        key = next(k for k in board.winners[0] if k not in ("id", "name", "winners"))
        out.append(f"<h2>Per-class winners ({html.escape(key)})</h2><table><thead><tr>"
                   f"<th>id</th><th>class</th><th>best {html.escape(key)}</th>"
                   "<th>submission(s)</th></tr></thead><tbody>")
        out += [f'<tr><td class="n">{_e(w["id"])}</td><td>{_e(w["name"])}</td>'
                f'<td class="n">{_e(w[key])}</td><td>{_e(", ".join(w["winners"]) or "—")}</td>'
                "</tr>" for w in board.winners]
        out.append("</tbody></table>")
    shown = [e["submission"] for e in board.ranked()
             if any(k.startswith(e["submission"] + "/") for k in plots)]
    if shown:
        out.append("<h2>Submissions</h2>")
    for name in shown:
        out.append(f"<details><summary>{_e(name)}</summary><p>")
        out += [_img(data, f"{name}: {k.rsplit('/', 1)[-1][:-4]}")
                for k, data in sorted(plots.items()) if k.startswith(name + "/")]
        out.append("</p></details>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def render_plots(board: Leaderboard, plot_top: int = DEFAULT_PLOT_TOP) -> dict[str, bytes]:
    """``{relative path under plots/: PNG bytes}``: the interval chart and, for the
    ``plot_top`` best-ranked submissions, their per-run plots."""
    from segeval.report import plots

    out = {"leaderboard.png": plots.interval_chart(board.entries, board.metric, board.level)}
    for e in board.ranked()[:max(0, plot_top)]:
        document = board.outcomes[e["submission"]].document
        for name, data in plots.result_plots(document or {}, e["submission"]).items():
            out[f"{e['submission']}/{name}"] = data
    return out


def write_reports(board: Leaderboard, out: str | Path, *, plots: bool | None = None,
                  plot_top: int = DEFAULT_PLOT_TOP) -> list[Path]:
    """Write every report file into ``out`` (created if needed); returns the paths written.

    ``plots``: ``True`` requires matplotlib (:class:`~segeval.errors.UsageError` naming the
    ``[plot]`` extra otherwise), ``None`` plots when it is installed, ``False`` never.
    """
    from segeval.report.plots import require_matplotlib

    out = Path(out)
    images: dict[str, bytes] = {}
    if plots is None:
        try:
            require_matplotlib()
            plots = True
        except Exception:
            log.warning("matplotlib is not installed: no plots (pip install 'segeval[plot]')")
            plots = False
    if plots:
        images = render_plots(board, plot_top)
    texts: dict[Path, str | bytes] = {
        out / "leaderboard.json": render.to_json(board.entries),
        out / "leaderboard.csv": render.to_csv(csv_rows(board)),
        out / "leaderboard.md": to_markdown(board),
        out / "leaderboard.html": to_html(board, images),
        out / "per_class_winners.csv": render.to_csv(
            [{**{k: v for k, v in w.items() if k != "winners"},
              "winners": " ".join(w["winners"])} for w in board.winners]),
    }
    for name, o in board.outcomes.items():
        doc = o.document if o.status == "ok" else {"submission": name, "status": o.status,
                                                   "error": o.error}
        texts[out / "submissions" / file_name(name, ".json")] = render.to_json(doc)
    for rel, data in images.items():
        folder, _, base = rel.rpartition("/")
        texts[out / "plots" / (file_name(folder, "") if folder else "") / base] = data
    for folder in {path.parent for path in texts}:
        folder.mkdir(parents=True, exist_ok=True)
    render.write_files(texts)  # all or nothing
    _remove_stale(out, set(texts))
    return list(texts)


#: The longest file name (in UTF-8 bytes) a report file gets; longer names are cut and get a
#: hash (most file systems allow 255 bytes).
_MAX_NAME = 240


def file_name(name: str, suffix: str) -> str:
    """The file (or folder) name of submission ``name`` in the reports: ``name + suffix``, or
    where that is longer than 240 UTF-8 bytes (a long name with many escaped bytes), its start
    and 16 hex digits of its SHA-256.

    >>> file_name("team", ".json")
    'team.json'
    """
    import hashlib

    data = name.encode("utf-8", "surrogateescape")
    if len(data) + len(suffix) <= _MAX_NAME:
        return name + suffix
    head = data[:_MAX_NAME - len(suffix) - 17].decode("utf-8", "ignore")
    return f"{head}~{hashlib.sha256(data).hexdigest()[:16]}{suffix}"


def _remove_stale(out: Path, written: set[Path]) -> None:
    """Remove what an earlier run wrote and this one did not: ``submissions/*.json`` of
    submissions no longer there, ``plots/**/*.png`` no longer drawn, and the plot folders
    left empty. Other files are left alone; a file that cannot be removed is a warning."""
    stale = [p for p in (out / "submissions").glob("*.json") if p not in written]
    plots = out / "plots"
    stale += [p for p in plots.rglob("*.png") if p not in written]
    for path in stale:
        try:
            if path.is_file() or path.is_symlink():
                path.unlink()
        except OSError as e:
            log.warning("%s: stale report file not removed (%s)", path, e.strerror or e)
    if plots.is_dir():
        for folder in sorted((p for p in plots.rglob("*") if p.is_dir()), reverse=True):
            with contextlib.suppress(OSError):  # not empty: something else is in it
                folder.rmdir()
