"""``run_once``: collect -> plan -> push -> record -> RunReport. The unit of work.

Both ``syncd sync`` and every scheduled run of ``syncd run`` call it. Collection and the
Cloudflare reads (supported regions, each zone's mappings and DNS origins) run at the same time;
zones are then planned and pushed independently, so one zone's failure never stops another.
It returns the report and raises nothing but programming errors: logs, metrics and the CLI
summary are all made from the report elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace

import httpx
import structlog

from syncd import collectors, origins, plan, push
from syncd.cloudflare import origins as cf_origins
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
    ItemFailure,
    Mapping,
    OriginCoverage,
    RunReport,
    Skip,
    SkipReason,
    TieredCache,
    Vendor,
    ZoneOrigins,
    ZonePlan,
    ZoneReport,
)
from syncd.resolver import Resolver
from syncd.state import Registry, load_window

log = structlog.stdlib.get_logger(__name__)
_ZONE_WORKERS = 32  # zones are pushed concurrently; the shared rate limit paces them


@dataclass(frozen=True, slots=True)
class _ZoneState:
    current: dict[IPAddress, Mapping]
    origins: ZoneOrigins | None
    tiered_cache: TieredCache


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
    with (
        client,
        resolver(settings) as names,
        ThreadPoolExecutor(1, thread_name_prefix="syncd-collect") as coordinator,
    ):
        inventory_future = coordinator.submit(collect, settings)
        cf = _Cloudflare(api, transport, names)
        return _run(settings, opts, cf, inventory_future, started, clock)


def resolver(settings: Settings) -> Resolver:
    """The run's DNS resolver (``resolver`` section); close it when the run ends."""
    r = settings.resolver
    return Resolver(nameservers=r.addresses, timeout=r.timeout, concurrency=r.concurrency)


@dataclass(frozen=True, slots=True)
class _Cloudflare:
    """What a run reads Cloudflare (and DNS) through."""

    api: CloudflareAPI
    transport: Transport
    resolver: Resolver


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
    cf: _Cloudflare,
    inventory_future: Future[Inventory],
    started: float,
    clock: Callable[[], float],
) -> RunReport:
    api, transport = cf.api, cf.transport
    try:
        found = cfzones.discover(transport, settings.cloudflare)
    except CloudflareError as exc:
        inventory = inventory_future.result()
        return _failed(started, clock, inventory, transport, f"Cloudflare: {exc}")
    zones = found.zones
    with ThreadPoolExecutor(max(1, min(_ZONE_WORKERS, len(zones)))) as pool:
        try:
            regions = _supported_regions(api, zones) if zones else {}
        except CloudflareError as exc:
            inventory = inventory_future.result()
            return _failed(started, clock, inventory, transport, f"Cloudflare: {exc}")
        reads = {z.id: pool.submit(_read_zone, cf, z) for z in zones}
        inventory = inventory_future.result()
        resolved = plan.resolve(inventory, plan.RegionMatcher(regions))
        try:
            registry = Registry(settings.state.path, read_only=opts.dry_run)
        except StateError as exc:
            return _failed(started, clock, inventory, transport, str(exc))
        with registry:
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


def _read_zone(cf: _Cloudflare, zone: ZoneConfig) -> _ZoneState:
    current = plan.index(cf.api.list_mappings(zone.id))
    found = read_origins(cf.transport, cf.resolver, zone) if zone.origins == "dns" else None
    tiered = cf_origins.tiered_cache(cf.transport, zone.id, label=zone.label)
    return _ZoneState(current, found, tiered)


def read_origins(transport: Transport, resolver: Resolver, zone: ZoneConfig) -> ZoneOrigins:
    """Every origin Cloudflare reaches for ``zone``: records, CNAME chains, load balancers."""
    sources = cf_origins.read(transport, zone.id, name=zone.name, label=zone.label)
    traced = origins.trace(sources, proxied_only=zone.proxied_only)
    return origins.finish(traced, resolver.resolve_all(traced.names))


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
        found = state.origins
        zplan = plan.build(
            zone,
            resolved,
            current=state.current,
            owned=registry.settle(zone.id, state.current),
            dns_origins=found.addresses if found is not None else None,
            health=health,
            settings=plan.PlanSettings(
                batch_size=settings.cloudflare.batch_size,
                max_mappings=settings.cloudflare.max_mappings_per_zone,
                max_delete_fraction=settings.sync.max_delete_fraction,
                allow_mass_delete=opts.allow_mass_delete,
                hold_deletions=_hold(found),
            ),
        )
        zplan = replace(zplan, skips=zplan.skips + _unresolved(found))
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
            coverage=_coverage(found, zplan, state.current, applied=False),
            origins=found,
            tiered_cache=state.tiered_cache,
        )
    try:
        out = push.apply(api, registry, zplan, stop=opts.stop)
    except Exception as exc:  # zone boundary: the zone is failed and recorded (style 16)
        log.exception("zone_push_crashed", zone=zone.id)
        return ZoneReport(
            zone_id=zone.id,
            zone_name=zone.label,
            plan=zplan,
            error=str(exc),
            error_reason="error",
            origins=found,
            tiered_cache=state.tiered_cache,
        )
    after = dict(state.current)
    for ip in out.deleted:
        after.pop(ip, None)
    after.update({u.mapping.ip: u.mapping for u in out.upserted})
    return ZoneReport(
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
        coverage=_coverage(found, zplan, after, failures=out.failures),
        origins=found,
        tiered_cache=state.tiered_cache,
    )


def _hold(found: ZoneOrigins | None) -> str:
    if found is None or found.complete:
        return ""
    return "part of the zone's origins could not be read this run; deletion deferred"


def _unresolved(found: ZoneOrigins | None) -> tuple[Skip, ...]:
    """Each dangling record as a skip naming the record and its target."""
    return tuple(
        Skip(subject=o.source, reason=SkipReason.UNRESOLVED_ORIGIN, detail=o.detail)
        for o in (found.unresolved if found is not None else ())
    )


def _coverage(
    found: ZoneOrigins | None,
    zplan: ZonePlan,
    after: dict[IPAddress, Mapping],
    *,
    failures: Iterable[ItemFailure] = (),
    applied: bool = True,
) -> tuple[OriginCoverage, ...]:
    if found is None:
        return ()
    return origins.coverage(found, zplan, after=after, failures=failures, applied=applied)


def _by_vendor(mappings: Iterable[Mapping]) -> tuple[tuple[str, int], ...]:
    counts = Counter(m.vendor.value for m in mappings)
    return tuple(sorted(counts.items()))
