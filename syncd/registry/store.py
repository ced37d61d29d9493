"""The state store, in SQLite: which mappings of each zone syncd owns (wrote or adopted), and
what runs hand to the next (the zones discovery found, the Cloudflare rate window).

Cloudflare mappings carry no owner marker, so only mappings recorded here may ever be deleted.
Writes are transactional and own only items Cloudflare reported as succeeded. A batch is noted
as ``pending`` before it is sent, so a crash between sending and recording loses nothing: the
next run owns the pending items Cloudflare turns out to hold, and drops the rest. A file that is
locked by another syncd, corrupt or unwritable raises ``StateError``: the run stops before it
writes anything, so a broken store can never lead to deletions.
"""

from __future__ import annotations

import fcntl
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TypeVar

from pydantic import TypeAdapter, ValidationError

from syncd.errors import StateError
from syncd.model import (
    IPAddress,
    ObservedFacts,
    Owned,
    RateWindow,
    RegionMapping,
    ScopeKey,
    Upsert,
    Vendor,
    ZoneFacts,
    canonical,
    parse_ip,
)

SCHEMA_VERSION = "1"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS owned (
    zone_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    vendor TEXT NOT NULL,
    region TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (zone_id, ip)
);
CREATE TABLE IF NOT EXISTS discovered (
    zone_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    seen_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS budget (sent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS mirror (
    zone_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    vendor TEXT NOT NULL,
    region TEXT NOT NULL,
    PRIMARY KEY (zone_id, ip)
);
CREATE TABLE IF NOT EXISTS mirrored (
    zone_id TEXT PRIMARY KEY,
    listed_at REAL NOT NULL,
    verify_after REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS facts (zone_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS observed (zone_id TEXT PRIMARY KEY, data TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS deferred (
    zone_id TEXT PRIMARY KEY,
    position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS pending (
    zone_id TEXT NOT NULL,
    ip TEXT NOT NULL,
    vendor TEXT NOT NULL,
    region TEXT NOT NULL,
    scope_key TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (zone_id, ip)
);
"""


_DISCOVERED = "SELECT zone_id, name FROM discovered"
_FACTS = TypeAdapter(ZoneFacts)  # a zone's facts as JSON, validated when read back
_OBSERVED = TypeAdapter(ObservedFacts)  # a zone's traffic readings, the same way
_D = TypeVar("_D")


@dataclass(frozen=True, slots=True)
class Mirror:
    """A zone's mappings as syncd last knew them: from its last full list, then every write
    Cloudflare confirmed since. Planning against it saves listing the zone every run."""

    mappings: dict[IPAddress, RegionMapping]
    listed_at: float  # when the zone was last listed in full
    verify_after: float  # when it is due to be listed in full again


class StateStore:
    """One open store for the length of a run; holds an exclusive lock file meanwhile."""

    def __init__(
        self, path: Path, *, read_only: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        """Open (and create) the store; ``read_only`` (plans) neither creates nor locks."""
        self._path = path
        self._clock = clock
        self._mutex = threading.Lock()
        self._read_only = read_only
        self._lock_file = None if read_only else _lock(path)
        if read_only and not path.exists():
            target, uri = "file::memory:", True  # no store yet: nothing is owned
        else:
            target, uri = (f"file:{path}?mode=ro", True) if read_only else (str(path), False)
        try:
            self._db = sqlite3.connect(target, timeout=5, check_same_thread=False, uri=uri)
            if not read_only or target == "file::memory:":
                self._db.executescript(_SCHEMA)
            self._check(read_only=read_only)
        except sqlite3.Error as exc:
            self._release()
            raise StateError(f"state file {path} cannot be used: {exc}") from exc
        except StateError:
            self._db.close()
            self._release()
            raise

    def _release(self) -> None:
        if self._lock_file is not None:
            self._lock_file.close()

    def _check(self, *, read_only: bool) -> None:
        (status,) = self._db.execute("PRAGMA quick_check").fetchone()
        if status != "ok":
            raise StateError(f"state file {self._path} is corrupt: {status}")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None and read_only:
            return
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise StateError(
                f"state file {self._path} has schema {row[0]}; this syncd reads {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self._db.close()
        self._release()

    def __enter__(self) -> StateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

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
        if self._read_only:  # a plan: the same answer, nothing written
            kept = {ip: o for ip, o in owned.items() if ip in current}
            return kept | {p.mapping.ip: p for p in landed}
        if pending or gone:
            self._write(
                zone_id,
                [_row(zone_id, p.mapping, p.scope_key, self._clock()) for p in landed],
                gone,
                settled=None,  # a full list settles every pending row of the zone
            )
        return self._read("owned", zone_id) if pending or gone else owned

    def _read(self, table: str, zone_id: str) -> dict[IPAddress, Owned]:
        with self._mutex:
            try:
                rows = self._db.execute(
                    f"SELECT ip, vendor, region, scope_key FROM {table} WHERE zone_id = ?",  # noqa: S608 (table is one of two literals)
                    (zone_id,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be read: {exc}") from exc
        out: dict[IPAddress, Owned] = {}
        for ip_text, vendor, region, scope_key in rows:
            try:
                mapping = RegionMapping(ip=parse_ip(ip_text), vendor=Vendor(vendor), region=region)
            except ValueError as exc:
                raise StateError(f"state file {self._path} is corrupt: {exc}") from exc
            out[mapping.ip] = Owned(mapping=mapping, scope_key=ScopeKey.parse(scope_key))
        return out

    def discovered(self, zones: Mapping[str, str]) -> list[str]:
        """Remember the zones discovery found (id -> name); return the names of those the last
        run found and this one did not (a plan only compares)."""
        with self._mutex:
            try:
                before = (
                    dict(self._db.execute(_DISCOVERED).fetchall()) if self._has_discovered() else {}
                )
                if not self._read_only:
                    now = self._clock()
                    with self._db:
                        self._db.execute("DELETE FROM discovered")
                        self._db.executemany(
                            "INSERT INTO discovered VALUES (?, ?, ?)",
                            [(zone_id, name, now) for zone_id, name in zones.items()],
                        )
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be used: {exc}") from exc
        return sorted(name or zone_id for zone_id, name in before.items() if zone_id not in zones)

    def save_window(self, window: RateWindow) -> None:
        """Replace the stored window of Cloudflare requests (the next process starts from it)."""
        if self._read_only:
            return
        with self._mutex:
            try:
                with self._db:
                    self._db.execute("DELETE FROM budget")
                    self._db.executemany(
                        "INSERT INTO budget VALUES (?)", [(t,) for t in window.taken]
                    )
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('paused_until', ?)",
                        (repr(window.paused_until),),
                    )
                    self._db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('graphql_taken', ?)",
                        (json.dumps(list(window.graphql)),),
                    )
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc

    def deferred(self) -> list[str]:
        """The zones the last run deferred, in the order it would have served them."""
        with self._mutex:
            try:
                if not self._has("deferred"):
                    return []
                rows = self._db.execute("SELECT zone_id FROM deferred ORDER BY position").fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be read: {exc}") from exc
        return [str(z) for (z,) in rows]

    def save_deferred(self, zone_ids: Iterable[str]) -> None:
        """Replace the deferred zones: the next run serves them first."""
        if self._read_only:
            return
        rows = [(z, n) for n, z in enumerate(zone_ids)]
        with self._mutex:
            try:
                with self._db:
                    self._db.execute("DELETE FROM deferred")
                    self._db.executemany("INSERT INTO deferred VALUES (?, ?)", rows)
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc

    def _has_discovered(self) -> bool:
        return self._has("discovered")

    def _has(self, table: str) -> bool:
        # A plan reads a store written by an older syncd without creating what it lacks.
        row = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
        ).fetchone()
        return row is not None

    # --- the mirror of Cloudflare's mappings ------------------------------------------------

    def mirror(self, zone_id: str) -> Mirror | None:
        """The zone's mirror; None when there is none (never listed, or distrusted).

        A mirror that cannot be read raises ``StateError``: the caller lists the zone in full.
        """
        with self._mutex:
            try:
                if not self._has("mirrored"):
                    return None
                meta = self._db.execute(
                    "SELECT listed_at, verify_after FROM mirrored WHERE zone_id = ?", (zone_id,)
                ).fetchone()
                if meta is None:
                    return None
                rows = self._db.execute(
                    "SELECT ip, vendor, region FROM mirror WHERE zone_id = ?", (zone_id,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"mirror of zone {zone_id} cannot be read: {exc}") from exc
        try:
            mappings = [
                RegionMapping(ip=parse_ip(ip), vendor=Vendor(vendor), region=str(region))
                for ip, vendor, region in rows
            ]
            listed_at, verify_after = float(meta[0]), float(meta[1])
        except (ValueError, TypeError) as exc:
            raise StateError(f"mirror of zone {zone_id} is corrupt: {exc}") from exc
        return Mirror({m.ip: m for m in mappings}, listed_at, verify_after)

    def verification_schedule(self) -> dict[str, tuple[float, int]]:
        """Each trusted mirror's zone: when it is due for a full list and how many mappings the
        mirror holds (zones with a pending batch are left out: they are listed anyway)."""
        with self._mutex:
            try:
                if not self._has("mirrored"):
                    return {}
                rows = self._db.execute(
                    "SELECT m.zone_id, m.verify_after, COUNT(x.ip) FROM mirrored m "
                    "LEFT JOIN mirror x ON x.zone_id = m.zone_id "
                    "WHERE m.zone_id NOT IN (SELECT zone_id FROM pending) GROUP BY m.zone_id"
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be read: {exc}") from exc
        return {str(z): (float(after), int(size)) for z, after, size in rows}

    def pending(self, zone_id: str) -> bool:
        """Whether a batch of the zone was sent and its outcome never recorded (a crash)."""
        with self._mutex:
            try:
                row = self._db.execute(
                    "SELECT 1 FROM pending WHERE zone_id = ? LIMIT 1", (zone_id,)
                ).fetchone()
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be read: {exc}") from exc
        return row is not None

    def mirror_listed(
        self,
        zone_id: str,
        mappings: Iterable[RegionMapping],
        *,
        listed_at: float,
        verify_after: float,
    ) -> None:
        """Replace the zone's mirror (a full list, or it after confirmed writes); the zone is
        due for a full list again at ``verify_after``."""
        if self._read_only:
            return
        rows = [(zone_id, m.ip_text, m.vendor.value, m.region) for m in mappings]
        with self._mutex:
            try:
                with self._db:
                    self._db.execute("DELETE FROM mirror WHERE zone_id = ?", (zone_id,))
                    self._db.executemany("INSERT INTO mirror VALUES (?, ?, ?, ?)", rows)
                    self._db.execute(
                        "INSERT OR REPLACE INTO mirrored VALUES (?, ?, ?)",
                        (zone_id, listed_at, verify_after),
                    )
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc

    def mirror_distrust(self, zone_id: str) -> None:
        """The mirror may not be the truth (writes in flight, or an answer disagreed): list
        the zone in full next run."""
        if self._read_only:
            return
        with self._mutex:
            try:
                with self._db:
                    self._db.execute("DELETE FROM mirrored WHERE zone_id = ?", (zone_id,))
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc

    # --- the zone's facts (Tiered Cache, details, load balancers, pools) ----------------------

    def facts(self, zone_id: str) -> ZoneFacts | None:
        """The zone's cached facts; None when there are none or they cannot be trusted (the
        caller reads them from Cloudflare again)."""
        return self._document("facts", zone_id, _FACTS)

    def save_facts(self, zone_id: str, facts: ZoneFacts) -> None:
        """Keep the zone's facts for the next runs (until it is verified again)."""
        self._save_document("facts", zone_id, _FACTS.dump_json(facts))

    # --- the zone's traffic readings (cloudflare.observe) ------------------------------------

    def observed(self, zone_id: str) -> ObservedFacts | None:
        """The zone's kept traffic readings; None when there are none or they cannot be
        trusted (the caller reads them from Cloudflare again)."""
        return self._document("observed", zone_id, _OBSERVED)

    def save_observed(self, zone_id: str, observed: ObservedFacts) -> None:
        """Keep the zone's traffic readings for the next runs."""
        self._save_document("observed", zone_id, _OBSERVED.dump_json(observed))

    def _document(self, table: str, zone_id: str, kind: TypeAdapter[_D]) -> _D | None:
        """A zone's JSON row of ``table`` (facts, observed), validated; None when missing or
        unreadable."""
        with self._mutex:
            try:
                if not self._has(table):
                    return None
                row = self._db.execute(
                    f"SELECT data FROM {table} WHERE zone_id = ?",  # noqa: S608 (table is one of two literals)
                    (zone_id,),
                ).fetchone()
            except sqlite3.Error:
                return None
        if row is None:
            return None
        try:
            return kind.validate_json(row[0])
        except (ValidationError, ValueError, TypeError):
            return None

    def _save_document(self, table: str, zone_id: str, data: bytes) -> None:
        if self._read_only:
            return
        with self._mutex:
            try:
                with self._db:
                    self._db.execute(
                        f"INSERT OR REPLACE INTO {table} VALUES (?, ?)",  # noqa: S608 (a literal)
                        (zone_id, data.decode()),
                    )
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc

    def hints_written(self, zone_id: str) -> dict[IPAddress, float]:
        """When syncd last wrote (or adopted) each mapping it owns in the zone."""
        with self._mutex:
            try:
                rows = self._db.execute(
                    "SELECT ip, updated_at FROM owned WHERE zone_id = ?", (zone_id,)
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be read: {exc}") from exc
        out: dict[IPAddress, float] = {}
        for ip, at in rows:
            try:
                out[parse_ip(str(ip))] = float(at)
            except (ValueError, TypeError) as exc:
                raise StateError(f"state file {self._path} is corrupt: {exc}") from exc
        return out

    def begin(self, zone_id: str, upserts: Iterable[Upsert]) -> None:
        """Note a batch as pending just before it is sent."""
        rows = [_row(zone_id, u.mapping, u.scope_key, self._clock()) for u in upserts]
        self._run("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?, ?, ?)", rows)

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
        now = self._clock()
        rows = [_row(zone_id, u.mapping, u.scope_key, now) for u in upserted]
        self._write(zone_id, rows, list(deleted), settled=list(settled))

    def _write(
        self,
        zone_id: str,
        rows: list[tuple[str, str, str, str, str, float]],
        deleted: list[IPAddress],
        *,
        settled: list[IPAddress] | None,
    ) -> None:
        """``settled``: the pending rows to drop; None drops every pending row of the zone."""
        gone = [(zone_id, canonical(ip)) for ip in deleted]
        with self._mutex:
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO owned VALUES (?, ?, ?, ?, ?, ?)", rows
                    )
                    self._db.executemany("DELETE FROM owned WHERE zone_id = ? AND ip = ?", gone)
                    if settled is None:
                        self._db.execute("DELETE FROM pending WHERE zone_id = ?", (zone_id,))
                    else:
                        done = [(zone_id, canonical(ip)) for ip in settled]
                        self._db.executemany(
                            "DELETE FROM pending WHERE zone_id = ? AND ip = ?", done
                        )
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc

    def _run(self, sql: str, rows: list[tuple[str, str, str, str, str, float]]) -> None:
        with self._mutex:
            try:
                with self._db:
                    self._db.executemany(sql, rows)
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc


def load_window(path: Path) -> RateWindow:
    """The Cloudflare requests earlier processes sent, from the state database (read-only).

    Only a pacing hint: a missing, older or unreadable file gives an empty window, and a broken
    one is reported when the run opens the store.
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


def _row(
    zone_id: str, mapping: RegionMapping, scope_key: ScopeKey, now: float
) -> tuple[str, str, str, str, str, float]:
    return (zone_id, mapping.ip_text, mapping.vendor.value, mapping.region, str(scope_key), now)


def _lock(path: Path) -> IO[bytes]:
    """An exclusive lock beside the database, so two syncd runs never share a store."""
    lock_path = path.with_name(path.name + ".lock")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = lock_path.open("ab")
    except OSError as exc:
        raise StateError(f"state directory for {path} is not writable: {exc.strerror}") from exc
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise StateError(
            f"state file {path} is locked by another syncd process ({lock_path})"
        ) from None
    return handle
