"""The mirror: each zone's mappings as syncd last knew them, from its last full list and then
every write Cloudflare confirmed since. Planning against it saves listing the zone every run.

The mirror is only ever trusted whole: while writes are in flight, or when an answer disagreed,
it is distrusted and the zone is listed in full next run. A mirror that cannot be read raises
``StateError``: the caller lists the zone in full.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import structlog

from syncd.errors import StateError
from syncd.model import IPAddress, RegionMapping, Vendor, parse_ip
from syncd.registry.db import Database, has
from syncd.registry.spread import phase

log = structlog.stdlib.get_logger(__name__)


@dataclass(frozen=True, slots=True)
class Mirror:
    """A zone's mappings as syncd last knew them: from its last full list, then every write
    Cloudflare confirmed since. Planning against it saves listing the zone every run."""

    mappings: dict[IPAddress, RegionMapping]
    listed_at: float  # when the zone was last listed in full
    verify_after: float  # when it is due to be listed in full again


@dataclass(frozen=True, slots=True)
class Relisted:
    """What a full list of a zone changed in its mirror."""

    drift: int  # mappings where the list disagreed with the mirror
    schedule: tuple[float, float]  # the mirror's (listed_at, verify_after) from now on


class Mirrors:
    """The ``mirror`` and ``mirrored`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, zone_id: str) -> Mirror | None:
        """The zone's mirror; None when there is none (never listed, or distrusted)."""
        subject = f"mirror of zone {zone_id}"
        with self._db.transaction("read", subject=subject) as db:
            if not has(db, "mirrored"):
                return None
            meta = db.execute(
                "SELECT listed_at, verify_after FROM mirrored WHERE zone_id = ?", (zone_id,)
            ).fetchone()
            if meta is None:
                return None
            rows = db.execute(
                "SELECT ip, vendor, region FROM mirror WHERE zone_id = ?", (zone_id,)
            ).fetchall()
        try:
            mappings = [
                RegionMapping(ip=parse_ip(ip), vendor=Vendor(vendor), region=str(region))
                for ip, vendor, region in rows
            ]
            listed_at, verify_after = float(meta[0]), float(meta[1])
        except (ValueError, TypeError) as exc:
            raise self._db.corrupt(exc, subject=subject) from exc
        return Mirror({m.ip: m for m in mappings}, listed_at, verify_after)

    def verification_schedule(self) -> dict[str, tuple[float, int]]:
        """Each trusted mirror's zone: when it is due for a full list and how many mappings the
        mirror holds (zones with a pending batch are left out: they are listed anyway)."""
        with self._db.transaction("read") as db:
            if not has(db, "mirrored"):
                return {}
            rows = db.execute(
                "SELECT m.zone_id, m.verify_after, COUNT(x.ip) FROM mirrored m "
                "LEFT JOIN mirror x ON x.zone_id = m.zone_id "
                "WHERE m.zone_id NOT IN (SELECT zone_id FROM pending) GROUP BY m.zone_id"
            ).fetchall()
        return {str(z): (float(after), int(size)) for z, after, size in rows}

    def relisted(
        self,
        zone_id: str,
        current: Mapping[IPAddress, RegionMapping],
        *,
        was: Mirror | None,
        now: float,
        interval: float,
    ) -> Relisted:
        """The zone was listed in full (``current``): count the drift from the mirror it had
        (``was``) and replace the mirror. A zone never listed before is next due at a point
        spread over the interval, so the zones' verifications never bunch."""
        drift = 0
        if was is not None:
            before = was.mappings
            drift = sum(
                1 for ip in before.keys() | current.keys() if before.get(ip) != current.get(ip)
            )
            due = now + interval
        else:
            due = now + interval * phase(zone_id)
        self.replace(zone_id, current.values(), listed_at=now, verify_after=due)
        return Relisted(drift, (now, due))

    def replace(
        self,
        zone_id: str,
        mappings: Iterable[RegionMapping],
        *,
        listed_at: float,
        verify_after: float,
    ) -> None:
        """Replace the zone's mirror (a full list, or it after confirmed writes); the zone is
        due for a full list again at ``verify_after``."""
        if self._db.read_only:
            return
        rows = [(zone_id, m.ip_text, m.vendor.value, m.region) for m in mappings]
        with self._db.transaction() as db:
            db.execute("DELETE FROM mirror WHERE zone_id = ?", (zone_id,))
            db.executemany("INSERT INTO mirror VALUES (?, ?, ?, ?)", rows)
            db.execute(
                "INSERT OR REPLACE INTO mirrored VALUES (?, ?, ?)",
                (zone_id, listed_at, verify_after),
            )

    def distrust(self, zone_id: str) -> None:
        """The mirror may not be the truth (writes in flight, or an answer disagreed): list
        the zone in full next run."""
        if self._db.read_only:
            return
        with self._db.transaction() as db:
            db.execute("DELETE FROM mirrored WHERE zone_id = ?", (zone_id,))

    def writing(self, zone_id: str) -> None:
        """Writes to the zone are about to go: until they are done and remembered
        (``written``), the mirror is not the truth, so a process killed in between lists the
        zone next time and never plans against a stale mirror."""
        self._remember(zone_id, None, (0.0, 0.0))

    def written(
        self,
        zone_id: str,
        after: Mapping[IPAddress, RegionMapping],
        schedule: tuple[float, float],
    ) -> None:
        """Every write was confirmed: the mirror is ``after``, on its schedule as before."""
        self._remember(zone_id, after, schedule)

    def _remember(
        self,
        zone_id: str,
        after: Mapping[IPAddress, RegionMapping] | None,
        schedule: tuple[float, float],
    ) -> None:
        """Keep the mirror in step with confirmed writes; ``None``: distrust it (list next
        run). Not worth failing the zone for: a failure is logged and the mirror distrusted."""
        try:
            if after is None:
                self.distrust(zone_id)
            else:
                listed_at, verify_after = schedule
                self.replace(
                    zone_id, after.values(), listed_at=listed_at, verify_after=verify_after
                )
        except StateError as exc:
            log.warning("mirror_not_saved", zone=zone_id, error=str(exc))
            # If even that fails, the database is broken: the next run's check stops it.
            with contextlib.suppress(StateError):
                self.distrust(zone_id)
