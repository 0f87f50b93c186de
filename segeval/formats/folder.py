"""Plain folders of single-channel label PNGs, paired by file name.

Ground truth ``gt/<name>.png`` is paired with ``pred/<name>.png`` (sub-folders allowed: the
path below the folder, without ``.png``, is the key). Pixel values are class indices. The
classes come from a class-names file (a JSON list of names, a JSON object ``{"id": "name"}``
with ids 0..C-1, or a text file with one name a line) or from ``num_classes`` alone.

With ``reduce_zero_label`` (mmsegmentation's option of the same name, for datasets laid out
the mmseg way) the ground truth's 0 is not scored and every other label ``v`` is class
``v - 1`` (the ignore index, 255 by default, stays ignored); predictions hold the classes
0..C-1 as they are. See :class:`segeval.formats.semantic.LabelMap`.
"""

from __future__ import annotations

import json
from pathlib import Path

from segeval.errors import DataError, MissingFileError, UsageError
from segeval.formats.base import Folder, Options, Plan, Tree, png_files, require_folder
from segeval.formats.semantic import OPTIONS as SEMANTIC_OPTIONS
from segeval.formats.semantic import LabelMap, SemanticReference, semantic_plan

TASK = "semantic"
OPTIONS = SEMANTIC_OPTIONS | {"reduce_zero_label"}


def read_class_names(path: Path) -> tuple[str, ...]:
    """Class names from a JSON list, a JSON ``{"id": "name"}`` object, or one name a line."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise MissingFileError(f"{path}: cannot read the class-names file ({e.strerror})") from None
    if Path(path).suffix.lower() != ".json":
        names = tuple(line.strip() for line in text.splitlines() if line.strip())
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise DataError(f"{path}: malformed JSON ({e})") from None
        if isinstance(data, dict):
            try:
                by_id = {int(k): str(v) for k, v in data.items()}
            except ValueError:
                raise DataError(f"{path}: keys must be class ids 0..C-1") from None
            if sorted(by_id) != list(range(len(by_id))):
                raise DataError(f"{path}: class ids must be 0..{len(by_id) - 1} without gaps")
            names = tuple(by_id[i] for i in range(len(by_id)))
        elif isinstance(data, list):
            names = tuple(str(n) for n in data)
        else:
            raise DataError(f"{path}: expected a JSON list of names or an object id -> name")
    if not names:
        raise DataError(f"{path}: no class names")
    return names


def reference(gt: Path, options: Options) -> SemanticReference:
    """List every PNG under ``gt``, with the classes the options name."""
    options.check("folder", OPTIONS)
    num_classes, class_names = options.num_classes, options.class_names
    if options.split is not None:
        raise UsageError("the folder format has no splits: point --gt at the folder to score",
                         parameters=("split",))
    if class_names is None and num_classes is None:
        raise UsageError("the folder format needs num_classes or class_names",
                         parameters=("num_classes", "class_names"))
    if class_names is not None and num_classes is not None and len(class_names) != num_classes:
        raise UsageError(f"num_classes={num_classes} but class_names has {len(class_names)} "
                         f"names", parameters=("num_classes", "class_names"))
    if options.reduce_zero_label and options.ignore_index is None:
        raise UsageError("reduce_zero_label needs an ignore index (the label 0 becomes it)",
                         parameters=("reduce_zero_label", "ignore_index"))
    names = class_names or tuple(str(i) for i in range(num_classes or 0))
    require_folder(Path(gt), "ground-truth")
    gt_files = png_files(Folder(gt))
    if not gt_files:
        raise MissingFileError(f"{gt}: no ground-truth PNG files found")
    return SemanticReference("folder", gt_files, tuple(names), options.ignore_index,
                             LabelMap(reduce_zero_label=options.reduce_zero_label))


def plan(pred: Tree, ref: SemanticReference, options: Options) -> Plan:
    """Pair the PNGs in ``pred`` with ``ref`` by their path without ``.png``."""
    return semantic_plan(pred, ref, options)
