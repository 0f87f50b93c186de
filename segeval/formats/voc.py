"""Pascal VOC semantic segmentation (``SegmentationClass``).

Ground truth is a palette PNG per image whose *indices* are the classes 0..20 (0 = background)
and 255 = void (object boundaries and "difficult" objects); the colours are only for viewing and
are never used. Predictions are ``<id>.png`` in the prediction folder, palette or 8-bit grey,
like the official ``comp5``/``comp6`` results.

``gt`` may be the ``SegmentationClass`` folder itself (every PNG in it is scored, or the ids of
``../ImageSets/Segmentation/<split>.txt`` when ``split`` is given), the ``VOC2012`` root (the
list of ``split``, default ``val``, is required), or a ``VOCdevkit`` folder holding one
``VOC20xx`` root.
"""

from __future__ import annotations

from pathlib import Path

from segeval.errors import FileFormatError, MissingFileError, UsageError
from segeval.formats.base import File, Folder, Options, Plan, Tree, png_files, require_folder
from segeval.formats.semantic import OPTIONS, SemanticReference, semantic_plan

TASK = "semantic"

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
IGNORE_INDEX = 255


def voc_root(gt: Path) -> Path | None:
    """The ``VOC20xx`` folder that ``gt`` names, or ``None`` if it is a plain PNG folder."""
    if (gt / "SegmentationClass").is_dir():
        return gt
    roots = sorted(p for p in gt.glob("VOC20*") if (p / "SegmentationClass").is_dir())
    if len(roots) > 1:
        names = ", ".join(p.name for p in roots)
        raise UsageError(f"{gt}: holds several VOC roots ({names}); give one of them as the "
                         f"ground truth")
    return roots[0] if roots else None


def read_list(list_file: Path) -> list[str]:
    """The image ids of a VOC image list (``ImageSets/Segmentation/<split>.txt``)."""
    try:
        with open(list_file, encoding="utf-8") as f:
            return [line.split()[0] for line in f if line.strip()]
    except UnicodeDecodeError as e:
        raise FileFormatError(f"{list_file}: the image list is not UTF-8 text (byte "
                              f"{e.start})") from None


def reference(gt: Path, options: Options) -> SemanticReference:
    """List the VOC ground truth under ``gt`` (see the module docstring)."""
    options.check("voc", OPTIONS)
    num_classes, class_names, split = options.num_classes, options.class_names, options.split
    if num_classes not in (None, len(CLASS_NAMES)):
        raise UsageError(f"the voc format has {len(CLASS_NAMES)} classes, not num_classes "
                         f"{num_classes}", parameters=("num_classes",))
    if class_names is not None and len(class_names) != len(CLASS_NAMES):
        raise UsageError(f"the voc format has {len(CLASS_NAMES)} classes, not the "
                         f"{len(class_names)} names of the class-names file",
                         parameters=("class_names",))
    gt = Path(gt)
    require_folder(gt, "ground-truth")
    root = voc_root(gt)
    seg = root / "SegmentationClass" if root else gt
    list_file = None
    if root is not None:
        list_file = root / "ImageSets" / "Segmentation" / f"{split or 'val'}.txt"
    elif split is not None:
        list_file = gt.parent / "ImageSets" / "Segmentation" / f"{split}.txt"
    tree = Folder(seg)
    if list_file is not None:
        if not list_file.is_file():
            raise MissingFileError(f"{list_file}: image list for split {split or 'val'!r} "
                                   f"not found")
        ids = read_list(list_file)
        gt_files = {i: File(tree, f"{i}.png") for i in ids}
        absent = [i for i in ids if not (seg / f"{i}.png").is_file()]
        if absent:
            raise MissingFileError(
                f"{list_file}: {len(absent)} listed images have no ground truth in {seg} "
                f"(first: {absent[0]}.png)"
            )
    else:
        gt_files = png_files(tree)
    if not gt_files:
        raise MissingFileError(f"{seg}: no ground-truth PNG files found")
    return SemanticReference("voc", gt_files, tuple(class_names or CLASS_NAMES),
                             options.ignore_index)


def plan(pred: Tree, ref: SemanticReference, options: Options) -> Plan:
    """Pair the predictions in ``pred`` with ``ref`` by image id."""
    return semantic_plan(pred, ref, options)
