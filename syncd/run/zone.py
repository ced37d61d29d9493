"""One zone, from read to report: the whole reconcile of a zone, top to bottom, in one place.

    read()       what Cloudflare holds (mappings: from the registry's mirror of them, or
                 listed in full when due or untrusted; the Tiered Cache settings) and, for
                 ``origins: dns``, the origins it reaches: records, CNAME chains (through the
                 zone, then DNS), load balancer pools
    reconcile()  settle pending ownership -> plan -> apply in batches -> record -> ZoneReport,
                 with each origin's coverage

``sync.run_once`` starts every zone's ``read`` while the collectors run, then ``reconcile``s
the zones concurrently. A zone never stops another: whatever goes wrong ends as its report's
``error``. Deletions go first so that they free room under the zone's maximum. Per-item failures
are collected, never raised: a failed item is reported and planned again next run. A request
that fails as a whole after its retries fails that batch's items; credentials refused, a missing
route or a full zone (1164) also fail every batch still to come for the zone. Ownership is
recorded per batch, so every item Cloudflare confirmed is owned when ``reconcile`` returns.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field, replace
from functools import partial

import structlog

from syncd import plan
from syncd.cloudflare.api import CloudflareAPI
from syncd.config import ZoneConfig
from syncd.errors import (
    AuthError,
    BudgetSpent,
    CloudflareError,
    RouteMissing,
    StateError,
    SyncdError,
    ZoneFull,
)
from syncd.model import (
    BatchResult,
    IPAddress,
    ItemFailure,
    ListedBecause,
    Origin,
    OriginCoverage,
    OriginSources,
    RegionMapping,
    Skip,
    SkipReason,
    TieredCache,
    UnknownMapping,
    Upsert,
    Vendor,
    ZoneFailure,
    ZoneObservation,
    ZoneOrigins,
    ZonePlan,
    ZoneReport,
    ZoneTraffic,
)
from syncd.registry import Mirror, Registry
from syncd.run.budget import RunBudget
from syncd.sources import facts, origins, traffic
from syncd.sources.resolver import Resolver

log = structlog.stdlib.get_logger(__name__)
_FATAL = (AuthError, RouteMissing)


@dataclass(frozen=True, slots=True)
class Reach:
    """How a run reads a zone: Cloudflare, and DNS for origins outside the zone."""

    cloudflare: CloudflareAPI
    resolver: Resolver
    accounts: Mapping[str, str] = field(default_factory=dict)  # zone id -> account, if listed


@dataclass(frozen=True, slots=True)
class Held:
    """What Cloudflare holds for one zone: its mappings and, for ``origins: dns``, its origins."""

    current: dict[IPAddress, RegionMapping]
    origins: ZoneOrigins | None
    tiered_cache: TieredCache
    listed_because: ListedBecause | None = None  # None when its mirror was used
    drift: int = 0  # mappings where the list disagreed with the mirror
    schedule: tuple[float, float] = (0.0, 0.0)  # the mirror's (listed_at, verify_after)
    # Mappings of vendors syncd does not know: foreign, and while there are any the zone has no
    # mirror (it holds known vendors only), so it is listed in full every run.
    unknown: dict[IPAddress, UnknownMapping] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Reading:
    """How this run reads zones: when a zone's mirror is due for a full list."""

    interval: float  # cloudflare.verify_interval
    verify: bool  # sync --verify: list every zone in full
    now: float
    waiting: frozenset[str] = frozenset()  # due for verification, left on their mirror
    budget: RunBudget | None = None  # spent: a zone not yet read is deferred


@dataclass(frozen=True, slots=True, kw_only=True)
class Run:
    """What every zone of one run shares."""

    api: CloudflareAPI
    registry: Registry
    resolved: plan.Resolved
    health: plan.Health
    settings: plan.PlanSettings
    dry_run: bool = False
    # Set on shutdown: the batch in flight finishes, no further batch is sent.
    stop: threading.Event | None = None
    budget: RunBudget | None = None  # spent: the zone's remaining batches are deferred
    # What Cloudflare was seen fetching, per zone (cloudflare.observe; absent: not observed),
    # and the upper tiers supported_regions lists per region (the hints' expected effect).
    observed: Mapping[str, ZoneObservation] = field(default_factory=dict)
    upper_tiers: Mapping[tuple[Vendor, str], tuple[str, ...]] = field(default_factory=dict)


def read(reach: Reach, zone: ZoneConfig, registry: Registry, reading: Reading) -> Held:
    """The zone's mappings, its Tiered Cache settings and, for ``origins: dns``, its origins.

    The mappings come from the mirror when it is trusted and not due; otherwise the zone is
    listed in full, the difference from the mirror counted as drift, and the mirror replaced.
    The settings and origin facts (all but the DNS records) are cached the same way.
    """
    if reading.budget is not None and reading.budget.spent():
        raise BudgetSpent(reading.budget.why())
    api = reach.cloudflare
    mirror, why = _mirror(registry, zone.id, reading)
    when = facts.FactsDue(
        now=reading.now,
        interval=reading.interval,
        verifying=why is not None and why.verifies,
        everything=reading.verify,
    )
    known = facts.current(api, registry, zone, when, account=reach.accounts.get(zone.id, ""))
    found = read_origins(reach, zone, known.sources) if known.sources is not None else None
    tiered = known.tiered_cache
    if mirror is not None and why is None:
        schedule = (mirror.listed_at, mirror.verify_after)
        return Held(dict(mirror.mappings), found, tiered, schedule=schedule)
    listing = api.list_mappings(zone.id)
    current = plan.index(listing.mappings)
    unknown = {u.ip: u for u in listing.unknown}
    if unknown:
        log.warning(
            "unknown_vendor",
            zone=zone.id,
            count=len(unknown),
            vendors=sorted({u.vendor for u in unknown.values()}),
            hint="Cloudflare lists a vendor this syncd does not know; those mappings are left "
            "alone (an upgrade of syncd may know it)",
        )
        registry.mirror.distrust(zone.id)
        return Held(current, found, tiered, listed_because=why, unknown=unknown)
    relisted = registry.mirror.relisted(
        zone.id, current, was=mirror, now=reading.now, interval=reading.interval
    )
    return Held(
        current,
        found,
        tiered,
        listed_because=why,
        drift=relisted.drift,
        schedule=relisted.schedule,
    )


def read_origins(reach: Reach, zone: ZoneConfig, known: OriginSources) -> ZoneOrigins:
    """Every origin Cloudflare reaches for ``zone``, each with the record and chain behind it:
    its DNS records (read every run) traced through its cached facts (``known``) and DNS."""
    sources = replace(known, records=reach.cloudflare.origin_records(zone.id))
    traced = origins.trace(sources, proxied_only=zone.proxied_only)
    return origins.finish(traced, reach.resolver.resolve_all(traced.names))


def _mirror(
    registry: Registry, zone_id: str, reading: Reading
) -> tuple[Mirror | None, ListedBecause | None]:
    """The zone's mirror and why the zone must be listed in full anyway (None if it need not)."""
    try:
        mirror = registry.mirror.get(zone_id)
        pending = registry.ownership.pending(zone_id)
    except StateError:
        return None, ListedBecause.MIRROR_CORRUPT
    if mirror is None:
        return None, ListedBecause.NO_MIRROR
    if reading.verify:
        return mirror, ListedBecause.VERIFY
    if pending:  # a batch's outcome is unknown: only Cloudflare's list can settle it
        return mirror, ListedBecause.PENDING
    if reading.interval <= 0 or mirror.verify_after <= reading.now:
        # Unless verification's share of the budget is used: then the mirror serves this run.
        return mirror, None if zone_id in reading.waiting else ListedBecause.DUE
    return mirror, None


def reconcile(zone: ZoneConfig, held: Future[Held], run: Run) -> ZoneReport:
    """Plan and apply one zone; every failure ends in the report, none is raised."""
    try:
        state = _observed(zone, held.result(), run)
        zplan = _plan(zone, state, run)
    except BudgetSpent as exc:
        return replace(
            _report(zone, ZonePlan(zone_id=zone.id, zone_name=zone.label)), deferred=str(exc)
        )
    except Exception as exc:  # zone boundary: the zone is failed and recorded (style 16)
        if not isinstance(exc, SyncdError):
            log.exception("zone_crashed", zone=zone.id)
        reason = exc.reason if isinstance(exc, SyncdError) else type(exc).__name__.lower()
        empty = ZonePlan(zone_id=zone.id, zone_name=zone.label)
        return replace(_report(zone, empty), error=str(exc), error_reason=reason)
    found = state.origins
    seen = replace(
        _report(zone, zplan, state),
        origins=found,
        tiered_cache=state.tiered_cache,
        generation=run.api.generation(zone.id),
    )
    if run.dry_run:
        after = state.current
        return replace(
            seen,
            applied=False,
            mappings_after=_by_vendor(after.values()),
            coverage=_coverage(found, zplan, after, applied=False),
            traffic=_traffic(zone, zplan, after, run, applied=False),
        )
    return _applied(zone, seen, zplan, state, run)


def _observed(zone: ZoneConfig, held: Held, run: Run) -> Held:
    """Under ``origins: dns``, each address traffic proves (Cloudflare fetched from it in the
    window and a collector found it) is an origin of the zone, reached by "observed traffic",
    even when no record, CNAME or pool shows it: it is mapped, and kept while it is observed."""
    found = held.origins
    seen = traffic.proven(run.observed.get(zone.id), _discovered(run))
    if found is None or not seen - found.addresses:
        return held
    extra = tuple(
        Origin(source="observed traffic", ip=ip)
        for ip in sorted(seen - found.addresses, key=plan.ip_order)
    )
    return replace(held, origins=replace(found, origins=found.origins + extra))


def _plan(zone: ZoneConfig, state: Held, run: Run) -> ZonePlan:
    """The zone's plan against what Cloudflare holds and what syncd owns (settled now)."""
    found = state.origins
    observation = run.observed.get(zone.id)
    zplan = plan.build(
        zone,
        run.resolved,
        current=state.current,
        unknown=state.unknown,
        owned=run.registry.ownership.settle(zone.id, state.current),
        dns_origins=found.addresses if found is not None else None,
        health=run.health,
        settings=replace(run.settings, hold_deletions=_hold(found, observation)),
        fetched=observation.by_address() if observation is not None else None,
    )
    return replace(zplan, skips=zplan.skips + _origin_skips(found))


def _applied(
    zone: ZoneConfig, seen: ZoneReport, zplan: ZonePlan, state: Held, run: Run
) -> ZoneReport:
    """``seen`` after applying ``zplan``, the mirror kept only where every answer agreed."""
    writes = bool(zplan.creates or zplan.updates or zplan.deletes)
    if writes:
        run.registry.mirror.writing(zplan.zone_id)
    try:
        out = apply(run.api, run.registry, zplan, stop=run.stop, budget=run.budget)
    except Exception as exc:  # zone boundary: the zone is failed and recorded (style 16)
        log.exception("zone_push_crashed", zone=zplan.zone_id)
        return replace(seen, error=str(exc), error_reason=ZoneFailure.CRASHED)
    after = out.after(state.current)
    if writes and not (out.failures or out.error or state.unknown):
        run.registry.mirror.written(zplan.zone_id, after, state.schedule)
    # else an answer disagreed, or the zone stopped: the mirror stays distrusted (re-list)
    return replace(
        seen,
        created=out.created,
        updated=out.updated,
        deleted=len(out.deleted),
        failures=tuple(out.failures),
        error=out.error,
        error_reason=out.error_reason,
        deferred=out.deferred,
        mappings_after=_by_vendor(after.values()),
        coverage=_coverage(state.origins, zplan, after, failures=out.failures),
        traffic=_traffic(zone, zplan, after, run, failures=out.failures),
    )


def _hold(found: ZoneOrigins | None, observation: ZoneObservation | None) -> str:
    """Why no deletion may happen in the zone: part of its origins could not be read, or what
    traffic proves to be origins is unknown this run."""
    if found is None:
        return ""
    if not found.complete:
        return "part of the zone's origins could not be read this run; deletion deferred"
    if observation is not None and observation.uncertain:
        return "the origins traffic proves are unknown this run; deletion deferred"
    return ""


def _origin_skips(found: ZoneOrigins | None) -> tuple[Skip, ...]:
    """Each dangling record, and each item Cloudflare listed without a field syncd needs, as a
    skip naming the record (or load balancer, pool origin) and its target or missing field."""
    if found is None:
        return ()
    return tuple(
        Skip(subject=o.source, reason=SkipReason.UNRESOLVED_ORIGIN, detail=o.detail)
        for o in found.unresolved
    ) + tuple(
        Skip(subject=o.source, reason=SkipReason.MALFORMED_ORIGIN, detail=o.detail)
        for o in found.malformed
    )


def _coverage(
    found: ZoneOrigins | None,
    zplan: ZonePlan,
    after: dict[IPAddress, RegionMapping],
    *,
    failures: Iterable[ItemFailure] = (),
    applied: bool = True,
) -> tuple[OriginCoverage, ...]:
    if found is None:
        return ()
    return origins.coverage(found, zplan, after=after, failures=failures, applied=applied)


def _discovered(run: Run) -> frozenset[IPAddress]:
    """Every public address a collector found this run, mappable or not."""
    return frozenset(run.resolved.candidates.keys() | run.resolved.held.keys())


def _traffic(
    zone: ZoneConfig,
    zplan: ZonePlan,
    after: dict[IPAddress, RegionMapping],
    run: Run,
    *,
    failures: Iterable[ItemFailure] = (),
    applied: bool = True,
) -> ZoneTraffic | None:
    """The zone's traffic against the mappings as they stand at the end of the run."""
    observation = run.observed.get(zone.id)
    if observation is None:
        return None
    try:
        written = run.registry.ownership.hints_written(zone.id)
    except StateError:
        written = {}  # every hint is judged: the registry's own failure is reported elsewhere
    return traffic.judge(
        observation,
        zplan,
        after=after,
        discovered=_discovered(run),
        upper_tiers=run.upper_tiers,
        written=written,
        failures=failures,
        applied=applied,
    )


def _report(zone: ZoneConfig, zplan: ZonePlan, held: Held | None = None) -> ZoneReport:
    report = ZoneReport(zone_id=zone.id, zone_name=zone.label, plan=zplan)
    if held is None:
        return report
    return replace(report, listed_because=held.listed_because, drift=held.drift)


def _by_vendor(mappings: Iterable[RegionMapping]) -> tuple[tuple[str, int], ...]:
    counts = Counter(m.vendor.value for m in mappings)
    return tuple(sorted(counts.items()))


# --- applying a plan ----------------------------------------------------------------------


@dataclass(slots=True)
class Outcome:
    """What applying one zone's plan achieved (mutable while it is applied, by one thread)."""

    created: int = 0
    updated: int = 0
    deleted: list[IPAddress] = field(default_factory=list)
    upserted: list[Upsert] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    error: str = ""
    error_reason: str = ""
    deferred: str = ""  # the run's budget was spent before the plan was sent in full

    def after(self, before: dict[IPAddress, RegionMapping]) -> dict[IPAddress, RegionMapping]:
        """What Cloudflare holds now, given what it held before."""
        now = dict(before)
        for ip in self.deleted:
            now.pop(ip, None)
        now.update({u.mapping.ip: u.mapping for u in self.upserted})
        return now


def apply(
    api: CloudflareAPI,
    registry: Registry,
    zplan: ZonePlan,
    *,
    stop: threading.Event | None = None,
    budget: RunBudget | None = None,
) -> Outcome:
    """Push ``zplan``; every succeeded item is owned in the registry when this returns.

    ``stop`` (shutdown) and ``budget`` are checked between batches: the batch in flight always
    finishes; a spent budget defers the rest of the plan to the next run.
    """
    out = Outcome()
    own = registry.ownership
    own.record(zplan.zone_id, upserted=zplan.adopted)
    for batch in zplan.delete_batches():
        if _stopping(out, stop, budget):
            break
        result = _send(out, batch, partial(api.delete, zplan.zone_id, [m.ip for m in batch]))
        own.record(zplan.zone_id, deleted=result.succeeded)
        out.deleted += result.succeeded
        if out.error:
            break
    for ubatch in zplan.upsert_batches():
        if _stopping(out, stop, budget):
            break
        items = [u.mapping for u in ubatch]
        if out.error:
            out.failures += BatchResult.all_failed(items, out.error, out.error_reason).failed
            continue
        own.begin(zplan.zone_id, ubatch)
        result = _send(out, items, partial(api.upsert, zplan.zone_id, items))
        ok = set(result.succeeded)
        done = [u for u in ubatch if u.mapping.ip in ok]
        # An answer settles the batch; without one (applied, maybe, but unanswered) its rows stay
        # pending, so the next run lists the zone and owns what Cloudflare turns out to hold.
        settled = () if result.outcome_unknown else [m.ip for m in items]
        own.record(zplan.zone_id, upserted=done, settled=settled)
        out.upserted += done
        out.created += sum(1 for u in done if u.previous is None)
        out.updated += sum(1 for u in done if u.previous is not None)
    return out


def _stopping(out: Outcome, stop: threading.Event | None, budget: RunBudget | None) -> bool:
    """Shutdown asked, or the run's budget spent: the rest of the plan is left for the next
    run (nothing is lost)."""
    if budget is not None and budget.spent():
        out.deferred = budget.why()
        return True
    if stop is None or not stop.is_set():
        return False
    if not out.error:
        out.error = "interrupted by shutdown; the rest is left for the next run"
        out.error_reason = ZoneFailure.INTERRUPTED
    return True


def _send(
    out: Outcome, sent: Sequence[RegionMapping], call: Callable[[], BatchResult]
) -> BatchResult:
    """Run one batch request; fold its failures into ``out``."""
    try:
        result = call()
    except ZoneFull as exc:
        _stop(out, exc, "zone holds its maximum number of mappings (1164)")
        result = BatchResult.all_failed(sent, str(exc), exc.reason)
    except _FATAL as exc:
        _stop(out, exc, str(exc))
        result = BatchResult.all_failed(sent, str(exc), exc.reason)
    except CloudflareError as exc:
        result = BatchResult.all_failed(
            sent, str(exc), exc.reason, outcome_unknown=exc.outcome_unknown
        )
    out.failures += result.failed
    return result


def _stop(out: Outcome, exc: CloudflareError, message: str) -> None:
    out.error = message
    out.error_reason = exc.reason
