"""The Cityscapes label table and the constants derived from it.

The same rows as cityscapesScripts' ``helpers/labels.py``. Each :class:`Label` has the *label
id* (``id``, what ``*_gtFine_labelIds.png`` and official result PNGs store), the *train id*
(``train_id``: 0..18 for the 19 evaluated classes, 255 for classes that are not evaluated, -1
for the licence plate), its category, whether it has instances (``*_gtFine_instanceIds.png``
stores ``id * 1000 + k`` for them, :data:`INSTANCE_OFFSET`) and whether it is ignored in
evaluation. Label ids run 0..33 (the licence plate, -1, never appears in label maps); 19 of them
are evaluated, in 7 evaluated categories (``void`` is all ignored).
"""

from __future__ import annotations

from typing import NamedTuple

from segeval.core.kernels.cityscapes import INSTANCE_OFFSET

__all__ = [
    "AVG_CLASS_SIZE", "BY_ID", "CATEGORIES", "CLASS_NAMES", "EVAL_CATEGORIES", "EVAL_LABELS",
    "EVAL_LABEL_IDS", "INSTANCE_CLASSES", "INSTANCE_OFFSET", "LABELS", "NUM_LABEL_IDS", "Label",
    "category_label_ids", "instance_categories",
]


class Label(NamedTuple):
    """One row of the Cityscapes label table."""

    name: str
    id: int
    train_id: int
    category: str
    category_id: int
    has_instances: bool
    ignore_in_eval: bool
    color: tuple[int, int, int]


# fmt: off
LABELS: tuple[Label, ...] = (
    #     name                    id  trainId category        catId inst   ignore  color
    Label("unlabeled",             0, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("ego vehicle",           1, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("rectification border",  2, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("out of roi",            3, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("static",                4, 255, "void",          0, False, True,  (0, 0, 0)),
    Label("dynamic",               5, 255, "void",          0, False, True,  (111, 74, 0)),
    Label("ground",                6, 255, "void",          0, False, True,  (81, 0, 81)),
    Label("road",                  7,   0, "flat",          1, False, False, (128, 64, 128)),
    Label("sidewalk",              8,   1, "flat",          1, False, False, (244, 35, 232)),
    Label("parking",               9, 255, "flat",          1, False, True,  (250, 170, 160)),
    Label("rail track",           10, 255, "flat",          1, False, True,  (230, 150, 140)),
    Label("building",             11,   2, "construction",  2, False, False, (70, 70, 70)),
    Label("wall",                 12,   3, "construction",  2, False, False, (102, 102, 156)),
    Label("fence",                13,   4, "construction",  2, False, False, (190, 153, 153)),
    Label("guard rail",           14, 255, "construction",  2, False, True,  (180, 165, 180)),
    Label("bridge",               15, 255, "construction",  2, False, True,  (150, 100, 100)),
    Label("tunnel",               16, 255, "construction",  2, False, True,  (150, 120, 90)),
    Label("pole",                 17,   5, "object",        3, False, False, (153, 153, 153)),
    Label("polegroup",            18, 255, "object",        3, False, True,  (153, 153, 153)),
    Label("traffic light",        19,   6, "object",        3, False, False, (250, 170, 30)),
    Label("traffic sign",         20,   7, "object",        3, False, False, (220, 220, 0)),
    Label("vegetation",           21,   8, "nature",        4, False, False, (107, 142, 35)),
    Label("terrain",              22,   9, "nature",        4, False, False, (152, 251, 152)),
    Label("sky",                  23,  10, "sky",           5, False, False, (70, 130, 180)),
    Label("person",               24,  11, "human",         6, True,  False, (220, 20, 60)),
    Label("rider",                25,  12, "human",         6, True,  False, (255, 0, 0)),
    Label("car",                  26,  13, "vehicle",       7, True,  False, (0, 0, 142)),
    Label("truck",                27,  14, "vehicle",       7, True,  False, (0, 0, 70)),
    Label("bus",                  28,  15, "vehicle",       7, True,  False, (0, 60, 100)),
    Label("caravan",              29, 255, "vehicle",       7, True,  True,  (0, 0, 90)),
    Label("trailer",              30, 255, "vehicle",       7, True,  True,  (0, 0, 110)),
    Label("train",                31,  16, "vehicle",       7, True,  False, (0, 80, 100)),
    Label("motorcycle",           32,  17, "vehicle",       7, True,  False, (0, 0, 230)),
    Label("bicycle",              33,  18, "vehicle",       7, True,  False, (119, 11, 32)),
    Label("license plate",        -1,  -1, "vehicle",       7, False, True,  (0, 0, 142)),
)
# fmt: on

#: Label ids 0..33 appear in label maps; the confusion matrix is ``NUM_LABEL_IDS`` square.
NUM_LABEL_IDS = 34
#: Labels by id, for ids 0..33 (index = label id).
BY_ID: tuple[Label, ...] = tuple(sorted((lb for lb in LABELS if lb.id >= 0), key=lambda lb: lb.id))
#: The 19 evaluated classes in train-id order (index = train id).
EVAL_LABELS: tuple[Label, ...] = tuple(
    sorted((lb for lb in LABELS if not lb.ignore_in_eval), key=lambda lb: lb.train_id)
)
EVAL_LABEL_IDS: tuple[int, ...] = tuple(lb.id for lb in EVAL_LABELS)
CLASS_NAMES: tuple[str, ...] = tuple(lb.name for lb in EVAL_LABELS)
#: The 8 categories in the table's order (the official result JSON lists all of them).
CATEGORIES: tuple[str, ...] = tuple(dict.fromkeys(lb.category for lb in LABELS))
#: The 7 categories with at least one evaluated class.
EVAL_CATEGORIES: tuple[str, ...] = tuple(
    c for c in CATEGORIES if any(lb.category == c for lb in EVAL_LABELS)
)

#: Average instance size in pixels per class, over the Cityscapes training set: the weights of
#: iIoU (``avgClassSize`` in cityscapesScripts' ``evalPixelLevelSemanticLabeling.py``).
AVG_CLASS_SIZE: dict[str, float] = {
    "bicycle": 4672.3249222261,
    "caravan": 36771.8241758242,
    "motorcycle": 6298.7200839748,
    "rider": 3930.4788056518,
    "bus": 35732.1511111111,
    "train": 67583.7075812274,
    "car": 12794.0202738185,
    "person": 3462.4756337644,
    "truck": 27855.1264367816,
    "trailer": 16926.9763313609,
}

def category_label_ids(category: str, *, evaluated_only: bool) -> tuple[int, ...]:
    """Label ids (>= 0) of ``category``: all of them, or only the evaluated ones."""
    return tuple(lb.id for lb in BY_ID
                 if lb.category == category and not (evaluated_only and lb.ignore_in_eval))


def instance_categories() -> tuple[str, ...]:
    """Categories whose every label (id >= 0) has instances: those with a category iIoU
    (``human`` and ``vehicle``)."""
    return tuple(c for c in CATEGORIES
                 if all(lb.has_instances for lb in BY_ID if lb.category == c))


#: Label id -> name of the 8 classes scored for instances (``--task instance``): those with
#: instances that are not ignored in evaluation (person, rider, car, truck, bus, train,
#: motorcycle, bicycle; caravan and trailer are not scored).
INSTANCE_CLASSES: dict[int, str] = {lb.id: lb.name for lb in BY_ID
                                    if lb.has_instances and not lb.ignore_in_eval}
