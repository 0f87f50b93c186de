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

from segeval.errors import MissingFileError, UsageError
from segeval.formats import SemanticDataset, pair_by_name, png_files

CLASS_NAMES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)
IGNORE_INDEX = 255


def _voc_root(gt: Path) -> Path | None:
    """The ``VOC20xx`` folder that ``gt`` names, or ``None`` if it is a plain PNG folder."""
    if (gt / "SegmentationClass").is_dir():
        return gt
    roots = sorted(p for p in gt.glob("VOC20*") if (p / "SegmentationClass").is_dir())
    if len(roots) > 1:
        names = ", ".join(p.name for p in roots)
        raise UsageError(f"{gt}: holds several VOC roots ({names}); pass one of them as --gt")
    return roots[0] if roots else None


def _read_list(list_file: Path) -> list[str]:
    with open(list_file, encoding="utf-8") as f:
        return [line.split()[0] for line in f if line.strip()]


def load(
    pred: Path,
    gt: Path,
    *,
    split: str | None = None,
    num_classes: int | None = None,
    class_names: tuple[str, ...] | None = None,
    ignore_index: int | None = IGNORE_INDEX,
) -> SemanticDataset:
    """Pair VOC ground truth under ``gt`` with predictions under ``pred``."""
    if num_classes not in (None, len(CLASS_NAMES)):
        raise UsageError(f"the voc format has {len(CLASS_NAMES)} classes, not --num-classes "
                         f"{num_classes}")
    if class_names is not None and len(class_names) != len(CLASS_NAMES):
        raise UsageError(f"the voc format has {len(CLASS_NAMES)} classes, not the "
                         f"{len(class_names)} names of the class-names file")
    pred, gt = Path(pred), Path(gt)
    root = _voc_root(gt)
    seg = root / "SegmentationClass" if root else gt
    list_file = None
    if root is not None:
        list_file = root / "ImageSets" / "Segmentation" / f"{split or 'val'}.txt"
    elif split is not None:
        list_file = gt.parent / "ImageSets" / "Segmentation" / f"{split}.txt"
    if list_file is not None:
        if not list_file.is_file():
            raise MissingFileError(f"{list_file}: image list for split {split or 'val'!r} "
                                   f"not found")
        ids = _read_list(list_file)
        gt_files = {i: seg / f"{i}.png" for i in ids}
        absent = [p for p in gt_files.values() if not p.is_file()]
        if absent:
            raise MissingFileError(
                f"{list_file}: {len(absent)} listed images have no ground truth in {seg} "
                f"(first: {absent[0].name})"
            )
    else:
        gt_files = png_files(seg)
    if not gt_files:
        raise MissingFileError(f"{seg}: no ground-truth PNG files found")
    return pair_by_name("voc", gt_files, pred, class_names or CLASS_NAMES, ignore_index)
