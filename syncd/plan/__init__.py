"""The planner: from an inventory and what Cloudflare holds to one ``ZonePlan`` per zone.

Pure: no I/O, no clock, no logging, no globals. Two steps, a module each:

    resolve.py  run-wide   normalize -> public? -> supported region? -> dedupe / conflicts
    build.py    per zone   select (collectors, tags, DNS origins) -> diff -> ownership ->
                           deletions (policy, protection, mass-delete guard) -> capacity
"""

from syncd.plan.build import Health, PlanSettings, build, index
from syncd.plan.resolve import RegionMatcher, Resolved, ip_order, non_public_reason, resolve

__all__ = [
    "Health",
    "PlanSettings",
    "RegionMatcher",
    "Resolved",
    "build",
    "index",
    "ip_order",
    "non_public_reason",
    "resolve",
]
