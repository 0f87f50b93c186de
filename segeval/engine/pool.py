"""A supervised local process pool: a worker that dies is noticed at once, never a hang.

:func:`imap_supervised` maps a function over items in worker processes and yields
``(index, ok, value)`` for every item, in input order. Unlike ``multiprocessing.Pool``, a worker
killed by a signal (SIGKILL, a segfault, the OOM killer) or exiting on its own does not hang the
run: the item it held comes back as a :class:`WorkerDied`, a fresh worker is started, and the
other items go on. An exception raised by the function comes back as a value too; the caller
decides whether to stop.

How it works: every worker has one duplex pipe to the parent. The parent sends a small batch of
items to an idle worker; the worker sends one message per finished item (and one per
:func:`note`), so the parent always knows which item a worker holds: the first unfinished item
of its batch. The parent waits with :func:`multiprocessing.connection.wait` on the pipes *and*
the process sentinels, so a death wakes it up at once. Workers are forked where the platform
has ``fork`` (the function, the initializer and the items are inherited, only indices travel),
else spawned (the function and initializer are pickled once per worker, each item once).

Workers ignore SIGINT (Ctrl-C is the parent's to handle; it is blocked while a worker starts,
so a Ctrl-C at that moment cannot interrupt the start-up either), take the default action on
SIGTERM, die with the parent on Linux (``PR_SET_PDEATHSIG``), exit quietly when their pipe is
closed, and never print a traceback. When the generator is closed (the loop ends, ``break``, an
exception, ``KeyboardInterrupt``, garbage collection), busy workers get SIGTERM, idle ones see
their pipe closed, and any still alive after about one second get SIGKILL; all are joined (no
zombies) and every pipe is closed.

>>> list(imap_supervised(abs, [-1, 2, -3], jobs=2))
[(0, True, 1), (1, True, 2), (2, True, 3)]
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import multiprocessing
import os
import pickle
import signal
import sys
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from multiprocessing.connection import Connection, wait
from typing import Any

__all__ = ["WorkerDied", "imap_supervised", "note"]

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
_KILL_AFTER_S = 1.0  # grace between SIGTERM (or a closed pipe) and SIGKILL at shutdown

# Set in a worker process only: its pipe to the parent, and its pid (a process forked by ``func``
# inherits the module but must not write into its parent's pipe).
_note_conn: Connection | None = None
_note_pid: int | None = None


class WorkerDied(Exception):
    """A worker process died while it held an item.

    Attributes: ``index`` (the item's position in the input), ``note`` (the last value the worker
    passed to :func:`note` while on that item, or ``None``), ``exitcode`` (the worker's exit
    status; negative: killed by signal ``-exitcode``; ``0`` or positive: it exited on its own,
    e.g. ``os._exit()`` in the function). ``str(err)`` is one line, e.g. ``worker process died
    (killed by signal 9, SIGKILL) while scoring item 3``, also ``args[0]``. Instances pickle.

    >>> str(WorkerDied(3, None, -9))
    'worker process died (killed by signal 9, SIGKILL) while scoring item 3'
    >>> str(WorkerDied(0, "a.png", 1))
    'worker process died (exit code 1) while scoring item 0'
    """

    def __init__(self, index: int, note: Any = None, exitcode: int = 0) -> None:
        self.index = int(index)
        self.note = note
        self.exitcode = int(exitcode)
        super().__init__(
            f"worker process died ({_describe_exit(self.exitcode)}) while scoring item {index}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.index, self.note, self.exitcode))

    @property
    def cause(self) -> str:
        """How the worker died: ``killed by signal 9, SIGKILL`` or ``exit code 1``."""
        return _describe_exit(self.exitcode)


def _describe_exit(exitcode: int) -> str:
    """``killed by signal 9, SIGKILL`` for a negative exit code, else ``exit code N``."""
    if exitcode >= 0:
        return f"exit code {exitcode}"
    try:
        name = signal.Signals(-exitcode).name
    except ValueError:  # a real-time or unknown signal
        return f"killed by signal {-exitcode}"
    return f"killed by signal {-exitcode}, {name}"


class _RemoteTraceback(Exception):
    """The worker's traceback, set as ``__cause__`` of an exception re-created in the parent."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def note(value: Any) -> None:
    """Record where the calling worker is, e.g. a submission index or a file name.

    Call it from inside ``func`` while it runs in a :func:`imap_supervised` worker: if the
    worker then dies, the :class:`WorkerDied` of its item carries the last value noted while on
    that item (notes made on earlier items are forgotten when the next item starts). It costs one
    small pickled message to the parent. ``value`` should be small and picklable; one that cannot
    be pickled is recorded as its ``repr()``. Call it from the thread that runs ``func`` (two
    threads writing at once would garble the pipe). A no-op outside a pool worker (in the
    parent, in a serial run, or in a process that ``func`` itself starts), and after the parent
    has gone.
    """
    conn = _note_conn
    if conn is None or _note_pid != os.getpid():
        return
    try:
        payload = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
    except Exception:
        payload = pickle.dumps(_safe_repr(value), pickle.HIGHEST_PROTOCOL)
    with contextlib.suppress(OSError):  # the parent has gone: the next receive ends this worker
        conn.send_bytes(pickle.dumps(("note", payload), pickle.HIGHEST_PROTOCOL))


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:
        return f"<{type(value).__name__} object>"


def _describe(exc: BaseException) -> str:
    """``TypeName: message`` (or just ``TypeName`` when the message is empty)."""
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable message>"
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


def _portable(exc: BaseException) -> BaseException:
    """``exc`` if it survives a pickle round trip, else a RuntimeError naming it."""
    try:
        back = pickle.loads(pickle.dumps(exc, pickle.HIGHEST_PROTOCOL))
        if type(back) is type(exc):
            return exc
    except Exception:
        pass
    return RuntimeError(_describe(exc))


def _result_message(index: int, ok: bool, value: Any, tb: str | None) -> bytes:
    """The message a worker sends for one finished item: a tuple of plain values whose last
    member is the pickled value, so the parent can always tell which item it is about."""
    if ok:
        try:
            payload = pickle.dumps(value, pickle.HIGHEST_PROTOCOL)
        except Exception as exc:
            ok, tb = False, None
            value = RuntimeError(
                f"the result of item {index} cannot be sent to the parent: {_describe(exc)}"
            )
    if not ok:
        payload = pickle.dumps(_portable(value), pickle.HIGHEST_PROTOCOL)
    return pickle.dumps(("done", index, ok, tb, payload), pickle.HIGHEST_PROTOCOL)


def _die_with_parent(parent_pid: int) -> None:
    """Linux: ask for SIGKILL when the parent dies; exit now if it already has."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except Exception:  # no libc symbol, a sandbox: carry on without it
            pass
    if os.getppid() != parent_pid:  # the parent died before the prctl call
        os._exit(0)


def _worker(
    conn: Connection,
    func: Callable[[Any], Any],
    items: list[Any] | None,
    initializer: Callable[[], Any] | None,
    parent_pid: int,
    inherited: list[Connection],
) -> None:
    """A worker's main loop: receive batches of ``(index, pickled item or None)``, send one
    message per item. Never raises and never prints a traceback."""
    global _note_conn, _note_pid
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if hasattr(signal, "pthread_sigmask"):  # blocked by the parent while it started us
            signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        _die_with_parent(parent_pid)
        # Forked: the parent's ends of every pipe (this worker's own included) were inherited;
        # close them, or a closed parent end would never read as EOF here or in a sibling.
        for other in inherited:
            other.close()
        _note_conn, _note_pid = conn, os.getpid()
        init_error: BaseException | None = None
        init_tb: str | None = None
        if initializer is not None:
            try:
                initializer()
            except BaseException as exc:  # every item this worker gets fails with it
                init_error, init_tb = exc, traceback.format_exc()
        while True:
            try:
                batch = conn.recv()
            except (EOFError, OSError):  # the parent closed the pipe, or has gone
                return
            if batch is None:
                return
            for index, payload in batch:
                ok, tb = False, init_tb
                if init_error is not None:
                    value: Any = init_error
                else:
                    try:
                        item = items[index] if payload is None else pickle.loads(payload)
                        value, ok = func(item), True
                    except BaseException as exc:  # SystemExit from func included
                        value, tb = exc, traceback.format_exc()
                message = _result_message(index, ok, value, tb)
                del value
                try:
                    conn.send_bytes(message)
                except OSError:
                    return
    except BaseException:  # a bug here, not in func: die quietly, the parent reports it
        os._exit(70)
    finally:
        _note_conn = None
        conn.close()


class _Worker:
    """The parent's view of one worker: its process, its pipe, the items it holds (in the
    order it processes them) and the last note on the first of them."""

    def __init__(self, process: Any, conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.held: collections.deque[int] = collections.deque()
        self.note: Any = None


def _hold_sigint(forked: bool) -> Any:
    """Block SIGINT in this thread while a worker starts (it inherits the blocked signal and
    ignores it before unblocking: a Ctrl-C at that moment never interrupts its start-up with a
    traceback); returns the mask to restore, or ``None`` where there is no
    ``pthread_sigmask``."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    if not forked:  # its first start would unblock SIGINT in this thread again
        from multiprocessing import resource_tracker

        resource_tracker.ensure_running()
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})


def _context() -> tuple[Any, bool]:
    """The multiprocessing context to use, and whether it forks."""
    forked = "fork" in multiprocessing.get_all_start_methods()
    return multiprocessing.get_context("fork" if forked else "spawn"), forked


def imap_supervised(
    func: Callable[[Any], Any],
    items: Iterable[Any],
    *,
    jobs: int,
    batch: int | None = None,
    initializer: Callable[[], Any] | None = None,
) -> Iterator[tuple[int, bool, Any]]:
    """Yield ``(index, ok, value)`` for every item, in input order, from ``jobs`` workers.

    * ``ok=True``: ``value = func(item)``.
    * ``ok=False``: ``value`` is the exception ``func`` raised in the worker, re-created here
      with the same type and message (its ``__cause__`` holds the worker's traceback text); if
      it cannot be pickled, a ``RuntimeError('TypeName: message')``. A result that cannot be
      pickled, or an item that cannot be (spawn only), gives a ``RuntimeError`` for that item.
      If ``initializer`` raised in a worker, every item that worker gets fails with that error.
    * ``ok=False`` with a :class:`WorkerDied`: the worker died (a signal, ``os._exit``) while it
      held this item. A fresh worker takes over, and the items queued behind it in its batch
      are sent again; they are not lost, and none is run twice after it finished.

    ``jobs``: the number of worker processes (below 1 counts as 1; one worker is still
    supervised), never more than there are items; workers are started as items need them. ``batch``:
    items sent to a worker at a time (default ``max(1, min(8, n // (jobs * 4)))``); results
    come back one by one as each item is done. ``initializer()`` runs once in each worker,
    restarted ones included. ``items`` is read into a list first; with no items, nothing is
    started and nothing is yielded.

    ``func``, ``initializer`` and the items must be picklable where workers are spawned
    (platforms without ``fork``); where they are forked they are inherited: a worker sees the
    items as they are when it is forked, restarted ones included (do not mutate them meanwhile).
    ``func`` may call :func:`note` to say what it is working on.

    Stopping early (``close()``, ``break``, an exception in the loop, ``KeyboardInterrupt``)
    terminates the workers: SIGTERM, then SIGKILL after about a second, all joined. On Linux a
    worker is killed when the *thread* that started it exits, so iterate from one thread that
    outlives the iteration. A ``func`` that hangs forever hangs the pool (there is no timeout).

    Raises ``ValueError`` (at once, not at the first ``next()``) when ``batch`` is given and is
    less than 1.
    """
    if batch is not None and int(batch) < 1:
        from segeval.errors import bad_value

        raise bad_value("batch", "a positive integer or None", batch)
    todo = list(items)
    n = len(todo)
    jobs = max(1, min(int(jobs), n))
    size = max(1, min(8, n // (jobs * 4))) if batch is None else int(batch)
    return _supervise(func, todo, jobs, size, initializer)


def _supervise(
    func: Callable[[Any], Any],
    items: list[Any],
    jobs: int,
    size: int,
    initializer: Callable[[], Any] | None,
) -> Iterator[tuple[int, bool, Any]]:
    n = len(items)
    if n == 0:
        return
    ctx, forked = _context()
    pending: collections.deque[int] = collections.deque(range(n))
    finished: dict[int, tuple[bool, Any]] = {}
    workers: list[_Worker] = []
    parent_pid = os.getpid()
    next_out = 0

    def start() -> None:
        parent_end, child_end = ctx.Pipe(duplex=True)
        inherited = [w.conn for w in workers] + [parent_end] if forked else []
        process = ctx.Process(
            target=_worker,
            args=(child_end, func, items if forked else None, initializer, parent_pid, inherited),
            name="segeval-pool-worker",
            daemon=True,
        )
        held = _hold_sigint(forked)
        try:
            try:
                process.start()
            except BaseException:
                parent_end.close()
                raise
            finally:
                child_end.close()
            workers.append(_Worker(process, parent_end))
        finally:  # a Ctrl-C that came meanwhile is raised here, with the worker on the list
            if held is not None:
                signal.pthread_sigmask(signal.SIG_SETMASK, held)

    def send_batch(worker: _Worker) -> None:
        chunk: list[tuple[int, bytes | None]] = []
        while pending and len(chunk) < size:
            index = pending.popleft()
            if forked:
                chunk.append((index, None))
                continue
            try:
                chunk.append((index, pickle.dumps(items[index], pickle.HIGHEST_PROTOCOL)))
            except Exception as exc:
                finished[index] = (
                    False,
                    RuntimeError(f"item {index} cannot be sent to a worker: {_describe(exc)}"),
                )
        if not chunk:
            return
        worker.held.extend(index for index, _ in chunk)
        worker.note = None
        with contextlib.suppress(OSError):  # it is dead already: its sentinel will tell
            worker.conn.send(chunk)

    def receive(worker: _Worker, data: bytes) -> None:
        message = pickle.loads(data)
        if message[0] == "note":
            try:
                worker.note = pickle.loads(message[1])
            except Exception as exc:
                worker.note = f"<a note that cannot be read here: {_describe(exc)}>"
            return
        _, index, ok, tb, payload = message
        if not worker.held or worker.held[0] != index:  # pragma: no cover - a protocol bug
            raise RuntimeError(f"worker sent item {index}, expected {list(worker.held)[:1]}")
        worker.held.popleft()
        worker.note = None
        try:
            value = pickle.loads(payload)
        except Exception as exc:
            ok = False
            value = RuntimeError(
                f"the result of item {index} cannot be read here: {_describe(exc)}"
            )
        if not ok and tb and isinstance(value, BaseException) and value.__cause__ is None:
            value.__cause__ = _RemoteTraceback(f'\n"""\n{tb}"""')
        finished[index] = (ok, value)

    def drain(worker: _Worker) -> bool:
        """Read every message waiting on the worker's pipe; False once it reads as closed."""
        try:
            while worker.conn.poll():
                receive(worker, worker.conn.recv_bytes())
        except (EOFError, OSError):
            return False
        return True

    def bury(worker: _Worker) -> None:
        """Reap a dead (or exiting) worker; its first held item died with it, the rest are
        queued again at the front, in order."""
        process = worker.process
        process.join(_KILL_AFTER_S)
        if process.is_alive():  # its pipe closed but it lingers: finish it
            process.kill()
            process.join()
        workers.remove(worker)
        worker.conn.close()
        exitcode = process.exitcode if process.exitcode is not None else -signal.SIGKILL
        process.close()
        if worker.held:
            index = worker.held.popleft()
            finished[index] = (False, WorkerDied(index, worker.note, exitcode))
            pending.extendleft(reversed(worker.held))
            worker.held.clear()

    try:
        while True:
            while pending and len(workers) < jobs:
                start()
            for worker in workers:
                if pending and not worker.held:
                    send_batch(worker)
            while next_out in finished:
                ok, value = finished.pop(next_out)
                yield next_out, ok, value
                next_out += 1
            if next_out >= n:
                return
            handles = [w.conn for w in workers] + [w.process.sentinel for w in workers]
            ready = wait(handles)
            for worker in list(workers):
                died = worker.process.sentinel in ready
                if (died or worker.conn in ready) and (not drain(worker) or died):
                    bury(worker)
    finally:
        _shutdown(workers)


def _shutdown(workers: list[_Worker]) -> None:
    """Stop every worker: SIGTERM to busy ones, a closed pipe for idle ones, SIGKILL to any
    still alive after about a second; join them all and close every pipe and sentinel."""
    for worker in workers:
        if worker.held and worker.process.is_alive():
            worker.process.terminate()
        worker.conn.close()
    deadline = time.monotonic() + _KILL_AFTER_S
    for worker in workers:
        worker.process.join(max(0.0, deadline - time.monotonic()))
    for worker in workers:
        if worker.process.is_alive():
            worker.process.kill()
        worker.process.join()
        worker.process.close()
    workers.clear()
