"""What traffic says about a zone's mappings: coverage by fetches, and whether the hints moved
the upper tier. Pure.

``judge()`` takes the zone's observation (``observe.py``: origin fetches per origin IP and
upper tier over the window) and the run's outcome, and says for every address Cloudflare
fetched from: its fetches and share, mapped or not and why, the upper tiers that fetched from
it, the ones ``supported_regions`` lists for its mapping's region, and their share (the hint's
effect). Upper tiers are compared on the normalised three-letter IATA code (``colo()``), since
Cloudflare may spell ``upperTierColoName`` and ``upper_tier_colos`` differently. A hint written
after the window began is too new to judge: the window mixes fetches from before it.

No I/O, no clock, no logging.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping

from syncd.model import (
    CoverageReason,
    CoverageState,
    IPAddress,
    ItemFailure,
    Judged,
    ObservationState,
    ObservedOrigin,
    RegionMapping,
    SkipReason,
    Vendor,
    ZoneObservation,
    ZonePlan,
    ZoneTraffic,
    canonical,
)
from syncd.plan import ip_order, non_public_reason
from syncd.sources.origins import why_not

NOT_AN_ORIGIN = "not_an_origin"  # a collector found it; the zone's configuration does not take it
NO_TIER = "-"  # fetched without an upper tier
_CODE = re.compile(r"[A-Za-z]{3}")


def colo(name: str) -> str:
    """A data centre's three-letter IATA code however it is spelled: its first three letters,
    upper case (``iad``, ``IAD01``, ``iad-b`` -> ``IAD``); ``""`` when it has none."""
    found = _CODE.match(name.strip())
    return found.group(0).upper() if found else ""


def proven(
    observation: ZoneObservation | None, discovered: Collection[IPAddress]
) -> frozenset[IPAddress]:
    """The addresses traffic proves to be origins of the zone: Cloudflare fetched from them in
    the window (or, when this run's reading failed, the last one) and a collector found them."""
    if observation is None:
        return frozenset()
    return frozenset(ip for ip in observation.addresses if ip in discovered)


def judge(
    observation: ZoneObservation,
    zplan: ZonePlan,
    *,
    after: Mapping[IPAddress, RegionMapping],
    discovered: Collection[IPAddress],
    upper_tiers: Mapping[tuple[Vendor, str], tuple[str, ...]],
    written: Mapping[IPAddress, float],
    failures: Iterable[ItemFailure] = (),
    applied: bool = True,
) -> ZoneTraffic:
    """The zone's traffic against the mappings Cloudflare holds at the end of the run
    (``after``). ``written``: when syncd last wrote each mapping it owns (a hint without a
    time, made by hand, is as old as the window)."""
    if observation.state is not ObservationState.OBSERVED:
        return ZoneTraffic(observation=observation)
    fetched = observation.by_address()
    total = sum(fetched.values())
    tiers: dict[IPAddress, Counter[str]] = {}
    for f in observation.fetches:
        tiers.setdefault(f.ip, Counter())[colo(f.upper_tier) or NO_TIER] += f.count
    why = _Why(zplan, discovered, failures, applied=applied)
    origins: list[ObservedOrigin] = []
    for ip in sorted(fetched, key=lambda ip: (-fetched[ip], ip_order(ip))):
        count = fetched[ip]
        held = after.get(ip)
        by_tier = tuple(sorted(tiers[ip].items(), key=lambda kv: (-kv[1], kv[0])))
        share = count / total if total else 0.0
        if held is None:
            reason, vendor, region = why.unmapped(ip)
            origins.append(
                ObservedOrigin(
                    ip=ip,
                    fetches=count,
                    share=share,
                    state=CoverageState.UNMAPPED,
                    reason=reason,
                    vendor=vendor,
                    region=region,
                    tiers=by_tier,
                )
            )
            continue
        expected = tuple(
            sorted({colo(c) for c in upper_tiers.get((held.vendor, held.region), ())} - {""})
        )
        judged, effect = _effect(observation, expected, tiers[ip], count, written.get(ip))
        origins.append(
            ObservedOrigin(
                ip=ip,
                fetches=count,
                share=share,
                state=CoverageState.MAPPED,
                vendor=held.vendor.value,
                region=held.region,
                tiers=by_tier,
                expected=expected,
                effect=effect,
                judged=judged,
            )
        )
    return _totals(observation, origins, total)


def _effect(
    observation: ZoneObservation,
    expected: tuple[str, ...],
    tiers: Counter[str],
    count: int,
    written_at: float | None,
) -> tuple[Judged, float | None]:
    """Whether the origin's hint can be judged, and its effect: the share of its fetches made
    by an upper tier its region lists."""
    if not observation.tiers:
        return Judged.TIERS_UNREAD, None
    if not expected:
        return Judged.NO_UPPER_TIERS_LISTED, None
    if written_at is not None and written_at > observation.since:
        return Judged.TOO_NEW, None
    return Judged.JUDGED, sum(tiers[c] for c in expected) / count if count else None


def _totals(observation: ZoneObservation, origins: list[ObservedOrigin], total: int) -> ZoneTraffic:
    mapped = sum(o.fetches for o in origins if o.state is CoverageState.MAPPED)
    judged = [o for o in origins if o.judged is Judged.JUDGED and o.effect is not None]
    weight = sum(o.fetches for o in judged)
    effect = sum(o.fetches * (o.effect or 0.0) for o in judged) / weight if weight else None
    return ZoneTraffic(
        observation=observation,
        origins=tuple(origins),
        coverage_ratio=mapped / total if total else None,
        effect_ratio=effect,
        too_new=sum(1 for o in origins if o.judged is Judged.TOO_NEW),
    )


class _Why:
    """Why an observed address has no mapping, from the zone's plan and the run."""

    def __init__(
        self,
        zplan: ZonePlan,
        discovered: Collection[IPAddress],
        failures: Iterable[ItemFailure],
        *,
        applied: bool,
    ) -> None:
        self._wanted = {u.mapping.ip: u.mapping for u in (*zplan.upserts, *zplan.unchanged)}
        self._planned = {u.mapping.ip for u in zplan.upserts}
        self._skips = {s.ip: s for s in zplan.skips if s.ip is not None}
        self._failed = {f.ip for f in failures}
        self._discovered = discovered
        self._applied = applied

    def unmapped(self, ip: IPAddress) -> tuple[str, str, str]:
        """(reason, vendor, region): no collector found it, its region is unsupported, it is
        not an origin of the zone's configuration, or what the plan says."""
        want = self._wanted.get(ip)
        if want is not None:
            text = canonical(ip)
            reason = why_not(text, self._failed, self._planned, ip, applied=self._applied)
            return reason, want.vendor.value, want.region
        skip = self._skips.get(ip)
        if skip is not None and not (
            skip.reason is SkipReason.UNDISCOVERED_ORIGIN and ip in self._discovered
        ):
            return skip.reason.value, skip.vendor, skip.region
        if ip in self._discovered:
            return NOT_AN_ORIGIN, "", ""
        if non_public_reason(ip):
            return SkipReason.NON_PUBLIC.value, "", ""
        return CoverageReason.UNDISCOVERED.value, "", ""
