"""Collectors: one module per vendor, the protocol in ``base``, the fan-out in ``runner``.

``collect()`` runs every configured collector once; ``build()`` turns the ``collectors`` config
section into collector objects. Vendor modules are imported only when configured, so a
deployment that scans one cloud does not load the others.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from syncd.collectors import runner
from syncd.collectors.base import Collector, CollectorSettings
from syncd.collectors.static import StaticCollector
from syncd.config import CollectorsConfig, Settings
from syncd.model import Inventory


def collect(settings: Settings) -> Inventory:
    """Run every configured collector once (``syncd discover``, and the first half of a run)."""
    s = settings.collectors
    found = build(
        s,
        settings=CollectorSettings(
            scope_timeout=s.scope_timeout,
            request_timeout=s.request_timeout,
            max_attempts=s.attempts,
        ),
    )
    with ThreadPoolExecutor(s.concurrency, thread_name_prefix="syncd-scope") as pool:
        return runner.run(found, executor=pool)


def build(cfg: CollectorsConfig, *, settings: CollectorSettings) -> list[Collector]:
    """One collector per configured entry, static first, in config order."""
    collectors: list[Collector] = []
    if cfg.static:
        collectors.append(StaticCollector(cfg.static))
    if cfg.aws:
        from syncd.collectors.aws import AwsCollector

        collectors += [AwsCollector(c, settings=settings) for c in cfg.aws]
    if cfg.gcp:
        from syncd.collectors.gcp import GcpCollector

        collectors += [GcpCollector(c, settings=settings) for c in cfg.gcp]
    if cfg.azure:
        from syncd.collectors.azure import AzureCollector

        collectors += [AzureCollector(c, settings=settings) for c in cfg.azure]
    if cfg.oci:
        from syncd.collectors.oci import OciCollector

        collectors += [OciCollector(c, settings=settings) for c in cfg.oci]
    return collectors
