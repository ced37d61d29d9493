"""``run_once``: collect -> plan -> push -> record -> RunReport. The unit of work.

``syncd sync`` and each scheduled run of ``syncd run`` call it: connect to Cloudflare, find the
run's zones, run the collectors while the zones are read, resolve the inventory once, and
reconcile each zone on its own (``zone.py``) so that one zone's failure never stops another. It
raises nothing but programming errors; logs, metrics and the CLI summary are views of the report.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import structlog

from syncd import collectors, plan, zone
from syncd.cloudflare import api
from syncd.config import Settings
from syncd.errors import CloudflareError, StateError
from syncd.model import Discovery, Inventory, RunReport
from syncd.resolver import Resolver
from syncd.state import StateStore, load_window

log = structlog.stdlib.get_logger(__name__)
_ZONE_WORKERS = 32  # zones are pushed concurrently; the shared rate limit paces them


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Per-invocation choices that are not configuration."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    http_transport: api.HTTPTransport | None = None  # the benchmark's in-process transport
    stop: threading.Event | None = None  # set on shutdown: the batch in flight finishes
    limiter: api.RateLimiter | None = None  # the daemon's, for its whole life (runs share it)
    verify: bool = False  # sync --verify: list every zone in full, whatever its mirror says


def run_once(
    settings: Settings,
    *,
    options: Options | None = None,
    clock: Callable[[], float] = time.time,
) -> RunReport:
    """One complete run; see the module docstring."""
    opts = options or Options()
    started = clock()
    with (
        connect(settings, opts) as cloudflare,
        Resolver.configured(settings.resolver) as names,
        ThreadPoolExecutor(1, thread_name_prefix="syncd-collect") as coordinator,
    ):

        def report(inventory: Inventory, error: str = "") -> RunReport:
            calls = cloudflare.calls()
            return RunReport(
                started=started, finished=clock(), inventory=inventory, error=error, calls=calls
            )

        collecting = coordinator.submit(collectors.collect, settings)
        reading = zone.Reading(settings.cloudflare.verify_interval, opts.verify, clock())
        return _run(settings, opts, cloudflare, names, collecting, report, reading=reading)


def _run(  # noqa: PLR0917 (private seam of run_once)
    settings: Settings,
    opts: Options,
    cloudflare: api.Cloudflare,
    names: Resolver,
    collecting: Future[Inventory],
    report: Callable[[Inventory, str], RunReport],
    *,
    reading: zone.Reading,
) -> RunReport:
    """The zones are read while the collectors finish, then each is planned and applied."""
    reach = zone.Reach(cloudflare, names)
    try:
        found = cloudflare.zones(settings.cloudflare)
        zones = found.zones
        regions = api.supported_regions(cloudflare, [z.id for z in zones]) if zones else {}
    except CloudflareError as exc:
        return report(collecting.result(), f"Cloudflare: {exc}")
    try:
        # Opened before the zones are read: it holds each zone's mirror of Cloudflare.
        store = StateStore(settings.state.path, read_only=opts.dry_run)
    except StateError as exc:
        return report(collecting.result(), str(exc))
    with store, ThreadPoolExecutor(max(1, min(_ZONE_WORKERS, len(zones)))) as pool:
        held = {z.id: pool.submit(zone.read, reach, z, store, reading) for z in zones}
        inventory = collecting.result()
        run = zone.Run(
            api=cloudflare,
            store=store,
            resolved=plan.resolve(inventory, plan.RegionMatcher(regions)),
            health=plan.Health.of(inventory),
            settings=plan.PlanSettings.of(settings, allow_mass_delete=opts.allow_mass_delete),
            dry_run=opts.dry_run,
            stop=opts.stop,
        )
        work = [pool.submit(zone.reconcile, z, held[z.id], run) for z in zones]
        reports = tuple(f.result() for f in work)
        discovery = _remember(settings, found, store, cloudflare)
    budget = cloudflare.budget()
    return replace(
        report(inventory, ""),
        zones=reports,
        dry_run=opts.dry_run,
        api_generation=",".join(sorted({z.generation for z in reports if z.generation})),
        discovery=discovery,
        budget_remaining=budget.remaining,
        budget_source=budget.source,
    )


def connect(settings: Settings, opts: Options | None = None) -> api.Cloudflare:
    """The run's connection to Cloudflare (also for the CLI's read-only commands)."""
    opts = opts or Options()
    cf = settings.cloudflare
    return api.connect(
        cf,
        timeout=cf.timeout,
        retries=cf.retries,
        backoff=cf.backoff,
        limiter=opts.limiter,
        window=load_window(settings.state.path),
        http_transport=opts.http_transport,
    )


def _remember(
    settings: Settings, found: api.Resolution, store: StateStore, cloudflare: api.Cloudflare
) -> Discovery | None:
    """For the next run (not worth failing this one for): the rate window, the zones found."""
    try:
        store.save_window(cloudflare.window())
    except StateError as exc:
        log.warning("rate_window_not_saved", error=str(exc))
    if settings.cloudflare.zone_discovery is None:
        return None
    explicit = {z.id for z in settings.cloudflare.zones}
    try:
        vanished = store.discovered({z.id: z.name for z in found.zones if z.id not in explicit})
    except StateError as exc:
        log.warning("zone_discovery_state", error=str(exc))
        vanished = []
    return Discovery(listed=found.listed, matched=found.discovered, vanished=tuple(vanished))
