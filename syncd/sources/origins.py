"""A zone's origins as Cloudflare reaches them, and how well they are covered. Pure.

``trace()`` follows what Cloudflare told us (records, load balancers, pools) as far as the zone
itself can say: A/AAAA contents and pool IPs are addresses; a CNAME target inside the zone is
followed through the zone's own records (or its load balancer of that name); a target outside
the zone and a pool hostname are left to DNS (``Traced.names``). ``finish()`` joins the
resolver's answers. ``coverage()`` says, after the run, which origin is mapped and why not.

No I/O, no clock, no logging; nothing here raises for bad data: each problem is an ``Origin``
naming the record and the name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field

from syncd.model import (
    CoverageReason,
    CoverageState,
    DnsRecord,
    IPAddress,
    ItemFailure,
    LoadBalancer,
    NameResolution,
    Origin,
    OriginCoverage,
    OriginProblem,
    OriginSources,
    RegionMapping,
    ResolutionStatus,
    SkipReason,
    ZoneOrigins,
    ZonePlan,
    canonical,
    dns_name,
    parse_ip,
)
from syncd.plan import non_public_reason

MAX_LINKS = 8  # CNAME links from a record to an address (issue 16)
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9])?)*$"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Pending:
    """A path that ends in a name only DNS can answer."""

    source: str
    chain: tuple[str, ...]  # from the record to the name to resolve (its last element)


@dataclass(slots=True)
class Traced:
    """What the zone's own data says; ``names`` are what DNS must answer next."""

    origins: list[Origin] = field(default_factory=list)
    pending: list[_Pending] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    complete: bool = True

    @property
    def names(self) -> frozenset[str]:
        return frozenset(p.chain[-1] for p in self.pending)


def trace(data: OriginSources, *, proxied_only: bool) -> Traced:
    """Every origin path of the zone as far as its own records go."""
    zone = dns_name(data.zone_name)
    by_name: dict[str, list[DnsRecord]] = {}
    for r in data.records:
        by_name.setdefault(dns_name(r.name), []).append(r)
    enabled = [lb for lb in data.load_balancers or () if lb.enabled]
    balancers = {dns_name(lb.name): lb for lb in enabled if lb.name}
    complete = data.load_balancers is not None and not data.unreadable_pools
    out = Traced(warnings=list(data.warnings), complete=complete)
    walker = _Walker(zone, by_name, balancers, data, out)
    for record in data.records:
        name = dns_name(record.name)
        if record.malformed:  # proxied or not, it may be an origin: it cannot be ruled out
            source = f"{record.type} {name}"
            walker.malformed(source, (name,), OriginProblem.MALFORMED_RECORD, record.malformed)
            continue
        if (proxied_only and not record.proxied) or name in balancers:
            continue  # a load balancer of the same name takes precedence over the record
        source = f"{record.type} {name}"
        if record.type in ("A", "AAAA"):
            walker.address(source, (name,), record.content)
        else:
            walker.follow(source, (name,), dns_name(record.content))
    for lb in enabled:
        if lb.malformed:  # its pools are followed all the same: they may get traffic
            label = dns_name(lb.name) if lb.name else lb.id
            kind = OriginProblem.MALFORMED_LOAD_BALANCER
            walker.malformed(f"load balancer {label}", (label,), kind, lb.malformed)
            if not lb.name:
                walker.balancer(f"load balancer {lb.id}", (lb.id,), lb)
                continue
        if lb.name and (not proxied_only or lb.proxied):
            walker.balancer(f"load balancer {dns_name(lb.name)}", (dns_name(lb.name),), lb)
    return out


class _Walker:
    def __init__(
        self,
        zone: str,
        records: dict[str, list[DnsRecord]],
        balancers: dict[str, LoadBalancer],
        data: OriginSources,
        out: Traced,
    ) -> None:
        self._zone = zone
        self._records = records
        self._balancers = balancers
        self._pools = data.pools
        self._unreadable = data.unreadable_pools
        self._out = out

    def _inside(self, name: str) -> bool:
        return name == self._zone or name.endswith("." + self._zone)

    def _problem(self, source: str, chain: tuple[str, ...], kind: OriginProblem, why: str) -> None:
        self._out.origins.append(Origin(source=source, chain=chain, problem=kind, detail=why))
        if kind is not OriginProblem.UNRESOLVED:
            self._out.complete = False

    def malformed(self, source: str, chain: tuple[str, ...], kind: OriginProblem, why: str) -> None:
        """An item Cloudflare listed without a field syncd needs: unmapped, and it holds
        deletions (an origin syncd could not read is one it cannot rule out)."""
        self._problem(source, chain, kind, why)

    def address(self, source: str, chain: tuple[str, ...], content: str) -> None:
        try:
            ip = parse_ip(content)
        except ValueError:
            self._problem(source, chain, OriginProblem.FAILED, f"{content!r} is not an IP address")
            return
        self._out.origins.append(Origin(source=source, chain=chain, ip=ip))

    def follow(self, source: str, chain: tuple[str, ...], target: str) -> None:
        """One more link, to ``target``; then through the zone, or on to DNS."""
        if target in chain:
            self._problem(source, (*chain, target), OriginProblem.FAILED, f"CNAME loop at {target}")
            return
        chain = (*chain, target)
        if len(chain) - 1 > MAX_LINKS:
            why = f"CNAME chain longer than {MAX_LINKS} links"
            self._problem(source, chain, OriginProblem.FAILED, why)
            return
        if not self._inside(target):
            self._out.pending.append(_Pending(source=source, chain=chain))
            return
        if target in self._balancers:
            self.balancer(f"{source}, load balancer {target}", chain, self._balancers[target])
            return
        found = self._records.get(target, [])
        if not found:
            why = f"{target} has no A, AAAA or CNAME record in the zone"
            self._problem(source, chain, OriginProblem.UNRESOLVED, why)
        for r in found:
            if r.type == "CNAME":
                self.follow(source, chain, dns_name(r.content))
            else:
                self.address(source, chain, r.content)

    def balancer(self, source: str, chain: tuple[str, ...], lb: LoadBalancer) -> None:
        """Every pool the load balancer names: at the top level, then in each rule and pool
        set (disabled ones too: they can be enabled at any time), each named in ``source``."""
        self._pools_of(source, chain, lb, lb.pool_ids)
        for route in lb.routes:
            self._pools_of(f"{source}, {route.label}", chain, lb, route.pool_ids)

    def _pools_of(
        self, source: str, chain: tuple[str, ...], lb: LoadBalancer, pool_ids: Iterable[str]
    ) -> None:
        for pool_id in pool_ids:
            if pool_id in self._unreadable:
                continue  # the token may not read it: a warning, and no deletion in the zone
            pool = self._pools.get(pool_id, "not read")
            where = f"{source}, pool {pool_id}"
            if isinstance(pool, str):
                why = f"load balancer {lb.name or lb.id} references pool {pool_id}: {pool}"
                self._problem(where, chain, OriginProblem.FAILED, why)
                continue
            if not pool.enabled:
                continue
            for o in pool.origins:
                at = f"{source}, pool {pool.name}, origin {o.name}"
                if o.malformed:
                    self.malformed(at, chain, OriginProblem.MALFORMED_POOL_ORIGIN, o.malformed)
                elif o.enabled:
                    self.pool_origin(at, chain, o.address)

    def pool_origin(self, source: str, chain: tuple[str, ...], address: str) -> None:
        try:
            parse_ip(address)
        except ValueError:
            pass
        else:
            self.address(source, chain, address)
            return
        name = dns_name(address)
        if not _HOSTNAME.match(name):
            why = f"pool origin address {address!r} is neither an IP address nor a hostname"
            self._problem(source, chain, OriginProblem.FAILED, why)
            return
        if chain[-1] == name:
            return
        self.follow(source, chain, name)


def finish(traced: Traced, resolutions: MappingABC[str, NameResolution]) -> ZoneOrigins:
    """The zone's origins once DNS has answered every pending name."""
    origins = list(traced.origins)
    complete = traced.complete
    for p in traced.pending:
        res = resolutions[p.chain[-1]]
        chain = (*p.chain, *res.chain)
        if len(chain) - 1 > MAX_LINKS:
            why = f"CNAME chain longer than {MAX_LINKS} links"
            origins.append(
                Origin(source=p.source, chain=chain, problem=OriginProblem.FAILED, detail=why)
            )
            complete = False
        elif res.status is ResolutionStatus.RESOLVED:
            origins += [Origin(source=p.source, chain=chain, ip=ip) for ip in res.addresses]
        elif res.status is ResolutionStatus.UNRESOLVED:
            why = f"{chain[-1]}: {res.error}"
            origins.append(
                Origin(source=p.source, chain=chain, problem=OriginProblem.UNRESOLVED, detail=why)
            )
        else:
            why = f"resolving {p.chain[-1]}: {res.error}"
            origins.append(
                Origin(source=p.source, chain=chain, problem=OriginProblem.FAILED, detail=why)
            )
            complete = False
    return ZoneOrigins(origins=tuple(origins), warnings=tuple(traced.warnings), complete=complete)


def coverage(
    origins: ZoneOrigins,
    zplan: ZonePlan,
    *,
    after: MappingABC[IPAddress, RegionMapping],
    failures: Iterable[ItemFailure] = (),
    applied: bool = True,
) -> tuple[OriginCoverage, ...]:
    """Each origin's state at the end of the run (``after``: what Cloudflare holds now)."""
    wanted = {u.mapping.ip: u.mapping for u in (*zplan.upserts, *zplan.unchanged)}
    planned = {u.mapping.ip for u in zplan.upserts}
    skipped = {s.subject: s for s in zplan.skips}
    failed = {f.ip for f in failures}
    out: list[OriginCoverage] = []
    for o in origins.origins:
        if o.ip is None:
            problem = o.problem or OriginProblem.FAILED
            out.append(OriginCoverage(origin=o, state=CoverageState.UNMAPPED, reason=problem.value))
            continue
        want = wanted.get(o.ip)
        text = canonical(o.ip)
        if want is not None:
            mapped = after.get(o.ip) == want
            reason = "" if mapped else why_not(text, failed, planned, o.ip, applied=applied)
            state = CoverageState.MAPPED if mapped else CoverageState.UNMAPPED
            out.append(
                OriginCoverage(
                    origin=o,
                    state=state,
                    reason=reason,
                    vendor=want.vendor.value,
                    region=want.region,
                )
            )
            continue
        skip = skipped.get(text)
        reason = skip.reason.value if skip else CoverageReason.UNDISCOVERED.value
        if skip is None and non_public_reason(o.ip):
            reason = SkipReason.NON_PUBLIC.value
        out.append(
            OriginCoverage(
                origin=o,
                state=CoverageState.UNMAPPED,
                reason=reason,
                vendor=skip.vendor if skip else "",
                region=skip.region if skip else "",
            )
        )
    return tuple(out)


def why_not(
    text: str, failed: set[str], planned: set[IPAddress], ip: IPAddress, *, applied: bool
) -> str:
    """Why an address the plan wants mapped is not (yet): planned, failed or not applied."""
    if not applied and ip in planned:
        return CoverageReason.PLANNED.value
    if text in failed or ip in planned:
        return CoverageReason.FAILED.value
    return CoverageReason.NOT_APPLIED.value
