"""Per zone: one ``ZonePlan`` from the resolved inventory and what Cloudflare holds. Pure.

    build()  select (collectors, tags, DNS origins) -> diff -> ownership ->
             deletions (policy, protection, mass-delete guard) -> capacity

Reasons are returned as ``Skip`` records; nothing here raises for bad data. No I/O, no clock,
no logging, no globals.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from syncd.config import Settings, ZoneConfig
from syncd.model import (
    Inventory,
    IPAddress,
    Owned,
    Policy,
    RegionMapping,
    ScopeKey,
    Skip,
    SkipReason,
    UnknownMapping,
    Upsert,
    ZonePlan,
    canonical,
)
from syncd.plan.resolve import Candidate, Resolved, ip_order


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanSettings:
    batch_size: int = 100
    max_mappings: int = 3500
    max_delete_fraction: float = 0.2
    allow_mass_delete: bool = False
    # octoDNS's rule: the delete ratio is judged only on zones with at least this many owned.
    guard_min_owned: int = 10
    # Why no deletion may happen in this zone this run (part of its origin set is unknown).
    hold_deletions: str = ""

    @classmethod
    def of(cls, settings: Settings, *, allow_mass_delete: bool = False) -> PlanSettings:
        return cls(
            batch_size=settings.cloudflare.batch_size,
            max_mappings=settings.cloudflare.max_mappings_per_zone,
            max_delete_fraction=settings.sync.max_delete_fraction,
            allow_mass_delete=allow_mass_delete,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Health:
    """What the planner must not trust this run: failed scopes and unlisted collectors."""

    failed_scopes: frozenset[ScopeKey] = frozenset()
    unlisted_collectors: frozenset[str] = frozenset()

    @classmethod
    def of(cls, inventory: Inventory) -> Health:
        return cls(
            failed_scopes=inventory.failed_scope_keys(),
            unlisted_collectors=inventory.unlisted_collectors(),
        )

    def trusted(self, scope_key: ScopeKey) -> bool:
        return (
            scope_key not in self.failed_scopes
            and scope_key.collector not in self.unlisted_collectors
        )


def build(
    zone: ZoneConfig,
    resolved: Resolved,
    *,
    current: Mapping[IPAddress, RegionMapping],
    owned: Mapping[IPAddress, Owned],
    dns_origins: frozenset[IPAddress] | None,
    health: Health,
    settings: PlanSettings,
    unknown: Mapping[IPAddress, UnknownMapping] | None = None,
    fetched: Mapping[IPAddress, int] | None = None,
) -> ZonePlan:
    """Plan one zone. ``dns_origins`` is None for ``origins: all`` zones. ``unknown``: mappings
    of vendors syncd does not know, never written over or deleted, counted in the zone's room.
    ``fetched``: origin fetches per address (cloudflare.observe): under the zone's maximum the
    most fetched are written first."""
    unknown = unknown or {}
    desired, skips, ignored = _select(zone, resolved, dns_origins)
    wanted = {ip: c for ip, c in desired.items() if ip not in unknown} if unknown else desired
    upserts, unchanged, adopted, foreign = _diff(zone, wanted, current, owned)
    skips += foreign
    skips += [_unknown(u) for u in sorted(unknown.values(), key=lambda u: ip_order(u.ip))]
    deletes, protected, guard = _deletions(
        zone,
        desired=desired,
        current=current,
        owned=owned,
        resolved=resolved,
        health=health,
        settings=settings,
    )
    skips += protected
    kept = len(current) + len(unknown) - len(deletes)
    upserts, over = _fit(upserts, kept, settings.max_mappings, fetched or {})
    skips += over
    return ZonePlan(
        zone_id=zone.id,
        zone_name=zone.label,
        upserts=tuple(upserts),
        deletes=tuple(deletes),
        unchanged=tuple(unchanged),
        adopted=tuple(adopted),
        skips=tuple(skips),
        ignored=ignored,
        guard=guard,
        batch_size=settings.batch_size,
    )


def _select(
    zone: ZoneConfig, resolved: Resolved, dns_origins: frozenset[IPAddress] | None
) -> tuple[dict[IPAddress, Candidate], list[Skip], int]:
    """The zone's share of the run: its collectors, its tags, its DNS origins."""
    wanted = set(zone.collectors) if zone.collectors is not None else None
    desired: dict[IPAddress, Candidate] = {}
    skips: list[Skip] = []
    elsewhere: set[IPAddress] = set()
    candidates = resolved.candidates
    chosen: Collection[tuple[IPAddress, Candidate]] = candidates.items()
    if dns_origins is not None:
        # The zone's origins, looked up, rather than the whole run's candidates scanned: a few
        # thousand lookups a zone instead of every address of the estate.
        chosen = sorted(
            ((ip, c) for ip in dns_origins if (c := candidates.get(ip)) is not None),
            key=_in_order,
        )
    for ip, cand in chosen:
        if wanted is not None and not cand.collectors & wanted:
            elsewhere.add(ip)
            continue
        if zone.match_tags and not cand.static and not cand.has_tags(zone.match_tags):
            skips.append(_skip(cand.mapping, SkipReason.TAGS_MISMATCH, "tags do not match"))
            continue
        desired[ip] = cand
    ignored = 0
    if dns_origins is not None:
        # The run's candidates this zone's collectors found that its DNS does not point at.
        usable = (
            len(candidates)
            if wanted is None
            else sum(1 for c in candidates.values() if c.collectors & wanted)
        )
        ignored = usable - (len(chosen) - len(elsewhere))
    for skip in resolved.skips:
        if wanted is not None and skip.collector and skip.collector not in wanted:
            continue
        if dns_origins is not None and skip.ip not in dns_origins:
            continue
        skips.append(skip)
    if dns_origins is not None and len(desired) < len(dns_origins):  # else every one desired
        reported = {s.ip for s in skips}
        for ip in sorted(dns_origins - desired.keys() - reported, key=ip_order):
            detail = (
                "found only by collectors this zone does not use (cloudflare.zones[].collectors)"
                if ip in elsewhere
                else "the zone's DNS points here but no collector found this address"
            )
            skips.append(
                Skip(
                    subject=canonical(ip),
                    reason=SkipReason.UNDISCOVERED_ORIGIN,
                    detail=detail,
                    ip=ip,
                )
            )
    return desired, skips, ignored


def _in_order(item: tuple[IPAddress, Candidate]) -> int:
    return item[1].order


def _diff(
    zone: ZoneConfig,
    desired: Mapping[IPAddress, Candidate],
    current: Mapping[IPAddress, RegionMapping],
    owned: Mapping[IPAddress, Owned],
) -> tuple[list[Upsert], list[Upsert], list[Upsert], list[Skip]]:
    upserts: list[Upsert] = []
    unchanged: list[Upsert] = []
    adopted: list[Upsert] = []
    foreign: list[Skip] = []
    for ip, cand in desired.items():
        now = current.get(ip)
        if now is not None and cand.maps_as(now):
            item = Upsert(mapping=now, previous=now, scope_key=cand.scope_key)
            unchanged.append(item)
            mine = owned.get(ip)
            # Adopt on request; re-record an owned one whose scope moved (a renamed collector,
            # another account), so deletion protection follows the scope that reports it now.
            if (mine is None and zone.adopt) or (mine and mine.scope_key != cand.scope_key):
                adopted.append(item)
        elif now is None or ip in owned:
            upserts.append(Upsert(mapping=cand.mapping, previous=now, scope_key=cand.scope_key))
        else:
            foreign.append(
                _skip(
                    cand.mapping,
                    SkipReason.FOREIGN_MAPPING,
                    f"Cloudflare holds {now.vendor.value}/{now.region}, made outside syncd; "
                    "left alone (syncd only changes mappings it owns)",
                )
            )
    return upserts, unchanged, adopted, foreign


def _deletions(
    zone: ZoneConfig,
    *,
    desired: Mapping[IPAddress, Candidate],
    current: Mapping[IPAddress, RegionMapping],
    owned: Mapping[IPAddress, Owned],
    resolved: Resolved,
    health: Health,
    settings: PlanSettings,
) -> tuple[list[RegionMapping], list[Skip], str]:
    if zone.policy is not Policy.SYNC:
        return [], [], ""
    deletes: list[RegionMapping] = []
    protected: list[Skip] = []
    # Sets made from the dicts take their stored hashes: an IP's hash is Python code, and
    # these are every owned mapping of the zone.
    both = set(owned) & set(current)
    for ip in sorted(both.difference(desired), key=ip_order):
        mapping = current[ip]
        if not health.trusted(owned[ip].scope_key):
            detail = f"scope {owned[ip].scope_key} is incomplete this run; deletion deferred"
            protected.append(_skip(mapping, SkipReason.SCOPE_INCOMPLETE, detail))
        elif ip in resolved.held:
            detail = "address still discovered but not mappable this run; deletion deferred"
            protected.append(_skip(mapping, resolved.held[ip], detail))
        else:
            deletes.append(mapping)
    if settings.hold_deletions:
        reason = SkipReason.ORIGINS_INCOMPLETE
        protected += [_skip(m, reason, settings.hold_deletions) for m in deletes]
        return [], protected, ""
    owned_here = len(both)
    ratio = len(deletes) / owned_here if owned_here else 0.0
    if (
        deletes
        and not settings.allow_mass_delete
        and owned_here >= settings.guard_min_owned
        and ratio > settings.max_delete_fraction
    ):
        guard = (
            f"would delete {len(deletes)} of {owned_here} owned mappings ({ratio:.0%}), more "
            f"than sync.max_delete_fraction {settings.max_delete_fraction:.0%}; "
            "run with --allow-mass-delete to apply"
        )
        protected += [_skip(m, SkipReason.MASS_DELETE_GUARD, guard) for m in deletes]
        return [], protected, guard
    return deletes, protected, ""


def _fit(
    upserts: list[Upsert], kept: int, limit: int, fetched: Mapping[IPAddress, int]
) -> tuple[list[Upsert], list[Skip]]:
    """Keep the zone within its maximum: updates always fit; creates fill the room left, the
    most fetched first (then IPv4 before IPv6, numeric order)."""
    ordered = sorted(upserts, key=lambda u: (-fetched.get(u.mapping.ip, 0), ip_order(u.mapping.ip)))
    room = max(0, limit - kept)
    fitted: list[Upsert] = []
    over: list[Skip] = []
    for item in ordered:
        if item.previous is not None:
            fitted.append(item)
        elif room > 0:
            fitted.append(item)
            room -= 1
        else:
            detail = f"the zone would exceed cloudflare.max_mappings_per_zone ({limit})"
            over.append(_skip(item.mapping, SkipReason.OVER_CAPACITY, detail))
    return fitted, over


def _skip(mapping: RegionMapping, reason: SkipReason, detail: str) -> Skip:
    return Skip(
        subject=mapping.ip_text,
        reason=reason,
        detail=detail,
        vendor=mapping.vendor.value,
        region=mapping.region,
        ip=mapping.ip,
    )


def _unknown(held: UnknownMapping) -> Skip:
    return Skip(
        subject=canonical(held.ip),
        reason=SkipReason.UNKNOWN_VENDOR,
        detail=(
            f"Cloudflare holds vendor {held.vendor!r} (region {held.region!r}), which this syncd "
            "does not know; left alone and counted in the zone's maximum"
        ),
        ip=held.ip,
        vendor=held.vendor,
        region=held.region,
    )


def index(mappings: Iterable[RegionMapping]) -> dict[IPAddress, RegionMapping]:
    """Cloudflare's list as a lookup by IP."""
    return {m.ip: m for m in mappings}
