"""``segeval leaderboard`` and ``segeval codabench``: thin shells over
:func:`segeval.leaderboard.run_leaderboard` and :func:`segeval.leaderboard.challenge.codabench`.
Like the rest of the CLI they import nothing heavy until they run."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from segeval.cli.common import IgnoreIndex, fail, read_class_names, setup_logging, user_errors
from segeval.formats.registry import FORMATS


def _format_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options ``segeval score`` passes to the format adapter, for another command."""
    options = [
        click.option("--format", "fmt", type=click.Choice(FORMATS), default="folder",
                     show_default=True, help="How the files are laid out and labelled."),
        click.option("--task", default=None, help="Evaluation task [default: the format's; "
                     "semantic for voc and folder]."),
        click.option("--split", default=None, help="Image list to score (voc)."),
        click.option("--num-classes", type=click.IntRange(min=1), default=None,
                     help="Number of classes (folder format, without a class-names file)."),
        click.option("--class-names", type=click.Path(exists=True, dir_okay=False,
                     path_type=Path), default=None,
                     help="JSON list / {id: name} object, or one name a line."),
        click.option("--ignore-index", type=IgnoreIndex(), default=255, show_default=True,
                     help="Ground-truth label that is not scored; 'none' for none."),
        click.option("--absent", type=click.Choice(["nan", "exclude-no-gt", "zero"]),
                     default="nan", show_default=True,
                     help="What a class absent from the ground truth counts as."),
        click.option("--missing", type=click.Choice(["error", "zero"]), default="error",
                     show_default=True, help="A missing prediction fails the submission "
                     "(error), or counts as all pixels wrong (zero)."),
        click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
                     help="Worker processes [default: all cores]."),
        click.option("--max-bytes", type=click.IntRange(min=1), default=None,
                     help="Largest total uncompressed size of a submission archive "
                     "[default: 4 GiB]."),
        click.option("--labels", default=None, metavar="1,2,3", callback=_label_list,
                     help="nifti: the foreground labels to score (with them, intervals over "
                     "cases) [default: every non-zero label in the ground truth or the "
                     "predictions, no intervals]."),
        click.option("--nsd-tolerance", type=click.FloatRange(min=0), default=1.0,
                     show_default=True, metavar="MM",
                     help="nifti: tolerance of the normalised surface Dice, in mm."),
    ]
    for option in reversed(options):
        f = option(f)
    return f


def _label_list(ctx: click.Context, param: click.Parameter, value: str | None
                ) -> tuple[int, ...] | None:
    """``--labels 1,2,3`` as integers (click's usage error for anything else)."""
    if value is None:
        return None
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integer "
                                 f"labels") from None


def _options(options: dict[str, Any]) -> dict[str, Any]:
    """The options for the Python API: the class-names file read, unset ones left out."""
    options = dict(options)
    options["class_names"] = read_class_names(options.get("class_names"))
    return {k: v for k, v in options.items() if v is not None or k == "ignore_index"}


def _summary(board: Any) -> str:
    from segeval.report.render import aligned, cell

    level = f"{round(board.level * 100)}% CI ({'BCa' if board.ci == 'bca' else board.ci})"
    rows = [("rank", "submission", board.metric, level, "beats above")]
    for e in board.ranked():
        rows.append((str(e["rank"]), e["submission"], cell(e["metrics"][board.metric]),
                     f"{cell(e['ci']['low'])}-{cell(e['ci']['high'])}",
                     cell(e["beats_above"], 3)))
    lines = aligned(rows)
    failed = [e for e in board.entries if e["status"] != "ok"]
    if failed:
        lines += ["", f"{len(failed)} failed:"]
        lines += [f"  {e['submission']}: {e['error']}" for e in failed]
    return "\n".join(lines) + "\n"


@click.command()
@click.option("--gt", "gt", required=True, type=click.Path(exists=True, path_type=Path),
              help="Ground truth: a folder, or a dataset root (VOC2012); for the panoptic "
              "formats the ground-truth JSON.")
@click.option("--submissions", required=True, type=click.Path(exists=True, file_okay=False,
              path_type=Path), help="Folder whose sub-folders and .zip files are the "
              "submissions.")
@_format_options
@click.option("--metric", default=None, help="Metric to rank by [default: the task's: "
              "miou for semantic, pq for panoptic].")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              default=Path("leaderboard"), show_default=True, help="Folder for the reports.")
@click.option("--resamples", type=click.IntRange(min=1), default=2000, show_default=True,
              help="Bootstrap resamples.")
@click.option("--level", type=click.FloatRange(0, 1, min_open=True, max_open=True),
              default=0.95, show_default=True, help="Confidence level of the intervals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Bootstrap seed.")
@click.option("--ci", type=click.Choice(["bca", "percentile"]), default="bca", show_default=True,
              help="Interval method: bias-corrected and accelerated bootstrap (as "
              "scipy.stats.bootstrap), or the plain percentile bootstrap.")
@click.option("--no-cache", is_flag=True, help="Neither read nor write the result cache "
              "(OUT/leaderboard-cache.sqlite).")
@click.option("--plots/--no-plots", default=None, help="Draw plots (needs the [plot] "
              "extra) [default: when matplotlib is installed].")
@click.option("--plot-top", type=click.IntRange(min=0), default=10, show_default=True,
              help="Per-submission plots for this many best-ranked submissions.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table on stdout.")
def leaderboard(gt: Path, submissions: Path, fmt: str, out: Path, quiet: bool,
                no_cache: bool, plots: bool | None, plot_top: int, **options: Any) -> None:
    """Rank many submissions against one ground truth, with confidence intervals.

    Every sub-folder or .zip file in --submissions is one submission. Writes
    leaderboard.{csv,json,md,html}, one result JSON per submission and plots into --out,
    and keeps a result cache there so that a re-run scores only new submissions.

    \b
    Example:
      segeval leaderboard --gt VOC2012 --submissions subs/ --format voc --out board/
    """
    setup_logging()
    if out.exists() and not out.is_dir():
        fail(f"{out}: not a folder", 2)
    if not out.parent.is_dir():
        fail(f"{out}: the folder {out.parent} does not exist", 2)
    with user_errors(out):
        if plots:
            from segeval.report.plots import require_matplotlib

            require_matplotlib()
        opts = _options(options)
        out.mkdir(exist_ok=True)
        cache = None if no_cache else out / "leaderboard-cache.sqlite"
        board = _run(gt, submissions, fmt, out, cache, quiet, opts)
        from segeval.leaderboard.report import write_reports

        write_reports(board, out, plots=plots, plot_top=plot_top)
    if not quiet:
        click.echo(_summary(board), nl=False)


@click.command()
@click.argument("input_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("output_dir", type=click.Path(file_okay=False, path_type=Path))
@_format_options
def codabench(input_dir: Path, output_dir: Path, fmt: str, **options: Any) -> None:
    """Codabench/CodaLab scoring program: INPUT_DIR/ref against INPUT_DIR/res.

    Writes OUTPUT_DIR/scores.json and OUTPUT_DIR/scores.txt (one 'metric: value' a line).

    \b
    Example (the scoring program's command):
      segeval codabench /app/input /app/output --format voc
    """
    setup_logging()
    with user_errors(output_dir):
        from segeval.leaderboard.challenge import codabench as run_codabench

        opts = _options(options)
        scores = run_codabench(input_dir, output_dir, fmt, **opts)
    for k, v in scores.items():
        click.echo(f"{k}: {'n/a' if v is None else f'{v:.6f}'}")


def _run(gt: Path, submissions: Path, fmt: str, out: Path, cache: Path | None, quiet: bool,
         options: dict[str, Any]) -> Any:
    from segeval.cli.progress import progress_bar
    from segeval.leaderboard.runner import run_leaderboard

    with progress_bar("leaderboard", quiet) as progress:
        return run_leaderboard(gt, submissions, fmt, cache=cache, progress=progress,
                               exclude=[out], **options)
