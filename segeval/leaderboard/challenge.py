"""Entry points for challenge platforms: EvalAI-style ``evaluate()`` and a Codabench scorer.

Both score *one* submission (a folder, or a ``.zip`` read safely in memory, see
:mod:`segeval.leaderboard.sources`) with the leaderboard's machinery, so the numbers are those
of ``segeval score`` and of ``segeval leaderboard``. Metric names are the keys of
``segeval score``'s JSON ``metrics`` (semantic: ``miou``, ``pixel_accuracy``,
``mean_pixel_accuracy``, ``fwiou``, ``mean_dice``), values are fractions, an undefined value is
``None`` (JSON ``null``).

* :func:`evaluate` -- the function an EvalAI challenge's evaluation script exposes:
  ``evaluate(test_annotation_file, user_submission_file, phase_codename, **kwargs)`` returning
  ``{"result": [{split: {metric: value}}], "submission_result": {metric: value}}``.
* :func:`codabench` (``segeval codabench INPUT_DIR OUTPUT_DIR``) -- a CodaLab/Codabench scoring
  program: ground truth in ``INPUT_DIR/ref``, the submission in ``INPUT_DIR/res`` (its files, or
  one ``.zip``), scores written to ``OUTPUT_DIR/scores.json`` and ``OUTPUT_DIR/scores.txt``.

A bad submission raises :class:`~segeval.errors.SegevalError` with one line naming the file;
platforms show that line to the participant.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from segeval.errors import FileFormatError, MissingFileError, UsageError
from segeval.leaderboard.sources import DEFAULT_MAX_BYTES, SubmissionError

log = logging.getLogger("segeval")

#: Keyword arguments EvalAI passes that are not scoring options.
PLATFORM_KWARGS = ("submission_metadata",)


@contextlib.contextmanager
def _ground_truth(path: Path, max_bytes: int) -> Iterator[Path]:
    """The ground-truth folder: ``path`` itself, or a ``.zip`` checked like a submission and
    unpacked into a temporary folder (names validated first; removed afterwards)."""
    if path.is_dir() or (path.is_file() and path.suffix.lower() == ".json"):
        yield path  # a folder, or the ground-truth JSON itself (panoptic, instance)
        return
    if not path.is_file():
        raise MissingFileError(f"{path}: no such ground-truth folder or file")
    from segeval.leaderboard.sources import list_zip

    try:
        members, _ = list_zip(path, max_bytes)
    except SubmissionError as e:
        raise MissingFileError(f"ground truth {e}") from None
    with tempfile.TemporaryDirectory(prefix="segeval-gt-") as tmp, zipfile.ZipFile(path) as zf:
        root = Path(tmp)
        for member in members:
            target = root / member
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(member) as src:
                    data = src.read(members[member] + 1)
            except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as e:
                raise FileFormatError(f"{path}:{member}: corrupt ground-truth archive member "
                                      f"({e})") from None
            if len(data) > members[member]:
                raise FileFormatError(f"{path}:{member}: inflates beyond its declared size")
            target.write_bytes(data)
        entries = [p for p in root.iterdir() if not p.name.startswith(".")]
        yield entries[0] if len(entries) == 1 and entries[0].is_dir() else root


def score_submission(
    gt: str | os.PathLike[str],
    submission: str | os.PathLike[str],
    format: str = "folder",
    *,
    task: str | None = None,
    jobs: int | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
    **options: Any,
) -> dict[str, Any]:
    """Score one submission folder or ``.zip`` against ``gt`` (a folder or a ``.zip``).

    Returns ``segeval score``'s JSON document; ``options`` are ``segeval.evaluate``'s
    (``num_classes``, ``class_names``, ``ignore_index``, ``split``, ``absent``, ``missing``).
    Raises :class:`~segeval.errors.SegevalError` with the reason for a bad submission.
    """
    from segeval.leaderboard.runner import prepare, score_submissions
    from segeval.leaderboard.sources import open_submission

    sub_path = Path(submission)
    if not sub_path.exists():
        raise MissingFileError(f"{sub_path}: no such submission folder or file")
    with _ground_truth(Path(gt), max_bytes) as gt_folder:
        setup = prepare(gt_folder, format, task=task, **options)
        sub = open_submission(sub_path, max_bytes, setup.limits)
        [outcome] = score_submissions(setup, [sub], jobs=jobs)
    if outcome.status != "ok":
        raise SubmissionError(outcome.error or f"{sub_path}: cannot be scored")
    return outcome.document  # type: ignore[return-value]


def metric_values(document: dict[str, Any]) -> dict[str, float | None]:
    """The rankable metrics of a result document, by name (``None`` where undefined)."""
    from segeval.leaderboard.tasks import TASKS

    names = TASKS[document["task"]].metrics
    return {m: document["metrics"].get(m) for m in names}


def evaluate(
    test_annotation_file: str | os.PathLike[str],
    user_submission_file: str | os.PathLike[str],
    phase_codename: str,
    **kwargs: Any,
) -> dict[str, Any]:
    """EvalAI's evaluation-script entry point.

    ``test_annotation_file`` is the ground truth (a folder, or a ``.zip`` of it);
    ``user_submission_file`` the participant's folder or ``.zip``. Keyword arguments: ``format``
    (default ``"folder"``), ``task``, ``split_codename`` (the key of the result, default
    ``"test_split"``), ``jobs``, ``max_bytes``, and ``segeval score``'s options (``num_classes``,
    ``class_names``, ``ignore_index``, ``split``, ``absent``, ``missing``); EvalAI's own
    ``submission_metadata`` is accepted and ignored. ``phase_codename`` is only logged.

    Returns ``{"result": [{split_codename: metrics}], "submission_result": metrics}`` with
    ``metrics`` a ``{name: value}`` dict.
    """
    options = {k: v for k, v in kwargs.items() if k not in PLATFORM_KWARGS}
    fmt = options.pop("format", "folder")
    split_codename = options.pop("split_codename", "test_split")
    if not isinstance(split_codename, str) or not split_codename:
        raise UsageError(f"split_codename must be a non-empty string, not {split_codename!r}")
    log.info("phase %s: scoring %s", phase_codename, user_submission_file)
    document = score_submission(test_annotation_file, user_submission_file, fmt, **options)
    values = metric_values(document)
    return {"result": [{split_codename: values}], "submission_result": values}


def codabench(input_dir: str | os.PathLike[str], output_dir: str | os.PathLike[str],
              format: str = "folder", **options: Any) -> dict[str, float | None]:
    """A Codabench/CodaLab scoring program: ``input_dir/ref`` against ``input_dir/res``.

    ``res`` is the unpacked submission; when it holds nothing but one ``.zip`` file (not a
    symbolic link), that archive is the submission. A symbolic link anywhere in ``res`` fails
    the submission with one line naming it (``res`` itself may be one): a participant's link
    could reach the hidden ground truth in ``ref``. Writes ``output_dir/scores.json``
    (``{metric: value}``) and ``output_dir/scores.txt`` (``metric: value`` lines), creating
    ``output_dir``; returns the scores.
    """
    from segeval.report import render

    input_dir, output_dir = Path(input_dir), Path(output_dir)
    ref, res = input_dir / "ref", input_dir / "res"
    for folder, what in ((ref, "reference (ground truth)"), (res, "result (submission)")):
        if not folder.exists():
            raise MissingFileError(f"{folder}: no {what} folder")
    submission = res
    if res.is_dir():
        entries = [p for p in res.iterdir() if not p.name.startswith(".")]
        if len(entries) == 1 and entries[0].suffix.lower() == ".zip" \
                and entries[0].is_file() and not entries[0].is_symlink():
            submission = entries[0]
    document = score_submission(ref, submission, format, **options)
    scores = metric_values(document)
    output_dir.mkdir(parents=True, exist_ok=True)
    text = "".join(f"{k}: {'NaN' if v is None else repr(float(v))}\n" for k, v in scores.items())
    render.write_files({output_dir / "scores.json": render.to_json(scores),
                        output_dir / "scores.txt": text})
    return scores
