"""What Cloudflare really fetched, per zone, kept in the registry like the zone's facts.

Once a run, before its zones are planned: each zone whose reading is due
(``cloudflare.observe.interval`` since the last; ``sync --verify`` and ``origins --observed``
read now) is read through the GraphQL Analytics API, the settings node first (again every
``SETTINGS_EVERY`` intervals, and whenever the zone could not answer) and the origin fetches of
the zones that can answer, ten to a query. A zone whose first reading this is gets its next one
at a point spread over the interval, so the readings of many zones never bunch.

Advisory: a reading that fails is reported on the zone and read again next run; nothing here
raises for Cloudflare's answers or fails a zone. The last reading with figures is kept, so that
under ``origins: dns`` what traffic proved stays an origin while a reading fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import structlog

from syncd.cloudflare.api import AnalyticsAPI
from syncd.config import ObserveConfig, ZoneConfig
from syncd.errors import StateError
from syncd.model import DatasetAccess, ObservationState, ObservedFacts, ZoneObservation
from syncd.registry import Registry
from syncd.registry.spread import phase

log = structlog.stdlib.get_logger(__name__)
SETTINGS_EVERY = 6  # observe.intervals between reads of a zone's settings node
MAX_GROUPS = 10_000  # groups asked for per zone (the dataset's usual maxPageSize)
_EDGE = 60.0  # seconds kept from notOlderThan: a query a moment late is not refused


@dataclass(frozen=True, slots=True, kw_only=True)
class TrafficDue:
    """When this run reads traffic."""

    now: float
    now_all: bool  # sync --verify, origins --observed: every zone, whatever is kept


def current(
    api: AnalyticsAPI,
    registry: Registry,
    zones: Sequence[ZoneConfig],
    cfg: ObserveConfig,
    due: TrafficDue,
    *,
    stop: Callable[[], str],
) -> dict[str, ZoneObservation]:
    """Each zone's observation this run: kept, or read now when due; {} when disabled.

    ``stop`` says why no further query may go (the run's budget is spent), or ``""``."""
    if not cfg.enabled:
        return {}
    kept = {z.id: registry.kept.observed(z.id) for z in zones}  # unreadable: None, read again
    out: dict[str, ZoneObservation] = {}
    reading: list[str] = []
    for zone in zones:
        k = kept[zone.id]
        if k is not None and k.latest is not None and not due.now_all and due.now < k.next_at:
            out[zone.id] = _with_kept(k.latest, k)
        else:
            reading.append(zone.id)
    if not reading:
        return out
    access = _access(api, kept, reading, cfg, due, stop)
    ready = [z for z in reading if access[z].state is ObservationState.OBSERVED]
    for z in reading:
        if z not in ready:
            out[z] = ZoneObservation(state=access[z].state, detail=access[z].detail)
    out.update(_fetches(api, ready, access, cfg, due.now, stop))
    for z in reading:
        out[z] = _remember(registry, z, kept[z], access[z], out[z], cfg, due.now)
    return out


def _access(  # noqa: PLR0917 (private: current()'s state, in order)
    api: AnalyticsAPI,
    kept: dict[str, ObservedFacts | None],
    reading: list[str],
    cfg: ObserveConfig,
    due: TrafficDue,
    stop: Callable[[], str],
) -> dict[str, DatasetAccess]:
    """Each zone's settings node: kept while fresh and the zone could answer, else read."""
    out: dict[str, DatasetAccess] = {}
    ask: list[str] = []
    for z in reading:
        k = kept[z]
        access = k.access if k is not None and not due.now_all else None
        fresh = k is not None and k.access_read_at + SETTINGS_EVERY * cfg.interval > due.now
        if access is not None and fresh and access.state is ObservationState.OBSERVED:
            out[z] = access
        else:
            ask.append(z)
    if ask:
        out.update(api.dataset_access(ask, stop=stop))
    return out


def _fetches(  # noqa: PLR0917 (private: current()'s state, in order)
    api: AnalyticsAPI,
    ready: list[str],
    access: dict[str, DatasetAccess],
    cfg: ObserveConfig,
    now: float,
    stop: Callable[[], str],
) -> dict[str, ZoneObservation]:
    """The origin fetches of the zones that can answer, one query per ten zones that share a
    window, fields and page size (usually all of them)."""
    groups: dict[tuple[float, tuple[str, ...], int], list[str]] = {}
    for z in ready:
        a = access[z]
        span = min(cfg.window, a.max_duration or cfg.window)
        if a.not_older_than:
            span = min(span, max(60.0, a.not_older_than - _EDGE))
        limit = min(a.max_page_size or MAX_GROUPS, MAX_GROUPS)
        groups.setdefault((span, a.fields, limit), []).append(z)
    out: dict[str, ZoneObservation] = {}
    for (span, fields, limit), zone_ids in groups.items():
        out.update(
            api.origin_fetches(
                zone_ids, since=now - span, until=now, fields=fields, limit=limit, stop=stop
            )
        )
    return out


def _remember(  # noqa: PLR0917 (private: one zone's reading and what was kept)
    registry: Registry,
    zone_id: str,
    kept: ObservedFacts | None,
    access: DatasetAccess,
    observation: ZoneObservation,
    cfg: ObserveConfig,
    now: float,
) -> ZoneObservation:
    """Keep what this run read; a failed reading keeps the last one and is read again next
    run. Returns the observation with the addresses traffic last proved (``kept``)."""
    before = kept or ObservedFacts()
    facts = before
    if access.state is not ObservationState.FAILED and access is not before.access:
        facts = replace(facts, access=access, access_read_at=now)
    observation = replace(observation, read_at=now)
    good = observation.state is ObservationState.OBSERVED
    if good and observation.truncated:
        observation = _filled(observation, before)
    if observation.state is not ObservationState.FAILED:
        first = before.latest is None
        facts = replace(
            facts,
            latest=observation,
            good=observation if good else facts.good,
            lost=facts.lost and not good,
            # The first reading's next one is spread over the interval (zones never bunch).
            next_at=now + cfg.interval * (phase(zone_id) if first else 1.0),
        )
    if facts != before:
        try:
            registry.kept.save_observed(zone_id, facts)
        except StateError as exc:
            log.warning("observation_not_saved", zone=zone_id, error=str(exc))
    return _with_kept(observation, facts)


def _with_kept(observation: ZoneObservation, facts: ObservedFacts) -> ZoneObservation:
    """A zone without figures this run keeps the addresses its last figures showed; when those
    could not be read (``lost``), what traffic proves is unknown (``uncertain``)."""
    if observation.state is ObservationState.OBSERVED:
        return observation
    if facts.lost:
        return replace(observation, uncertain=True)
    if facts.good is None:
        return observation
    return replace(observation, kept=tuple(sorted(facts.good.addresses, key=str)))


def _filled(observation: ZoneObservation, before: ObservedFacts) -> ZoneObservation:
    """A cut page (Cloudflare returned as many groups as asked for) lacks the least fetched
    addresses: those the last figures showed stay proven until a whole page says otherwise."""
    if before.lost:
        return replace(observation, uncertain=True)
    if before.good is None:
        return observation
    seen = {f.ip for f in observation.fetches}
    earlier = before.good.addresses - seen
    return replace(observation, kept=tuple(sorted(earlier, key=str)))
