"""What Cloudflare really fetched: the GraphQL Analytics API (``POST /graphql``), read-only.

Two queries, each naming at most ``MAX_ZONES`` zones: the settings node (what each zone's plan
lets it read of ``httpRequestsAdaptiveGroups``), then the origin fetches of the zones that can
answer, grouped by ``originIP`` and ``upperTierColoName`` (groups without an origin IP are
answers from cache, not origin fetches). One zone without access fails a whole multi-zone query
at Cloudflare, which is why the settings come first; should a data query fail for one zone
anyway (its ``path`` names the zone's index), the others are asked again without it.

Nothing here raises for an answer: every zone ends with a ``DatasetAccess`` or a
``ZoneObservation`` saying what happened (a token without Analytics Read is ``denied``, a plan
without the dataset or ``originIP`` ``unavailable``, an error, a refused time range or the
GraphQL quota ``failed`` for this run). Each query takes a slot of the GraphQL quota (its own
window, ``quota``, with the REST limiter's headroom) without waiting for one, and goes through
the transport like every request (the REST rate window, the run's count).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.cloudflare.transport import RateLimiter, Transport, parse_graphql
from syncd.cloudflare.wire import malformed
from syncd.errors import AuthError, CloudflareError
from syncd.model import (
    DatasetAccess,
    ObservationState,
    OriginFetches,
    ZoneObservation,
    parse_ip,
)

MAX_ZONES = 10  # zones one zone-scoped query may name (Cloudflare's limit)
QUOTA = (300, 300.0)  # GraphQL queries per 5 minutes per user, on top of the REST limit
DATASET = "httpRequestsAdaptiveGroups"
ORIGIN = "originIP"  # without it nothing can be observed
UPPER_TIER = "upperTierColoName"  # without it coverage still can, the hint effect cannot
PERMISSION = "Analytics: Read"
_AUTHZ = "authz"  # extensions.code of a permission or plan refusal

_SETTINGS = (
    "query ObservationSettings($zones: [string!]) { viewer { zones(filter: {zoneTag_in: $zones})"
    " { zoneTag settings { httpRequestsAdaptiveGroups { enabled availableFields maxDuration"
    " notOlderThan maxPageSize } } } } }"
)
_FETCHES = (
    "query OriginFetches($zones: [string!], $since: Time!, $until: Time!, $limit: uint64!) {"
    " viewer { zones(filter: {zoneTag_in: $zones}) { zoneTag httpRequestsAdaptiveGroups("
    'filter: {datetime_geq: $since, datetime_lt: $until, originIP_neq: ""}, limit: $limit,'
    " orderBy: [count_DESC]) { count dimensions { FIELDS } } } } }"
)

Stop = Callable[[], str]  # why no further query may go ("" while they may): the run's budget


def quota_limiter() -> RateLimiter:
    """The client-side window of the GraphQL quota, with the REST limiter's headroom."""
    return RateLimiter(*QUOTA)


@dataclass(frozen=True, slots=True)
class _Refused:
    """A query that got no data, and what that means for its zones."""

    state: ObservationState
    detail: str
    zone_index: int | None = None  # the zone the error names, when it names one


@dataclass(frozen=True, slots=True)
class Reader:
    """The GraphQL half of the run's connection: the transport and the GraphQL quota."""

    transport: Transport
    quota: RateLimiter

    def access(self, zone_ids: Sequence[str], *, stop: Stop) -> dict[str, DatasetAccess]:
        """Each zone's settings node for the dataset, ``MAX_ZONES`` zones per query."""
        out: dict[str, DatasetAccess] = {}
        for batch in _chunks(zone_ids):
            answer = self._ask(_SETTINGS, {"zones": list(batch)}, "graphql_settings", stop)
            if isinstance(answer, list):
                for refused, named in _refusals(answer, batch, indexed=_denied):
                    out.update({z: _no_access(refused) for z in named})
                other = _Refused(ObservationState.FAILED, "the query failed for another zone")
                out.update({z: _no_access(other) for z in batch if z not in out})
                continue
            try:
                found = {tag: _settings(node) for tag, node in _zones(answer, "settings")}
            except CloudflareError as exc:
                out.update(
                    {z: _no_access(_Refused(ObservationState.FAILED, str(exc))) for z in batch}
                )
                continue
            for z in batch:
                out[z] = found.get(z) or _no_access(
                    _Refused(ObservationState.FAILED, "Cloudflare's answer left the zone out")
                )
        return out

    def fetches(
        self,
        zone_ids: Sequence[str],
        *,
        since: float,
        until: float,
        fields: tuple[str, ...],
        limit: int,
        stop: Stop,
    ) -> dict[str, ZoneObservation]:
        """Origin fetches per (origin IP, upper tier) over ``[since, until)``, ``MAX_ZONES``
        zones per query; a zone the answer refuses on its own is left out of a second query."""
        query = _FETCHES.replace("FIELDS", " ".join(fields))
        window = {"since": _rfc3339(since), "until": _rfc3339(until), "limit": limit}
        out: dict[str, ZoneObservation] = {}
        for first in _chunks(zone_ids):
            batch = list(first)
            for _attempt in range(2):  # once more without the zones an error named
                answer = self._ask(query, {"zones": batch, **window}, "graphql_fetches", stop)
                if not isinstance(answer, list):
                    out.update(self._observed(answer, batch, since, until, fields, limit))
                    break
                named = False
                for refused, zones in _refusals(answer, batch, indexed=_unavailable):
                    named = named or refused.zone_index is not None
                    out.update({z: _unobserved(refused, since, until) for z in zones})
                batch = [z for z in batch if z not in out]
                if not named or not batch:
                    break
            for z in batch:  # asked twice, refused for another zone both times
                out.setdefault(
                    z, _unobserved(_Refused(ObservationState.FAILED, "no answer"), since, until)
                )
        return out

    def _observed(  # noqa: PLR0917 (private: one batch's answer and its query)
        self,
        answer: Any,
        batch: Sequence[str],
        since: float,
        until: float,
        fields: tuple[str, ...],
        limit: int,
    ) -> dict[str, ZoneObservation]:
        try:
            groups = dict(_zones(answer, DATASET))
            out = {
                tag: ZoneObservation(
                    state=ObservationState.OBSERVED,
                    since=since,
                    until=until,
                    fetches=_fetches(rows),
                    truncated=isinstance(rows, list) and len(rows) >= limit,
                    tiers=UPPER_TIER in fields,
                )
                for tag, rows in groups.items()
                if tag in batch
            }
        except CloudflareError as exc:
            return {
                z: _unobserved(_Refused(ObservationState.FAILED, str(exc)), since, until)
                for z in batch
            }
        missing = _Refused(ObservationState.FAILED, "Cloudflare's answer left the zone out")
        return {z: out.get(z) or _unobserved(missing, since, until) for z in batch}

    def _ask(
        self, query: str, variables: dict[str, Any], endpoint: str, stop: Stop
    ) -> Any | list[_Refused]:
        """The answer's ``data``, or why there is none (a list: one entry per error)."""
        why = stop()
        if not why and not self.quota.try_acquire():
            why = (
                f"Cloudflare's GraphQL quota ({QUOTA[0]} queries per 5 minutes) is used up; "
                "read again next run"
            )
        if why:
            return [_Refused(ObservationState.FAILED, why)]
        try:
            envelope = self.transport.request(
                "POST",
                "graphql",
                endpoint=endpoint,
                body={"query": query, "variables": variables},
                parse=parse_graphql,
            )
        except AuthError as exc:
            # 403: this token may not read analytics; credentials refused (401) are the
            # run's own trouble, reported by its other requests.
            denied = exc.status == 403
            state = ObservationState.DENIED if denied else ObservationState.FAILED
            return [_Refused(state, _lacks(f"Cloudflare: {exc}") if denied else str(exc))]
        except CloudflareError as exc:
            return [_Refused(ObservationState.FAILED, str(exc))]
        body = envelope.result
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            return [_error(e) for e in errors]
        data = body.get("data")
        if not isinstance(data, dict):
            return [_Refused(ObservationState.FAILED, "Cloudflare's answer has no data object")]
        return data


def _chunks(zone_ids: Sequence[str]) -> list[Sequence[str]]:
    return [zone_ids[i : i + MAX_ZONES] for i in range(0, len(zone_ids), MAX_ZONES)]


def _rfc3339(epoch: float) -> str:
    stamp = dt.datetime.fromtimestamp(int(epoch), dt.UTC).isoformat(timespec="seconds")
    return stamp.replace("+00:00", "Z")


def _lacks(cause: str) -> str:
    return f"the token lacks {PERMISSION}, so the traffic is not observed ({cause})"


def _error(error: Any) -> _Refused:
    """One GraphQL error: by its code (``authz``) and the zone its path names, if any."""
    if not isinstance(error, dict):
        return _Refused(ObservationState.FAILED, f"Cloudflare: {error!r:.200}")
    message = str(error.get("message") or "no message")[:300]
    extensions = error.get("extensions")
    code = extensions.get("code") if isinstance(extensions, dict) else None
    path = error.get("path")
    index = None
    if isinstance(path, list) and len(path) > 2 and path[:2] == ["viewer", "zones"]:
        index = int(path[2]) if str(path[2]).isdigit() else None
    state = ObservationState.DENIED if code == _AUTHZ else ObservationState.FAILED
    return _Refused(state, f"Cloudflare: {message}", index)


def _denied(refused: _Refused) -> _Refused:
    """A settings error naming one zone: the token may not read that zone's analytics."""
    if refused.state is ObservationState.DENIED:
        return _Refused(ObservationState.DENIED, _lacks(refused.detail), refused.zone_index)
    return refused


def _unavailable(refused: _Refused) -> _Refused:
    """A data error naming one zone with ``authz``: its plan refuses a field or the dataset."""
    if refused.state is ObservationState.DENIED:
        detail = f"the zone's plan does not allow the query ({refused.detail})"
        return _Refused(ObservationState.UNAVAILABLE, detail, refused.zone_index)
    return refused


def _refusals(
    refused: list[_Refused], batch: Sequence[str], *, indexed: Callable[[_Refused], _Refused]
) -> list[tuple[_Refused, list[str]]]:
    """Which zones each error is about: the one its path names (``indexed`` says what that
    means), else the whole batch (a token without the permission says so for every zone)."""
    out: list[tuple[_Refused, list[str]]] = []
    for r in refused:
        if r.zone_index is not None and r.zone_index < len(batch):
            out.append((indexed(r), [batch[r.zone_index]]))
        elif r.state is ObservationState.DENIED:
            out.append((_Refused(r.state, _lacks(r.detail)), list(batch)))
        else:
            out.append((r, list(batch)))
    if any(r.zone_index is None for r, _ in out):
        return [p for p in out if p[0].zone_index is None][:1]
    return out


def _no_access(refused: _Refused) -> DatasetAccess:
    return DatasetAccess(state=refused.state, detail=refused.detail)


def _unobserved(refused: _Refused, since: float, until: float) -> ZoneObservation:
    return ZoneObservation(state=refused.state, detail=refused.detail, since=since, until=until)


def _zones(data: Any, key: str) -> list[tuple[str, Any]]:
    """``viewer.zones[]`` as (zoneTag, the node ``key``)."""
    viewer = data.get("viewer") if isinstance(data, dict) else None
    zones = viewer.get("zones") if isinstance(viewer, dict) else None
    if not isinstance(zones, list):
        raise malformed("POST graphql", "no viewer.zones list in the data")
    out = []
    for z in zones:
        if not isinstance(z, dict) or not isinstance(z.get("zoneTag"), str):
            raise malformed("POST graphql", f"zone without a zoneTag: {z!r:.120}")
        out.append((z["zoneTag"], z.get(key)))
    return out


def _settings(node: Any) -> DatasetAccess:
    """The dataset's settings for one zone: can it answer syncd's query, and within what."""
    found = node.get(DATASET) if isinstance(node, dict) else None
    if not isinstance(found, dict) or found.get("enabled") is not True:
        detail = f"the zone's plan does not include the dataset {DATASET}"
        return DatasetAccess(state=ObservationState.UNAVAILABLE, detail=detail)
    fields = found.get("availableFields")
    if not isinstance(fields, list):
        raise malformed("POST graphql", f"{DATASET} settings without availableFields")
    if ORIGIN not in fields:
        detail = f"the zone's plan does not allow the field {ORIGIN} of {DATASET}"
        return DatasetAccess(state=ObservationState.UNAVAILABLE, detail=detail)
    try:
        return DatasetAccess(
            state=ObservationState.OBSERVED,
            fields=(ORIGIN, *([UPPER_TIER] if UPPER_TIER in fields else [])),
            max_duration=float(found["maxDuration"]),
            not_older_than=float(found["notOlderThan"]),
            max_page_size=int(found["maxPageSize"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise malformed("POST graphql", f"{DATASET} settings: {exc!r:.80}") from None


def _fetches(rows: Any) -> tuple[OriginFetches, ...]:
    if not isinstance(rows, list):
        raise malformed("POST graphql", f"{DATASET} is not a list of groups")
    out: list[OriginFetches] = []
    for row in rows:
        dims = row.get("dimensions") if isinstance(row, dict) else None
        count = row.get("count") if isinstance(row, dict) else None
        if not isinstance(dims, dict) or not isinstance(count, int) or count < 0:
            raise malformed("POST graphql", f"group without count or dimensions: {row!r:.120}")
        address = dims.get(ORIGIN)
        if not address:
            continue  # answered from cache: not an origin fetch
        try:
            ip = parse_ip(str(address))
        except ValueError:
            raise malformed("POST graphql", f"originIP {address!r:.60} is not an IP") from None
        tier = dims.get(UPPER_TIER)
        out.append(
            OriginFetches(ip=ip, upper_tier=tier if isinstance(tier, str) else "", count=count)
        )
    return tuple(out)
