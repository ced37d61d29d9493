"""The benchmark's latency model (bench/model.py): schedules, floors and the rate-limit window."""

from __future__ import annotations

import pytest

from bench.model import (
    Task,
    Workload,
    by_vendor,
    floor,
    lower_bound,
    makespan,
    peak_in_window,
    rate_floor,
)


def test_makespan_schedules_the_longest_ready_task_first():
    tasks = [Task(f"t{i}", n) for i, n in enumerate((2, 3, 2, 3, 2))]
    # Two workers: 3 | 3, then 2 | 2, then 2 -> 3 + 2 + 2.
    assert 7.0 == makespan(tasks, 2, 1.0)
    assert 12.0 == makespan(tasks, 1, 1.0)
    assert 3.0 == makespan(tasks, 8, 1.0)


def test_makespan_starts_a_task_only_after_the_one_it_follows():
    tasks = [
        Task("aws/list", 2),
        Task("aws/role/1", 1, after="aws/list"),
        Task("aws/1/us-east-1", 2, after="aws/role/1"),
        Task("gcp/list", 1),
        Task("gcp/p1", 4, after="gcp/list"),
    ]
    # aws: 2 + 1 + 2 = 5; gcp: 1 + 4 = 5; enough workers for both chains at once.
    assert 0.5 == pytest.approx(makespan(tasks, 4, 0.1))
    # One worker does all ten requests, whatever the order.
    assert 1.0 == pytest.approx(makespan(tasks, 1, 0.1))


def test_makespan_refuses_unknown_or_circular_dependencies():
    with pytest.raises(ValueError, match="unknown"):
        makespan([Task("a", 1, after="nowhere")], 1, 1.0)
    with pytest.raises(ValueError, match="cycle"):
        makespan([Task("a", 1, after="b"), Task("b", 1, after="a")], 1, 1.0)
    assert 0.0 == makespan([], 4, 1.0)


def test_floor_is_the_longest_chain_or_the_work_per_worker():
    chain = [Task("a", 5), Task("b", 5, after="a"), Task("c", 1)]
    assert 10.0 == floor(chain, 8, 1.0)
    wide = [Task(f"t{i}", 2) for i in range(10)]
    assert 5.0 == floor(wide, 4, 1.0)
    assert floor(wide, 4, 1.0) <= makespan(wide, 4, 1.0)


def test_rate_floor_counts_whole_windows():
    assert 0.0 == rate_floor(0, 1200, 300.0)
    assert 0.0 == rate_floor(1200, 1200, 300.0)
    assert 300.0 == rate_floor(1201, 1200, 300.0)
    assert 600.0 == rate_floor(2401, 1200, 300.0)


def test_lower_bound_overlaps_collection_with_reads_then_adds_the_pushes():
    work = Workload(
        tasks=(Task("c/list", 1), *(Task(f"c/s{i}", 2, after="c/list") for i in range(8))),
        cf_setup=1,
        cf_reads=(2, 31),
        cf_writes=(30, 1),
    )
    bound = lower_bound(
        work, concurrency=4, zone_workers=32, cloud_latency=0.05, cloudflare_latency=0.1
    )
    # Collection: 1 + two rounds of 2 requests at 50 ms; reads: 1 + 31 at 100 ms.
    assert 0.25 == pytest.approx(bound.collect)
    assert 3.2 == pytest.approx(bound.cf_read)
    assert 3.0 == pytest.approx(bound.push)
    assert 6.2 == pytest.approx(bound.total)
    assert bound.floor <= bound.total
    assert 65 == work.cloudflare_requests
    assert 17 == work.cloud_requests


def test_each_vendor_collects_on_its_own_workers():
    # syncd runs each vendor's collectors in a process of their own with `concurrency` workers:
    # AWS's 10 requests and OCI's two tenancies' 4 + 4 overlap, even at concurrency 1.
    work = Workload(
        tasks=(Task("aws/list", 10), Task("oci0/list", 4), Task("oci1/list", 4)),
    )
    bound = lower_bound(
        work, concurrency=1, zone_workers=1, cloud_latency=0.5, cloudflare_latency=0.1
    )
    assert 5.0 == pytest.approx(bound.collect)  # AWS alone; OCI's 8 share one worker (4 s)
    assert {"aws": 1, "oci": 2} == {k: len(v) for k, v in by_vendor(work.tasks).items()}
    assert bound.floor <= bound.total


def test_lower_bound_is_never_below_what_the_rate_limit_allows():
    work = Workload(cf_setup=1, cf_reads=(1,), cf_writes=(30,))
    bound = lower_bound(
        work,
        concurrency=1,
        zone_workers=1,
        cloud_latency=0.05,
        cloudflare_latency=0.1,
        rate_limit=(10, 5.0),
    )
    assert 15.0 == bound.rate  # 32 requests, 10 per 5 s: the last leaves in the fourth window
    assert 10.1 == pytest.approx(bound.push)  # the 30 writes alone need three windows
    assert 15.0 == bound.total


def test_peak_in_window_counts_arrivals_in_any_sliding_period():
    assert 0 == peak_in_window([], 5.0)
    assert 3 == peak_in_window([0.0, 1.0, 2.0, 10.0], 5.0)
    assert 1 == peak_in_window([0.0, 5.0, 10.0], 5.0)  # a window is half-open: (t - 5, t]
    assert 2 == peak_in_window([9.0, 0.0, 4.9], 5.0)  # order does not matter
