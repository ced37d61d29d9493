"""metrics.observe(): every metric is a view of the RunReport, on the registry passed in."""

from __future__ import annotations

import dataclasses
import platform
import socket
from typing import Any

import pytest
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from structlog.testing import capture_logs

from syncd import __version__
from syncd.config import MetricsConfig
from syncd.model import (
    Address,
    CloudflareCall,
    CollectorOutcome,
    CoverageState,
    Inventory,
    ItemFailure,
    Origin,
    OriginCoverage,
    OriginProblem,
    Reason,
    RegionMapping,
    RunReport,
    Scope,
    ScopeKey,
    ScopeOutcome,
    ScopeStatus,
    Skip,
    SkipReason,
    TieredCache,
    Upsert,
    Vendor,
    ZoneOrigins,
    ZonePlan,
    ZoneReport,
    parse_ip,
)
from syncd.views import metrics

ZONE = "example.com"


def address(
    ip: str, *, collector: str = "aws-prod", scope: str = "aws-prod/111/us-east-1"
) -> Address:
    return Address(
        ip=parse_ip(ip),
        vendor=Vendor.AWS,
        region="us-east-1",
        collector=collector,
        account="111",
        resource="eip/eipalloc-1",
        scope_key=ScopeKey.parse(scope),
    )


def scope(collector: str, region: str, vendor: Vendor = Vendor.AWS) -> Scope:
    return Scope(collector=collector, vendor=vendor, account="111", region=region)


def inventory() -> Inventory:
    """aws-prod: one ok scope (two IPs, one seen twice), one failed, one skipped; gcp: unlisted."""
    return Inventory(
        addresses=(
            address("192.0.2.1"),
            address("192.0.2.2"),
            address("192.0.2.2", scope="aws-prod/111/us-west-2"),
        ),
        scopes=(
            ScopeOutcome(
                scope=scope("aws-prod", "us-east-1"),
                status=ScopeStatus.OK,
                addresses=3,
                duration=2.0,
            ),
            ScopeOutcome(
                scope=scope("aws-prod", "eu-west-1"),
                status=ScopeStatus.FAILED,
                reason=Reason.THROTTLED,
                error="Throttling",
                duration=7.0,
            ),
            ScopeOutcome(
                scope=scope("aws-prod", "ap-east-1"),
                status=ScopeStatus.SKIPPED,
                reason=Reason.REGION_DISABLED,
            ),
        ),
        collectors=(
            CollectorOutcome(
                collector="aws-prod", vendor=Vendor.AWS, enumerated=True, duration=1.0
            ),
            CollectorOutcome(
                collector="gcp",
                vendor=Vendor.GCP,
                enumerated=False,
                reason=Reason.AUTH,
                error="401",
            ),
        ),
    )


def zone_report(**overrides: Any) -> ZoneReport:
    mapping = RegionMapping(ip=parse_ip("192.0.2.1"), vendor=Vendor.AWS, region="us-east-1")
    plan = ZonePlan(
        zone_id="z1",
        zone_name=ZONE,
        upserts=(Upsert(mapping=mapping, previous=None, scope_key=ScopeKey("s")),),
        skips=(
            Skip(subject="10.0.0.1", reason=SkipReason.NON_PUBLIC),
            Skip(subject="10.0.0.2", reason=SkipReason.NON_PUBLIC),
            Skip(subject="203.0.113.9", reason=SkipReason.UNSUPPORTED_REGION),
        ),
    )
    base = ZoneReport(
        zone_id="z1",
        zone_name=ZONE,
        plan=plan,
        created=2,
        updated=1,
        deleted=0,
        failures=(
            ItemFailure(ip="192.0.2.7", vendor="aws", region="us-east-1", error="bad region"),
            ItemFailure(
                ip="192.0.2.8", vendor="aws", region="us-east-1", error="x", reason="timeout"
            ),
        ),
        mappings_after=(("aws", 5), ("gcp", 2)),
    )
    return dataclasses.replace(base, **overrides)


def report(**overrides: Any) -> RunReport:
    base = RunReport(started=1000.0, finished=1012.5, inventory=Inventory())
    return dataclasses.replace(base, **overrides)


@pytest.fixture
def registry() -> CollectorRegistry:
    return CollectorRegistry()


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_declared_on_the_given_registry_only(registry: CollectorRegistry):
    before = set(REGISTRY._names_to_collectors)
    metrics.Metrics(registry)
    assert before == set(REGISTRY._names_to_collectors)
    build = {"version": __version__, "python_version": platform.python_version()}
    assert 1.0 == value(registry, "syncd_build_info", **build, revision="unknown")
    for result in ("success", "partial", "failure"):
        assert 0.0 == value(registry, "syncd_sync_runs_total", result=result)


def test_successful_run_sets_timestamps_and_duration(registry: CollectorRegistry):
    m = metrics.Metrics(registry)
    m.observe(report())
    assert 1.0 == value(registry, "syncd_sync_runs_total", result="success")
    assert 1012.5 == value(registry, "syncd_last_sync_timestamp_seconds")
    assert 1012.5 == value(registry, "syncd_last_success_timestamp_seconds")
    assert 12.5 == value(registry, "syncd_sync_duration_seconds_sum")
    assert 1.0 == value(registry, "syncd_sync_duration_seconds_count")


def test_failed_run_keeps_the_last_success_and_counts_consecutive_failures(
    registry: CollectorRegistry,
):
    m = metrics.Metrics(registry)
    m.observe(report())
    m.observe(report(started=2000.0, finished=2001.0, error="Cloudflare: 401"))
    m.observe(report(started=3000.0, finished=3001.0, error="Cloudflare: 401"))
    assert 2.0 == value(registry, "syncd_sync_runs_total", result="failure")
    assert 3001.0 == value(registry, "syncd_last_sync_timestamp_seconds")
    assert 1012.5 == value(registry, "syncd_last_success_timestamp_seconds")
    assert 2.0 == value(registry, "syncd_consecutive_failed_runs")
    m.observe(report(started=4000.0, finished=4001.0))
    assert 0.0 == value(registry, "syncd_consecutive_failed_runs")


def test_collectors_results_errors_durations_and_distinct_addresses(registry: CollectorRegistry):
    metrics.Metrics(registry).observe(report(inventory=inventory()))
    aws = {"collector": "aws-prod", "vendor": "aws"}
    gcp = {"collector": "gcp", "vendor": "gcp"}
    assert 1.0 == value(registry, "syncd_collector_runs_total", **aws, result="failed")
    assert 0.0 == value(registry, "syncd_collector_runs_total", **aws, result="ok")
    assert 1.0 == value(registry, "syncd_collector_runs_total", **gcp, result="failed")
    assert 1.0 == value(registry, "syncd_collector_errors_total", **aws, reason=Reason.THROTTLED)
    assert 1.0 == value(registry, "syncd_collector_errors_total", **gcp, reason="auth")
    assert value(registry, "syncd_collector_errors_total", **aws, reason="region_disabled") is None
    # Listing (1 s) plus the slowest scope (7 s); an unlisted collector has no duration.
    assert 8.0 == value(registry, "syncd_collector_duration_seconds_sum", **aws)
    assert value(registry, "syncd_collector_duration_seconds_count", **gcp) is None
    assert 2.0 == value(registry, "syncd_discovered_addresses", **aws)
    assert 0.0 == value(registry, "syncd_discovered_addresses", **gcp)


def test_collector_results_ok_and_skipped(registry: CollectorRegistry):
    inv = Inventory(
        scopes=(
            ScopeOutcome(scope=scope("a", "r1"), status=ScopeStatus.OK),
            ScopeOutcome(scope=scope("a", "r2"), status=ScopeStatus.SKIPPED),
            ScopeOutcome(scope=scope("s", "r1"), status=ScopeStatus.SKIPPED),
        ),
        collectors=(
            CollectorOutcome(collector="a", vendor=Vendor.AWS, enumerated=True),
            CollectorOutcome(collector="s", vendor=Vendor.AWS, enumerated=True),
        ),
    )
    metrics.Metrics(registry).observe(report(inventory=inv))
    a = {"collector": "a", "vendor": "aws"}
    s = {"collector": "s", "vendor": "aws"}
    assert 1.0 == value(registry, "syncd_collector_runs_total", **a, result="ok")
    assert 1.0 == value(registry, "syncd_collector_runs_total", **s, result="skipped")
    assert 0.0 == value(registry, "syncd_collector_runs_total", **s, result="failed")


def test_zone_changes_failures_and_mappings(registry: CollectorRegistry):
    m = metrics.Metrics(registry)
    m.observe(report(zones=(zone_report(),)))
    m.observe(report(zones=(zone_report(created=1, failures=()),)))
    assert 3.0 == value(registry, "syncd_mapping_changes_total", zone=ZONE, action="create")
    assert 2.0 == value(registry, "syncd_mapping_changes_total", zone=ZONE, action="update")
    assert 0.0 == value(registry, "syncd_mapping_changes_total", zone=ZONE, action="delete")
    assert 1.0 == value(registry, "syncd_mapping_failures_total", zone=ZONE, reason="item")
    assert 1.0 == value(registry, "syncd_mapping_failures_total", zone=ZONE, reason="timeout")
    assert 5.0 == value(registry, "syncd_mappings", zone=ZONE, vendor="aws")
    assert 2.0 == value(registry, "syncd_mappings", zone=ZONE, vendor="gcp")
    assert 0.0 == value(registry, "syncd_mappings", zone=ZONE, vendor="oci")


def test_a_zone_that_could_not_be_read_keeps_the_last_mapping_counts(
    registry: CollectorRegistry,
):
    m = metrics.Metrics(registry)
    m.observe(report(zones=(zone_report(),)))
    m.observe(report(zones=(zone_report(error="403", mappings_after=(), failures=()),)))
    assert 5.0 == value(registry, "syncd_mappings", zone=ZONE, vendor="aws")


def test_skipped_addresses_is_per_run_and_drops_stale_label_sets(registry: CollectorRegistry):
    m = metrics.Metrics(registry)
    m.observe(report(zones=(zone_report(),)))
    assert 2.0 == value(registry, "syncd_skipped_addresses", zone=ZONE, reason="non_public")
    assert 1.0 == value(registry, "syncd_skipped_addresses", zone=ZONE, reason="unsupported_region")
    assert 0.0 == value(registry, "syncd_skipped_addresses", zone=ZONE, reason="conflict")
    other = zone_report(zone_name="other.com", plan=ZonePlan(zone_id="z2", zone_name="other.com"))
    m.observe(report(zones=(other,)))
    assert value(registry, "syncd_skipped_addresses", zone=ZONE, reason="non_public") is None
    assert 0.0 == value(registry, "syncd_skipped_addresses", zone="other.com", reason="non_public")


def test_cloudflare_calls_and_retries(registry: CollectorRegistry):
    calls = (
        CloudflareCall(endpoint="v2_list", method="GET", code="200", duration=0.2),
        CloudflareCall(
            endpoint="v2_batch_upsert",
            method="PUT",
            code="429",
            duration=0.1,
            retry_reason="rate_limited",
        ),
        CloudflareCall(endpoint="v2_batch_upsert", method="PUT", code="200", duration=0.3),
        CloudflareCall(
            endpoint="v2_list", method="GET", code="error", duration=5.0, retry_reason="timeout"
        ),
    )
    metrics.Metrics(registry).observe(report(calls=calls))
    req = "syncd_cloudflare_requests_total"
    assert 1.0 == value(registry, req, endpoint="v2_list", method="GET", code="200")
    assert 1.0 == value(registry, req, endpoint="v2_list", method="GET", code="error")
    assert 1.0 == value(registry, req, endpoint="v2_batch_upsert", method="PUT", code="429")
    dur = "syncd_cloudflare_request_duration_seconds_count"
    assert 2.0 == value(registry, dur, endpoint="v2_batch_upsert", method="PUT")
    retries = "syncd_cloudflare_retries_total"
    assert 1.0 == value(registry, retries, endpoint="v2_batch_upsert", reason="rate_limited")
    assert 1.0 == value(registry, retries, endpoint="v2_list", reason="timeout")


def test_no_label_carries_an_ip(registry: CollectorRegistry):
    zone = zone_report()
    metrics.Metrics(registry).observe(report(inventory=inventory(), zones=(zone,)))
    text = generate_latest(registry).decode()
    for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.7", "10.0.0.1", "203.0.113.9"):
        assert ip not in text


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_push_to_a_gateway_that_is_down_is_logged_not_raised(registry: CollectorRegistry):
    metrics.Metrics(registry).observe(report())
    cfg = MetricsConfig(pushgateway=f"http://127.0.0.1:{closed_port()}", instance="batch-1")
    with capture_logs() as logs:
        metrics.push(cfg, registry, report())
    (event,) = [e for e in logs if e["event"] == "metrics_push_failed"]
    assert ("warning", "batch-1") == (event["log_level"], event["instance"])


def test_push_without_a_gateway_does_nothing(registry: CollectorRegistry):
    with capture_logs() as logs:
        metrics.push(MetricsConfig(), registry, report())
    assert [] == logs


def test_origin_coverage_and_smart_tiered_cache_per_zone(registry: CollectorRegistry):
    ip = parse_ip("192.0.2.1")
    reached = Origin(source="CNAME www.example.com", chain=("www.example.com", "a.example"), ip=ip)
    twice = Origin(source="A api.example.com", chain=("api.example.com",), ip=ip)
    dangling = Origin(
        source="CNAME old.example.com",
        chain=("old.example.com", "gone.example"),
        problem=OriginProblem.UNRESOLVED,
    )
    coverage = (
        OriginCoverage(origin=reached, state=CoverageState.MAPPED, vendor="aws", region="x"),
        OriginCoverage(origin=twice, state=CoverageState.MAPPED, vendor="aws", region="x"),
        OriginCoverage(origin=dangling, state=CoverageState.UNMAPPED, reason="unresolved_origin"),
    )
    zone = zone_report(
        origins=ZoneOrigins(origins=(reached, twice, dangling)),
        coverage=coverage,
        tiered_cache=TieredCache(tiered=True, smart=False),
    )
    metrics.Metrics(registry).observe(report(zones=(zone,)))
    assert 1.0 == value(registry, "syncd_zone_origins", zone=ZONE, state="mapped")
    assert 1.0 == value(registry, "syncd_zone_origins", zone=ZONE, state="unmapped")
    assert 0.5 == value(registry, "syncd_zone_origin_coverage_ratio", zone=ZONE)
    assert 0.0 == value(registry, "syncd_zone_smart_tiered_cache", zone=ZONE)


def test_origins_all_zones_and_unread_settings_export_no_origin_series(
    registry: CollectorRegistry,
):
    zone = zone_report(tiered_cache=TieredCache(warning="403"))
    metrics.Metrics(registry).observe(report(zones=(zone,)))
    assert value(registry, "syncd_zone_origin_coverage_ratio", zone=ZONE) is None
    assert value(registry, "syncd_zone_smart_tiered_cache", zone=ZONE) is None
    zone = zone_report(origins=ZoneOrigins(), tiered_cache=TieredCache(tiered=True, smart=True))
    metrics.Metrics(registry := CollectorRegistry()).observe(report(zones=(zone,)))
    assert 1.0 == value(registry, "syncd_zone_origin_coverage_ratio", zone=ZONE), "no origin: 1"
    assert 1.0 == value(registry, "syncd_zone_smart_tiered_cache", zone=ZONE)


def test_last_run_gauges_say_what_the_last_run_left_failing(registry: CollectorRegistry):
    # What the alerts read in both modes: a one-shot process pushes these after its one run.
    m = metrics.Metrics(registry)
    failed_zone = zone_report(zone_name="b.example", error="Cloudflare: 403", failures=())
    m.observe(report(inventory=inventory(), zones=(zone_report(), failed_zone)))
    assert 1.0 == value(registry, "syncd_last_run_result", result="partial")
    assert 0.0 == value(registry, "syncd_last_run_result", result="success")
    assert 2.0 == value(registry, "syncd_last_run_failed_items", zone=ZONE)
    assert 0.0 == value(registry, "syncd_last_run_failed_items", zone="b.example")
    assert 1.0 == value(registry, "syncd_last_run_failed_zones")
    assert 1.0 == value(registry, "syncd_last_run_failed_scopes", collector="aws-prod")
    assert 1.0 == value(registry, "syncd_last_run_failed_scopes", collector="gcp")  # unlisted
    m.observe(report(zones=(zone_report(failures=()),)))
    assert 1.0 == value(registry, "syncd_last_run_result", result="success")
    assert 0.0 == value(registry, "syncd_last_run_failed_items", zone=ZONE)
    assert value(registry, "syncd_last_run_failed_items", zone="b.example") is None
    assert value(registry, "syncd_last_run_failed_scopes", collector="aws-prod") is None
    assert 0.0 == value(registry, "syncd_last_run_failed_zones")


def test_build_info_carries_the_images_revision(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SYNCD_REVISION", "3f2c1ab")
    registry = CollectorRegistry()
    metrics.Metrics(registry)
    build = {"version": __version__, "python_version": platform.python_version()}
    assert 1.0 == value(registry, "syncd_build_info", **build, revision="3f2c1ab")
