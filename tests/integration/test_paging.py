"""Every paged Cloudflare list ends (issue 14 item 2): empty pages end it, a list longer than it
can be is a malformed answer that fails the zone safely, never an endless loop."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from syncd.model import RunResult
from syncd.run import once as sync
from syncd.simulators.base import Fault
from tests.conftest import ZONE, settings_for


def page(result: list[Any], total_pages: int) -> bytes:
    info = {"page": 1, "per_page": 100, "count": len(result), "total_pages": total_pages}
    envelope = {"success": True, "errors": [], "messages": [], "result": result}
    return json.dumps(envelope | {"result_info": info}).encode()


def listing(cf, path: str, result: list[Any], total_pages: int, times: int = 10_000) -> None:
    cf.inject(
        Fault(status=200, body=page(result, total_pages), method="GET", path=path, times=times)
    )


MAPPINGS = r"/origin/cloud_regions$"
ENTRY = {"origin_ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}


def test_empty_pages_with_a_huge_total_end_the_mapping_list_at_once(cf, tmp_path: Path):
    listing(cf, MAPPINGS, [], 1_000_000)
    static = [{"ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}]
    report = sync.run_once(settings_for(cf, tmp_path, static=static))
    assert RunResult.SUCCESS == report.result
    assert 1 == len(cf.requests_matching("GET", MAPPINGS))
    assert {"192.0.2.1": ("aws", "us-east-1")} == cf.mappings(ZONE)


def test_a_mapping_list_that_never_ends_fails_the_zone_without_deleting(cf, tmp_path: Path):
    cf.set_mapping(ZONE, "192.0.2.9", "aws", "us-east-1")
    zones = [{"id": ZONE, "name": "example.com", "origins": "all", "policy": "sync"}]
    listing(cf, MAPPINGS, [ENTRY] * 100, 1_000_000)
    report = sync.run_once(settings_for(cf, tmp_path, zones=zones))
    assert RunResult.FAILURE == report.result  # its only zone failed: exit 1
    (z,) = report.zones
    assert "more than 40 pages of 100 mappings" in z.error
    assert "transport" == z.error_reason
    assert 40 == len(cf.requests_matching("GET", MAPPINGS)), "3,500 / 100 + 5 pages, then stop"
    assert [] == cf.requests_matching("DELETE")


@pytest.mark.parametrize("total_pages", [1_000_000, None])
def test_dns_records_end_on_an_empty_page_or_at_the_cap(cf, tmp_path: Path, total_pages):
    zones = [{"id": ZONE, "name": "example.com", "origins": "dns"}]
    record = {"id": "r1", "type": "A", "name": "a.example.com", "content": "192.0.2.1"}
    dns = r"/dns_records$"
    if total_pages is None:  # full pages for ever, no total: only the cap stops it
        body = json.dumps(
            {"success": True, "errors": [], "messages": [], "result": [record] * 5000}
        ).encode()
        cf.inject(Fault(status=200, body=body, method="GET", path=dns, times=10_000))
    else:  # one short page, then empty pages claiming a million more
        listing(cf, dns, [record], total_pages, times=1)
        listing(cf, dns, [], total_pages)
    report = sync.run_once(settings_for(cf, tmp_path, zones=zones))
    asked = len(cf.requests_matching("GET", dns))
    if total_pages is None:
        assert (RunResult.FAILURE, 200) == (report.result, asked)
        assert "more than 200 pages of 5000 DNS records" in report.zones[0].error
    else:
        assert (RunResult.SUCCESS, 2) == (report.result, asked)
