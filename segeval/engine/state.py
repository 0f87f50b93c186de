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
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from segeval.errors import DataError, FileFormatError

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
    if task not in TASKS:
        raise DataError(f"{where}: task {task!r} has no saved-state support")
    return importlib.import_module(TASKS[task])


def load_state(path: str | os.PathLike[str]) -> tuple[dict[str, Any], Any]:
    """``(header, stats)`` of a saved state; :class:`DataError` naming the file if it is not one."""
    if not _is_zip(path):
        raise FileFormatError(f"{path}: not a segeval state file (not an .npz archive; "
                              f"'segeval score --save-state' writes one)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            header = json.loads(str(npz["header"]))
            arrays = {k: npz[k] for k in npz.files if k != "header"}
    except FileNotFoundError:
        raise FileFormatError(f"{path}: no such file") from None
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, json.JSONDecodeError) as e:
        raise FileFormatError(f"{path}: not a segeval state file ({e})") from None
    if not isinstance(header, dict) or header.get("schema") != SCHEMA:
        raise FileFormatError(f"{path}: not a {SCHEMA} state file")
    module = _task_module(_key(header.get("task", "?"), header.get("format")), str(path))
    try:
        stats = module.stats_from_state(header["settings"], arrays)
    except (KeyError, ValueError, TypeError) as e:
        raise FileFormatError(f"{path}: damaged state file ({e})") from None
    return header, stats


def merge_states(paths: list[Path]) -> Any:
    """The result of adding the saved states at ``paths`` (all of the same task and settings)."""
    if not paths:
        raise DataError("no state files to merge")
    first_header, total = load_state(paths[0])
    num_images = first_header["num_images"] or 0
    for path in paths[1:]:
        header, stats = load_state(path)
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
