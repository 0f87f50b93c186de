"""The semantic task: its vectorised metrics equal segeval.core.metrics on the summed
statistics, for every metric and absent policy; pairing rules."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from segeval import ConfusionMatrix
from segeval.core import metrics
from segeval.errors import SegevalError, UsageError
from segeval.formats import folder
from segeval.formats.base import File, Folder, Options
from segeval.formats.semantic import SemanticReference
from segeval.leaderboard.runner import Setup, plan_submission
from segeval.leaderboard.sources import Submission
from segeval.leaderboard.tasks import SemanticTask, get_task

TASK = SemanticTask()


def reference(c: int, names: tuple[str, ...] = ()) -> SemanticReference:
    return SemanticReference("folder", {n: File(Folder("gt"), f"{n}.png") for n in names},
                             tuple(str(i) for i in range(c)), 255)


def row(cm: ConfusionMatrix) -> np.ndarray:
    return np.concatenate([metrics.true_positives(cm), metrics.gt_pixels(cm),
                           metrics.pred_pixels(cm)])


@st.composite
def image_tables(draw):
    """Per-image confusion tables with absent classes, never-predicted classes and
    unassigned pixels: (C, [(matrix, unassigned), ...])."""
    c = draw(st.integers(1, 6))
    n = draw(st.integers(1, 5))
    gt_classes = draw(st.lists(st.booleans(), min_size=c, max_size=c))
    pred_classes = draw(st.lists(st.booleans(), min_size=c, max_size=c))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    tables = []
    for _ in range(n):
        m = rng.integers(0, 50, (c, c)) * np.outer(gt_classes, pred_classes)
        u = rng.integers(0, 5, c) * np.array(gt_classes) * draw(st.integers(0, 1))
        tables.append((m, u))
    return c, tables


@settings(max_examples=150, deadline=None)
@given(image_tables(), st.sampled_from(["nan", "exclude-no-gt", "zero"]),
       st.lists(st.integers(0, 3), min_size=5, max_size=5))
def test_replicates_equal_core_metrics(data, absent, weights) -> None:
    c, tables = data
    ref = reference(c)
    w = weights[:len(tables)]
    total = ConfusionMatrix(c, matrix=sum(k * m for k, (m, _) in zip(w, tables, strict=True)),
                            unassigned=sum(k * u for k, (_, u) in zip(w, tables, strict=True)))
    rows = np.stack([row(ConfusionMatrix(c, matrix=m, unassigned=u)) for m, u in tables])
    sums = np.asarray(w, dtype=np.float64) @ rows
    expected = total.result(absent).metrics_dict()
    for metric in TASK.metrics:
        got = SemanticTask(absent).replicates(ref, sums[None, :], metric)
        assert got.shape == (1,)
        want = expected[metric]
        if want is None:
            assert math.isnan(got[0]), metric
        else:
            assert got[0] == pytest.approx(want, abs=1e-12), metric


def test_replicates_are_vectorised_and_unknown_metrics_refused() -> None:
    rng = np.random.default_rng(3)
    ref = reference(3)
    sums = rng.integers(0, 100, (7, 9)).astype(np.float64)
    sums[:, :3] = np.minimum(sums[:, :3], np.minimum(sums[:, 3:6], sums[:, 6:]))
    batch = TASK.replicates(ref, sums, "miou")
    assert batch.shape == (7,)
    for k in range(7):
        assert TASK.replicates(ref, sums[k:k + 1], "miou")[0] == batch[k]
    with pytest.raises(UsageError, match="not a metric of the semantic task"):
        TASK.replicates(ref, sums, "pq")


def sub(members: list[str], kind: str = "zip") -> Submission:
    return Submission("s", Path("s.zip"), kind, {m: 1 for m in members}, "x")


def plan_names(ref: SemanticReference, members: list[str], missing: str = "error") -> list:
    options = Options(num_classes=ref.num_classes, missing=missing)
    setup = Setup("folder", folder, options, ref, TASK, "")
    plan = plan_submission(setup, sub(members))
    return [None if p.pred is None else p.pred.member for p in plan.items]


def test_pairing_by_name_top_folder_duplicates_and_missing() -> None:
    ref = reference(2, names=("a", "b", "dir/c"))
    assert plan_names(ref, ["a.png", "b.PNG", "dir/c.png", "extra.png", "x.txt"]) == \
        ["a.png", "b.PNG", "dir/c.png"]
    assert plan_names(ref, ["team/a.png", "team/b.png", "team/dir/c.png"]) == \
        ["a.png", "b.png", "dir/c.png"]  # members of the view of the top-level folder
    with pytest.raises(SegevalError, match=r"s.zip:a.PNG: the same image as s.zip:a.png \(two "
                                           r"files for one stem\)"):
        plan_names(ref, ["a.png", "a.PNG", "b.png", "dir/c.png"])
    with pytest.raises(SegevalError, match=r"no prediction for 2 of 3 .* \(b, dir/c\)"):
        plan_names(ref, ["a.png"])
    assert plan_names(ref, ["a.png"], missing="zero") == ["a.png", None, None]


def test_task_lookup() -> None:
    assert get_task(None, "voc").name == "semantic"
    assert get_task("semantic", "folder").metrics[0] == "miou"
    with pytest.raises(UsageError, match="unknown task 'nonsense'"):
        get_task("nonsense", "folder")
