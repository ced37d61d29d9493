"""What Cloudflare really fetched (issue 25), end to end over loopback: syncd's GraphQL reads
against the Cloudflare simulator's GraphQL Analytics API (graphql-core over Cloudflare's
schema), through ``sync.run_once``, the metrics and ``syncd origins --observed``."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from graphql import build_schema, parse, validate
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from syncd import cli
from syncd.cloudflare import analytics
from syncd.model import (
    CoverageState,
    ObservationState,
    RateWindow,
    RunResult,
    ZoneReport,
    ZoneTraffic,
)
from syncd.registry import Registry
from syncd.run import once as sync
from syncd.simulators import analytics as simulated
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import CloudflareSimulator, cf_error
from syncd.views import logs, metrics, render
from tests.conftest import TOKEN, ZONE, ZONE2, Clock, settings_for

MAPPED = [
    {"ip": "198.51.100.10", "vendor": "aws", "region": "us-east-1"},
    {"ip": "198.51.100.11", "vendor": "aws", "region": "us-east-1"},
]
ZONES = [
    {"id": ZONE, "name": "example.com", "origins": "dns", "policy": "sync"},
]


def _settings(cf: CloudflareSimulator, tmp_path: Path, zones: list[dict[str, Any]] = ZONES, **kw):
    return settings_for(cf, tmp_path, static=MAPPED, zones=zones, **kw)


def _traffic(zone: ZoneReport) -> ZoneTraffic:
    assert zone.traffic is not None
    return zone.traffic


def _graphql(cf: CloudflareSimulator, kind: str = "") -> int:
    """GraphQL queries syncd sent (``settings`` or ``fetches`` by the variables they carry)."""
    sent = list(cf.requests_matching("POST", r"/graphql$"))
    if kind == "fetches":
        return sum(1 for r in sent if "since" in json.loads(r.body)["variables"])
    if kind == "settings":
        return sum(1 for r in sent if "since" not in json.loads(r.body)["variables"])
    return len(sent)


def _gauge(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


@pytest.fixture
def estate(cf: CloudflareSimulator) -> CloudflareSimulator:
    """One record-backed origin with 980 fetches; 20 to an address no collector knows; cache
    answers (no origin) that never count."""
    cf.add_dns_record(ZONE, "A", "www.example.com", "198.51.100.10")
    cf.analytics.add_fetches(ZONE, "198.51.100.10", 900, upper_tier="IAD")
    cf.analytics.add_fetches(ZONE, "198.51.100.10", 80, upper_tier="fra01")
    cf.analytics.add_fetches(ZONE, "203.0.113.9", 20, upper_tier="IAD")
    cf.analytics.add_fetches(ZONE, "", 5000, cache_status="hit")
    return cf


def test_a_zone_with_980_of_1000_fetches_to_mapped_origins_reports_098(estate, tmp_path):
    report = sync.run_once(_settings(estate, tmp_path))
    assert RunResult.SUCCESS == report.result
    seen = _traffic(report.zones[0])
    assert 0.98 == seen.coverage_ratio
    assert 1 == seen.too_new, "the hint written this run is too new to judge"
    registry = CollectorRegistry()
    metrics.Metrics(registry).observe(report)
    zone = {"zone": "example.com"}
    assert 0.98 == _gauge(registry, "syncd_zone_observed_coverage_ratio", **zone)
    assert 1 == _gauge(registry, "syncd_zone_observation_available", **zone)
    assert 1 == _gauge(registry, "syncd_zone_observed_origins", state="mapped", **zone)
    assert 1 == _gauge(registry, "syncd_zone_observed_origins", state="unmapped", **zone)
    assert None is _gauge(registry, "syncd_zone_hint_effect_ratio", **zone)


def test_the_hint_effect_once_the_hints_are_older_than_the_window(estate, tmp_path):
    settings = _settings(estate, tmp_path)
    assert RunResult.SUCCESS == sync.run_once(settings).result
    with sqlite3.connect(tmp_path / "state.db") as db:  # as if written two hours back
        db.execute("UPDATE owned SET updated_at = updated_at - 7200")
    report = sync.run_once(settings, options=sync.Options(verify=True))
    seen = _traffic(report.zones[0])
    (origin, _) = seen.origins
    assert (("IAD", 900), ("FRA", 80)) == origin.tiers
    assert ("EWR", "IAD") == origin.expected  # us-east-1's upper tiers in supported_regions
    assert pytest.approx(900 / 980) == seen.effect_ratio
    registry = CollectorRegistry()
    metrics.Metrics(registry).observe(report)
    effect = _gauge(registry, "syncd_zone_hint_effect_ratio", zone="example.com")
    assert pytest.approx(900 / 980) == effect


def test_an_origin_seen_only_in_traffic_is_mapped_and_kept_while_observed(estate, tmp_path):
    estate.analytics.add_fetches(ZONE, "198.51.100.11", 300, upper_tier="IAD")  # no record
    settings = _settings(estate, tmp_path, zones=[{**ZONES[0], "policy": "sync"}])
    report = sync.run_once(settings)
    assert ("aws", "us-east-1") == estate.mappings(ZONE)["198.51.100.11"]
    origins = {o.source for o in report.zones[0].origins.origins}  # type: ignore[union-attr]
    assert "observed traffic" in origins
    assert 1.0 == report.zones[0].coverage_ratio
    # Cloudflare's GraphQL fails from now on: the last observation still holds the origin.
    estate.inject(Fault(status=503, body=b"unavailable", times=100, path=r"/graphql$"))
    failed = sync.run_once(settings, options=sync.Options(verify=True))
    assert RunResult.SUCCESS == failed.result, "an observation that fails never fails a run"
    assert ObservationState.FAILED is _traffic(failed.zones[0]).observation.state
    assert "198.51.100.11" in estate.mappings(ZONE), "kept while it was last observed"
    # Traffic moves away; the next reading no longer shows it: the mapping syncd owns goes.
    estate.clear_faults()
    estate.analytics.clear(ZONE)
    estate.analytics.add_fetches(ZONE, "198.51.100.10", 10, upper_tier="IAD")
    gone = sync.run_once(settings, options=sync.Options(verify=True))
    assert 1 == gone.zones[0].deleted
    assert "198.51.100.11" not in estate.mappings(ZONE)


def _observed_only(estate: CloudflareSimulator, tmp_path: Path):
    """Settings whose first run maps 198.51.100.11, an address only traffic proves (no record),
    owned under ``policy: sync``."""
    estate.analytics.add_fetches(ZONE, "198.51.100.11", 300, upper_tier="IAD")
    settings = _settings(estate, tmp_path)
    sync.run_once(settings)
    assert "198.51.100.11" in estate.mappings(ZONE)
    return settings


def test_an_answer_without_a_data_object_keeps_what_traffic_proved(estate, tmp_path):
    settings = _observed_only(estate, tmp_path)
    # HTTP 200, no errors, and data that is not an object: the reading fails, nothing crashes.
    wrong = b'{"data": [{"zone_index": 0}]}'
    estate.inject(Fault(status=200, body=wrong, times=100, path=r"/graphql$"))
    report = sync.run_once(settings, options=sync.Options(verify=True))
    assert RunResult.SUCCESS == report.result
    observation = _traffic(report.zones[0]).observation
    assert ObservationState.FAILED is observation.state
    assert "no data object" in observation.detail
    assert 0 == report.zones[0].deleted
    assert "198.51.100.11" in estate.mappings(ZONE), "kept: the last reading proved it"


def test_a_cut_page_keeps_what_the_last_whole_page_showed(estate, tmp_path):
    settings = _observed_only(estate, tmp_path)
    estate.analytics.set_page_size(ZONE, 1)  # only the most fetched group comes back
    report = sync.run_once(settings, options=sync.Options(verify=True))
    observation = _traffic(report.zones[0]).observation
    assert observation.truncated
    assert {"198.51.100.10"} == {str(f.ip) for f in observation.fetches}
    assert 0 == report.zones[0].deleted
    assert "198.51.100.11" in estate.mappings(ZONE), "cut from the page, not from the traffic"


def test_unreadable_kept_readings_and_a_failed_read_hold_the_zones_deletions(estate, tmp_path):
    settings = _observed_only(estate, tmp_path)
    with sqlite3.connect(settings.state.path) as db:
        assert 1 == db.execute("UPDATE observed SET data = '{not json'").rowcount
    estate.inject(Fault(status=503, body=b"unavailable", times=100, path=r"/graphql$"))
    report = sync.run_once(settings, options=sync.Options(verify=True))
    assert RunResult.SUCCESS == report.result
    zone = report.zones[0]
    assert 0 == zone.deleted
    assert "198.51.100.11" in estate.mappings(ZONE)
    held = [s for s in zone.plan.skips if "traffic proves are unknown" in s.detail]
    assert ["198.51.100.11"] == [s.subject for s in held]
    # A reading with figures again settles it: the traffic moved, so the mapping goes.
    estate.clear_faults()
    estate.analytics.clear(ZONE)
    estate.analytics.add_fetches(ZONE, "198.51.100.10", 10, upper_tier="IAD")
    assert 1 == sync.run_once(settings, options=sync.Options(verify=True)).zones[0].deleted


def test_under_the_cap_the_most_fetched_origins_are_kept_first(estate, tmp_path):
    estate.add_dns_record(ZONE, "A", "api.example.com", "198.51.100.11")
    estate.analytics.add_fetches(ZONE, "198.51.100.11", 5000, upper_tier="IAD")
    cf_section = {"max_mappings_per_zone": 1}
    report = sync.run_once(_settings(estate, tmp_path, cloudflare=cf_section))
    assert {"198.51.100.11"} == set(estate.mappings(ZONE)), "numeric order would keep .10"
    assert 5000 / 6000 == pytest.approx(_traffic(report.zones[0]).coverage_ratio)


def test_a_second_run_inside_the_interval_sends_no_graphql_request(estate, tmp_path):
    settings = _settings(estate, tmp_path)
    first = sync.run_once(settings)
    assert 2 == _graphql(estate)
    assert {"graphql_settings", "graphql_fetches"} <= {c.endpoint for c in first.calls}
    second = sync.run_once(settings)
    assert 2 == _graphql(estate), "the observation is kept in the state database"
    assert 0.98 == _traffic(second.zones[0]).coverage_ratio, "and reported from there"
    sync.run_once(settings, options=sync.Options(verify=True))
    assert (2, 2) == (_graphql(estate, "settings"), _graphql(estate, "fetches")), (
        "sync --verify reads now, the settings node too"
    )


def test_twelve_zones_are_observed_in_two_data_queries(cf, tmp_path):
    ids = [f"{n:032x}" for n in range(1, 13)]
    for zone_id in ids:
        cf.add_zone(zone_id, f"z{zone_id[-2:]}.example")
        cf.analytics.add_fetches(zone_id, "198.51.100.10", 10, upper_tier="IAD")
    zones = [{"id": z, "name": f"z{z[-2:]}.example", "origins": "all"} for z in ids]
    report = sync.run_once(_settings(cf, tmp_path, zones=zones))
    assert RunResult.SUCCESS == report.result
    assert 2 == _graphql(cf, "fetches")
    assert 2 == _graphql(cf, "settings")
    for sent in cf.requests_matching("POST", r"/graphql$"):
        assert len(json.loads(sent.body)["variables"]["zones"]) <= simulated.MAX_ZONES
    assert all(_traffic(z).coverage_ratio == 1.0 for z in report.zones)


def test_a_zone_whose_plan_lacks_origin_ip_degrades_alone(estate, tmp_path):
    estate.add_zone(ZONE2, "other.example")
    estate.analytics.add_fetches(ZONE2, "198.51.100.11", 40, upper_tier="IAD")
    estate.analytics.restrict(ZONE2, "originIP")
    zones = [*ZONES, {"id": ZONE2, "name": "other.example", "origins": "all"}]
    report = sync.run_once(_settings(estate, tmp_path, zones=zones))
    with capture_logs() as events:
        logs.log_report(report)
    assert RunResult.SUCCESS == report.result, "exit code unaffected"
    ok, lacking = (_traffic(z) for z in report.zones)
    assert 0.98 == ok.coverage_ratio, "the other zone of the same query is observed"
    assert ObservationState.UNAVAILABLE is lacking.observation.state
    assert "originIP" in lacking.observation.detail
    assert 1 == _graphql(estate, "fetches"), "only the zone that can answer is queried"
    assert ["other.example"] == [
        e["zone"] for e in events if e["event"] == "observation_unavailable"
    ]
    registry = CollectorRegistry()
    metrics.Metrics(registry).observe(report)
    assert 0 == _gauge(registry, "syncd_zone_observation_available", zone="other.example")
    assert None is _gauge(registry, "syncd_zone_observed_coverage_ratio", zone="other.example")


def test_a_zone_the_settings_misjudge_is_left_out_and_the_others_asked_again(estate, tmp_path):
    estate.add_zone(ZONE2, "other.example")
    estate.analytics.add_fetches(ZONE2, "198.51.100.11", 40, upper_tier="IAD")
    zones = [*ZONES, {"id": ZONE2, "name": "other.example", "origins": "all"}]
    settings = _settings(estate, tmp_path, zones=zones)
    clock = Clock()
    clock.now = time.time() - 2 * 3600
    sync.run_once(settings, clock=clock)  # the settings node, kept six intervals: both answer
    estate.analytics.restrict(ZONE2, "upperTierColoName")  # the plan changes meanwhile
    clock.now = time.time()  # both readings are due, the settings are not
    report = sync.run_once(settings, clock=clock)
    ok, lacking = (_traffic(z) for z in report.zones)
    assert ObservationState.OBSERVED is ok.observation.state
    assert ObservationState.UNAVAILABLE is lacking.observation.state
    assert "upperTierColoName" in lacking.observation.detail


def test_a_token_without_analytics_read_gets_one_warning_naming_the_permission(estate, tmp_path):
    estate.add_zone(ZONE2, "other.example")
    estate.deny("analytics")
    zones = [*ZONES, {"id": ZONE2, "name": "other.example", "origins": "all"}]
    report = sync.run_once(_settings(estate, tmp_path, zones=zones))
    with capture_logs() as events:
        logs.log_report(report)
    assert RunResult.SUCCESS == report.result
    assert {ObservationState.DENIED} == {_traffic(z).observation.state for z in report.zones}
    (warning,) = [e for e in events if e["event"] == "observation_denied"]
    assert ("Analytics: Read", 2) == (warning["permission"], warning["zones"])
    assert "Analytics: Read" in warning["detail"]
    assert {"198.51.100.10"} == set(estate.mappings(ZONE)), "the sync itself went on"


def test_a_403_envelope_from_the_graphql_endpoint_names_the_permission(estate, tmp_path):
    estate.inject(cf_error(403, 10000, "Authentication error", times=5, path=r"/graphql$"))
    report = sync.run_once(_settings(estate, tmp_path))
    assert RunResult.SUCCESS == report.result
    seen = _traffic(report.zones[0])
    assert ObservationState.DENIED is seen.observation.state
    assert "Analytics: Read" in seen.observation.detail
    assert "HTTP 403" in render.summary(report)


def test_the_graphql_quota_leaves_zones_unobserved_with_a_warning(estate, tmp_path):
    estate.analytics.quota = (1, 300.0)  # one query left in this window
    report = sync.run_once(_settings(estate, tmp_path))
    with capture_logs() as events:
        logs.log_report(report)
    assert RunResult.SUCCESS == report.result
    seen = _traffic(report.zones[0])
    assert ObservationState.FAILED is seen.observation.state
    assert "rate limiter budget depleted" in seen.observation.detail
    assert ["failed"] == [e["state"] for e in events if e["event"] == "observation_unavailable"]
    assert 0 == sum(1 for c in report.calls if c.code == "429"), "REST traffic is not paused"


def test_a_time_range_refused_leaves_the_zone_unobserved_and_due_next_run(estate, tmp_path):
    settings = _settings(estate, tmp_path)
    clock = Clock()
    clock.now = time.time() - 2 * 3600  # the first reading two hours back: the next one is due
    sync.run_once(settings, clock=clock)
    estate.analytics.set_limits(ZONE, max_duration=86_400, not_older_than=600)  # kept: 8 days
    clock.now = time.time()
    refused = sync.run_once(settings, clock=clock)
    seen = _traffic(refused.zones[0])
    assert ObservationState.FAILED is seen.observation.state
    assert "cannot request data older than 600s" in seen.observation.detail
    assert RunResult.SUCCESS == refused.result
    before = _graphql(estate)
    sync.run_once(settings, clock=clock)
    assert before < _graphql(estate), "a failed reading is due again next run"


def test_the_client_side_quota_window_holds_queries_back(estate, tmp_path):
    settings = _settings(estate, tmp_path)
    limit = analytics.quota_limiter()
    while limit.try_acquire():
        pass
    with Registry(tmp_path / "state.db") as store:
        store.window.save(RateWindow(taken=(), graphql=limit.window().taken))
    report = sync.run_once(settings)
    seen = _traffic(report.zones[0])
    assert ObservationState.FAILED is seen.observation.state
    assert "GraphQL quota" in seen.observation.detail
    assert 0 == _graphql(estate), "no query sent past the window (which the state kept)"


def test_observation_off_sends_nothing(estate, tmp_path):
    settings = _settings(estate, tmp_path, cloudflare={"observe": {"enabled": False}})
    report = sync.run_once(settings)
    assert (None, 0) == (report.zones[0].traffic, _graphql(estate))


def test_origins_observed_table_and_json(estate, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    raw = {
        "cloudflare": {
            "api_token": "${CLOUDFLARE_API_TOKEN}",
            "base_url": estate.base_url,
            "zones": ZONES,
            "observe": {"enabled": False},  # --observed reads all the same
        },
        "collectors": {"static": MAPPED},
        "state": {"path": str(tmp_path / "state.db")},
    }
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert 0 == cli.main(["sync", "--config", str(path)])
    capsys.readouterr()
    assert 0 == cli.main(["origins", "--observed", "--config", str(path)])
    out = capsys.readouterr().out
    assert "203.0.113.9" in out
    assert "undiscovered_origin" in out
    assert "98% of 1,000" in out
    assert 0 == cli.main(["origins", "--observed", "--output", "json", "--config", str(path)])
    (zone,) = json.loads(capsys.readouterr().out)["zones"]
    assert ("observed", 0.98) == (zone["observation"], zone["coverage_ratio"])
    first = zone["origins"][0]
    assert ("198.51.100.10", 980, "mapped", ["EWR", "IAD"]) == (
        first["address"],
        first["fetches"],
        first["state"],
        first["expected_upper_tiers"],
    )
    assert {"IAD", "FRA"} == {t["colo"] for t in first["upper_tiers"]}


def test_the_summary_has_an_observed_column(estate, tmp_path):
    settings = _settings(estate, tmp_path)
    report = sync.run_once(settings)
    text = render.summary(report)
    assert "observed" in text.splitlines()[0]
    assert "98% of 1,000" in text


# --- the simulator's schema is Cloudflare's names, and syncd's queries fit it ---------------


def _introspect(cf: CloudflareSimulator, type_name: str) -> set[str]:
    body = {"query": '{ __type(name: "%s") { fields { name } } }' % type_name}  # noqa: UP031
    _, answer = cf.analytics.answer(body, zones=[], denied=False)
    return {f["name"] for f in answer["data"]["__type"]["fields"]}


def test_syncd_field_names_are_confirmed_by_introspection(cf):
    dims = _introspect(cf, "ZoneHttpRequestsAdaptiveGroupsDimensions")
    assert {analytics.ORIGIN, analytics.UPPER_TIER} <= dims
    assert {"count", "dimensions", "sum", "avg"} == _introspect(
        cf, "ZoneHttpRequestsAdaptiveGroups"
    )
    assert {"zoneTag", "settings", analytics.DATASET} <= _introspect(cf, "zone")
    assert {"enabled", "availableFields", "maxDuration", "notOlderThan", "maxPageSize"} <= (
        _introspect(cf, "Settings")
    )


def test_syncd_queries_validate_against_the_schema():
    schema = build_schema(simulated.SDL)
    fetches = analytics._FETCHES.replace("FIELDS", f"{analytics.ORIGIN} {analytics.UPPER_TIER}")
    for query in (analytics._SETTINGS, fetches):
        assert [] == validate(schema, parse(query))
    wrong = parse('{ viewer { zones(filter: {zoneTag: "x"}) { originIp } } }')
    (error,) = validate(schema, wrong)
    assert "Cannot query field 'originIp' on type 'zone'" in error.message


def test_the_simulator_refuses_what_cloudflare_refuses(cf):
    tags = [f"{n:032x}" for n in range(11)]
    query = "query($z: [string!]) { viewer { zones(filter: {zoneTag_in: $z}) { zoneTag } } }"
    status, answer = cf.analytics.answer(
        {"query": query, "variables": {"z": tags}}, zones=tags, denied=False
    )
    assert (200, None) == (status, answer["data"])
    assert "at most 10" in answer["errors"][0]["message"]
    status, answer = cf.analytics.answer(
        {"query": query, "variables": {"z": tags[:1]}}, zones=[], denied=False
    )
    assert "authz" == answer["errors"][0]["extensions"]["code"]


def test_graphql_requests_count_in_the_rate_window_and_the_run(estate, tmp_path):
    report = sync.run_once(_settings(estate, tmp_path))
    graphql = [c for c in report.calls if c.endpoint.startswith("graphql")]
    assert 2 == len(graphql)
    assert CoverageState.MAPPED is _traffic(report.zones[0]).origins[0].state
