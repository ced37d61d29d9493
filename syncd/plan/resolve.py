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
    for ip, address in sorted(first.items(), key=first_order):
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


def first_order(item: tuple[IPAddress, object]) -> tuple[int, int]:
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
