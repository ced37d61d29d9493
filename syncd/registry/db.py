"""The registry's SQLite database: the connection, its lock file, the schema and the one
transaction helper every table's module goes through.

A file that is locked by another syncd, corrupt, unwritable or from a newer syncd raises
``StateError`` when it is opened, and so does any SQLite error later (``transaction``): the run
stops before it writes anything, so a broken registry can never lead to deletions. A store
opened ``read_only`` (a plan) neither creates nor locks the file, and writes nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from syncd.errors import StateError

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


class Database:
    """One open database for the length of a run; holds an exclusive lock file meanwhile."""

    def __init__(
        self, path: Path, *, read_only: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        """Open (and create) the database; ``read_only`` (plans) neither creates nor locks."""
        self.path = path
        self.read_only = read_only
        self.clock = clock
        self._mutex = threading.Lock()
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
            raise StateError(f"state file {self.path} is corrupt: {status}")
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None and read_only:
            return
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (SCHEMA_VERSION,))
        elif row[0] != SCHEMA_VERSION:
            raise StateError(
                f"state file {self.path} has schema {row[0]}; this syncd reads {SCHEMA_VERSION}"
            )

    def close(self) -> None:
        self._db.close()
        self._release()

    @contextlib.contextmanager
    def transaction(
        self, doing: str = "written", *, subject: str = ""
    ) -> Iterator[sqlite3.Connection]:
        """The connection, for one transaction under the store's mutex (committed when the
        block ends, rolled back when it raises). Any SQLite error becomes ``StateError``:
        "<subject> cannot be <doing>: <error>", the subject by default the state file."""
        with self._mutex:
            try:
                with self._db:
                    yield self._db
            except sqlite3.Error as exc:
                what = subject or f"state file {self.path}"
                raise StateError(f"{what} cannot be {doing}: {exc}") from exc

    def corrupt(self, exc: Exception, *, subject: str = "") -> StateError:
        """A row that does not parse: the store is corrupt."""
        return StateError(f"{subject or f'state file {self.path}'} is corrupt: {exc}")


def has(db: sqlite3.Connection, table: str) -> bool:
    """Whether ``table`` exists: a plan reads a store written by an older syncd without
    creating what it lacks."""
    row = db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)
    ).fetchone()
    return row is not None


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
