"""The latency model: how fast a sync could be, given the requests it had to make.

Pure arithmetic over request counts (taken from the simulators' request logs by ``bench.estate``):
no I/O, no clock, nothing from syncd. A sync's wall time can be no shorter than its longest chain
of dependent requests, with each cloud vendor's tasks sharing ``concurrency`` workers (syncd runs
each vendor's collectors in a process of their own, with that many workers) and zones sharing the
zone workers. CPU time is deliberately not in the model: the ratio wall / bound shows it.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Task:
    """Sequential requests one worker makes (a collector's listing, an account's AssumeRole, a
    scope's pages), startable once the task named by ``after`` has finished."""

    key: str
    requests: int
    after: str = ""


@dataclass(frozen=True, slots=True)
class Workload:
    """One sync's requests, as chains.

    ``tasks`` run on their vendor's collector pool (cloud latency); a task's vendor is its key's
    first part without digits (``oci0/...`` and ``oci1/...`` share OCI's pool). Cloudflare (its
    latency): ``cf_setup`` sequential requests first (supported regions), then each zone's read
    chain (mapping pages and DNS pages) at the same time as collection; a zone's writes start when
    both are done.
    """

    tasks: tuple[Task, ...] = ()
    cf_setup: int = 0
    cf_reads: tuple[int, ...] = ()
    cf_writes: tuple[int, ...] = ()

    @property
    def cloud_requests(self) -> int:
        return sum(t.requests for t in self.tasks)

    @property
    def cloudflare_requests(self) -> int:
        return self.cf_setup + sum(self.cf_reads) + sum(self.cf_writes)


@dataclass(frozen=True, slots=True)
class Bound:
    """Seconds. ``total`` is the scheduled model (greedy, longest task first, on the real worker
    counts); ``floor`` the plain lower bound max(longest chain, work / workers) of each phase.
    ``push`` is never less than the rate limit allows for the writes alone; ``rate`` is the
    same for every Cloudflare request of the run."""

    collect: float
    cf_read: float
    push: float
    rate: float
    total: float
    floor: float


def makespan(tasks: Sequence[Task], workers: int, latency: float) -> float:
    """Finish time of ``tasks`` on ``workers``, scheduled greedily (longest ready task first).

    A task is ready when the task it comes ``after`` has finished. Raises ``ValueError`` for an
    ``after`` that names no task, or for a cycle.
    """
    if workers < 1:
        raise ValueError("workers must be at least 1")
    keys = {t.key for t in tasks}
    missing = sorted({t.after for t in tasks if t.after and t.after not in keys})
    if missing:
        raise ValueError(f"tasks come after unknown tasks: {missing}")
    finish: dict[str, float] = {}
    pending = list(tasks)
    free = [0.0] * min(workers, max(1, len(tasks)))
    while pending:
        ready = [t for t in pending if not t.after or t.after in finish]
        if not ready:
            raise ValueError("the tasks' dependencies form a cycle")
        at = heapq.heappop(free)
        started = [t for t in ready if finish.get(t.after, 0.0) <= at]
        if started:
            task = max(started, key=lambda t: t.requests)
        else:
            task = min(ready, key=lambda t: finish[t.after])
        start = max(at, finish.get(task.after, 0.0))
        finish[task.key] = start + task.requests * latency
        pending.remove(task)
        heapq.heappush(free, finish[task.key])
    return max(finish.values(), default=0.0)


def floor(tasks: Sequence[Task], workers: int, latency: float) -> float:
    """max(longest dependency chain, total work / workers): no schedule can beat it."""
    by_key = {t.key: t for t in tasks}
    memo: dict[str, int] = {}

    def chain(task: Task) -> int:
        if task.key not in memo:
            before = by_key.get(task.after)
            memo[task.key] = task.requests + (chain(before) if before is not None else 0)
        return memo[task.key]

    longest = max((chain(t) for t in tasks), default=0)
    work = sum(t.requests for t in tasks)
    return max(longest, work / workers) * latency


def by_vendor(tasks: Iterable[Task]) -> dict[str, list[Task]]:
    """Tasks grouped by the vendor whose process runs them (the module's docstring)."""
    groups: dict[str, list[Task]] = {}
    for task in tasks:
        groups.setdefault(task.key.split("/", 1)[0].rstrip("0123456789"), []).append(task)
    return groups


def rate_floor(requests: int, limit: int, period: float) -> float:
    """The least time ``requests`` take under at most ``limit`` per sliding ``period``."""
    # Request k (from 0) can go no earlier than (k // limit) periods after the first.
    return ((requests - 1) // limit) * period if requests > 0 else 0.0


def lower_bound(
    work: Workload,
    *,
    concurrency: int,
    zone_workers: int,
    cloud_latency: float,
    cloudflare_latency: float,
    rate_limit: tuple[int, float] = (1200, 300.0),
) -> Bound:
    """The bound for ``work``: max(collection, Cloudflare reads) + pushes, and the rate limit."""
    zones = max(1, min(zone_workers, len(work.cf_reads) or 1))
    reads = [Task(f"read/{i}", n) for i, n in enumerate(work.cf_reads)]
    writes = [Task(f"write/{i}", n) for i, n in enumerate(work.cf_writes)]
    setup = work.cf_setup * cloudflare_latency
    vendors = by_vendor(work.tasks).values()
    collect = max((makespan(t, concurrency, cloud_latency) for t in vendors), default=0.0)
    cf_read = setup + makespan(reads, zones, cloudflare_latency)
    # Writes wait for the plan, so the rate limit paces them on their own.
    writes_total = sum(work.cf_writes)
    paced = rate_floor(writes_total, *rate_limit) + cloudflare_latency if writes_total else 0.0
    push = max(makespan(writes, zones, cloudflare_latency), paced)
    rate = rate_floor(work.cloudflare_requests, *rate_limit)
    floor_total = max(
        max((floor(t, concurrency, cloud_latency) for t in vendors), default=0.0),
        setup + floor(reads, zones, cloudflare_latency),
    ) + max(floor(writes, zones, cloudflare_latency), paced)
    return Bound(
        collect=collect,
        cf_read=cf_read,
        push=push,
        rate=rate,
        total=max(max(collect, cf_read) + push, rate),
        floor=max(floor_total, rate),
    )


def peak_in_window(times: Iterable[float], period: float) -> int:
    """The most of ``times`` (request arrivals, in seconds) in any window of ``period``."""
    ordered = sorted(times)
    most = 0
    start = 0
    for end, at in enumerate(ordered):
        while ordered[start] <= at - period:
            start += 1
        most = max(most, end - start + 1)
    return most
