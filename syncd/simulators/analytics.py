"""A strict stand-in for Cloudflare's GraphQL Analytics API (``POST /client/v4/graphql``), the
subset syncd reads: ``viewer { zones(filter:) { zoneTag settings {...}
httpRequestsAdaptiveGroups(filter:, limit:, orderBy:) {count dimensions sum avg} } }``.

Queries are parsed, validated and executed by ``graphql-core`` (the GraphQL reference
implementation) over an SDL schema named as Cloudflare names it, so an unknown field, argument
or type fails as Cloudflare fails, and introspection works. Errors come back as Cloudflare sends
them: HTTP 200, ``{"data": null, "errors": [{message, path, extensions}]}``. Seeded traffic per
zone (``add_fetches``), per-zone plan restrictions (``restrict``: a field the zone may not read
fails the whole multi-zone query, as at Cloudflare), the 10-zone limit, the time range the
plan allows, the per-user quota of 300 queries per 5 minutes, and a token without Analytics
Read (the Cloudflare simulator's ``deny("analytics")``).

Choices where Cloudflare documents nothing (docs/simulators.md): a permission or plan error
carries ``extensions.code`` ``authz`` and, for one zone, the zone's index in ``path``; a
quota or time-range error carries only ``extensions.timestamp``. Imports nothing from syncd.
"""

from __future__ import annotations

import datetime as dt
import operator
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from graphql import (
    FieldNode,
    GraphQLError,
    GraphQLScalarType,
    GraphQLSchema,
    build_schema,
    graphql_sync,
)

PATH = "/client/v4/graphql"
MAX_ZONES = 10  # zones one zone-scoped query may name
QUOTA = (300, 300.0)  # GraphQL queries per window of seconds, per user
DATASET = "httpRequestsAdaptiveGroups"
# What one observed zone reported for the dataset (shared/reference, Addendum 2).
MAX_DURATION = 86_400
NOT_OLDER_THAN = 691_200
MAX_PAGE_SIZE = 10_000
MAX_FIELDS = 30
DIMENSIONS = (
    "originIP",
    "upperTierColoName",
    "coloCode",
    "cacheStatus",
    "clientRequestHTTPHost",
    "originResponseStatus",
    "requestSource",
    "datetime",
)
AGGREGATES = ("sum_edgeResponseBytes", "sum_visits", "avg_originResponseDurationMs")
FIELDS = (*DIMENSIONS, *AGGREGATES)

SDL = """
scalar Time
scalar string
scalar uint16
scalar uint64
scalar float64

type Query {
  viewer: viewer
}

type viewer {
  zones(filter: ZoneFilter_InputObject!, limit: uint64): [zone!]!
}

input ZoneFilter_InputObject {
  zoneTag: string
  zoneTag_in: [string!]
}

type zone {
  zoneTag: string!
  settings: ZoneSettings!
  httpRequestsAdaptiveGroups(
    filter: ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!
    limit: uint64!
    orderBy: [ZoneHttpRequestsAdaptiveGroupsOrderBy!]
  ): [ZoneHttpRequestsAdaptiveGroups!]!
}

type ZoneSettings {
  httpRequestsAdaptiveGroups: Settings
}

type Settings {
  enabled: Boolean!
  availableFields: [string!]!
  maxDuration: uint64!
  notOlderThan: uint64!
  maxPageSize: uint64!
  maxNumberOfFields: uint64!
}

input ZoneHttpRequestsAdaptiveGroupsFilter_InputObject {
  AND: [ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!]
  OR: [ZoneHttpRequestsAdaptiveGroupsFilter_InputObject!]
  datetime_geq: Time
  datetime_gt: Time
  datetime_leq: Time
  datetime_lt: Time
  originIP: string
  originIP_neq: string
  originIP_in: [string!]
  upperTierColoName: string
  upperTierColoName_neq: string
  coloCode: string
  cacheStatus: string
  cacheStatus_neq: string
  clientRequestHTTPHost: string
  requestSource: string
}

enum ZoneHttpRequestsAdaptiveGroupsOrderBy {
  count_ASC
  count_DESC
  datetime_ASC
  datetime_DESC
  originIP_ASC
  originIP_DESC
  upperTierColoName_ASC
  upperTierColoName_DESC
  sum_edgeResponseBytes_ASC
  sum_edgeResponseBytes_DESC
  avg_originResponseDurationMs_ASC
  avg_originResponseDurationMs_DESC
}

type ZoneHttpRequestsAdaptiveGroups {
  count: uint64!
  dimensions: ZoneHttpRequestsAdaptiveGroupsDimensions
  sum: ZoneHttpRequestsAdaptiveGroupsSum
  avg: ZoneHttpRequestsAdaptiveGroupsAvg
}

type ZoneHttpRequestsAdaptiveGroupsDimensions {
  originIP: string!
  upperTierColoName: string!
  coloCode: string!
  cacheStatus: string!
  clientRequestHTTPHost: string!
  originResponseStatus: uint16!
  requestSource: string!
  datetime: Time!
}

type ZoneHttpRequestsAdaptiveGroupsSum {
  edgeResponseBytes: uint64!
  visits: uint64!
}

type ZoneHttpRequestsAdaptiveGroupsAvg {
  originResponseDurationMs: float64!
}
"""


@dataclass(frozen=True, slots=True)
class _Event:
    """Requests of one kind at one moment (epoch seconds)."""

    at: float
    count: int
    origin_ip: str  # "" for an answer from cache (no origin fetch)
    upper_tier: str
    colo: str
    cache_status: str
    host: str
    status: int
    source: str
    bytes: int
    duration_ms: float


@dataclass(slots=True)
class _Zone:
    events: list[_Event] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)  # fields the plan does not allow
    enabled: bool = True
    max_duration: int = MAX_DURATION
    not_older_than: int = NOT_OLDER_THAN
    max_page_size: int = MAX_PAGE_SIZE  # a plan may allow smaller pages


def _time(text: Any) -> float:
    if not isinstance(text, str):
        raise GraphQLError(f"Time must be an RFC 3339 string, not {text!r}")
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GraphQLError(f"error parsing args: {text!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise GraphQLError(f"error parsing args: {text!r} has no time zone")
    return parsed.timestamp()


def _uint(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise GraphQLError(f"not an unsigned integer: {value!r}")
    return value


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise GraphQLError(f"not a string: {value!r}")
    return value


def _float(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GraphQLError(f"not a number: {value!r}")
    return float(value)


def _schema() -> GraphQLSchema:
    schema = build_schema(SDL)
    parsers: dict[str, Callable[[Any], Any]] = {
        "Time": _time,
        "string": _text,
        "uint16": _uint,
        "uint64": _uint,
        "float64": _float,
    }
    for name, parse in parsers.items():
        scalar = schema.type_map[name]
        assert isinstance(scalar, GraphQLScalarType)
        out: Callable[[Any], Any] = _serialize_time if name == "Time" else _same
        # graphql-core 3.3 reads the coerce_* names; the parse_*/serialize ones are kept too.
        scalar.parse_value = scalar.coerce_input_value = parse  # type: ignore[method-assign,assignment]
        scalar.serialize = scalar.coerce_output_value = out  # type: ignore[method-assign,assignment]
    return schema


def _same(value: Any) -> Any:
    return value


def _serialize_time(value: Any) -> str:
    stamp = dt.datetime.fromtimestamp(float(value), dt.UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")


class AnalyticsSimulator:
    """The GraphQL endpoint's state: traffic and plan per zone, the per-user quota.

    The Cloudflare simulator owns one (``CloudflareSimulator.analytics``) and hands it every
    ``POST /client/v4/graphql`` after authenticating it; control methods are thread-safe.
    """

    def __init__(self, *, quota: tuple[int, float] = QUOTA, clock: Callable[[], float] = time.time):
        self.quota = quota
        self._clock = clock
        self._zones: dict[str, _Zone] = {}
        self._window: deque[float] = deque()
        self._lock = threading.RLock()
        self._schema = _schema()
        self.queries = 0  # GraphQL queries answered (each counts against the quota)

    # --- control API ----------------------------------------------------------------------

    def add_fetches(
        self,
        zone_id: str,
        origin_ip: str,
        count: int,
        *,
        upper_tier: str = "",
        colo: str = "FRA",
        host: str = "",
        ago: float = 60.0,
        cache_status: str = "miss",
        status: int = 200,
        duration_ms: float = 40.0,
    ) -> None:
        """``count`` requests of the zone ``ago`` seconds back that Cloudflare fetched from
        ``origin_ip`` through ``upper_tier`` (``""``: no upper tier). ``origin_ip=""`` with
        ``cache_status="hit"`` is an answer from cache."""
        if count < 1:
            raise ValueError("count is at least 1")
        event = _Event(
            at=self._clock() - ago,
            count=count,
            origin_ip=origin_ip,
            upper_tier=upper_tier,
            colo=colo,
            cache_status=cache_status,
            host=host,
            status=status if origin_ip else 0,
            source="eyeball",
            bytes=1000 * count,
            duration_ms=duration_ms if origin_ip else 0.0,
        )
        with self._lock:
            self._zone(zone_id).events.append(event)

    def clear(self, zone_id: str) -> None:
        with self._lock:
            self._zone(zone_id).events.clear()

    def restrict(self, zone_id: str, *fields: str, enabled: bool = True) -> None:
        """The zone's plan lacks ``fields`` (``availableFields`` leaves them out; a query that
        reads one fails); ``enabled=False``: the dataset is off for the zone."""
        unknown = set(fields) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown fields {sorted(unknown)}; the dataset has {FIELDS}")
        with self._lock:
            zone = self._zone(zone_id)
            zone.missing = set(fields)
            zone.enabled = enabled

    def set_limits(self, zone_id: str, *, max_duration: int, not_older_than: int) -> None:
        with self._lock:
            zone = self._zone(zone_id)
            zone.max_duration, zone.not_older_than = max_duration, not_older_than

    def set_page_size(self, zone_id: str, size: int) -> None:
        """The largest page the zone's plan allows (its settings node's ``maxPageSize``)."""
        with self._lock:
            self._zone(zone_id).max_page_size = size

    def _zone(self, zone_id: str) -> _Zone:
        return self._zones.setdefault(zone_id, _Zone())

    # --- serving --------------------------------------------------------------------------

    def answer(self, body: Any, *, zones: Iterable[str], denied: bool) -> tuple[int, Any]:
        """(HTTP status, JSON body) for one request body; ``zones`` are those the token sees,
        ``denied`` when it lacks Analytics Read."""
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return 400, _errors("a request body is {query, variables}")
        variables = body.get("variables") or {}
        if not isinstance(variables, dict):
            return 400, _errors("variables must be an object")
        with self._lock:
            if not self._count():
                return 200, _errors("rate limiter budget depleted, try again after 5 minutes")
            self.queries += 1
            context = _Context(self, frozenset(zones), denied, self._clock())
            result = graphql_sync(
                self._schema,
                body["query"],
                root_value=_Root(context),
                variable_values=variables,
                operation_name=body.get("operationName"),
            )
        if result.errors:
            # Cloudflare fails the whole query: data is null, whichever node failed.
            return 200, {"data": None, "errors": [_error(e) for e in result.errors]}
        return 200, {"data": result.data, "errors": None}

    def _count(self) -> bool:
        """Count a query against the per-user quota; False when it is spent."""
        limit, window = self.quota
        now = time.monotonic()
        while self._window and self._window[0] <= now - window:
            self._window.popleft()
        if len(self._window) >= limit:
            return False
        self._window.append(now)
        return True


def _errors(message: str) -> dict[str, Any]:
    return {"data": None, "errors": [{"message": message, "path": None, "extensions": _stamp()}]}


def _stamp(**extra: Any) -> dict[str, Any]:
    now = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {**extra, "timestamp": now}


def _error(error: GraphQLError) -> dict[str, Any]:
    return {
        "message": error.message,
        "path": [str(p) for p in error.path] if error.path else None,
        "extensions": _stamp(**(error.extensions or {})),
    }


def _authz(message: str) -> GraphQLError:
    return GraphQLError(message, extensions={"code": "authz"})


@dataclass(frozen=True, slots=True)
class _Context:
    sim: AnalyticsSimulator
    visible: frozenset[str]
    denied: bool
    now: float


class _Root:
    """``Query``: the viewer of the token."""

    def __init__(self, context: _Context) -> None:
        self.viewer = _Viewer(context)


class _Viewer:
    def __init__(self, context: _Context) -> None:
        self._c = context

    def zones(self, info: Any, filter: dict[str, Any], limit: int = 0) -> list[Any]:
        del info, limit
        tags = list(filter.get("zoneTag_in") or [])
        if filter.get("zoneTag") is not None:
            tags.append(filter["zoneTag"])
        if not tags:
            raise GraphQLError("zones filter needs zoneTag or zoneTag_in")
        if len(tags) > MAX_ZONES:
            raise GraphQLError(
                f"zones filter names {len(tags)} zones; a query may name at most {MAX_ZONES}"
            )
        if self._c.denied:
            raise _authz("not authorized for that account: the token lacks Analytics Read")
        unknown = [t for t in tags if t not in self._c.visible]
        if unknown:
            raise _authz(f"not authorized for zone {unknown[0]}")
        with self._c.sim._lock:
            return [_ZoneNode(tag, self._c.sim._zone(tag), self._c) for tag in tags]


class _ZoneNode:
    def __init__(self, tag: str, zone: _Zone, context: _Context) -> None:
        self.zoneTag = tag
        self._zone = zone
        self._c = context
        allowed = [f for f in FIELDS if f not in zone.missing]
        self.settings = {
            DATASET: {
                "enabled": zone.enabled,
                "availableFields": allowed if zone.enabled else [],
                "maxDuration": zone.max_duration,
                "notOlderThan": zone.not_older_than,
                "maxPageSize": zone.max_page_size,
                "maxNumberOfFields": MAX_FIELDS,
            }
        }

    def httpRequestsAdaptiveGroups(
        self,
        info: Any,
        filter: dict[str, Any],
        limit: int,
        orderBy: list[str] | None = None,  # noqa: N803 (the schema's name)
    ) -> list[dict[str, Any]]:
        zone = self._zone
        if not zone.enabled:
            raise _authz(f"zone does not have access to the path {DATASET}")
        wanted = _selected(info.field_nodes[0])
        named = wanted | _filtered(filter)
        refused = sorted(named & zone.missing)
        if refused:
            raise _authz(f"zone does not have access to the field {refused[0]}")
        if not 0 < limit <= zone.max_page_size:
            raise GraphQLError(
                f"limit must be positive number and not greater than {zone.max_page_size}"
            )
        self._check_range(filter)
        dims = sorted(wanted & set(DIMENSIONS))
        groups: dict[tuple[Any, ...], list[_Event]] = {}
        for e in zone.events:
            if _matches(e, filter):
                groups.setdefault(tuple(_dimension(e, d) for d in dims), []).append(e)
        rows = [_group(dims, key, events) for key, events in groups.items()]
        for order in reversed(orderBy or []):
            name, _, way = order.rpartition("_")
            rows.sort(key=partial(_sort_key, name=name), reverse=way == "DESC")
        return rows[:limit]

    def _check_range(self, filter: dict[str, Any]) -> None:
        since = filter.get("datetime_geq", filter.get("datetime_gt"))
        until = filter.get("datetime_lt", filter.get("datetime_leq"))
        if since is None or until is None:
            raise GraphQLError("filter must bound datetime on both sides (datetime_geq, _lt)")
        zone = self._zone
        if since < self._c.now - zone.not_older_than:
            raise GraphQLError(f"cannot request data older than {zone.not_older_than}s")
        if until - since > zone.max_duration:
            raise GraphQLError(
                f"query time range is too large: at most {zone.max_duration}s for this dataset"
            )


def _selected(node: FieldNode) -> set[str]:
    """The dataset fields the query reads: dimensions by name, aggregates as ``sum_x``."""
    out: set[str] = set()
    for part in node.selection_set.selections if node.selection_set else ():
        if not isinstance(part, FieldNode) or part.selection_set is None:
            continue
        prefix = "" if part.name.value == "dimensions" else f"{part.name.value}_"
        out |= {
            prefix + f.name.value for f in part.selection_set.selections if isinstance(f, FieldNode)
        }
    return out


def _filtered(filter: dict[str, Any]) -> set[str]:
    out: set[str] = set()
    for key, value in filter.items():
        if key in ("AND", "OR"):
            for inner in value:
                out |= _filtered(inner)
        else:
            out.add(key.partition("_")[0])
    return out


_COLUMN = {
    "originIP": "origin_ip",
    "upperTierColoName": "upper_tier",
    "coloCode": "colo",
    "cacheStatus": "cache_status",
    "clientRequestHTTPHost": "host",
    "originResponseStatus": "status",
    "requestSource": "source",
    "datetime": "at",
}


def _dimension(e: _Event, name: str) -> Any:
    value = getattr(e, _COLUMN[name])
    return int(value // 60 * 60) if name == "datetime" else value  # minute buckets


_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "": operator.eq,
    "neq": operator.ne,
    "in": lambda have, want: have in want,
    "geq": operator.ge,
    "gt": operator.gt,
    "leq": operator.le,
    "lt": operator.lt,
}


def _matches(e: _Event, filter: dict[str, Any]) -> bool:
    for key, want in filter.items():
        if key == "AND":
            if not all(_matches(e, f) for f in want):
                return False
            continue
        if key == "OR":
            if not any(_matches(e, f) for f in want):
                return False
            continue
        name, _, op = key.partition("_")
        have = _dimension(e, name) if name != "datetime" else e.at
        if not _OPERATORS[op](have, want):
            return False
    return True


def _group(dims: list[str], key: tuple[Any, ...], events: list[_Event]) -> dict[str, Any]:
    count = sum(e.count for e in events)
    return {
        "count": count,
        "dimensions": dict(zip(dims, key, strict=True)),
        "sum": {
            "edgeResponseBytes": sum(e.bytes for e in events),
            "visits": count,
        },
        "avg": {
            "originResponseDurationMs": sum(e.duration_ms * e.count for e in events) / count,
        },
    }


def _sort_key(row: dict[str, Any], name: str) -> Any:
    if name == "count":
        return row["count"]
    family, _, inner = name.partition("_")
    if family in ("sum", "avg"):
        return row[family][inner]
    return row["dimensions"].get(name, "")
