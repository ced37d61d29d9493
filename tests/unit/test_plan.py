"""The planner, as a pure function: examples for each rule, and properties over random estates."""

from __future__ import annotations

import ipaddress

from hypothesis import given, settings
from hypothesis import strategies as st

from syncd import plan
from syncd.config import ZoneConfig
from syncd.model import (
    Address,
    CollectorOutcome,
    Inventory,
    Owned,
    Reason,
    RegionMapping,
    Scope,
    ScopeKey,
    ScopeOutcome,
    ScopeStatus,
    SkipReason,
    Vendor,
    parse_ip,
)

REGIONS = plan.RegionMatcher(
    {
        Vendor.AWS: {"us-east-1", "us-west-2", "eu-west-1"},
        Vendor.GCP: {"us-central1", "europe-west1"},
        Vendor.AZURE: {"eastus", "westeurope"},
    }
)
ZONE = ZoneConfig(id="0123456789abcdef0123456789abcdef", origins="all")
SYNC_ZONE = ZoneConfig(id="0123456789abcdef0123456789abcdef", origins="all", policy="sync")


def addr(
    ip: str,
    vendor: str = "aws",
    region: str = "us-east-1",
    collector: str = "aws-prod",
    account: str = "111",
    region_scope: str = "us-east-1",
    **tags: str,
) -> Address:
    scope = Scope(collector=collector, vendor=Vendor(vendor), account=account, region=region_scope)
    return Address(
        ip=parse_ip(ip),
        vendor=Vendor(vendor),
        region=region,
        collector=collector,
        account=account,
        resource=f"eni/{ip}",
        scope_key=scope.key,
        tags=tuple(sorted(tags.items())),
    )


def mapping(ip: str, vendor: str = "aws", region: str = "us-east-1") -> RegionMapping:
    return RegionMapping(ip=parse_ip(ip), vendor=Vendor(vendor), region=region)


def owned(*maps: RegionMapping, scope_key: str = "aws-prod/111/us-east-1") -> dict:
    return {m.ip: Owned(mapping=m, scope_key=ScopeKey.parse(scope_key)) for m in maps}


def build(addresses, *, zone=ZONE, current=(), own=None, dns=None, health=None, **kw):
    inv = Inventory(addresses=tuple(addresses))
    resolved = plan.resolve(inv, REGIONS)
    return plan.build(
        zone,
        resolved,
        current=plan.index(current),
        owned=own or {},
        dns_origins=dns,
        health=health or plan.Health(),
        settings=plan.PlanSettings(**kw),
    )


def reasons(zp) -> dict[str, str]:
    return {s.subject: s.reason.value for s in zp.skips}


def test_first_plan_creates_every_public_supported_address_in_ip_order():
    zp = build([addr("203.0.113.9"), addr("192.0.2.1"), addr("2001:db8::1", "gcp", "us-central1")])
    assert ["192.0.2.1", "203.0.113.9", "2001:db8::1"] == [u.mapping.ip_text for u in zp.creates]
    assert () == zp.updates


def test_skips_carry_reasons():
    zp = build(
        [
            addr("10.0.0.1"),
            addr("192.0.2.2", region="mars-north-1"),
            addr("192.0.2.3"),
            addr("192.0.2.3", region="us-west-2", collector="aws-other"),
        ]
    )
    assert {
        "10.0.0.1": "non_public",
        "192.0.2.2": "unsupported_region",
        "192.0.2.3": "conflict",
    } == reasons(zp)
    assert () == zp.upserts


def test_region_names_match_loosely_onto_cloudflare_names():
    zp = build([addr("192.0.2.1", "azure", "East US")])
    assert [mapping("192.0.2.1", "azure", "eastus")] == [u.mapping for u in zp.creates]


def test_static_entry_wins_over_discovery():
    zp = build(
        [
            addr("192.0.2.1", region="us-west-2"),
            addr(
                "192.0.2.1",
                region="eu-west-1",
                collector="static",
                account="config",
                region_scope="",
            ),
        ]
    )
    assert [mapping("192.0.2.1", region="eu-west-1")] == [u.mapping for u in zp.upserts]
    assert {} == reasons(zp)


def test_same_ip_from_two_sources_with_same_region_is_one_item():
    zp = build([addr("192.0.2.1"), addr("192.0.2.1", collector="aws-other", account="222")])
    assert 1 == len(zp.upserts)


def test_unchanged_changed_and_foreign_mappings():
    current = [mapping("192.0.2.1"), mapping("192.0.2.2"), mapping("192.0.2.3", region="eu-west-1")]
    zp = build(
        [
            addr("192.0.2.1"),
            addr("192.0.2.2", region="us-west-2"),
            addr("192.0.2.3", region="us-west-2"),
        ],
        current=current,
        own=owned(mapping("192.0.2.2")),
    )
    assert ["192.0.2.1"] == [u.mapping.ip_text for u in zp.unchanged]
    assert [(mapping("192.0.2.2", region="us-west-2"), mapping("192.0.2.2"))] == [
        (u.mapping, u.previous) for u in zp.updates
    ]
    assert {"192.0.2.3": "foreign_mapping"} == reasons(zp)


def test_adopt_takes_ownership_of_equal_mappings_only():
    zone = ZoneConfig(id="0123456789abcdef0123456789abcdef", origins="all", adopt=True)
    zp = build(
        [addr("192.0.2.1"), addr("192.0.2.3", region="us-west-2")],
        zone=zone,
        current=[mapping("192.0.2.1"), mapping("192.0.2.3")],
    )
    assert ["192.0.2.1"] == [u.mapping.ip_text for u in zp.adopted]
    assert {"192.0.2.3": "foreign_mapping"} == reasons(zp)


def test_upsert_only_never_deletes():
    zp = build([], current=[mapping("192.0.2.1")], own=owned(mapping("192.0.2.1")))
    assert () == zp.deletes


def test_sync_deletes_only_owned_undiscovered_mappings():
    current = [mapping("192.0.2.1"), mapping("192.0.2.2"), mapping("192.0.2.3")]
    zp = build(
        [addr("192.0.2.1")],
        zone=SYNC_ZONE,
        current=current,
        own=owned(mapping("192.0.2.1"), mapping("192.0.2.2")),
        max_delete_fraction=1,
    )
    assert [mapping("192.0.2.2")] == list(zp.deletes)


def test_incomplete_scope_protects_its_mappings():
    current = [mapping("192.0.2.1"), mapping("192.0.2.2")]
    own = {
        **owned(mapping("192.0.2.1")),
        **owned(mapping("192.0.2.2"), scope_key="aws-prod/111/us-west-2"),
    }
    health = plan.Health(failed_scopes=frozenset({ScopeKey("aws-prod", "111", "us-east-1")}))
    zp = build([], zone=SYNC_ZONE, current=current, own=own, health=health, max_delete_fraction=1)
    assert [mapping("192.0.2.2")] == list(zp.deletes)
    assert {"192.0.2.1": "scope_incomplete"} == reasons(zp)
    unlisted = plan.Health(unlisted_collectors=frozenset({"aws-prod"}))
    zp = build([], zone=SYNC_ZONE, current=current, own=own, health=unlisted, max_delete_fraction=1)
    assert () == zp.deletes


def test_mass_delete_guard_refuses_and_can_be_overridden():
    maps = [mapping(f"192.0.2.{i}") for i in range(1, 11)]
    keep = [addr(f"192.0.2.{i}") for i in range(1, 8)]
    zp = build(keep, zone=SYNC_ZONE, current=maps, own=owned(*maps))
    assert () == zp.deletes
    assert "would delete 3 of 10" in zp.guard
    assert 3 == sum(1 for s in zp.skips if s.reason is SkipReason.MASS_DELETE_GUARD)
    zp = build(keep, zone=SYNC_ZONE, current=maps, own=owned(*maps), allow_mass_delete=True)
    assert 3 == len(zp.deletes)
    assert "" == zp.guard


def test_capacity_keeps_a_deterministic_subset_and_reports_the_rest():
    current = [mapping("192.0.2.100")]
    zp = build([addr(f"192.0.2.{i}") for i in range(1, 6)], current=current, max_mappings=3)
    assert ["192.0.2.1", "192.0.2.2"] == [u.mapping.ip_text for u in zp.creates]
    assert ["192.0.2.3", "192.0.2.4", "192.0.2.5"] == [
        s.subject for s in zp.skips if s.reason is SkipReason.OVER_CAPACITY
    ]


def test_dns_origins_select_and_report_undiscovered():
    dns = frozenset({parse_ip("192.0.2.1"), parse_ip("192.0.2.9"), parse_ip("10.0.0.1")})
    zp = build([addr("192.0.2.1"), addr("192.0.2.2"), addr("10.0.0.1")], dns=dns)
    assert ["192.0.2.1"] == [u.mapping.ip_text for u in zp.creates]
    assert {"192.0.2.9": "undiscovered_origin", "10.0.0.1": "non_public"} == reasons(zp)
    assert 1 == zp.ignored


def test_match_tags_and_zone_collectors():
    zone = ZoneConfig(
        id="fedcba9876543210fedcba9876543210",
        origins="all",
        match_tags={"cdn": "yes"},
        collectors=("aws-prod",),
    )
    zp = build(
        [
            addr("192.0.2.1", cdn="yes"),
            addr("192.0.2.2", cdn="no"),
            addr("192.0.2.3", collector="aws-other", cdn="yes"),
        ],
        zone=zone,
    )
    assert ["192.0.2.1"] == [u.mapping.ip_text for u in zp.creates]
    assert {"192.0.2.2": "tags_mismatch"} == reasons(zp)


def test_batches_are_cut_at_batch_size():
    zp = build([addr(f"198.51.100.{i}") for i in range(1, 251)], batch_size=100)
    assert [100, 100, 50] == [len(b) for b in zp.upsert_batches()]


def test_inventory_health_comes_from_outcomes():
    scope = Scope(collector="gcp", vendor=Vendor.GCP, account="p1")
    inv = Inventory(
        scopes=(ScopeOutcome(scope=scope, status=ScopeStatus.FAILED, reason=Reason.AUTH),),
        collectors=(CollectorOutcome(collector="oci", vendor=Vendor.OCI, enumerated=False),),
    )
    health = plan.Health.of(inv)
    assert not health.trusted(ScopeKey("gcp", "p1"))
    assert not health.trusted(ScopeKey("oci", "ocid1.compartment", "us-ashburn-1"))
    assert health.trusted(ScopeKey("aws-prod", "111", "us-east-1"))


# --- properties ----------------------------------------------------------------------------

_VENDOR_REGIONS = [
    ("aws", "us-east-1"),
    ("aws", "us-west-2"),
    ("gcp", "us-central1"),
    ("azure", "eastus"),
    ("aws", "nowhere-1"),
]
ips = st.one_of(
    st.integers(0, 2**32 - 1).map(lambda n: str(ipaddress.IPv4Address(n))),
    st.integers(0, 2**16 - 1).map(lambda n: str(ipaddress.IPv6Address((0x2001_0DB8 << 96) + n))),
    st.sampled_from(["192.0.2.1", "192.0.2.2", "10.0.0.1", "2001:db8::1"]),
)
addresses = st.lists(
    st.tuples(ips, st.sampled_from(_VENDOR_REGIONS), st.sampled_from(["a", "b", "static"])),
    max_size=60,
)


def _estate(items):
    return [addr(ip, v, r, collector=c) for ip, (v, r), c in items]


@settings(max_examples=150, deadline=None)
@given(addresses, st.integers(1, 100), st.integers(1, 80))
def test_every_address_lands_in_exactly_one_place(items, batch_size, cap):
    found = _estate(items)
    zp = build(found, batch_size=batch_size, max_mappings=cap)
    batched = [u.mapping.ip for b in zp.upsert_batches() for u in b]
    assert len(batched) == len(set(batched)), "an IP appears twice"
    assert all(len(b) <= batch_size for b in zp.upsert_batches())
    placed = set(batched) | {u.mapping.ip for u in zp.unchanged}
    skipped = {parse_ip(s.subject) for s in zp.skips}
    assert placed.isdisjoint(skipped)
    assert {a.ip for a in found} == placed | skipped
    assert len(zp.upserts) <= cap


@settings(max_examples=100, deadline=None)
@given(addresses, st.lists(st.tuples(ips, st.sampled_from(_VENDOR_REGIONS[:4])), max_size=30))
def test_planning_again_after_applying_yields_no_upserts(items, existing):
    current = {parse_ip(ip): mapping(ip, v, r) for ip, (v, r) in existing}
    found = _estate(items)
    first = build(found, current=list(current.values()), own=owned(*current.values()))
    applied = dict(current)
    applied.update({u.mapping.ip: u.mapping for u in first.upserts})
    again = build(found, current=list(applied.values()), own=owned(*applied.values()))
    assert () == again.upserts


@settings(max_examples=100, deadline=None)
@given(
    st.permutations(
        ["1.0.0.0", "34.1.2.3", "34.1.2.30", "203.0.113.254", "2600:1f18::1", "2600:1f18::1:0"]
    )
)
def test_candidates_are_in_ip_order_whatever_order_they_were_collected_in(texts):
    resolved = plan.resolve(Inventory(addresses=tuple(addr(t) for t in texts)), REGIONS)
    assert sorted(resolved.candidates, key=plan.ip_order) == list(resolved.candidates)
    assert {parse_ip(t) for t in texts} == set(resolved.candidates)


def test_still_discovered_but_unmappable_addresses_are_never_deleted():
    """A region Cloudflare stops listing (a vendor absent from supported_regions) is no reason
    to delete: the address still exists."""
    current = [mapping("192.0.2.1", "azure", "eastus"), mapping("192.0.2.2")]
    zp = build(
        [
            addr("192.0.2.1", "azure", "centralindia"),
            addr("192.0.2.2", region="eu-west-1"),
            addr("192.0.2.2", collector="aws-other", region="us-west-2"),
        ],
        zone=SYNC_ZONE,
        current=current,
        own=owned(*current),
        max_delete_fraction=1,
    )
    assert () == zp.deletes
    assert {"192.0.2.1": "unsupported_region", "192.0.2.2": "conflict"} == {
        s.subject: s.reason.value for s in zp.skips if "deletion deferred" in s.detail
    }


def test_owned_mapping_follows_the_scope_that_reports_it_now():
    current = [mapping("192.0.2.1")]
    stale = owned(*current, scope_key="aws/111/us-east-1")  # before the collector was renamed
    zp = build([addr("192.0.2.1")], current=current, own=stale)
    assert ["aws-prod/111/us-east-1"] == [str(u.scope_key) for u in zp.adopted]
    same = build([addr("192.0.2.1")], current=current, own=owned(*current))
    assert () == same.adopted
