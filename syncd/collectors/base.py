"""The collector protocol: what every vendor module provides to the runner.

A collector lists its scopes (accounts x regions, projects, subscriptions, compartments x
regions) and, per scope, yields the public addresses it finds as ``Address`` records, or ``Skip``
records for what it saw and must not map (an unallocated IP, a global anycast address). It knows
nothing of Cloudflare, zones, state or metrics, and no SDK type leaves its module.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from syncd.model import Address, Scope, Skip, Vendor

Discovery = Address | Skip


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectorSettings:
    """Run-wide knobs every collector receives (from the ``sync`` config section)."""

    # A scope whose every call fails must cost at most this, retries included (issue 11).
    scope_timeout: float = 120.0
    # One HTTP request to a cloud API, connect + read.
    request_timeout: float = 30.0
    # Attempts per request, the first included, before the scope fails.
    max_attempts: int = 5


class Collector(Protocol):
    """Structural protocol; vendor classes do not inherit from it."""

    @property
    def name(self) -> str:
        """Unique collector name from the config; appears in logs, metrics and state."""
        ...

    @property
    def vendor(self) -> Vendor: ...

    def scopes(self) -> Iterator[Scope]:
        """Enumerate the scopes to read; raises ``CollectorError`` if that is impossible."""
        ...

    def collect(self, scope: Scope) -> Iterator[Discovery]:
        """Yield what one scope holds; raises ``CollectorError`` (``ScopeDenied`` to skip)."""
        ...
