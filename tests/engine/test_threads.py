"""The thread engine (``scheduler="threads"``): order, exact merge, errors, progress."""

from __future__ import annotations

import threading
import time

import pytest

from segeval.engine import run
from segeval.errors import DataError
from segeval.formats.base import Plan


def plan_of(score, n: int) -> Plan:
    return Plan(format="test", task="t", items=list(range(n)), score=score, zero=0,
                finish=lambda stats, rows: (stats, rows))


def test_results_merge_in_item_order_on_several_threads() -> None:
    seen: set[str] = set()

    def score(i: int):
        seen.add(threading.current_thread().name)
        time.sleep(0.002 * (i % 3))  # finish out of order
        return i * i, {"image": i}

    stats, rows = run(plan_of(score, 40), jobs=4, scheduler="threads")
    assert stats == sum(i * i for i in range(40))
    assert [r["image"] for r in rows] == list(range(40))
    assert len(seen) > 1 and all(name.startswith("segeval") for name in seen)


def test_the_first_error_in_item_order_is_raised_and_the_rest_cancelled() -> None:
    started: list[int] = []

    def score(i: int):
        started.append(i)
        if i in (3, 5):
            raise DataError(f"item {i}: bad")
        time.sleep(0.01)
        return 1, None

    with pytest.raises(DataError, match="item 3: bad"):
        run(plan_of(score, 200), jobs=2, scheduler="threads")
    assert len(started) < 200


def test_one_job_runs_in_the_calling_thread_and_reports_progress() -> None:
    calls: list[tuple[int, int]] = []
    names: set[str] = set()

    def score(i: int):
        names.add(threading.current_thread().name)
        return 1, None

    stats, rows = run(plan_of(score, 5), jobs=1, scheduler="threads",
                      progress=lambda d, t: calls.append((d, t)))
    assert (stats, rows) == (5, [])
    assert names == {threading.current_thread().name}
    assert calls == [(0, 5), (1, 5), (2, 5), (3, 5), (4, 5), (5, 5)]
