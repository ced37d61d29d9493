"""What one run hands the next about its zones: the zones it deferred (served first next run)
and the zones discovery found (so the next run can name those that vanished).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from syncd.registry.db import Database, has


class Handover:
    """The ``deferred`` and ``discovered`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def deferred(self) -> list[str]:
        """The zones the last run deferred, in the order it would have served them."""
        with self._db.transaction("read") as db:
            if not has(db, "deferred"):
                return []
            rows = db.execute("SELECT zone_id FROM deferred ORDER BY position").fetchall()
        return [str(z) for (z,) in rows]

    def save_deferred(self, zone_ids: Iterable[str]) -> None:
        """Replace the deferred zones: the next run serves them first."""
        if self._db.read_only:
            return
        rows = [(z, n) for n, z in enumerate(zone_ids)]
        with self._db.transaction() as db:
            db.execute("DELETE FROM deferred")
            db.executemany("INSERT INTO deferred VALUES (?, ?)", rows)

    def discovered(self, zones: Mapping[str, str]) -> list[str]:
        """Remember the zones discovery found (id -> name); return the names of those the last
        run found and this one did not (a plan only compares)."""
        with self._db.transaction("used") as db:
            found = "SELECT zone_id, name FROM discovered"
            before = dict(db.execute(found).fetchall()) if has(db, "discovered") else {}
            if not self._db.read_only:
                now = self._db.clock()
                db.execute("DELETE FROM discovered")
                db.executemany(
                    "INSERT INTO discovered VALUES (?, ?, ?)",
                    [(zone_id, name, now) for zone_id, name in zones.items()],
                )
        return sorted(name or zone_id for zone_id, name in before.items() if zone_id not in zones)
