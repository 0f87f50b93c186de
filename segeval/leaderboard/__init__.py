"""Leaderboards: many submissions against one ground truth, ranked, with confidence intervals.

* :func:`run_leaderboard` (:mod:`.runner`) evaluates every sub-folder and ``.zip`` of a folder
  and ranks them; :func:`write_reports` (:mod:`.report`) writes ``leaderboard.{csv,json,md,html}``,
  one result JSON per submission and the plots.
* Every submission is scored by the format's adapter (:mod:`segeval.formats.registry`) as
  ``segeval score`` scores a prediction folder: the same plan, the same document.
  :mod:`.tasks` says how each kind of evaluation (semantic, panoptic, instance) is ranked;
  :mod:`.sources` reads submissions (folders, zip archives read safely in memory);
  :mod:`.bootstrap` the intervals; :mod:`.cache` the SQLite result cache.

Conventions: every metric is "higher is better" and a fraction; ties share a rank (``1, 2, 2,
4``); a failed submission has ``rank`` ``None`` and its one-line ``error``.
"""

from __future__ import annotations

from typing import Any

__all__ = ["run_leaderboard", "write_reports"]


def __getattr__(name: str) -> Any:
    if name == "run_leaderboard":
        from segeval.leaderboard.runner import run_leaderboard

        return run_leaderboard
    if name == "write_reports":
        from segeval.leaderboard.report import write_reports

        return write_reports
    raise AttributeError(f"module 'segeval.leaderboard' has no attribute {name!r}")
