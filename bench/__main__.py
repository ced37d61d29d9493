"""``python -m bench`` (``make bench``): issue 10's performance benchmark, in one run.

Drives ``syncd.run.once.run_once`` (what ``syncd sync`` runs) against every simulator, started in a
process of their own with a per-request latency, over the estate of ``bench.estate``: a first
sync, a steady-state sync and a sync after 1% churn at ``--concurrency``, a first sync under a
tight rate limit, a first sync with 100,000 addresses in a fresh process (peak RSS), the planner
on 100,000 synthetic addresses (CPU), and the first sync at concurrency 1 (the naive baseline).
It reports against the issue's targets; it changes nothing outside its temporary directory.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import ctypes
import json
import math
import multiprocessing
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import yaml

from bench import model
from bench.estate import (
    PLAN_RATIO_RECORDED,
    Churn,
    Host,
    Info,
    PhaseLog,
    Spec,
    fresh_sync,
    peak_rss_mb,
    plan_cpu,
    quiet_logs,
    settings_yaml,
    tree_cpu,
)

# 2026-12-08 (issue 26): 39.7 s of process-tree CPU for a steady run of 50,000 addresses.
STEADY_CPU_PER_ADDRESS = 39.7 / 50_000
_PR_SET_CHILD_SUBREAPER = 36  # linux/prctl.h
ZONE_WORKERS = 32  # syncd.run.once pushes up to 32 zones at once (its _ZONE_WORKERS)
RSS_ADDRESSES = 100_000
PLAN_ADDRESSES = 100_000  # whatever --scale: the planner's CPU target is for 100,000
PLAN_ZONES = 10
CORES = len(os.sched_getaffinity(0))  # what syncd's processes can use on this machine
SIMULATOR_SHARE = 0.10  # issue 26: the simulators' CPU under 10% of syncd's in a timed phase


@dataclass
class Phase:
    """One timed ``run_once`` and what the simulators saw of it."""

    name: str
    concurrency: int
    wall: float
    cpu: float  # syncd's whole CPU: this process and its collector child processes
    simulator_cpu: float
    result: str
    addresses: int
    scopes: dict[str, int]
    created: int
    updated: int
    deleted: int
    failures: int
    cloud_requests: dict[str, int]
    cloudflare: dict[str, int]
    writes: int
    rate_limit: tuple[int, float]
    peak_in_window: int  # most requests syncd sent in one window (client-side send times)
    server_peak_in_window: int  # the same by the simulator's arrival times (see _Stamped)
    bound: model.Bound
    ratio: float
    children_cpu: float = 0.0  # of ``cpu``: the vendors' collector processes
    replayed: int = 0  # cloud requests answered from memory by the replayers
    forwarded: int = 0  # cloud requests passed on to a simulator (not rehearsed)
    forwarded_requests: tuple[str, ...] = field(default=(), repr=False)
    outside_cpu: float | None = None  # the same run as a `syncd sync` process (steady state)
    cpu_bound: float = 0.0  # syncd's CPU over the cores it can use: a floor as real as latency
    expected_writes: int | None = None
    notes: list[str] = field(default_factory=list)
    # Kept for the baseline's estimate and the cross-run window; left out of the output.
    workload: model.Workload = field(default_factory=model.Workload, repr=False)
    cloudflare_times: tuple[float, ...] = field(default=(), repr=False)


# --- the scenarios --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    quiet_logs()
    spec = replace(
        Spec(), latency_cloud=args.latency_cloud, latency_cloudflare=args.latency_cloudflare
    ).scaled(args.scale)
    started = time.monotonic()
    out: dict[str, Any] = {"spec": asdict(spec), "concurrency": args.concurrency}
    out["import_seconds"] = _import_collectors()
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        work = Path(tmp)
        phases, naive = _main_scenario(spec, args, work)
        out["phases"] = phases
        if naive is not None:
            out["naive"] = naive
        out["peak_rss_mb_main"] = peak_rss_mb()
        # The three runs share a limiter (as the daemon's do): together they stay under it.
        main_runs = [t for p in phases[:3] for t in p.cloudflare_times]
        out["window_across_runs"] = model.peak_in_window(main_runs, 300.0)
        if not args.skip_rss:
            out["rss_probe"] = _rss_probe(spec, args, work)
        out["planning"] = _in_child(plan_cpu, PLAN_ADDRESSES, PLAN_ZONES)
    out["total_seconds"] = time.monotonic() - started
    out["targets"] = _targets(out)
    if args.json:  # the JSON on stdout, the readable report with the progress on stderr
        print(json.dumps(out, default=_jsonable, indent=2))
        print(_text(out), file=sys.stderr)
    else:
        print(_text(out))
    ok = all(p.result == "success" for p in out["phases"])
    return 0 if ok and (not args.strict or all(t["met"] for t in out["targets"])) else 1


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    p.add_argument("--scale", type=float, default=1.0, help="fraction of the estate (1.0)")
    p.add_argument("--latency-cloud", type=float, default=0.05, help="seconds per cloud request")
    p.add_argument(
        "--latency-cloudflare", type=float, default=0.1, help="seconds per Cloudflare request"
    )
    p.add_argument("--concurrency", type=int, default=32, help="collectors.concurrency (32)")
    p.add_argument("--churn", type=float, default=0.01, help="fraction of addresses changed")
    p.add_argument(
        "--stress-limit",
        default="60/5",
        help="REQUESTS/SECONDS for the rate-limit stress sync ('off' to skip)",
    )
    p.add_argument("--skip-naive", action="store_true", help="no concurrency-1 baseline")
    p.add_argument("--skip-rss", action="store_true", help="no 100,000-address RSS probe")
    p.add_argument(
        "--json", action="store_true", help="JSON on stdout (the readable report on stderr)"
    )
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    return p.parse_args(argv)


def _main_scenario(
    spec: Spec, args: argparse.Namespace, work: Path
) -> tuple[list[Phase], dict[str, Any] | None]:
    """The timed phases on one replayed estate, and the naive baseline on the same estate."""
    from syncd.cloudflare import api

    phases: list[Phase] = []
    naive = None
    c = args.concurrency
    with Host(spec, work / "estate") as host:
        info = _ready(host)
        settings = _settings(info, work / "main", c)
        _say(f"estate seeded in {info.seconds_to_seed:.1f}s: {info.addresses} addresses")
        first_writes = spec.zones * math.ceil(spec.origins / settings.cloudflare.batch_size)
        # One limiter for the three runs, as `syncd run` keeps one for its life.
        limiter = api.rate_limiter(settings.cloudflare)
        phases.append(_timed(host, settings, "first sync", c, limiter, expected=first_writes))
        phases.append(_timed(host, settings, "steady state", c, limiter, expected=0))
        outside = _outside(host, info, work / "main")
        phases[1].notes.append(
            f"the same steady run as `syncd sync` in a fresh process, measured from outside: "
            f"{outside['cpu']:.1f}s of process-tree CPU ({outside['wall']:.1f}s wall, exit "
            f"{outside['exit']}; starting Python, importing syncd and the collectors' fork server "
            "importing the SDKs included)"
        )
        phases[1].outside_cpu = outside["cpu"]
        churn = host.churn(args.churn)
        phases.append(_timed(host, settings, "after 1% churn", c, limiter, churn=churn))
        if args.stress_limit != "off":
            writes = _first_writes(host, settings.cloudflare.batch_size)
            phases.append(_stress(host, info, work, args, writes))
        if not args.skip_naive:
            naive = _naive(host, info, work, phases[0])
    return phases, naive


def _outside(host: Host, info: Info, directory: Path) -> dict[str, Any]:
    """``syncd sync`` on ``directory``'s configuration as a process of its own (a CronJob's run):
    its wall time and the CPU of its whole process tree, the collectors' fork server and the
    vendor processes included. This process is made a child subreaper, so that the fork server,
    which syncd leaves to end on its own, is reparented here and its CPU (with its children's)
    is counted when it is reaped."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")
    host.drain()
    env = {**os.environ, **info.env}
    command = [sys.executable, "-m", "syncd", "sync", "--config", str(directory / "syncd.yaml")]
    ours = _children()  # the simulators' host, this process's own fork server
    t0 = time.perf_counter()
    try:
        child = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL)
        _, code, usage = os.wait4(child.pid, 0)
        wall = time.perf_counter() - t0
        child.returncode = status = os.waitstatus_to_exitcode(code)
        cpu = usage.ru_utime + usage.ru_stime  # syncd and the children it reaped
        while left := _children() - ours:  # what it left to end on its own: the fork server
            for pid in left:
                cpu += sum(os.wait4(pid, 0)[2][:2])  # with the vendor processes it reaped
    finally:
        libc.prctl(_PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
    host.drain()
    return {"cpu": cpu, "wall": wall, "exit": status}


def _children() -> set[int]:
    """This process's live children (/proc)."""
    me, found = str(os.getpid()), set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError):
            if stat.read_text().rpartition(")")[2].split()[1] == me:
                found.add(int(stat.parent.name))
    return found


def _stress(host: Host, info: Info, work: Path, args: argparse.Namespace, writes: int) -> Phase:
    """A first sync again (Cloudflare emptied, new state) under a tight rate limit."""
    requests, _, period = args.stress_limit.partition("/")
    limit = (int(requests), float(period))
    host.reset_cloudflare()
    settings = _settings(info, work / "stress", args.concurrency, rate_limit=limit)
    name = f"first sync, limit {args.stress_limit}s"
    return _timed(host, settings, name, args.concurrency, None, expected=writes)


def _naive(host: Host, info: Info, work: Path, first: Phase) -> dict[str, Any]:
    """The first sync again at concurrency 1, on the same replayed estate (Cloudflare emptied,
    a state database of its own): the baseline the concurrent first sync is compared with."""
    host.reset_cloudflare()
    settings = _settings(info, work / "naive", 1)
    writes = _first_writes(host, settings.cloudflare.batch_size)
    phase = _timed(host, settings, "first sync, concurrency 1", 1, None, expected=writes)
    return {"phase": phase, "speedup": phase.wall / first.wall}


def _first_writes(host: Host, batch: int) -> int:
    """The batch writes a first sync of the estate as it is now must make: each zone's origins
    in batches of ``batch``."""
    return sum(math.ceil(n / batch) for n in host.origins().values())


def _rss_probe(spec: Spec, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """A first sync with 100,000 addresses, alone in a fresh process: its peak and idle RSS,
    with the container image's allocator (``PYTHONMALLOC=malloc``) and with Python's own."""
    big = replace(spec, addresses=round(RSS_ADDRESSES * args.scale))
    probes: dict[str, Any] = {}
    with Host(big, work / "rss-estate", replay=False) as host:  # memory, not time
        info = _ready(host)
        for allocator in ("malloc", "pymalloc"):
            _say(f"RSS probe: first sync of {info.addresses} addresses, {allocator}")
            path = work / f"rss-{allocator}" / "syncd.yaml"  # a state database of its own
            _write_settings(info, path.parent, args.concurrency)
            host.reset_cloudflare()
            env = {**info.env, "PYTHONMALLOC": allocator}
            with _environ(env):  # a spawned child takes its environment at start
                probes[allocator] = _in_child(fresh_sync, str(path), env)
            host.drain()
    return {**probes["malloc"], "pymalloc": probes["pymalloc"]}


@contextlib.contextmanager
def _environ(env: dict[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


# --- one timed sync -------------------------------------------------------------------------


class _Stamped(httpx.HTTPTransport):
    """httpx's own transport (what syncd uses by default), noting when each request leaves.

    The rate limit is checked on these send times: the simulator's arrival times are also
    kept, but its handler threads wait for its own busy interpreter, which bunches them.
    """

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[float] = []
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent.append(time.monotonic())
        return super().handle_request(request)


def _timed(
    host: Host,
    settings: Any,
    name: str,
    concurrency: int,
    limiter: Any,
    *,
    expected: int | None = None,
    churn: Churn | None = None,
) -> Phase:
    from syncd.run import once as sync

    if host.replay and not host.rehearsed:
        _rehearse(host, settings)
    before = host.drain()
    _say(f"{name}: running")
    stamped = _Stamped()
    cpu0, t0 = tree_cpu([host.pid]), time.perf_counter()
    options = sync.Options(http_transport=stamped, limiter=limiter)
    report = sync.run_once(settings, options=options)
    wall = time.perf_counter() - t0
    own, children = (
        after - before for after, before in zip(tree_cpu([host.pid]), cpu0, strict=True)
    )
    cpu = own + children
    log = host.drain()
    limit = (settings.cloudflare.rate_limit.requests, settings.cloudflare.rate_limit.period)
    phase = _phase(name, concurrency, (wall, cpu), report, log, host.spec, limit)
    phase.cloudflare_times = tuple(stamped.sent)
    phase.peak_in_window = model.peak_in_window(stamped.sent, limit[1])
    phase.simulator_cpu = log.simulator_cpu - before.simulator_cpu
    phase.children_cpu = children
    phase.replayed, phase.forwarded = log.replayed, len(log.forwarded)
    phase.notes.append(
        f"simulators' CPU {phase.simulator_cpu:.2f}s: replayers "
        f"{log.replay_cpu - before.replay_cpu:.2f}s ({log.replayed} answers from memory), "
        "Cloudflare and the simulators' host "
        f"{phase.simulator_cpu - (log.replay_cpu - before.replay_cpu):.2f}s"
    )
    phase.forwarded_requests = log.forwarded
    if log.forwarded:
        shown = ", ".join(log.forwarded[:5]) + (", ..." if len(log.forwarded) > 5 else "")
        phase.notes.append(f"cloud requests not rehearsed, passed to the simulators: {shown}")
    phase.cpu_bound = cpu / CORES
    phase.ratio = wall / max(phase.bound.total, phase.cpu_bound, 1e-9)
    if churn is not None:
        expected = churn.expected_writes(settings.cloudflare.batch_size)
        phase.notes.append(
            f"churn: {churn.released} released, {churn.moved} moved, {churn.added} added; "
            f"{sum(churn.upserts.values())} upserts and {sum(churn.deletes.values())} deletes "
            f"in {len(churn.upserts.keys() | churn.deletes.keys())} zones"
        )
    phase.expected_writes = expected
    _say(f"{name}: {wall:.2f}s wall (bound {phase.bound.total:.2f}s), {phase.writes} writes")
    return phase


def _rehearse(host: Host, settings: Any) -> None:
    """Collect once, untimed, so that the replayers hold every cloud answer of the estate as it
    is now, rendered by the simulators themselves; the timed phase is then answered from memory."""
    from syncd.sources import collectors

    t0 = time.perf_counter()
    inventory = collectors.collect(settings)
    host.drain()
    host.rehearsed = True
    _say(
        f"rehearsal: {len(inventory.addresses)} addresses collected in "
        f"{time.perf_counter() - t0:.1f}s, every cloud answer kept by the replayers"
    )


def _phase(  # noqa: PLR0917 (one caller, _timed, in the order it measures)
    name: str,
    concurrency: int,
    times: tuple[float, float],
    report: Any,
    log: PhaseLog,
    spec: Spec,
    limit: tuple[int, float],
) -> Phase:
    wall, cpu = times
    work = log.workload
    bound = model.lower_bound(
        work,
        concurrency=concurrency,
        zone_workers=ZONE_WORKERS,
        cloud_latency=spec.latency_cloud,
        cloudflare_latency=spec.latency_cloudflare,
        rate_limit=limit,
    )
    kinds = log.cloudflare_kinds
    statuses = Counter(o.status.value for o in report.inventory.scopes)
    phase = Phase(
        name=name,
        concurrency=concurrency,
        wall=wall,
        cpu=cpu,
        simulator_cpu=0.0,
        result=report.result.value,
        addresses=len(report.inventory.addresses),
        scopes=dict(statuses),
        created=sum(z.created for z in report.zones),
        updated=sum(z.updated for z in report.zones),
        deleted=sum(z.deleted for z in report.zones),
        failures=sum(len(z.failures) for z in report.zones),
        cloud_requests=log.cloud_requests,
        cloudflare=kinds,
        writes=kinds.get("batch_upsert", 0) + kinds.get("batch_delete", 0),
        rate_limit=limit,
        peak_in_window=0,
        server_peak_in_window=model.peak_in_window((t for t, _ in log.cloudflare_times), limit[1]),
        bound=bound,
        ratio=wall / bound.total if bound.total else math.inf,
        workload=work,
    )
    if report.error:
        phase.notes.append(f"run error: {report.error}")
    return phase


# --- measurements in a fresh process --------------------------------------------------------


def _in_child(func: Any, *args: Any) -> Any:
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=ctx) as pool:
        return pool.submit(func, *args).result()


# --- the report -----------------------------------------------------------------------------


def _targets(out: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 10's targets, each with the measured value and whether it is met."""
    first, steady, churned = out["phases"][:3]
    steady_cpu = steady.cpu if steady.outside_cpu is None else steady.outside_cpu
    rows = [
        _target(
            f"first sync within 1.5x of the larger bound (latency or syncd's CPU / {CORES} cores)",
            f"{first.ratio:.2f}x ({first.wall:.1f}s against max({first.bound.total:.1f}, "
            f"{first.cpu_bound:.1f}))",
            first.ratio <= 1.5,
        ),
        *(
            _target(
                f"{p.name}: the simulators' CPU under 10% of syncd's",
                f"{p.simulator_cpu:.1f}s of {p.cpu:.1f}s ({_share(p):.0%}; cloud answers "
                f"replayed {p.replayed}, forwarded {p.forwarded})",
                _share(p) < SIMULATOR_SHARE,
            )
            for p in [*out["phases"], *([out["naive"]["phase"]] if "naive" in out else [])]
        ),
        _target(
            "steady state: `syncd sync`'s process-tree CPU, measured from outside, at most half "
            f"of 2026-12-08's ({STEADY_CPU_PER_ADDRESS * 1e6:.0f} us an address, so "
            f"{STEADY_CPU_PER_ADDRESS * steady.addresses / 2:.1f}s here)",
            f"{steady_cpu:.1f}s (the same run inside a process that has imported everything "
            f"already, as `syncd run`'s: {steady.cpu:.1f}s)",
            steady_cpu <= STEADY_CPU_PER_ADDRESS * steady.addresses / 2,
        ),
        _target("steady state: zero Cloudflare writes", steady.writes, steady.writes == 0),
        _target(
            "after churn: writes = ceil(changes / 100) per zone",
            f"{churned.writes} (expected {churned.expected_writes})",
            churned.writes == churned.expected_writes,
        ),
        _target(
            "requests never exceed the rate limit (sent and arrived, per run and across runs)",
            ", ".join(
                f"{max(p.peak_in_window, p.server_peak_in_window)}/{p.rate_limit[0]}"
                for p in out["phases"]
            )
            + f"; {out['window_across_runs']}/{out['phases'][0].rate_limit[0]} across runs",
            all(
                max(p.peak_in_window, p.server_peak_in_window) <= p.rate_limit[0]
                for p in out["phases"]
            )
            and out["window_across_runs"] <= out["phases"][0].rate_limit[0],
        ),
    ]
    planning = out["planning"]
    rows.append(
        _target(
            f"planning {planning['addresses']} addresses, {planning['zones']} zones, under 0.5 s "
            f"CPU (best of {planning['repeats']})",
            f"{planning['cpu']:.2f}s (median {planning['median_cpu']:.2f}s; "
            f"{planning['cpu'] / planning['calibration_cpu']:.1f}x the calibration loop, "
            f"recorded best {PLAN_RATIO_RECORDED}x)",
            planning["cpu"] < 0.5,
        )
    )
    if "rss_probe" in out:
        probe = out["rss_probe"]
        py = probe["pymalloc"]
        rows.append(
            _target(
                f"peak RSS under 300 MB with {probe['addresses']} addresses (the image's "
                f"PYTHONMALLOC=malloc; pymalloc: {py['peak_rss_mb']:.0f} MB; the largest "
                f"collector child: {probe['child_peak_rss_mb']:.0f} MB)",
                f"{probe['peak_rss_mb']:.0f} MB",
                probe["peak_rss_mb"] < 300,
            )
        )
        rows.append(
            _target(
                "idle RSS under 120 MB after that sync (syncd run between runs, the image's "
                f"allocator; pymalloc: {py['idle_rss_mb']:.0f} MB; beside it the collectors' fork "
                f"server with the SDKs: {probe['fork_server_rss_mb']:.0f} MB)",
                f"{probe['idle_rss_mb']:.0f} MB",
                probe["idle_rss_mb"] < 120,
            )
        )
    if "naive" in out:
        naive = out["naive"]
        n = naive["phase"]
        rows.append(
            _target(
                "first sync at least 5x faster than at concurrency 1 (same replayed estate)",
                f"{naive['speedup']:.1f}x ({n.wall:.1f}s against {first.wall:.1f}s)",
                naive["speedup"] >= 5,
            )
        )
    return rows


def _share(p: Phase) -> float:
    return p.simulator_cpu / p.cpu if p.cpu else math.inf


def _target(name: str, measured: Any, met: bool) -> dict[str, Any]:
    return {"target": name, "measured": measured, "met": met}


def _text(out: dict[str, Any]) -> str:
    spec = out["spec"]
    lines = [
        f"estate: {spec['addresses']} addresses, {spec['zones']} zones x {spec['origins_per_zone']}"
        f" origins; latency {spec['latency_cloud'] * 1000:.0f} ms cloud, "
        f"{spec['latency_cloudflare'] * 1000:.0f} ms Cloudflare; collectors' fork "
        f"server and its SDKs {out['import_seconds']:.1f}s (not timed)",
        "",
        f"{'phase':34} {'wall':>7} {'bound':>7} {'cpu/n':>6} {'ratio':>6} {'cpu':>6} "
        f"{'kids':>6} {'sims':>6} "
        f"{'cloud':>6} {'cf':>5} {'writes':>9} {'window':>10} result",
    ]
    phases = list(out["phases"])
    if "naive" in out:
        phases.append(out["naive"]["phase"])
    lines += [_phase_line(p) for p in phases]
    lines.append("")
    for p in phases:
        kinds = ", ".join(f"{k} {v}" for k, v in sorted(p.cloudflare.items()))
        lines.append(f"{p.name}: Cloudflare {kinds}; {p.addresses} addresses, scopes {p.scopes}")
        lines.append(
            f"    mappings created {p.created}, updated {p.updated}, deleted {p.deleted}, "
            f"failed {p.failures}"
        )
        lines.append(
            f"    most requests in {p.rate_limit[1]:g} s: {p.peak_in_window} sent by syncd, "
            f"{p.server_peak_in_window} by the simulator's arrival clock (limit {p.rate_limit[0]})"
        )
        b = p.bound
        lines.append(
            f"    bound {b.total:.2f}s = max(collect {b.collect:.2f}, Cloudflare reads "
            f"{b.cf_read:.2f}) + push {b.push:.2f} (rate floor {b.rate:.2f}; plain floor "
            f"{b.floor:.2f}); cloud requests {p.cloud_requests}"
        )
        lines += [f"    {note}" for note in p.notes]
    lines += ["", *_extras(out), "", "targets:"]
    lines += [
        f"  [{'met' if t['met'] else 'MISSED'}] {t['target']}: {t['measured']}"
        for t in out["targets"]
    ]
    return "\n".join(lines)


def _phase_line(p: Phase) -> str:
    expected = "" if p.expected_writes is None else f"/{p.expected_writes}"
    return (
        f"{p.name:34} {p.wall:7.2f} {p.bound.total:7.2f} {p.cpu_bound:6.2f} {p.ratio:6.2f} "
        f"{p.cpu:6.2f} {p.children_cpu:6.2f} {p.simulator_cpu:6.2f} "
        f"{sum(p.cloud_requests.values()):6d} "
        f"{sum(p.cloudflare.values()):5d} {str(p.writes) + expected:>9} "
        f"{p.peak_in_window:>4}/{p.rate_limit[0]:<5} {p.result}"
    )


def _extras(out: dict[str, Any]) -> list[str]:
    planning = out["planning"]
    lines = [
        f"peak RSS of this process (all syncs above): {out['peak_rss_mb_main']:.0f} MB",
        f"most Cloudflare requests in 300 s across the three runs: {out['window_across_runs']}",
        f"planning {planning['addresses']} addresses, {planning['zones']} zones: resolve "
        f"{planning['resolve_cpu']:.2f}s + build {planning['build_cpu']:.2f}s CPU; RSS "
        f"{planning['inventory_rss_mb']:.0f} MB with the inventory, {planning['peak_rss_mb']:.0f}"
        " MB peak",
    ]
    if "rss_probe" in out:
        probe = out["rss_probe"]
        lines.append(
            f"fresh process, first sync of {probe['addresses']} addresses: peak RSS "
            f"{probe['peak_rss_mb']:.0f} MB, {probe['wall']:.1f}s, {probe['result']}"
        )
    if "naive" in out:
        n = out["naive"]
        lines.append(
            f"naive (concurrency 1): {n['phase'].wall:.1f}s; model {n['phase'].bound.total:.1f}s;"
            f" speedup {n['speedup']:.1f}x"
        )
    return lines


# --- plumbing -------------------------------------------------------------------------------


def _ready(host: Host) -> Info:
    assert host.info is not None
    os.environ.update(host.info.env)
    return host.info


def _write_settings(
    info: Info, directory: Path, concurrency: int, rate_limit: tuple[int, float] = (1200, 300.0)
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    raw = settings_yaml(
        info, concurrency=concurrency, state=directory / "state.db", rate_limit=rate_limit
    )
    path = directory / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def _settings(
    info: Info, directory: Path, concurrency: int, rate_limit: tuple[int, float] = (1200, 300.0)
) -> Any:
    from syncd import config

    return config.load(_write_settings(info, directory, concurrency, rate_limit))


def _import_collectors() -> float:
    """Start the collectors' fork server with every vendor's SDK before timing (``syncd run``
    pays that once, at its first run); return how long it took."""
    import syncd.run.once  # noqa: F401 (imported for its cost)
    from syncd.model import Vendor
    from syncd.sources.collectors import process

    t0 = time.perf_counter()
    process.preload(Vendor)
    child = multiprocessing.get_context("forkserver").Process(target=time.sleep, args=(0,))
    child.start()
    child.join()
    return time.perf_counter() - t0


def _say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


_HIDDEN = frozenset({"workload", "cloudflare_times", "forwarded_requests"})


def _jsonable(value: Any) -> Any:
    if isinstance(value, Phase):
        return {k: getattr(value, k) for k in value.__dataclass_fields__ if k not in _HIDDEN}
    if hasattr(value, "__dataclass_fields__"):
        return asdict(value)
    return str(value)


if __name__ == "__main__":
    sys.exit(main())
