"""Fixtures shared by the end-to-end tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, ZONE


@pytest.fixture
def sim() -> Iterator[CloudflareSimulator]:
    """A strict Cloudflare API on loopback with one zone, example.com, for the installed CLI."""
    with CloudflareSimulator(token=TOKEN) as s:
        s.add_zone(ZONE, "example.com")
        yield s
