"""Saved partial results: the merged statistics of a run, to add up with other runs later.

``segeval score ... --save-state FILE`` writes, and ``segeval merge FILE...`` reads, a NumPy
``.npz`` archive (never pickle: it is loaded with ``allow_pickle=False``) holding

* ``header`` -- a JSON document (a 0-d string array)::

      {"schema": "segeval-state/1", "task": "semantic", "format": "voc", "num_images": 12,
       "settings": {...}}

  ``settings`` is everything that must agree for two states to be added: for ``semantic`` the
  ``num_classes``, ``ignore_index``, ``class_names`` and the ``absent`` policy.
* the statistics as integer arrays -- for ``semantic``: ``matrix`` (C x C int64, rows = ground
  truth) and ``unassigned`` (C int64).

Merging checks that schema, task, format and settings agree, adds the statistics exactly and
adds ``num_images``; the result equals one run over all the files. A task plugs in with a module
that defines ``state_of(result) -> (settings, arrays)``, ``stats_from_state(settings, arrays)``
and ``result_from_state(stats, settings, format, num_images)`` (see :data:`TASKS`).
"""

from __future__ import annotations

import importlib
import io
import json
import math
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from segeval.core import jsonio
from segeval.errors import DataError, FileFormatError, shown

SCHEMA = "segeval-state/1"
TASKS = {"semantic": "segeval.formats.semantic", "panoptic": "segeval.core.panoptic"}
TASKS["semantic/cityscapes"] = "segeval.formats.cityscapes.stats"  # a format's own statistics


def _key(task: str, fmt: str | None) -> str:
    """The :data:`TASKS` key of a task and format: ``"task/format"`` where there is one."""
    return f"{task}/{fmt}" if f"{task}/{fmt}" in TASKS else task


def state_bytes(result: Any) -> bytes:
    """The ``.npz`` bytes of a result's statistics (see the module docstring)."""
    module = _task_module(_key(result.task, result.format), "result")
    settings, arrays = module.state_of(result)
    header = {"schema": SCHEMA, "task": result.task, "format": result.format,
              "num_images": result.num_images, "settings": settings}
    buf = io.BytesIO()
    np.savez_compressed(buf, header=np.array(json.dumps(header)), **arrays)
    return buf.getvalue()


def _task_module(task: str, where: str) -> Any:
    if not isinstance(task, str) or task not in TASKS:
        raise DataError(f"{where}: task {task!r} has no saved-state support")
    return importlib.import_module(TASKS[task])


#: the most bytes an array of a state may unpack to when its settings do not give its shape
#: (Cityscapes' instance rows: 32 bytes an instance); one whose shape they give may unpack to
#: its int64 counts and a header, no more
MAX_MEMBER_BYTES = 1 << 30
_NPY_HEADER = 4096
#: the header's bound (a JSON document of settings: class names, a category table)
MAX_HEADER_BYTES = 16 << 20
#: every count of a state, and the sum of all the counts of the states merged, stay below this
#: (2^62: no int64 overflow when they are added; 4.6e18 pixels is far beyond any dataset)
MAX_TOTAL = 1 << 62


def _expected_shapes(key: str, settings: Any) -> dict[str, tuple[int | None, ...]]:
    """The arrays a state of ``key`` (a :data:`TASKS` key) must hold, by name, and their shapes
    (``None``: any length); ``ValueError`` for settings that are not what the task writes."""
    if not isinstance(settings, dict):
        raise ValueError("'settings' is not an object")
    if key == "semantic":
        c = settings.get("num_classes")
        if not (type(c) is int and 0 < c <= _max_classes()):
            raise ValueError(f"num_classes {shown(c)} is not a number of classes "
                             f"(1..{_max_classes()})")
        return {"matrix": (c, c), "unassigned": (c,)}
    if key == "panoptic":
        cats = settings.get("categories")
        if not isinstance(cats, list):
            raise ValueError("'categories' is not a list")
        return {"counts": (5, len(cats))}
    if key == "semantic/cityscapes":
        return {"matrix": (34, 34), "instances": (None, 4)}
    return {}


def _max_classes() -> int:
    from segeval.core.confusion import MAX_CLASSES

    return MAX_CLASSES


def check_arrays(key: str, settings: Any, arrays: dict[str, np.ndarray]) -> int:
    """Check the arrays of a state against its task and settings: exactly the names the task
    writes, integer dtype, the shapes its settings give, no negative count, every count and
    their sum below :data:`MAX_TOTAL`, and the task's own totals consistent (panoptic: each
    category's IoU sum between TP/2 and TP, as each match has an IoU above 0.5; Cityscapes:
    an instance's true positives at most its size, label ids 0..33). Returns the sum of all
    counts (a Python ``int``); ``ValueError`` saying what is wrong."""
    shapes = _expected_shapes(key, settings)
    if shapes and set(arrays) != set(shapes):
        raise ValueError(f"arrays {sorted(arrays)}, expected {sorted(shapes)}")
    total = 0
    for name, arr in arrays.items():
        if arr.dtype.kind not in "iu":
            raise ValueError(f"{name!r} is {arr.dtype}, not integer counts")
        want = shapes.get(name)
        if want is not None and (arr.ndim != len(want) or any(
                w is not None and w != n for w, n in zip(want, arr.shape, strict=True))):
            shape = tuple("n" if w is None else w for w in want)
            raise ValueError(f"{name!r} has shape {arr.shape}, expected {shape}")
        if arr.size:
            if arr.dtype.kind == "i" and int(arr.min()) < 0:
                raise ValueError(f"{name!r} holds a negative count ({int(arr.min())})")
            if int(arr.max()) >= MAX_TOTAL:
                raise ValueError(f"{name!r} holds a count of {int(arr.max())}, more than any "
                                 f"evaluation can make (2^62)")
            if total + float(arr.sum(dtype=np.float64)) >= MAX_TOTAL:
                raise ValueError("the counts add up to more than any evaluation can make "
                                 "(2^62)")
            total += int(arr.sum(dtype=np.int64))  # exact: below 2^62 (and rounding) here
    if key == "panoptic":
        from segeval.core.panoptic import TP, iou_sums_of

        counts = arrays["counts"].astype(np.int64)
        tp, iou = counts[TP].astype(np.float64), iou_sums_of(counts)
        wrong = np.flatnonzero((iou < tp / 2 * (1 - 1e-12)) | (iou > tp * (1 + 1e-12)))
        if wrong.size:
            c = int(wrong[0])
            raise ValueError(f"category {c}: an IoU sum of {iou[c]:.6g} for {int(tp[c])} true "
                             f"positives (each IoU is above 0.5, at most 1)")
    if key == "semantic/cityscapes":
        inst = arrays["instances"]
        if inst.size and (int(inst[:, 0].max()) >= 34 or (inst[:, 2] > inst[:, 1]).any()
                          or (inst[:, 3] > inst[:, 1]).any()):
            raise ValueError("an instance row (label id, size, tp, category tp) with a label "
                             "id above 33 or more true positives than pixels")
    return total


def load_state(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """``(header, stats)`` of a saved state; :class:`DataError` naming the file if it is not one
    (a missing, empty or damaged file, a member that unpacks to more than
    :data:`MAX_MEMBER_BYTES`, a header that is not bounded JSON, an array that fails
    :func:`check_arrays`, a ``num_images`` that is not a non-negative integer)."""
    return _load(path)[:2]


def _load(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any, int]:
    try:
        if os.path.getsize(path) == 0:
            raise FileFormatError(f"{path}: an empty file, not a segeval state file")
        if not _is_zip(path):
            raise FileFormatError(f"{path}: not a segeval state file (not an .npz archive; "
                                  f"'segeval score --save-state' writes one)")
        with zipfile.ZipFile(path) as zf:
            sizes = {info.filename: info.file_size for info in zf.infolist()}
        if sizes.get("header.npy", 0) > MAX_HEADER_BYTES:
            raise FileFormatError(f"{path}: member header.npy unpacks to "
                                  f"{sizes['header.npy']} bytes (at most {MAX_HEADER_BYTES})")
        with np.load(path, allow_pickle=False) as npz:
            text = npz["header"]
            if text.dtype.kind not in "SU" or text.ndim != 0:
                raise FileFormatError(f"{path}: not a segeval state file (its header is not a "
                                      f"string)")
            header = jsonio.parse_json(str(text), f"{path} (header)",
                                       max_bytes=MAX_HEADER_BYTES)
            key = _checked_header(path, header)
            try:
                shapes = _expected_shapes(key, header.get("settings"))
            except ValueError as e:
                raise FileFormatError(f"{path}: damaged state file ({e})") from None
            names = [k for k in npz.files if k != "header"]
            if shapes and sorted(names) != sorted(shapes):
                raise FileFormatError(f"{path}: damaged state file (arrays {sorted(names)}, "
                                      f"expected {sorted(shapes)})")
            for name in names:  # what each may unpack to: its shape's int64 counts
                shape = shapes.get(name)
                limit = MAX_MEMBER_BYTES if shape is None or None in shape \
                    else 8 * math.prod(shape) + _NPY_HEADER
                if sizes.get(name + ".npy", 0) > limit:
                    raise FileFormatError(f"{path}: member {name}.npy unpacks to "
                                          f"{sizes[name + '.npy']} bytes (at most {limit})")
            arrays = {k: npz[k] for k in names}
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
        raise FileFormatError(f"{path}: not a segeval state file "
                              f"({' '.join(str(e).split())[:200]})") from None
    module = _task_module(key, str(path))
    try:
        total = check_arrays(key, header.get("settings"), arrays)
        stats = module.stats_from_state(header["settings"], arrays)
    except (KeyError, ValueError, TypeError) as e:
        raise FileFormatError(f"{path}: damaged state file "
                              f"({' '.join(str(e).split())[:200]})") from None
    return header, stats, total


def _checked_header(path: str | os.PathLike[str], header: Any) -> str:
    """The :data:`TASKS` key of a parsed header; :class:`FileFormatError` unless it is a
    header of this schema with a task name and a ``num_images`` count."""
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        raise FileFormatError(f"{path}: not a {SCHEMA} state file")
    num_images = header.get("num_images")
    if num_images is not None and (type(num_images) is not int or num_images < 0):
        raise FileFormatError(f"{path}: damaged state file (num_images is {shown(num_images)}, "
                              f"not a count)")
    if not isinstance(header.get("task"), str) or not isinstance(header.get("format"),
                                                                  str | None):
        raise FileFormatError(f"{path}: damaged state file ('task' or 'format' is not a name)")
    key = _key(header["task"], header.get("format"))
    _task_module(key, str(path))
    return key


def merge_states(paths: list[Path]) -> Any:
    """The result of adding the saved states at ``paths`` (all of the same task and settings)."""
    if not paths:
        raise DataError("no state files to merge")
    first_header, total, grand = _load(paths[0])
    num_images = first_header["num_images"] or 0
    for path in paths[1:]:
        header, stats, counted = _load(path)
        grand += counted
        if grand >= MAX_TOTAL:
            raise DataError(f"{path}: the counts of the states up to this one add up to more "
                            f"than any evaluation can make (2^62); a state is damaged")
        for key, detail in _differences(header, first_header):
            raise DataError(f"{path}: {key} differs from {paths[0]} ({detail}); states of "
                            f"different runs cannot be added")
        total = total + stats
        num_images += header["num_images"] or 0
    module = _task_module(_key(first_header["task"], first_header["format"]), str(paths[0]))
    return module.result_from_state(total, first_header["settings"], first_header["format"],
                                    num_images)


def _is_zip(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` starts as a zip archive (an ``.npz``) does; ``False`` if unreadable
    as a file (``np.load`` then says why)."""
    try:
        with open(path, "rb") as f:
            return f.read(4) in (b"PK\x03\x04", b"PK\x05\x06")
    except FileNotFoundError:
        return True  # load_state says "no such file"
    except OSError:
        return True


def _differences(header: dict[str, Any], first: dict[str, Any]) -> list[tuple[str, str]]:
    """``(what, detail)`` for every entry of ``task``, ``format`` and ``settings`` that
    differs between a state and the first one: ``("settings", "num_classes: 5 here, 4
    there")``, both values whole, as JSON."""
    out = []
    for key in ("task", "format"):
        if header.get(key) != first.get(key):
            out.append((key, f"{json.dumps(header.get(key))} here, "
                             f"{json.dumps(first.get(key))} there"))
    ours, theirs = header.get("settings"), first.get("settings")
    if isinstance(ours, dict) and isinstance(theirs, dict):
        for k in sorted(set(ours) | set(theirs), key=str):
            if ours.get(k, _ABSENT) != theirs.get(k, _ABSENT):
                out.append(("settings", f"{k}: {_shown(ours, k)} here, {_shown(theirs, k)} "
                                        f"there"))
    elif ours != theirs:
        out.append(("settings", f"{json.dumps(ours)} here, {json.dumps(theirs)} there"))
    return out


_ABSENT = object()


def _shown(settings: dict[str, Any], key: str) -> str:
    return json.dumps(settings[key]) if key in settings else "absent"
