"""The leaderboard's result cache: one SQLite file (stdlib ``sqlite3``), by default in ``--out``.

A row is keyed by the SHA-256 of (the task, the ground truth's content and every option that
changes a number, the submission's content hash) and holds what scoring that submission
produced: its status, its error line, its result document (``segeval score``'s JSON) and its
per-image statistics rows (a ``.npy`` blob). A re-run finds unchanged submissions there and
scores only new or changed ones; deleting the file changes nothing but time. Submissions refused
while listing (an unsafe archive) are not cached: that check is cheap and always re-done.

Each row is committed as soon as its submission is scored, so a run killed with SIGKILL keeps
every submission finished before it and a re-run resumes there. A row that cannot be read back
(corrupt JSON or ``.npy`` blob, wrong column types; :meth:`ResultCache.get` returns ``None``) or
that does not fit the run (:func:`segeval.leaderboard.runner.damaged`) is logged as a warning
and scored again, then overwritten; a file that is not an SQLite database at all is not used.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("segeval")

SCHEMA = 1


def cache_key(task: str, reference_digest: str, submission_digest: str) -> str:
    """The hex key of one (task, ground truth + options, submission) evaluation."""
    text = f"segeval-leaderboard/{SCHEMA}\x00{task}\x00{reference_digest}\x00{submission_digest}"
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass
class CachedOutcome:
    """What the cache stores for one scored submission (``rows`` is ``None`` when failed)."""

    status: str
    error: str | None
    document: dict[str, Any] | None
    rows: np.ndarray | None


class ResultCache:
    """A SQLite file of :class:`CachedOutcome` by key; ``path=None`` caches nothing."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None
        if path is not None:
            try:
                self._db = sqlite3.connect(path)
                self._db.execute(
                    "CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, submission TEXT,"
                    " status TEXT, error TEXT, document TEXT, rows BLOB)"
                )
                self._db.commit()
            except sqlite3.DatabaseError as e:
                log.warning("%s: cache not usable (%s); scoring without it", path, e)
                self.close()

    def get(self, key: str) -> CachedOutcome | None:
        if self._db is None:
            return None
        try:
            found = self._db.execute(
                "SELECT status, error, document, rows FROM results WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.DatabaseError as e:
            log.warning("%s: cache not readable (%s)", self.path, e)
            return None
        if found is None:
            return None
        status, error, document, rows = found
        try:
            return CachedOutcome(
                status, error, json.loads(document) if document else None,
                np.load(io.BytesIO(rows), allow_pickle=False) if rows is not None else None,
            )
        except Exception as e:  # any damage to a row (bad JSON, a bad blob, a wrong type)
            log.warning("%s: damaged cache row %s... (%s); scoring it again", self.path,
                        key[:12], f"{type(e).__name__}: {e}"[:200].replace("\n", " "))
            return None

    def put(self, key: str, submission: str, outcome: CachedOutcome) -> None:
        if self._db is None:
            return
        blob = None
        if outcome.rows is not None:
            buf = io.BytesIO()
            np.save(buf, outcome.rows, allow_pickle=False)
            blob = buf.getvalue()
        document = None if outcome.document is None else json.dumps(outcome.document)
        try:
            self._db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?)",
                (key, submission, outcome.status, outcome.error, document, blob),
            )
            self._db.commit()
        except sqlite3.DatabaseError as e:
            log.warning("%s: cache not writable (%s)", self.path, e)

    def close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> ResultCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
