"""Run-wide: the inventory resolved once a run, before any zone is planned. Pure.

    resolve()  normalize -> public? -> supported region? -> dedupe / conflicts

Each address becomes one ``Candidate`` mapping or a ``Skip`` with its reason; nothing here
raises for bad data. No I/O, no clock, no logging, no globals.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from syncd.model import (
    STATIC,
    Address,
    Inventory,
    IPAddress,
    RegionMapping,
    ScopeKey,
    Skip,
    SkipReason,
    Vendor,
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


# IPv6 addresses' offset in ``order_key``'s space: past every IPv4 address.
_V6 = 1 << 128


def order_key(ip: IPAddress) -> int:
    """``ip_order`` as one int: made and compared several times faster than the tuple (a
    Python ``ipaddress`` hash or property is a function call; an int's is not), 100,000 times
    a run."""
    return int(ip) | _V6 if isinstance(ip, ipaddress.IPv6Address) else int(ip)


def _segments() -> tuple[list[int], list[str]]:
    """``_SPECIAL`` flattened into disjoint segments of ``order_key``'s space (start, reason)
    for a binary search."""
    ranges = [
        (order_key(net.network_address), order_key(net.broadcast_address), reason)
        for net, reason in ((ipaddress.ip_network(n), r) for n, r in _SPECIAL)
    ]
    edges = sorted({0} | {lo for lo, _, _ in ranges} | {hi + 1 for _, hi, _ in ranges})
    reasons = [next((r for lo, hi, r in ranges if lo <= edge <= hi), "") for edge in edges]
    return edges, reasons


_EDGES, _REASONS = _segments()


def non_public_reason(ip: IPAddress) -> str:
    """Why ``ip`` is not publicly routable, or "" when it is."""
    return _non_public(order_key(ip))


def _non_public(key: int) -> str:
    """``non_public_reason`` of the address whose ``order_key`` is ``key``."""
    return _REASONS[bisect.bisect_right(_EDGES, key) - 1]


def ip_order(ip: IPAddress) -> tuple[int, int]:
    """Deterministic order: IPv4 before IPv6, then numerically."""
    return ip.version, int(ip)


# --- run-wide -------------------------------------------------------------------------------


class Candidate(NamedTuple):
    """One IP's desired mapping and every source that reported it.

    One tuple, holding the mapping's fields rather than a ``RegionMapping`` and its first
    source rather than a tuple of one: one is built per address, 100,000 a run, and a single
    tuple is several times cheaper to make (and for the garbage collector to walk) than a
    frozen dataclass and two tuples. A zone makes the ``RegionMapping`` where it writes one.
    """

    order: int  # order_key(ip): a zone sorts its share of the run by it
    vendor: Vendor
    region: str  # as Cloudflare lists it
    source: Address  # the first source in (collector, resource) order: its scope is the IP's
    others: tuple[Address, ...] = ()  # the other sources, when several reported the IP

    @property
    def mapping(self) -> RegionMapping:
        """The desired mapping, made anew on each read: read it where a mapping is written."""
        return RegionMapping(ip=self.source.ip, vendor=self.vendor, region=self.region)

    def maps_as(self, mapping: RegionMapping) -> bool:
        """Whether ``mapping`` equals this candidate's, compared without making one."""
        return (
            mapping.region == self.region
            and mapping.vendor == self.vendor
            and mapping.ip == self.source.ip
        )

    @property
    def sources(self) -> tuple[Address, ...]:
        return (self.source, *self.others)

    @property
    def scope_key(self) -> ScopeKey:
        return self.source.scope_key

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
    # The public addresses by their IP's order_key: an int, hashed and sorted in C where an IP
    # object's hash is Python code. Nearly every IP has one source: keep just that, and a list
    # only for the others. (This runs over every address of the estate; fewer objects per
    # address is less CPU, the garbage collector's included.)
    first: dict[int, Address] = {}
    more: dict[int, list[Address]] = {}
    for address in inventory.addresses:
        key = order_key(address.ip)
        if reason := _non_public(key):
            skips.append(_address_skip(address, SkipReason.NON_PUBLIC, reason))
            continue
        seen = first.setdefault(key, address)
        if seen is not address:
            more.setdefault(key, [seen]).append(address)

    candidates: dict[IPAddress, Candidate] = {}
    held: dict[IPAddress, SkipReason] = {}
    # Cloudflare's spelling of each (vendor, region) seen, None where it lists none: a handful
    # of regions for 100,000 addresses, matched once each.
    spelled: dict[tuple[Vendor, str], str | None] = {}
    for key in sorted(first):
        address = first[key]
        found = more.get(key) if more else None  # one lookup less per address: 100,000 a run
        merged = (
            _single(key, address, regions, spelled)
            if found is None
            else _merge(key, found, regions, spelled)
        )
        if isinstance(merged, Skip):
            skips.append(merged)
            held[address.ip] = merged.reason
        else:
            candidates[address.ip] = merged
    return Resolved(candidates=candidates, skips=tuple(skips), held=held)


def _single(
    key: int,
    address: Address,
    regions: RegionMatcher,
    spelled: dict[tuple[Vendor, str], str | None],
) -> Candidate | Skip:
    """The candidate of an IP one source reported (nearly every IP), or why it has none."""
    region = _spelling(address.vendor, address.region, regions, spelled)
    if region is None:
        return _unsupported(address, address.vendor, address.region)
    return Candidate(key, address.vendor, region, address)


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


def _unsupported(source: Address, vendor: Vendor, region: str) -> Skip:
    detail = f"Cloudflare lists no region {region!r} for {vendor.value}"
    return _address_skip(source, SkipReason.UNSUPPORTED_REGION, detail)


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


def _merge(
    key: int,
    found: list[Address],
    regions: RegionMatcher,
    spelled: dict[tuple[Vendor, str], str | None],
) -> Candidate | Skip:
    """One candidate per IP several sources reported; a static entry beats discovery;
    disagreement is a conflict, a region Cloudflare does not list unsupported."""
    # Each source's (vendor, region), the region as Cloudflare spells it when it lists it.
    said = [
        (a, a.vendor, _spelling(a.vendor, a.region, regions, spelled) or a.region) for a in found
    ]
    static = [s for s in said if s[0].collector == STATIC]
    pool = static or said
    mappings = {(vendor, region) for _, vendor, region in pool}
    sources = sorted(found, key=lambda a: (a.collector, a.resource))
    if len(mappings) == 1:
        ((vendor, region),) = mappings
        if _spelling(vendor, region, regions, spelled) is None:
            return _unsupported(sources[0], vendor, region)
        return Candidate(key, vendor, region, sources[0], tuple(sources[1:]))
    seen = ", ".join(sorted(f"{v.value}/{r} from {a.collector} {a.resource}" for a, v, r in pool))
    ip = found[0].ip
    return Skip(
        subject=canonical(ip),
        reason=SkipReason.CONFLICT,
        detail=f"sources disagree: {seen}",
        collector=sources[0].collector,
        ip=ip,
    )
