"""``run_once``: collect -> plan -> push -> record -> RunReport. The unit of work.

``syncd sync`` and each scheduled run of ``syncd run`` call it: connect to Cloudflare, find the
run's zones, run the collectors while the zones are read, resolve the inventory once, and
reconcile each zone on its own (``zone.py``) so that one zone's failure never stops another. It
raises nothing but programming errors; logs, metrics and the CLI summary are views of the report.
Credentials Cloudflare refuses end the run at once: the collection started beside the first
requests is abandoned (its processes killed), not awaited for nothing.
"""

from __future__ import annotations

import contextlib
import gc
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import structlog

from syncd import plan
from syncd.cloudflare import api
from syncd.config import CloudflareConfig, Settings, ZoneConfig
from syncd.errors import AuthError, CloudflareError, StateError
from syncd.model import (
    Inventory,
    ObservationState,
    RunReport,
    SupportedRegions,
    ZoneObservation,
)
from syncd.registry import Registry, load_window
from syncd.run import budget, zone
from syncd.sources import collectors, observe
from syncd.sources.resolver import Resolver

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
    observe_now: bool = False  # origins --observed: read every zone's traffic now


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
        abandon = _Abandon(opts.stop)
        run = _Run(
            settings=settings,
            opts=opts,
            cloudflare=cloudflare,
            names=names,
            collecting=coordinator.submit(collectors.collect, settings, abandon),
            abandon=abandon,
            started=started,
            clock=clock,
        )
        return run.through()


class _Abandon(threading.Event):
    """Set by the run when it cannot go on, or by shutdown (``outer``): either ends the
    collection at once."""

    def __init__(self, outer: threading.Event | None) -> None:
        super().__init__()
        self._outer = outer

    def is_set(self) -> bool:
        return super().is_set() or (self._outer is not None and self._outer.is_set())


def _refused(exc: AuthError, cf: CloudflareConfig) -> str:
    """What to fix when Cloudflare refuses the run's first requests."""
    if exc.for_every_zone:  # 401: the credentials themselves
        source = "cloudflare.api_token (or api_token_file, or api_email and api_key)"
        return f"Cloudflare refused the credentials: {exc}; check {source}"
    zones = ", ".join(z.label for z in cf.zones) or "the discovered zones"
    return (
        f"Cloudflare refused the token: {exc}; give it Zone Settings: Read, Zone Settings: Edit, "
        f"DNS: Read, Zone: Read and Load Balancing: Read on {zones} (docs/operations.md)"
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class _Run:
    """What one run holds while it goes: the connection, the resolver, the collection under way
    (started beside the first Cloudflare requests) and its clock."""

    settings: Settings
    opts: Options
    cloudflare: api.Cloudflare
    names: Resolver
    collecting: Future[Inventory]
    abandon: threading.Event  # set: the collection is ended at once, what it found dropped
    started: float
    clock: Callable[[], float]

    def through(self) -> RunReport:
        """The zones are read while the collectors finish, then each is planned and applied."""
        settings, opts, cloudflare = self.settings, self.opts, self.cloudflare
        reading = zone.Reading(settings.cloudflare.verify_interval, opts.verify, self.clock())
        try:
            found = cloudflare.zones(settings.cloudflare)
            zones = found.zones
            regions = (
                api.supported_regions(cloudflare, [z.id for z in zones])
                if zones
                else SupportedRegions({})
            )
        except CloudflareError as exc:
            budget.save_window(settings.state.path, cloudflare.window(), dry_run=opts.dry_run)
            if isinstance(exc, AuthError):  # nothing can be done: the collection is not awaited
                self.abandon.set()  # its processes are killed; what they found is dropped
                self.collecting.result()
                return self.report(Inventory(), _refused(exc, settings.cloudflare))
            return self.report(self.collecting.result(), f"Cloudflare: {exc}")
        try:
            # Opened before the zones are read: it holds each zone's mirror of Cloudflare.
            registry = Registry(settings.state.path, read_only=opts.dry_run)
        except StateError as exc:
            return self.report(self.collecting.result(), str(exc))
        reach = zone.Reach(cloudflare, self.names, found.accounts)
        with registry, ThreadPoolExecutor(max(1, min(_ZONE_WORKERS, len(zones)))) as pool:
            turn = budget.schedule(settings, registry, zones, now=reading.now, sent=cloudflare.sent)
            zones, reading = turn.zones, replace(reading, waiting=turn.waiting, budget=turn.budget)
            observing = pool.submit(
                observe.current,
                cloudflare,
                registry,
                zones,
                # origins --observed asks for the traffic: read it even where observation is off.
                settings.cloudflare.observe.model_copy(update={"enabled": True})
                if opts.observe_now
                else settings.cloudflare.observe,
                observe.TrafficDue(now=reading.now, now_all=opts.verify or opts.observe_now),
                stop=lambda: turn.budget.why() if turn.budget.spent() else "",
            )
            held = {z.id: pool.submit(zone.read, reach, z, registry, reading) for z in zones}
            inventory = self.collecting.result()
            with inventory_frozen():
                run = zone.Run(
                    api=cloudflare,
                    registry=registry,
                    resolved=plan.resolve(inventory, plan.RegionMatcher(regions.regions)),
                    health=plan.Health.of(inventory),
                    settings=plan.PlanSettings.of(
                        settings, allow_mass_delete=opts.allow_mass_delete
                    ),
                    dry_run=opts.dry_run,
                    stop=opts.stop,
                    budget=reading.budget,
                    observed=_observations(observing, zones),
                    upper_tiers=regions.upper_tiers,
                )
                work = [pool.submit(zone.reconcile, z, held[z.id], run) for z in zones]
                reports = tuple(f.result() for f in work)
            discovery = budget.remember(settings, registry, found, cloudflare.window(), reports)
        return replace(
            self.report(inventory, ""),
            zones=reports,
            dry_run=opts.dry_run,
            api_generation=",".join(sorted({z.generation for z in reports if z.generation})),
            discovery=discovery,
            verifications_waiting=len(reading.waiting),
        )

    def report(self, inventory: Inventory, error: str = "") -> RunReport:
        """The run's report so far: its requests, the budget left, and ``error`` if it ended."""
        left = self.cloudflare.window_left()
        return RunReport(
            started=self.started,
            finished=self.clock(),
            inventory=inventory,
            error=error,
            calls=self.cloudflare.calls(),
            budget_remaining=left.remaining,
            budget_source=left.source,
        )


def _observations(
    observing: Future[dict[str, ZoneObservation]], zones: Sequence[ZoneConfig]
) -> dict[str, ZoneObservation]:
    """The zones' traffic; advisory, so even a bug in reading it never fails the run. But what
    traffic proved is then unknown: each zone's is ``uncertain`` (its deletions are held)."""
    try:
        return observing.result()
    except Exception as exc:  # advisory boundary: logged with its traceback, the run goes on
        log.exception("observation_crashed")
        failed = ZoneObservation(
            state=ObservationState.FAILED,
            detail=f"reading the traffic failed ({type(exc).__name__})",
            uncertain=True,
        )
        return {z.id: failed for z in zones}


@contextlib.contextmanager
def inventory_frozen() -> Iterator[None]:
    """What is alive now (the run's inventory: 100,000 addresses and their records) kept out of
    the garbage collector's passes while the run plans and pushes.

    Nothing in the inventory is garbage before the run ends, yet every full pass walked all of
    it: half of planning's CPU (issue 26). Freed objects still go at once (reference counts);
    the daemon's collection after the run sees them all again.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


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
