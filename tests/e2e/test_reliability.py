"""Crashes, a soak under random faults, and secrets, through the installed CLI."""

from __future__ import annotations

import random
import signal
from pathlib import Path

import httpx
import pytest

from syncd.registry import Registry
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import cf_error
from tests.conftest import ZONE, eventually
from tests.e2e.harness import MANY, Syncd, sync_cli, write_config

pytestmark = pytest.mark.e2e


def test_sigkill_between_batches_then_restart_converges_exactly(sim, tmp_path: Path):
    config = write_config(tmp_path, sim, collectors={"static": MANY})
    sim.latency = 0.3  # each batch takes a while: the kill lands between two of them
    proc = sync_cli(config)
    eventually(lambda: sim.requests_matching("PUT", "/batch$"), "the first batch")
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    stored = set(sim.mappings(ZONE))
    assert 0 < len(stored) < 250, "killed mid-run, between batches"
    with Registry(tmp_path / "state.db") as store:
        owned = {str(ip) for ip in store.ownership.owned(ZONE)}
    assert owned <= stored, "the ownership store only holds what Cloudflare acknowledged"

    sim.latency = 0.0
    sim.clear_requests()
    again = sync_cli(config)
    _, err = again.communicate(timeout=60)
    assert 0 == again.returncode, err[-2000:]
    assert {m["ip"] for m in MANY} == set(sim.mappings(ZONE))
    sent = [item["origin_ip"] for r in sim.requests_matching("PUT", "/batch$") for item in r.json()]
    assert len(sent) == len(set(sent)), "no IP sent twice"
    assert set(sent).isdisjoint(stored), "what Cloudflare held was not sent again"
    with Registry(tmp_path / "state.db") as store:
        assert set(sim.mappings(ZONE)) == {str(ip) for ip in store.ownership.owned(ZONE)}


def _sample(pid: int) -> tuple[int, int, int]:
    status = Path(f"/proc/{pid}/status").read_text().splitlines()
    fields = dict(line.split(":", 1) for line in status)
    rss_kb = int(fields["VmRSS"].split()[0])
    threads = int(fields["Threads"])
    fds = len(list(Path(f"/proc/{pid}/fd").iterdir()))
    return rss_kb, threads, fds


def test_soak_under_random_faults_keeps_memory_threads_and_files_flat(sim, tmp_path: Path):
    """Many short cycles with faults injected at random; bounded to about 15 s."""
    rng = random.Random(1234)
    config = write_config(
        tmp_path,
        sim,
        collectors={"static": MANY, "request_timeout": "1s"},
        schedule={"interval": "200ms"},
        cloudflare={"retries": 1, "timeout": "1s"},
    )
    daemon = Syncd(config)
    faults = [
        lambda: cf_error(500, 1140, "Internal error.", path="/batch$"),
        lambda: cf_error(429, 971, "rate limited", headers={"Retry-After": "0"}),
        lambda: Fault(drop=True, path="/cloud_regions$"),
        lambda: Fault(status=502, body=b"<html>bad gateway</html>"),
        lambda: Fault(status=200, body=b"{", path="/supported_regions$"),
    ]
    try:
        daemon.wait_for("sync_finished", 10)
        pid = daemon.proc.pid
        early = _sample(pid)
        for cycle in range(11, 61):
            if rng.random() < 0.5:
                sim.inject(rng.choice(faults)())
            if cycle % 10 == 0:
                # Churn: one address leaves and comes back, so writes keep happening.
                sim.set_mapping(ZONE, "198.51.100.1", "aws", "eu-west-1")
            daemon.wait_for("sync_finished", cycle)
        late = _sample(pid)
        assert 200 == httpx.get(daemon.url("/healthz")).status_code
    finally:
        daemon.stop()
    print(
        f"soak: RSS {early[0]} -> {late[0]} kB, threads {early[1]} -> {late[1]}, "
        f"open files {early[2]} -> {late[2]}"
    )
    results = [e["result"] for e in daemon.named("sync_finished")]
    assert "success" in results[-10:], "it keeps converging between faults"
    assert late[0] - early[0] < 20_000, f"RSS grew from {early[0]} kB to {late[0]} kB"
    assert late[1] <= early[1] + 2, f"threads {early[1]} -> {late[1]}"
    assert late[2] <= early[2] + 3, f"open files {early[2]} -> {late[2]}"
    assert {m["ip"] for m in MANY} <= set(sim.mappings(ZONE))
