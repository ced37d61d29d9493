"""origins.trace/finish/coverage: pure functions over what Cloudflare and DNS said."""

from __future__ import annotations

from syncd.model import (
    CoverageState,
    DnsRecord,
    ItemFailure,
    LoadBalancer,
    NameResolution,
    Origin,
    OriginProblem,
    OriginSources,
    Pool,
    PoolOrigin,
    RegionMapping,
    ResolutionStatus,
    ScopeKey,
    Skip,
    SkipReason,
    Upsert,
    Vendor,
    ZoneOrigins,
    ZonePlan,
    parse_ip,
)
from syncd.sources import origins

ZONE = "example.com"


def rec(type_: str, name: str, content: str, *, proxied: bool = True) -> DnsRecord:
    return DnsRecord(name=name, type=type_, content=content, proxied=proxied)


def data(*records: DnsRecord, lbs=(), pools=None) -> OriginSources:
    return OriginSources(zone_name=ZONE, records=records, load_balancers=lbs, pools=pools or {})


def resolved(name: str, *ips: str, chain: tuple[str, ...] = ()) -> NameResolution:
    return NameResolution(
        name=name,
        status=ResolutionStatus.RESOLVED,
        addresses=tuple(parse_ip(i) for i in ips),
        chain=chain,
    )


def test_a_load_balancer_takes_precedence_over_a_record_of_the_same_name():
    pool = Pool(id="p1", name="p", origins=(PoolOrigin(name="o", address="192.0.2.7"),))
    lb = LoadBalancer(id="l", name="app.example.com", pool_ids=("p1",), routes=())
    traced = origins.trace(
        data(rec("A", "app.example.com", "192.0.2.1"), lbs=(lb,), pools={"p1": pool}),
        proxied_only=False,
    )
    assert [("load balancer app.example.com, pool p, origin o", "192.0.2.7")] == [
        (o.source, str(o.ip)) for o in traced.origins
    ]


def test_disabled_load_balancers_pools_and_origins_get_no_traffic():
    pools = {
        "on": Pool(
            id="on",
            name="on",
            origins=(
                PoolOrigin(name="a", address="192.0.2.1"),
                PoolOrigin(name="b", address="192.0.2.2", enabled=False),
            ),
        ),
        "off": Pool(
            id="off",
            name="off",
            enabled=False,
            origins=(PoolOrigin(name="c", address="192.0.2.3"),),
        ),
    }
    lbs = (
        LoadBalancer(id="1", name="lb.example.com", pool_ids=("on", "off"), routes=()),
        LoadBalancer(id="2", name="old.example.com", enabled=False, pool_ids=("on",), routes=()),
        LoadBalancer(id="3", name="grey.example.com", proxied=False, pool_ids=("on",), routes=()),
    )
    traced = origins.trace(data(lbs=lbs, pools=pools), proxied_only=True)
    assert {"192.0.2.1"} == {str(o.ip) for o in traced.origins}
    assert ["load balancer lb.example.com, pool on, origin a"] == [o.source for o in traced.origins]


def test_in_zone_targets_follow_records_then_dns_and_chains_add_up():
    records = [rec("CNAME", f"c{i}.example.com", f"c{i + 1}.example.com") for i in range(5)]
    records.append(rec("CNAME", "c5.example.com", "edge.example.net"))
    traced = origins.trace(data(*records), proxied_only=False)
    assert {"edge.example.net"} == traced.names
    ok = origins.finish(
        traced,
        {"edge.example.net": resolved("edge.example.net", "192.0.2.9", chain=("a.net", "b.net"))},
    )
    deepest = [o for o in ok.origins if o.source == "CNAME c0.example.com"]
    assert 1 == len(deepest)
    assert (
        *(f"c{i}.example.com" for i in range(6)),
        "edge.example.net",
        "a.net",
        "b.net",
    ) == deepest[0].chain
    too_long = origins.finish(
        traced,
        {
            "edge.example.net": resolved(
                "edge.example.net", "192.0.2.9", chain=("a.net", "b.net", "c.net")
            )
        },
    )
    assert not too_long.complete
    (failed,) = [o for o in too_long.failed if o.source == "CNAME c0.example.com"]
    assert "longer than 8 links" in failed.detail


def test_a_pool_hostname_inside_the_zone_follows_the_zone_records():
    pool = Pool(id="p", name="p", origins=(PoolOrigin(name="o", address="origin.example.com"),))
    lb = LoadBalancer(id="l", name="lb.example.com", pool_ids=("p",), routes=())
    traced = origins.trace(
        data(
            rec("A", "origin.example.com", "192.0.2.5", proxied=False), lbs=(lb,), pools={"p": pool}
        ),
        proxied_only=True,
    )
    assert [("lb.example.com", "origin.example.com")] == [o.chain for o in traced.origins]
    assert frozenset() == traced.names


def test_unreadable_load_balancers_make_the_origin_set_incomplete():
    traced = origins.trace(
        OriginSources(zone_name=ZONE, load_balancers=None, warnings=("no LB read",)),
        proxied_only=False,
    )
    done = origins.finish(traced, {})
    assert (False, ("no LB read",)) == (done.complete, done.warnings)


def test_bad_record_content_is_a_failed_origin():
    traced = origins.trace(data(rec("A", "x.example.com", "not-an-ip")), proxied_only=False)
    (o,) = traced.origins
    assert (OriginProblem.FAILED, False) == (o.problem, traced.complete)


def mapping(ip: str, region: str = "us-east-1") -> RegionMapping:
    return RegionMapping(ip=parse_ip(ip), vendor=Vendor.AWS, region=region)


def test_coverage_reasons_for_each_way_an_origin_ends_unmapped():
    ips = ["192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.4", "10.0.0.1", "192.0.2.6"]
    found = ZoneOrigins(
        origins=(
            *(Origin(source=f"A r{n}", ip=parse_ip(ip)) for n, ip in enumerate(ips)),
            Origin(source="CNAME d", chain=("d", "gone"), problem=OriginProblem.UNRESOLVED),
            Origin(source="CNAME f", chain=("f", "sick"), problem=OriginProblem.FAILED),
        )
    )
    zplan = ZonePlan(
        zone_id="z",
        zone_name=ZONE,
        unchanged=(
            Upsert(
                mapping=mapping("192.0.2.1"), previous=mapping("192.0.2.1"), scope_key=ScopeKey("s")
            ),
        ),
        upserts=(
            Upsert(mapping=mapping("192.0.2.2"), previous=None, scope_key=ScopeKey("s")),
            Upsert(mapping=mapping("192.0.2.6"), previous=None, scope_key=ScopeKey("s")),
        ),
        skips=(
            Skip(subject="192.0.2.3", reason=SkipReason.OVER_CAPACITY, vendor="aws", region="x"),
        ),
    )
    after = {
        parse_ip("192.0.2.1"): mapping("192.0.2.1"),
        parse_ip("192.0.2.6"): mapping("192.0.2.6", "eu-west-1"),
    }
    failures = [ItemFailure(ip="192.0.2.2", vendor="aws", region="us-east-1", error="x")]
    got = origins.coverage(found, zplan, after=after, failures=failures)
    assert [
        ("192.0.2.1", CoverageState.MAPPED, ""),
        ("192.0.2.2", CoverageState.UNMAPPED, "failed"),
        ("192.0.2.3", CoverageState.UNMAPPED, "over_capacity"),
        ("192.0.2.4", CoverageState.UNMAPPED, "undiscovered_origin"),
        ("10.0.0.1", CoverageState.UNMAPPED, "non_public"),
        ("192.0.2.6", CoverageState.UNMAPPED, "failed"),
        ("gone", CoverageState.UNMAPPED, "unresolved_origin"),
        ("sick", CoverageState.UNMAPPED, "failed"),
    ] == [(c.origin.key, c.state, c.reason) for c in got]
    planned = origins.coverage(found, zplan, after={}, applied=False)
    assert "planned" == planned[1].reason
