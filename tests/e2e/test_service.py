"""`syncd run`, the installed CLI as a subprocess, against the Cloudflare simulator.

A real Prometheus (Debian package ``prometheus``) scrapes it on loopback and is queried through
its HTTP API; /healthz and /readyz are followed through a sync cycle; SIGTERM in the middle of a
run lets the run finish and exits 0; ``promtool check metrics`` lints a real scrape.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, ZONE, eventually
from tests.e2e.harness import EXPECTED, Prometheus, Syncd, write_config

pytestmark = pytest.mark.e2e

PROMTOOL = "/usr/bin/promtool"


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Syncd]:
    """One daemon, synced at least once, shared by the read-only tests of this module."""
    s = CloudflareSimulator(token=TOKEN)
    s.add_zone(ZONE, "example.com")
    s.start()
    daemon = Syncd(write_config(tmp_path_factory.mktemp("service"), s))
    try:
        daemon.wait_for("sync_finished")
        yield daemon
    finally:
        daemon.stop()
        s.stop()


@pytest.fixture
def prometheus(service: Syncd, tmp_path: Path) -> Iterator[Prometheus]:
    prom = Prometheus(tmp_path, f"127.0.0.1:{service.port}")
    try:
        yield prom
    finally:
        prom.stop()


def test_prometheus_scrapes_the_syncd_series(prometheus: Prometheus):
    # Prometheus 2.42 applies new scrape targets after up to 5 s; then one scrape per second.
    eventually(
        lambda: prometheus.query('syncd_sync_runs_total{result="success"} >= 1'),
        "the first scrape with a successful run",
    )
    assert {"syncd": 1.0} == prometheus.values("up", "job")
    assert {"aws": 1.0, "gcp": 1.0, "azure": 1.0, "oci": 0.0} == prometheus.values(
        'syncd_mappings{zone="example.com"}', "vendor"
    )
    assert {"static": 4.0} == prometheus.values("syncd_discovered_addresses", "collector")
    assert {"create": 3.0, "update": 0.0, "delete": 0.0} == prometheus.values(
        'syncd_mapping_changes_total{zone="example.com"}', "action"
    )
    assert (
        1.0
        == prometheus.values('syncd_skipped_addresses{zone="example.com"}', "reason")["non_public"]
    )
    assert ["static"] == list(
        prometheus.values('syncd_collector_runs_total{result="ok"} > 0', "collector")
    )
    assert prometheus.query("time() - syncd_last_success_timestamp_seconds < 60")
    assert prometheus.query('sum(syncd_cloudflare_requests_total{code="200"}) > 0')
    assert prometheus.query('syncd_build_info{version!=""} == 1')


def test_promtool_check_metrics_on_a_real_scrape(service: Syncd):
    scrape = httpx.get(service.url("/metrics"), timeout=5)
    assert 200 == scrape.status_code
    assert 'syncd_sync_runs_total{result="success"}' in scrape.text
    lint = subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=scrape.text,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert (0, "") == (lint.returncode, lint.stdout + lint.stderr)
    assert TOKEN not in scrape.text


def test_healthz_and_readyz_through_a_sync_cycle(sim: CloudflareSimulator, tmp_path: Path):
    sim.latency = 1.0  # the first run cannot finish before the first look at /readyz
    config = write_config(tmp_path, sim, metrics={"stale_after": "2s"})
    daemon = Syncd(config)
    try:
        assert 200 == httpx.get(daemon.url("/healthz")).status_code
        before = httpx.get(daemon.url("/readyz"))
        assert (503, "no sync has completed yet\n") == (before.status_code, before.text)
        sim.latency = 0.0
        eventually(lambda: httpx.get(daemon.url("/readyz")).status_code == 200, "ready")
        assert EXPECTED == sim.mappings(ZONE)
        # From now on every run fails: readiness lasts until the success is 2 s old.
        sim.inject(Fault(status=500, times=1_000_000))
        stale = eventually(
            lambda: r if (r := httpx.get(daemon.url("/readyz"))).status_code == 503 else None,
            "readyz to turn 503 once the last success is stale",
        )
        assert stale.text.startswith("last success ")
        assert 200 == httpx.get(daemon.url("/healthz")).status_code
        assert daemon.named("sync_finished")[-1]["result"] == "failure"
    finally:
        daemon.stop()


def test_sigterm_mid_run_stops_after_the_batch_in_flight_and_exits_0(
    sim: CloudflareSimulator, tmp_path: Path
):
    """The run in flight sends no further batch after SIGTERM; the next start converges."""
    sim.latency = 0.4  # a run makes several requests: it lasts more than a second
    config = write_config(tmp_path, sim)
    daemon = Syncd(config)
    try:
        daemon.wait_for("sync_started")
        sent = time.monotonic()
        daemon.proc.send_signal(signal.SIGTERM)
        code = daemon.proc.wait(15)
        elapsed = time.monotonic() - sent
        daemon.stop()
        assert 0 == code
        assert elapsed < 10.0  # schedule.shutdown_timeout
        names = [e["event"] for e in daemon.events]
        assert names.index("signal_received") < names.index("sync_finished")
        assert names.index("sync_finished") < names.index("shutdown_finished")
        (zone,) = daemon.named("zone_synced")
        # Either the one batch was already in flight (and completed), or none was sent.
        if zone.get("created"):
            assert EXPECTED == sim.mappings(ZONE)
        else:
            assert {} == sim.mappings(ZONE)
        assert TOKEN not in "".join(daemon.raw)
    finally:
        daemon.stop()
    sim.latency = 0.0
    again = Syncd(config)
    try:
        again.wait_for("sync_finished")
        assert EXPECTED == sim.mappings(ZONE)
    finally:
        again.stop()
