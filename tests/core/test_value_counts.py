"""``value_counts`` (:mod:`segeval.core.kernels.c_count`, runs of equal values added once)
against :func:`numpy.bincount`, and its refusal of values outside the table."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

c_count = pytest.importorskip("segeval.core.kernels.c_count",
                             reason="the compiled kernels are not built")

DTYPES = (np.uint8, np.uint16, np.int32, np.uint32, np.int64)


@settings(max_examples=200, deadline=None)
@given(dtype=st.sampled_from(DTYPES), n=st.integers(0, 5000), top=st.integers(1, 300),
       run=st.integers(1, 60), seed=st.integers(0, 2**32))
def test_value_counts_is_bincount(dtype, n, top, run, seed) -> None:
    rng = np.random.default_rng(seed)
    values = np.repeat(rng.integers(0, min(top, np.iinfo(dtype).max + 1), n // run + 1),
                       rng.integers(1, 2 * run, n // run + 1))[:n].astype(dtype)
    counts = np.zeros(top, np.int64)
    assert c_count.value_counts(values, counts)
    np.testing.assert_array_equal(counts, np.bincount(values.astype(np.int64), minlength=top))


@pytest.mark.parametrize("dtype", DTYPES)
def test_value_counts_stops_at_the_first_value_outside_the_table(dtype) -> None:
    # the counts hold every value before the first bad one
    for values, want in (([1, 1, 2, 9, 1], [0, 2, 1, 0]), ([9, 1], [0, 0, 0, 0]),
                         ([1, 1, 4], [0, 2, 0, 0]), ([3, 3, 3], [0, 0, 0, 3])):
        counts = np.zeros(4, np.int64)
        ok = c_count.value_counts(np.array(values, dtype), counts)
        assert ok == (max(values) < 4) and counts.tolist() == want
    if np.issubdtype(dtype, np.signedinteger):
        counts = np.zeros(4, np.int64)
        assert not c_count.value_counts(np.array([2, 2, -1, 2], dtype), counts)
        assert counts.tolist() == [0, 0, 2, 0]
