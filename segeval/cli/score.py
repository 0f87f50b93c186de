"""``segeval score`` and ``segeval merge``: one evaluation, or the sum of saved shards.

``score``'s options are the parameters of :func:`segeval.evaluate`, with the same names (flags
spelled ``--pred-ids`` for ``pred_ids``) and the same defaults, plus the output options
(``--json``, ``--csv``, ``--per-image``, ``--save-state``, ``--plots``,
``--cityscapes-json``, ``--quiet``). A test keeps the two in step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from segeval.cli.common import (
    IgnoreIndex,
    check_outputs,
    fail,
    is_stdout,
    read_class_names,
    setup_logging,
    user_errors,
)
from segeval.formats.registry import FORMATS

#: ``score`` options that only say where or how to write results (not parameters of evaluate).
OUTPUT_OPTIONS = ("json_path", "csv_path", "per_image_path", "state_path", "quiet", "plots_dir",
                  "cityscapes_json")


@click.command()
@click.option("--pred", "pred", required=True, type=click.Path(exists=True, path_type=Path),
              help="Folder of predicted label PNGs (coco: the results JSON file; panoptic "
              "formats: the prediction JSON).")
@click.option("--gt", "gt", required=True, type=click.Path(exists=True, path_type=Path),
              help="Ground truth: a folder, or a dataset root (VOC2012); coco: the instances "
              "JSON file; panoptic formats: the ground-truth JSON (cityscapes-panoptic: also "
              "the dataset root).")
@click.option("--format", "format", type=click.Choice(FORMATS), default="folder",
              show_default=True, help="How the files are laid out and labelled.")
@click.option("--decoder", type=click.Choice(["auto", "fast", "pillow"]), default="auto",
              show_default=True, envvar="SEGEVAL_PNG_DECODER",
              help="PNG decoder: the fast reader (auto: for images of 0.5 MB of pixels or more), "
              "or Pillow for every file; all give identical arrays (also SEGEVAL_PNG_DECODER).")
@click.option("--split", default=None, help="Image list to score (voc: ImageSets/Segmentation/"
              "SPLIT.txt; default val when --gt is the VOC root).")
@click.option("--num-classes", type=click.IntRange(min=1), default=None,
              help="Number of classes (folder format, when there is no class-names file).")
@click.option("--class-names", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              default=None, help="JSON list / {id: name} object, or one name a line.")
@click.option("--ignore-index", type=IgnoreIndex(), default=255, show_default=True,
              help="Ground-truth label that is not scored; 'none' for none.")
@click.option("--absent", type=click.Choice(["nan", "exclude-no-gt", "zero"]), default="nan",
              show_default=True, help="What a class absent from the ground truth counts as.")
@click.option("--missing", type=click.Choice(["error", "zero"]), default="error",
              show_default=True, help="A missing prediction: an error, or all pixels wrong.")
@click.option("--gt-folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Panoptic formats: folder of ground-truth PNGs [default: the "
              "--gt JSON path without .json].")
@click.option("--pred-folder", type=click.Path(exists=True, file_okay=False, path_type=Path),
              default=None, help="Panoptic formats: folder of predicted PNGs [default: the "
              "--pred JSON path without .json].")
@click.option("--pred-ids", type=click.Choice(["label", "train"]), default="label",
              show_default=True, help="cityscapes: predictions hold label ids (official) or "
              "train ids 0..18; ade20k: 1..150 (official) or 0..149.")
@click.option("--reduce-zero-label", is_flag=True, default=False,
              help="folder: mmsegmentation's reduce_zero_label: ground-truth 0 is not scored, "
              "every other label v is class v-1 (ade20k always).")
@click.option("--iiou/--no-iiou", default=True,
              help="cityscapes: read the instanceIds files and score iIoU [default: on].")
@click.option("--cityscapes-json", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="cityscapes: write the official script's result JSON too "
              "(resultPixelLevelSemanticLabeling.json; --task instance: "
              "resultInstanceLevelSemanticLabeling.json).")
@click.option("--labels", default=None, metavar="1,2,3",
              help="nifti: the foreground labels to score [default: every non-zero label in "
              "the ground truth or the predictions].")
@click.option("--nsd-tolerance", type=click.FloatRange(min=0), default=1.0, show_default=True,
              metavar="MM", help="nifti: tolerance of the normalised surface Dice, in mm.")
@click.option("--spacing", default=None, metavar="MM,MM[,MM]",
              help="nifti: voxel size in mm per array axis, replacing the headers' (2-D PNG "
              "images: default 1,1).")
@click.option("--jobs", "-j", type=click.IntRange(min=1), default=None,
              help="Worker processes [default: all cores].")
@click.option("--device", type=click.Choice(["auto", "cpu", "cuda"]), default="auto",
              show_default=True, help="Where to count: cuda decodes on the CPU and counts on the "
              "GPU in batches (needs pip install segeval[gpu]); auto = cpu for files.")
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the full result as JSON (- for stdout).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the per-class table as CSV (- for stdout).")
@click.option("--per-image", "per_image_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write one row per image (CSV, or JSON if the name ends in .json; - for "
              "stdout, CSV).")
@click.option("--task", type=click.Choice(["semantic", "panoptic", "instance"]), default=None,
              help="Which evaluation of the format [default: semantic; coco: instance].")
@click.option("--backend", type=click.Choice(["pycocotools", "faster"]), default="pycocotools",
              show_default=True, help="Instance AP engine: pycocotools, or faster-coco-eval "
              "(same numbers; pip install 'segeval[fast]').")
@click.option("--ap", type=click.Choice(["cityscapes", "coco"]), default=None,
              help="cityscapes --task instance: the official AP of cityscapesScripts' "
              "evalInstanceLevelSemanticLabeling (cityscapes), or COCO mask AP (coco) "
              "[default: cityscapes].")
@click.option("--keep-bbox", is_flag=True, default=False,
              help="Instance AP: keep the results' bbox, so that (as in raw pycocotools) box "
              "areas decide small/medium/large [default: dropped, mask areas decide].")
@click.option("--scheduler", default=None, metavar="ADDRESS",
              help="'threads': this machine's cores as threads of one process; Dask: "
              "'dask-local' starts a local cluster, 'tcp://host:8786' uses an existing one "
              "[default: this machine's cores as worker processes].")
@click.option("--save-state", "state_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged statistics (.npz) for 'segeval merge'.")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar and no table on stdout.")
@click.option("--plots", "plots_dir", type=click.Path(file_okay=False, path_type=Path),
              default=None, help="Write plots (PNG) into this folder (needs the [plot] extra).")
def score(pred: Path, gt: Path, format: str, json_path: Path | None, csv_path: Path | None,
          per_image_path: Path | None, state_path: Path | None, quiet: bool,
          class_names: Path | None, plots_dir: Path | None, cityscapes_json: Path | None,
          **options: Any) -> None:
    """Score predicted label maps against ground truth.

    \b
    Examples:
      segeval score --pred results/ --gt VOCdevkit/VOC2012 --format voc
      segeval score --pred preds/ --gt labels/ --num-classes 19 --json result.json
      segeval score --format coco --gt instances.json --pred results.json
      segeval score --format cityscapes --task instance --gt gtFine/val --pred results/
      segeval score --format coco-panoptic --gt panoptic_val2017.json --pred pred.json
      segeval score --format cityscapes --gt cityscapes/ --pred results/ --pred-ids train
      segeval score --format ade20k --gt ADEChallengeData2016 --pred preds/
      segeval score --format nifti --gt labelsTs/ --pred preds/ --per-image cases.csv
    """
    setup_logging()
    if cityscapes_json is not None and (format != "cityscapes"
                                        or options.get("task") not in (None, "semantic",
                                                                       "instance")
                                        or (options.get("task") == "instance"
                                            and options.get("ap") == "coco")):
        fail("--cityscapes-json: only for --format cityscapes (pixel-level semantic labeling, "
             "or --task instance with the official AP, not --ap coco)", 2)
    check_outputs(json_path, csv_path, per_image_path, state_path, cityscapes_json)
    with user_errors():
        if plots_dir is not None:
            _check_plots_dir(plots_dir)
        if state_path is not None:
            _check_state_support(format, options.get("task"))
        result = _run_score(pred, gt, format, read_class_names(class_names), options,
                            per_image=per_image_path is not None, quiet=quiet)
    _report(result, json_path, csv_path, per_image_path, state_path, quiet, plots_dir=plots_dir,
            cityscapes_json=cityscapes_json)


def _run_score(pred: Path, gt: Path, fmt: str, class_names: tuple[str, ...] | None,
               options: dict[str, Any], *, per_image: bool, quiet: bool) -> Any:
    from segeval.cli.progress import progress_bar
    from segeval.scoring import evaluate

    with progress_bar("scoring", quiet) as progress:
        return evaluate(pred, gt, fmt, class_names=class_names, per_image=per_image,
                        progress=progress, **options)


def _report(result: Any, json_path: Path | None, csv_path: Path | None,
            per_image_path: Path | None, state_path: Path | None, quiet: bool,
            plots_dir: Path | None = None, cityscapes_json: Path | None = None) -> None:
    """Write the requested files (all or none), then print the table unless ``quiet``: on
    stdout, or on stderr when a file goes to stdout (``--json -``)."""
    from segeval.report import render

    files: dict[Path, str | bytes] = {}
    with user_errors():
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
            if result.task == "instance":
                from segeval.formats.cityscapes.instance import official_json
            else:
                from segeval.formats.cityscapes import official_json

            files[cityscapes_json] = official_json(result)
        render.write_files(files)
    if not quiet:
        click.echo(render.table(result), nl=False, err=any(is_stdout(p) for p in files))


def _check_state_support(fmt: str, task: str | None) -> None:
    """``score --save-state``: a usage error, before scoring, for a task whose statistics
    cannot be saved and added (instance AP)."""
    from segeval.engine.state import TASKS
    from segeval.formats.registry import get_adapter

    kind = get_adapter(fmt, task).TASK
    if kind not in TASKS and f"{kind}/{fmt}" not in TASKS:
        fail(f"--save-state: {kind} evaluation ({fmt}) has no saved state to merge (COCO-style "
             f"AP is not a sum of per-image statistics); score all images in one run", 2)


def _check_plots_dir(folder: Path) -> None:
    """``score --plots``: matplotlib installed, and a folder that is or can be made there."""
    from segeval.report.plots import require_matplotlib

    require_matplotlib()
    if (folder.exists() and not folder.is_dir()) or not folder.parent.is_dir():
        fail(f"{folder}: not a folder, nor one that can be made there", 2)


@click.command()
@click.argument("states", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "json_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged result as JSON (- for stdout).")
@click.option("--csv", "csv_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the merged per-class table as CSV (- for stdout).")
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
    setup_logging()
    check_outputs(json_path, csv_path, state_path)
    with user_errors():
        from segeval.engine.state import merge_states

        result = merge_states(list(states))
    _report(result, json_path, csv_path, None, state_path, quiet)
