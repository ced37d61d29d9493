"""The GCP collector: the real google-cloud-compute and resource-manager clients over HTTP to the
GCP simulator, signed with a real service-account key the simulator verifies."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.config import GcpCollectorConfig
from syncd.model import Address, Scope, ScopeStatus, Skip, SkipReason, Vendor, parse_ip
from syncd.simulators.base import Fault, Request
from syncd.simulators.gcp import GcpSimulator
from syncd.sources.collectors.base import CollectorSettings, Discovery
from syncd.sources.collectors.failures import CollectorError, ScopeDenied
from syncd.sources.collectors.gcp import GcpCollector
from syncd.sources.collectors.runner import run

PROJECT = "web-prod"
SETTINGS = CollectorSettings(scope_timeout=10.0, request_timeout=5.0, max_attempts=3)

# (ip, region, resource) of every external address of the seeded estate.
EXPECTED = {
    ("34.120.0.10", "us-central1", "address/us-central1/lb-ip"),
    ("34.76.0.20", "europe-west1", "address/europe-west1/eu-spare"),
    ("2600:1900:4030:8a1::", "asia-east1", "address/asia-east1/v6-range"),
    ("35.192.0.1", "us-central1", "instance/us-central1-a/vm-a"),
    ("35.195.0.3", "europe-west1", "instance/europe-west1-b/vm-c"),
    ("2600:1900:4010:1a2b:0:1::", "europe-west1", "instance/europe-west1-b/vm-c"),
    ("34.23.0.40", "us-east1", "forwardingRule/us-east1/nlb"),
    ("2600:1900:4020:77::", "us-east1", "forwardingRule/us-east1/nlb6"),
    ("34.77.0.50", "europe-west1", "forwardingRule/europe-west1/alb"),
}
GLOBAL = {
    ("34.149.0.1", "address/global/anycast"),
    ("34.149.0.2", "address/global/anycast-2"),
    ("34.149.0.3", "address/global/anycast-3"),
    ("2600:1901:0:abcd::", "forwardingRule/global/https6"),
}
LISTS = (
    "/aggregated/addresses$",
    "/global/addresses$",
    "/aggregated/instances$",
    "/aggregated/forwardingRules$",
    "/global/forwardingRules$",
)


def seed_estate(sim: GcpSimulator, project: str = PROJECT) -> None:
    sim.add_project(project)
    sim.add_address(project, "us-central1", "lb-ip", "34.120.0.10", labels={"team": "edge"})
    sim.add_address(project, "europe-west1", "eu-spare", "34.76.0.20", status="RESERVED")
    sim.add_address(project, "asia-east1", "v6-range", "2600:1900:4030:8a1::", prefix_length=96)
    sim.add_address(project, "us-central1", "private", "10.128.0.9", address_type="INTERNAL")
    sim.add_address(project, None, "anycast", "34.149.0.1")
    sim.add_address(project, None, "anycast-2", "34.149.0.2")
    sim.add_address(project, None, "anycast-3", "34.149.0.3")
    sim.add_instance(project, "us-central1-a", "vm-a", nat_ips=["35.192.0.1"], labels={"o": "1"})
    sim.add_instance(project, "us-central1-b", "vm-b", nat_ips=["34.120.0.10"])
    sim.add_instance(
        project,
        "europe-west1-b",
        "vm-c",
        nat_ips=["35.195.0.3"],
        ipv6=[("2600:1900:4010:1a2b:0:1::", 96)],
    )
    sim.add_instance(project, "asia-east1-a", "vm-private")
    sim.add_forwarding_rule(project, "us-east1", "nlb", "34.23.0.40")
    sim.add_forwarding_rule(project, "us-east1", "nlb6", "2600:1900:4020:77::/96")
    sim.add_forwarding_rule(project, "us-east1", "ilb", "10.142.0.5", scheme="INTERNAL")
    sim.add_forwarding_rule(project, "europe-west1", "alb", "34.77.0.50", scheme="EXTERNAL_MANAGED")
    sim.add_forwarding_rule(project, None, "https", "34.149.0.1")
    sim.add_forwarding_rule(project, None, "https6", "2600:1901:0:abcd::")
    sim.add_forwarding_rule(project, None, "http", "34.149.0.2")


@pytest.fixture
def sim(gcp_server: GcpSimulator) -> GcpSimulator:
    gcp_server.reset()
    return gcp_server


@pytest.fixture
def own_sim() -> Iterator[GcpSimulator]:
    """A simulator of its own, for a test whose slow answers outlive it."""
    simulator = GcpSimulator()
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture
def key_file(sim: GcpSimulator, tmp_path: Path) -> Path:
    return sim.write_service_account(tmp_path / "syncd-sa.json")


def make_collector(
    sim: GcpSimulator,
    key_file: Path | None,
    *,
    settings: CollectorSettings = SETTINGS,
    **cfg: Any,
) -> GcpCollector:
    config = GcpCollectorConfig(
        name="gcp-test",
        projects=cfg.pop("projects", (PROJECT,)),
        credentials_file=key_file,
        api_endpoint=sim.url,
        resource_manager_endpoint=sim.url,
        **cfg,
    )
    return GcpCollector(config, settings=settings)


def scope(project: str = PROJECT) -> Scope:
    return Scope(collector="gcp-test", vendor=Vendor.GCP, account=project)


def collect(collector: GcpCollector, project: str = PROJECT) -> list[Discovery]:
    return list(collector.collect(scope(project)))


def addresses(found: list[Discovery]) -> list[Address]:
    return [item for item in found if isinstance(item, Address)]


def summary(found: list[Discovery]) -> set[tuple[str, str, str]]:
    return {(str(a.ip), a.region, a.resource) for a in addresses(found)}


# --- what it finds --------------------------------------------------------------------------


def test_finds_addresses_instances_and_forwarding_rules_in_every_region_and_zone(
    sim: GcpSimulator, key_file: Path
) -> None:
    seed_estate(sim)
    found = collect(make_collector(sim, key_file))

    assert EXPECTED == summary(found)
    first = addresses(found)[0]
    assert (Vendor.GCP, "gcp-test", PROJECT, "gcp-test/web-prod") == (
        first.vendor,
        first.collector,
        first.account,
        str(first.scope_key),
    )


def test_every_list_is_followed_through_all_its_pages(sim: GcpSimulator, key_file: Path) -> None:
    seed_estate(sim)
    collect(make_collector(sim, key_file))

    for path in LISTS:
        calls = sim.requests_matching("GET", path)
        assert len(calls) >= 2, path
        assert calls[0].param("pageToken") is None
        assert all(c.param("pageToken") for c in calls[1:]), path
        assert {"500"} == {c.param("maxResults") for c in calls}


def test_ipv6_ranges_are_reduced_to_the_address_gcp_assigns(
    sim: GcpSimulator, key_file: Path
) -> None:
    sim.add_project(PROJECT)
    sim.add_instance(PROJECT, "us-east1-b", "vm6", ipv6=[("2600:1900:4020:9c::", 96)])
    sim.add_forwarding_rule(PROJECT, "us-east1", "nlb6", "2600:1900:4020:77::/96")

    found = addresses(collect(make_collector(sim, key_file)))

    assert [parse_ip("2600:1900:4020:9c::"), parse_ip("2600:1900:4020:77::")] == [
        a.ip for a in found
    ]


def test_internal_addresses_and_forwarding_rules_are_left_out(
    sim: GcpSimulator, key_file: Path
) -> None:
    seed_estate(sim)
    found = collect(make_collector(sim, key_file))

    ips = {str(a.ip) for a in addresses(found)} | {s.subject for s in found if isinstance(s, Skip)}
    assert set() == ips & {"10.128.0.9", "10.142.0.5"}


# --- asking for less (issue 26): a filter and field masks the API applies -----------------


def replayed(sim: GcpSimulator, call: Request, *, drop: str) -> httpx.Response:
    """``call`` sent again by hand without its filter (``drop="filter"``) or its field mask."""
    query = {k: v for k, v in call.query.items() if k != drop}
    headers = {k: v for k, v in call.headers.items() if k in ("authorization",)}
    if drop != "fields" and "x-goog-fieldmask" in call.headers:
        headers["x-goog-fieldmask"] = call.headers["x-goog-fieldmask"]
    return httpx.get(sim.url + call.path, params=query, headers=headers)


EXTERNAL_RULES = '(loadBalancingScheme = "EXTERNAL") OR (loadBalancingScheme = "EXTERNAL_MANAGED")'


@pytest.mark.parametrize(
    ("path", "expected_filter"),
    [
        ("/aggregated/addresses$", 'addressType = "EXTERNAL"'),
        ("/global/addresses$", 'addressType = "EXTERNAL"'),
        ("/aggregated/forwardingRules$", EXTERNAL_RULES),
        ("/global/forwardingRules$", EXTERNAL_RULES),
    ],
)
def test_the_api_leaves_internal_addresses_and_rules_out(
    sim: GcpSimulator, key_file: Path, path: str, expected_filter: str
) -> None:
    seed_estate(sim)
    sim.add_address(PROJECT, None, "psa-range", "10.200.0.0", address_type="INTERNAL")
    sim.add_forwarding_rule(PROJECT, "us-east1", "gke-ilb", "10.142.0.6", scheme="INTERNAL_MANAGED")
    sim.add_forwarding_rule(PROJECT, None, "td", "10.0.0.9", scheme="INTERNAL_SELF_MANAGED")
    sim.page_size = 500  # one page per list, to compare with the same list unfiltered
    found = collect(make_collector(sim, key_file))

    assert EXPECTED == summary(found)
    [call] = sim.requests_matching("GET", path)
    assert expected_filter == call.param("filter")
    assert b"INTERNAL" not in replayed(sim, call, drop="").content
    # Without the filter the same page would have carried the INTERNAL ones too.
    unfiltered = replayed(sim, call, drop="filter").content
    assert b"INTERNAL" in unfiltered
    assert call.sent < len(unfiltered)


def test_every_compute_list_asks_only_for_the_fields_syncd_reads(
    sim: GcpSimulator, key_file: Path
) -> None:
    seed_estate(sim)
    found = collect(make_collector(sim, key_file))

    assert EXPECTED == summary(found)
    for path in LISTS:
        calls = sim.requests_matching("GET", path)
        masks = {c.headers.get("x-goog-fieldmask", "") for c in calls}
        assert 1 == len(masks), path
        assert "nextPageToken" in masks.pop().split(","), path  # or paging would stop
        whole = replayed(sim, calls[0], drop="fields")
        assert 200 == whole.status_code
        assert calls[0].sent < len(whole.content), path


def test_what_the_masks_leave_out_changes_nothing_syncd_reports(
    sim: GcpSimulator, key_file: Path
) -> None:
    """Labels, regions, zones and resource names, IPv4 and IPv6 alike, survive the masks."""
    seed_estate(sim)
    found = addresses(collect(make_collector(sim, key_file)))

    by_resource = {a.resource: (str(a.ip), a.region, a.tags) for a in found}
    assert ("34.120.0.10", "us-central1", (("team", "edge"),)) == by_resource[
        "address/us-central1/lb-ip"
    ]
    assert ("35.192.0.1", "us-central1", (("o", "1"),)) == by_resource[
        "instance/us-central1-a/vm-a"
    ]
    assert {"35.195.0.3", "2600:1900:4010:1a2b:0:1::"} == {
        str(a.ip) for a in found if a.resource == "instance/europe-west1-b/vm-c"
    }
    assert ("34.77.0.50", "europe-west1", ()) == by_resource["forwardingRule/europe-west1/alb"]


def test_an_ip_both_reserved_and_in_use_is_reported_once_as_the_address(
    sim: GcpSimulator, key_file: Path
) -> None:
    seed_estate(sim)
    found = addresses(collect(make_collector(sim, key_file)))

    assert ["address/us-central1/lb-ip"] == [
        a.resource for a in found if str(a.ip) == "34.120.0.10"
    ]
    assert len(found) == len({a.ip for a in found})


def test_labels_become_tags(sim: GcpSimulator, key_file: Path) -> None:
    seed_estate(sim)
    found = {a.resource: a.tags for a in addresses(collect(make_collector(sim, key_file)))}

    assert (("team", "edge"),) == found["address/us-central1/lb-ip"]
    assert (("o", "1"),) == found["instance/us-central1-a/vm-a"]


def test_global_anycast_resources_are_skipped_with_their_reason(
    sim: GcpSimulator, key_file: Path
) -> None:
    seed_estate(sim)
    found = collect(make_collector(sim, key_file))

    skips = [s for s in found if isinstance(s, Skip)]
    assert GLOBAL == {(s.subject, s.detail) for s in skips}
    assert {SkipReason.GLOBAL_ANYCAST} == {s.reason for s in skips}
    assert all(a.region != "global" for a in addresses(found))


def test_global_resources_map_to_global_region_when_configured(
    sim: GcpSimulator, key_file: Path
) -> None:
    seed_estate(sim)
    found = collect(make_collector(sim, key_file, global_region="us-central1"))

    assert [] == [s for s in found if isinstance(s, Skip)]
    assert {(ip, "us-central1", res) for ip, res in GLOBAL} == summary(found) - EXPECTED


def test_an_address_that_is_not_an_ip_is_skipped_as_invalid(
    sim: GcpSimulator, key_file: Path
) -> None:
    sim.add_project(PROJECT)
    sim.add_address(PROJECT, "us-east1", "odd", "34.1.2.300")

    found = collect(make_collector(sim, key_file))

    assert [("34.1.2.300", SkipReason.INVALID_IP, "address/us-east1/odd")] == [
        (s.subject, s.reason, s.detail) for s in found if isinstance(s, Skip)
    ]


# --- retries, failures and their cost ---------------------------------------------------------


def test_throttled_page_is_requested_again_with_the_same_page_token(
    sim: GcpSimulator, key_file: Path
) -> None:
    sim.add_project(PROJECT)
    for i in range(5):
        sim.add_instance(PROJECT, f"us-central1-{'abc'[i % 3]}", f"vm{i}", nat_ips=[f"35.1.0.{i}"])
    items = make_collector(sim, key_file).collect(scope())

    first = next(items)  # the first page of instances has been read
    sim.inject(GcpSimulator.fault(429, path="/aggregated/instances$"))
    rest = list(items)

    calls = sim.requests_matching("GET", "/aggregated/instances$")
    assert [200, 429, 200, 200] == [c.status for c in calls]
    assert calls[1].param("pageToken") == calls[2].param("pageToken")
    assert calls[1].param("pageToken")
    assert {f"35.1.0.{i}" for i in range(5)} == {str(a.ip) for a in addresses([first, *rest])}


def test_rate_limit_answered_as_403_is_retried_too(sim: GcpSimulator, key_file: Path) -> None:
    seed_estate(sim)
    sim.inject(GcpSimulator.fault(403, reason="rateLimitExceeded", path="/aggregated/addresses$"))

    assert EXPECTED == summary(collect(make_collector(sim, key_file)))


def test_one_failing_project_does_not_stop_the_others(sim: GcpSimulator, key_file: Path) -> None:
    seed_estate(sim)
    seed_estate(sim, "web-broken")
    sim.inject(GcpSimulator.fault(500, path="/projects/web-broken/", times=1000))
    collector = make_collector(sim, key_file, projects=(PROJECT, "web-broken"))

    with ThreadPoolExecutor(max_workers=4) as pool:
        inventory = run([collector], executor=pool)

    outcomes = {o.scope.account: (o.status, o.reason) for o in inventory.scopes}
    assert {
        PROJECT: (ScopeStatus.OK, None),
        "web-broken": (ScopeStatus.FAILED, "server_error"),
    } == outcomes
    assert EXPECTED == {(str(a.ip), a.region, a.resource) for a in inventory.addresses}


def test_project_with_compute_disabled_is_skipped_not_failed(
    sim: GcpSimulator, key_file: Path
) -> None:
    seed_estate(sim)
    sim.add_project("billing-only", compute_enabled=False)
    collector = make_collector(sim, key_file, projects=(PROJECT, "billing-only"))

    with pytest.raises(ScopeDenied) as denied:
        collect(collector, "billing-only")
    with ThreadPoolExecutor(max_workers=2) as pool:
        inventory = run([collector], executor=pool)

    assert "api_disabled" == denied.value.reason
    assert {PROJECT: ScopeStatus.OK, "billing-only": ScopeStatus.SKIPPED} == {
        o.scope.account: o.status for o in inventory.scopes
    }
    assert inventory.complete()


def test_unknown_project_fails_as_not_found(sim: GcpSimulator, key_file: Path) -> None:
    with pytest.raises(CollectorError) as failed:
        collect(make_collector(sim, key_file), "no-such-project")

    assert ("not_found", False) == (failed.value.reason, failed.value.retryable)
    assert "no-such-project" in str(failed.value)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        pytest.param(GcpSimulator.fault(400, times=99), "error", id="400"),
        pytest.param(GcpSimulator.fault(401, times=99), "auth", id="401"),
        pytest.param(GcpSimulator.fault(403, times=99), "auth", id="403"),
        pytest.param(GcpSimulator.fault(404, times=99), "not_found", id="404"),
        pytest.param(GcpSimulator.fault(429, times=99), "throttled", id="429"),
        pytest.param(GcpSimulator.fault(500, times=99), "server_error", id="500"),
        pytest.param(GcpSimulator.fault(502, times=99), "server_error", id="502"),
        pytest.param(GcpSimulator.fault(503, times=99), "server_error", id="503"),
        pytest.param(GcpSimulator.fault(504, times=99), "server_error", id="504"),
        pytest.param(Fault(drop=True, times=99), "unreachable", id="dropped"),
        pytest.param(
            Fault(status=200, body=b'{"kind": "compute#x"}', reset_mid_body=True, times=99),
            "unreachable",
            id="reset-mid-body",
        ),
        pytest.param(Fault(status=200, body=b"<html/>", times=99), "malformed", id="not-json"),
        pytest.param(
            Fault(status=200, body=b'{"items": 7}', times=99), "malformed", id="bad-shape"
        ),
    ],
)
def test_no_google_exception_escapes(
    sim: GcpSimulator, key_file: Path, fault: Fault, reason: str
) -> None:
    """Whatever the API or the wire does, the collector raises our CollectorError."""
    seed_estate(sim)
    sim.inject(fault)
    settings = CollectorSettings(scope_timeout=2.0, request_timeout=1.0, max_attempts=2)

    with pytest.raises(CollectorError) as failed:
        collect(make_collector(sim, key_file, settings=settings))

    assert reason == failed.value.reason
    assert "syncd.sources.collectors.failures" == type(failed.value).__module__


def test_always_failing_project_costs_at_most_its_scope_timeout(
    sim: GcpSimulator, key_file: Path
) -> None:
    """Retries stop at the scope deadline even when attempts are left."""
    seed_estate(sim)
    sim.inject(GcpSimulator.fault(503, times=10_000))
    settings = CollectorSettings(scope_timeout=1.0, request_timeout=5.0, max_attempts=1000)

    start = time.monotonic()
    with pytest.raises(CollectorError) as failed:
        collect(make_collector(sim, key_file, settings=settings))
    elapsed = time.monotonic() - start

    assert ("server_error", True) == (failed.value.reason, failed.value.retryable)
    assert elapsed < 1.0 + 1.0  # unbounded, 1000 attempts would take minutes
    assert len(sim.requests_matching("GET", "/aggregated/addresses$")) > 2


def test_slow_api_is_cut_off_at_the_scope_deadline(own_sim: GcpSimulator, tmp_path: Path) -> None:
    """Each attempt's timeout is what the scope has left, not the full request_timeout."""
    seed_estate(own_sim)
    own_sim.inject(Fault(status=200, delay=2.5, times=10_000))
    settings = CollectorSettings(scope_timeout=0.8, request_timeout=30.0, max_attempts=5)
    key_file = own_sim.write_service_account(tmp_path / "sa.json")

    start = time.monotonic()
    with pytest.raises(CollectorError) as failed:
        collect(make_collector(own_sim, key_file, settings=settings))
    elapsed = time.monotonic() - start

    assert "timeout" == failed.value.reason
    assert elapsed < 0.8 + 1.0  # one uncut attempt alone would take 2.5 s


# --- projects and credentials -----------------------------------------------------------------


def test_projects_all_scans_every_active_project_found_by_search(
    sim: GcpSimulator, key_file: Path
) -> None:
    for project in ("analytics", "web-prod", "web-staging"):
        sim.add_project(project)
    sim.add_project("old-thing", state="DELETE_REQUESTED")

    scopes = list(make_collector(sim, key_file, projects="all").scopes())

    assert [scope(p) for p in ("analytics", "web-prod", "web-staging")] == scopes
    searches = sim.requests_matching("GET", r"/v3/projects:search$")
    assert 2 == len(searches)
    assert {"state:ACTIVE"} == {r.param("query") for r in searches}


def test_project_search_failure_raises_collector_error(sim: GcpSimulator, key_file: Path) -> None:
    sim.inject(GcpSimulator.fault(403, path=r"/v3/projects:search$"))

    with pytest.raises(CollectorError) as failed:
        list(make_collector(sim, key_file, projects="all").scopes())

    assert "auth" == failed.value.reason


def test_service_account_key_signs_every_request(sim: GcpSimulator, key_file: Path) -> None:
    """The simulator verifies each bearer JWT against the key it wrote (no anonymous calls)."""
    seed_estate(sim)
    collector = make_collector(sim, key_file, projects="all")

    found = [item for s in collector.scopes() for item in collector.collect(s)]

    assert EXPECTED == summary(found)
    assert sim.requests_matching()
    assert all(r.status == 200 for r in sim.requests_matching())
    assert all(r.headers["authorization"].startswith("Bearer ey") for r in sim.requests_matching())


def test_key_the_api_does_not_trust_fails_as_auth(sim: GcpSimulator, tmp_path: Path) -> None:
    seed_estate(sim)
    forged = sim.write_service_account(tmp_path / "forged.json", trusted=False)
    collector = make_collector(sim, forged, projects="all")

    with pytest.raises(CollectorError) as listing:
        list(collector.scopes())
    with pytest.raises(CollectorError) as collecting:
        collect(collector)

    assert ("auth", "auth") == (listing.value.reason, collecting.value.reason)
    assert {401} == {r.status for r in sim.requests_matching()}


def test_application_default_credentials_are_used_without_a_key_file(
    sim: GcpSimulator, key_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_estate(sim)
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))

    assert EXPECTED == summary(collect(make_collector(sim, None)))


def test_unreadable_key_file_fails_as_auth_without_its_content(
    sim: GcpSimulator, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.json"
    broken.write_text('{"type": "service_account", "private_key": "-----BEGIN SECRET-----"}')

    with pytest.raises(CollectorError) as failed:
        collect(make_collector(sim, broken))

    assert "auth" == failed.value.reason
    assert "SECRET" not in str(failed.value)
    assert [] == sim.requests_matching()
