"""One Cloudflare budget across processes and tools, over real HTTP against the simulator's
enforced per-user limit (every request counts; one over the quota is a 429)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry

from syncd import cli, config
from syncd.model import RunResult
from syncd.registry import Registry, load_window
from syncd.run import once as sync
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.views import metrics
from tests.conftest import TOKEN

STATIC = [{"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"}]
ZONES = 5  # per run: GET /zones, supported regions, then per zone a list, the two Tiered
# Cache settings (issue 16) and a write, and the traffic's two GraphQL queries (the settings
# node and the fetches of the five zones, issue 25): 24 requests
GRAPHQL = 2  # the first run's; a run inside cloudflare.observe.interval sends none
PER_RUN = 2 + 4 * ZONES + GRAPHQL


def simulator(quota: int, window: float) -> CloudflareSimulator:
    sim = CloudflareSimulator(token=TOKEN, rate_limit=(quota, window))
    for n in range(ZONES):
        sim.add_zone(f"{n + 1:032x}", f"z{n}.example")
    return sim


@pytest.fixture
def small() -> Any:
    """Cloudflare's limit scaled down to one run: 22 requests per 2 seconds."""
    sim = simulator(PER_RUN, 2.0)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def raw_for(cf: CloudflareSimulator, tmp_path: Path, requests: int, period: str) -> dict[str, Any]:
    return {
        "cloudflare": {
            "backoff": "10ms",
            "retries": 0,
            "timeout": "2s",
            "api_token": TOKEN,
            "base_url": cf.base_url,
            "rate_limit": {"requests": requests, "period": period},
            "verify_interval": 0,  # every run lists every zone: the most requests per run
            "zone_discovery": {"defaults": {"origins": "all"}},
        },
        "collectors": {"request_timeout": "2s", "static": STATIC},
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"format": "json", "level": "error"},
    }


def refused(cf: CloudflareSimulator) -> int:
    return sum(1 for r in cf.requests if r.status == 429)


@pytest.fixture
def roomy() -> Any:
    """30 requests per 2 seconds: one run (24 requests) fits, two back to back do not."""
    sim = simulator(30, 2.0)
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def test_back_to_back_sync_processes_share_one_window(roomy, tmp_path: Path, capsys):
    """Each `syncd sync` builds its own limiter, as a CronJob's processes do; the second
    starts where the first's window left off, so Cloudflare never refuses one."""
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw_for(roomy, tmp_path, 30, "2s")))
    assert 0 == cli.main(["sync", "--config", str(path)])
    first = len(roomy.requests)
    assert PER_RUN == first
    saved = load_window(tmp_path / "state.db")
    assert first == len(saved.taken)
    assert 0 == cli.main(["sync", "--config", str(path)])
    capsys.readouterr()
    assert 0 == refused(roomy)
    # The second run writes nothing and reads the traffic from the state database.
    assert 2 * first - ZONES - GRAPHQL == len(roomy.requests)


def test_without_the_server_headers_the_persisted_window_alone_keeps_the_limit(tmp_path: Path):
    sim = simulator(30, 2.0)
    # Answers without rate-limit headers (as through a proxy that strips them): only syncd's
    # own count, carried across processes in the state database, paces it.
    sim.rate_limit_headers = False
    sim.start()
    try:
        settings = config.validate(raw_for(sim, tmp_path, 30, "2s"))
        for _ in range(2):
            report = sync.run_once(settings)  # a fresh limiter each time: a new process
            assert RunResult.SUCCESS == report.result
            assert "syncd" == report.budget_source
        assert 0 == refused(sim)
    finally:
        sim.stop()


def test_the_servers_headers_pace_a_run_whose_own_limit_is_too_high(small, tmp_path: Path):
    """Another tool spent most of the user's quota: only Cloudflare's headers say so."""
    settings = config.validate(raw_for(small, tmp_path, 1200, "5m"))
    report = sync.run_once(settings)
    assert RunResult.SUCCESS == report.result
    assert 0 == refused(small)
    assert "server" == report.budget_source
    assert report.budget_remaining is not None
    assert 0 <= report.budget_remaining < PER_RUN
    registry = CollectorRegistry()
    metrics.Metrics(registry).observe(report)
    assert report.budget_remaining == registry.get_sample_value("syncd_cloudflare_budget_remaining")


def test_a_plan_reads_the_window_but_never_writes_it(small, tmp_path: Path):
    settings = config.validate(raw_for(small, tmp_path, PER_RUN, "2s"))
    sync.run_once(settings)
    before = load_window(tmp_path / "state.db")
    sync.run_once(settings, options=sync.Options(dry_run=True))
    assert before == load_window(tmp_path / "state.db")


def test_a_missing_or_unreadable_state_file_is_an_empty_window(tmp_path: Path):
    assert () == load_window(tmp_path / "none.db").taken
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"not a database" * 100)
    assert () == load_window(garbage).taken
    old = tmp_path / "old.db"
    with Registry(old) as store:
        store.window.save(load_window(garbage))
    assert () == load_window(old).taken


def test_a_run_failed_by_cloudflare_still_hands_its_requests_on(small, tmp_path: Path):
    """GET /zones answers 500 (retried once): the run fails before its store is opened, and
    the next process still counts the two requests it sent."""
    raw = raw_for(small, tmp_path, PER_RUN, "2s")
    raw["cloudflare"]["retries"] = 1
    small.inject(Fault(status=500, path="^/client/v4/zones$", times=2))
    report = sync.run_once(config.validate(raw))
    assert RunResult.FAILURE == report.result
    assert 2 == len(small.requests) == len(load_window(tmp_path / "state.db").taken)
