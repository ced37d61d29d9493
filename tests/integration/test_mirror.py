"""The mirror of each zone's mappings in the state database, over real HTTP: a steady run costs
O(zones), verification is due per zone and spread, drift is counted and repaired, and a mirror
that cannot be trusted is rebuilt by a full list."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from prometheus_client import CollectorRegistry

from syncd import cli
from syncd.config import Settings
from syncd.model import RunResult
from syncd.run import once as sync
from syncd.simulators.cloudflare import CloudflareSimulator, cf_error
from syncd.views import metrics
from tests.conftest import TOKEN, ZONE, ZONE2, Clock, settings_for, write_config

STATIC = [
    {"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"},
    {"ip": "192.0.2.11", "vendor": "aws", "region": "us-west-2"},
]
LISTS = r"/origin/cloud_regions$"


def settings(cf: CloudflareSimulator, tmp_path: Path, **cloudflare: object) -> Settings:
    zones = [
        {"id": ZONE, "name": "example.com", "origins": "all", "policy": "sync"},
        {"id": ZONE2, "name": "example.org", "origins": "all"},
    ]
    return settings_for(cf, tmp_path, static=STATIC, zones=zones, cloudflare=cloudflare)


def lists(cf: CloudflareSimulator) -> list[str]:
    return sorted(r.path.split("/")[4] for r in cf.requests_matching("GET", LISTS))


def with_two_zones(cf: CloudflareSimulator) -> CloudflareSimulator:
    cf.add_zone(ZONE2, "example.org")
    return cf


def test_a_steady_run_lists_no_zone_and_writes_nothing(cf, tmp_path: Path):
    with_two_zones(cf)
    s = settings(cf, tmp_path)
    first = sync.run_once(s)
    assert ["no_mirror", "no_mirror"] == [z.listed_because for z in first.zones]
    assert [ZONE, ZONE2] == sorted(lists(cf))
    cf.clear_requests()
    steady = sync.run_once(s)
    assert RunResult.SUCCESS == steady.result
    assert [None, None] == [z.listed_because for z in steady.zones]
    assert [] == lists(cf)
    assert [] == [r for r in cf.requests if r.method != "GET"]
    assert [2, 2] == [len(z.plan.unchanged) for z in steady.zones]
    # One supported-regions request for the whole run, nothing per zone: the zones' Tiered
    # Cache settings are kept in the state database with the mirror.
    (regions,) = [r.path for r in cf.requests]
    assert regions.endswith("/supported_regions")


def test_confirmed_writes_keep_the_mirror_true(cf, tmp_path: Path):
    with_two_zones(cf)
    sync.run_once(settings(cf, tmp_path))
    moved = settings_for(
        cf,
        tmp_path,
        static=[{"ip": "192.0.2.10", "vendor": "aws", "region": "eu-west-1"}],
        zones=[{"id": ZONE, "name": "example.com", "origins": "all", "policy": "sync"}],
    )
    changed = sync.run_once(moved)
    (zone,) = changed.zones
    assert (None, 1, 1) == (zone.listed_because, zone.updated, zone.deleted)
    cf.clear_requests()
    again = sync.run_once(moved)
    assert [] == lists(cf)
    assert (0, 0, 0, 1) == (
        again.zones[0].created,
        again.zones[0].updated,
        again.zones[0].deleted,
        len(again.zones[0].plan.unchanged),
    )
    assert {"192.0.2.10": ("aws", "eu-west-1")} == cf.mappings(ZONE)


def test_verification_finds_drift_counts_it_and_repairs_it_in_the_same_run(cf, tmp_path: Path):
    with_two_zones(cf)
    s = settings(cf, tmp_path)
    clock = Clock()
    sync.run_once(s, clock=clock)
    # Someone edits the zone by hand: the mirror does not know.
    cf.set_mapping(ZONE, "192.0.2.10", "gcp", "us-east1")
    cf.set_mapping(ZONE, "198.51.100.1", "aws", "us-east-1")
    assert [None, None] == [z.listed_because for z in sync.run_once(s, clock=clock).zones]
    clock.now += 3600  # verify_interval passed for every zone
    report = sync.run_once(s, clock=clock)
    by_zone = {z.zone_id: z for z in report.zones}
    assert ("due", 2, 1) == (
        by_zone[ZONE].listed_because,
        by_zone[ZONE].drift,
        by_zone[ZONE].updated,
    )
    assert ("due", 0) == (by_zone[ZONE2].listed_because, by_zone[ZONE2].drift)
    assert ("aws", "us-east-1") == cf.mappings(ZONE)["192.0.2.10"], "repaired in the same run"
    registry = CollectorRegistry()
    metrics.Metrics(registry).observe(report)
    value = registry.get_sample_value("syncd_mapping_drift_total", {"zone": "example.com"})
    assert 2.0 == value


def test_first_verifications_are_spread_over_the_interval(cf, tmp_path: Path):
    ids = [f"{n:032x}" for n in range(1, 41)]
    for zone_id in ids:
        cf.add_zone(zone_id)
    zones = [{"id": z, "origins": "all"} for z in ids]
    s = settings_for(cf, tmp_path, static=STATIC, zones=zones)
    clock = Clock()
    sync.run_once(s, clock=clock)
    listed_per_quarter = []
    for _ in range(4):
        clock.now += 900
        report = sync.run_once(s, clock=clock)
        listed_per_quarter.append(sum(1 for z in report.zones if z.listed_because))
    assert 40 == sum(listed_per_quarter), "each zone verified once per interval"
    assert max(listed_per_quarter) <= 20, f"bunched: {listed_per_quarter}"


def test_sync_verify_lists_every_zone(cf, tmp_path: Path):
    with_two_zones(cf)
    s = settings(cf, tmp_path)
    sync.run_once(s)
    cf.clear_requests()
    report = sync.run_once(s, options=sync.Options(verify=True))
    assert ["verify", "verify"] == [z.listed_because for z in report.zones]
    assert [ZONE, ZONE2] == lists(cf)


def test_a_refused_write_distrusts_the_mirror(cf, tmp_path: Path):
    with_two_zones(cf)
    s = settings(cf, tmp_path)
    sync.run_once(s)
    cf.set_mapping(ZONE, "192.0.2.10", "gcp", "us-east1")  # unknown to the mirror
    more = settings_for(
        cf,
        tmp_path,
        static=[*STATIC, {"ip": "192.0.2.12", "vendor": "aws", "region": "us-east-1"}],
        zones=[{"id": ZONE, "name": "example.com", "origins": "all"}],
    )
    cf.inject(cf_error(500, 1140, "internal", times=10, path=r"/batch$"))
    failed = sync.run_once(more)
    assert failed.zones[0].failures
    cf.clear_faults()
    cf.clear_requests()
    report = sync.run_once(more)
    assert "no_mirror" == report.zones[0].listed_because
    assert ("aws", "us-east-1") == cf.mappings(ZONE)["192.0.2.12"]


def test_a_corrupt_mirror_is_rebuilt_by_a_full_list(cf, tmp_path: Path):
    with_two_zones(cf)
    s = settings(cf, tmp_path)
    sync.run_once(s)
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute("UPDATE mirror SET vendor = 'nowhere' WHERE zone_id = ?", (ZONE,))
    report = sync.run_once(s)
    by_zone = {z.zone_id: z.listed_because for z in report.zones}
    assert {ZONE: "mirror_corrupt", ZONE2: None} == by_zone
    assert RunResult.SUCCESS == report.result
    assert sync.run_once(s).zones[0].listed_because is None, "rebuilt"


def test_a_pending_batch_is_settled_by_a_full_list(cf, tmp_path: Path):
    with_two_zones(cf)
    s = settings(cf, tmp_path)
    sync.run_once(s)
    # A crash between sending a batch and recording its answer leaves a pending row.
    with sqlite3.connect(tmp_path / "state.db") as db:
        db.execute(
            "INSERT INTO pending VALUES (?, '203.0.113.5', 'aws', 'us-east-1', 'static', 0)",
            (ZONE,),
        )
    report = sync.run_once(s)
    assert "pending" == {z.zone_id: z.listed_because for z in report.zones}[ZONE]


def test_a_plan_uses_the_mirror_and_never_writes_it(cf, tmp_path: Path):
    with_two_zones(cf)
    s = settings(cf, tmp_path)
    sync.run_once(s)
    cf.clear_requests()
    report = sync.run_once(s, options=sync.Options(dry_run=True))
    assert [None, None] == [z.listed_because for z in report.zones]
    assert [] == lists(cf)


def test_the_cli_sync_verify_flag(cf, tmp_path: Path, capsys):
    raw = {
        "cloudflare": {
            "api_token": TOKEN,
            "base_url": cf.base_url,
            "zones": [{"id": ZONE, "name": "example.com", "origins": "all"}],
        },
        "collectors": {"static": STATIC},
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"format": "json"},
    }
    path = write_config(tmp_path / "syncd.yaml", raw)
    assert 0 == cli.main(["sync", "--config", str(path)])
    cf.set_mapping(ZONE, "192.0.2.10", "gcp", "us-east1")
    assert 0 == cli.main(["sync", "--verify", "--config", str(path)])
    _, err = capsys.readouterr()
    assert '"event": "mapping_drift"' in err
    assert ("aws", "us-east-1") == cf.mappings(ZONE)["192.0.2.10"]
