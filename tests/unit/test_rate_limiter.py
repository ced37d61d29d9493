"""The client-side rate limiter on a simulated clock: slots are counted when really taken."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncd.cloudflare.transport import RateLimiter


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
