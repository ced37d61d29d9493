"""`syncd sync` pushes its metrics to a real Pushgateway (Debian ``prometheus-pushgateway``).

Read back from the gateway's /metrics: a success replaces the group; a failed run (a bad token)
replaces everything but the last success timestamp; a gateway that is down changes no exit code.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, ZONE, eventually

pytestmark = pytest.mark.e2e

SYNCD = Path(sys.executable).parent / "syncd"
PUSHGATEWAY = "/usr/bin/prometheus-pushgateway"
INSTANCE = "e2e-batch"
STATIC = [
    {"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"},
    {"ip": "198.51.100.7", "vendor": "azure", "region": "westeurope"},
]
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pushgateway(tmp_path: Path) -> Iterator[str]:
    url = f"http://127.0.0.1:{free_port()}"
    with (tmp_path / "pushgateway.log").open("w") as log:
        proc = subprocess.Popen(
            [PUSHGATEWAY, f"--web.listen-address={url.removeprefix('http://')}"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            eventually(lambda: _answers(f"{url}/-/ready"), "the Pushgateway to start", 10)
            yield url
        finally:
            proc.terminate()
            proc.wait(10)


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def write_config(
    tmp: Path, cf: CloudflareSimulator, pushgateway: str, *, instance: str | None = INSTANCE
) -> Path:
    raw: dict[str, Any] = {
        "cloudflare": {
            "backoff": "10ms",
            "retries": 0,
            "timeout": "5s",
            "api_token": "${CLOUDFLARE_API_TOKEN}",
            "base_url": cf.base_url,
            "api": "v2",
            "zones": [{"id": ZONE, "name": "example.com", "origins": "all"}],
        },
        "collectors": {"request_timeout": "5s", "static": STATIC},
        "state": {"path": str(tmp / "state.db")},
        "metrics": {"pushgateway": pushgateway}
        | ({"instance": instance} if instance is not None else {}),
        "logging": {"format": "json"},
    }
    path = tmp / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def sync(config: Path, *, token: str = TOKEN) -> tuple[int, list[dict[str, Any]]]:
    """Run ``syncd sync``; its exit code and JSON log events."""
    done = subprocess.run(
        [str(SYNCD), "sync", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "CLOUDFLARE_API_TOKEN": token},
        check=False,
    )
    events = []
    for line in done.stderr.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    assert token not in done.stdout + done.stderr
    return done.returncode, events


def group(pushgateway: str) -> Samples:
    """Every sample the gateway holds for job=syncd, instance=INSTANCE."""
    text = httpx.get(f"{pushgateway}/metrics", timeout=5).text
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("job") == "syncd" and s.labels.get("instance") == INSTANCE:
                labels = {k: v for k, v in s.labels.items() if k not in {"job", "instance"}}
                out[(s.name, frozenset(labels.items()))] = s.value
    return out


def sample(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_success_then_failure_keeps_the_last_success(
    cf: CloudflareSimulator, pushgateway: str, tmp_path: Path
):
    config = write_config(tmp_path, cf, pushgateway)
    code, events = sync(config)
    assert 0 == code
    assert [INSTANCE] == [e["instance"] for e in events if e["event"] == "metrics_pushed"]
    first = group(pushgateway)
    success = sample(first, "syncd_last_success_timestamp_seconds")
    assert success is not None
    assert abs(time.time() - success) < 60
    assert 1.0 == sample(first, "syncd_sync_runs_total", result="success")
    assert 1.0 == sample(first, "syncd_mappings", zone="example.com", vendor="aws")
    assert 2.0 == sample(first, "syncd_mapping_changes_total", zone="example.com", action="create")
    assert sample(first, "push_time_seconds") is not None

    code, events = sync(config, token="not-the-token")
    assert 1 == code
    assert ["failure"] == [e["result"] for e in events if e["event"] == "sync_finished"]
    after = group(pushgateway)
    assert success == sample(after, "syncd_last_success_timestamp_seconds")
    assert 1.0 == sample(after, "syncd_sync_runs_total", result="failure")
    assert 0.0 == sample(after, "syncd_sync_runs_total", result="success")
    last_sync = sample(after, "syncd_last_sync_timestamp_seconds")
    assert last_sync is not None
    assert last_sync > success


def test_a_pushgateway_that_is_down_changes_no_exit_code(cf: CloudflareSimulator, tmp_path: Path):
    config = write_config(tmp_path, cf, f"http://127.0.0.1:{free_port()}")
    code, events = sync(config)
    assert 0 == code
    (failed,) = [e for e in events if e["event"] == "metrics_push_failed"]
    assert (INSTANCE, "warning") == (failed["instance"], failed["level"])


def test_origin_coverage_and_smart_tiered_cache_are_pushed_by_a_one_shot_sync(
    cf: CloudflareSimulator, pushgateway: str, tmp_path: Path, dns_sim
):
    config = write_config(tmp_path, cf, pushgateway)
    raw = yaml.safe_load(config.read_text())
    raw["cloudflare"]["zones"][0]["origins"] = "dns"
    raw["resolver"] = {"nameservers": [dns_sim.nameserver], "timeout": "1s"}
    config.write_text(yaml.safe_dump(raw))
    cf.add_dns_record(ZONE, "CNAME", "www.example.com", "edge.example.net")
    cf.add_dns_record(ZONE, "A", "legacy.example.com", "203.0.113.250")
    dns_sim.set_addresses("edge.example.net", "192.0.2.10")
    cf.set_smart_topology(ZONE, False)
    code, events = sync(config)
    assert 0 == code
    assert ["example.com"] == [e["zone"] for e in events if e["event"] == "smart_tiered_cache_off"]
    pushed = group(pushgateway)
    assert 1.0 == sample(pushed, "syncd_zone_origins", zone="example.com", state="mapped")
    assert 1.0 == sample(pushed, "syncd_zone_origins", zone="example.com", state="unmapped")
    assert 0.5 == sample(pushed, "syncd_zone_origin_coverage_ratio", zone="example.com")
    assert 0.0 == sample(pushed, "syncd_zone_smart_tiered_cache", zone="example.com")


def test_the_grouping_key_is_stable_by_default_never_the_host_name(
    cf: CloudflareSimulator, pushgateway: str, tmp_path: Path
):
    # A CronJob's pods each have their own host name: two runs (two pods) must land in one
    # group, or every retired pod's group stays behind and SyncdSyncStale fires for it.
    config = write_config(tmp_path, cf, pushgateway, instance=None)
    for _ in range(2):
        code, events = sync(config)
        assert 0 == code
        assert ["syncd"] == [e["instance"] for e in events if e["event"] == "metrics_pushed"]
    text = httpx.get(f"{pushgateway}/metrics", timeout=5).text
    instances = {
        s.labels.get("instance")
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.labels.get("job") == "syncd"
    }
    assert "syncd" in instances
    assert socket.gethostname() not in instances
