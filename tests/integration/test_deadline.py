"""cloudflare.timeout bounds a whole request, not each socket read (issue 14 item 3)."""

from __future__ import annotations

import json
import time
from pathlib import Path

from syncd.model import RunResult
from syncd.run import once as sync
from syncd.simulators.base import Fault
from tests.conftest import ZONE, settings_for

# A valid, empty mapping list padded with spaces, sent one byte every 0.1 s: 15 s in all, while
# no single read waits longer than 0.1 s, so a per-read timeout of 1 s never fires.
BODY = (
    json.dumps({"success": True, "errors": [], "messages": [], "result": [], "result_info": {}})
    .encode()
    .ljust(150)
)


def test_an_answer_trickling_in_is_cut_at_the_request_deadline(cf, tmp_path: Path):
    assert len(BODY) * 0.1 > 10
    cf.inject(
        Fault(status=200, body=BODY, trickle=0.1, method="GET", path="/origin/cloud_regions$")
    )
    settings = settings_for(cf, tmp_path, cloudflare={"timeout": "1s", "retries": 0}, static=[])
    started = time.monotonic()
    report = sync.run_once(settings)
    took = time.monotonic() - started
    (zone,) = report.zones
    assert RunResult.FAILURE == report.result
    assert "timed out" in zone.error
    assert "transport" == zone.error_reason
    # The deadline, plus a trickled byte in flight and the run's other (quick) requests.
    assert took < 6.0, f"the run took {took:.1f} s; the answer alone takes 15 s"
    assert {} == cf.mappings(ZONE)


def test_a_slow_but_steady_answer_inside_the_deadline_is_read(cf, tmp_path: Path):
    cf.inject(
        Fault(status=200, body=BODY, trickle=0.002, method="GET", path="/origin/cloud_regions$")
    )
    static = [{"ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}]
    settings = settings_for(cf, tmp_path, cloudflare={"timeout": "5s"}, static=static)
    report = sync.run_once(settings)
    assert RunResult.SUCCESS == report.result
    assert {"192.0.2.1": ("aws", "us-east-1")} == cf.mappings(ZONE)
