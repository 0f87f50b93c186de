"""Files in, a result out: :func:`evaluate`, what ``segeval score`` runs, for every format.

The one flow: the format's adapter lists the ground truth (``reference``) and pairs the
predictions with it into a plan (``plan``); the engine runs the plan (:func:`segeval.engine.run`).
Every result has ``task``, ``to_dict()`` (the JSON document), ``per_class()`` (JSON-safe rows)
and ``per_image`` (rows, when asked for).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

from segeval.errors import bad_value
from segeval.formats.base import Options


def evaluate(
    pred: str | os.PathLike[str],
    gt: str | os.PathLike[str],
    format: str = "folder",
    *,
    task: Literal["semantic", "panoptic", "instance"] | None = None,
    split: str | None = None,
    num_classes: int | None = None,
    class_names: Sequence[str] | str | os.PathLike[str] | None = None,
    ignore_index: int | None = 255,
    absent: Literal["nan", "exclude-no-gt", "zero"] = "nan",
    missing: Literal["error", "zero"] = "error",
    gt_folder: str | os.PathLike[str] | None = None,
    pred_folder: str | os.PathLike[str] | None = None,
    pred_ids: Literal["label", "train"] = "label",
    reduce_zero_label: bool = False,
    iiou: bool = True,
    backend: Literal["pycocotools", "faster"] = "pycocotools",
    keep_bbox: bool = False,
    decoder: Literal["auto", "fast", "pillow"] = "auto",
    device: Literal["auto", "cpu", "cuda"] = "auto",
    per_image: bool = False,
    labels: Sequence[int] | str | None = None,
    nsd_tolerance: float = 1.0,
    spacing: Sequence[float] | str | None = None,
    ap: Literal["cityscapes", "coco"] | None = None,
    jobs: int | None = None,
    scheduler: str | None = None,
    progress: Callable[[int, int], Any] | None = None,
) -> Any:
    """Score the predictions at ``pred`` against the ground truth at ``gt``.

    Parameters (each is the ``segeval score`` option of the same name, with the same default;
    a format refuses an option it does not use when it is set to anything but its default):

    pred, gt
        Paths: folders of label PNGs or dataset roots; JSON files for ``coco`` and the
        panoptic formats (see ``docs/cli.md`` for each format's layout).
    format
        ``"voc"``, ``"folder"``, ``"cityscapes"``, ``"coco"``, ``"coco-panoptic"``,
        ``"cityscapes-panoptic"``, ``"ade20k"`` or ``"nifti"`` (3-D medical label volumes:
        Dice, IoU, HD95, ASSD, NSD per case and label; see ``docs/medical.md``).
    task
        One of a format's evaluations: ``"semantic"`` (default for voc, folder, cityscapes),
        ``"panoptic"``, ``"instance"`` (default for coco); e.g. ``format="cityscapes",
        task="instance"``.
    split
        The image list or split folder: voc ``ImageSets/Segmentation/<split>.txt`` (default
        ``val`` under a VOC root), cityscapes ``gtFine/<split>`` (default ``val``), ade20k
        ``annotations/<split>`` (default ``validation``).
    num_classes, class_names
        The classes of the folder format (names: a sequence, or a class-names file: a JSON list,
        a JSON ``{id: name}`` object, or one name a line); voc checks them against its 21.
    ignore_index
        Ground-truth label whose pixels are not scored (default 255; ``None``: none).
    absent
        What a class absent from the ground truth counts as: ``"nan"`` (left out if never
        predicted, 0 if predicted), ``"exclude-no-gt"``, ``"zero"`` (see ``docs/metrics.md``).
    missing
        A ground-truth image without prediction: ``"error"`` (default), or ``"zero"`` (all its
        pixels wrong; no detections; all segments missed).
    gt_folder, pred_folder
        Panoptic formats: the PNG folders (default: the JSON path without ``.json``).
    pred_ids
        cityscapes: predictions hold label ids (``"label"``, official) or train ids 0..18;
        ade20k: predictions hold 1..150 (``"label"``, the SceneParsing submission format, 0 =
        no class) or 0..149 (``"train"``, 255 = no class).
    reduce_zero_label
        folder: mmsegmentation's ``reduce_zero_label`` -- the ground truth's 0 is not scored
        and every other label ``v`` is class ``v - 1`` (the ignore index stays ignored);
        predictions hold 0..C-1. ade20k always reads its ground truth so.
    iiou
        cityscapes: read the instanceIds files and score iIoU (default ``True``).
    backend
        Instance AP: ``"pycocotools"`` or ``"faster"`` (faster-coco-eval; same numbers).
    keep_bbox
        Instance AP: keep the results' ``bbox`` so that box areas decide small/medium/large.
    decoder
        PNG decoder: ``"auto"``, ``"fast"`` (segeval's reader) or ``"pillow"``; all give the
        same arrays.
    device
        ``"cuda"`` counts semantic pairs on this machine's GPU in batches (decoding stays on
        the CPU; extra ``[gpu]``); ``"auto"`` and ``"cpu"`` count on the CPU.
    per_image
        Fill ``result.per_image`` with one row per image (not for instance AP; nifti: one row
        per case and label).
    labels
        nifti: the foreground labels to score (a sequence of non-zero integers, or ``"1,2,3"``;
        default: every non-zero label in the ground truth or the predictions).
    nsd_tolerance
        nifti: the tolerance of the normalised surface Dice, in mm (default 1; a distance
        equal to it counts as within).
    spacing
        nifti: the voxel size in mm along each array axis (``(0.8, 0.8)`` or ``"0.8,0.8"``),
        replacing the headers'; 2-D PNG images have no header and default to 1 x 1.
    ap
        cityscapes ``task="instance"``: ``"cityscapes"`` (``None``, the default: the official
        ``evalInstanceLevelSemanticLabeling`` AP and AP50) or ``"coco"`` (COCO mask AP, as
        detectron2 reports it); see ``docs/instance.md``.
    jobs
        Worker processes (default: all cores; 1: in this process).
    scheduler
        ``None`` / ``"local"`` (this machine, worker processes), ``"threads"`` (this machine,
        ``jobs`` threads of this process: the compiled kernels release the GIL),
        ``"dask-local"`` (a Dask cluster started for the run) or a Dask scheduler address
        ``"tcp://host:8786"`` (extra ``[dask]``).
    progress
        ``progress(done, total)``, called before the work (done 0) and as items finish.

    Returns the format's result (:class:`~segeval.SemanticResult`, a Cityscapes result,
    :class:`~segeval.PanopticResult`, :class:`~segeval.InstanceResult` or, for the cityscapes
    instance task, :class:`~segeval.core.cityscapes_ap.CityscapesAPResult`). Raises
    :class:`~segeval.errors.SegevalError` with one line naming the file or the parameter.

    Example (the bundled example data, from the repository root)::

        result = segeval.evaluate("examples/voc/predictions", "examples/voc/VOC2012", "voc")
        print(result.miou, result.miou.n)
    """
    from segeval.engine import engine_name, run
    from segeval.formats.base import as_tree
    from segeval.formats.registry import get_adapter

    if class_names is not None and isinstance(class_names, str | os.PathLike):
        from segeval.formats.folder import read_class_names

        class_names = read_class_names(Path(class_names))
    elif class_names is not None and not isinstance(class_names, Sequence):
        raise bad_value("class_names", "a sequence of names, a class-names file or None",
                        class_names, function="evaluate")
    options = Options(
        task=task, split=split, num_classes=num_classes,
        class_names=None if class_names is None else tuple(str(n) for n in class_names),
        ignore_index=ignore_index, absent=absent, missing=missing,
        gt_folder=None if gt_folder is None else Path(gt_folder),
        pred_folder=None if pred_folder is None else Path(pred_folder),
        pred_ids=pred_ids, reduce_zero_label=reduce_zero_label, iiou=iiou, backend=backend,
        keep_bbox=keep_bbox, decoder=decoder, device=device, per_image=per_image,
        labels=labels, nsd_tolerance=nsd_tolerance, spacing=spacing,
        ap=ap,
    )
    engine_name(scheduler, device)  # a bad scheduler / device is refused before any reading
    adapter = get_adapter(format, task)
    reference = adapter.reference(Path(gt), options)
    plan = adapter.plan(as_tree(pred), reference, options)
    return run(plan, jobs=jobs, scheduler=scheduler, device=device, progress=progress)
