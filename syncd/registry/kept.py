"""What is kept of a zone's reads between runs, as JSON rows: its facts (Tiered Cache, details,
load balancers, pools; ``sources.facts`` decides when they are read again) and its traffic
readings (``sources.observe``).

Only a cache: a row that is missing or cannot be read or validated is read from Cloudflare
again; an unreadable traffic row is said to be ``lost`` (what it proved is unknown).
"""

from __future__ import annotations

from typing import TypeVar

from pydantic import TypeAdapter, ValidationError

from syncd.errors import StateError
from syncd.model import ObservedFacts, ZoneFacts
from syncd.registry.db import Database, has

_FACTS = TypeAdapter(ZoneFacts)  # a zone's facts as JSON, validated when read back
_OBSERVED = TypeAdapter(ObservedFacts)  # a zone's traffic readings, the same way
_D = TypeVar("_D")


class Kept:
    """The ``facts`` and ``observed`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def facts(self, zone_id: str) -> ZoneFacts | None:
        """The zone's cached facts; None when there are none or they cannot be trusted (the
        caller reads them from Cloudflare again)."""
        return self._document("facts", zone_id, _FACTS)

    def save_facts(self, zone_id: str, facts: ZoneFacts) -> None:
        """Keep the zone's facts for the next runs (until it is verified again)."""
        self._save("facts", zone_id, _FACTS.dump_json(facts))

    def observed(self, zone_id: str) -> ObservedFacts | None:
        """The zone's kept traffic readings; None when there are none. A row that cannot be
        read is ``lost``: what traffic proved is unknown, so the caller must not take it for
        "never observed" (that would let what it proved be deleted)."""
        return self._document("observed", zone_id, _OBSERVED, unreadable=ObservedFacts(lost=True))

    def save_observed(self, zone_id: str, observed: ObservedFacts) -> None:
        """Keep the zone's traffic readings for the next runs."""
        self._save("observed", zone_id, _OBSERVED.dump_json(observed))

    def _document(
        self, table: str, zone_id: str, kind: TypeAdapter[_D], *, unreadable: _D | None = None
    ) -> _D | None:
        """A zone's JSON row of ``table`` (facts, observed), validated; None when missing,
        ``unreadable`` when it cannot be read or validated."""
        try:
            with self._db.transaction("read") as db:
                if not has(db, table):
                    return None
                row = db.execute(
                    f"SELECT data FROM {table} WHERE zone_id = ?",  # noqa: S608 (table is one of two literals)
                    (zone_id,),
                ).fetchone()
        except StateError:
            return unreadable
        if row is None:
            return None
        try:
            return kind.validate_json(row[0])
        except (ValidationError, ValueError, TypeError):
            return unreadable

    def _save(self, table: str, zone_id: str, data: bytes) -> None:
        if self._db.read_only:
            return
        with self._db.transaction() as db:
            db.execute(
                f"INSERT OR REPLACE INTO {table} VALUES (?, ?)",  # noqa: S608 (a literal)
                (zone_id, data.decode()),
            )
