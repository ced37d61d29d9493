"""logs.log_report() turns a RunReport into stable events; configure() gives one format to all."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import pytest
import structlog
from structlog.testing import capture_logs

from syncd.config import LoggingConfig
from syncd.model import (
    CollectorOutcome,
    Inventory,
    ItemFailure,
    Origin,
    OriginProblem,
    Reason,
    RegionMapping,
    RunReport,
    Scope,
    ScopeOutcome,
    ScopeStatus,
    Skip,
    SkipReason,
    TieredCache,
    Vendor,
    ZoneOrigins,
    ZonePlan,
    ZoneReport,
    parse_ip,
)
from syncd.views import logs

SCOPE = Scope(collector="aws-prod", vendor=Vendor.AWS, account="111", region="eu-west-1")


def failing_report() -> RunReport:
    doomed = RegionMapping(ip=parse_ip("192.0.2.50"), vendor=Vendor.AWS, region="us-east-1")
    plan = ZonePlan(
        zone_id="z1",
        zone_name="example.com",
        deletes=(),
        skips=(Skip(subject=doomed.ip_text, reason=SkipReason.MASS_DELETE_GUARD),),
        guard="would delete 12 of 20 owned mappings (60% > 20%)",
    )
    zone = ZoneReport(
        zone_id="z1",
        zone_name="example.com",
        plan=plan,
        created=1,
        failures=(
            ItemFailure(
                ip="192.0.2.7", vendor="aws", region="us-east-1", error="region not supported"
            ),
        ),
        generation="v2",
    )
    inventory = Inventory(
        scopes=(
            ScopeOutcome(
                scope=SCOPE, status=ScopeStatus.FAILED, reason=Reason.THROTTLED, error="Throttling"
            ),
        ),
        collectors=(
            CollectorOutcome(collector="aws-prod", vendor=Vendor.AWS, enumerated=True),
            CollectorOutcome(
                collector="gcp",
                vendor=Vendor.GCP,
                enumerated=False,
                reason=Reason.AUTH,
                error="401",
            ),
        ),
    )
    return RunReport(
        started=10.0, finished=12.5, inventory=inventory, zones=(zone,), api_generation="v2"
    )


def by_event(events: Sequence[Mapping[str, Any]], name: str) -> list[Mapping[str, Any]]:
    return [e for e in events if e["event"] == name]


def test_every_failure_has_its_event_with_its_keys():
    with capture_logs() as events:
        logs.log_report(failing_report())
    (collector,) = by_event(events, "collector_failed")
    assert {"collector": "gcp", "vendor": "gcp", "reason": "auth", "error": "401"}.items() <= (
        collector.items()
    )
    (scope,) = by_event(events, "scope_failed")
    assert {
        "collector": "aws-prod",
        "scope": "aws-prod/111/eu-west-1",
        "reason": "throttled",
        "error": "Throttling",
    }.items() <= scope.items()
    (item,) = by_event(events, "mapping_failed")
    assert {
        "zone": "example.com",
        "ip": "192.0.2.7",
        "vendor": "aws",
        "region": "us-east-1",
        "error": "region not supported",
        "log_level": "warning",
    }.items() <= item.items()
    (refused,) = by_event(events, "deletions_refused")
    assert (1, "example.com") == (refused["deletes"], refused["zone"])


def test_one_zone_event_and_one_summary_last():
    with capture_logs() as events:
        logs.log_report(failing_report())
    (zone,) = by_event(events, "zone_synced")
    assert {"zone": "example.com", "created": 1, "failed": 1, "log_level": "warning"}.items() <= (
        zone.items()
    )
    summary = events[-1]
    assert "sync_finished" == summary["event"]
    assert {
        "result": "partial",
        "duration": 2.5,
        "created": 1,
        "failed": 1,
        "scopes_failed": 1,
        "log_level": "warning",
    }.items() <= summary.items()


@pytest.mark.parametrize(
    ("error", "level"), [("", "info"), ("Cloudflare: 401 Unauthorized", "error")]
)
def test_summary_level_follows_the_result(error: str, level: str):
    with capture_logs() as events:
        logs.log_report(RunReport(started=0.0, finished=1.0, inventory=Inventory(), error=error))
    assert [("sync_finished", level)] == [(e["event"], e["log_level"]) for e in events]


@pytest.fixture
def restored() -> Iterator[None]:
    """configure() changes the process's logging; put it back after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    quiet = {name: logging.getLogger(name).level for name in logs.QUIET_LOGGERS}
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for name, lvl in quiet.items():
            logging.getLogger(name).setLevel(lvl)
        structlog.reset_defaults()


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


@pytest.mark.usefixtures("restored")
def test_json_when_not_a_tty_for_ours_and_the_libraries():
    out = io.StringIO()
    logs.configure(LoggingConfig(), stream=out)
    structlog.stdlib.get_logger("syncd.test").info("zone_synced", zone="example.com")
    logging.getLogger("apscheduler.scheduler").warning("Execution of job %s skipped", "sync")
    logging.getLogger("httpx").info("HTTP Request: GET https://api.cloudflare.com 200")
    records = lines(out)
    assert [
        ("zone_synced", "info", "syncd.test"),
        ("Execution of job sync skipped", "warning", "apscheduler.scheduler"),
    ] == [(r["event"], r["level"], r["logger"]) for r in records]
    assert "example.com" == records[0]["zone"]
    assert all("timestamp" in r for r in records)


@pytest.mark.usefixtures("restored")
def test_level_filters_and_configure_twice_keeps_one_handler():
    out = io.StringIO()
    logs.configure(LoggingConfig(level="debug"), stream=io.StringIO())
    logs.configure(LoggingConfig(level="warning", format="json"), stream=out)
    log = structlog.stdlib.get_logger("syncd.test")
    log.info("sync_started")
    log.warning("scope_failed", scope="s")
    assert ["scope_failed"] == [r["event"] for r in lines(out)]


@pytest.mark.usefixtures("restored")
def test_text_format():
    out = io.StringIO()
    logs.configure(LoggingConfig(format="text"), stream=out)
    structlog.stdlib.get_logger("syncd.test").info("sync_finished", result="success")
    text = out.getvalue()
    assert "sync_finished" in text
    assert "result=success" in text
    assert not text.startswith("{")


@pytest.mark.usefixtures("restored")
@pytest.mark.parametrize("fmt", ["json", "text"])
def test_tracebacks_never_show_local_variables(fmt: str):
    out = io.StringIO()
    logs.configure(LoggingConfig.model_validate({"format": fmt}), stream=out)
    token = "cf-secret-token-value"
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        structlog.stdlib.get_logger("syncd.test").exception("sync_crashed")
    assert "RuntimeError" in out.getvalue()
    assert token not in out.getvalue()


def test_origin_problems_permissions_and_smart_tiered_cache_off_are_events():
    found = ZoneOrigins(
        origins=(
            Origin(source="CNAME www.example.com", problem=OriginProblem.FAILED, detail="SERVFAIL"),
            Origin(source="CNAME old.example.com", problem=OriginProblem.UNRESOLVED, detail="NX"),
        ),
        warnings=("zone example.com: the token lacks Load Balancing: Read",),
        complete=False,
    )
    zone = ZoneReport(
        zone_id="z1",
        zone_name="example.com",
        plan=ZonePlan(zone_id="z1", zone_name="example.com"),
        origins=found,
        tiered_cache=TieredCache(tiered=True, smart=False),
    )
    unread = ZoneReport(
        zone_id="z2",
        zone_name="other.example",
        plan=ZonePlan(zone_id="z2", zone_name="other.example"),
        tiered_cache=TieredCache(warning="no Zone Settings: Read"),
    )
    report = RunReport(started=0.0, finished=1.0, inventory=Inventory(), zones=(zone, unread))
    with capture_logs() as events:
        logs.log_report(report)
    by_event = {e["event"]: e for e in events}
    assert ("CNAME www.example.com", "SERVFAIL") == (
        by_event["origin_failed"]["source"],
        by_event["origin_failed"]["error"],
    )
    assert "info" == by_event["origin_unresolved"]["log_level"]
    assert "Load Balancing: Read" in by_event["origins_incomplete"]["warning"]
    assert (True, False) == (
        by_event["smart_tiered_cache_off"]["tiered_cache"],
        by_event["smart_tiered_cache_off"]["smart_topology"],
    )
    assert "other.example" == by_event["tiered_cache_unknown"]["zone"]
    zone_events = [e for e in events if e["event"] == "zone_synced"]
    assert [None, None] == [e["coverage"] for e in zone_events]
