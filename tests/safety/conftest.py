"""Fixtures of the safety tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.leaderboard.conftest import board_data  # noqa: F401 - a fixture, used by board


@pytest.fixture
def board(board_data) -> tuple[Path, Path]:  # noqa: F811 - the fixture imported above
    """``gt/`` with 12 images and ``subs/`` with the four QUALITY folders."""
    gt, subs, _ = board_data
    return gt, subs
