"""The ownership registry: which mappings of each zone syncd wrote (or adopted), in SQLite.

Cloudflare mappings carry no owner marker, so only mappings recorded here may ever be deleted.
Writes are transactional and record only items Cloudflare reported as succeeded. A file that is
locked by another syncd, corrupt or unwritable raises ``StateError``: the run stops before it
writes anything, so a broken registry can never lead to deletions.
"""

from __future__ import annotations

import fcntl
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO

from syncd.errors import StateError
from syncd.model import IPAddress, Mapping, Upsert, Vendor, canonical, parse_ip
from syncd.plan import Owned

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
"""


class Registry:
    """One open registry for the length of a run; holds an exclusive lock file meanwhile."""

    def __init__(
        self, path: Path, *, read_only: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        """Open (and create) the registry; ``read_only`` (plans) neither creates nor locks."""
        self._path = path
        self._clock = clock
        self._mutex = threading.Lock()
        self._lock_file = None if read_only else _lock(path)
        if read_only and not path.exists():
            target, uri = "file::memory:", True  # no registry yet: nothing is owned
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

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def owned(self, zone_id: str) -> dict[IPAddress, Owned]:
        """The mappings syncd owns in ``zone_id``."""
        with self._mutex:
            try:
                rows = self._db.execute(
                    "SELECT ip, vendor, region, scope_key FROM owned WHERE zone_id = ?",
                    (zone_id,),
                ).fetchall()
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be read: {exc}") from exc
        out: dict[IPAddress, Owned] = {}
        for ip_text, vendor, region, scope_key in rows:
            try:
                mapping = Mapping(ip=parse_ip(ip_text), vendor=Vendor(vendor), region=region)
            except ValueError as exc:
                raise StateError(f"state file {self._path} is corrupt: {exc}") from exc
            out[mapping.ip] = Owned(mapping=mapping, scope_key=scope_key)
        return out

    def record(
        self,
        zone_id: str,
        *,
        upserted: Iterable[Upsert] = (),
        deleted: Iterable[IPAddress] = (),
    ) -> None:
        """Own what was written, forget what was deleted, in one transaction."""
        now = self._clock()
        rows = [
            (zone_id, u.mapping.ip_text, u.mapping.vendor.value, u.mapping.region, u.scope_key, now)
            for u in upserted
        ]
        gone = [(zone_id, canonical(ip)) for ip in deleted]
        with self._mutex:
            try:
                with self._db:
                    self._db.executemany(
                        "INSERT OR REPLACE INTO owned VALUES (?, ?, ?, ?, ?, ?)", rows
                    )
                    self._db.executemany("DELETE FROM owned WHERE zone_id = ? AND ip = ?", gone)
            except sqlite3.Error as exc:
                raise StateError(f"state file {self._path} cannot be written: {exc}") from exc


def _lock(path: Path) -> IO[bytes]:
    """An exclusive lock beside the database, so two syncd runs never share a registry."""
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
