"""A zone's facts, cached: what a run reads about a zone besides its DNS records and mappings.

The load balancers and pools (with the zone's details when ``GET /zones`` did not name its
account) decide which origins the zone has, so they are read again whenever the zone is
verified (listed in full, ``cloudflare.verify_interval``), and at the latest after two
intervals (a zone whose verification keeps waiting). The Tiered Cache settings only inform:
syncd never changes them and they change nothing syncd writes, so they are read again every
``TIERED_EVERY`` intervals, or next run when the read failed by chance (not a missing
permission). ``syncd sync --verify`` reads everything. A cached row that cannot be read is read
again from Cloudflare.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from syncd.cloudflare.api import CloudflareAPI
from syncd.config import ZoneConfig
from syncd.errors import StateError
from syncd.model import ZoneFacts
from syncd.registry import Registry

log = structlog.stdlib.get_logger(__name__)
TIERED_EVERY = 6  # verify_intervals between reads of the Tiered Cache settings (6 h by default)


@dataclass(frozen=True, slots=True, kw_only=True)
class FactsDue:
    """When this run reads a zone."""

    now: float
    interval: float  # cloudflare.verify_interval; 0: everything every run
    verifying: bool  # the zone is listed in full this run (verification)
    everything: bool  # sync --verify


def current(
    api: CloudflareAPI, registry: Registry, zone: ZoneConfig, due: FactsDue, *, account: str = ""
) -> ZoneFacts:
    """The zone's facts: each part as the registry kept it unless due, then from Cloudflare.

    A Tiered Cache read that failed by chance (``transient``) is kept as never read, so the
    next run reads it again; the other part is kept all the same."""
    dns = zone.origins == "dns"
    kept = registry.kept.facts(zone.id) if due.interval > 0 and not due.everything else None
    if kept is not None and (kept.sources is not None) != dns:
        kept = None  # the zone's origins setting changed
    now, every = due.now, due.interval
    tiered, tiered_at = (kept.tiered_cache, kept.tiered_read_at) if kept else (None, 0.0)
    if tiered is None or tiered_at + TIERED_EVERY * every <= now:
        tiered = api.tiered_cache(zone.id, label=zone.label)
        tiered_at = 0.0 if tiered.transient else now
    sources, read_at = (kept.sources, kept.read_at) if kept else (None, now)
    if dns and (kept is None or due.verifying or read_at + 2 * every <= now):
        sources = api.origin_sources(zone.id, name=zone.name, label=zone.label, account=account)
        read_at = now
    facts = ZoneFacts(
        tiered_cache=tiered, sources=sources, read_at=read_at, tiered_read_at=tiered_at
    )
    if facts != kept:
        try:
            registry.kept.save_facts(zone.id, facts)
        except StateError as exc:
            log.warning("facts_not_saved", zone=zone.id, error=str(exc))
    return facts
