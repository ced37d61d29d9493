"""What traffic says about a zone's mappings (syncd/sources/traffic.py): pure, tested on records."""

from __future__ import annotations

import pytest

from syncd.model import (
    CoverageState,
    ItemFailure,
    ObservationState,
    OriginFetches,
    RegionMapping,
    ScopeKey,
    Skip,
    SkipReason,
    Upsert,
    Vendor,
    ZoneObservation,
    ZonePlan,
    parse_ip,
)
from syncd.sources import traffic

SINCE, UNTIL = 1_000_000.0, 1_003_600.0
TIERS = {(Vendor.AWS, "us-east-1"): ("IAD", "ewr02"), (Vendor.GCP, "us-central1"): ()}
EAST = RegionMapping(ip=parse_ip("198.51.100.10"), vendor=Vendor.AWS, region="us-east-1")
OTHER = RegionMapping(ip=parse_ip("198.51.100.11"), vendor=Vendor.AWS, region="us-east-1")
GCP = RegionMapping(ip=parse_ip("198.51.100.30"), vendor=Vendor.GCP, region="us-central1")


def _observed(*groups: tuple[str, str, int], tiers: bool = True) -> ZoneObservation:
    return ZoneObservation(
        state=ObservationState.OBSERVED,
        since=SINCE,
        until=UNTIL,
        fetches=tuple(
            OriginFetches(ip=parse_ip(ip), upper_tier=tier, count=n) for ip, tier, n in groups
        ),
        tiers=tiers,
    )


def _plan(*mappings: RegionMapping, skips: tuple[Skip, ...] = ()) -> ZonePlan:
    unchanged = tuple(Upsert(mapping=m, previous=m, scope_key=ScopeKey("static")) for m in mappings)
    return ZonePlan(zone_id="z", zone_name="example.com", unchanged=unchanged, skips=skips)


def _judge(observation: ZoneObservation, *mappings: RegionMapping, **kw: object):
    after = {m.ip: m for m in mappings}
    options = {"discovered": after.keys(), "upper_tiers": TIERS, "written": {}, **kw}
    return traffic.judge(observation, _plan(*mappings), after=after, **options)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("spelled", "code"),
    [("IAD", "IAD"), ("iad", "IAD"), ("IAD01", "IAD"), (" ewr-b ", "EWR"), ("", ""), ("12", "")],
)
def test_upper_tiers_compare_on_their_three_letter_code(spelled, code):
    assert code == traffic.colo(spelled)


def test_coverage_is_the_share_of_fetches_to_mapped_addresses():
    seen = _judge(_observed(("198.51.100.10", "IAD", 980), ("203.0.113.9", "IAD", 20)), EAST)
    assert 0.98 == seen.coverage_ratio
    assert {CoverageState.MAPPED: 1, CoverageState.UNMAPPED: 1} == seen.counts()
    mapped, unmapped = seen.origins
    assert (980, 0.98, "aws", "us-east-1") == (
        mapped.fetches,
        mapped.share,
        mapped.vendor,
        mapped.region,
    )
    assert "undiscovered_origin" == unmapped.reason


def test_effect_is_the_share_made_by_the_upper_tiers_the_region_lists():
    seen = _judge(
        _observed(
            ("198.51.100.10", "iad", 600),
            ("198.51.100.10", "EWR02", 200),
            ("198.51.100.10", "FRA", 150),
            ("198.51.100.10", "", 50),
        ),
        EAST,
    )
    (origin,) = seen.origins
    assert ("EWR", "IAD") == origin.expected
    assert (("IAD", 600), ("EWR", 200), ("FRA", 150), ("-", 50)) == origin.tiers
    assert 0.8 == origin.effect
    assert 0.8 == seen.effect_ratio
    assert "judged" == origin.judged


def test_effect_weighs_each_origin_by_its_fetches():
    seen = _judge(
        _observed(("198.51.100.10", "IAD", 900), ("198.51.100.11", "FRA", 100)), EAST, OTHER
    )
    assert 0.9 == seen.effect_ratio


def test_a_hint_younger_than_the_window_is_too_new_to_judge_never_a_failure():
    observation = _observed(("198.51.100.10", "FRA", 500), ("198.51.100.11", "IAD", 500))
    written = {EAST.ip: SINCE + 60, OTHER.ip: SINCE - 60}
    seen = _judge(observation, EAST, OTHER, written=written)
    fresh, old = sorted(seen.origins, key=lambda o: str(o.ip))
    assert ("too_new", None) == (fresh.judged, fresh.effect)
    assert ("judged", 1.0) == (old.judged, old.effect)
    assert 1.0 == seen.effect_ratio  # the fresh hint's FRA fetches count once it is older
    assert 1 == seen.too_new


def test_no_effect_figure_without_upper_tiers_read_or_listed():
    unread = _judge(_observed(("198.51.100.10", "", 10), tiers=False), EAST)
    assert ("tiers_unread", None) == (unread.origins[0].judged, unread.effect_ratio)
    unlisted = _judge(_observed(("198.51.100.30", "ORD", 10)), GCP)
    assert ("no_upper_tiers_listed", None) == (unlisted.origins[0].judged, unlisted.effect_ratio)


def test_why_an_observed_address_is_unmapped():
    unsupported = Skip(
        subject="198.51.100.40",
        ip=parse_ip("198.51.100.40"),
        reason=SkipReason.UNSUPPORTED_REGION,
        vendor="azure",
        region="westindia",
    )
    elsewhere = Skip(
        subject="198.51.100.50",
        ip=parse_ip("198.51.100.50"),
        reason=SkipReason.UNDISCOVERED_ORIGIN,
        detail="found only by collectors this zone does not use",
    )
    observation = _observed(
        ("198.51.100.40", "IAD", 1),
        ("198.51.100.50", "IAD", 1),
        ("198.51.100.60", "IAD", 1),
        ("10.0.0.5", "IAD", 1),
        ("203.0.113.9", "IAD", 1),
        ("198.51.100.10", "IAD", 1),
    )
    planned = Upsert(mapping=EAST, previous=None, scope_key=ScopeKey("static"))
    zplan = ZonePlan(
        zone_id="z", zone_name="example.com", upserts=(planned,), skips=(unsupported, elsewhere)
    )
    discovered = {parse_ip(ip) for ip in ("198.51.100.40", "198.51.100.50", "198.51.100.60")}
    failed = [ItemFailure.of(EAST, "refused")]
    seen = traffic.judge(
        observation,
        zplan,
        after={},
        discovered=discovered | {EAST.ip},
        upper_tiers=TIERS,
        written={},
        failures=failed,
    )
    reasons = {str(o.ip): o.reason for o in seen.origins}
    assert {
        "198.51.100.40": "unsupported_region",
        "198.51.100.50": "not_an_origin",  # found, but not by this zone's collectors
        "198.51.100.60": "not_an_origin",
        "10.0.0.5": "non_public",
        "203.0.113.9": "undiscovered_origin",
        "198.51.100.10": "failed",
    } == reasons
    assert 0.0 == seen.coverage_ratio


def test_nothing_is_judged_without_figures_and_proven_keeps_the_last_addresses():
    failed = ZoneObservation(
        state=ObservationState.FAILED, detail="quota", kept=(EAST.ip, parse_ip("203.0.113.9"))
    )
    seen = _judge(failed, EAST)
    assert (False, None, ()) == (seen.available, seen.coverage_ratio, seen.origins)
    assert frozenset({EAST.ip}) == traffic.proven(failed, {EAST.ip})
    assert frozenset() == traffic.proven(None, {EAST.ip})


def test_no_fetches_no_ratio():
    seen = _judge(_observed(), EAST)
    assert (True, None, None) == (seen.available, seen.coverage_ratio, seen.effect_ratio)
