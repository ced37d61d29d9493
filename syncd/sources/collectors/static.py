"""The ``static`` collector: origins listed in the configuration (outside any scanned account).

It has one scope and reads nothing but its config section. The planner lets a static entry win
over a discovered one for the same IP, since explicit configuration beats inference.
"""

from __future__ import annotations

from collections.abc import Iterator

from syncd.config import StaticEntry
from syncd.model import STATIC, Address, Scope, Vendor, parse_ip
from syncd.sources.collectors.base import Discovery


class StaticCollector:
    """Yields the configured ``{ip, vendor, region}`` entries as addresses."""

    def __init__(self, entries: tuple[StaticEntry, ...]) -> None:
        self._entries = entries

    @property
    def name(self) -> str:
        return STATIC

    @property
    def vendor(self) -> Vendor:
        # A static collector spans vendors; its scope is labelled with the first entry's vendor.
        return self._entries[0].vendor if self._entries else Vendor.AWS

    def scopes(self) -> Iterator[Scope]:
        yield Scope(collector=STATIC, vendor=self.vendor, account="config")

    def collect(self, scope: Scope) -> Iterator[Discovery]:
        for index, entry in enumerate(self._entries):
            yield Address(
                ip=parse_ip(entry.ip),
                vendor=entry.vendor,
                region=entry.region,
                collector=STATIC,
                account="config",
                resource=f"collectors.static.{index}",
                scope_key=scope.key,
            )
