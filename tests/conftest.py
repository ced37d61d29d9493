"""Shared by every level: a Cloudflare simulator on loopback, config builders, and polling."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml
from hypothesis import settings as hypothesis_settings

from syncd import config
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.simulators.dns import DnsSimulator

# Property tests are deterministic (a fixed derivation of each test's seed) so CI is repeatable;
# run with --hypothesis-seed=<n> to explore other inputs locally.
hypothesis_settings.register_profile("syncd", derandomize=True, deadline=None)
hypothesis_settings.load_profile("syncd")

_T = TypeVar("_T")
TOKEN = "test-token-5c1b0e"
ZONE = "0123456789abcdef0123456789abcdef"
ZONE2 = "fedcba9876543210fedcba9876543210"


@pytest.fixture
def cf() -> Iterator[CloudflareSimulator]:
    """A strict Cloudflare API on 127.0.0.1:<ephemeral> with one zone, example.com."""
    sim = CloudflareSimulator(token=TOKEN)
    sim.add_zone(ZONE, "example.com")
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


@pytest.fixture
def dns_sim() -> Iterator[DnsSimulator]:
    """A recursive resolver's answers on 127.0.0.1:<ephemeral> (UDP and TCP), empty."""
    with DnsSimulator() as sim:
        yield sim


class Clock:
    """A run's wall clock, moved by the test (verification is due by wall-clock time)."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def settings_for(
    cf: CloudflareSimulator,
    tmp_path: Path,
    *,
    static: list[dict[str, str]] | None = None,
    zones: list[dict[str, Any]] | None = None,
    api: str = "v2",
    **sections: Any,
) -> config.Settings:
    """Settings aimed at the simulator; extra keyword arguments become top-level sections."""
    raw: dict[str, Any] = {
        "cloudflare": {
            "backoff": "10ms",
            "retries": 3,
            "timeout": "1s",
            "api_token": TOKEN,
            "base_url": cf.base_url,
            "api": api,
            "zones": zones or [{"id": ZONE, "name": "example.com", "origins": "all"}],
        },
        "collectors": {"request_timeout": "1s", "static": static or []},
        "state": {"path": str(tmp_path / "state.db")},
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value}
    return config.validate(raw)


def write_config(path: Path, settings_raw: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(settings_raw))
    return path


def eventually(check: Callable[[], _T | None], what: str, deadline: float = 20.0) -> _T:
    """Poll ``check`` until it returns something truthy and return that, or fail the test after
    ``deadline`` seconds naming ``what`` it waited for. The one way tests wait: never a sleep."""
    end = time.monotonic() + deadline
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > end:
            pytest.fail(f"timed out after {deadline:g}s waiting for {what}")
        threading.Event().wait(0.02)
