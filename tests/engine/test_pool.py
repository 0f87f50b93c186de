"""The supervised pool: ordered results, exceptions as values, dead workers reported, no hang."""

from __future__ import annotations

import contextlib
import ctypes
import faulthandler
import os
import pickle
import signal
import sys
import time

import pytest

from segeval.engine import pool
from segeval.engine.pool import WorkerDied, imap_supervised, note

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs signal.alarm")


@contextlib.contextmanager
def deadline(seconds: int):
    """Fail (TimeoutError) instead of hanging the suite when the block runs too long."""

    def on_alarm(signum, frame):
        raise TimeoutError(f"took more than {seconds} s")

    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def run(func, items, seconds: int = 10, **kwargs):
    with deadline(seconds):
        return list(imap_supervised(func, items, **kwargs))


def gone(pid: int, wait_s: float = 3.0) -> bool:
    """Whether ``pid`` no longer exists (reaped, not a zombie) within ``wait_s``."""
    end = time.monotonic() + wait_s
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if time.monotonic() > end:
            return False
        time.sleep(0.02)


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


# Module-level functions, so that they pickle.


def square(x: int) -> int:
    return x * x


def fail_on_3(x: int) -> int:
    if x == 3:
        raise ValueError(f"bad item {x}")
    return x + 100


def kill_on_3(x: int) -> int:
    if x == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return x * 2


def note_then_kill(x: int) -> int:
    note(("submission", x))
    if x == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return x


def quiet_crash() -> None:
    """No core file, and no faulthandler dump (pytest enables it; a fork inherits it)."""
    import resource

    faulthandler.disable()
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def abort_on_2(x: int) -> int:
    if x == 2:
        quiet_crash()
        os.abort()
    return x


def segfault_on_2(x: int) -> int:
    if x == 2:
        quiet_crash()
        ctypes.string_at(0)
    return x


def exit_on_0(x: int) -> int:
    if x == 0:
        os._exit(3)
    return x


def pid_then_sleep(x: int) -> int:
    if x >= 2:
        time.sleep(30)
    return os.getpid()


class Unpicklable(Exception):
    def __init__(self, a, b):  # holds a lambda: it cannot be pickled (even where a library
        super().__init__(f"{a}/{b}")  # such as dask's tblib teaches pickle more exceptions)
        self.callback = lambda: a


def raise_unpicklable(x: int) -> int:
    raise Unpicklable(x, "two")


def return_unpicklable(x: int):
    return lambda: x


_initialized: list[int] = []


def init() -> None:
    _initialized.append(os.getpid())


def initialized(x: int) -> int:
    return len(_initialized)


def bad_init() -> None:
    raise OSError("no GPU here")


@pytest.mark.parametrize("jobs", [1, 2, 3])
@pytest.mark.parametrize("n", [0, 1, 7, 50])
def test_results_in_order_equal_a_plain_loop(jobs, n) -> None:
    got = run(square, range(n), jobs=jobs)
    assert got == [(i, True, i * i) for i in range(n)]


@pytest.mark.parametrize("batch", [1, 3, 100])
def test_any_batch_size_keeps_the_order(batch) -> None:
    assert run(square, range(20), jobs=3, batch=batch) == [(i, True, i * i) for i in range(20)]


def test_a_bad_batch_size_is_refused_at_once() -> None:
    with pytest.raises(ValueError, match="batch"):
        imap_supervised(square, [1], jobs=1, batch=0)


def test_an_exception_comes_back_with_its_type_and_message() -> None:
    got = run(fail_on_3, range(8), jobs=2, batch=2)
    assert [(i, ok) for i, ok, _ in got] == [(i, i != 3) for i in range(8)]
    error = got[3][2]
    assert type(error) is ValueError
    assert str(error) == "bad item 3"
    assert "fail_on_3" in str(error.__cause__)  # the worker's traceback
    assert [v for _, ok, v in got if ok] == [i + 100 for i in range(8) if i != 3]


def test_an_exception_that_cannot_be_pickled_becomes_a_runtime_error() -> None:
    ((_, ok, error),) = run(raise_unpicklable, [5], jobs=1)
    assert not ok
    assert type(error) is RuntimeError
    assert str(error) == "Unpicklable: 5/two"


def test_a_result_that_cannot_be_pickled_becomes_a_runtime_error() -> None:
    ((_, ok, error),) = run(return_unpicklable, [5], jobs=1)
    assert not ok
    assert type(error) is RuntimeError
    assert "result of item 0 cannot be sent" in str(error)


@pytest.mark.parametrize(("jobs", "batch"), [(1, 1), (2, 3), (3, None)])
def test_a_killed_worker_is_reported_and_the_pool_goes_on(jobs, batch) -> None:
    start = time.monotonic()
    got = run(kill_on_3, range(12), jobs=jobs, batch=batch)
    assert time.monotonic() - start < 5
    assert [i for i, _, _ in got] == list(range(12))
    _, ok, died = got[3]
    assert not ok
    assert isinstance(died, WorkerDied)
    assert (died.index, died.exitcode, died.note) == (3, -9, None)
    assert str(died) == "worker process died (killed by signal 9, SIGKILL) while scoring item 3"
    # the items after item 3 in its batch were sent again, not lost
    assert [(i, ok, v) for i, ok, v in got if i != 3] == [
        (i, True, 2 * i) for i in range(12) if i != 3
    ]


def test_the_note_made_before_a_death_is_reported() -> None:
    got = run(note_then_kill, range(4), jobs=1, batch=4)
    died = got[1][2]
    assert isinstance(died, WorkerDied)
    assert died.note == ("submission", 1)
    assert [(i, ok, v) for i, ok, v in got if i != 1] == [(0, True, 0), (2, True, 2), (3, True, 3)]


def test_note_is_a_no_op_outside_a_worker() -> None:
    assert note("anything") is None


def test_worker_died_pickles_and_reads_in_one_line() -> None:
    err = pickle.loads(pickle.dumps(WorkerDied(7, {"file": "a.png"}, -6)))
    assert (type(err), err.index, err.note, err.exitcode) == (WorkerDied, 7, {"file": "a.png"}, -6)
    assert str(err) == "worker process died (killed by signal 6, SIGABRT) while scoring item 7"
    assert str(WorkerDied(0, None, 3)) == "worker process died (exit code 3) while scoring item 0"


@pytest.mark.parametrize(
    ("func", "sig"), [(abort_on_2, signal.SIGABRT), (segfault_on_2, signal.SIGSEGV)]
)
def test_a_crash_becomes_worker_died(func, sig) -> None:
    got = run(func, range(5), jobs=2)
    died = got[2][2]
    assert isinstance(died, WorkerDied)
    assert (died.index, died.exitcode) == (2, -sig)
    assert [(i, ok, v) for i, ok, v in got if i != 2] == [(i, True, i) for i in (0, 1, 3, 4)]


def test_a_worker_that_exits_on_its_own_is_reported_with_its_exit_code() -> None:
    got = run(exit_on_0, range(3), jobs=1)
    assert isinstance(got[0][2], WorkerDied)
    assert got[0][2].exitcode == 3
    assert got[1:] == [(1, True, 1), (2, True, 2)]


def test_closing_the_generator_early_ends_the_workers() -> None:
    with deadline(10):
        results = imap_supervised(pid_then_sleep, range(6), jobs=2, batch=1)
        pids = {next(results)[2], next(results)[2]}  # items 0 and 1: one per worker
        assert len(pids) == 2
        start = time.monotonic()
        results.close()  # items 2 and 3 are sleeping for 30 s in the workers
        assert time.monotonic() - start < 3
    assert all(gone(pid) for pid in pids)


def test_an_exception_in_the_loop_ends_the_workers() -> None:
    pids = []
    with deadline(10), pytest.raises(KeyError):
        for _, _, pid in imap_supervised(pid_then_sleep, range(6), jobs=2, batch=1):
            pids.append(pid)
            if len(pids) == 2:
                raise KeyError("stop")
    assert pids
    assert all(gone(pid) for pid in pids)


def test_initializer_runs_once_in_each_worker() -> None:
    got = run(initialized, range(10), jobs=2, initializer=init)
    assert got == [(i, True, 1) for i in range(10)]
    assert _initialized == []  # it ran in the workers, not here


def test_a_failing_initializer_fails_the_items_of_its_worker() -> None:
    got = run(square, range(3), jobs=1, initializer=bad_init)
    assert [(i, ok, type(v), str(v)) for i, ok, v in got] == [
        (i, False, OSError, "no GPU here") for i in range(3)
    ]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/fd")
def test_no_pipe_or_process_is_left_behind() -> None:
    run(square, range(5), jobs=2)  # warm up what imports and the first fork open once
    before = open_fds()
    run(kill_on_3, range(8), jobs=2)
    results = imap_supervised(pid_then_sleep, range(6), jobs=2, batch=1)
    next(results)
    results.close()
    assert open_fds() == before
    import multiprocessing

    assert multiprocessing.active_children() == []


def test_spawned_workers_work_too(monkeypatch) -> None:
    import multiprocessing

    monkeypatch.setattr(pool, "_context", lambda: (multiprocessing.get_context("spawn"), False))
    got = run(kill_on_3, range(5), 30, jobs=2, batch=2)
    assert isinstance(got[3][2], WorkerDied)
    assert [(i, ok, v) for i, ok, v in got if i != 3] == [(i, True, 2 * i) for i in (0, 1, 2, 4)]
