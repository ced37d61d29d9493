"""Records shared by every stage: what was discovered, what is planned, what happened.

Frozen, slotted dataclasses and enums only; no I/O and no SDK types. IPs are parsed once at the
edge (a collector, the Cloudflare client) and travel as ``ipaddress`` objects from then on.
"""

from __future__ import annotations

import enum
import ipaddress
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_T = TypeVar("_T")

# The collector of the configuration's own entries (``collectors.static``): its name, its one
# scope's account, and the source the planner lets win over discovery.
STATIC = "static"


class Vendor(enum.StrEnum):
    """The clouds Cloudflare's origin cloud regions accept (the API's vendor enum)."""

    AWS = "aws"
    AZURE = "azure"
    GCP = "gcp"
    OCI = "oci"


class SkipReason(enum.StrEnum):
    """Why an address or mapping was left alone. Bounded: used as a metric label."""

    NON_PUBLIC = "non_public"
    INVALID_IP = "invalid_ip"
    UNSUPPORTED_REGION = "unsupported_region"
    CONFLICT = "conflict"
    OVER_CAPACITY = "over_capacity"
    GLOBAL_ANYCAST = "global_anycast"
    UNALLOCATED = "unallocated"
    PREFIX_NOT_EXPANDED = "prefix_not_expanded"
    NOT_AN_ORIGIN = "not_an_origin"
    TAGS_MISMATCH = "tags_mismatch"
    UNDISCOVERED_ORIGIN = "undiscovered_origin"
    FOREIGN_MAPPING = "foreign_mapping"
    SCOPE_INCOMPLETE = "scope_incomplete"
    MASS_DELETE_GUARD = "mass_delete_guard"
    UNRESOLVED_ORIGIN = "unresolved_origin"  # a record or pool origin whose name has no address
    ORIGINS_INCOMPLETE = "origins_incomplete"  # part of the origin set unknown: no deletion
    UNKNOWN_VENDOR = "unknown_vendor"  # Cloudflare holds a vendor syncd does not know: left alone
    MALFORMED_ORIGIN = "malformed_origin"  # listed without a field syncd needs: no deletion


class ScopeStatus(enum.StrEnum):
    OK = "ok"
    FAILED = "failed"
    SKIPPED = "skipped"


class Policy(enum.StrEnum):
    """external-dns's policies: upsert-only never deletes; sync deletes what syncd owns."""

    UPSERT_ONLY = "upsert-only"
    SYNC = "sync"


def parse_ip(text: str) -> IPAddress:
    """Parse an IP from any source, dropping an IPv6 scope id (``fe80::1%eth0``).

    Raises ``ValueError`` naming the text when it is not an IP address.
    """
    cleaned = text.strip()
    if "%" in cleaned:
        cleaned = cleaned.split("%", 1)[0]
    # The C parser first: it accepts exactly what ipaddress accepts (tests/unit/test_normalize.py)
    # at a fifth of the CPU, and a run parses every address it collects, lists and reads.
    try:
        if ":" in cleaned:
            return ipaddress.IPv6Address(socket.inet_pton(socket.AF_INET6, cleaned))
        return ipaddress.IPv4Address(socket.inet_pton(socket.AF_INET, cleaned))
    except (OSError, ValueError):
        pass
    try:
        return ipaddress.ip_address(cleaned)
    except ValueError:
        raise ValueError(f"not an IP address: {text!r}") from None


def canonical(ip: IPAddress) -> str:
    """RFC 5952 text (``2001:DB8:0:0::1`` -> ``2001:db8::1``), the form Cloudflare stores."""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        # Python renders mapped addresses as ::ffff:c000:201; RFC 5952 section 5 wants dotted quad.
        return f"::ffff:{ip.ipv4_mapped}"
    return ip.compressed


@dataclass(frozen=True, slots=True, order=True)
class ScopeKey:
    """Which scope reported an address: stored with owned mappings so that a mapping whose
    scope failed this run is never deleted. Text only at the edges (state, logs, labels)."""

    collector: str
    account: str = ""
    region: str = ""

    def __str__(self) -> str:
        return "/".join(part for part in (self.collector, self.account, self.region) if part)

    @classmethod
    def parse(cls, text: str) -> ScopeKey:
        """The key ``str()`` wrote (collector names, accounts and regions hold no ``/``)."""
        collector, _, rest = text.partition("/")
        account, _, region = rest.partition("/")
        return cls(collector, account, region)


@dataclass(frozen=True, slots=True, kw_only=True)
class Scope:
    """One unit of collection work: an (account, region), a project, a subscription, ..."""

    collector: str
    vendor: Vendor
    account: str
    region: str = ""

    @property
    def key(self) -> ScopeKey:
        return ScopeKey(self.collector, self.account, self.region)


@dataclass(frozen=True, slots=True, kw_only=True)
class Address:
    """A public address a collector found, and where it found it."""

    ip: IPAddress
    vendor: Vendor
    region: str
    collector: str
    account: str
    resource: str
    scope_key: ScopeKey
    tags: tuple[tuple[str, str], ...] = ()

    def tag_map(self) -> dict[str, str]:
        return dict(self.tags)


def tag_tuple(tags: Mapping[str, str] | None) -> tuple[tuple[str, str], ...]:
    """Tags in the canonical, hashable form ``Address.tags`` carries."""
    return tuple(sorted((tags or {}).items()))


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class RegionMapping:
    """An origin cloud region mapping: what Cloudflare holds (or should) for one IP of a zone."""

    ip: IPAddress
    vendor: Vendor
    region: str

    @property
    def ip_text(self) -> str:
        return canonical(self.ip)


@dataclass(frozen=True, slots=True)
class UnknownMapping:
    """A mapping Cloudflare lists with a vendor syncd does not know (Cloudflare may add vendors):
    foreign, never changed or deleted, counted against the zone's maximum."""

    ip: IPAddress
    vendor: str
    region: str


@dataclass(frozen=True, slots=True)
class SupportedRegions:
    """Cloudflare's ``supported_regions``: each known vendor's regions, and the upper-tier
    data centres (IATA codes, as Cloudflare spells them) it lists for each region."""

    regions: dict[Vendor, frozenset[str]]
    upper_tiers: dict[tuple[Vendor, str], tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Listing:
    """A zone's mappings as Cloudflare lists them."""

    mappings: tuple[RegionMapping, ...]
    unknown: tuple[UnknownMapping, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Skip:
    """Something left alone on purpose, with the reason. ``subject`` is an IP or a resource id
    as found; ``ip`` is that IP, parsed, when the subject is one."""

    subject: str
    reason: SkipReason
    detail: str = ""
    ip: IPAddress | None = None
    vendor: str = ""
    region: str = ""
    collector: str = ""


class Reason(enum.StrEnum):
    """Why a scope (or a collector's listing) was not read. Bounded: a metric label."""

    AUTH = "auth"  # credentials missing or refused, or a permission lacking: a person must act
    CONFIG = "config"  # the collector's configuration cannot work (ids, files, authority)
    NOT_FOUND = "not_found"  # the account, project or organization does not exist for the caller
    THROTTLED = "throttled"  # the cloud's rate limit, after the SDK's retries
    TIMEOUT = "timeout"  # no answer in time, or the scope's deadline ran out
    UNREACHABLE = "unreachable"  # connection refused or reset, DNS, TLS
    SERVER_ERROR = "server_error"  # the cloud answered 5xx, after the SDK's retries
    MALFORMED = "malformed"  # an answer that is not what the API documents (a proxy's page)
    REGION_DISABLED = "region_disabled"  # the account has not enabled the region: skipped
    API_DISABLED = "api_disabled"  # the project has not enabled the API: skipped
    ERROR = "error"  # anything else the SDK reports

    @property
    def retryable(self) -> bool:
        """Transient: the next run will likely read the scope without anyone acting."""
        return self in _TRANSIENT


_TRANSIENT = frozenset(
    {Reason.THROTTLED, Reason.TIMEOUT, Reason.UNREACHABLE, Reason.SERVER_ERROR, Reason.MALFORMED}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class ScopeOutcome:
    """How one scope did; ``reason`` says why when it was not read (failed or skipped)."""

    scope: Scope
    status: ScopeStatus
    reason: Reason | None = None
    error: str = ""
    addresses: int = 0
    duration: float = 0.0

    @property
    def retryable(self) -> bool:
        """The failure is transient (throttled, timeout, unreachable, ...): the next run will
        likely read the scope; False when a person must act (credentials, permissions)."""
        return self.reason is not None and self.reason.retryable


@dataclass(frozen=True, slots=True, kw_only=True)
class CollectorOutcome:
    """How a whole collector did: ``enumerated`` is False when its scopes could not be listed."""

    collector: str
    vendor: Vendor
    enumerated: bool
    error: str = ""
    reason: Reason | None = None
    duration: float = 0.0

    @property
    def retryable(self) -> bool:
        return self.reason is not None and self.reason.retryable


@dataclass(frozen=True, slots=True, kw_only=True)
class Inventory:
    """Everything collected in one run, and which scopes can be trusted."""

    addresses: tuple[Address, ...] = ()
    skips: tuple[Skip, ...] = ()
    scopes: tuple[ScopeOutcome, ...] = ()
    collectors: tuple[CollectorOutcome, ...] = ()

    def failed_scope_keys(self) -> frozenset[ScopeKey]:
        return frozenset(o.scope.key for o in self.scopes if o.status is ScopeStatus.FAILED)

    def unlisted_collectors(self) -> frozenset[str]:
        return frozenset(c.collector for c in self.collectors if not c.enumerated)

    def complete(self) -> bool:
        return not self.failed_scope_keys() and not self.unlisted_collectors()


@dataclass(frozen=True, slots=True, kw_only=True)
class Upsert:
    """A mapping to write; ``previous`` is what Cloudflare held (None: a create)."""

    mapping: RegionMapping
    previous: RegionMapping | None
    scope_key: ScopeKey


@dataclass(frozen=True, slots=True, kw_only=True)
class Owned:
    """A mapping syncd wrote (or adopted) for a zone, from the ownership store."""

    mapping: RegionMapping
    scope_key: ScopeKey


@dataclass(frozen=True, slots=True, kw_only=True)
class ZonePlan:
    """The difference for one zone, in deterministic order."""

    zone_id: str
    zone_name: str
    upserts: tuple[Upsert, ...] = ()
    deletes: tuple[RegionMapping, ...] = ()
    unchanged: tuple[Upsert, ...] = ()
    adopted: tuple[Upsert, ...] = ()
    skips: tuple[Skip, ...] = ()
    ignored: int = 0
    guard: str = ""
    batch_size: int = 100

    @property
    def creates(self) -> tuple[Upsert, ...]:
        return tuple(u for u in self.upserts if u.previous is None)

    @property
    def updates(self) -> tuple[Upsert, ...]:
        return tuple(u for u in self.upserts if u.previous is not None)

    def upsert_batches(self) -> list[tuple[Upsert, ...]]:
        return _chunks(self.upserts, self.batch_size)

    def delete_batches(self) -> list[tuple[RegionMapping, ...]]:
        return _chunks(self.deletes, self.batch_size)


def _chunks(items: tuple[_T, ...], size: int) -> list[tuple[_T, ...]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


@dataclass(frozen=True, slots=True, kw_only=True)
class ItemFailure:
    """One item Cloudflare put in ``failed`` (or that a whole-request error took down)."""

    ip: str
    vendor: str
    region: str
    error: str
    reason: str = "item"

    @classmethod
    def of(cls, sent: RegionMapping | IPAddress, error: str, reason: str = "item") -> ItemFailure:
        """The failure of one item sent: a mapping (an upsert) or an IP (a deletion)."""
        if isinstance(sent, RegionMapping):
            vendor, region = sent.vendor.value, sent.region
            return cls(ip=sent.ip_text, vendor=vendor, region=region, error=error, reason=reason)
        return cls(ip=canonical(sent), vendor="", region="", error=error, reason=reason)


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    """Per-item outcome of one batch request, whatever the API generation."""

    succeeded: tuple[IPAddress, ...] = ()
    failed: tuple[ItemFailure, ...] = ()
    # The request may have been applied without an answer: what Cloudflare holds is unknown
    # until the zone is listed again.
    outcome_unknown: bool = False

    @classmethod
    def all_failed(
        cls,
        sent: Sequence[RegionMapping] | Sequence[IPAddress],
        error: str,
        reason: str,
        *,
        outcome_unknown: bool = False,
    ) -> BatchResult:
        """Every item of a request that failed as a whole."""
        if outcome_unknown:
            error = f"{error}; outcome unknown, settled by the next run's list of the zone"
        failed = tuple(ItemFailure.of(s, error, reason) for s in sent)
        return cls(failed=failed, outcome_unknown=outcome_unknown)


class ListedBecause(enum.StrEnum):
    """Why a zone's mappings were listed in full this run instead of read from its mirror."""

    NO_MIRROR = "no_mirror"  # never listed, or the mirror was dropped (unknown vendors)
    MIRROR_CORRUPT = "mirror_corrupt"  # the state database could not read the mirror
    VERIFY = "verify"  # sync --verify
    PENDING = "pending"  # a batch's outcome is unknown: only Cloudflare's list settles it
    DUE = "due"  # the mirror's verification is due (cloudflare.verify_interval)

    @property
    def verifies(self) -> bool:
        """Listed to verify the mirror: the zone's cached facts are read again too."""
        return self in (ListedBecause.VERIFY, ListedBecause.DUE)


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneReport:
    """What happened to one zone in one run."""

    zone_id: str
    zone_name: str
    plan: ZonePlan
    created: int = 0
    updated: int = 0
    deleted: int = 0
    failures: tuple[ItemFailure, ...] = ()
    error: str = ""
    error_reason: str = ""
    mappings_after: tuple[tuple[str, int], ...] = ()
    applied: bool = True
    generation: str = ""
    # Why the zone's mappings were listed in full this run; None when the state database's
    # mirror of them was planned against.
    listed_because: ListedBecause | None = None
    drift: int = 0  # mappings where that full list disagreed with the mirror (then repaired)
    origins: ZoneOrigins | None = None  # None for ``origins: all`` zones
    coverage: tuple[OriginCoverage, ...] = ()
    tiered_cache: TieredCache | None = None
    # Why the run left the zone (or the rest of its batches) to the next run: its Cloudflare
    # budget was spent. Not a failure: what was sent is kept, the rest is planned again.
    deferred: str = ""
    # What Cloudflare was seen fetching (cloudflare.observe); None when observation is off.
    traffic: ZoneTraffic | None = None

    @property
    def ok(self) -> bool:
        origins_failed = self.origins is not None and bool(self.origins.failed)
        return not self.error and not self.failures and not self.plan.guard and not origins_failed

    @property
    def coverage_ratio(self) -> float | None:
        return coverage_ratio(self.coverage)

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass(frozen=True, slots=True, kw_only=True)
class CloudflareCall:
    """One HTTP exchange with Cloudflare (retries are separate calls). ``code`` is the HTTP
    status as text, or ``error`` when no answer came."""

    endpoint: str
    method: str
    code: str
    duration: float
    retry_reason: str = ""


@dataclass(frozen=True, slots=True)
class RateWindow:
    """The Cloudflare rate limiter's state in wall-clock time, kept in the state database so
    that consecutive processes (a CronJob's ``syncd sync``) share one budget."""

    taken: tuple[float, ...]  # when each request of the last period was sent (epoch seconds)
    paused_until: float = 0.0  # epoch seconds; after a 429, nobody sends before it
    graphql: tuple[float, ...] = ()  # the GraphQL queries among them (their own quota)


@dataclass(frozen=True, slots=True, kw_only=True)
class Discovery:
    """What ``cloudflare.zone_discovery`` found this run."""

    zones_listed: int  # active zones the token listed, before the include/exclude globs
    matched: int  # of those, zones kept in step with the discovery defaults
    vanished: tuple[str, ...] = ()  # discovered by the last run, not listed by this one


class RunResult(enum.StrEnum):
    SUCCESS = "success"
    PARTIAL = "partial"
    FAILURE = "failure"


class WindowSource(enum.StrEnum):
    """Whose count of the requests left in Cloudflare's rate window a figure is."""

    SERVER = "server"  # Cloudflare's rate-limit headers, recently
    SYNCD = "syncd"  # syncd's own count of what it sent


@dataclass(frozen=True, slots=True, kw_only=True)
class RunReport:
    """The truth about one run; logs, metrics and the CLI summary are views of it."""

    started: float
    finished: float
    inventory: Inventory
    zones: tuple[ZoneReport, ...] = ()
    error: str = ""
    dry_run: bool = False
    api_generation: str = ""
    calls: tuple[CloudflareCall, ...] = ()
    discovery: Discovery | None = None  # None when zones are only configured explicitly
    budget_remaining: int | None = None  # Cloudflare requests left in the window at the end
    budget_source: WindowSource | None = None  # whose count ``budget_remaining`` is
    # Zones due for verification left on their mirror this run (verification's share of the
    # budget was used): listed first next run.
    verifications_waiting: int = 0

    @property
    def deferred_zones(self) -> tuple[ZoneReport, ...]:
        return tuple(z for z in self.zones if z.deferred)

    def unobserved(self) -> tuple[tuple[ZoneReport, ZoneObservation], ...]:
        """The zones whose traffic has no figures this run, each with why (its observation)."""
        return tuple(
            (z, z.traffic.observation)
            for z in self.zones
            if z.traffic is not None and not z.traffic.available
        )

    @property
    def duration(self) -> float:
        return self.finished - self.started

    @property
    def result(self) -> RunResult:
        # failure: nothing could be applied at all; partial: something failed or was refused.
        if self.error or (self.zones and all(z.error and not z.changed for z in self.zones)):
            return RunResult.FAILURE
        if not self.inventory.complete() or not all(z.ok for z in self.zones):
            return RunResult.PARTIAL
        return RunResult.SUCCESS


# --- origins as Cloudflare reaches them (issue 16) ------------------------------------------


def dns_name(name: str) -> str:
    """Lower case, no trailing dot: how host names are compared and reported."""
    return name.strip().rstrip(".").lower()


class ResolutionStatus(enum.StrEnum):
    RESOLVED = "resolved"
    UNRESOLVED = "unresolved"  # NXDOMAIN, or no A/AAAA data: a dangling name
    FAILED = "failed"  # timeout, SERVFAIL, REFUSED, no resolver, a loop: origin unknown


@dataclass(frozen=True, slots=True, kw_only=True)
class NameResolution:
    """What one name came to. ``chain`` is the CNAME targets after ``name``, in order."""

    name: str
    status: ResolutionStatus
    addresses: tuple[IPAddress, ...] = ()
    chain: tuple[str, ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class DnsRecord:
    """One DNS record of a zone, as far as origins go (A, AAAA, CNAME).

    ``malformed``: Cloudflare listed the record without a field syncd needs (the schema makes
    every field optional); it names the record's id and the field. Such a record is an origin
    syncd cannot read, so it cannot be ruled out either: deletions in the zone wait.
    """

    name: str
    type: str
    content: str
    proxied: bool
    malformed: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolOrigin:
    name: str
    address: str  # an IP or a hostname, as Cloudflare holds it
    enabled: bool = True
    malformed: str = ""  # the origin had no address (see ``DnsRecord.malformed``)


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    """A Load Balancing pool (account level)."""

    id: str
    name: str
    enabled: bool = True
    origins: tuple[PoolOrigin, ...] = ()


class RouteKind(enum.StrEnum):
    """Where a load balancer names pools besides its top-level keys."""

    RULE = "rule"  # rules[].overrides: a custom load balancing rule
    POOL_SET = "pool set"  # pool_sets[].overrides


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolRoute:
    """A rule or pool set of a load balancer and the pools its ``overrides`` name.

    A disabled one counts all the same: it can be enabled at any time, and its origins must
    not lose their mappings meanwhile.
    """

    kind: RouteKind
    name: str  # "" when Cloudflare gave it none
    position: int  # 1 for the first of ``rules`` (or ``pool_sets``)
    enabled: bool = True
    pool_ids: tuple[str, ...] = ()

    @property
    def label(self) -> str:
        """``rule 'eu traffic'`` (or ``rule #2`` without a name), ``(disabled)`` when it is."""
        which = repr(self.name) if self.name else f"#{self.position}"
        named = f"{self.kind.value} {which}"
        return named if self.enabled else f"{named} (disabled)"


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadBalancer:
    """A zone's load balancer. ``pool_ids``: the pools its top-level keys name, in order;
    ``routes``: its rules and pool sets with the pools each names.

    ``routes`` has no default on purpose: facts cached by a syncd that did not read rules fail
    to load and are read again, rather than hide the origins only a rule reaches.
    ``malformed``: the load balancer had no name (see ``DnsRecord.malformed``).
    """

    id: str
    name: str
    enabled: bool = True
    proxied: bool = True
    pool_ids: tuple[str, ...] = ()
    routes: tuple[PoolRoute, ...]
    malformed: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginSources:
    """What Cloudflare holds about a zone's origins. ``load_balancers`` None: not readable."""

    zone_name: str
    records: tuple[DnsRecord, ...] = ()
    load_balancers: tuple[LoadBalancer, ...] | None = ()
    pools: Mapping[str, Pool | str] = field(default_factory=dict)  # id -> pool, or why not
    # Pools the token may not read (403): their origins are unknown, which is not a failure.
    unreadable_pools: frozenset[str] = frozenset()
    warnings: tuple[str, ...] = ()


class OriginProblem(enum.StrEnum):
    """Why an origin yielded no address. All but ``unresolved`` hold deletions back; only
    ``failed`` fails the zone (a malformed item is a skip: Cloudflare's data, every run)."""

    UNRESOLVED = "unresolved_origin"
    FAILED = "failed"
    # Cloudflare listed the item without a field syncd needs (the schema makes all optional).
    MALFORMED_RECORD = "malformed_record"
    MALFORMED_LOAD_BALANCER = "malformed_load_balancer"
    MALFORMED_POOL_ORIGIN = "malformed_pool_origin"

    @property
    def malformed(self) -> bool:
        return self.value.startswith("malformed_")


@dataclass(frozen=True, slots=True, kw_only=True)
class Origin:
    """One way Cloudflare reaches the zone's origins, ending at an address or at a problem.

    ``source`` names the record or the load balancer, pool and pool origin; ``chain`` the names
    followed from it to the address, in order.
    """

    source: str
    chain: tuple[str, ...] = ()
    ip: IPAddress | None = None
    problem: OriginProblem | None = None
    detail: str = ""

    @property
    def key(self) -> str:
        """One origin of the coverage count: an address, or the name that gave none."""
        if self.ip is not None:
            return canonical(self.ip)
        return self.chain[-1] if self.chain else self.source


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneOrigins:
    """Every origin of a zone this run, and what could not be read (``warnings``)."""

    origins: tuple[Origin, ...] = ()
    warnings: tuple[str, ...] = ()
    # False when part of the origin set could not be read (a resolver failure, a 403 on Load
    # Balancing, a missing pool): syncd then deletes nothing in the zone this run.
    complete: bool = True

    @property
    def addresses(self) -> frozenset[IPAddress]:
        return frozenset(o.ip for o in self.origins if o.ip is not None)

    @property
    def failed(self) -> tuple[Origin, ...]:
        return tuple(o for o in self.origins if o.problem is OriginProblem.FAILED)

    @property
    def malformed(self) -> tuple[Origin, ...]:
        """Items Cloudflare listed without a field syncd needs: skipped, deletions held."""
        return tuple(o for o in self.origins if o.problem is not None and o.problem.malformed)

    @property
    def unresolved(self) -> tuple[Origin, ...]:
        return tuple(o for o in self.origins if o.problem is OriginProblem.UNRESOLVED)


class CoverageState(enum.StrEnum):
    MAPPED = "mapped"
    UNMAPPED = "unmapped"


class CoverageReason(enum.StrEnum):
    """Why an origin with an address is unmapped, besides a ``SkipReason`` of its plan."""

    UNDISCOVERED = "undiscovered_origin"  # no collector found the address
    PLANNED = "planned"  # a plan: the mapping would be written
    FAILED = "failed"  # the write was refused or its request failed
    NOT_APPLIED = "not_applied"  # the zone stopped before the write (shutdown, an error)


class ZoneFailure(enum.StrEnum):
    """A zone's ``error_reason`` when no Cloudflare code or status names it."""

    CRASHED = "error"  # an unexpected error inside the zone's apply (logged with its traceback)
    INTERRUPTED = "interrupted"  # shutdown asked: the rest is left for the next run


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginCoverage:
    """How one origin ended the run: mapped, or unmapped with the reason."""

    origin: Origin
    state: CoverageState
    reason: str = ""  # a CoverageReason, SkipReason or OriginProblem value; "" when mapped
    vendor: str = ""
    region: str = ""


def coverage_counts(coverage: tuple[OriginCoverage, ...]) -> dict[CoverageState, int]:
    """Distinct origins per state: an address reached two ways counts once, mapped if any is."""
    states: dict[str, CoverageState] = {}
    for c in coverage:
        if states.get(c.origin.key) is not CoverageState.MAPPED:
            states[c.origin.key] = c.state
    return {s: sum(1 for v in states.values() if v is s) for s in CoverageState}


def coverage_ratio(coverage: tuple[OriginCoverage, ...]) -> float | None:
    """Mapped share of the zone's distinct origins; None when the zone has no origin."""
    counts = coverage_counts(coverage)
    total = sum(counts.values())
    return counts[CoverageState.MAPPED] / total if total else None


@dataclass(frozen=True, slots=True, kw_only=True)
class TieredCache:
    """The zone's Tiered Cache and Smart topology settings; None where they could not be read."""

    tiered: bool | None = None
    smart: bool | None = None
    warning: str = ""
    transient: bool = False  # the warning may clear by itself: read again next run

    @property
    def smart_on(self) -> bool | None:
        """Whether Smart Tiered Cache reads the hints: both settings on."""
        if self.tiered is False or self.smart is False:
            return False
        if self.tiered is None or self.smart is None:
            return None
        return True


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneFacts:
    """What a run reads about a zone besides its DNS records and mappings: its Tiered Cache
    settings and, for ``origins: dns``, its details, load balancers and pools (``sources``,
    records left empty). Kept in the state database (``syncd/sources/facts.py`` says when each
    part is read again)."""

    tiered_cache: TieredCache
    sources: OriginSources | None = None
    read_at: float = 0.0  # when ``sources`` were read
    tiered_read_at: float = 0.0  # when ``tiered_cache`` was read (0: read it next run)


# --- what Cloudflare fetched: the GraphQL Analytics API (issue 25) -----------------------------


class ObservationState(enum.StrEnum):
    """How a zone's traffic reading went. Only ``observed`` has figures for this run."""

    OBSERVED = "observed"
    UNAVAILABLE = "unavailable"  # the zone's plan lacks the dataset or a field syncd reads
    DENIED = "denied"  # the token lacks Analytics: Read
    FAILED = "failed"  # this run only: an error, the time range, the GraphQL quota, the budget
    DISABLED = "disabled"  # cloudflare.observe.enabled is false


@dataclass(frozen=True, slots=True, kw_only=True)
class DatasetAccess:
    """What the settings node says a zone may read of ``httpRequestsAdaptiveGroups``.

    ``state`` is ``observed`` when the zone can answer syncd's query; otherwise why not, with
    ``detail`` naming the field, the permission or the error."""

    state: ObservationState
    detail: str = ""
    fields: tuple[str, ...] = ()  # of the dimensions syncd asks for, those the zone may read
    max_duration: float = 0.0  # seconds one query may span
    not_older_than: float = 0.0  # seconds back the data reaches
    max_page_size: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class OriginFetches:
    """Origin fetches of one (origin IP, upper tier) group over the window, as Cloudflare
    counted them (``count``, adaptive sampling's estimate); ``upper_tier`` as Cloudflare spelled
    it, ``""`` when no upper tier made the fetch."""

    ip: IPAddress
    upper_tier: str
    count: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneObservation:
    """A zone's origin fetches over ``[since, until)`` (epoch seconds), or why there are none.

    ``kept``: when this run's reading did not succeed, the addresses of the last one that did;
    under ``origins: dns`` they stay origins of the zone, so a failed reading never deletes what
    traffic proved."""

    state: ObservationState
    detail: str = ""
    since: float = 0.0
    until: float = 0.0
    read_at: float = 0.0
    fetches: tuple[OriginFetches, ...] = ()
    truncated: bool = False  # Cloudflare's page held as many groups as asked for: the rest cut
    tiers: bool = True  # upperTierColoName was read (a plan may lack it: no effect figure)
    kept: tuple[IPAddress, ...] = ()
    # What traffic proves for the zone is unknown this run (reading it crashed, or the kept
    # readings could not be read and none was read now, or a cut page with nothing kept to
    # fill it): under ``origins: dns`` the zone's deletions are held.
    uncertain: bool = False

    @property
    def addresses(self) -> frozenset[IPAddress]:
        """Every address Cloudflare was seen fetching from (or, failed, last seen)."""
        return frozenset(f.ip for f in self.fetches) | frozenset(self.kept)

    def by_address(self) -> dict[IPAddress, int]:
        """Fetches per origin address, over every upper tier."""
        out: dict[IPAddress, int] = {}
        for f in self.fetches:
            out[f.ip] = out.get(f.ip, 0) + f.count
        return out


class Judged(enum.StrEnum):
    """Whether a mapped origin's hint could be judged from its traffic, or why not."""

    JUDGED = "judged"
    TOO_NEW = "too_new"  # the mapping was written after the observation's window began
    NO_UPPER_TIERS_LISTED = "no_upper_tiers_listed"  # its region lists no upper tier
    TIERS_UNREAD = "tiers_unread"  # the zone's upper tiers could not be read


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedOrigin:
    """One address Cloudflare fetched from, judged against the mappings at the end of the run.

    ``reason`` (unmapped): ``undiscovered_origin`` (no collector found it),
    ``unsupported_region``, ``not_an_origin`` (found, but not an origin of the zone's
    configuration), or another ``SkipReason``/``CoverageReason`` value. ``tiers``: the upper
    tiers that fetched from it (normalised three-letter codes, ``-`` for none) with their
    fetches; ``expected``: those ``supported_regions`` lists for its mapping's region;
    ``effect``: their share of its fetches, None when not judged (``judged`` says why)."""

    ip: IPAddress
    fetches: int
    share: float
    state: CoverageState
    reason: str = ""
    vendor: str = ""
    region: str = ""
    tiers: tuple[tuple[str, int], ...] = ()
    expected: tuple[str, ...] = ()
    effect: float | None = None
    judged: Judged | None = None  # None when unmapped


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneTraffic:
    """A zone's observation and what it says about the run's mappings
    (``syncd/sources/traffic.py``)."""

    observation: ZoneObservation
    origins: tuple[ObservedOrigin, ...] = ()
    coverage_ratio: float | None = None  # share of origin fetches to a mapped address
    effect_ratio: float | None = None  # share of judged fetches made by an expected upper tier
    too_new: int = 0  # mapped origins whose hint is younger than the window

    @property
    def available(self) -> bool:
        return self.observation.state is ObservationState.OBSERVED

    def counts(self) -> dict[CoverageState, int]:
        """Observed addresses per state."""
        return {s: sum(1 for o in self.origins if o.state is s) for s in CoverageState}


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedFacts:
    """A zone's traffic readings, kept in the state database (``syncd/sources/observe.py`` says when
    each is read again)."""

    access: DatasetAccess | None = None  # the settings node; None: never read
    access_read_at: float = 0.0
    latest: ZoneObservation | None = None  # the last reading that did not fail
    good: ZoneObservation | None = None  # the last reading with figures (``observed``)
    next_at: float = 0.0  # when the zone's traffic is read again
    # The kept row could not be read (the registry says so): what traffic proved before is
    # unknown until a reading with figures.
    lost: bool = False
