"""The client-side rate limiter on a simulated clock: slots are counted when really taken."""

from __future__ import annotations

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.cloudflare.transport import RateLimiter, ServerQuota, WindowLeft, server_quota
from syncd.model import RateWindow, WindowSource


class Clock:
    """A clock that only moves when the limiter sleeps, or when a test says so."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0, "the limiter never sleeps for nothing"
        self.now += seconds


def limiter(requests: int, period: float, clock: Clock) -> RateLimiter:
    return RateLimiter(requests, period, clock=clock, sleep=clock.sleep)


def test_a_full_window_waits_for_its_oldest_slot_plus_headroom():
    clock = Clock()
    rl = limiter(20, 10.0, clock)
    times = []
    for _ in range(20):
        rl.acquire()
        times.append(clock.now)
    # 5% fewer slots (19) and each held 5% longer (10.5 s).
    assert [0.0] * 19 + [10.5] == times


def test_a_late_thread_is_counted_when_it_really_goes():
    clock = Clock()
    rl = limiter(20, 10.0, clock)
    for _ in range(19):
        rl.acquire()
    clock.now = 30.0  # everyone's slot expired long ago: no waiting, no burst debt
    rl.acquire()
    assert 30.0 == clock.now


def test_a_429_pauses_everyone():
    clock = Clock()
    rl = limiter(1200, 300.0, clock)
    rl.acquire()
    rl.pause(7.0)
    rl.acquire()
    assert 7.0 == clock.now


@given(
    requests=st.integers(1, 50),
    period=st.floats(0.5, 600),
    gaps=st.lists(st.floats(0, 5), min_size=1, max_size=200),
)
def test_never_more_than_the_limit_in_any_window(requests, period, gaps):
    clock = Clock()
    rl = limiter(requests, period, clock)
    sent = []
    for gap in gaps:
        clock.now += gap
        rl.acquire()
        sent.append(clock.now)
    for i, start in enumerate(sent):
        in_window = [t for t in sent[i:] if t < start + period]
        assert len(in_window) <= max(1, int(requests * 0.95))


def quota(**headers: str) -> ServerQuota | None:
    return server_quota(httpx.Headers(headers))


def test_the_ietf_headers_cloudflare_documents_are_read():
    assert ServerQuota(50, 30.0, None) == quota(Ratelimit='"default";r=50;t=30')
    assert ServerQuota(50, 30.0, 1200) == quota(
        Ratelimit='"default";r=50;t=30', **{"Ratelimit-Policy": '"default";q=1200;w=300'}
    )
    # Several limits: the one with the fewest requests left, with its own policy.
    assert ServerQuota(3, 12.0, 100) == quota(
        Ratelimit='"default";r=50;t=30, "burst";r=3;t=12',
        **{"Ratelimit-Policy": '"default";q=1200;w=300, "burst";q=100;w=60'},
    )


def test_the_x_ratelimit_headers_are_read_too():
    assert ServerQuota(7, 20.0, 1200) == quota(
        **{"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "20", "X-RateLimit-Limit": "1200"}
    )
    epoch = quota(**{"X-RateLimit-Remaining": "7", "X-RateLimit-Reset": "4102444800"})
    assert epoch is not None
    assert 7 == epoch.remaining
    assert epoch.reset == 300.0, "an epoch reset far ahead is capped like Retry-After"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Ratelimit": "garbage"},
        {"Ratelimit": '"default";r=-1;t=3'},
        {"Ratelimit": '"default";r=5;t=soon'},
        {"X-RateLimit-Remaining": "many"},
    ],
)
def test_unreadable_headers_are_ignored(headers):
    assert quota(**headers) is None


def test_the_servers_remaining_quota_paces_sending_until_its_reset():
    clock = Clock()
    rl = limiter(1200, 300.0, clock)
    rl.observe(ServerQuota(remaining=63, reset=40.0, limit=1200))  # reserve: 60 of 1200
    for _ in range(3):
        rl.acquire()
    assert 0.0 == clock.now
    assert WindowLeft(60, WindowSource.SERVER) == rl.window_left()
    rl.acquire()  # the server's figure is down to the reserve: wait for its window
    assert 40.0 == clock.now
    assert WindowLeft(1200 * 95 // 100 - 4, WindowSource.SYNCD) == rl.window_left()


def test_out_of_order_answers_keep_the_lowest_figure_of_a_window():
    clock = Clock()
    rl = limiter(1200, 300.0, clock)
    rl.observe(ServerQuota(remaining=100, reset=30.0))
    rl.observe(ServerQuota(remaining=400, reset=30.2))
    assert WindowLeft(100, WindowSource.SERVER) == rl.window_left()
    clock.now = 31.0
    rl.observe(ServerQuota(remaining=900, reset=299.0))  # a new window
    assert WindowLeft(900, WindowSource.SERVER) == rl.window_left()


def test_the_window_survives_a_process_in_wall_clock_time():
    clock, wall = Clock(), Clock()
    wall.now = 1_000_000.0
    first = RateLimiter(20, 10.0, clock=clock, sleep=clock.sleep, wall=wall)
    for _ in range(19):
        first.acquire()
    first.pause(3.0)
    saved = first.window()
    assert (19, 1_000_003.0) == (len(saved.taken), saved.paused_until)

    # The next process: its monotonic clock starts elsewhere, wall time went on by 2 s.
    clock2, wall.now = Clock(), 1_000_002.0
    clock2.now = 500.0
    second = RateLimiter(20, 10.0, clock=clock2, sleep=clock2.sleep, wall=wall)
    second.restore(saved)
    second.restore(saved)  # only the first restore counts: a daemon's limiter knows its own
    assert WindowLeft(0, WindowSource.SYNCD) == second.window_left()
    second.acquire()
    assert 508.5 == clock2.now, "the oldest slot (2 s ago) frees 10.5 s after it was taken"


def test_a_restored_pause_holds_and_requests_from_the_future_are_ignored():
    clock, wall = Clock(), Clock()
    wall.now = 100.0
    rl = RateLimiter(20, 10.0, clock=clock, sleep=clock.sleep, wall=wall)
    rl.restore(RateWindow(taken=(150.0,), paused_until=104.0))
    assert WindowLeft(19, WindowSource.SYNCD) == rl.window_left()
    rl.acquire()
    assert 4.0 == clock.now
