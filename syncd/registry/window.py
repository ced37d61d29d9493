"""The rate window: the Cloudflare requests (and GraphQL queries) earlier processes sent, so
that each process starts where the last one's window left off (table ``budget``, and the pause
and GraphQL window in ``meta``).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from syncd.model import RateWindow
from syncd.registry.db import Database


class Windows:
    """The ``budget`` table and the window's rows of ``meta``."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def save(self, window: RateWindow) -> None:
        """Replace the stored window of Cloudflare requests (the next process starts from it)."""
        if self._db.read_only:
            return
        with self._db.transaction() as db:
            db.execute("DELETE FROM budget")
            db.executemany("INSERT INTO budget VALUES (?)", [(t,) for t in window.taken])
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('paused_until', ?)",
                (repr(window.paused_until),),
            )
            db.execute(
                "INSERT OR REPLACE INTO meta VALUES ('graphql_taken', ?)",
                (json.dumps(list(window.graphql)),),
            )


def load_window(path: Path) -> RateWindow:
    """The Cloudflare requests earlier processes sent, from the state database (read-only,
    without the lock: it is read before the run opens the registry).

    Only a pacing hint: a missing, older or unreadable file gives an empty window, and a broken
    one is reported when the run opens the registry.
    """
    if not path.exists():
        return RateWindow(taken=())
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return RateWindow(taken=())
    try:
        taken = tuple(t for (t,) in db.execute("SELECT sent_at FROM budget ORDER BY sent_at"))
        row = db.execute("SELECT value FROM meta WHERE key = 'paused_until'").fetchone()
        paused = float(row[0]) if row is not None else 0.0
        row = db.execute("SELECT value FROM meta WHERE key = 'graphql_taken'").fetchone()
        graphql = json.loads(row[0]) if row is not None else []
    except (sqlite3.Error, ValueError, TypeError):
        return RateWindow(taken=())
    finally:
        db.close()
    return RateWindow(
        taken=tuple(float(t) for t in taken if isinstance(t, int | float)),
        paused_until=paused,
        graphql=tuple(float(t) for t in graphql if isinstance(t, int | float))
        if isinstance(graphql, list)
        else (),
    )
