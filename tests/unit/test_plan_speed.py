"""Planning's CPU guard (issue 26 item 5): a ratio to the same run's calibration loop.

The machine this runs on is shared and of unknown speed, so no absolute time is asserted:
planning 100,000 addresses across 10 zones (``bench.estate.plan_cpu``, the best of three) is
read against the best of a fixed pure-Python loop measured in the same process a moment before,
and fails when that ratio is more than three times the best ratio recorded
(``bench.estate.PLAN_RATIO_RECORDED``, how it was measured in docs/benchmarks.md).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

from bench.estate import PLAN_RATIO_RECORDED, plan_cpu

TOLERANCE = 3.0


@contextlib.contextmanager
def untraced() -> Iterator[None]:
    """No trace function (coverage's, under ``make test``) while measuring: it slows the
    planner's code several times and the calibration loop's (outside syncd) not at all."""
    tracer = sys.gettrace()
    sys.settrace(None)
    try:
        yield
    finally:
        sys.settrace(tracer)


def test_planning_100000_addresses_costs_at_most_3x_its_best_recorded_ratio():
    with untraced():
        measured = plan_cpu(100_000, 10, repeats=3)
    ratio = measured["cpu"] / measured["calibration_cpu"]
    assert ratio <= TOLERANCE * PLAN_RATIO_RECORDED, (
        f"planning took {measured['cpu']:.2f}s CPU (median {measured['median_cpu']:.2f}s), "
        f"{ratio:.1f}x the calibration loop's {measured['calibration_cpu']:.3f}s; the best "
        f"recorded is {PLAN_RATIO_RECORDED}x (limit {TOLERANCE * PLAN_RATIO_RECORDED:.1f}x): "
        "profile plan.resolve and plan.build (docs/benchmarks.md, 'Planning')"
    )
    assert measured["addresses"] == 100_000
