"""Ownership: which mappings of each zone syncd owns (wrote or adopted), and the batches sent
whose outcome is not yet known (pending).

Cloudflare mappings carry no owner marker, so only mappings recorded here may ever be deleted.
Only items Cloudflare reported as succeeded are owned. A batch is noted as pending before it is
sent, so a crash between sending and recording loses nothing: the next full list of the zone
(``settle``) owns the pending items Cloudflare turns out to hold, and drops the rest.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from syncd.model import (
    IPAddress,
    Owned,
    RegionMapping,
    ScopeKey,
    Upsert,
    Vendor,
    canonical,
    parse_ip,
)
from syncd.registry.db import Database

_Row = tuple[str, str, str, str, str, float]


class Ownership:
    """The ``owned`` and ``pending`` tables."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def owned(self, zone_id: str) -> dict[IPAddress, Owned]:
        """The mappings syncd owns in ``zone_id``."""
        return self._read("owned", zone_id)

    def settle(
        self, zone_id: str, current: Mapping[IPAddress, RegionMapping]
    ) -> dict[IPAddress, Owned]:
        """Reconcile with what Cloudflare holds now, and return what syncd owns.

        Pending items Cloudflare holds exactly are owned (the crash came after the write);
        other pending items are dropped; owned items Cloudflare no longer holds are forgotten.
        """
        pending = self._read("pending", zone_id)
        owned = self._read("owned", zone_id)
        landed = [p for ip, p in pending.items() if current.get(ip) == p.mapping]
        gone = [ip for ip in owned if ip not in current]
        if self._db.read_only:  # a plan: the same answer, nothing written
            kept = {ip: o for ip, o in owned.items() if ip in current}
            return kept | {p.mapping.ip: p for p in landed}
        if pending or gone:
            self._write(
                zone_id,
                [_row(zone_id, p.mapping, p.scope_key, self._db.clock()) for p in landed],
                gone,
                settled=None,  # a full list settles every pending row of the zone
            )
        return self._read("owned", zone_id) if pending or gone else owned

    def pending(self, zone_id: str) -> bool:
        """Whether a batch of the zone was sent and its outcome never recorded (a crash)."""
        with self._db.transaction("read") as db:
            row = db.execute(
                "SELECT 1 FROM pending WHERE zone_id = ? LIMIT 1", (zone_id,)
            ).fetchone()
        return row is not None

    def hints_written(self, zone_id: str) -> dict[IPAddress, float]:
        """When syncd last wrote (or adopted) each mapping it owns in the zone."""
        with self._db.transaction("read") as db:
            rows = db.execute(
                "SELECT ip, updated_at FROM owned WHERE zone_id = ?", (zone_id,)
            ).fetchall()
        out: dict[IPAddress, float] = {}
        for ip, at in rows:
            try:
                out[parse_ip(str(ip))] = float(at)
            except (ValueError, TypeError) as exc:
                raise self._db.corrupt(exc) from exc
        return out

    def begin(self, zone_id: str, upserts: Iterable[Upsert]) -> None:
        """Note a batch as pending just before it is sent."""
        rows = [_row(zone_id, u.mapping, u.scope_key, self._db.clock()) for u in upserts]
        with self._db.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?)", rows)

    def record(
        self,
        zone_id: str,
        *,
        upserted: Iterable[Upsert] = (),
        deleted: Iterable[IPAddress] = (),
        settled: Iterable[IPAddress] = (),
    ) -> None:
        """Own what was written, forget what was deleted, and drop the pending rows of
        ``settled`` (a batch whose outcome is known), in one transaction. A batch whose outcome
        is unknown stays pending until a full list settles it (``settle``)."""
        now = self._db.clock()
        rows = [_row(zone_id, u.mapping, u.scope_key, now) for u in upserted]
        self._write(zone_id, rows, list(deleted), settled=list(settled))

    def _read(self, table: str, zone_id: str) -> dict[IPAddress, Owned]:
        with self._db.transaction("read") as db:
            rows = db.execute(
                f"SELECT ip, vendor, region, scope_key FROM {table} WHERE zone_id = ?",  # noqa: S608 (table is one of two literals)
                (zone_id,),
            ).fetchall()
        out: dict[IPAddress, Owned] = {}
        for ip_text, vendor, region, scope_key in rows:
            try:
                mapping = RegionMapping(ip=parse_ip(ip_text), vendor=Vendor(vendor), region=region)
            except ValueError as exc:
                raise self._db.corrupt(exc) from exc
            out[mapping.ip] = Owned(mapping=mapping, scope_key=ScopeKey.parse(scope_key))
        return out

    def _write(
        self,
        zone_id: str,
        rows: list[_Row],
        deleted: list[IPAddress],
        *,
        settled: list[IPAddress] | None,
    ) -> None:
        """``settled``: the pending rows to drop; None drops every pending row of the zone."""
        gone = [(zone_id, canonical(ip)) for ip in deleted]
        with self._db.transaction() as db:
            db.executemany("INSERT OR REPLACE INTO owned VALUES (?, ?, ?, ?, ?, ?)", rows)
            db.executemany("DELETE FROM owned WHERE zone_id = ? AND ip = ?", gone)
            if settled is None:
                db.execute("DELETE FROM pending WHERE zone_id = ?", (zone_id,))
            else:
                done = [(zone_id, canonical(ip)) for ip in settled]
                db.executemany("DELETE FROM pending WHERE zone_id = ? AND ip = ?", done)


def _row(zone_id: str, mapping: RegionMapping, scope_key: ScopeKey, now: float) -> _Row:
    return (zone_id, mapping.ip_text, mapping.vendor.value, mapping.region, str(scope_key), now)
