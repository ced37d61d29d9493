"""The collector protocol: what every vendor module provides to the runner.

A collector lists its scopes (accounts x regions, projects, subscriptions, compartments x
regions) and, per scope, yields the public addresses it finds as ``Address`` records, or ``Skip``
records for what it saw and must not map (an unallocated IP, a global anycast address). It knows
nothing of Cloudflare, zones, state or metrics, and no SDK type leaves its module.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import ClassVar, Generic, Protocol, TypeVar

from syncd.model import Address, IPAddress, Scope, Skip, SkipReason, Vendor, tag_tuple
from syncd.sources.collectors.failures import ScopeDeadline

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
    # The clock every scope's deadline is read on.
    clock: Callable[[], float] = time.monotonic

    def deadline(self) -> ScopeDeadline:
        """A new scope's deadline: ``scope_timeout`` from now."""
        return ScopeDeadline.after(self.scope_timeout, clock=self.clock)


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


class _HasName(Protocol):
    @property
    def name(self) -> str: ...


_C = TypeVar("_C", bound=_HasName)


class CloudCollector(Generic[_C]):
    """What every cloud collector holds: its config entry, the run's settings and a lock for
    what it loads once (credentials, sessions) and shares between its scopes' threads."""

    VENDOR: ClassVar[Vendor]

    def __init__(self, cfg: _C, *, settings: CollectorSettings) -> None:
        self._cfg = cfg
        self._settings = settings
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self._cfg.name

    @property
    def vendor(self) -> Vendor:
        return self.VENDOR


def address_in(
    scope: Scope,
    ip: IPAddress,
    *,
    resource: str,
    region: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> Address:
    """An address found in ``scope``, in the scope's region unless the resource names its own."""
    return Address(
        ip=ip,
        vendor=scope.vendor,
        region=scope.region if region is None else region,
        collector=scope.collector,
        account=scope.account,
        resource=resource,
        scope_key=scope.key,
        tags=tag_tuple(tags),
    )


def skip_in(
    scope: Scope,
    subject: str,
    reason: SkipReason,
    detail: str,
    *,
    region: str | None = None,
    ip: IPAddress | None = None,
) -> Skip:
    """Something seen in ``scope`` that must not be mapped, with the reason (and the IP, parsed,
    when the subject is one)."""
    return Skip(
        subject=subject,
        reason=reason,
        detail=detail,
        vendor=scope.vendor.value,
        region=scope.region if region is None else region,
        collector=scope.collector,
        ip=ip,
    )
