"""Safe reconciliation over HTTP: ownership, deletions, protection, origins, several zones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.model import RunResult, SkipReason
from syncd.run import once as sync
from syncd.simulators.base import Fault
from syncd.simulators.gcp import GcpSimulator
from syncd.sources import collectors
from tests.conftest import ZONE, ZONE2, settings_for


def static(*ips: str, region: str = "us-east-1") -> list[dict[str, str]]:
    return [{"ip": ip, "vendor": "aws", "region": region} for ip in ips]


def zone(**extra: Any) -> dict[str, Any]:
    return {"id": ZONE, "name": "example.com", "origins": "all", **extra}


IPS = [f"192.0.2.{i}" for i in range(1, 13)]


def reasons(report, reason: SkipReason) -> list[str]:
    return sorted(s.subject for s in report.zones[0].plan.skips if s.reason is reason)


def test_upsert_only_never_deletes(cf, tmp_path: Path):
    sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:3]), zones=[zone()]))
    report = sync.run_once(settings_for(cf, tmp_path, static=static(IPS[0]), zones=[zone()]))
    assert RunResult.SUCCESS == report.result
    assert set(IPS[:3]) == set(cf.mappings(ZONE))
    assert [] == cf.requests_matching("DELETE")


def test_sync_deletes_exactly_owned_undiscovered_and_spares_hand_made(cf, tmp_path: Path):
    cf.set_mapping(ZONE, "198.51.100.9", "gcp", "us-central1")  # made by hand
    policy = zone(policy="sync")
    sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:3]), zones=[policy]))
    report = sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=[policy]))
    assert (RunResult.SUCCESS, 1) == (report.result, report.zones[0].deleted)
    assert {IPS[0], IPS[1], "198.51.100.9"} == set(cf.mappings(ZONE))
    (delete,) = cf.requests_matching("DELETE")
    assert [IPS[2]] == delete.json()


def test_hand_made_mapping_that_differs_is_reported_not_overwritten(cf, tmp_path: Path):
    cf.set_mapping(ZONE, IPS[0], "aws", "eu-west-1")
    report = sync.run_once(settings_for(cf, tmp_path, static=static(IPS[0]), zones=[zone()]))
    assert [IPS[0]] == reasons(report, SkipReason.FOREIGN_MAPPING)
    assert ("aws", "eu-west-1") == cf.mappings(ZONE)[IPS[0]]


def test_mass_delete_guard_trips_and_allow_mass_delete_passes_it(cf, tmp_path: Path):
    policy = zone(policy="sync")
    sync.run_once(settings_for(cf, tmp_path, static=static(*IPS), zones=[policy]))
    shrunk = settings_for(cf, tmp_path, static=static(*IPS[:6]), zones=[policy])
    plan = sync.run_once(shrunk, options=sync.Options(dry_run=True))
    assert "would delete 6 of 12" in plan.zones[0].plan.guard
    refused = sync.run_once(shrunk)
    assert RunResult.PARTIAL == refused.result, "a refusal makes the run exit 1"
    assert 12 == len(cf.mappings(ZONE))
    allowed = sync.run_once(shrunk, options=sync.Options(allow_mass_delete=True))
    assert (RunResult.SUCCESS, 6) == (allowed.result, allowed.zones[0].deleted)
    assert set(IPS[:6]) == set(cf.mappings(ZONE))


def test_lost_registry_means_no_deletions_until_adopted(cf, tmp_path: Path):
    policy = zone(policy="sync")
    sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:3]), zones=[policy]))
    (tmp_path / "state.db").unlink()
    report = sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=[policy]))
    assert 0 == report.zones[0].deleted
    assert 3 == len(cf.mappings(ZONE))
    adopting = zone(policy="sync", adopt=True)
    sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=[adopting]))
    report = sync.run_once(settings_for(cf, tmp_path, static=static(IPS[0]), zones=[policy]))
    assert 1 == report.zones[0].deleted, "ownership returned through adopt"
    assert {IPS[0], IPS[2]} == set(cf.mappings(ZONE))


def test_dns_origins_across_several_pages(cf, tmp_path: Path):
    for i in range(5100):  # the client reads 5,000 records a page
        cf.add_dns_record(ZONE, "A", f"h{i}.example.com", f"10.{i // 250}.{i % 250}.1")
    cf.add_dns_record(ZONE, "A", "www.example.com", IPS[0])
    cf.add_dns_record(ZONE, "AAAA", "v6.example.com", "2001:DB8::1")
    cf.add_dns_record(ZONE, "CNAME", "alias.example.com", "www.example.com")
    found = [*static(IPS[0], IPS[1]), {"ip": "2001:db8::1", "vendor": "gcp", "region": "us-east1"}]
    # A 5,000-record page takes the simulator over a second on a loaded machine: a timeout
    # would retry it and count a third request.
    slow = {"timeout": "30s"}
    report = sync.run_once(
        settings_for(cf, tmp_path, static=found, zones=[zone(origins="dns")], cloudflare=slow)
    )
    assert {IPS[0], "2001:db8::1"} == set(cf.mappings(ZONE))
    assert 2 == len(cf.requests_matching("GET", "/dns_records$"))
    assert 1 == report.zones[0].plan.ignored
    assert 5100 == len(reasons(report, SkipReason.UNDISCOVERED_ORIGIN))


def test_two_zones_where_one_fails(cf, tmp_path: Path):
    bad = "0" * 31 + "f"  # well-formed, but not a zone this token can see
    zones = [zone(), {"id": bad, "name": "broken.example", "origins": "all"}]
    report = sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=zones))
    good, broken = report.zones
    assert (2, "") == (good.created, good.error)
    assert "broken.example" == broken.zone_name
    assert broken.error
    assert RunResult.PARTIAL == report.result
    assert 2 == len(cf.mappings(ZONE))


def test_zone_failing_1164_does_not_stop_the_other(cf, tmp_path: Path):
    cf.add_zone(ZONE2, "other.example")
    cf.max_mappings = 1
    zones = [zone(), {"id": ZONE2, "name": "other.example", "origins": "all"}]
    report = sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=zones))
    assert all("1164" in z.error for z in report.zones)
    cf.max_mappings = 3500
    report = sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=zones))
    assert RunResult.SUCCESS == report.result


# --- with a real collector: scope failures and tags ------------------------------------------


@pytest.fixture
def gcp(tmp_path: Path) -> Iterator[tuple[GcpSimulator, dict[str, Any]]]:
    with GcpSimulator() as sim:
        for project, ip, label in (
            ("p-web", "198.51.100.1", "yes"),
            ("p-ops", "198.51.100.2", "no"),
        ):
            sim.add_project(project)
            sim.add_instance(project, "us-central1-a", "vm", nat_ips=[ip], labels={"cdn": label})
        cfg = {
            "name": "gcp",
            "projects": ["p-web", "p-ops"],
            "credentials_file": str(sim.write_service_account(tmp_path / "key.json")),
            "api_endpoint": sim.url,
            "resource_manager_endpoint": sim.url,
        }
        yield sim, cfg


def test_failing_scope_protects_its_mappings(cf, tmp_path: Path, gcp):
    sim, cfg = gcp
    policy = zone(policy="sync")
    collectors = {"gcp": [cfg], "scope_timeout": "2s"}
    first = sync.run_once(settings_for(cf, tmp_path, zones=[policy], collectors=collectors))
    assert 2 == first.zones[0].created
    sim.inject(GcpSimulator.fault(500, path="/projects/p-ops/", times=1000))
    sim.remove_instance("p-web", "us-central1-a", "vm")
    report = sync.run_once(settings_for(cf, tmp_path, zones=[policy], collectors=collectors))
    assert RunResult.PARTIAL == report.result
    assert ["198.51.100.2"] == reasons(report, SkipReason.SCOPE_INCOMPLETE)
    assert {"198.51.100.2"} == set(cf.mappings(ZONE)), "only the healthy scope's IP went"


def test_match_tags_selects_labelled_resources(cf, tmp_path: Path, gcp):
    _, cfg = gcp
    tagged = zone(match_tags={"cdn": "yes"})
    report = sync.run_once(settings_for(cf, tmp_path, zones=[tagged], collectors={"gcp": [cfg]}))
    assert {"198.51.100.1"} == set(cf.mappings(ZONE))
    assert ["198.51.100.2"] == reasons(report, SkipReason.TAGS_MISMATCH)


def test_the_clouds_request_timeout_is_apart_from_cloudflares(cf, tmp_path: Path):
    """``sync.timeout`` used to set both; a cloud API slower than Cloudflare's timeout now works."""
    with GcpSimulator(latency=1.2) as sim:
        sim.add_project("p-web")
        sim.add_instance("p-web", "us-central1-a", "vm", nat_ips=["198.51.100.1"])
        cfg = {
            "name": "gcp",
            "projects": ["p-web"],
            "credentials_file": str(sim.write_service_account(tmp_path / "key.json")),
            "api_endpoint": sim.url,
            "resource_manager_endpoint": sim.url,
        }
        slow_clouds = {"gcp": [cfg], "request_timeout": "10s", "attempts": 1}
        settings = settings_for(cf, tmp_path, collectors=slow_clouds, cloudflare={"timeout": "1s"})
        assert (1.0, 10.0) == (settings.cloudflare.timeout, settings.collectors.request_timeout)
        found = collectors.collect(settings)
        assert found.complete()
        assert ["198.51.100.1"] == [str(a.ip) for a in found.addresses]

        impatient = {**slow_clouds, "request_timeout": "500ms"}
        settings = settings_for(cf, tmp_path, collectors=impatient, cloudflare={"timeout": "30s"})
        scopes = collectors.collect(settings).scopes
        failed = [o.reason for o in scopes if o.status.value == "failed"]
        assert ["timeout"] == failed


@pytest.mark.parametrize("lost", ["drop", "reset_mid_body", "http_502"])
def test_a_write_applied_but_unanswered_stays_owned_and_is_deleted_later(
    cf, tmp_path: Path, lost: str
):
    # Issue 14 item 1: Cloudflare applies the batch, every attempt's answer is lost. The rows
    # stay pending; the next run lists the zone, owns what Cloudflare holds exactly as sent, and
    # `policy: sync` deletes it once its origin is gone.
    policy = zone(policy="sync")
    answers = {
        "drop": Fault(drop=True),
        "reset_mid_body": Fault(reset_mid_body=True, status=200),
        "http_502": Fault(status=502),
    }
    fault = answers[lost]
    fault.apply, fault.method, fault.path = True, "PUT", "cloud_regions/batch"
    fault.times = 4  # the first try and conftest's 3 retries
    cf.inject(fault)
    first = sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=[policy]))
    assert RunResult.PARTIAL == first.result
    assert 2 == len(first.zones[0].failures)
    assert all("outcome unknown" in f.error for f in first.zones[0].failures)
    assert set(IPS[:2]) == set(cf.mappings(ZONE)), "the simulator applied the batch"
    assert 4 == len(cf.requests_matching("PUT"))

    second = sync.run_once(settings_for(cf, tmp_path, static=static(*IPS[:2]), zones=[policy]))
    assert RunResult.SUCCESS == second.result
    assert second.zones[0].listed_because, "listed in full: the mirror is not trusted after it"
    assert 4 == len(cf.requests_matching("PUT")), "settled by the list: nothing sent again"

    third = sync.run_once(settings_for(cf, tmp_path, static=static(IPS[0]), zones=[policy]))
    assert (RunResult.SUCCESS, 1) == (third.result, third.zones[0].deleted)
    assert {IPS[0]} == set(cf.mappings(ZONE))


def test_a_write_refused_with_an_answer_is_not_pending(cf, tmp_path: Path):
    # A 4xx answer says the write was refused: the batch fails with a known outcome
    # and no full list is forced for it.
    settings = settings_for(cf, tmp_path, static=static(IPS[0]), zones=[zone()])
    cf.inject(
        Fault(
            status=400,
            method="PUT",
            path="cloud_regions/batch",
            times=1,
            body=b'{"success": false, "errors": [{"code": 1000, "message": "bad"}]}',
        )
    )
    report = sync.run_once(settings)
    assert RunResult.PARTIAL == report.result
    assert not any("outcome unknown" in f.error for f in report.zones[0].failures)
    again = sync.run_once(settings)
    assert "pending" != again.zones[0].listed_because
    assert {IPS[0]} == set(cf.mappings(ZONE))


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_a_mapping_of_an_unknown_vendor_is_foreign_and_the_zone_goes_on(cf, tmp_path: Path, api):
    # Issue 14 item 4: Cloudflare may add vendors. One such mapping made the whole list
    # "malformed" and nothing was pushed to the zone, every run.
    cf.set_mapping(ZONE, IPS[5], "newcloud", "nc-west-1", new_vendor=True)
    policy = zone(policy="sync")
    wanted = static(IPS[0], IPS[1], IPS[5])
    limits = {"max_mappings_per_zone": 2}  # the unknown one takes a place: one create fits
    first = sync.run_once(
        settings_for(cf, tmp_path, static=wanted, zones=[policy], api=api, cloudflare=limits)
    )
    assert RunResult.SUCCESS == first.result
    (z,) = first.zones
    assert [IPS[5]] == reasons(first, SkipReason.UNKNOWN_VENDOR)
    (skip,) = [s for s in z.plan.skips if s.reason is SkipReason.UNKNOWN_VENDOR]
    assert ("newcloud", "nc-west-1") == (skip.vendor, skip.region)
    assert [IPS[1]] == reasons(first, SkipReason.OVER_CAPACITY)
    assert {IPS[0]: ("aws", "us-east-1"), IPS[5]: ("newcloud", "nc-west-1")} == cf.mappings(ZONE)

    # Nothing discovered any more, policy sync: the owned mapping goes, the unknown one stays.
    gone = sync.run_once(settings_for(cf, tmp_path, static=static(IPS[9]), zones=[policy], api=api))
    assert (RunResult.SUCCESS, 1) == (gone.result, gone.zones[0].deleted)
    assert gone.zones[0].listed_because, "listed in full while one is held (no mirror is kept)"
    assert ("newcloud", "nc-west-1") == cf.mappings(ZONE)[IPS[5]]
    assert IPS[0] not in cf.mappings(ZONE)
