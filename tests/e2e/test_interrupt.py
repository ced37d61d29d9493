"""Ctrl-C and SIGTERM during `syncd sync` (issue 14 item 15): the batch in flight finishes, the
rest is left for the next run, one line and exit 128 + signal; a second signal exits at once."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from syncd.registry import Registry
from syncd.simulators.base import Fault
from tests.conftest import ZONE, eventually
from tests.e2e.harness import MANY, sync_cli, write_config

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_finishes_the_batch_in_flight_and_exits_with_one_line(
    sim, tmp_path: Path, sig: signal.Signals, code: int
):
    config = write_config(tmp_path, sim, collectors={"static": MANY})
    sim.latency = 0.3  # three batches of 100, 100 and 50, each a while
    proc = sync_cli(config)
    eventually(lambda: sim.requests_matching("PUT", "/batch$"), "the first batch")
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=60)
    assert code == proc.returncode, err[-2000:]
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"syncd: stopped by {sig.name}: the batch in flight finished")
    stored = set(sim.mappings(ZONE))
    assert len(stored) in {100, 200}, "whole batches only, and not all three"
    with Registry(tmp_path / "state.db") as store:
        assert stored == {str(ip) for ip in store.ownership.owned(ZONE)}, (
            "every finished batch recorded"
        )
    assert "interrupted" in out  # the summary names the zone left for the next run

    sim.latency = 0.0
    again = sync_cli(config)
    again.communicate(timeout=60)
    assert 0 == again.returncode
    assert {m["ip"] for m in MANY} == set(sim.mappings(ZONE))


def test_a_second_ctrl_c_exits_at_once(sim, tmp_path: Path):
    config = write_config(tmp_path, sim, collectors={"static": MANY})
    # The first batch is held 30 s: a patient exit would wait for it.
    held = Fault(status=200, delay=30.0, method="PUT", path="/batch$", apply=True)
    sim.inject(held)
    proc = sync_cli(config)
    eventually(lambda: held.times == 0, "the first batch arriving and being held")
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    while proc.poll() is None and time.monotonic() - started < 20:
        proc.send_signal(signal.SIGINT)  # the user presses again until syncd is gone
        try:
            proc.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            continue
    _, err = proc.communicate(timeout=5)
    assert 130 == proc.returncode, err[-2000:]
    assert time.monotonic() - started < 20, "it did not wait for the batch in flight"
    assert "Traceback" not in err
    assert "signal_received_again" in err
