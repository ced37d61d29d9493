"""`syncd demo` and `syncd sync` through the installed CLI, on every simulated cloud."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from syncd import demo

pytestmark = pytest.mark.e2e
SYNCD = str(Path(sys.executable).with_name("syncd"))


def test_demo_runs_every_step_in_under_a_minute():
    started = time.monotonic()
    done = subprocess.run([SYNCD, "demo"], capture_output=True, text=True, timeout=120, check=False)
    elapsed = time.monotonic() - started
    assert 0 == done.returncode, done.stderr[-2000:]
    assert elapsed < 60
    out = done.stdout
    for step in range(1, 6):
        assert f"step {step}/5" in out
    assert "writes to Cloudflare in this run: 0" in out
    for reason in (
        "non_public",
        "unsupported_region",
        "conflict",
        "global_anycast",
        "undiscovered_origin",
        "unallocated",
    ):
        assert f"skip:{reason}" in out
    assert f"update                   {demo.MOVED_IP}" in out
    assert f"delete                   {demo.RELEASED_IP}" in out
    # What Cloudflare really fetched: an origin only traffic shows is mapped, the rest judged.
    assert "syncd origins --observed" in out
    assert "observed traffic" in out
    assert "98% of 7,920 origin fetches went to mapped addresses" in out
    assert "hint effect 88%" in out
    assert "too new to judge" in out


EXPECTED = {
    "aws-demo": {
        "203.0.113.10": ("aws", "us-east-1"),
        "203.0.113.11": ("aws", "us-east-1"),
        "203.0.113.20": ("aws", "eu-west-1"),
    },
    "gcp-demo": {
        "34.120.0.5": ("gcp", "us-central1"),
        "198.51.100.30": ("gcp", "us-central1"),
        "198.51.100.40": ("gcp", "europe-west1"),
        "2001:db8:a::10": ("gcp", "europe-west1"),
    },
    "azure-demo": {"198.51.100.50": ("azure", "eastus"), "2001:db8:b::1": ("azure", "westeurope")},
    "oci-demo": {"192.0.2.60": ("oci", "us-ashburn-1"), "192.0.2.61": ("oci", "eu-frankfurt-1")},
}


@pytest.mark.parametrize("collector", list(EXPECTED))
def test_sync_with_one_cloud_collector_creates_exactly_its_mappings(collector, tmp_path):
    with demo.estate(tmp_path) as estate:
        raw = yaml.safe_load(estate.config_path.read_text())
        vendor = collector.split("-")[0]
        raw["collectors"] = {vendor: raw["collectors"][vendor]}
        raw["cloudflare"]["zones"] = [raw["cloudflare"]["zones"][0]]
        estate.config_path.write_text(yaml.safe_dump(raw))
        env = {**os.environ, **estate.env}
        done = subprocess.run(
            [SYNCD, "sync", "--config", str(estate.config_path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        held = estate.cloudflare.mappings(demo.ZONE_ALL)
    held.pop("192.0.2.200")  # the hand-made mapping the demo seeds; never touched
    # 203.0.113.99 is a conflict only between AWS and Azure; either alone maps it.
    alone = {"aws-demo": ("aws", "us-east-1"), "azure-demo": ("azure", "westeurope")}
    if collector in alone:
        assert alone[collector] == held.pop("203.0.113.99")
    assert EXPECTED[collector] == held
    assert 0 == done.returncode, done.stdout + done.stderr[-2000:]
    assert estate.env["CLOUDFLARE_API_TOKEN"] not in done.stdout + done.stderr


def test_discover_lists_the_simulated_estate(tmp_path):
    with demo.estate(tmp_path) as estate:
        env = {**os.environ, **estate.env}
        done = subprocess.run(
            [SYNCD, "discover", "--config", str(estate.config_path), "--output", "csv"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert 0 == done.returncode, done.stderr[-2000:]
    rows = {line.split(",")[0]: line.split(",") for line in done.stdout.splitlines()[1:]}
    _, vendor, region, collector, account, resource = rows["203.0.113.20"]
    assert ("aws", "eu-west-1", "aws-demo", demo.AWS_ACCOUNT) == (
        vendor,
        region,
        collector,
        account,
    )
    assert resource.startswith("eip/eipalloc-")
    assert "gcp-demo" == rows["2001:db8:a::10"][3]
    assert "oci-demo" == rows["192.0.2.61"][3]
    assert "10.0.0.5" in rows, "discover lists what plan would skip, too"
