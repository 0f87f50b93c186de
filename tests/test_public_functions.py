"""One voice for a bad parameter value, checked on every public function (the model is
scikit-learn's ``test_public_functions.py``).

Every public callable of ``segeval.__all__`` (functions, and classes' constructors and public
methods) is walked with a table of valid arguments. Each parameter that takes a constrained
value is called with values of a wrong type and, where it has a range, out of range; the error
must be an :class:`~segeval.errors.InvalidParameterError` (a ``SegevalError`` that is also a
``ValueError`` and a ``TypeError``) that names the parameter in ``err.parameters`` and says ::

    The '<param>' parameter must be <expected>. Got <value> instead.

A parameter that is not walked is in :data:`EXCLUDED` with the reason, and a test checks that
every parameter of every public callable is walked or excluded: a new parameter without
validation fails here until it is one or the other.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import segeval
from segeval.errors import InvalidParameterError, SegevalError, UsageError
from tests.conftest import write_png

# ------------------------------------------------------------------------ valid arguments

PRED = np.array([[0, 1], [2, 1]])
GT = np.array([[0, 1], [1, 255]])
CATEGORIES = [{"id": 1, "name": "person", "isthing": 1}, {"id": 2, "name": "sky", "isthing": 0}]
PAN_GT = np.array([[1, 1, 2, 2], [1, 1, 2, 2], [0, 0, 2, 2]])
PAN_PRED = np.array([[5, 5, 7, 7], [5, 0, 7, 7], [5, 5, 7, 7]])
PAN_TABLES = {"pred_segments": {5: 1, 7: 2}, "gt_segments": {1: 1, 2: 2}}
COCO_GT = {"images": [{"id": 1, "height": 4, "width": 4}],
           "categories": [{"id": 1, "name": "thing"}],
           "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                            "area": 4.0, "segmentation": [[0, 0, 2, 0, 2, 2, 0, 2]]}]}


def _folder_data(tmp_path: Path) -> dict[str, Any]:
    """A two-class folder-format dataset of one image: ``evaluate``'s valid arguments."""
    write_png(tmp_path / "gt" / "a.png", np.array([[0, 1], [1, 0]], np.uint8))
    write_png(tmp_path / "pred" / "a.png", np.array([[0, 1], [0, 0]], np.uint8))
    return {"pred": tmp_path / "pred", "gt": tmp_path / "gt", "format": "folder",
            "num_classes": 2, "jobs": 1}


def _cm() -> segeval.ConfusionMatrix:
    return segeval.ConfusionMatrix(3)


def _stats() -> segeval.PanopticStats:
    return segeval.PanopticStats(CATEGORIES)


Valid = Callable[[Path], tuple[Callable[..., Any], dict[str, Any]]]


def _metric(name: str) -> Valid:
    """``segeval.<name>`` of label arrays, with valid arguments."""
    return lambda tmp_path: (getattr(segeval, name), {"pred": PRED, "gt": GT, "num_classes": 3})


def _cm_method(name: str) -> Valid:
    """The method ``name`` of a filled ConfusionMatrix (its parameters all have defaults)."""
    return lambda tmp_path: (getattr(_cm().update(PRED, GT), name), {})


#: Public callable -> ``tmp_path -> (the bound callable, valid keyword arguments)``.
VALID: dict[str, Valid] = {
    "ConfusionMatrix": lambda tmp: (segeval.ConfusionMatrix, {"num_classes": 3}),
    "ConfusionMatrix.update": lambda tmp: (_cm().update, {"pred": PRED, "gt": GT}),
    "ConfusionMatrix.update_missing": lambda tmp: (_cm().update_missing, {"gt": GT}),
    **{f"ConfusionMatrix.{m}": _cm_method(m)
       for m in ("iou", "miou", "mean_pixel_accuracy", "dice", "mean_dice", "result",
                 "to_frame")},
    "confusion_matrix": lambda tmp: (segeval.confusion_matrix,
                                     {"pred": PRED, "gt": GT, "num_classes": 3}),
    **{name: _metric(name) for name in ("iou", "miou", "pixel_accuracy", "mean_pixel_accuracy",
                                         "fwiou", "dice", "mean_dice")},
    "PanopticStats": lambda tmp: (segeval.PanopticStats, {"categories": CATEGORIES}),
    "PanopticStats.update": lambda tmp: (_stats().update,
                                         {"pred": PAN_PRED, "gt": PAN_GT, **PAN_TABLES}),
    "PanopticStats.add_counts": lambda tmp: (_stats().add_counts,
                                             {"counts": np.ones((5, 2), np.int64)}),
    "panoptic_quality": lambda tmp: (segeval.panoptic_quality,
                                     {"pred": PAN_PRED, "gt": PAN_GT, "categories": CATEGORIES,
                                      **PAN_TABLES}),
    "coco_mask_ap": lambda tmp: (segeval.coco_mask_ap,
                                 {"gt": COCO_GT, "results": [], "category_ids": [1],
                                  "image_ids": [1]}),
    "evaluate": lambda tmp: (segeval.evaluate, _folder_data(tmp)),
    "surface_metrics": lambda tmp: (segeval.surface_metrics,
                                    {"pred": PRED, "gt": GT, "spacing": (1.0, 2.0)}),
}

# ------------------------------------------------------------------------ invalid values

ENUM = ([3, None, ["error"]], ["nope"])  # (wrong type, out of range)
BOOL = (["yes", None, 0.5], [2])
POSITIVE_INT = ([2.5, "3", True], [0, -1])
JOBS = ([2.5, "2", True], [0, -1])
IGNORE_INDEX = ([1.5, "255", True], [])  # any integer is a label: nothing out of range
LABELS = ([np.array([[0.5, 1.0], [0.0, 1.0]]), "abc"], [])  # label values: see EXCLUDED note
ABSENT = ENUM
COUNTS_CM = (["abc", np.full((3, 3), 0.5)], [np.full((3, 3), -1), np.zeros((2, 2), int)])
COUNTS_PAN = (["abc", np.full((5, 2), 0.5)], [np.full((5, 2), -1), np.zeros((5, 3), int)])
CATEGORY_LIST = ([5, "person", {"id": 1, "isthing": 1}], [[]])
TABLE = ([5, "abc"], [None])  # None while the other table is given
IDS = ([5, "abc", [[1]]], [[], [12345]])

#: (public callable, parameter) -> (values of a wrong type, values out of range). Label
#: *values* of ``pred`` / ``gt`` (a class that does not exist) are not parameter errors: they
#: are :class:`~segeval.errors.LabelError` naming the array (or the file), tested in
#: tests/core; here ``pred`` / ``gt`` are walked with arrays of a wrong dtype.
BAD: dict[tuple[str, str], tuple[list[Any], list[Any]]] = {
    ("ConfusionMatrix", "num_classes"): POSITIVE_INT,
    ("ConfusionMatrix", "ignore_index"): IGNORE_INDEX,
    ("ConfusionMatrix", "class_names"): ([5, "abc"], [("a", "b")]),
    ("ConfusionMatrix", "matrix"): COUNTS_CM,
    ("ConfusionMatrix", "unassigned"): (["abc", [0.5, 0, 0]], [[-1, 0, 0], [0, 0]]),
    ("ConfusionMatrix", "device"): ENUM,
    ("ConfusionMatrix.update", "pred"): LABELS,
    ("ConfusionMatrix.update", "gt"): LABELS,
    ("ConfusionMatrix.update", "invalid_pred"): ENUM,
    ("ConfusionMatrix.update_missing", "gt"): LABELS,
    **{(f"ConfusionMatrix.{m}", "absent"): ABSENT
       for m in ("iou", "miou", "mean_pixel_accuracy", "dice", "mean_dice", "result",
                 "to_frame")},
    ("confusion_matrix", "pred"): LABELS,
    ("confusion_matrix", "gt"): LABELS,
    ("confusion_matrix", "num_classes"): POSITIVE_INT,
    ("confusion_matrix", "ignore_index"): IGNORE_INDEX,
    ("confusion_matrix", "class_names"): ([5, "abc"], [("a", "b")]),
    ("confusion_matrix", "device"): ENUM,
    **{(name, param): bad
       for name in ("iou", "miou", "pixel_accuracy", "mean_pixel_accuracy", "fwiou", "dice",
                    "mean_dice")
       for param, bad in (("pred", LABELS), ("gt", LABELS), ("num_classes", POSITIVE_INT),
                          ("ignore_index", IGNORE_INDEX), ("absent", ABSENT))
       if param != "absent" or name not in ("pixel_accuracy", "fwiou")},
    ("PanopticStats", "categories"): CATEGORY_LIST,
    ("PanopticStats", "counts"): COUNTS_PAN,
    ("PanopticStats.add_counts", "counts"): COUNTS_PAN,
    **{(name, param): bad
       for name in ("PanopticStats.update", "panoptic_quality")
       for param, bad in (("pred", LABELS), ("gt", LABELS), ("pred_segments", TABLE),
                          ("gt_segments", TABLE), ("ignore_index", IGNORE_INDEX),
                          ("crowd_instance", ([1.5, "0", True], [])))},
    ("panoptic_quality", "categories"): CATEGORY_LIST,
    ("coco_mask_ap", "iou_thresholds"): (["abc", 0.5, ["a"]], [[0.7, 0.5], [0, 0.5], [1.5], []]),
    ("coco_mask_ap", "max_dets"): (["abc", [1.5, 10, 100], 100],
                                   [[10, 1, 100], [0, 10, 100], [1, 10]]),
    ("coco_mask_ap", "area_ranges"): ([5, [(0, 1)], {"all": 5}],
                                      [{"small": [0, 10]}, {"all": [10, 0]}, {"all": [-1, 5]}]),
    ("coco_mask_ap", "category_ids"): IDS,
    ("coco_mask_ap", "image_ids"): IDS,
    ("coco_mask_ap", "keep_bbox"): BOOL,
    ("coco_mask_ap", "backend"): ENUM,
    ("coco_mask_ap", "verbose"): BOOL,
    ("coco_mask_ap", "jobs"): JOBS,
    ("evaluate", "format"): ([5, None], ["kitti"]),
    ("evaluate", "task"): ([5], ["depth"]),
    ("evaluate", "num_classes"): POSITIVE_INT,
    ("evaluate", "ignore_index"): IGNORE_INDEX,
    ("evaluate", "absent"): ABSENT,
    ("evaluate", "missing"): ENUM,
    ("evaluate", "pred_ids"): ENUM,
    ("evaluate", "reduce_zero_label"): BOOL,
    ("evaluate", "iiou"): BOOL,
    ("evaluate", "backend"): ENUM,
    ("evaluate", "keep_bbox"): BOOL,
    ("evaluate", "decoder"): ENUM,
    ("evaluate", "device"): ENUM,
    ("evaluate", "per_image"): BOOL,
    ("evaluate", "jobs"): JOBS,
    # any other string is a Dask scheduler address: an unreachable one is a UsageError naming
    # the scheduler (parameters=("scheduler",)), not a value out of range
    ("evaluate", "scheduler"): ([5, 2.5], []),
    ("evaluate", "class_names"): ([5], []),  # a bad class-names file: a DataError naming it
    ("evaluate", "labels"): ([5, "a,b", (1.5,)], [(0,), ()]),
    ("evaluate", "nsd_tolerance"): (["1", True], [-1.0, float("nan"), float("inf")]),
    ("evaluate", "spacing"): ([5, "a,b"], [(0.0, 1.0), (1.0,), (1.0, float("nan"))]),
    ("surface_metrics", "pred"): ([PRED.astype(float), "abc", np.zeros((2, 2, 2, 2), int)],
                                  [np.zeros((3, 3), int)]),
    ("surface_metrics", "gt"): ([GT.astype(float), [[0, 1]]], []),
    ("surface_metrics", "spacing"): (["1,1", 5, (1.0, True)], [(0.0, 1.0), (1.0,),
                                                               (1.0, float("nan"))]),
    ("surface_metrics", "tolerance"): (["1", True], [-1.0, float("inf")]),
    ("surface_metrics", "label"): ([1.5, "1", True], []),
}

#: Whole callables that are not walked, and why.
EXCLUDED_CALLABLES: dict[str, str] = {
    "SegevalError": "the error type itself: a message (any text) and the parameters it names",
    "SegevalError.message_for": "flag is a function (the CLI's), called as given",
    "MeanScore": "a float carrying the count and policy of a mean; made by the metrics",
    "SemanticResult": "a result record the library fills; fields are stored as given",
    "PanopticResult": "a result record the library fills; fields are stored as given",
    "InstanceResult": "a result record the library fills; fields are stored as given",
}

_NAME = "free text naming the data in messages and results; any value is shown with str()"
_INFO = "fields of the result record, passed as given (an unknown name is Python's TypeError)"
_COCO = ("COCO data (a path, the parsed JSON or checked data): checked entry by entry by "
         "segeval.core.coco_input, whose DataErrors name the file or 'ground truth'/'results' "
         "and the entry")
_PATH = ("a path: a missing or unreadable one is a MissingFileError / FileFormatError naming "
         "the file")

#: (callable, parameter) -> why it is not walked.
EXCLUDED: dict[tuple[str, str], str] = {
    ("ConfusionMatrix.update", "pred_name"): _NAME,
    ("ConfusionMatrix.update", "gt_name"): _NAME,
    ("ConfusionMatrix.update_missing", "gt_name"): _NAME,
    ("ConfusionMatrix.result", "info"): _INFO,
    ("PanopticStats.update", "pred_name"): _NAME,
    ("PanopticStats.update", "gt_name"): _NAME,
    ("PanopticStats.result", "info"): _INFO,
    ("coco_mask_ap", "gt"): _COCO,
    ("coco_mask_ap", "results"): _COCO,
    ("coco_mask_ap", "gt_name"): _NAME,
    ("coco_mask_ap", "results_name"): _NAME,
    ("coco_mask_ap", "format"): _NAME,
    ("evaluate", "pred"): _PATH,
    ("evaluate", "gt"): _PATH,
    ("evaluate", "gt_folder"): _PATH + " (parameters=('gt_folder',))",
    ("evaluate", "pred_folder"): _PATH + " (parameters=('pred_folder',))",
    ("evaluate", "split"): "a split name: a wrong one is a MissingFileError naming the folder "
                           "looked for, or a UsageError naming split",
    ("evaluate", "progress"): "a callback, called as given",
}

# ------------------------------------------------------------------------ the walk


def public_callables() -> dict[str, inspect.Signature]:
    """Every public callable of ``segeval.__all__`` -> its signature (without ``self``):
    functions, classes (their constructor) and the public methods their segeval classes
    define."""
    out: dict[str, inspect.Signature] = {}
    for name in segeval.__all__:
        obj = getattr(segeval, name)
        if inspect.isclass(obj):
            out[name] = inspect.signature(obj)
            for klass in obj.__mro__:
                if not klass.__module__.startswith("segeval"):
                    continue
                for attr, value in vars(klass).items():
                    if attr.startswith("_") or not inspect.isfunction(value):
                        continue
                    params = list(inspect.signature(value).parameters.values())[1:]
                    out.setdefault(f"{name}.{attr}",
                                   inspect.Signature(params))
        elif callable(obj):
            out[name] = inspect.signature(obj)
    return out


PUBLIC = public_callables()


def test_every_public_parameter_is_walked_or_excluded() -> None:
    missing, both = [], []
    for func, sig in PUBLIC.items():
        if func in EXCLUDED_CALLABLES:
            continue
        for param in sig.parameters:
            key = (func, param)
            if key not in BAD and key not in EXCLUDED:
                missing.append(key)
            if key in BAD and key in EXCLUDED:
                both.append(key)
    assert not missing, f"walk these parameters (BAD) or say why not (EXCLUDED): {missing}"
    assert not both, both
    known = {(f, p) for f, sig in PUBLIC.items() for p in sig.parameters}
    stale = [k for k in (*BAD, *EXCLUDED) if k not in known]
    stale += [f for f in EXCLUDED_CALLABLES if f not in PUBLIC]
    assert not stale, f"no such public callable or parameter: {stale}"
    for func in {f for f, _ in BAD}:
        assert func in VALID, f"no valid arguments for {func}"


@pytest.mark.parametrize("func", sorted(VALID))
def test_the_valid_arguments_are_valid(func: str, tmp_path: Path) -> None:
    call, kwargs = VALID[func](tmp_path)
    call(**kwargs)


def _cases() -> list[Any]:
    cases = []
    for (func, param), (wrong_type, out_of_range) in sorted(BAD.items()):
        assert wrong_type, f"{func}({param}): give at least one value of a wrong type"
        for kind, values in (("type", wrong_type), ("range", out_of_range)):
            for k, value in enumerate(values):
                cases.append(pytest.param(func, param, value, id=f"{func}-{param}-{kind}{k}"))
    return cases


def voice(param: str) -> re.Pattern[str]:
    return re.compile(rf"^The '{re.escape(param)}' parameter( of [\w.]+)? must be .+\. "
                      rf"Got .+ instead\.$")


@pytest.mark.parametrize(("func", "param", "value"), _cases())
def test_a_bad_value_is_refused_in_the_one_voice(func: str, param: str, value: Any,
                                                 tmp_path: Path) -> None:
    call, kwargs = VALID[func](tmp_path)
    with pytest.raises(SegevalError) as info:
        call(**{**kwargs, param: value})
    err = info.value
    assert isinstance(err, InvalidParameterError), (type(err), str(err))
    assert isinstance(err, UsageError) and isinstance(err, ValueError) \
        and isinstance(err, TypeError) and err.exit_code == 2
    assert voice(param).match(str(err)), str(err)
    assert "\n" not in str(err)
    assert err.parameters == (param,)


# ------------------------------------------------------------------------ evaluate's options


def _evaluate_error(tmp_path: Path, **changes: Any) -> SegevalError | None:
    kwargs = {**_folder_data(tmp_path), **changes}
    try:
        segeval.evaluate(**kwargs)
    except SegevalError as e:
        return e
    return None


OPTION_ERRORS = [
    # (changes to the valid folder call, the parameter the error must name)
    ({"gt_folder": "x"}, "gt_folder"),
    ({"pred_folder": "x"}, "pred_folder"),
    ({"pred_ids": "train"}, "pred_ids"),
    ({"reduce_zero_label": True, "ignore_index": None}, "reduce_zero_label"),
    ({"iiou": False}, "iiou"),
    ({"labels": (1,)}, "labels"),
    ({"nsd_tolerance": 2.0}, "nsd_tolerance"),
    ({"spacing": (1.0, 1.0)}, "spacing"),
    ({"backend": "faster"}, "backend"),
    ({"keep_bbox": True}, "keep_bbox"),
    ({"split": "val"}, "split"),
    ({"num_classes": None}, "num_classes"),
    ({"num_classes": 3, "class_names": ("a", "b")}, "class_names"),
    ({"format": "voc", "task": "instance"}, "task"),
    ({"device": "cuda", "scheduler": "dask-local"}, "scheduler"),
]


@pytest.mark.parametrize(("changes", "param"), OPTION_ERRORS)
def test_evaluate_errors_about_an_option_name_it(changes: dict, param: str,
                                                  tmp_path: Path) -> None:
    err = _evaluate_error(tmp_path, **changes)
    assert err is not None and param in err.parameters, (err, getattr(err, "parameters", None))


def test_evaluate_names_every_bad_option_value(tmp_path: Path) -> None:
    for (func, param), (wrong_type, out_of_range) in BAD.items():
        if func != "evaluate":
            continue
        for value in (*wrong_type, *out_of_range):
            err = _evaluate_error(tmp_path, **{param: value})
            assert err is not None and err.parameters == (param,), (param, value, err)


def test_a_missing_prediction_names_the_missing_option(tmp_path: Path) -> None:
    kwargs = _folder_data(tmp_path)
    write_png(tmp_path / "gt" / "b.png", np.zeros((2, 2), np.uint8))
    with pytest.raises(SegevalError) as info:
        segeval.evaluate(**kwargs)
    assert "missing" in info.value.parameters
    assert segeval.evaluate(**kwargs, missing="zero").num_images == 2


def test_a_gpu_that_cannot_be_used_names_the_device_option(tmp_path: Path) -> None:
    err = _evaluate_error(tmp_path, device="cuda")
    if err is not None:  # no CuPy or no GPU here
        assert "device" in err.parameters, err


# ------------------------------------------------------------------------ the CLI's flags


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def test_the_command_line_says_flags_where_the_library_says_parameters() -> None:
    from segeval.errors import DataError, bad_value

    err = bad_value("pred_ids", "'label' or 'train'", "nope")
    assert str(err) == "The 'pred_ids' parameter must be 'label' or 'train'. Got 'nope' instead."
    assert err.message_for(flag) == "--pred-ids must be 'label' or 'train'. Got 'nope' instead."
    err = bad_value("num_classes", "a positive integer", 0, function="ConfusionMatrix")
    assert err.message_for(flag) == "--num-classes must be a positive integer. Got 0 instead."
    err = UsageError("num_classes=4 but class_names has 5 names; split='test': data/split "
                     "holds no test; backend='faster' needs it; with keep_bbox=True all",
                     parameters=("num_classes", "class_names", "split", "backend", "keep_bbox"))
    assert err.message_for(flag) == ("--num-classes 4 but --class-names has 5 names; --split "
                                     "test: data/split holds no test; --backend faster needs "
                                     "it; with --keep-bbox all")
    assert DataError("gt_folder/a.png: no such file", parameters=("gt",)).message_for(flag) \
        == "gt_folder/a.png: no such file"


def test_a_long_or_array_value_is_shown_on_one_short_line() -> None:
    from segeval.errors import bad_value

    msg = str(bad_value("pred", "an array of integers", np.zeros((300, 400))))
    assert msg.endswith("Got an array of dtype float64 and shape (300, 400) instead.")
    msg = str(bad_value("max_dets", "three integers", list(range(1000))))
    assert len(msg) < 120 and "..." in msg
    assert str(bad_value("x", "an int", np.int64(3))).endswith("Got 3 instead.")
