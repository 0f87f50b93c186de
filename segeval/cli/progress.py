"""The terminal progress bar the commands share (tqdm on stderr; off with ``quiet``, when
stderr is not a terminal, and for runs shorter than half a second)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from typing import Any


@contextlib.contextmanager
def progress_bar(desc: str, quiet: bool) -> Iterator[tuple[Callable[[int], Any],
                                                            Callable[[int], Any]]]:
    """Yield ``(on_start, update)``: ``on_start(n)`` sets the total, ``update(k)`` advances."""
    from tqdm import tqdm

    tqdm.monitor_interval = 0  # no monitor thread: the engines fork worker processes
    bar = tqdm(total=0, file=sys.stderr, unit="img", delay=0.5, disable=True if quiet else None,
               desc=desc, dynamic_ncols=True)

    def on_start(n: int) -> None:
        bar.reset(total=n)

    try:
        yield on_start, bar.update
    finally:
        bar.close()
