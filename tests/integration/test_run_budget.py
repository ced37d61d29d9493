"""A run's share of the Cloudflare budget, over real HTTP (issue 17 item 4): verification lists
take at most half of it, most overdue first; a zone the run cannot finish is deferred (not a
failure), keeps what it sent, and is served first next run until every zone converges."""

from __future__ import annotations

import ipaddress
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from syncd import config
from syncd.config import ZoneConfig
from syncd.errors import ConfigError
from syncd.model import RunResult
from syncd.registry import Registry
from syncd.run import budget
from syncd.run import once as sync
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.views import metrics, render
from tests.conftest import Clock, settings_for, write_config

ZONES = [f"{n + 1:032x}" for n in range(5)]
LISTS = r"/origin/cloud_regions$"
WRITES = r"/origin/cloud_regions/batch$|/cache/origin_cloud_regions/batch$"


def _static(n: int) -> list[dict[str, str]]:
    net = ipaddress.ip_network("198.51.100.0/24")
    hosts = [*net.hosts(), *ipaddress.ip_network("203.0.113.0/24").hosts()]
    return [{"ip": str(hosts[i]), "vendor": "aws", "region": "us-east-1"} for i in range(n)]


def _settings(cf: CloudflareSimulator, tmp_path: Path, zones: int, static: int, **cloudflare: Any):
    for zone_id in ZONES[:zones]:
        cf.add_zone(zone_id, f"z{zone_id[-1]}.example")
    listed = [{"id": z, "name": f"z{z[-1]}.example", "origins": "all"} for z in ZONES[:zones]]
    return settings_for(cf, tmp_path, static=_static(static), zones=listed, cloudflare=cloudflare)


def _listed(cf: CloudflareSimulator) -> list[str]:
    return sorted(r.path.split("/")[4] for r in cf.requests_matching("GET", LISTS))


def test_verification_takes_half_the_budget_most_overdue_first(cf, tmp_path: Path):
    """Five zones due at once, room for three verifications per run (budget 18: half is 9, a
    one-page zone is estimated at 3): three are listed, two wait on their mirror and go first
    next run; a run never lists more than its share, and every zone is verified."""
    s = _settings(cf, tmp_path, zones=5, static=0, run_budget=18)
    clock = Clock()
    first = sync.run_once(s, clock=clock)
    assert ["no_mirror"] * 5 == [z.listed_because for z in first.zones], (
        "a first list is not capped"
    )
    clock.now += 2 * 3600  # every zone is due
    cf.clear_requests()
    report = sync.run_once(s, clock=clock)
    assert RunResult.SUCCESS == report.result
    verified = {z.zone_id for z in report.zones if z.listed_because == "due"}
    assert 3 == len(verified) == len(_listed(cf))
    assert 2 == report.verifications_waiting
    assert "2 zone(s) due for verification wait for the next run" in render.summary(report)
    cf.clear_requests()
    nxt = sync.run_once(s, clock=clock)
    second = {z.zone_id for z in nxt.zones if z.listed_because == "due"}
    assert set(ZONES) - verified == second, "the two that waited are listed now"
    assert 0 == nxt.verifications_waiting
    cf.clear_requests()
    assert {None} == {z.listed_because for z in sync.run_once(s, clock=clock).zones}
    assert [] == _listed(cf)


def test_verify_flag_and_verify_interval_0_are_not_capped(cf, tmp_path: Path):
    s = _settings(cf, tmp_path, zones=5, static=0, run_budget=24)
    clock = Clock()
    sync.run_once(s, clock=clock)
    clock.now += 2 * 3600
    report = sync.run_once(s, options=sync.Options(verify=True), clock=clock)
    assert ["verify"] * 5 == [z.listed_because for z in report.zones]
    listed = [{"id": z, "name": f"z{z[-1]}.example", "origins": "all"} for z in ZONES]
    every = settings_for(
        cf, tmp_path, zones=listed, cloudflare={"run_budget": 24, "verify_interval": 0}
    )
    always = sync.run_once(every, clock=clock)
    assert ["due"] * 5 == [z.listed_because for z in always.zones]
    assert 0 == always.verifications_waiting


def test_a_zone_the_budget_cannot_finish_is_deferred_and_served_first_next_run(cf, tmp_path: Path):
    """Three zones of 250 new mappings (three batches each) and 14 requests per run: the first
    run reads every zone (10 requests) and sends a few batches; the zones it could not finish are
    deferred, not failed, keep what was sent, and converge over the next runs."""
    s = _settings(cf, tmp_path, zones=3, static=250, run_budget=14)
    first = sync.run_once(s)
    assert RunResult.SUCCESS == first.result, "a deferred zone is not a failure"
    deferred = list(first.deferred_zones)
    assert deferred, "nine batches cannot fit in 14 requests"
    assert all("cloudflare.run_budget" in z.deferred for z in deferred)
    assert len(cf.requests) <= 14 + 2, "at most the zones already past the check overshoot"
    sent = sum(z.created for z in first.zones)
    assert sent == sum(len(cf.mappings(z)) for z in ZONES[:3]) < 750
    with Registry(s.state.path) as store:
        assert {z.zone_id for z in deferred} == set(store.handover.deferred())
        order = budget.order(s.cloudflare.zones, store.handover.deferred())
    assert {z.id for z in order[: len(deferred)]} == {z.zone_id for z in deferred}
    registry = CollectorRegistry()
    metrics.Metrics(registry).observe(first)
    gauge = registry.get_sample_value("syncd_last_run_deferred_zones")
    assert float(len(deferred)) == gauge
    assert "deferred to the next run" in render.summary(first)
    runs = 1
    while any(len(cf.mappings(z)) < 250 for z in ZONES[:3]):
        runs += 1
        assert runs <= 4, "three runs of 14 requests hold nine batches and the reads"
        report = sync.run_once(s)
        assert RunResult.SUCCESS == report.result
        assert [] == [f for z in report.zones for f in z.failures]
    with Registry(s.state.path) as store:
        assert [] == store.handover.deferred(), (
            "a run that finished every zone leaves none deferred"
        )


def test_run_budget_auto_is_the_rate_limit_over_the_schedule_interval(tmp_path: Path):
    raw: dict[str, Any] = {
        "cloudflare": {
            "api_token": "t",
            "zones": [{"id": ZONES[0]}],
            "rate_limit": {"requests": 100, "period": "5m"},
        },
        "state": {"path": str(tmp_path / "s.db")},
    }
    assert 300 == budget.limit(config.validate(raw))  # 15 minutes: three windows
    assert 100 == budget.limit(config.validate({**raw, "schedule": {"cron": "*/5 * * * *"}}))
    explicit = {**raw["cloudflare"], "run_budget": 7}
    assert 7 == budget.limit(config.validate({**raw, "cloudflare": explicit}))


@pytest.mark.parametrize("value", [0, -1, "lots"])
def test_a_bad_run_budget_is_a_config_error_naming_it(tmp_path: Path, value: object):
    cfg = write_config(
        tmp_path / "c.yaml",
        {
            "cloudflare": {"api_token": "t", "zones": [{"id": ZONES[0]}], "run_budget": value},
            "state": {"path": str(tmp_path / "s.db")},
        },
    )
    with pytest.raises(ConfigError, match=r"cloudflare\.run_budget"):
        config.load(cfg, {})


def test_unreadable_deferred_zones_do_not_stop_a_run(cf, tmp_path: Path):
    s = _settings(cf, tmp_path, zones=2, static=1)
    sync.run_once(s)
    with sqlite3.connect(s.state.path) as db:
        db.execute("DROP TABLE deferred")
        db.execute("CREATE TABLE deferred (zone_id TEXT)")  # no position column
    report = sync.run_once(s)
    assert RunResult.SUCCESS == report.result


def test_deferred_zones_come_first_in_the_order_they_were_deferred():
    zones = tuple(ZoneConfig(id=z) for z in ZONES)
    served = budget.order(zones, [ZONES[3], ZONES[1]])
    assert [ZONES[3], ZONES[1], ZONES[0], ZONES[2], ZONES[4]] == [z.id for z in served]


def test_a_zone_no_longer_synced_takes_no_verification_share(cf, tmp_path: Path):
    """Two zones leave the configuration: their old mirrors are due too, but only the three
    zones still synced share the verification budget (room for three: none waits)."""
    clock = Clock()
    sync.run_once(_settings(cf, tmp_path, zones=5, static=0, run_budget=18), clock=clock)
    clock.now += 2 * 3600
    kept = [{"id": z, "name": f"z{z[-1]}.example", "origins": "all"} for z in ZONES[2:]]
    three = settings_for(cf, tmp_path, zones=kept, cloudflare={"run_budget": 18})
    report = sync.run_once(three, clock=clock)
    assert ["due"] * 3 == [z.listed_because for z in report.zones]
    assert 0 == report.verifications_waiting
