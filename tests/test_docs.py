"""The Python examples in the docs run and print what the docs say."""

from __future__ import annotations

import doctest

import pytest

from tests.conftest import REPO


@pytest.mark.parametrize("page", ["metrics.md"])
def test_doc_examples(page: str) -> None:
    failures, tried = doctest.testfile(str(REPO / "docs" / page), module_relative=False)
    assert tried > 0 and failures == 0
