"""The narrow protocol the pipeline uses to reach Cloudflare, and the one way to open it.

Outside ``cloudflare/`` nothing imports any other module of the package, and no httpx type is
seen. ``connect()`` makes the run's HTTP client and transport (auth, the shared rate limit,
retries) and picks the API generation; the ``Cloudflare`` it returns makes every call syncd
needs. Nothing above knows v1 from v2: ``auto`` uses v2 and falls back to v1 for a zone where
Cloudflare answers that the v2 route does not exist (codes 7000/7003). Per-item outcomes come
back as ``BatchResult`` values; only a failure of a whole request raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from typing import Literal, Protocol, TypeVar

import httpx
import structlog

from syncd.cloudflare import analytics, origin_reads, zones
from syncd.cloudflare.deadline import RequestDeadline
from syncd.cloudflare.transport import RateLimiter, RetryPolicy, Transport, WindowLeft, build_client
from syncd.cloudflare.v1 import V1Client
from syncd.cloudflare.v2 import V2Client
from syncd.cloudflare.zones import Resolution
from syncd.config import CloudflareConfig
from syncd.errors import AuthError, CloudflareError, RouteMissing, TransportError
from syncd.model import (
    BatchResult,
    CloudflareCall,
    DatasetAccess,
    DnsRecord,
    IPAddress,
    Listing,
    OriginSources,
    RateWindow,
    RegionMapping,
    SupportedRegions,
    TieredCache,
    ZoneObservation,
)

__all__ = [
    "AnalyticsAPI",
    "Cloudflare",
    "CloudflareAPI",
    "HTTPTransport",
    "RateLimiter",
    "Resolution",
    "WindowLeft",
    "connect",
    "rate_limiter",
    "supported_regions",
]

log = structlog.stdlib.get_logger(__name__)
_R = TypeVar("_R")

# What a caller may pass to replace the network (the benchmark's in-process transport); opaque
# to everything above this package.
HTTPTransport = httpx.BaseTransport


class CloudflareAPI(Protocol):
    """Every call the pipeline makes on one zone."""

    def supported_regions(self, zone_id: str) -> SupportedRegions: ...
    def list_mappings(self, zone_id: str) -> Listing: ...
    def upsert(self, zone_id: str, items: Sequence[RegionMapping]) -> BatchResult: ...
    def delete(self, zone_id: str, ips: Sequence[IPAddress]) -> BatchResult: ...
    def origin_records(self, zone_id: str) -> tuple[DnsRecord, ...]: ...
    def origin_sources(
        self, zone_id: str, *, name: str, label: str, account: str = ""
    ) -> OriginSources: ...
    def tiered_cache(self, zone_id: str, *, label: str) -> TieredCache: ...
    def generation(self, zone_id: str) -> str: ...


class AnalyticsAPI(Protocol):
    """The GraphQL Analytics reads (many zones per query); none raises for an answer."""

    def dataset_access(
        self, zone_ids: Sequence[str], *, stop: Callable[[], str]
    ) -> dict[str, DatasetAccess]: ...
    def origin_fetches(
        self,
        zone_ids: Sequence[str],
        *,
        since: float,
        until: float,
        fields: tuple[str, ...],
        limit: int,
        stop: Callable[[], str],
    ) -> dict[str, ZoneObservation]: ...


class _Generation(Protocol):
    """One API generation's four origin cloud region calls (``v1.py``, ``v2.py``)."""

    def supported_regions(self, zone_id: str) -> SupportedRegions: ...
    def list_mappings(self, zone_id: str) -> Listing: ...
    def upsert(self, zone_id: str, items: Sequence[RegionMapping]) -> BatchResult: ...
    def delete(self, zone_id: str, ips: Sequence[IPAddress]) -> BatchResult: ...


class Cloudflare:
    """The run's connection to Cloudflare; close it (or use ``with``) when the run ends."""

    def __init__(
        self,
        client: httpx.Client,
        transport: Transport,
        mode: Literal["auto", "v1", "v2"],
        graphql_quota: RateLimiter | None = None,
    ) -> None:
        self._client = client
        self._transport = transport
        self._analytics = analytics.Reader(transport, graphql_quota or analytics.quota_limiter())
        self._v2 = V2Client(transport)
        self._v1 = V1Client(transport)
        self._mode = mode
        self._fallback: set[str] = set()  # zones whose v2 route is missing (auto only)
        self._lock = threading.Lock()

    def __enter__(self) -> Cloudflare:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def calls(self) -> tuple[CloudflareCall, ...]:
        """Every HTTP exchange so far (retries are separate calls), for the run report."""
        return self._transport.calls()

    def sent(self) -> int:
        """How many requests this connection has sent (retries included)."""
        return self._transport.sent()

    def window_left(self) -> WindowLeft:
        """Requests left in the rate window now: Cloudflare's figure when fresh, else syncd's."""
        return self._transport.limiter.window_left()

    def window(self) -> RateWindow:
        """The requests of the current rate window (and of the GraphQL quota's), for the next
        process to count."""
        rest = self._transport.limiter.window()
        return replace(rest, graphql=self._analytics.quota.window().taken)

    def zones(self, cf: CloudflareConfig) -> Resolution:
        """The run's zones: the configured ones and, with ``zone_discovery``, those listed."""
        return zones.discover(self._transport, cf)

    def generation(self, zone_id: str) -> str:
        """Which generation serves ``zone_id`` (for logs and the report)."""
        if self._mode != "auto":
            return self._mode
        with self._lock:
            return "v1" if zone_id in self._fallback else "v2"

    def supported_regions(self, zone_id: str) -> SupportedRegions:
        return self._call(zone_id, lambda api: api.supported_regions(zone_id))

    def list_mappings(self, zone_id: str) -> Listing:
        return self._call(zone_id, lambda api: api.list_mappings(zone_id))

    def upsert(self, zone_id: str, items: Sequence[RegionMapping]) -> BatchResult:
        return self._call(zone_id, lambda api: api.upsert(zone_id, items))

    def delete(self, zone_id: str, ips: Sequence[IPAddress]) -> BatchResult:
        return self._call(zone_id, lambda api: api.delete(zone_id, ips))

    def origin_records(self, zone_id: str) -> tuple[DnsRecord, ...]:
        """The zone's A, AAAA and CNAME records (``origins: dns``; read every run)."""
        return tuple(origin_reads.records(self._transport, zone_id))

    def origin_sources(
        self, zone_id: str, *, name: str, label: str, account: str = ""
    ) -> OriginSources:
        """What the zone's origins are made of besides records: load balancers, pools.

        ``name`` is the configured zone name (used if its details cannot be read), ``label``
        how warnings name the zone; a 403 becomes a warning naming the missing permission.
        """
        return origin_reads.read(self._transport, zone_id, name=name, label=label, account=account)

    def tiered_cache(self, zone_id: str, *, label: str) -> TieredCache:
        """Tiered Cache and Smart topology (read only); an error is a warning on the result."""
        return origin_reads.tiered_cache(self._transport, zone_id, label=label)

    def dataset_access(
        self, zone_ids: Sequence[str], *, stop: Callable[[], str]
    ) -> dict[str, DatasetAccess]:
        """What each zone's plan lets it read of the traffic dataset (the settings node)."""
        return self._analytics.access(zone_ids, stop=stop)

    def origin_fetches(
        self,
        zone_ids: Sequence[str],
        *,
        since: float,
        until: float,
        fields: tuple[str, ...],
        limit: int,
        stop: Callable[[], str],
    ) -> dict[str, ZoneObservation]:
        """Each zone's origin fetches over ``[since, until)`` by origin IP and upper tier."""
        return self._analytics.fetches(
            zone_ids, since=since, until=until, fields=fields, limit=limit, stop=stop
        )

    def _call(self, zone_id: str, op: Callable[[_Generation], _R]) -> _R:
        if self.generation(zone_id) == "v1":
            return op(self._v1)
        try:
            return op(self._v2)
        except RouteMissing as exc:
            if self._mode != "auto":
                raise
            with self._lock:
                self._fallback.add(zone_id)
            log.warning("api_fallback", zone=zone_id, using="v1", cause=exc.code)
            return op(self._v1)


def connect(
    cf: CloudflareConfig,
    *,
    timeout: float,
    retries: int,
    backoff: float,
    limiter: RateLimiter | None = None,
    window: RateWindow | None = None,
    http_transport: HTTPTransport | None = None,
) -> Cloudflare:
    """The run's one HTTP client, with auth, the rate limit (a new one unless the caller shares
    its own across runs) and retries, speaking the generation ``cloudflare.api`` names.

    ``window``: the requests earlier processes sent, which still count (a CronJob's runs share
    one budget); a limiter takes it once, so a daemon's own runs are not counted twice.
    """
    deadline = RequestDeadline()  # cloudflare.timeout bounds each request whole, not each read
    client = build_client(
        cf.base_url,
        token=cf.token(),  # api_token_file is read again at every run
        email=cf.api_email,
        key=cf.api_key.get_secret_value() if cf.api_key else None,
        timeout=timeout,
        transport=http_transport,
        deadline=deadline,
    )
    limiter = limiter or rate_limiter(cf)
    quota = analytics.quota_limiter()  # new each run: the window below holds the earlier ones
    if window is not None:
        limiter.restore(window)
        quota.restore(RateWindow(taken=window.graphql))
    transport = Transport(
        client,
        limiter=limiter,
        retry=RetryPolicy(retries=retries, backoff=backoff),
        deadline=(deadline, timeout),
    )
    return Cloudflare(client, transport, cf.api, quota)


def rate_limiter(cf: CloudflareConfig) -> RateLimiter:
    """The client-side limiter for ``cloudflare.rate_limit``; share one across runs."""
    return RateLimiter(cf.rate_limit.requests, cf.rate_limit.period)


def supported_regions(api: CloudflareAPI, zone_ids: Iterable[str]) -> SupportedRegions:
    """Cloudflare's supported vendors and regions, from the first zone that answers.

    A zone may refuse on its own (Tiered Cache off, a zone id the token cannot see), so the
    next zone is asked; a network or server failure, or credentials refused, is the same for
    every zone and ends it.
    """
    first: CloudflareError | None = None
    for zone_id in zone_ids:
        try:
            return api.supported_regions(zone_id)
        except CloudflareError as exc:
            if isinstance(exc, TransportError) or exc.retryable:
                raise
            if isinstance(exc, AuthError) and exc.for_every_zone:
                raise
            first = first or exc
    if first is None:  # only zone discovery can leave a run without zones
        raise CloudflareError("zone discovery matched no zone to ask for supported regions")
    raise first
