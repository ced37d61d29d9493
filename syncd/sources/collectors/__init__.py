"""Collectors: one module per vendor, the protocol in ``base``, the fan-out in ``runner``.

``collect()`` runs every configured collector once: the static entries here, and each cloud
vendor's collectors in a child process of their own (``process``), the vendors side by side as
they always ran, so this process never imports a cloud SDK: an SDK's memory, and a call hung
in it, end with its child. ``build()`` turns the ``collectors`` config section into collector
objects in this process (tests, tools).
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from syncd.config import CollectorsConfig, Settings
from syncd.model import Inventory, Vendor
from syncd.sources.collectors import process, runner
from syncd.sources.collectors.base import Collector, CollectorSettings
from syncd.sources.collectors.static import StaticCollector

_CLOUDS = (Vendor.AWS, Vendor.GCP, Vendor.AZURE, Vendor.OCI)


def collect(settings: Settings, stop: threading.Event | None = None) -> Inventory:
    """Run every configured collector once (``syncd discover``, and the first half of a run);
    ``stop`` (shutdown) ends the vendors' processes at once, their scopes failed."""
    s = settings.collectors
    found = CollectorSettings(
        scope_timeout=s.scope_timeout, request_timeout=s.request_timeout, max_attempts=s.attempts
    )
    gathered = runner.Gather()
    if s.static:
        with ThreadPoolExecutor(1, thread_name_prefix="syncd-scope") as pool:
            runner.stream([StaticCollector(s.static)], executor=pool, sink=gathered)
    levels = process.logger_levels()
    process.preload(v for v in _CLOUDS if process.names(s, v))
    jobs = [
        process.Job(vendor=v, config=s, settings=found, levels=levels)
        for v in _CLOUDS
        if process.names(s, v)
    ]
    with ThreadPoolExecutor(max(1, len(jobs)), thread_name_prefix="syncd-vendor") as pool:
        for part in pool.map(
            lambda job: process.collect(job, concurrency=s.concurrency, stop=stop), jobs
        ):
            gathered.addresses.extend(part.addresses)
            gathered.skips.extend(part.skips)
            gathered.scopes.extend(part.scopes)
            gathered.collectors.extend(part.collectors)
    return gathered.inventory()


def build(cfg: CollectorsConfig, *, settings: CollectorSettings) -> list[Collector]:
    """One collector per configured entry, static first, in config order."""
    collectors: list[Collector] = []
    if cfg.static:
        collectors.append(StaticCollector(cfg.static))
    for vendor in _CLOUDS:
        if process.names(cfg, vendor):
            collectors += process.vendor_collectors(cfg, vendor, settings=settings)
    return collectors
