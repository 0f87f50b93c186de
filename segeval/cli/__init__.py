"""The ``segeval`` command line. It owns the terminal: results on stdout, progress, warnings and
errors on stderr. A user's mistake is one line ``segeval: error: ...`` and exit code 1 (bad data)
or 2 (bad usage), never a traceback. Heavy modules are imported only inside commands, so
``segeval --version`` and ``--help`` start fast."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Any

import click

from segeval import __version__

FORMATS = ("voc", "folder")  # the keys of segeval.formats.registry.ADAPTERS (kept import-free)
FORMATS += tuple(f for f in ("coco", "cityscapes") if f not in FORMATS)  # instance formats
FORMATS += ("coco-panoptic", "cityscapes-panoptic")  # panoptic formats


NO_IGNORE = "none"


class IgnoreIndex(click.ParamType):
    """An integer label, or ``none`` for no ignore index (returned as :data:`NO_IGNORE`)."""

    name = "INT|none"

    def convert(self, value: Any, param: Any, ctx: Any) -> int | str:
        if isinstance(value, int) or value == NO_IGNORE:
            return value
        if str(value).lower() == NO_IGNORE:
            return NO_IGNORE
        try:
            return int(value)
        except ValueError:
            self.fail(f"{value!r} is not an integer or 'none'", param, ctx)


def _set_decoder(decoder: str | None) -> None:
    """``--decoder``: set through the environment, so that every worker process sees it."""
    if decoder is not None:
        from segeval.formats.png import set_decoder

        set_decoder(decoder)  # type: ignore[arg-type]


def _fail(err: Exception, code: int) -> None:
    click.echo(f"segeval: error: {err}", err=True)
    sys.exit(code)


class _StderrHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"segeval: {record.levelname.lower()}: {record.getMessage()}", err=True)


def _setup_logging() -> None:
    log = logging.getLogger("segeval")
    if not any(isinstance(h, _StderrHandler) for h in log.handlers):
        log.addHandler(_StderrHandler())
    log.setLevel(logging.WARNING)
    log.propagate = False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="segeval")
def cli() -> None:
    """Evaluate image segmentation: mIoU and friends, equal to the official tools, fast."""


@cli.command()
@click.option("--pred", "pred", required=True, type=click.Path(exists=True, path_type=Path),
              help="Folder of predicted label PNGs (coco: the results JSON file; panoptic "
              "formats: the prediction JSON).")
@click.option("--gt", "gt", required=True, type=click.Path(exists=True, path_type=Path),
              help="Ground truth: a folder, or a dataset root (VOC2012); coco: the instances "
              "JSON file; panoptic formats: the ground-truth JSON (cityscapes-panoptic: also "
              "the dataset root).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="folder", show_default=True,
              help="How the files are laid out and labelled.")
@click.option("--decoder", type=click.Choice(["auto", "fast", "pillow"]), default=None,
              expose_value=False, callback=lambda ctx, param, value: _set_decoder(value),
              help="PNG decoder: the fast reader (auto: for images of 0.5 MB of pixels or more), "
              "or Pillow for every file; all give identical arrays [default: auto].")
@click.option("--split", default=None, help="Image list to score (voc: ImageSets/Segmentation/"
              "SPLIT.txt; default val when --gt is the VOC root).")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="Number of classes (folder format, when there is no class-names file).")
@click.option("--class-names", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="JSON list / {id: name} object, or one name a line.")
@click.option("--ignore-index", type=IgnoreIndex(), default=None,
              help="Ground-truth label that is not scored; 'none' for none [default: the "
              "format's, 255 for voc and folder].")
@click.option("--absent", type=click.Choice(["nan", "exclude-no-gt", "zero"]), default=None,
              help="What a class absent from the ground truth counts as [default: nan].")
@click.option("--missing", type=click.Choice(["error", "zero"]), default=None,
              help="A missing prediction: an error, or all pixels wrong [default: error].")
@click.option("--gt-folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Panoptic formats: folder of ground-truth PNGs [default: the "
              "--gt JSON path without .json].")
@click.option("--pred-folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Panoptic formats: folder of predicted PNGs [default: the "
              "--pred JSON path without .json].")
@click.option("--pred-ids", type=click.Choice(["label", "train"]), default=None,
              help="cityscapes: predictions hold label ids (official) or train ids 0..18 "
              "[default: label].")
@click.option("--iiou/--no-iiou", default=None,
              help="cityscapes: read the instanceIds files and score iIoU [default: on].")
@click.option("--cityscapes-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="cityscapes: write the official script's result JSON "
              "(resultPixelLevelSemanticLabeling.json) too.")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default=None,
              help="Where to count: cuda decodes on the CPU and counts on the GPU in batches "
              "(needs pip install segeval[gpu]) [default: auto = cpu for files].")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full result as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-class table as CSV.")
@click.option("--per-image", "per_image_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one row per image (CSV, or JSON if the name ends in .json).")
@click.option("--task", type=click.Choice(["semantic", "panoptic", "instance"]), default=None,
              help="Which evaluation of the format [default: semantic; coco: instance].")
@click.option("--backend", type=click.Choice(["pycocotools", "faster"]), default=None,
              help="Instance AP engine: pycocotools, or faster-coco-eval (same numbers; "
              "pip install 'segeval[fast]') [default: pycocotools].")
@click.option("--keep-bbox", is_flag=True, default=None,
              help="Instance AP: keep the results' bbox, so that (as in raw pycocotools) box "
              "areas decide small/medium/large [default: dropped, mask areas decide].")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="Run on Dask: 'dask-local' starts a local cluster, 'tcp://host:8786' uses an "
              "existing one [default: this machine's cores].")
@click.option("--save-state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged statistics (.npz) for 'segeval merge'.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table on stdout.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write plots (PNG) into this folder (needs the [plot] extra).")
def score(pred: Path, gt: Path, fmt: str, json_path: Path | None, csv_path: Path | None,
          per_image_path: Path | None, state_path: Path | None, quiet: bool, jobs: int | None,
          class_names: Path | None, plots_dir: Path | None = None, **options: Any) -> None:
    """Score predicted label maps against ground truth.

    \b
    Examples:
      segeval score --pred results/ --gt VOCdevkit/VOC2012 --format voc
      segeval score --pred preds/ --gt labels/ --num-classes 19 --json result.json
      segeval score --format coco --gt instances.json --pred results.json
      segeval score --format cityscapes --task instance --gt gtFine/val --pred results/
      segeval score --format coco-panoptic --gt panoptic_val2017.json --pred pred.json
      segeval score --format cityscapes --gt cityscapes/ --pred results/ --pred-ids train
    """
    from segeval.errors import SegevalError

    _setup_logging()
    cityscapes_json = options.pop("cityscapes_json", None)
    if cityscapes_json is not None and (fmt != "cityscapes"
                                        or options.get("task") not in (None, "semantic")):
        _fail(Exception("--cityscapes-json: only for --format cityscapes (pixel-level semantic "
                        "labeling)"), 2)
    _check_outputs(json_path, csv_path, per_image_path, state_path, cityscapes_json)
    # format options the user set; the adapter refuses those it does not use
    iiou = options.pop("iiou", None)  # --no-iiou: False is a value here, not "not set"
    options = {k: v for k, v in options.items() if v is not None and v is not False}
    if iiou is not None:
        options["iiou"] = iiou
    if options.get("ignore_index") == NO_IGNORE:
        options["ignore_index"] = None
    try:
        if plots_dir is not None:
            _check_plots_dir(plots_dir)
        if class_names is not None:
            from segeval.formats.folder import read_class_names

            options["class_names"] = read_class_names(class_names)
        result = _run_score(pred, gt, fmt, options, jobs, per_image_path is not None, quiet)
    except SegevalError as e:
        _fail(e, e.exit_code)
    _report(result, json_path, csv_path, per_image_path, state_path, quiet, plots_dir=plots_dir,
            cityscapes_json=cityscapes_json)


def _check_outputs(*paths: Path | None) -> None:
    """Usage errors for output paths, before any work: same file twice, no such folder."""
    outputs = [p for p in paths if p is not None]
    if len({p.resolve() for p in outputs}) < len(outputs):
        _fail(Exception("the output options must name different files"), 2)
    for path in outputs:
        if not path.parent.is_dir():
            _fail(Exception(f"{path}: the folder {path.parent} does not exist"), 2)


def _report(result: Any, json_path: Path | None, csv_path: Path | None,
            per_image_path: Path | None, state_path: Path | None, quiet: bool,
            plots_dir: Path | None = None, cityscapes_json: Path | None = None) -> None:
    """Write the requested files (all or none), then print the table unless ``quiet``."""
    from segeval.errors import SegevalError
    from segeval.report import render

    files: dict[Path, str | bytes] = {}
    try:
        if json_path:
            files[json_path] = render.to_json(result.to_dict())
        if csv_path:
            files[csv_path] = render.to_csv(result.per_class())
        if per_image_path:
            files[per_image_path] = render.per_image_text(result.per_image or [], per_image_path)
        if state_path:
            from segeval.engine.state import state_bytes

            files[state_path] = state_bytes(result)
        if plots_dir is not None:
            from segeval.report import plots

            plots_dir.mkdir(exist_ok=True)
            for name, data in plots.result_plots(result.to_dict()).items():
                files[plots_dir / name] = data
        if cityscapes_json:
            from segeval.formats.cityscapes import official_json

            files[cityscapes_json] = official_json(result)
        render.write_files(files)
    except SegevalError as e:
        _fail(e, e.exit_code)
    except OSError as e:
        _fail(Exception(f"{e.filename or 'output'}: cannot write ({e.strerror or e})"), 1)
    if not quiet:
        click.echo(render.table(result), nl=False)


def _check_plots_dir(folder: Path) -> None:
    """``score --plots``: matplotlib installed, and a folder that is or can be made there."""
    from segeval.report.plots import require_matplotlib

    require_matplotlib()
    if (folder.exists() and not folder.is_dir()) or not folder.parent.is_dir():
        _fail(Exception(f"{folder}: not a folder, nor one that can be made there"), 2)


@cli.command()
@click.argument("states", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged result as JSON.")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged per-class table as CSV.")
@click.option("--save-state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged statistics as one state file.")
@click.option("--quiet", "-q", is_flag=True, help="No table on stdout.")
def merge(states: tuple[Path, ...], json_path: Path | None, csv_path: Path | None,
          state_path: Path | None, quiet: bool) -> None:
    """Add up states saved by 'segeval score --save-state' (shards of one evaluation).

    \b
    Example:
      segeval score --gt gt/ --pred shard1/ --num-classes 19 --save-state s1.npz
      segeval score --gt gt/ --pred shard2/ --num-classes 19 --save-state s2.npz
      segeval merge s1.npz s2.npz --json result.json
    """
    from segeval.errors import SegevalError

    _setup_logging()
    _check_outputs(json_path, csv_path, state_path)
    try:
        from segeval.engine.state import merge_states

        result = merge_states(list(states))
    except SegevalError as e:
        _fail(e, e.exit_code)
    _report(result, json_path, csv_path, None, state_path, quiet)


def _run_score(pred: Path, gt: Path, fmt: str, options: dict[str, Any], jobs: int | None,
               per_image: bool, quiet: bool) -> Any:
    from segeval.cli.progress import progress_bar
    from segeval.scoring import evaluate

    with progress_bar("scoring", quiet) as (on_start, update):
        return evaluate(pred, gt, fmt, jobs=jobs, per_image=per_image, progress=update,
                        on_start=on_start, **options)


# Commands defined in their own packages (click only at import; the work is imported lazily).
from segeval.cli.leaderboard import register as _register_leaderboard  # noqa: E402
from segeval.cli.model import model as _model_group  # noqa: E402

_register_leaderboard(cli)  # segeval leaderboard, segeval codabench
cli.add_command(_model_group)  # segeval model make-data | train | predict


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: click's usage errors, too, are one line on stderr."""
    try:
        code = cli.main(args=argv, prog_name="segeval", standalone_mode=False)
    except click.UsageError as e:
        hint = f" (see '{e.ctx.command_path} --help')" if e.ctx else ""
        _fail(Exception(e.format_message() + hint), e.exit_code)
    except click.ClickException as e:
        _fail(Exception(e.format_message()), e.exit_code)
    except click.Abort:
        click.echo("segeval: aborted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":  # pragma: no cover
    main()
