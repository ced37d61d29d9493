"""The registry: everything syncd remembers about a zone between runs, in one SQLite database.

As external-dns's registry does, it stands between the reconcile and the provider: the
reconcile asks it for the zone's mappings (``mirror``) and what syncd owns (``ownership``,
settled against Cloudflare's list), and hands it what was written; it decides what is owned.
Each concern is a small interface over its tables, opened together as one ``Registry``:

    ownership  which mappings syncd owns in each zone, and the batches pending (ownership.py)
    mirror     each zone's mappings as last known, and when it is due for a full list (mirror.py)
    kept       each zone's cached facts and traffic readings (kept.py)
    window     the Cloudflare rate window handed from process to process (window.py)
    handover   the zones a run deferred and the zones discovery found (handover.py)

``db.py`` holds the connection, the lock file, the schema and the one transaction helper that
turns any SQLite error into ``StateError``. Nothing outside this package imports those modules.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from syncd.registry.db import Database
from syncd.registry.handover import Handover
from syncd.registry.kept import Kept
from syncd.registry.mirror import Mirror, Mirrors
from syncd.registry.ownership import Ownership
from syncd.registry.window import Windows, load_window

__all__ = ["Mirror", "Registry", "load_window"]


class Registry:
    """One open registry for the length of a run; holds an exclusive lock file meanwhile.

    A file that is locked by another syncd, corrupt or unwritable raises ``StateError``: the
    run stops before it writes anything, so a broken registry can never lead to deletions.
    ``read_only`` (plans) neither creates nor locks the file, and writes nothing.
    """

    def __init__(
        self, path: Path, *, read_only: bool = False, clock: Callable[[], float] = time.time
    ) -> None:
        self._db = Database(path, read_only=read_only, clock=clock)
        self.ownership = Ownership(self._db)
        self.mirror = Mirrors(self._db)
        self.kept = Kept(self._db)
        self.window = Windows(self._db)
        self.handover = Handover(self._db)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Registry:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
