"""``run_once``: collect -> plan -> push -> record -> RunReport. The unit of work.

Both ``syncd sync`` and every scheduled run of ``syncd run`` call it. Collection and the
Cloudflare reads (supported regions, each zone's mappings and DNS origins) run at the same time;
zones are then planned and pushed independently, so one zone's failure never stops another.
It returns the report and raises nothing but programming errors: logs, metrics and the CLI
summary are all made from the report elsewhere.
"""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

import httpx
import structlog

from syncd import collectors, plan, push
from syncd.cloudflare import dns
from syncd.cloudflare import zones as cfzones
from syncd.cloudflare.api import CloudflareAPI, generation_of, open_api
from syncd.cloudflare.transport import RateLimiter, RetryPolicy, Transport, build_client
from syncd.collectors import runner
from syncd.collectors.base import CollectorSettings
from syncd.config import Settings, ZoneConfig
from syncd.errors import CloudflareError, StateError, SyncdError, TransportError
from syncd.model import (
    Discovery,
    Inventory,
    IPAddress,
    Mapping,
    RunReport,
    Vendor,
    ZonePlan,
    ZoneReport,
)
from syncd.state import Mirror, Registry, load_window

log = structlog.stdlib.get_logger(__name__)
_ZONE_WORKERS = 32  # zones are pushed concurrently; the shared rate limit paces them


@dataclass(frozen=True, slots=True)
class _ZoneState:
    current: dict[IPAddress, Mapping]
    dns_origins: frozenset[IPAddress] | None
    listed: str = ""  # why the zone was listed in full; "" when its mirror was used
    drift: int = 0  # mappings where the list disagreed with the mirror
    schedule: tuple[float, float] = (0.0, 0.0)  # the mirror's (listed_at, verify_after)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Per-invocation choices that are not configuration."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    # The benchmark may pass an httpx transport; production uses the network.
    http_transport: httpx.BaseTransport | None = None
    # Set on shutdown: the batch in flight finishes, no further batch is sent.
    stop: threading.Event | None = None
    # The daemon passes one for its whole life: Cloudflare's limit spans runs, not just one.
    limiter: RateLimiter | None = None
    # sync --verify: list every zone in full, whatever its mirror says.
    verify: bool = False


def run_once(
    settings: Settings,
    *,
    options: Options | None = None,
    clock: Callable[[], float] = time.time,
) -> RunReport:
    """One complete run; see the module docstring."""
    opts = options or Options()
    started = clock()
    client, transport = _connect(settings, opts)
    api = open_api(settings.cloudflare.api, transport)
    with client, ThreadPoolExecutor(1, thread_name_prefix="syncd-collect") as coordinator:
        inventory_future = coordinator.submit(collect, settings)
        return _run(settings, opts, api, transport, inventory_future, started, clock)


def supported_regions(settings: Settings) -> dict[Vendor, frozenset[str]]:
    """Cloudflare's supported vendors and regions (``syncd regions``)."""
    client, transport = _connect(settings, Options())
    with client:
        found = cfzones.discover(transport, settings.cloudflare)
        if not found.zones:
            raise CloudflareError("zone discovery matched no zone to ask for supported regions")
        return _supported_regions(open_api(settings.cloudflare.api, transport), found.zones)


def resolve_zones(settings: Settings) -> cfzones.Resolution:
    """The zones a run would keep in step: explicit ones and, with discovery, those listed."""
    client, transport = _connect(settings, Options())
    with client:
        return cfzones.discover(transport, settings.cloudflare)


def rate_limiter(settings: Settings) -> RateLimiter:
    """The client-side limiter for ``cloudflare.rate_limit``; share one across runs."""
    cf = settings.cloudflare
    return RateLimiter(cf.rate_limit.requests, cf.rate_limit.period)


def _connect(settings: Settings, opts: Options) -> tuple[httpx.Client, Transport]:
    """The run's one HTTP client and the transport (auth, rate limit, retries) around it."""
    cf = settings.cloudflare
    client = build_client(
        cf.base_url,
        token=cf.api_token.get_secret_value() if cf.api_token else None,
        email=cf.api_email,
        key=cf.api_key.get_secret_value() if cf.api_key else None,
        timeout=cf.timeout,
        transport=opts.http_transport,
    )
    limiter = opts.limiter or rate_limiter(settings)
    # Requests earlier processes sent still count (a CronJob's runs share one budget).
    limiter.restore(load_window(settings.state.path))
    retry = RetryPolicy(retries=cf.retries, backoff=cf.backoff)
    return client, Transport(client, limiter=limiter, retry=retry)


def collect(settings: Settings) -> Inventory:
    """Run every configured collector once (``syncd discover``, and the first half of a run)."""
    s = settings.collectors
    found = collectors.build(
        settings.collectors,
        settings=CollectorSettings(
            scope_timeout=s.scope_timeout,
            request_timeout=s.request_timeout,
            max_attempts=s.attempts,
        ),
    )
    with ThreadPoolExecutor(s.concurrency, thread_name_prefix="syncd-scope") as pool:
        return runner.run(found, executor=pool)


def _run(  # noqa: PLR0917 (private seam of run_once)
    settings: Settings,
    opts: Options,
    api: CloudflareAPI,
    transport: Transport,
    inventory_future: Future[Inventory],
    started: float,
    clock: Callable[[], float],
) -> RunReport:
    try:
        found = cfzones.discover(transport, settings.cloudflare)
    except CloudflareError as exc:
        inventory = inventory_future.result()
        return _failed(started, clock, inventory, transport, f"Cloudflare: {exc}")
    zones = found.zones
    try:
        # Opened before the zones are read: it holds each zone's mirror of Cloudflare.
        registry = Registry(settings.state.path, read_only=opts.dry_run)
    except StateError as exc:
        return _failed(started, clock, inventory_future.result(), transport, str(exc))
    with registry, ThreadPoolExecutor(max(1, min(_ZONE_WORKERS, len(zones)))) as pool:
        try:
            regions = _supported_regions(api, zones) if zones else {}
        except CloudflareError as exc:
            inventory = inventory_future.result()
            return _failed(started, clock, inventory, transport, f"Cloudflare: {exc}")
        reading = _Reading(settings.cloudflare.verify_interval, opts.verify, clock())
        reads = {z.id: pool.submit(_read_zone, api, transport, z, registry, reading) for z in zones}
        inventory = inventory_future.result()
        resolved = plan.resolve(inventory, plan.RegionMatcher(regions))
        discovery = _discovery(settings, found, registry)
        health = plan.Health.of(inventory)
        work = [
            pool.submit(_zone, z, reads[z.id], resolved, api, registry, health, settings, opts)
            for z in zones
        ]
        reports = tuple(f.result() for f in work)
        _save_window(registry, transport)
    budget = transport.limiter.budget()
    return RunReport(
        started=started,
        finished=clock(),
        inventory=inventory,
        zones=reports,
        dry_run=opts.dry_run,
        api_generation=",".join(sorted({z.generation for z in reports if z.generation})),
        calls=transport.calls(),
        discovery=discovery,
        budget_remaining=budget.remaining,
        budget_source=budget.source,
    )


def _save_window(registry: Registry, transport: Transport) -> None:
    try:
        registry.save_window(transport.limiter.window())
    except StateError as exc:  # pacing for the next process only; this run's work is done
        log.warning("rate_window_not_saved", error=str(exc))


def _discovery(
    settings: Settings, found: cfzones.Resolution, registry: Registry
) -> Discovery | None:
    if settings.cloudflare.zone_discovery is None:
        return None
    explicit = {z.id for z in settings.cloudflare.zones}
    kept = {z.id: z.name for z in found.zones if z.id not in explicit}
    try:
        vanished = registry.discovered(kept)
    except StateError as exc:  # the list of last run's zones is only for reporting
        log.warning("zone_discovery_state", error=str(exc))
        vanished = []
    return Discovery(listed=found.listed, matched=found.discovered, vanished=tuple(vanished))


def _failed(
    started: float,
    clock: Callable[[], float],
    inventory: Inventory,
    transport: Transport,
    error: str,
) -> RunReport:
    return RunReport(
        started=started,
        finished=clock(),
        inventory=inventory,
        error=error,
        calls=transport.calls(),
    )


def _supported_regions(
    api: CloudflareAPI, zones: tuple[ZoneConfig, ...]
) -> dict[Vendor, frozenset[str]]:
    """Once per run, from the first zone that answers.

    A zone may refuse on its own (Tiered Cache off, a zone id the token cannot see), so the
    next zone is asked; a network or server failure is the same for every zone and ends it.
    """
    first: CloudflareError | None = None
    for zone in zones:
        try:
            return api.supported_regions(zone.id)
        except CloudflareError as exc:
            if isinstance(exc, TransportError) or exc.retryable or exc.status == 401:
                raise
            first = first or exc
    assert first is not None  # noqa: S101 (zones is never empty: the config requires one)
    raise first


@dataclass(frozen=True, slots=True)
class _Reading:
    """How this run reads zones: when a mirror is due for a full list."""

    interval: float  # cloudflare.verify_interval
    verify: bool  # sync --verify: list every zone in full
    now: float


def _read_zone(
    api: CloudflareAPI,
    transport: Transport,
    zone: ZoneConfig,
    registry: Registry,
    reading: _Reading,
) -> _ZoneState:
    """The zone's mappings from its mirror when that is trusted and not due, else listed in
    full (and the mirror replaced); its DNS origins are always read."""
    origins = None
    if zone.origins == "dns":
        origins = dns.origin_addresses(transport, zone.id, proxied_only=zone.proxied_only)
    mirror, why = _mirror(registry, zone.id, reading)
    if mirror is not None and not why:
        schedule = (mirror.listed_at, mirror.verify_after)
        return _ZoneState(dict(mirror.mappings), origins, schedule=schedule)
    current = plan.index(api.list_mappings(zone.id))
    drift = 0
    if mirror is not None:
        drift = sum(
            1
            for ip in mirror.mappings.keys() | current.keys()
            if mirror.mappings.get(ip) != current.get(ip)
        )
        due = reading.now + reading.interval
    else:  # never listed: spread the zones' next verification over the interval
        due = reading.now + reading.interval * _phase(zone.id)
    registry.mirror_listed(zone.id, current.values(), listed_at=reading.now, verify_after=due)
    return _ZoneState(current, origins, listed=why, drift=drift, schedule=(reading.now, due))


def _mirror(registry: Registry, zone_id: str, reading: _Reading) -> tuple[Mirror | None, str]:
    """The zone's mirror and why the zone must be listed in full anyway ("" if it need not)."""
    try:
        mirror = registry.mirror(zone_id)
        pending = registry.pending(zone_id)
    except StateError:
        return None, "mirror_corrupt"
    if mirror is None:
        return None, "no_mirror"
    if reading.verify:
        return mirror, "verify"
    if pending:  # a batch's outcome is unknown: only Cloudflare's list can settle it
        return mirror, "pending"
    if reading.interval <= 0 or mirror.verify_after <= reading.now:
        return mirror, "due"
    return mirror, ""


def _phase(zone_id: str) -> float:
    """A stable fraction in (0, 1] per zone, so first verifications never bunch."""
    digest = hashlib.sha256(zone_id.encode()).digest()
    return (int.from_bytes(digest[:4], "big") + 1) / 2**32


def _zone(  # noqa: PLR0917 (private seam, one zone's work on the pool)
    zone: ZoneConfig,
    read: Future[_ZoneState],
    resolved: plan.Resolved,
    api: CloudflareAPI,
    registry: Registry,
    health: plan.Health,
    settings: Settings,
    opts: Options,
) -> ZoneReport:
    empty = ZonePlan(zone_id=zone.id, zone_name=zone.label)
    try:
        state = read.result()
        zplan = plan.build(
            zone,
            resolved,
            current=state.current,
            owned=registry.settle(zone.id, state.current),
            dns_origins=state.dns_origins,
            health=health,
            settings=plan.PlanSettings(
                batch_size=settings.cloudflare.batch_size,
                max_mappings=settings.cloudflare.max_mappings_per_zone,
                max_delete_fraction=settings.sync.max_delete_fraction,
                allow_mass_delete=opts.allow_mass_delete,
            ),
        )
    except Exception as exc:  # zone boundary: the zone is failed and recorded (style 16)
        if not isinstance(exc, SyncdError):
            log.exception("zone_crashed", zone=zone.id)
        reason = getattr(exc, "reason", type(exc).__name__.lower())
        return ZoneReport(
            zone_id=zone.id, zone_name=zone.label, plan=empty, error=str(exc), error_reason=reason
        )
    generation = generation_of(api, zone.id)
    if opts.dry_run:
        return ZoneReport(
            zone_id=zone.id,
            zone_name=zone.label,
            plan=zplan,
            applied=False,
            generation=generation,
            mappings_after=_by_vendor(state.current.values()),
            listed=state.listed,
            drift=state.drift,
        )
    writes = bool(zplan.creates or zplan.updates or zplan.deletes)
    if writes:
        # Until the writes are done and remembered, the mirror is not the truth: a process
        # killed in between must list the zone next time, never plan against a stale mirror.
        _remember(registry, zone.id, None, state.schedule)
    try:
        out = push.apply(api, registry, zplan, stop=opts.stop)
    except Exception as exc:  # zone boundary: the zone is failed and recorded (style 16)
        log.exception("zone_push_crashed", zone=zone.id)
        return ZoneReport(
            zone_id=zone.id, zone_name=zone.label, plan=zplan, error=str(exc), error_reason="error"
        )
    after = dict(state.current)
    for ip in out.deleted:
        after.pop(ip, None)
    after.update({u.mapping.ip: u.mapping for u in out.upserted})
    if writes and not (out.failures or out.error):
        _remember(registry, zone.id, after, state.schedule)
    # else an answer disagreed, or the zone stopped: the mirror stays distrusted (re-list)
    return ZoneReport(
        listed=state.listed,
        drift=state.drift,
        zone_id=zone.id,
        zone_name=zone.label,
        plan=zplan,
        created=out.created,
        updated=out.updated,
        deleted=len(out.deleted),
        failures=tuple(out.failures),
        error=out.error,
        error_reason=out.error_reason,
        mappings_after=_by_vendor(after.values()),
        generation=generation,
    )


def _remember(
    registry: Registry,
    zone_id: str,
    after: dict[IPAddress, Mapping] | None,
    schedule: tuple[float, float],
) -> None:
    """Keep the mirror in step with confirmed writes; ``None``: distrust it (list next run)."""
    try:
        if after is None:
            registry.mirror_distrust(zone_id)
        else:
            listed_at, verify_after = schedule
            registry.mirror_listed(
                zone_id, after.values(), listed_at=listed_at, verify_after=verify_after
            )
    except StateError as exc:
        log.warning("mirror_not_saved", zone=zone_id, error=str(exc))
        # If even that fails, the database is broken: the next run's check stops it.
        with contextlib.suppress(StateError):
            registry.mirror_distrust(zone_id)


def _by_vendor(mappings: Iterable[Mapping]) -> tuple[tuple[str, int], ...]:
    counts = Counter(m.vendor.value for m in mappings)
    return tuple(sorted(counts.items()))
