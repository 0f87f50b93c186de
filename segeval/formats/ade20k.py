"""ADE20K, the MIT SceneParsing benchmark (``ADEChallengeData2016``): the adapter.

**Ground truth**: ``annotations/<split>/<name>.png`` below the dataset root (``split`` default
``validation``; ``gt`` may also be the ``annotations`` folder or the split folder itself).
Pixel values are 0 ("other": not scored) and 1..150, the 150 classes of
:data:`CLASS_NAMES`. They are read with mmsegmentation's ``reduce_zero_label`` rule (0 -> not
scored, ``v`` -> class ``v - 1``; see :class:`~segeval.formats.semantic.LabelMap`); 255 is
not scored either, as in mmsegmentation. Any other value is an error naming the file.

**Predictions**: ``<name>.png`` below ``pred`` (the path below the folder without ``.png`` is
the key, as for the folder format). With ``pred_ids="label"`` (default) they hold 1..150, the
SceneParsing challenge's submission format (mmsegmentation writes ``class + 1`` for it); 0 is
"no class" (wrong for every class, a false positive of none, as in the challenge's
``intersectionAndUnion``). With ``pred_ids="train"`` they hold 0..149 (a model's argmax) and
255 is "no class". Any other value is an error naming the file.

**Numbers**: those of mmsegmentation's ``IoUMetric`` (``aAcc``, ``mIoU``, ``mAcc``) on
``ADE20KDataset`` (``reduce_zero_label=True``) and of Hugging Face evaluate's ``mean_iou``
with ``reduce_labels=True``, as fractions under segeval's semantic keys
(``pixel_accuracy``, ``miou``, ``mean_pixel_accuracy``, per-class rows with the names); see
``docs/metrics.md`` for where those tools and the challenge's own code differ.

The pairs are scored by :func:`segeval.formats.semantic.semantic_plan`: the label mapping is
applied in the worker to each decoded image, before the one count.
"""

from __future__ import annotations

from pathlib import Path

from segeval.errors import MissingFileError
from segeval.formats.base import Folder, Options, Plan, Tree, png_files, require_folder
from segeval.formats.semantic import LabelMap, SemanticReference, semantic_plan

FORMAT = "ade20k"
TASK = "semantic"
OPTIONS = frozenset({"split", "pred_ids", "absent", "missing"})

#: The ignore index after ``reduce_zero_label`` (mmsegmentation's, hard-coded there).
IGNORE_INDEX = 255

#: The 150 classes, in order (class ``i`` is ground-truth value ``i + 1``): the first name of
#: each entry of the SceneParsing benchmark's ``objectInfo150`` list (CSAILVision/sceneparsing).
#: They are mmsegmentation's ``ADE20KDataset`` class names but for two: mmseg has ``"bed "``
#: (the list's trailing space kept) and ``"television receiver"`` (the entry's second name).
CLASS_NAMES: tuple[str, ...] = (
    "wall", "building", "sky", "floor", "tree", "ceiling", "road", "bed", "windowpane",
    "grass", "cabinet", "sidewalk", "person", "earth", "door", "table", "mountain", "plant",
    "curtain", "chair", "car", "water", "painting", "sofa", "shelf", "house", "sea", "mirror",
    "rug", "field", "armchair", "seat", "fence", "desk", "rock", "wardrobe", "lamp", "bathtub",
    "railing", "cushion", "base", "box", "column", "signboard", "chest of drawers", "counter",
    "sand", "sink", "skyscraper", "fireplace", "refrigerator", "grandstand", "path", "stairs",
    "runway", "case", "pool table", "pillow", "screen door", "stairway", "river", "bridge",
    "bookcase", "blind", "coffee table", "toilet", "flower", "book", "hill", "bench",
    "countertop", "stove", "palm", "kitchen island", "computer", "swivel chair", "boat", "bar",
    "arcade machine", "hovel", "bus", "towel", "light", "truck", "tower", "chandelier",
    "awning", "streetlight", "booth", "television", "airplane", "dirt track", "apparel",
    "pole", "land", "bannister", "escalator", "ottoman", "bottle", "buffet", "poster", "stage",
    "van", "ship", "fountain", "conveyer belt", "canopy", "washer", "plaything",
    "swimming pool", "stool", "barrel", "basket", "waterfall", "tent", "bag", "minibike",
    "cradle", "oven", "ball", "food", "step", "tank", "trade name", "microwave", "pot",
    "animal", "bicycle", "lake", "dishwasher", "screen", "blanket", "sculpture", "hood",
    "sconce", "vase", "traffic light", "tray", "ashcan", "fan", "pier", "crt screen", "plate",
    "monitor", "bulletin board", "shower", "radiator", "glass", "clock", "flag",
)

#: How the prediction files hold the classes, by ``pred_ids``.
PRED_LABELS = {
    "label": LabelMap(reduce_zero_label=True, pred_offset=1, pred_none=(0,)),
    "train": LabelMap(reduce_zero_label=True, pred_offset=0, pred_none=(IGNORE_INDEX,)),
}


def annotation_folder(gt: Path, split: str | None) -> Path:
    """The folder of ground-truth PNGs that ``gt`` names (see the module docstring)."""
    name = split or "validation"
    if (gt / "annotations").is_dir():
        folder = gt / "annotations" / name
    elif (gt / name).is_dir() or split is not None:
        folder = gt / name
    else:
        return gt
    if not folder.is_dir():
        raise MissingFileError(f"{folder}: no such folder (the ADE20K annotations of the split "
                               f"{name!r})")
    return folder


def reference(gt: Path, options: Options) -> SemanticReference:
    """List the ADE20K ground truth under ``gt``: every PNG of its annotations folder."""
    options.check(FORMAT, OPTIONS)
    gt = Path(gt)
    require_folder(gt, "ground-truth")
    folder = annotation_folder(gt, options.split)
    gt_files = png_files(Folder(folder))
    if not gt_files:
        raise MissingFileError(f"{folder}: no ground-truth PNG files found")
    return SemanticReference(FORMAT, gt_files, CLASS_NAMES, IGNORE_INDEX,
                             PRED_LABELS[options.pred_ids])


def plan(pred: Tree, ref: SemanticReference, options: Options) -> Plan:
    """Pair the PNGs in ``pred`` with ``ref`` by their path without ``.png``."""
    return semantic_plan(pred, ref, options)
