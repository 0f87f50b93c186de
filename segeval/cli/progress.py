"""The terminal progress bar the commands share (tqdm on stderr; off with ``quiet``, when
stderr is not a terminal, and for runs shorter than half a second)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar(desc: str, quiet: bool, unit: str = "img"
                 ) -> Iterator[Callable[[int, int], Any]]:
    """Yield ``progress(done, total)``, the callback :func:`segeval.evaluate` and the
    leaderboard take. With ``quiet``, a callback that does nothing (tqdm, ~25 ms of start-up,
    is not imported)."""
    if quiet:
        yield lambda done, total: None
        return
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: the engines fork worker processes
    bar = tqdm(total=0, file=sys.stderr, unit=unit, delay=0.5, disable=True if quiet else None,
               desc=desc, dynamic_ncols=True)

    def progress(done: int, total: int) -> None:
        if bar.total != total:
            bar.reset(total=total)
        bar.update(done - bar.n)

    try:
        yield progress
    finally:
        bar.close()
