"""``run_once``: collect -> plan -> push -> record -> RunReport. The unit of work.

Both ``syncd sync`` and every scheduled run of ``syncd run`` call it. It connects to Cloudflare,
runs the collectors while Cloudflare is read (supported regions, each zone's mappings and
origins), resolves the inventory once, and fans the zones out: each zone is reconciled on its
own (``zone.py``), so one zone's failure never stops another. It returns the report and raises
nothing but programming errors: logs, metrics and the CLI summary are made from the report
elsewhere.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from syncd import collectors, plan, zone
from syncd.cloudflare import api
from syncd.collectors import runner
from syncd.collectors.base import CollectorSettings
from syncd.config import Settings
from syncd.errors import CloudflareError, StateError
from syncd.model import Inventory, RunReport, Vendor
from syncd.state import OwnershipStore

_ZONE_WORKERS = 32  # zones are pushed concurrently; the shared rate limit paces them


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Per-invocation choices that are not configuration."""

    dry_run: bool = False
    allow_mass_delete: bool = False
    # The benchmark may pass an in-process HTTP transport; production uses the network.
    http_transport: api.HTTPTransport | None = None
    # Set on shutdown: the batch in flight finishes, no further batch is sent.
    stop: threading.Event | None = None
    # The daemon passes one for its whole life: Cloudflare's limit spans runs, not just one.
    limiter: api.RateLimiter | None = None


def run_once(
    settings: Settings,
    *,
    options: Options | None = None,
    clock: Callable[[], float] = time.time,
) -> RunReport:
    """One complete run; see the module docstring."""
    opts = options or Options()
    started = clock()
    zones = settings.cloudflare.zones

    def finished(inventory: Inventory) -> RunReport:
        return RunReport(
            started=started, finished=clock(), inventory=inventory, calls=cloudflare.calls()
        )

    with (
        _connect(settings, opts) as cloudflare,
        ThreadPoolExecutor(1, thread_name_prefix="syncd-collect") as coordinator,
        ThreadPoolExecutor(min(_ZONE_WORKERS, len(zones))) as pool,
    ):
        inventory_future = coordinator.submit(collect, settings)
        try:
            regions = api.supported_regions(cloudflare, (z.id for z in zones))
        except CloudflareError as exc:
            return replace(finished(inventory_future.result()), error=f"Cloudflare: {exc}")
        held = {z.id: pool.submit(zone.read, cloudflare, z) for z in zones}
        inventory = inventory_future.result()
        try:
            store = OwnershipStore(settings.state.path, read_only=opts.dry_run)
        except StateError as exc:
            return replace(finished(inventory), error=str(exc))
        with store:
            run = zone.Run(
                api=cloudflare,
                store=store,
                resolved=plan.resolve(inventory, plan.RegionMatcher(regions)),
                health=plan.Health.of(inventory),
                settings=_plan_settings(settings, opts),
                dry_run=opts.dry_run,
                stop=opts.stop,
            )
            work = [pool.submit(zone.reconcile, z, held[z.id], run) for z in zones]
            reports = tuple(f.result() for f in work)
    return replace(
        finished(inventory),
        zones=reports,
        dry_run=opts.dry_run,
        api_generation=",".join(sorted({z.generation for z in reports if z.generation})),
    )


def collect(settings: Settings) -> Inventory:
    """Run every configured collector once (``syncd discover``, and the first half of a run)."""
    s = settings.sync
    found = collectors.build(
        settings.collectors,
        settings=CollectorSettings(
            scope_timeout=s.scope_timeout,
            request_timeout=s.timeout,
            max_attempts=s.cloud_attempts,
        ),
    )
    with ThreadPoolExecutor(s.concurrency, thread_name_prefix="syncd-scope") as pool:
        return runner.run(found, executor=pool)


def supported_regions(settings: Settings) -> dict[Vendor, frozenset[str]]:
    """Cloudflare's supported vendors and regions (``syncd regions``)."""
    with _connect(settings, Options()) as cloudflare:
        return api.supported_regions(cloudflare, (z.id for z in settings.cloudflare.zones))


def rate_limiter(settings: Settings) -> api.RateLimiter:
    """The client-side limiter for ``cloudflare.rate_limit``; share one across runs."""
    return api.rate_limiter(settings.cloudflare)


def _connect(settings: Settings, opts: Options) -> api.Cloudflare:
    s = settings.sync
    return api.connect(
        settings.cloudflare,
        timeout=s.timeout,
        retries=s.retries,
        backoff=s.backoff,
        limiter=opts.limiter,
        http_transport=opts.http_transport,
    )


def _plan_settings(settings: Settings, opts: Options) -> plan.PlanSettings:
    return plan.PlanSettings(
        batch_size=settings.sync.batch_size,
        max_mappings=settings.cloudflare.max_mappings_per_zone,
        max_delete_fraction=settings.sync.max_delete_fraction,
        allow_mass_delete=opts.allow_mass_delete,
    )
