"""The planner: from an inventory and what Cloudflare holds to one ``ZonePlan`` per zone.

Pure: no I/O, no clock, no logging, no globals. Two steps:

    resolve()  run-wide   normalize -> public? -> supported region? -> dedupe / conflicts
    build()    per zone   select (collectors, tags, DNS origins) -> diff -> ownership ->
                          deletions (policy, protection, mass-delete guard) -> capacity

Reasons are returned as ``Skip`` records; nothing here raises for bad data.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from syncd.config import Settings, ZoneConfig
from syncd.model import (
    STATIC,
    Address,
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
    Vendor,
    ZonePlan,
    canonical,
)

# Where an address is not publicly routable, as (network, reason) in priority order; the IANA
# documentation ranges come first and are accepted ("") so that examples and tests can use them.
# The rest is RFC 6890's special-purpose registry as Python's ipaddress classifies it (a
# property test keeps the two equal), checked by integer range: 100,000 addresses a run.
_SPECIAL: tuple[tuple[str, str], ...] = (
    *((n, "") for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")),
    ("::ffff:0:0/96", "IPv4-mapped IPv6 address (map the IPv4 address instead)"),
    ("0.0.0.0/32", "unspecified"),
    ("::/128", "unspecified"),
    ("127.0.0.0/8", "loopback"),
    ("::1/128", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("fe80::/10", "link-local"),
    ("224.0.0.0/4", "multicast"),
    ("ff00::/8", "multicast"),
    ("100.64.0.0/10", "shared address space (100.64.0.0/10)"),
    ("240.0.0.0/4", "reserved"),
    *(
        (n, "reserved")
        for n in (
            "::/8",
            "100::/8",
            "200::/7",
            "400::/6",
            "800::/5",
            "1000::/4",
            "4000::/3",
            "6000::/3",
            "8000::/3",
            "a000::/3",
            "c000::/3",
            "e000::/4",
            "f000::/5",
            "f800::/6",
            "fe00::/9",
        )
    ),
    *(
        (n, "private")
        for n in (
            "0.0.0.0/8",
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.0.0.0/29",
            "192.0.0.170/31",
            "192.168.0.0/16",
            "198.18.0.0/15",
            "255.255.255.255/32",
            "100::/64",
            "2001::/23",
            "2001:2::/48",
            "2001:10::/28",
            "fc00::/7",
        )
    ),
)


def _segments(version: int) -> tuple[list[int], list[str]]:
    """``_SPECIAL`` flattened into disjoint segments (start, reason) for a binary search."""
    ranges = [
        (int(net.network_address), int(net.broadcast_address), reason)
        for net, reason in ((ipaddress.ip_network(n), r) for n, r in _SPECIAL)
        if net.version == version
    ]
    edges = sorted({0} | {lo for lo, _, _ in ranges} | {hi + 1 for _, hi, _ in ranges})
    reasons = [next((r for lo, hi, r in ranges if lo <= edge <= hi), "") for edge in edges]
    return edges, reasons


_SEGMENTS = {4: _segments(4), 6: _segments(6)}


def non_public_reason(ip: IPAddress) -> str:
    """Why ``ip`` is not publicly routable, or "" when it is."""
    edges, reasons = _SEGMENTS[ip.version]
    return reasons[bisect.bisect_right(edges, int(ip)) - 1]


def ip_order(ip: IPAddress) -> tuple[int, int]:
    """Deterministic order: IPv4 before IPv6, then numerically."""
    return ip.version, int(ip)


# --- run-wide -------------------------------------------------------------------------------


class Candidate(NamedTuple):
    """One IP's desired mapping and every source that reported it.

    A NamedTuple rather than a frozen dataclass: one is built per address, 100,000 a run, and
    a tuple is several times cheaper to make.
    """

    mapping: RegionMapping
    sources: tuple[Address, ...]

    @property
    def scope_key(self) -> ScopeKey:
        return self.sources[0].scope_key

    @property
    def collectors(self) -> frozenset[str]:
        return frozenset(a.collector for a in self.sources)

    @property
    def static(self) -> bool:
        return any(a.collector == STATIC for a in self.sources)

    def has_tags(self, wanted: Mapping[str, str]) -> bool:
        return any(wanted.items() <= a.tag_map().items() for a in self.sources)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resolved:
    """Deduplicated, validated desired mappings for the whole run, and what was skipped."""

    candidates: Mapping[IPAddress, Candidate]
    skips: tuple[Skip, ...]
    # Public addresses discovered this run that cannot be mapped (a conflict, a region
    # Cloudflare does not list): they still exist, so their mappings are never deleted.
    held: Mapping[IPAddress, SkipReason]


class RegionMatcher:
    """Maps a collector's region name onto the name Cloudflare lists for that vendor."""

    def __init__(self, supported: Mapping[Vendor, Collection[str]]) -> None:
        self._exact = {v: frozenset(names) for v, names in supported.items()}
        self._loose = {v: {_loose(n): n for n in names} for v, names in supported.items()}

    def match(self, vendor: Vendor, region: str) -> str | None:
        if region in self._exact.get(vendor, ()):
            return region
        return self._loose.get(vendor, {}).get(_loose(region))


def _loose(region: str) -> str:
    return region.lower().replace(" ", "").replace("_", "-")


def resolve(inventory: Inventory, regions: RegionMatcher) -> Resolved:
    """Normalize, merge sources per IP, and drop what cannot be mapped, with reasons."""
    skips: list[Skip] = list(inventory.skips)
    # Nearly every IP has one source: keep just that, and a list only for the others. (This
    # runs over every address of the estate; fewer objects per address is less CPU, the
    # garbage collector's included.)
    first: dict[IPAddress, Address] = {}
    more: dict[IPAddress, list[Address]] = {}
    for address in inventory.addresses:
        if reason := non_public_reason(address.ip):
            skips.append(_address_skip(address, SkipReason.NON_PUBLIC, reason))
            continue
        seen = first.setdefault(address.ip, address)
        if seen is not address:
            more.setdefault(address.ip, [seen]).append(address)

    candidates: dict[IPAddress, Candidate] = {}
    held: dict[IPAddress, SkipReason] = {}
    # Cloudflare's spelling of each (vendor, region) seen, None where it lists none: a handful
    # of regions for 100,000 addresses, matched once each.
    spelled: dict[tuple[Vendor, str], str | None] = {}
    for ip, address in sorted(first.items(), key=_first_order):
        found = more.get(ip) if more else None  # one hash less per address: 100,000 a run
        merged = (
            Candidate(mapping=_mapping(address, regions, spelled), sources=(address,))
            if found is None
            else _merge([(_mapping(a, regions, spelled), a) for a in found])
        )
        if isinstance(merged, Skip):
            skips.append(merged)
            held[ip] = SkipReason.CONFLICT
        elif _spelling(merged.mapping.vendor, merged.mapping.region, regions, spelled) is None:
            m = merged.mapping
            detail = f"Cloudflare lists no region {m.region!r} for {m.vendor.value}"
            skips.append(_address_skip(merged.sources[0], SkipReason.UNSUPPORTED_REGION, detail))
            held[ip] = SkipReason.UNSUPPORTED_REGION
        else:
            candidates[ip] = merged
    return Resolved(candidates=candidates, skips=tuple(skips), held=held)


def _first_order(item: tuple[IPAddress, object]) -> tuple[int, int]:
    ip = item[0]
    return ip.version, int(ip)  # ip_order's, inline: it runs for every address


def _mapping(
    address: Address, regions: RegionMatcher, spelled: dict[tuple[Vendor, str], str | None]
) -> RegionMapping:
    """The address's mapping, its region spelled as Cloudflare lists it when it does."""
    region = _spelling(address.vendor, address.region, regions, spelled) or address.region
    return RegionMapping(ip=address.ip, vendor=address.vendor, region=region)


def _spelling(
    vendor: Vendor,
    region: str,
    regions: RegionMatcher,
    spelled: dict[tuple[Vendor, str], str | None],
) -> str | None:
    """``regions.match``, remembered in ``spelled`` for the rest of the run's addresses."""
    key = (vendor, region)
    try:
        return spelled[key]
    except KeyError:
        found = spelled[key] = regions.match(vendor, region)
        return found


def _address_skip(address: Address, reason: SkipReason, detail: str) -> Skip:
    return Skip(
        subject=canonical(address.ip),
        reason=reason,
        detail=f"{detail}; from {address.collector} {address.resource}",
        vendor=address.vendor.value,
        region=address.region,
        collector=address.collector,
        ip=address.ip,
    )


def _merge(found: list[tuple[RegionMapping, Address]]) -> Candidate | Skip:
    """One candidate per IP; a static entry beats discovery; disagreement is a conflict."""
    if len(found) == 1:  # the common case
        return Candidate(mapping=found[0][0], sources=(found[0][1],))
    static = [(m, a) for m, a in found if a.collector == STATIC]
    pool = static or found
    mappings = {m for m, _ in pool}
    sources = tuple(a for _, a in sorted(found, key=lambda f: (f[1].collector, f[1].resource)))
    if len(mappings) == 1:
        return Candidate(mapping=next(iter(mappings)), sources=sources)
    seen = ", ".join(
        sorted(f"{m.vendor.value}/{m.region} from {a.collector} {a.resource}" for m, a in pool)
    )
    return Skip(
        subject=canonical(found[0][0].ip),
        reason=SkipReason.CONFLICT,
        detail=f"sources disagree: {seen}",
        collector=sources[0].collector,
        ip=found[0][0].ip,
    )


# --- per zone -------------------------------------------------------------------------------


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
            key=_first_order,
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
        item = Upsert(mapping=cand.mapping, previous=now, scope_key=cand.scope_key)
        if now == cand.mapping:
            unchanged.append(item)
            mine = owned.get(ip)
            # Adopt on request; re-record an owned one whose scope moved (a renamed collector,
            # another account), so deletion protection follows the scope that reports it now.
            if (mine is None and zone.adopt) or (mine and mine.scope_key != cand.scope_key):
                adopted.append(item)
        elif now is None or ip in owned:
            upserts.append(item)
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
    both = owned.keys() & current.keys()
    for ip in sorted((ip for ip in both if ip not in desired), key=ip_order):
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
