"""Prometheus metrics: every syncd metric, declared on a registry passed in, fed from the report.

``Metrics.observe(report)`` is the one place metrics change; the report is the truth and the
metrics are a view of it. ``push()`` sends a one-shot run's registry to a Pushgateway. This module
never registers on the global ``REGISTRY`` and never puts an IP or account id in a label.
"""

from __future__ import annotations

import contextlib
import os
import platform
from collections import Counter as Tally
from collections.abc import Iterable
from urllib.parse import urlsplit

import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import push_to_gateway, pushadd_to_gateway
from prometheus_client.metrics_core import Metric

from syncd import __version__
from syncd.config import MetricsConfig
from syncd.model import (
    CollectorOutcome,
    CoverageState,
    Inventory,
    Reason,
    RunReport,
    RunResult,
    ScopeOutcome,
    ScopeStatus,
    SkipReason,
    Vendor,
    ZoneReport,
    coverage_counts,
)

log = structlog.stdlib.get_logger(__name__)

JOB = "syncd"
DEFAULT_INSTANCE = (
    "syncd"  # the grouping key when metrics.instance is unset: stable, never a pod name
)
LAST_SUCCESS = "syncd_last_success_timestamp_seconds"
_PUSH_TIMEOUT = 10.0
# A sync takes seconds (static) to many minutes (an organisation of accounts).
_RUN_BUCKETS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600)
_REQUEST_BUCKETS = (0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_ACTIONS = ("create", "update", "delete")
_COLLECTOR_RESULTS = ("ok", "failed", "skipped")


_ITEM = "item"  # ItemFailure's reason for an item Cloudflare refused
_RETRIED = ("transport", "http_429")  # a retry's reason for no answer, and for the rate limit


class Metrics:
    """Every metric syncd exports, on the registry given (the daemon's, or a one-shot run's)."""

    def __init__(self, registry: CollectorRegistry, *, error_reasons: Iterable[str] = ()) -> None:
        """``error_reasons``: every reason a collector can fail for (collectors/failures.py, a
        layer this module may not import): each collector's errors start at zero for each, so
        the dashboard's error panel has series before the first error."""
        self.registry = registry
        self._error_reasons = tuple(error_reasons)
        self._skipped_keys: set[tuple[str, str]] = set()
        self._failed_in_a_row = 0
        self._declare_run(registry)
        self._declare_last_run(registry)
        self._declare_collectors(registry)
        self._declare_zones(registry)
        self._declare_origins(registry)
        self._declare_observed(registry)
        self._declare_cloudflare(registry)
        self.build_info.labels(
            version=__version__,
            revision=os.environ.get("SYNCD_REVISION") or "unknown",
            python_version=platform.python_version(),
        ).set(1)
        for result in RunResult:
            self.runs.labels(result=result.value)

    def _declare_run(self, r: CollectorRegistry) -> None:
        self.build_info = Gauge(
            "syncd_build_info",
            "Always 1; the version, the source revision (the image's SYNCD_REVISION) and the "
            "Python version as labels.",
            ["version", "revision", "python_version"],
            registry=r,
        )
        self.runs = Counter("syncd_sync_runs", "Sync runs by result.", ["result"], registry=r)
        self.duration = Histogram(
            "syncd_sync_duration_seconds",
            "Wall time of one sync run.",
            buckets=_RUN_BUCKETS,
            registry=r,
        )
        self.last_sync = Gauge(
            "syncd_last_sync_timestamp_seconds",
            "When the last sync run finished, whatever its result.",
            registry=r,
        )
        self.last_success = Gauge(
            LAST_SUCCESS, "When the last fully successful sync run finished.", registry=r
        )
        self.consecutive_failures = Gauge(
            "syncd_consecutive_failed_runs",
            "Runs in a row whose result was failure (0 after a success or partial run).",
            registry=r,
        )

    def _declare_last_run(self, r: CollectorRegistry) -> None:
        """What the last run left failing, as gauges: a one-shot run's counters start at 0 in
        every process, so the alerts read these instead and work in both modes."""
        self.last_result = Gauge(
            "syncd_last_run_result",
            "1 for the last run's result (success, partial, failure), 0 for the others.",
            ["result"],
            registry=r,
        )
        self.last_failed_items = Gauge(
            "syncd_last_run_failed_items",
            "Mappings of the zone that the last run could not write.",
            ["zone"],
            registry=r,
        )
        self.last_failed_scopes = Gauge(
            "syncd_last_run_failed_scopes",
            "Scopes of the collector that failed in the last run (1 more if its listing failed).",
            ["collector"],
            registry=r,
        )
        self.last_failed_zones = Gauge(
            "syncd_last_run_failed_zones", "Zones the last run could not sync.", registry=r
        )
        self.last_deferred_zones = Gauge(
            "syncd_last_run_deferred_zones",
            "Zones the last run left (whole or in part) to the next: its Cloudflare budget "
            "(cloudflare.run_budget) was spent. Not a failure; served first next run.",
            registry=r,
        )

    def _declare_collectors(self, r: CollectorRegistry) -> None:
        labels = ["collector", "vendor"]
        self.collector_runs = Counter(
            "syncd_collector_runs",
            "Collector runs by result: ok, failed (listing or any scope failed), skipped.",
            [*labels, "result"],
            registry=r,
        )
        self.collector_errors = Counter(
            "syncd_collector_errors",
            "Failed scopes and failed scope listings, by reason.",
            [*labels, "reason"],
            registry=r,
        )
        self.collector_duration = Histogram(
            "syncd_collector_duration_seconds",
            "Listing a collector's scopes plus its slowest scope (scopes run in parallel).",
            labels,
            buckets=_RUN_BUCKETS,
            registry=r,
        )
        self.discovered = Gauge(
            "syncd_discovered_addresses",
            "Distinct addresses the collector found in the last run.",
            labels,
            registry=r,
        )

    def _declare_zones(self, r: CollectorRegistry) -> None:
        self.skipped = Gauge(
            "syncd_skipped_addresses",
            "Addresses and mappings the last run left alone, by reason.",
            ["zone", "reason"],
            registry=r,
        )
        self.mappings = Gauge(
            "syncd_mappings",
            "Mappings Cloudflare holds after the last run.",
            ["zone", "vendor"],
            registry=r,
        )
        self.changes = Counter(
            "syncd_mapping_changes",
            "Mappings Cloudflare confirmed created, updated or deleted.",
            ["zone", "action"],
            registry=r,
        )
        self.drift = Counter(
            "syncd_mapping_drift",
            "Mappings where a zone's full list disagreed with syncd's mirror of it (changed "
            "outside syncd since; repaired in the same run).",
            ["zone"],
            registry=r,
        )
        self.failures = Counter(
            "syncd_mapping_failures",
            "Mappings Cloudflare refused or a failed request took down, by reason.",
            ["zone", "reason"],
            registry=r,
        )

    def _declare_origins(self, r: CollectorRegistry) -> None:
        self.origins = Gauge(
            "syncd_zone_origins",
            "Distinct origins of an origins: dns zone (addresses, and names that gave none) "
            "at the end of the last run, mapped or unmapped.",
            ["zone", "state"],
            registry=r,
        )
        self.coverage = Gauge(
            "syncd_zone_origin_coverage_ratio",
            "Share of the zone's origins whose mapping Cloudflare holds correctly (1 if none).",
            ["zone"],
            registry=r,
        )
        self.smart_tiered_cache = Gauge(
            "syncd_zone_smart_tiered_cache",
            "1 when Tiered Cache and Smart topology are on (region hints are read), else 0.",
            ["zone"],
            registry=r,
        )

    def _declare_observed(self, r: CollectorRegistry) -> None:
        """What Cloudflare really fetched (cloudflare.observe), per zone, over the window."""
        self.observed_coverage = Gauge(
            "syncd_zone_observed_coverage_ratio",
            "Share of the zone's origin fetches over cloudflare.observe.window that went to an "
            "address with a mapping at the end of the last run (1 if there were none); absent "
            "while the zone's traffic cannot be read.",
            ["zone"],
            registry=r,
        )
        self.observed_origins = Gauge(
            "syncd_zone_observed_origins",
            "Addresses Cloudflare fetched from for the zone over the window, mapped or unmapped.",
            ["zone", "state"],
            registry=r,
        )
        self.observation_available = Gauge(
            "syncd_zone_observation_available",
            "1 when the last run has figures of the zone's traffic (read now or kept), else 0 "
            "(plan, permission, error or quota: see the observation_unavailable event).",
            ["zone"],
            registry=r,
        )
        self.hint_effect = Gauge(
            "syncd_zone_hint_effect_ratio",
            "Share of the fetches to the zone's mapped origins made by an upper tier that "
            "supported_regions lists for the mapping's region (three-letter codes compared); "
            "hints younger than the window are left out; absent when none can be judged.",
            ["zone"],
            registry=r,
        )

    def _observe_traffic(self, zone: ZoneReport) -> None:
        name, seen = zone.zone_name, zone.traffic
        if seen is None:
            return  # observation off, or the zone not reached: keep what is known
        self.observation_available.labels(zone=name).set(1 if seen.available else 0)
        if not seen.available:
            _drop(self.observed_coverage, name)
            _drop(self.hint_effect, name)
            for state in CoverageState:
                _drop(self.observed_origins, name, state.value)
            return
        ratio = seen.coverage_ratio
        self.observed_coverage.labels(zone=name).set(1.0 if ratio is None else ratio)
        for state, count in seen.counts().items():
            self.observed_origins.labels(zone=name, state=state.value).set(count)
        if seen.effect_ratio is None:
            _drop(self.hint_effect, name)
        else:
            self.hint_effect.labels(zone=name).set(seen.effect_ratio)

    def _declare_cloudflare(self, r: CollectorRegistry) -> None:
        self.requests = Counter(
            "syncd_cloudflare_requests",
            "HTTP exchanges with the Cloudflare API (each retry counts); code=error: no answer.",
            ["endpoint", "method", "code"],
            registry=r,
        )
        self.request_duration = Histogram(
            "syncd_cloudflare_request_duration_seconds",
            "Duration of one HTTP exchange with the Cloudflare API.",
            ["endpoint", "method"],
            buckets=_REQUEST_BUCKETS,
            registry=r,
        )
        self.budget_remaining = Gauge(
            "syncd_cloudflare_budget_remaining",
            "Cloudflare API requests left in the rate-limit window at the end of the last run: "
            "Cloudflare's figure (its rate-limit headers, counting the user's other tools) when "
            "it sent one, else syncd's own count.",
            registry=r,
        )
        self.retries = Counter(
            "syncd_cloudflare_retries",
            "Cloudflare requests retried, by the reason of the failed attempt.",
            ["endpoint", "reason"],
            registry=r,
        )

    def observe(self, report: RunReport) -> None:
        """Update every metric from one run's report."""
        result = report.result
        self.runs.labels(result=result.value).inc()
        self.duration.observe(max(report.duration, 0.0))
        self.last_sync.set(report.finished)
        if result is RunResult.SUCCESS:
            self.last_success.set(report.finished)
        self._failed_in_a_row = self._failed_in_a_row + 1 if result is RunResult.FAILURE else 0
        self.consecutive_failures.set(self._failed_in_a_row)
        self._observe_last_run(report)
        self._observe_collectors(report.inventory)
        self._observe_skips(report.zones)
        for zone in report.zones:
            self._observe_zone(zone)
        if report.budget_remaining is not None:
            self.budget_remaining.set(report.budget_remaining)
        for call in report.calls:
            for reason in _RETRIED:  # at zero until one: what any endpoint may meet
                self.retries.labels(endpoint=call.endpoint, reason=reason)
            self.requests.labels(endpoint=call.endpoint, method=call.method, code=call.code).inc()
            self.request_duration.labels(endpoint=call.endpoint, method=call.method).observe(
                max(call.duration, 0.0)
            )
            if call.retry_reason:
                self.retries.labels(endpoint=call.endpoint, reason=call.retry_reason).inc()

    def _observe_last_run(self, report: RunReport) -> None:
        for result in RunResult:
            self.last_result.labels(result=result.value).set(1 if result is report.result else 0)
        self.last_failed_zones.set(sum(1 for z in report.zones if z.error))
        self.last_deferred_zones.set(len(report.deferred_zones))
        self.last_failed_items.clear()  # a zone gone from the configuration loses its series
        for zone in report.zones:
            self.last_failed_items.labels(zone=zone.zone_name).set(len(zone.failures))
        self.last_failed_scopes.clear()
        inventory = report.inventory
        for outcome in inventory.collectors:
            failed = sum(
                1
                for s in inventory.scopes
                if s.scope.collector == outcome.collector and s.status is ScopeStatus.FAILED
            )
            unlisted = 0 if outcome.enumerated else 1
            self.last_failed_scopes.labels(collector=outcome.collector).set(failed + unlisted)

    def _observe_collectors(self, inventory: Inventory) -> None:
        found: dict[str, set[str]] = {}
        for address in inventory.addresses:
            found.setdefault(address.collector, set()).add(address.ip.compressed)
        for outcome in inventory.collectors:
            scopes = [s for s in inventory.scopes if s.scope.collector == outcome.collector]
            labels = {"collector": outcome.collector, "vendor": outcome.vendor.value}
            for result in _COLLECTOR_RESULTS:  # every result exists from the first run on
                self.collector_runs.labels(**labels, result=result)
            self.collector_runs.labels(**labels, result=_collector_result(outcome, scopes)).inc()
            for reason in self._error_reasons:
                self.collector_errors.labels(**labels, reason=reason)  # at zero until one
            for reason in _error_reasons(outcome, scopes):
                self.collector_errors.labels(**labels, reason=reason).inc()
            if outcome.enumerated:
                slowest = max((s.duration for s in scopes), default=0.0)
                self.collector_duration.labels(**labels).observe(outcome.duration + slowest)
            self.discovered.labels(**labels).set(len(found.get(outcome.collector, ())))

    def _observe_skips(self, zones: Iterable[ZoneReport]) -> None:
        """A gauge per run: label sets of an earlier run that this one lacks are removed."""
        keys: set[tuple[str, str]] = set()
        for zone in zones:
            counts = Tally(skip.reason.value for skip in zone.plan.skips)
            for reason in SkipReason:
                keys.add((zone.zone_name, reason.value))
                self.skipped.labels(zone=zone.zone_name, reason=reason.value).set(
                    counts[reason.value]
                )
        for stale in self._skipped_keys - keys:
            self.skipped.remove(*stale)
        self._skipped_keys = keys

    def _observe_origins(self, zone: ZoneReport) -> None:
        name = zone.zone_name
        smart = zone.tiered_cache.smart_on if zone.tiered_cache else None
        if smart is not None:
            self.smart_tiered_cache.labels(zone=name).set(1 if smart else 0)
        if zone.origins is None:
            return
        counts = coverage_counts(zone.coverage)
        for state in CoverageState:
            self.origins.labels(zone=name, state=state.value).set(counts[state])
        ratio = zone.coverage_ratio
        self.coverage.labels(zone=name).set(1.0 if ratio is None else ratio)

    def _observe_zone(self, zone: ZoneReport) -> None:
        name = zone.zone_name
        self._observe_origins(zone)
        self._observe_traffic(zone)
        for action, count in zip(_ACTIONS, (zone.created, zone.updated, zone.deleted), strict=True):
            self.changes.labels(zone=name, action=action).inc(count)
        self.drift.labels(zone=name).inc(zone.drift)
        self.failures.labels(zone=name, reason=_ITEM)  # at zero until Cloudflare refuses one
        for reason, count in Tally(f.reason for f in zone.failures).items():
            self.failures.labels(zone=name, reason=reason).inc(count)
        if (zone.error or zone.deferred) and not zone.mappings_after:
            return  # the zone was not read: what Cloudflare holds is unknown, keep the last
        held = dict(zone.mappings_after)
        for vendor in Vendor:
            self.mappings.labels(zone=name, vendor=vendor.value).set(held.get(vendor.value, 0))


def _drop(gauge: Gauge, *labels: str) -> None:
    """Remove one series if it exists (a figure that no longer holds is not kept)."""
    with contextlib.suppress(KeyError):
        gauge.remove(*labels)


def _collector_result(outcome: CollectorOutcome, scopes: list[ScopeOutcome]) -> str:
    if not outcome.enumerated or any(s.status is ScopeStatus.FAILED for s in scopes):
        return "failed"
    if scopes and all(s.status is ScopeStatus.SKIPPED for s in scopes):
        return "skipped"
    return "ok"


def _error_reasons(outcome: CollectorOutcome, scopes: list[ScopeOutcome]) -> list[Reason]:
    # The runner gives every failure a reason (collectors/failures.py); none is made up here.
    reasons = [s.reason for s in scopes if s.status is ScopeStatus.FAILED and s.reason]
    if not outcome.enumerated and outcome.reason:
        reasons.append(outcome.reason)
    return reasons


class _Without:
    """The families of a registry minus one name: what a failed run may replace."""

    def __init__(self, registry: CollectorRegistry, name: str) -> None:
        self._registry = registry
        self._name = name

    def collect(self) -> Iterable[Metric]:
        return [m for m in self._registry.collect() if m.name != self._name]


def push(cfg: MetricsConfig, registry: CollectorRegistry, report: RunReport) -> None:
    """Push a one-shot run's metrics to ``cfg.pushgateway``; a gateway that is down is logged.

    One group per instance. A successful run replaces the whole group (PUT), its last success
    timestamp included. Any other run replaces every metric *except* that timestamp (POST of the
    rest), so a failed run never erases when syncd last succeeded.
    """
    if not cfg.pushgateway:
        return
    key = {"instance": cfg.instance or DEFAULT_INSTANCE}
    succeeded = report.result is RunResult.SUCCESS
    where = _host_of(cfg.pushgateway)
    try:
        if succeeded:
            push_to_gateway(cfg.pushgateway, JOB, registry, grouping_key=key, timeout=_PUSH_TIMEOUT)
        else:
            pushadd_to_gateway(
                cfg.pushgateway,
                JOB,
                _Without(registry, LAST_SUCCESS),
                grouping_key=key,
                timeout=_PUSH_TIMEOUT,
            )
    except OSError as exc:  # urllib's URLError and HTTPError, timeouts, refused connections
        log.warning(
            "metrics_push_failed", pushgateway=where, instance=key["instance"], error=str(exc)
        )
        return
    log.info("metrics_pushed", pushgateway=where, instance=key["instance"], replaced=succeeded)


def _host_of(url: str) -> str:
    """``host:port`` only: a URL may carry credentials, which logs never show."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname)
