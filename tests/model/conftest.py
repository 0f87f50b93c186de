"""The model tests run their small matrix products on one BLAS thread: on a shared 2-core
machine, threads only wait for each other at these sizes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - comes with scikit-learn, a test dependency
        yield
        return
    with threadpool_limits(1, user_api="blas"):
        yield
