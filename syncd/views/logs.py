"""Logging: structlog configured once, and the run report turned into stable log events.

``configure()`` routes structlog and the standard library (boto3, Azure, APScheduler) through one
formatter, JSON or text. ``log_report()`` is the one place a run's outcome becomes events; it logs
what the report holds and nothing else, never settings, so a secret cannot reach a log line.
"""

from __future__ import annotations

import logging
import sys
from typing import TextIO

import structlog

from syncd.config import LoggingConfig
from syncd.model import (
    ObservationState,
    OriginProblem,
    RunReport,
    RunResult,
    ScopeStatus,
    SkipReason,
    ZoneReport,
)

log = structlog.stdlib.get_logger(__name__)

# Libraries that log a line per request (httpx at INFO) or a chatty debug trail; their failures
# reach us as exceptions, which syncd reports itself. APScheduler logs a line per run at INFO.
QUIET_LOGGERS = ("httpx", "httpcore", "urllib3", "botocore", "azure", "apscheduler")
_HANDLER_NAME = "syncd"
_RESULT_LEVEL = {
    RunResult.SUCCESS: logging.INFO,
    RunResult.PARTIAL: logging.WARNING,
    RunResult.FAILURE: logging.ERROR,
}

# Tracebacks without local variables: a frame's locals may hold a token.
_TRACEBACKS = structlog.processors.ExceptionRenderer(
    structlog.tracebacks.ExceptionDictTransformer(show_locals=False)
)
_SHARED: list[structlog.types.Processor] = [
    structlog.contextvars.merge_contextvars,
    structlog.stdlib.add_log_level,
    structlog.stdlib.add_logger_name,
    structlog.processors.TimeStamper(fmt="iso", utc=True),
]


def configure(cfg: LoggingConfig, *, stream: TextIO | None = None) -> None:
    """Send every log record, ours and the libraries', to ``stream`` (stderr) in one format."""
    out = sys.stderr if stream is None else stream
    as_json = cfg.format == "json" or (cfg.format == "auto" and not out.isatty())
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(
            colors=False, exception_formatter=structlog.dev.plain_traceback
        )
    )
    handler = logging.StreamHandler(out)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=_SHARED,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _TRACEBACKS if as_json else _keep,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(cfg.level.upper())
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_SHARED,
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached, so structlog.testing.capture_logs sees loggers made before it.
        cache_logger_on_first_use=False,
    )


def _keep(_: object, __: str, event_dict: structlog.types.EventDict) -> structlog.types.EventDict:
    """Text output: ConsoleRenderer formats ``exc_info`` itself."""
    return event_dict


def log_report(report: RunReport) -> None:
    """One event per run summary, zone, failed item, failed scope and failed collector."""
    inventory = report.inventory
    for collector in inventory.collectors:
        if not collector.enumerated:
            log.error(
                "collector_failed",
                collector=collector.collector,
                vendor=collector.vendor.value,
                reason=collector.reason,
                retryable=collector.retryable,
                error=collector.error,
            )
    for scope in inventory.scopes:
        if scope.status is ScopeStatus.FAILED:
            log.warning(
                "scope_failed",
                collector=scope.scope.collector,
                scope=str(scope.scope.key),
                reason=scope.reason,
                retryable=scope.retryable,
                error=scope.error,
            )
    _log_discovery(report)
    for zone in report.zones:
        _log_zone(zone, dry_run=report.dry_run)
    _log_unobserved(report)
    result = report.result
    log.log(
        _RESULT_LEVEL[result],
        "sync_finished",
        result=result.value,
        duration=round(report.duration, 3),
        dry_run=report.dry_run,
        api=report.api_generation,
        addresses=len(inventory.addresses),
        zones=len(report.zones),
        zones_failed=sum(1 for z in report.zones if z.error),
        zones_deferred=len(report.deferred_zones),
        verifications_waiting=report.verifications_waiting,
        scopes=len(inventory.scopes),
        scopes_failed=sum(1 for s in inventory.scopes if s.status is ScopeStatus.FAILED),
        created=sum(z.created for z in report.zones),
        updated=sum(z.updated for z in report.zones),
        deleted=sum(z.deleted for z in report.zones),
        failed=sum(len(z.failures) for z in report.zones),
        error=report.error,
    )


def _log_discovery(report: RunReport) -> None:
    found = report.discovery
    if found is None:
        return
    for name in found.vanished:
        log.warning("zone_vanished", zone=name)
    level = logging.WARNING if not report.zones else logging.INFO
    log.log(level, "zones_discovered", listed=found.zones_listed, matched=found.matched)


def _log_zone(zone: ZoneReport, *, dry_run: bool) -> None:
    for failure in zone.failures:
        log.warning(
            "mapping_failed",
            zone=zone.zone_name,
            ip=failure.ip,
            vendor=failure.vendor,
            region=failure.region,
            reason=failure.reason,
            error=failure.error,
        )
    if zone.drift:
        log.warning("mapping_drift", zone=zone.zone_name, zone_id=zone.zone_id, drift=zone.drift)
    _log_origins(zone)
    plan = zone.plan
    if plan.guard:
        log.warning(
            "deletions_refused", zone=zone.zone_name, deletes=_refused(zone), reason=plan.guard
        )
    log.log(
        logging.INFO if zone.ok else logging.WARNING,
        "zone_synced",
        zone=zone.zone_name,
        zone_id=zone.zone_id,
        api=zone.generation,
        applied=zone.applied and not dry_run,
        created=zone.created,
        updated=zone.updated,
        deleted=zone.deleted,
        unchanged=len(plan.unchanged),
        skipped=len(plan.skips),
        failed=len(zone.failures),
        listed=zone.listed_because or "mirror",
        drift=zone.drift,
        coverage=_ratio(zone),
        observed=_rounded(zone.traffic.coverage_ratio) if zone.traffic else None,
        hint_effect=_rounded(zone.traffic.effect_ratio) if zone.traffic else None,
        error=zone.error,
        error_reason=zone.error_reason,
        deferred=zone.deferred,
    )


def _ratio(zone: ZoneReport) -> float | None:
    ratio = zone.coverage_ratio
    return None if ratio is None else round(ratio, 4)


def _rounded(ratio: float | None) -> float | None:
    return None if ratio is None else round(ratio, 4)


def _log_unobserved(report: RunReport) -> None:
    """A zone whose traffic could not be read this run: one event each; a token without
    Analytics Read: one event for all the zones it denies."""
    unobserved = report.unobserved()
    denied = [(z, o) for z, o in unobserved if o.state is ObservationState.DENIED]
    for zone, observation in unobserved:
        if observation.state is not ObservationState.DENIED:
            log.warning(
                "observation_unavailable",
                zone=zone.zone_name,
                state=observation.state.value,
                detail=observation.detail,
            )
    if denied:
        log.warning(
            "observation_denied",
            zones=len(denied),
            first=denied[0][0].zone_name,
            permission="Analytics: Read",
            detail=denied[0][1].detail,
        )


def _log_origins(zone: ZoneReport) -> None:
    """Origin failures, dangling names, permissions missing, Smart Tiered Cache off."""
    name = zone.zone_name
    for origin in zone.origins.origins if zone.origins else ():
        if origin.problem is OriginProblem.FAILED:
            log.warning("origin_failed", zone=name, source=origin.source, error=origin.detail)
        elif origin.problem is OriginProblem.UNRESOLVED:
            log.info("origin_unresolved", zone=name, source=origin.source, detail=origin.detail)
        elif origin.problem is not None:  # malformed_record, _load_balancer, _pool_origin
            log.warning(origin.problem.value, zone=name, source=origin.source, skip=origin.detail)
    for warning in zone.origins.warnings if zone.origins else ():
        log.warning("origins_incomplete", zone=name, warning=warning)
    tiered = zone.tiered_cache
    if tiered is not None and tiered.warning:
        log.warning("tiered_cache_unknown", zone=name, warning=tiered.warning)
    elif tiered is not None and tiered.smart_on is False:
        log.warning(
            "smart_tiered_cache_off",
            zone=name,
            tiered_cache=tiered.tiered,
            smart_topology=tiered.smart,
            effect="origin cloud region mappings have no effect until both are on",
        )


def _refused(zone: ZoneReport) -> int:
    return sum(1 for s in zone.plan.skips if s.reason is SkipReason.MASS_DELETE_GUARD)
