"""Fan-out: every (collector, scope) pair on one shared, bounded thread pool.

The runner owns concurrency and scope failures. A scope ends ``ok``, ``failed`` or ``skipped``;
a collector whose scopes cannot be listed is recorded as not ``listed``. Failures are data in the
returned ``Inventory``, never exceptions, because the planner needs them to protect mappings of
incomplete scopes from deletion. The runner knows nothing of Cloudflare.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from typing import Any

from syncd.collectors.base import Collector, Discovery
from syncd.collectors.errors import CollectorError, Reason, ScopeDenied
from syncd.model import (
    Address,
    CollectorOutcome,
    Inventory,
    Scope,
    ScopeOutcome,
    ScopeStatus,
    Skip,
)


@dataclass(frozen=True, slots=True)
class _Listed:
    collector: Collector
    scopes: tuple[Scope, ...]
    duration: float


@dataclass(frozen=True, slots=True)
class _Collected:
    scope: Scope
    items: tuple[Discovery, ...]
    duration: float


def run(
    collectors: Iterable[Collector],
    *,
    executor: Executor,
    clock: Callable[[], float] = time.monotonic,
) -> Inventory:
    """Collect everything; return the inventory with one outcome per collector and scope."""
    listing: dict[Future[_Listed], Collector] = {
        executor.submit(_list_scopes, c, clock): c for c in collectors
    }
    scoping: dict[Future[_Collected], Scope] = {}
    addresses: list[Address] = []
    skips: list[Skip] = []
    scope_outcomes: list[ScopeOutcome] = []
    collector_outcomes: list[CollectorOutcome] = []
    while listing or scoping:
        waiting: list[Future[Any]] = [*listing, *scoping]
        done, _ = wait(waiting, return_when=FIRST_COMPLETED)
        for lf in [f for f in listing if f in done]:
            collector = listing.pop(lf)
            outcome, scopes = _listed(collector, lf)
            collector_outcomes.append(outcome)
            for s in scopes:
                scoping[executor.submit(_collect_scope, collector, s, clock)] = s
        for sf in [f for f in scoping if f in done]:
            scope_outcomes.append(_collected(scoping.pop(sf), sf, addresses, skips))
    return Inventory(
        addresses=tuple(addresses),
        skips=tuple(skips),
        scopes=tuple(sorted(scope_outcomes, key=lambda o: str(o.scope.key))),
        collectors=tuple(sorted(collector_outcomes, key=lambda o: o.collector)),
    )


def _list_scopes(collector: Collector, clock: Callable[[], float]) -> _Listed:
    start = clock()
    scopes = tuple(collector.scopes())
    return _Listed(collector, scopes, clock() - start)


def _collect_scope(collector: Collector, scope: Scope, clock: Callable[[], float]) -> _Collected:
    start = clock()
    items = tuple(collector.collect(scope))
    return _Collected(scope, items, clock() - start)


def _listed(
    collector: Collector, future: Future[_Listed]
) -> tuple[CollectorOutcome, tuple[Scope, ...]]:
    try:
        listed = future.result()
    except Exception as exc:  # noqa: BLE001 (scope boundary: the collector is failed and recorded)
        reason = _reason(exc)
        return (
            CollectorOutcome(
                collector=collector.name,
                vendor=collector.vendor,
                listed=False,
                error=str(exc),
                reason=reason,
                retryable=reason.retryable,
            ),
            (),
        )
    outcome = CollectorOutcome(
        collector=collector.name, vendor=collector.vendor, listed=True, duration=listed.duration
    )
    return outcome, listed.scopes


def _collected(
    scope: Scope, future: Future[_Collected], addresses: list[Address], skips: list[Skip]
) -> ScopeOutcome:
    try:
        result = future.result()
    except ScopeDenied as exc:
        return ScopeOutcome(scope=scope, status=ScopeStatus.SKIPPED, reason=exc.reason)
    except Exception as exc:  # noqa: BLE001 (scope boundary: the scope is failed and recorded)
        reason = _reason(exc)
        return ScopeOutcome(
            scope=scope,
            status=ScopeStatus.FAILED,
            reason=reason,
            retryable=reason.retryable,
            error=str(exc),
        )
    found = [item for item in result.items if isinstance(item, Address)]
    addresses.extend(found)
    skips.extend(item for item in result.items if isinstance(item, Skip))
    return ScopeOutcome(
        scope=scope, status=ScopeStatus.OK, addresses=len(found), duration=result.duration
    )


def _reason(exc: Exception) -> Reason:
    """A collector's own reason; anything else that escaped it is an ``error``."""
    return exc.reason if isinstance(exc, CollectorError) else Reason.ERROR
