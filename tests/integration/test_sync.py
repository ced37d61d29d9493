"""`run_once` end to end against the Cloudflare simulator over real HTTP, for v1 and v2."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from pydantic import SecretStr

from syncd.cloudflare.api import rate_limiter
from syncd.model import RunResult, SkipReason
from syncd.run import once as sync
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import CloudflareSimulator, cf_error
from tests.conftest import TOKEN, ZONE, settings_for

STATIC = [
    {"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"},
    {"ip": "2001:DB8:0:0::10", "vendor": "gcp", "region": "us-central1"},
    {"ip": "198.51.100.7", "vendor": "azure", "region": "westeurope"},
    {"ip": "10.0.0.5", "vendor": "aws", "region": "us-east-1"},
    {"ip": "203.0.113.99", "vendor": "aws", "region": "mars-north-1"},
]
EXPECTED = {
    "192.0.2.10": ("aws", "us-east-1"),
    "2001:db8::10": ("gcp", "us-central1"),
    "198.51.100.7": ("azure", "westeurope"),
}
WRITES = r"/batch$"

pytestmark = pytest.mark.parametrize("api", ["v1", "v2"])


def writes(cf: CloudflareSimulator) -> list:
    return [r for r in cf.requests_matching(path=WRITES) if r.method != "GET"]


def test_first_sync_creates_second_changes_nothing(cf, tmp_path: Path, api: str):
    settings = settings_for(cf, tmp_path, static=STATIC, api=api)
    report = sync.run_once(settings)
    assert RunResult.SUCCESS == report.result
    assert EXPECTED == cf.mappings(ZONE)
    (zone,) = report.zones
    assert (3, 0, api) == (zone.created, zone.updated, zone.generation)
    assert {"10.0.0.5": SkipReason.NON_PUBLIC, "203.0.113.99": SkipReason.UNSUPPORTED_REGION} == {
        s.subject: s.reason for s in zone.plan.skips
    }
    assert 1 == len(writes(cf))

    cf.clear_requests()
    again = sync.run_once(settings)
    assert RunResult.SUCCESS == again.result
    assert [] == writes(cf)
    assert 3 == len(again.zones[0].plan.unchanged)


def test_changed_region_becomes_one_update(cf, tmp_path: Path, api: str):
    sync.run_once(settings_for(cf, tmp_path, static=STATIC, api=api))
    moved = [dict(s) for s in STATIC]
    moved[0]["region"] = "us-west-2"
    cf.clear_requests()
    report = sync.run_once(settings_for(cf, tmp_path, static=moved, api=api))
    assert (0, 1) == (report.zones[0].created, report.zones[0].updated)
    (write,) = writes(cf)
    ip_key = "ip" if api == "v1" else "origin_ip"
    assert [{ip_key: "192.0.2.10", "vendor": "aws", "region": "us-west-2"}] == write.json()
    assert ("aws", "us-west-2") == cf.mappings(ZONE)["192.0.2.10"]


def test_large_estate_is_batched_and_listed_across_pages(cf, tmp_path: Path, api: str):
    static = [
        {"ip": f"198.51.100.{i}", "vendor": "aws", "region": "us-east-1"} for i in range(1, 251)
    ]
    report = sync.run_once(settings_for(cf, tmp_path, static=static, api=api))
    assert 250 == report.zones[0].created
    assert [100, 100, 50] == [len(r.json()) for r in writes(cf)]
    cf.clear_requests()
    # --verify: listed in full again although the mirror in the state database is fresh.
    verify = sync.Options(verify=True)
    sync.run_once(settings_for(cf, tmp_path, static=static, api=api), options=verify)
    assert [] == writes(cf)
    lists = cf.requests_matching("GET", r"(origin_cloud_regions|cloud_regions)$")
    assert (1 if api == "v1" else 3) == len(lists)


def test_partial_item_failures_are_reported_and_retried_next_run(cf, tmp_path, api: str):
    ip_key = "origin-ip" if api == "v1" else "origin_ip"
    value = {
        "succeeded": [{ip_key: "192.0.2.10", "vendor": "aws", "region": "us-east-1"}],
        "failed": [{ip_key: "2001:db8::10", "error": "temporarily unavailable"}],
    }
    result = (
        {"id": "origin_public_cloud_region", "editable": True, "value": value}
        if api == "v1"
        else value
    )
    body = {"success": True, "errors": [], "messages": [], "result": result}
    cf.inject(
        Fault(
            status=200,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            path=WRITES,
        )
    )
    static = STATIC[:2]
    report = sync.run_once(settings_for(cf, tmp_path, static=static, api=api))
    assert RunResult.PARTIAL == report.result
    (failure,) = report.zones[0].failures
    assert ("2001:db8::10", "gcp", "us-central1", "temporarily unavailable") == (
        failure.ip,
        failure.vendor,
        failure.region,
        failure.error,
    )
    # The fault answered instead of the store, so nothing was stored; the next run converges.
    again = sync.run_once(settings_for(cf, tmp_path, static=static, api=api))
    assert RunResult.SUCCESS == again.result
    assert {k: EXPECTED[k] for k in ("192.0.2.10", "2001:db8::10")} == cf.mappings(ZONE)


def test_zone_full_stops_upserts_to_that_zone(tmp_path: Path, api: str):
    with CloudflareSimulator(token="test-token-5c1b0e", max_mappings=150) as cf:
        cf.add_zone(ZONE, "example.com")
        static = [
            {"ip": f"198.51.100.{i}", "vendor": "aws", "region": "us-east-1"} for i in range(1, 251)
        ]
        report = sync.run_once(settings_for(cf, tmp_path, static=static, api=api))
        (zone,) = report.zones
        assert RunResult.PARTIAL == report.result, "the first batch was applied"
        assert "1164" in zone.error
        assert 100 == len(cf.mappings(ZONE))
        assert 150 == len(zone.failures)
        assert 2 == len(writes(cf)), "no request is sent after 1164"


FAULTS = {
    "429": lambda: cf_error(
        429, 10000, "rate limited", times=2, path=WRITES, headers={"Retry-After": "0"}
    ),
    "1140": lambda: cf_error(500, 1140, "Internal error.", times=2, path=WRITES),
    "1156": lambda: cf_error(500, 1156, "Failed to validate region", times=1, path=WRITES),
    "html-502": lambda: Fault(status=502, body=b"<html>bad gateway</html>", times=1, path=WRITES),
    "reset": lambda: Fault(
        status=200,
        body=b'{"success": true, "result": {}}',
        times=1,
        reset_mid_body=True,
        path=WRITES,
    ),
    "dropped": lambda: Fault(drop=True, times=1, path=WRITES),
    "429-no-retry-after": lambda: cf_error(429, 971, "rate limited", times=1, path=WRITES),
    "503": lambda: Fault(status=503, body=b"", times=2, path=WRITES),
    # Retried as Cloudflare's SDK retries them: a request timeout, a lock timeout.
    "408": lambda: Fault(status=408, body=b"", times=1, path=WRITES),
    "409": lambda: cf_error(409, 1000, "lock timeout", times=1, path=WRITES),
    "read-timeout": lambda: Fault(status=200, body=b"{}", delay=1.5, times=1, path=WRITES),
    "malformed-json": lambda: Fault(status=200, body=b'{"success": tru', times=1, path=WRITES),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_retryable_errors_are_retried_then_succeed(cf, tmp_path, api: str, fault: str):
    injected = FAULTS[fault]()
    attempts = injected.times + 1
    cf.inject(injected)
    report = sync.run_once(settings_for(cf, tmp_path, static=STATIC, api=api))
    assert RunResult.SUCCESS == report.result
    assert EXPECTED == cf.mappings(ZONE)
    # Counted as the client saw them: a timed-out request may still be asleep in the simulator.
    sent = [c for c in report.calls if c.method in ("PUT", "PATCH")]
    assert attempts == len(sent)
    assert [True] * (attempts - 1) + [False] == [bool(c.retry_reason) for c in sent]


def test_retries_exhausted_fail_the_batch_and_the_next_run_converges(cf, tmp_path, api: str):
    cf.inject(cf_error(500, 1140, "Internal error.", times=4, path=WRITES))
    settings = settings_for(cf, tmp_path, static=STATIC, api=api)
    report = sync.run_once(settings)
    assert RunResult.PARTIAL == report.result
    assert 3 == len(report.zones[0].failures)
    assert {"1140"} == {f.reason for f in report.zones[0].failures}
    assert 4 == len(writes(cf)), "one try and cloudflare.retries=3 retries"
    assert {} == cf.mappings(ZONE)
    assert RunResult.SUCCESS == sync.run_once(settings).result
    assert EXPECTED == cf.mappings(ZONE)


def test_invalid_region_1157_is_not_retried(cf, tmp_path, api: str):
    cf.inject(cf_error(400, 1157, "The vendor provided doesn't exist", times=1, path=WRITES))
    report = sync.run_once(settings_for(cf, tmp_path, static=STATIC, api=api))
    assert RunResult.PARTIAL == report.result
    assert 1 == len(writes(cf))
    assert {"1157"} == {f.reason for f in report.zones[0].failures}


def test_bad_token_is_one_clear_error_without_retries(cf, tmp_path, api: str):
    settings = settings_for(cf, tmp_path, static=STATIC, api=api)
    wrong = {
        "api_token": None,
        "api_email": "ops@example.com",
        "api_key": SecretStr("wrong-key-123"),
    }
    bad = settings.model_copy(update={"cloudflare": settings.cloudflare.model_copy(update=wrong)})
    report = sync.run_once(bad)
    assert RunResult.FAILURE == report.result
    assert "Cloudflare" in report.error
    assert "wrong-key-123" not in report.error
    assert 1 == len(cf.requests), "no retry storm"


def test_auto_falls_back_to_v1_when_v2_has_no_route(cf, tmp_path, api: str):
    if api == "v1":
        cf.disable("v1")
        report = sync.run_once(settings_for(cf, tmp_path, static=STATIC, api="auto"))
        assert "v2" == report.zones[0].generation
    else:
        cf.disable("v2")
        report = sync.run_once(settings_for(cf, tmp_path, static=STATIC, api="auto"))
        assert "v1" == report.zones[0].generation
    assert RunResult.SUCCESS == report.result
    assert EXPECTED == cf.mappings(ZONE)


class _StopAfter(threading.Event):
    """A shutdown that arrives while the first batch is in flight (after ``n`` checks)."""

    def __init__(self, n: int) -> None:
        super().__init__()
        self._left = n

    def is_set(self) -> bool:
        self._left -= 1
        return self._left < 0


def test_shutdown_lets_the_batch_in_flight_finish_and_loses_nothing(cf, tmp_path, api: str):
    static = [
        {"ip": f"198.51.100.{i}", "vendor": "aws", "region": "us-east-1"} for i in range(1, 251)
    ]
    settings = settings_for(cf, tmp_path, static=static, api=api)
    report = sync.run_once(settings, options=sync.Options(stop=_StopAfter(1)))
    (zone,) = report.zones
    assert ("interrupted", 100) == (zone.error_reason, zone.created)
    assert 100 == len(cf.mappings(ZONE))
    assert 1 == len(writes(cf))
    again = sync.run_once(settings)
    assert (RunResult.SUCCESS, 150) == (again.result, again.zones[0].created)
    assert 250 == len(cf.mappings(ZONE))


def test_requests_stay_under_a_rate_limit_the_simulator_enforces(tmp_path: Path, api: str):
    """Eight zones pushing at once, two runs back to back with the daemon's one limiter: not
    one request over Cloudflare's quota, counted by the simulator's arrival clock (a request
    over it would be a 429 and block every call for a window)."""
    quota = (20, 1.0)
    static = [
        {"ip": f"198.51.100.{i}", "vendor": "aws", "region": "us-east-1"} for i in range(1, 251)
    ]
    ids = [f"{z:032x}" for z in range(1, 9)]
    zones = [{"id": z, "name": f"z{n}.example.com", "origins": "all"} for n, z in enumerate(ids)]
    with CloudflareSimulator(token=TOKEN, rate_limit=quota) as cf:
        for n, z in enumerate(ids):
            cf.add_zone(z, f"z{n}.example.com")
        settings = settings_for(
            cf,
            tmp_path,
            static=static,
            api=api,
            zones=zones,
            # verify_interval 0: the second run lists every zone too (the most requests).
            cloudflare={"rate_limit": {"requests": quota[0], "period": "1s"}, "verify_interval": 0},
        )
        options = sync.Options(limiter=rate_limiter(settings.cloudflare))
        reports = [sync.run_once(settings, options=options) for _ in range(2)]
        statuses = [r.status for r in cf.requests_matching()]
    assert [RunResult.SUCCESS] * 2 == [r.result for r in reports]
    assert [250] * 8 == [z.created for z in reports[0].zones]
    assert 40 <= len(statuses), "enough requests to pass the quota twice over"
    assert {200} == set(statuses)
