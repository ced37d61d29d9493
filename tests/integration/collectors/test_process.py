"""A vendor's collection in its own child process: the real google-cloud SDK in a ``spawn`` child
against the GCP simulator, results streamed back, hung and crashed children failed, never
trusted, and the SDK's log records logged by the parent."""

from __future__ import annotations

import functools
import gc
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from syncd.config import CollectorsConfig
from syncd.model import Inventory, ScopeStatus, Vendor
from syncd.run import once as sync
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.simulators.gcp import GcpSimulator
from syncd.sources import collectors
from syncd.sources.collectors import process, runner
from syncd.sources.collectors.base import CollectorSettings
from tests.conftest import ZONE, eventually, settings_for
from tests.integration.collectors.test_gcp import seed_estate

SETTINGS = CollectorSettings(scope_timeout=30.0, request_timeout=10.0, max_attempts=2)
# A body the simulator sends a byte every quarter second: 50 s, far past every deadline below.
HANG = Fault(status=200, body=b"{" + b" " * 198 + b"}", trickle=0.25, times=99, method="GET")


@pytest.fixture
def sim(gcp_server: GcpSimulator) -> Iterator[GcpSimulator]:
    gcp_server.reset()
    yield gcp_server
    gcp_server.clear_faults()


def gcp_section(sim: GcpSimulator, tmp_path: Path, projects: list[str]) -> dict[str, Any]:
    return {
        "name": "gcp",
        "projects": projects,
        "credentials_file": str(sim.write_service_account(tmp_path / "key.json")),
        "api_endpoint": sim.url,
        "resource_manager_endpoint": sim.url,
    }


def shape(inventory: Inventory) -> dict[str, Any]:
    """Everything the planner reads of an inventory, durations (which vary) left out."""
    return {
        "addresses": sorted(
            (str(a.ip), a.region, a.resource, a.tags, str(a.scope_key), a.vendor, a.account)
            for a in inventory.addresses
        ),
        "skips": sorted((s.subject, s.reason, s.detail, s.region) for s in inventory.skips),
        "scopes": [
            (str(o.scope.key), o.status, o.reason, o.retryable, o.error, o.addresses)
            for o in inventory.scopes
        ],
        "collectors": [(c.collector, c.enumerated, c.reason) for c in inventory.collectors],
    }


def test_a_childs_inventory_is_the_in_process_one(sim: GcpSimulator, tmp_path: Path):
    """Same addresses, skips and outcomes as the collectors give in this process, a failed
    project's chunks (sent before it failed) dropped; chunks of three, so every scope sends
    several."""
    seed_estate(sim, "web-prod")
    seed_estate(sim, "web-broken")
    broken = "/projects/web-broken/global/forwardingRules$"
    sim.inject(GcpSimulator.fault(500, path=broken, times=99))
    cfg = CollectorsConfig.model_validate(
        {"gcp": [gcp_section(sim, tmp_path, ["web-prod", "web-broken"])]}
    )
    job = process.Job(vendor=Vendor.GCP, config=cfg, settings=SETTINGS, chunk=3)
    child = process.collect(job, concurrency=2)

    with ThreadPoolExecutor(2) as pool:
        here = runner.run(
            process.vendor_collectors(cfg, Vendor.GCP, settings=SETTINGS), executor=pool
        )
    assert shape(here) == shape(child)
    statuses = {str(o.scope.key): o.status for o in child.scopes}
    assert {"gcp/web-prod": ScopeStatus.OK, "gcp/web-broken": ScopeStatus.FAILED} == statuses
    assert len(child.addresses) == 9
    assert {"gcp/web-prod"} == {str(a.scope_key) for a in child.addresses}


def test_a_hung_sdk_call_is_killed_at_scope_timeout_and_deletes_nothing(
    sim: GcpSimulator, cf: CloudflareSimulator, tmp_path: Path
):
    """A peer that trickles its answer defeats every per-read timeout: the child is killed at
    ``scope_timeout``, the run ends, the scope is failed (timeout) and its mapping stays."""
    sim.add_project("web-prod")
    sim.add_instance("web-prod", "us-central1-a", "vm", nat_ips=["35.192.0.1"])
    gcp = {"gcp": [gcp_section(sim, tmp_path, ["web-prod"])], "attempts": 1}
    static = [{"ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}]
    first = sync.run_once(settings_for(cf, tmp_path, static=static, collectors=gcp))
    assert first.result.value == "success"
    assert {"35.192.0.1", "192.0.2.1"} == set(cf.mappings(ZONE))

    sim.inject(HANG)
    hung = {**gcp, "scope_timeout": "1s", "request_timeout": "30s"}
    started = time.monotonic()
    report = sync.run_once(settings_for(cf, tmp_path, static=static, collectors=hung))
    took = time.monotonic() - started

    (scope,) = [o for o in report.inventory.scopes if o.scope.vendor is Vendor.GCP]
    assert (scope.status, scope.reason, scope.retryable) == (ScopeStatus.FAILED, "timeout", True)
    assert "gcp/web-prod: not collected: the gcp collector process was killed" in scope.error
    assert "collectors.scope_timeout (1s)" in scope.error
    assert took < 30, f"the hung call was not cut off: the run took {took:.1f}s"
    assert report.result.value == "partial"
    assert {"35.192.0.1", "192.0.2.1"} == set(cf.mappings(ZONE))


def test_a_child_that_dies_fails_its_vendors_scopes(sim: GcpSimulator, tmp_path: Path):
    """An OOM kill, say: the scope is failed (error) naming the signal, never empty."""
    sim.add_project("web-prod")
    sim.inject(HANG)
    cfg = CollectorsConfig.model_validate({"gcp": [gcp_section(sim, tmp_path, ["web-prod"])]})
    job = process.Job(vendor=Vendor.GCP, config=cfg, settings=SETTINGS)
    found: list[Inventory] = []
    collecting = threading.Thread(target=lambda: found.append(process.collect(job, concurrency=1)))
    collecting.start()
    eventually(lambda: sim.requests_matching("GET", "/aggregated/"), "the scope's first call")
    (child,) = [p for p in multiprocessing.active_children() if p.name == "syncd-collect-gcp"]
    assert child.pid is not None
    os.kill(child.pid, signal.SIGKILL)
    collecting.join(60)

    (inventory,) = found
    (scope,) = inventory.scopes
    assert (scope.status, scope.reason, scope.retryable) == (ScopeStatus.FAILED, "error", False)
    assert "the gcp collector process was killed by signal 9" in scope.error
    assert not inventory.complete()


def test_the_sdks_log_records_reach_this_processs_logging(
    sim: GcpSimulator, cf: CloudflareSimulator, tmp_path: Path, caplog: pytest.LogCaptureFixture
):
    """urllib3's debug lines from the child arrive here, marked with the child's name; the
    service account's private key appears in none of them."""
    caplog.set_level(logging.DEBUG, logger="urllib3")
    sim.add_project("web-prod")
    section = gcp_section(sim, tmp_path, ["web-prod"])
    settings = settings_for(cf, tmp_path, collectors={"gcp": [section]})
    inventory = collectors.collect(settings)
    assert inventory.complete()
    forwarded = [r for r in caplog.records if r.processName == "syncd-collect-gcp"]
    assert any(
        r.name.startswith("urllib3") and "/projects/web-prod/aggregated/addresses" in r.message
        for r in forwarded
    ), [r.message for r in forwarded]
    key = Path(section["credentials_file"]).read_text()
    private = key.split("-----BEGIN PRIVATE KEY-----")[1][:40]
    assert not [r for r in caplog.records if private in r.getMessage()]


def test_shutdown_ends_a_vendors_process_at_once(sim: GcpSimulator, tmp_path: Path):
    """SIGTERM mid-collection: the child is killed now, not at scope_timeout (30 s here), and
    what it had not finished is failed, never trusted."""
    sim.add_project("web-prod")
    sim.inject(HANG)
    cfg = CollectorsConfig.model_validate({"gcp": [gcp_section(sim, tmp_path, ["web-prod"])]})
    job = process.Job(vendor=Vendor.GCP, config=cfg, settings=SETTINGS)
    stop = threading.Event()
    found: list[Inventory] = []
    collecting = threading.Thread(
        target=lambda: found.append(process.collect(job, concurrency=1, stop=stop))
    )
    collecting.start()
    eventually(lambda: sim.requests_matching("GET", "/aggregated/"), "the scope's first call")
    asked = time.monotonic()
    stop.set()
    collecting.join(60)
    took = time.monotonic() - asked

    (inventory,) = found
    (scope,) = inventory.scopes
    assert (scope.status, scope.reason) == (ScopeStatus.FAILED, "error")
    assert "the gcp collector process was stopped: syncd is shutting down" in scope.error
    assert took < 10, f"the child outlived the shutdown by {took:.1f}s"
    assert not inventory.complete()


def test_a_child_that_crashes_before_listing_fails_every_collector_of_its_vendor(
    sim: GcpSimulator, tmp_path: Path
):
    """A child that raises before its collectors list anything (here: a pool of no threads)
    exits with code 1: the vendor's collectors are not listed, so none of their mappings can be
    deleted, and the error says how the child ended."""
    sim.add_project("web-prod")
    cfg = CollectorsConfig.model_validate({"gcp": [gcp_section(sim, tmp_path, ["web-prod"])]})
    job = process.Job(vendor=Vendor.GCP, config=cfg, settings=SETTINGS)

    inventory = process.collect(job, concurrency=0)

    (collector,) = inventory.collectors
    assert (collector.collector, collector.enumerated, collector.reason) == ("gcp", False, "error")
    assert collector.error == "gcp: scopes not listed: the gcp collector process exited with code 1"
    assert (inventory.addresses, inventory.scopes) == ((), ())
    assert not inventory.complete()


def _fork_servers() -> list[int]:
    """This process's children that are multiprocessing fork servers (from /proc)."""
    me, found = str(os.getpid()), []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = stat.read_text().rpartition(")")[2].split()[1]
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if ppid == me and b"multiprocessing.forkserver" in command:
            found.append(int(stat.parent.name))
    return found


def _ended(pid: int) -> bool:
    """``pid`` has exited (a zombie, or reaped): not merely dying, whose parent would still
    see it running."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")


def test_a_fork_server_that_died_is_started_again_by_the_next_collection(
    sim: GcpSimulator, tmp_path: Path
):
    """An OOM kill of the fork server between two runs of ``syncd run``: the next collection
    starts a new one and collects everything."""
    seed_estate(sim, "web-prod")
    cfg = CollectorsConfig.model_validate({"gcp": [gcp_section(sim, tmp_path, ["web-prod"])]})
    job = process.Job(vendor=Vendor.GCP, config=cfg, settings=SETTINGS)
    first = process.collect(job, concurrency=1)
    assert first.complete()
    (server,) = _fork_servers()

    os.kill(server, signal.SIGKILL)
    eventually(lambda: _ended(server), "the fork server to end")
    second = process.collect(job, concurrency=1)

    assert second.complete()
    assert shape(first) == shape(second)
    assert [server] != _fork_servers()


def test_the_childs_side_streams_chunks_outcomes_and_log_records(sim: GcpSimulator, tmp_path: Path):
    """``child_main`` run here, in a thread, over a real pipe: the parent reads the child's
    start, each collector's listing, each scope's start, its chunks and outcome, the SDK's log
    records at the levels asked for, and the end, in that order, and the chunks' records rebuild
    the in-process collection's addresses."""
    seed_estate(sim, "web-prod")
    cfg = CollectorsConfig.model_validate({"gcp": [gcp_section(sim, tmp_path, ["web-prod"])]})
    job = process.Job(
        vendor=Vendor.GCP,
        config=cfg,
        settings=SETTINGS,
        levels=(("", logging.WARNING), ("urllib3", logging.DEBUG)),
        chunk=2,
    )
    reader, writer = multiprocessing.Pipe(duplex=False)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    urllib3_level = logging.getLogger("urllib3").level
    messages: list[Any] = []
    try:
        child = threading.Thread(
            target=process.child_main, args=(job, writer, 1, dict(os.environ), str(Path.cwd()))
        )
        child.start()
        while True:
            message = reader.recv()
            messages.append(message)
            if type(message).__name__ == "_ChildEnd":
                break
        child.join(30)
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        logging.getLogger("urllib3").setLevel(urllib3_level)
        reader.close()

    kinds = [type(m).__name__ for m in messages if type(m).__name__ != "_ChildLog"]
    assert kinds[:3] == ["_ChildReady", "_ScopesListed", "_ScopeStarted"]
    assert kinds[-2:] == ["_ScopeDone", "_ChildEnd"]
    assert set(kinds[3:-2]) == {"_ChunkFound"}
    logs = [m for m in messages if type(m).__name__ == "_ChildLog"]
    assert any(m.logger.startswith("urllib3") and m.level == logging.DEBUG for m in logs)
    records = [r for m in messages if hasattr(m, "records") for r in m.records]
    with ThreadPoolExecutor(1) as pool:
        here = runner.run(
            process.vendor_collectors(cfg, Vendor.GCP, settings=SETTINGS), executor=pool
        )
    expected = [(a.ip.packed, a.region, a.resource, a.tags) for a in here.addresses]
    assert sorted(expected) == sorted(records)
    assert len(records) > job.chunk


def test_a_vendor_process_starts_with_the_fork_servers_imports_out_of_the_gcs_walks():
    """What the fork server imported (syncd, the SDK) is frozen before it forks: a vendor
    process's collections never walk those objects (syncd/sources/collectors/frozen.py)."""
    process.preload([Vendor.GCP])
    for server in _fork_servers():  # one an earlier test started (process.collect preloads nothing)
        os.kill(server, signal.SIGKILL)
        eventually(functools.partial(_ended, server), "the fork server to end")
    ctx = multiprocessing.get_context("forkserver")
    with ctx.Pool(1) as pool:  # a server started now, with syncd's preload
        frozen = pool.apply(gc.get_freeze_count)
    # syncd's modules and the SDK's message types (0 without the freeze).
    assert frozen > 50_000
