"""Origins as Cloudflare reaches them (issue 16), end to end over loopback.

The Cloudflare simulator holds the zone's records, load balancers and pools; a real DNS server
(the DNS simulator, on dnslib) answers for names outside the zone; syncd resolves with dnspython.
"""

from __future__ import annotations

import ipaddress
import sqlite3
from pathlib import Path

import pytest

from syncd.model import (
    CoverageState,
    OriginProblem,
    RunResult,
    SkipReason,
    TieredCache,
    ZoneOrigins,
    ZoneReport,
)
from syncd.run import once as sync
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.simulators.dns import DnsSimulator
from syncd.views import render
from tests.conftest import ZONE, settings_for

ALB = "my-alb-123.us-east-1.elb.amazonaws.com"
STATIC = [
    {"ip": "198.51.100.10", "vendor": "aws", "region": "us-east-1"},  # the ALB, first address
    {"ip": "198.51.100.11", "vendor": "aws", "region": "us-east-1"},  # the ALB after scaling
    {"ip": "198.51.100.20", "vendor": "aws", "region": "eu-west-1"},  # via a chain in the zone
    {"ip": "198.51.100.30", "vendor": "gcp", "region": "us-central1"},  # an A record
    {"ip": "203.0.113.40", "vendor": "azure", "region": "westeurope"},  # pool hostname origin
    {"ip": "203.0.113.41", "vendor": "oci", "region": "eu-frankfurt-1"},  # pool IP origin
    {"ip": "203.0.113.99", "vendor": "aws", "region": "us-west-2"},  # not an origin
]


def _settings(cf: CloudflareSimulator, dns: DnsSimulator, tmp_path: Path, **zone: object):
    zones = [{"id": ZONE, "name": "example.com", "origins": "dns", **zone}]
    resolver = {"nameservers": [dns.nameserver], "timeout": "1s"}
    return settings_for(cf, tmp_path, static=STATIC, zones=zones, resolver=resolver)


def _estate(cf: CloudflareSimulator, dns: DnsSimulator) -> None:
    cf.add_dns_record(ZONE, "CNAME", "www.example.com", ALB)
    cf.add_dns_record(ZONE, "CNAME", "shop.example.com", "app.example.com")
    cf.add_dns_record(ZONE, "CNAME", "app.example.com", "app-origin.example.com", proxied=False)
    cf.add_dns_record(ZONE, "A", "app-origin.example.com", "198.51.100.20", proxied=False)
    cf.add_dns_record(ZONE, "A", "api.example.com", "198.51.100.30")
    cf.add_dns_record(ZONE, "TXT", "example.com", "v=spf1 -all")
    hostname_pool = cf.add_pool("eu", [{"address": "origin-eu.example.net", "name": "eu-1"}])
    ip_pool = cf.add_pool(
        "fra", [{"address": "203.0.113.41"}, {"address": "203.0.113.42", "enabled": False}]
    )
    cf.add_load_balancer(
        ZONE, "lb.example.com", default_pools=[hostname_pool], fallback_pool=ip_pool
    )
    dns.set_cname(ALB, "dualstack.my-alb-123.us-east-1.elb.amazonaws.com")
    dns.set_addresses("dualstack.my-alb-123.us-east-1.elb.amazonaws.com", "198.51.100.10")
    dns.set_addresses("origin-eu.example.net", "203.0.113.40")


def test_exactly_the_origins_cloudflare_reaches_are_mapped(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    report = sync.run_once(_settings(cf, dns_sim, tmp_path))
    assert RunResult.SUCCESS == report.result
    assert {
        "198.51.100.10": ("aws", "us-east-1"),
        "198.51.100.20": ("aws", "eu-west-1"),
        "198.51.100.30": ("gcp", "us-central1"),
        "203.0.113.40": ("azure", "westeurope"),
        "203.0.113.41": ("oci", "eu-frankfurt-1"),
    } == cf.mappings(ZONE)
    (zone,) = report.zones
    assert 1.0 == zone.coverage_ratio
    chains: dict[str, set] = {}
    for o in _origins(zone).origins:
        chains.setdefault(o.key, set()).add((o.source, o.chain))
    assert (
        "CNAME www.example.com",
        ("www.example.com", ALB, "dualstack.my-alb-123.us-east-1.elb.amazonaws.com"),
    ) in chains["198.51.100.10"]
    assert (
        "CNAME shop.example.com",
        ("shop.example.com", "app.example.com", "app-origin.example.com"),
    ) in chains["198.51.100.20"]
    assert (
        "load balancer lb.example.com, pool eu, origin eu-1",
        ("lb.example.com", "origin-eu.example.net"),
    ) in chains["203.0.113.40"]
    assert "203.0.113.42" not in chains, "a disabled pool origin gets no traffic"
    assert True is _tiered(zone).smart_on


def test_load_balancer_addresses_change_new_mapped_released_deleted(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    settings = _settings(cf, dns_sim, tmp_path, policy="sync")
    assert RunResult.SUCCESS == sync.run_once(settings).result
    dns_sim.set_addresses("dualstack.my-alb-123.us-east-1.elb.amazonaws.com", "198.51.100.11")
    report = sync.run_once(settings)
    assert RunResult.SUCCESS == report.result
    held = cf.mappings(ZONE)
    assert ("aws", "us-east-1") == held["198.51.100.11"]
    assert "198.51.100.10" not in held
    assert (1, 1) == (report.zones[0].created, report.zones[0].deleted)


def test_dangling_cname_is_named_and_the_run_succeeds(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    cf.add_dns_record(ZONE, "CNAME", "old.example.com", "gone.example.org")
    cf.add_dns_record(ZONE, "CNAME", "stale.example.com", "missing.example.com")
    report = sync.run_once(_settings(cf, dns_sim, tmp_path))
    assert RunResult.SUCCESS == report.result
    (zone,) = report.zones
    skips = {
        s.subject: s.detail for s in zone.plan.skips if s.reason is SkipReason.UNRESOLVED_ORIGIN
    }
    assert {"CNAME old.example.com", "CNAME stale.example.com"} == set(skips)
    assert "gone.example.org: NXDOMAIN" == skips["CNAME old.example.com"]
    assert "missing.example.com" in skips["CNAME stale.example.com"]
    unmapped = {c.origin.key: c.reason for c in zone.coverage if c.state is CoverageState.UNMAPPED}
    assert {
        "gone.example.org": "unresolved_origin",
        "missing.example.com": "unresolved_origin",
    } == unmapped
    assert 5 / 7 == pytest.approx(zone.coverage_ratio)


@pytest.mark.parametrize("fault", ["silent", "servfail", "refuse"])
def test_resolver_failure_fails_the_run_and_deletes_nothing(cf, dns_sim, tmp_path, fault):
    _estate(cf, dns_sim)
    settings = _settings(cf, dns_sim, tmp_path, policy="sync")
    assert RunResult.SUCCESS == sync.run_once(settings).result
    before = cf.mappings(ZONE)
    dns_sim.fault(ALB, fault)
    report = sync.run_once(settings)
    assert RunResult.PARTIAL == report.result
    assert before == cf.mappings(ZONE)
    (zone,) = report.zones
    (failed,) = _origins(zone).failed
    assert ALB in failed.detail
    assert ("CNAME www.example.com", OriginProblem.FAILED) == (failed.source, failed.problem)
    assert 0 == zone.deleted
    assert {SkipReason.ORIGINS_INCOMPLETE} == {
        s.reason for s in zone.plan.skips if s.subject == "198.51.100.10"
    }


def test_no_reachable_resolver_fails_every_cname_origin(cf, tmp_path):
    cf.add_dns_record(ZONE, "CNAME", "www.example.com", ALB)
    zones = [{"id": ZONE, "name": "example.com"}]
    settings = settings_for(
        cf,
        tmp_path,
        static=STATIC,
        zones=zones,
        resolver={"nameservers": ["127.0.0.1:9"], "timeout": "300ms"},
    )
    report = sync.run_once(settings)
    assert RunResult.PARTIAL == report.result
    (failed,) = _origins(report.zones[0]).failed
    assert "timeout" in failed.detail


def test_chains_too_long_loops_bad_pool_addresses_and_missing_pools_are_named(
    cf, dns_sim, tmp_path
):
    for i in range(9):
        cf.add_dns_record(ZONE, "CNAME", f"c{i}.example.com", f"c{i + 1}.example.com")
    cf.add_dns_record(ZONE, "A", "c9.example.com", "198.51.100.30")
    cf.add_dns_record(ZONE, "CNAME", "loop-a.example.com", "loop-b.example.com")
    cf.add_dns_record(ZONE, "CNAME", "loop-b.example.com", "loop-a.example.com")
    cf.add_dns_record(ZONE, "CNAME", "far.example.com", "l0.example.net")
    dns_sim.set_cname("l0.example.net", "l1.example.net")
    dns_sim.set_cname("l1.example.net", "l0.example.net")
    bad = cf.add_pool("bad", [{"address": "not a host!"}])
    cf.add_load_balancer(ZONE, "lb.example.com", default_pools=[bad, "f" * 32], fallback_pool=bad)
    report = sync.run_once(_settings(cf, dns_sim, tmp_path))
    (zone,) = report.zones
    assert RunResult.PARTIAL == report.result
    failed = {o.source: o.detail for o in _origins(zone).failed}
    assert "CNAME chain longer than 8 links" == failed["CNAME c0.example.com"]
    assert failed["CNAME loop-a.example.com"].startswith("CNAME loop")
    assert "CNAME loop" in failed["CNAME far.example.com"]
    assert (
        "neither an IP address nor a hostname"
        in failed["load balancer lb.example.com, pool bad, origin origin-0"]
    )
    assert "no such pool (HTTP 404)" in failed[f"load balancer lb.example.com, pool {'f' * 32}"]
    assert ("198.51.100.30",) == tuple(str(ip) for ip in _origins(zone).addresses)


def test_load_balancing_403_warns_once_and_the_run_goes_on(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    cf.deny("load_balancing")
    report = sync.run_once(_settings(cf, dns_sim, tmp_path))
    (zone,) = report.zones
    assert RunResult.SUCCESS == report.result
    (warning,) = _origins(zone).warnings
    assert "Load Balancing: Read" in warning
    assert "203.0.113.41" not in cf.mappings(ZONE)
    assert "198.51.100.10" in cf.mappings(ZONE)


def test_smart_tiered_cache_off_and_403_are_reported(cf, dns_sim, tmp_path):
    cf.set_smart_topology(ZONE, False)
    report = sync.run_once(_settings(cf, dns_sim, tmp_path))
    assert False is _tiered(report.zones[0]).smart_on
    cf.deny("zone_settings")
    verify = sync.Options(verify=True)  # the settings are cached until the zone is verified
    report = sync.run_once(_settings(cf, dns_sim, tmp_path), options=verify)
    tiered = _tiered(report.zones[0])
    assert None is tiered.smart_on
    assert "the token lacks Zone Settings: Read (HTTP 403)" in tiered.warning
    assert [] == cf.requests_matching("PATCH", "tiered"), "syncd never changes the setting"


def test_proxied_only_follows_only_proxied_records(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    cf.add_dns_record(ZONE, "CNAME", "grey.example.com", "grey.example.net", proxied=False)
    report = sync.run_once(_settings(cf, dns_sim, tmp_path, proxied_only=True))
    sources = {o.source for o in _origins(report.zones[0]).origins}
    assert "CNAME grey.example.com" not in sources
    assert "CNAME shop.example.com" in sources, "the unproxied records it leads to are followed"


def _origins(zone: ZoneReport) -> ZoneOrigins:
    assert zone.origins is not None, f"zone {zone.zone_name} reports no origins"
    return zone.origins


def _tiered(zone: ZoneReport) -> TieredCache:
    assert zone.tiered_cache is not None, f"zone {zone.zone_name} reports no tiered cache check"
    return zone.tiered_cache


def test_pools_the_token_may_not_read_are_a_warning_and_hold_deletions(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    settings = _settings(cf, dns_sim, tmp_path, policy="sync")
    assert RunResult.SUCCESS == sync.run_once(settings).result
    cf.deny("pools")
    dns_sim.set_addresses("dualstack.my-alb-123.us-east-1.elb.amazonaws.com", "198.51.100.11")
    report = sync.run_once(settings, options=sync.Options(verify=True))
    (zone,) = report.zones
    assert RunResult.SUCCESS == report.result, "a missing permission is a warning"
    (warning,) = _origins(zone).warnings
    assert "Load Balancing: Read" in warning
    assert "the account's pools (2 of them)" in warning
    assert "203.0.113.41" in cf.mappings(ZONE), "no deletion while pools are unknown"
    assert "198.51.100.10" in cf.mappings(ZONE)
    assert "198.51.100.11" in cf.mappings(ZONE), "what is known is still mapped"


def test_a_steady_run_reads_only_the_records_and_uses_the_cached_facts(cf, dns_sim, tmp_path):
    """Zone details, load balancers, pools and Tiered Cache are read when the zone is verified;
    between verifications a run reads the zone's DNS records only, and sees what they change."""
    _estate(cf, dns_sim)
    settings = _settings(cf, dns_sim, tmp_path)
    first = sync.run_once(settings)
    assert RunResult.SUCCESS == first.result
    for read in ("tiered_caching", "smart_topology", f"zones/{ZONE}$", "load_balancers$", "pools/"):
        assert cf.requests_matching("GET", read), f"the first run reads {read}"
    cf.clear_requests()
    cf.set_smart_topology(ZONE, False)  # seen at the next verification, not before
    cf.add_dns_record(ZONE, "A", "new.example.com", "198.51.100.11")  # seen at once
    steady = sync.run_once(settings)
    assert RunResult.SUCCESS == steady.result
    paths = sorted(r.path.split(f"{ZONE}/")[-1] for r in cf.requests if r.method == "GET")
    assert ["dns_records", "origin/cloud_regions/supported_regions"] == paths
    (zone,) = steady.zones
    assert _origins(zone).addresses == _origins(first.zones[0]).addresses | {
        ipaddress.ip_address("198.51.100.11")
    }, "the pools' origins still come from the cached facts"
    assert True is _tiered(zone).smart_on
    assert "198.51.100.11" in cf.mappings(ZONE)
    verified = sync.run_once(settings, options=sync.Options(verify=True))
    assert False is _tiered(verified.zones[0]).smart_on


def test_facts_that_cannot_be_trusted_are_read_again(cf, dns_sim, tmp_path):
    """A settings read that failed by chance is read again next run (the load balancers read
    with it are kept); a corrupt cached row is read again."""
    _estate(cf, dns_sim)
    settings = _settings(cf, dns_sim, tmp_path)
    cf.inject(Fault(status=500, path="tiered_caching", times=4))  # every attempt
    first = sync.run_once(settings)
    assert "Smart Tiered Cache not checked" in _tiered(first.zones[0]).warning
    cf.clear_requests()
    second = sync.run_once(settings)
    assert True is _tiered(second.zones[0]).smart_on, "the failed read was not cached"
    assert cf.requests_matching("GET", "tiered_caching")
    assert [] == cf.requests_matching("GET", "load_balancers$"), "the rest was kept"
    with sqlite3.connect(settings.state.path) as db:
        db.execute("UPDATE facts SET data = '{not json'")
    cf.clear_requests()
    third = sync.run_once(settings)
    assert True is _tiered(third.zones[0]).smart_on
    assert cf.requests_matching("GET", "load_balancers"), "the corrupt row was read again"


def test_tiered_cache_settings_are_read_again_every_six_intervals(cf, dns_sim, tmp_path):
    """They only inform, so a verification re-reads the load balancers, not them."""
    _estate(cf, dns_sim)
    settings = _settings(cf, dns_sim, tmp_path)
    now = [1_000_000.0]
    sync.run_once(settings, clock=lambda: now[0])
    cf.set_smart_topology(ZONE, False)
    cf.clear_requests()
    now[0] += 2 * 3600  # the zone is verified
    verified = sync.run_once(settings, clock=lambda: now[0])
    assert "due" == verified.zones[0].listed_because
    assert cf.requests_matching("GET", "load_balancers$"), "verification re-reads these"
    assert [] == cf.requests_matching("GET", "tiered_caching")
    assert True is _tiered(verified.zones[0]).smart_on
    now[0] += 5 * 3600  # seven hours since they were read: past six verify_intervals
    assert False is _tiered(sync.run_once(settings, clock=lambda: now[0]).zones[0]).smart_on


RULE_ONLY = {"ip": "192.0.2.50", "vendor": "gcp", "region": "europe-west1"}
SET_ONLY = {"ip": "192.0.2.60", "vendor": "aws", "region": "ap-southeast-1"}


def _rules_and_pool_sets(cf: CloudflareSimulator) -> None:
    """A load balancer whose default pool is the hostname pool, a disabled rule naming a pool
    of its own (as a rule's fallback) and a pool set naming another: each origin only there."""
    default = cf.add_pool("default", [{"address": "203.0.113.41"}])
    rule_pool = cf.add_pool("rule-eu", [{"address": RULE_ONLY["ip"], "name": "eu-1"}])
    set_pool = cf.add_pool("set-apac", [{"address": SET_ONLY["ip"], "name": "sg-1"}])
    cf.add_load_balancer(
        ZONE,
        "rules.example.com",
        default_pools=[default],
        fallback_pool=default,
        rules=[
            {
                "name": "eu traffic",
                "condition": 'ip.src.country eq "DE"',
                "disabled": True,
                "overrides": {"fallback_pool": rule_pool},
            }
        ],
        pool_sets=[{"name": "apac", "overrides": {"pools": [set_pool]}}],
    )


def test_origins_only_a_rule_or_a_pool_set_reaches_are_mapped_shown_and_kept(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    _rules_and_pool_sets(cf)
    zones = [{"id": ZONE, "name": "example.com", "origins": "dns", "policy": "sync"}]
    resolver = {"nameservers": [dns_sim.nameserver], "timeout": "1s"}
    settings = settings_for(
        cf, tmp_path, static=[*STATIC, RULE_ONLY, SET_ONLY], zones=zones, resolver=resolver
    )
    first = sync.run_once(settings)
    assert RunResult.SUCCESS == first.result
    held = cf.mappings(ZONE)
    assert ("gcp", "europe-west1") == held[RULE_ONLY["ip"]]
    assert ("aws", "ap-southeast-1") == held[SET_ONLY["ip"]]
    shown = render.origins(first, "table")
    assert (
        "load balancer rules.example.com, rule 'eu traffic' (disabled), pool rule-eu, origin eu-1"
        in shown
    )
    assert "load balancer rules.example.com, pool set 'apac', pool set-apac, origin sg-1" in shown
    # The ALB moves: its old address is deleted (deletions are not held), the rule's and the
    # pool set's origins stay mapped while they name them.
    dns_sim.set_addresses("dualstack.my-alb-123.us-east-1.elb.amazonaws.com", "198.51.100.11")
    second = sync.run_once(settings, options=sync.Options(verify=True))
    assert RunResult.SUCCESS == second.result
    held = cf.mappings(ZONE)
    assert "198.51.100.10" not in held
    assert {RULE_ONLY["ip"], SET_ONLY["ip"]} <= set(held)
    assert 1 == second.zones[0].deleted


def test_a_record_without_content_is_a_skip_that_holds_the_zones_deletions(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    settings = _settings(cf, dns_sim, tmp_path, policy="sync")
    assert RunResult.SUCCESS == sync.run_once(settings).result
    record = cf.add_dns_record(ZONE, "A", "odd.example.com", "192.0.2.99", omit=["content"])
    dns_sim.set_addresses("dualstack.my-alb-123.us-east-1.elb.amazonaws.com", "198.51.100.11")
    report = sync.run_once(settings)
    (zone,) = report.zones
    assert RunResult.SUCCESS == report.result, "a skip, not a failed zone"
    assert not zone.error
    skips = {
        s.subject: s.detail for s in zone.plan.skips if s.reason is SkipReason.MALFORMED_ORIGIN
    }
    assert {"A odd.example.com": f"record {record} has no content"} == skips
    unmapped = {c.origin.key: c.reason for c in zone.coverage if c.state is CoverageState.UNMAPPED}
    assert "malformed_record" == unmapped["odd.example.com"]
    held = cf.mappings(ZONE)
    assert "198.51.100.11" in held, "what is known is still mapped"
    assert "198.51.100.10" in held, "no deletion while an origin could not be read"
    assert 0 == zone.deleted


def test_a_load_balancer_without_a_name_and_a_pool_origin_without_an_address_are_skips(
    cf, dns_sim, tmp_path
):
    pool = cf.add_pool("p", [{"address": None, "name": "blank"}, {"address": "203.0.113.41"}])
    lb = cf.add_load_balancer(
        ZONE, "lb.example.com", default_pools=[pool], fallback_pool=pool, omit=["name"]
    )
    report = sync.run_once(_settings(cf, dns_sim, tmp_path))
    (zone,) = report.zones
    assert RunResult.SUCCESS == report.result
    skips = {
        s.subject: s.detail for s in zone.plan.skips if s.reason is SkipReason.MALFORMED_ORIGIN
    }
    assert f"load balancer {lb} has no valid name" == skips[f"load balancer {lb}"]
    assert (
        f"pool {pool} origin blank has no address"
        == skips[f"load balancer {lb}, pool p, origin blank"]
    )
    assert "203.0.113.41" in cf.mappings(ZONE), "its pools are followed all the same"


def test_a_zone_whose_details_name_no_account_reads_its_pools_through_the_listing(
    cf, dns_sim, tmp_path
):
    _estate(cf, dns_sim)
    cf.hide_account(ZONE)
    report = sync.run_once(_settings(cf, dns_sim, tmp_path))
    assert RunResult.SUCCESS == report.result
    assert "203.0.113.41" in cf.mappings(ZONE)
    assert [] == list(_origins(report.zones[0]).warnings)
    assert cf.requests_matching("GET", "/zones$")[0].param("name") == "example.com"


def test_without_an_account_anywhere_the_warning_names_the_field(cf, dns_sim, tmp_path):
    _estate(cf, dns_sim)
    cf.hide_account(ZONE)
    cf.zone_read = False  # the listing refuses too
    report = sync.run_once(_settings(cf, dns_sim, tmp_path, policy="sync"))
    (warning,) = _origins(report.zones[0]).warnings
    assert "Zone: Read" in warning
    assert "account.id" in warning
