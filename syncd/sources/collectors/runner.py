"""Fan-out: every (collector, scope) pair on one shared, bounded thread pool.

The runner owns concurrency and scope failures. A scope ends ``ok``, ``failed`` or ``skipped``;
a collector whose scopes cannot be listed is recorded as not ``listed``. Failures are data in the
returned ``Inventory``, never exceptions, because the planner needs them to protect mappings of
incomplete scopes from deletion. The runner knows nothing of Cloudflare.

``stream`` reports each step to a ``Sink`` as it happens (a scope started, a chunk of what it
found, its outcome), so a vendor's child process (``collectors.process``) can pass results on
without holding them; ``run`` is ``stream`` into a sink that builds the ``Inventory``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Executor, Future, wait
from dataclasses import dataclass
from typing import Any, Protocol

from syncd.model import (
    Address,
    CollectorOutcome,
    Inventory,
    Scope,
    ScopeOutcome,
    ScopeStatus,
    Skip,
)
from syncd.sources.collectors.base import Collector, Discovery
from syncd.sources.collectors.failures import ScopeDenied, reason_of


class Sink(Protocol):
    """Where ``stream`` reports. ``started`` and ``found`` are called from the pool's threads
    (one scope's calls from one thread, in order); ``listed`` and ``done`` from the caller's."""

    def listed(self, outcome: CollectorOutcome, scopes: tuple[Scope, ...]) -> None: ...

    def started(self, scope: Scope) -> None: ...

    def found(self, scope: Scope, items: Sequence[Discovery]) -> None:
        """Part of a scope's items, before its outcome; dropped if the scope then fails."""
        ...

    def done(self, outcome: ScopeOutcome, items: Sequence[Discovery]) -> None:
        """A scope's outcome, with its last items when ``ok``."""
        ...


@dataclass(frozen=True, slots=True)
class _Listed:
    collector: Collector
    scopes: tuple[Scope, ...]
    duration: float


@dataclass(frozen=True, slots=True)
class _Collected:
    scope: Scope
    items: tuple[Discovery, ...]  # those not yet passed on in chunks
    addresses: int  # all of the scope's, chunks included
    duration: float


def run(
    collectors: Iterable[Collector],
    *,
    executor: Executor,
    clock: Callable[[], float] = time.monotonic,
) -> Inventory:
    """Collect everything; return the inventory with one outcome per collector and scope."""
    sink = Gather()
    stream(collectors, executor=executor, sink=sink, clock=clock)
    return sink.inventory()


def stream(
    collectors: Iterable[Collector],
    *,
    executor: Executor,
    sink: Sink,
    clock: Callable[[], float] = time.monotonic,
    chunk: int = 0,
) -> None:
    """Collect everything, reporting to ``sink``; ``chunk`` > 0 passes a scope's items on in
    parts of that size while it runs (0: all at its end)."""
    listing: dict[Future[_Listed], Collector] = {
        executor.submit(_list_scopes, c, clock): c for c in collectors
    }
    scoping: dict[Future[_Collected], Scope] = {}
    while listing or scoping:
        waiting: list[Future[Any]] = [*listing, *scoping]
        done, _ = wait(waiting, return_when=FIRST_COMPLETED)
        for lf in [f for f in listing if f in done]:
            collector = listing.pop(lf)
            outcome, scopes = _listed(collector, lf)
            sink.listed(outcome, scopes)
            for s in scopes:
                job = executor.submit(_collect_scope, collector, s, clock, sink, chunk)
                scoping[job] = s
        for sf in [f for f in scoping if f in done]:
            sink.done(*_collected(scoping.pop(sf), sf))


class Gather:
    """A ``Sink`` that keeps everything: the inventory of ``run``."""

    def __init__(self) -> None:
        self.addresses: list[Address] = []
        self.skips: list[Skip] = []
        self.scopes: list[ScopeOutcome] = []
        self.collectors: list[CollectorOutcome] = []
        self._parts: dict[Scope, list[Discovery]] = {}

    def listed(self, outcome: CollectorOutcome, scopes: tuple[Scope, ...]) -> None:
        self.collectors.append(outcome)

    def started(self, scope: Scope) -> None:
        pass

    def found(self, scope: Scope, items: Sequence[Discovery]) -> None:
        # Only this scope's thread touches its list until ``done`` (after its future ended).
        self._parts.setdefault(scope, []).extend(items)

    def done(self, outcome: ScopeOutcome, items: Sequence[Discovery]) -> None:
        kept = [*self._parts.pop(outcome.scope, ()), *items]
        self.scopes.append(outcome)
        if outcome.status is ScopeStatus.OK:
            self.addresses.extend(i for i in kept if isinstance(i, Address))
            self.skips.extend(i for i in kept if isinstance(i, Skip))

    def inventory(self) -> Inventory:
        return Inventory(
            addresses=tuple(self.addresses),
            skips=tuple(self.skips),
            scopes=tuple(sorted(self.scopes, key=lambda o: str(o.scope.key))),
            collectors=tuple(sorted(self.collectors, key=lambda o: o.collector)),
        )


def _list_scopes(collector: Collector, clock: Callable[[], float]) -> _Listed:
    start = clock()
    scopes = tuple(collector.scopes())
    return _Listed(collector, scopes, clock() - start)


def _collect_scope(
    collector: Collector, scope: Scope, clock: Callable[[], float], sink: Sink, chunk: int
) -> _Collected:
    sink.started(scope)
    start = clock()
    items: list[Discovery] = []
    addresses = 0
    for item in collector.collect(scope):
        items.append(item)
        addresses += isinstance(item, Address)
        if chunk and len(items) >= chunk:
            sink.found(scope, items)
            items = []
    return _Collected(scope, tuple(items), addresses, clock() - start)


def _listed(
    collector: Collector, future: Future[_Listed]
) -> tuple[CollectorOutcome, tuple[Scope, ...]]:
    try:
        listed = future.result()
    except Exception as exc:  # noqa: BLE001 (scope boundary: the collector is failed and recorded)
        reason = reason_of(exc)
        return (
            CollectorOutcome(
                collector=collector.name,
                vendor=collector.vendor,
                enumerated=False,
                error=str(exc),
                reason=reason,
            ),
            (),
        )
    outcome = CollectorOutcome(
        collector=collector.name, vendor=collector.vendor, enumerated=True, duration=listed.duration
    )
    return outcome, listed.scopes


def _collected(
    scope: Scope, future: Future[_Collected]
) -> tuple[ScopeOutcome, tuple[Discovery, ...]]:
    try:
        result = future.result()
    except ScopeDenied as exc:
        return ScopeOutcome(scope=scope, status=ScopeStatus.SKIPPED, reason=exc.reason), ()
    except Exception as exc:  # noqa: BLE001 (scope boundary: the scope is failed and recorded)
        reason = reason_of(exc)
        failed = ScopeOutcome(
            scope=scope,
            status=ScopeStatus.FAILED,
            reason=reason,
            error=str(exc),
        )
        return failed, ()
    outcome = ScopeOutcome(
        scope=scope, status=ScopeStatus.OK, addresses=result.addresses, duration=result.duration
    )
    return outcome, result.items
