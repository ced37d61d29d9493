"""A run's share of the Cloudflare rate budget (what it may send, the order zones are served in)
and what it hands to the next run (the rate window, the zones it deferred, the zones found).

``RunBudget`` counts the run's requests against ``cloudflare.run_budget``; a zone that finds it
spent is deferred (``zone.py``): not a failure, served first next run (``order``). Verification
lists are the first thing to give way: ``waiting_zones`` picks the zones whose due verification fits
in half the window's requests and half the run's budget, most overdue first, and leaves the
rest on their mirror until the next run, so writes always keep room.

No I/O of its own: the registry and the transport's count are handed in.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import structlog

from syncd.cloudflare.zones import Resolution
from syncd.config import Settings, ZoneConfig
from syncd.errors import StateError
from syncd.model import Discovery, RateWindow, ZoneReport
from syncd.registry import Registry

log = structlog.stdlib.get_logger(__name__)
PAGE = 100  # mappings per list page (the v2 list's largest page)
FACT_READS = 2  # a verified zone's facts: its load balancers, and now and then Tiered Cache


def limit(settings: Settings) -> int:
    """``cloudflare.run_budget``, with ``auto`` resolved from the rate limit and the schedule."""
    cf = settings.cloudflare
    if cf.run_budget != "auto":
        return cf.run_budget
    period = cf.rate_limit.period
    interval = (settings.schedule.interval or period) if not settings.schedule.cron else period
    return cf.rate_limit.requests * max(1, math.floor(interval / period))


class RunBudget:
    """The requests this run may still send; ``sent`` is the transport's count so far."""

    def __init__(self, limit: int, sent: Callable[[], int]) -> None:
        self.limit = limit
        self._sent = sent

    def spent(self) -> bool:
        return self._sent() >= self.limit

    def why(self) -> str:
        return (
            f"the run's Cloudflare budget is spent ({self.limit:,} requests, cloudflare.run_budget)"
        )


def waiting_zones(
    registry: Registry, zone_ids: Collection[str], *, now: float, interval: float, cap: int
) -> frozenset[str]:
    """The run's zones due for verification that wait for a later run: the most overdue are
    listed first while the estimated requests of their lists and facts fit in ``cap`` (the
    first always is, so verification never stalls behind one large zone)."""
    if interval <= 0:  # verify_interval 0: every zone is listed every run, by choice
        return frozenset()
    try:
        schedule = registry.mirror.verification_schedule()
    except StateError:
        return frozenset()  # the zones' reads find the registry broken and list them
    due = sorted(
        (verify_after, zone_id, max(1, math.ceil(size / PAGE)) + FACT_READS)
        for zone_id, (verify_after, size) in schedule.items()
        if verify_after <= now and zone_id in zone_ids  # a zone no longer synced costs nothing
    )
    used = 0
    left: set[str] = set()
    for _, zone_id, cost in due:
        if left or (used and used + cost > cap):
            left.add(zone_id)  # in order: a later zone never jumps an overdue one
        else:
            used += cost
    return frozenset(left)


def verify_cap(settings: Settings, run_limit: int) -> int:
    """Requests one run may spend on verification lists: half the window, half the run."""
    return min(settings.cloudflare.rate_limit.requests, run_limit) // 2


def order(zones: Sequence[ZoneConfig], deferred: Iterable[str]) -> tuple[ZoneConfig, ...]:
    """The run's zones, those the last run deferred first (in its order), then the rest."""
    rank = {zone_id: n for n, zone_id in enumerate(deferred)}
    first = sorted((z for z in zones if z.id in rank), key=lambda z: rank[z.id])
    return (*first, *[z for z in zones if z.id not in rank])


@dataclass(frozen=True, slots=True)
class Turn:
    """How one run serves its zones."""

    zones: tuple[ZoneConfig, ...]  # in the order they are served
    waiting: frozenset[str]  # due for verification, left on their mirror this run
    budget: RunBudget


def schedule(
    settings: Settings,
    registry: Registry,
    zones: Sequence[ZoneConfig],
    *,
    now: float,
    sent: Callable[[], int],
) -> Turn:
    """The run's budget, its zones in order (those the last run deferred first) and the zones
    due for verification that wait (beyond verification's share; ``--verify`` lists all)."""
    run_limit = limit(settings)
    try:
        ordered = order(zones, registry.handover.deferred())
    except StateError as exc:
        log.warning("deferred_zones_unreadable", error=str(exc))
        ordered = tuple(zones)
    cap = verify_cap(settings, run_limit)
    interval = settings.cloudflare.verify_interval
    ids = {z.id for z in zones}
    waiting = waiting_zones(registry, ids, now=now, interval=interval, cap=cap)
    return Turn(ordered, waiting, RunBudget(run_limit, sent))


def save_window(path: Path, window: RateWindow, *, dry_run: bool) -> None:
    """A run that ends before its registry is opened (Cloudflare failed it) still hands on the
    requests it sent: the next process counts them."""
    if dry_run:
        return
    try:
        with Registry(path) as registry:
            registry.window.save(window)
    except StateError as exc:
        log.warning("run_state_not_saved", error=str(exc))


def remember(
    settings: Settings,
    registry: Registry,
    found: Resolution,
    window: RateWindow,
    reports: Iterable[ZoneReport],
) -> Discovery | None:
    """What a run hands to the next (not worth failing it for): the rate window, the zones it
    deferred and the zones discovery found; what discovery found, with the zones vanished."""
    try:
        registry.window.save(window)
        registry.handover.save_deferred(z.zone_id for z in reports if z.deferred)
    except StateError as exc:
        log.warning("run_state_not_saved", error=str(exc))
    if settings.cloudflare.zone_discovery is None:
        return None
    explicit = {z.id for z in settings.cloudflare.zones}
    try:
        vanished = registry.handover.discovered(
            {z.id: z.name for z in found.zones if z.id not in explicit}
        )
    except StateError as exc:
        log.warning("zone_discovery_state", error=str(exc))
        vanished = []
    return Discovery(
        zones_listed=found.zones_listed, matched=found.discovered, vanished=tuple(vanished)
    )
