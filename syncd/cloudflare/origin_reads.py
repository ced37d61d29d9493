"""What Cloudflare says about a zone's origins besides its A/AAAA records, read-only.

Every DNS record that can carry an origin (A, AAAA, CNAME; every page), the zone's details (its
name and account), its load balancers and every pool they reference (at the top level and in
their rules and pool sets), and the two settings that decide whether cloud region hints are read
at all (Tiered Cache, Smart topology). Shapes are Cloudflare's published API schema, written
down in docs/simulators.md. A malformed envelope raises ``TransportError``; an item of a list
that lacks a field syncd needs (the schema makes every field optional) is kept, ``malformed``,
naming its id and the field: ``origins.trace`` makes it a skip that holds the zone's
deletions. ``records()`` is what a run reads for every ``origins: dns`` zone; ``read()`` and
``tiered_cache()`` only when the zone's cached facts are due (``zone.py``): a 403 there becomes
a warning naming the permission the token lacks, and the run goes on without it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from syncd.cloudflare import zones
from syncd.cloudflare.paging import pages
from syncd.cloudflare.transport import Transport
from syncd.cloudflare.wire import malformed
from syncd.errors import AuthError, CloudflareError
from syncd.model import (
    DnsRecord,
    LoadBalancer,
    OriginSources,
    Pool,
    PoolOrigin,
    PoolRoute,
    RouteKind,
    TieredCache,
)

PER_PAGE = 5000
MAX_RECORD_PAGES = 200  # a million records: far past any zone's quota
_ORIGIN_TYPES = frozenset({"A", "AAAA", "CNAME"})
# Every key that names pools, on a load balancer and in its rules' and pool sets' overrides: a
# list, a single id, or a map of key -> list. (``pool_weights`` only weighs pools listed here.)
_POOL_LISTS = ("default_pools", "pools")
_POOL_ONE = ("fallback_pool",)
_POOL_MAPS = ("region_pools", "country_pools", "pop_pools")
_ROUTES = (("rules", RouteKind.RULE), ("pool_sets", RouteKind.POOL_SET))


class _Missing(Exception):
    """An item lacks a field syncd needs (or has it in the wrong shape): ``field`` names it."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneDetails:
    name: str
    account_id: str  # "" when Cloudflare did not say


def records(transport: Transport, zone_id: str) -> list[DnsRecord]:
    """Every A, AAAA and CNAME record of the zone (all pages; proxied or not).

    A record without a type, name or content (the schema makes each optional) is kept as
    ``malformed``, never dropped: it may be an origin syncd cannot rule out.
    """
    path = f"zones/{zone_id}/dns_records"
    found: list[DnsRecord] = []
    listed = pages(
        transport,
        path,
        endpoint="dns_records",
        per_page=PER_PAGE,
        max_pages=MAX_RECORD_PAGES,
        what="DNS records",
    )
    for raw in (raw for page in listed for raw in page):
        item = raw if isinstance(raw, dict) else {}  # not an object: a record without fields
        fields = {k: _text(item.get(k)) for k in ("type", "name", "content")}
        kind, name, content = fields.values()
        if kind and kind not in _ORIGIN_TYPES:
            continue
        missing = next((k for k, v in fields.items() if not v), "")
        if missing:
            record_id = _id(item)
            found.append(
                DnsRecord(
                    name=name or record_id,
                    type=kind or "record",
                    content="",
                    proxied=item.get("proxied") is True,
                    malformed=f"record {record_id} has no {missing}",
                )
            )
            continue
        found.append(
            DnsRecord(name=name, type=kind, content=content, proxied=item.get("proxied") is True)
        )
    return found


def _text(value: Any) -> str:
    """``value`` when it is a string, else "" (a field missing or of the wrong type)."""
    return value if isinstance(value, str) else ""


def _id(item: dict[str, Any]) -> str:
    return _text(item.get("id"))[:64] or "(without an id)"


def zone_details(transport: Transport, zone_id: str) -> ZoneDetails:
    """``GET /zones/{zone_id}``: the zone's name and the id of the account that owns it
    (either may be "": the schema makes them optional)."""
    path = f"zones/{zone_id}"
    result = transport.request("GET", path, endpoint="zone_details").result
    if not isinstance(result, dict):
        raise malformed(f"GET {path}", "result is not a zone object")
    account = result.get("account")
    account_id = account.get("id") if isinstance(account, dict) else None
    return ZoneDetails(name=_text(result.get("name")), account_id=_text(account_id))


def load_balancers(transport: Transport, zone_id: str) -> list[LoadBalancer]:
    """``GET /zones/{zone_id}/load_balancers`` (one answer, no paging in the schema)."""
    path = f"zones/{zone_id}/load_balancers"
    result = transport.request("GET", path, endpoint="load_balancers").result
    if not isinstance(result, list):
        raise malformed(f"GET {path}", "result is not an array of load balancers")
    return [_load_balancer(item if isinstance(item, dict) else {}) for item in result]


def _load_balancer(item: dict[str, Any]) -> LoadBalancer:
    """One load balancer with every pool it names; a missing name or a pool key of the wrong
    shape makes it ``malformed`` (naming the field), with whatever pools could be read."""
    lb_id = _id(item)
    name = _text(item.get("name"))
    problem = "" if name else "name"
    pools: list[str] = []
    routes: list[PoolRoute] = []
    try:
        pools = _pool_ids(item, "")
        for key, kind in _ROUTES:
            routes += _routes(item.get(key), key, kind)
    except _Missing as exc:
        problem = problem or exc.field
    return LoadBalancer(
        id=lb_id,
        name=name,
        enabled=item.get("enabled", True) is not False,
        proxied=item.get("proxied") is True,
        pool_ids=tuple(dict.fromkeys(pools)),
        routes=tuple(routes),
        malformed=f"load balancer {lb_id} has no valid {problem}" if problem else "",
    )


def _routes(value: Any, key: str, kind: RouteKind) -> list[PoolRoute]:
    """Each rule (or pool set) with the pools its ``overrides`` name, disabled ones too."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Missing(key)
    out = []
    for n, route in enumerate(value):
        where = f"{key}[{n}]"
        if not isinstance(route, dict):
            raise _Missing(where)
        overrides = route.get("overrides")
        if overrides is not None and not isinstance(overrides, dict):
            raise _Missing(f"{where}.overrides")
        out.append(
            PoolRoute(
                kind=kind,
                name=_text(route.get("name"))[:80],
                position=n + 1,
                enabled=route.get("disabled") is not True,
                pool_ids=tuple(dict.fromkeys(_pool_ids(overrides or {}, f"{where}.overrides."))),
            )
        )
    return out


def _pool_ids(holder: dict[str, Any], prefix: str) -> list[str]:
    """The pool ids under every pool key of ``holder``, in order; ``prefix`` names its place."""
    pools: list[str] = []
    for key in _POOL_LISTS:
        pools += _ids(holder.get(key), prefix + key)
    for key in _POOL_ONE:
        if holder.get(key) is not None:
            pools += _ids([holder[key]], prefix + key)
    for key in _POOL_MAPS:
        value = holder.get(key, {})
        if value is None:
            continue
        if not isinstance(value, dict):
            raise _Missing(prefix + key)
        for ids in value.values():
            pools += _ids(ids, prefix + key)
    return pools


def _ids(value: Any, field: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(_text(v) for v in value):
        raise _Missing(field)
    return list(value)


def pool(transport: Transport, account_id: str, pool_id: str) -> Pool | str:
    """``GET /accounts/{account_id}/load_balancers/pools/{pool_id}``; a pool without an
    ``origins`` array is why it could not be read (a string); an origin without an address is
    kept as ``malformed``."""
    path = f"accounts/{account_id}/load_balancers/pools/{pool_id}"
    result = transport.request("GET", path, endpoint="load_balancer_pool").result
    if not isinstance(result, dict):
        raise malformed(f"GET {path}", "result is not a pool object")
    raw = result.get("origins")
    if not isinstance(raw, list):
        return f"pool {pool_id} has no origins array (malformed)"
    origins = []
    for n, o in enumerate(raw):
        item = o if isinstance(o, dict) else {}
        name, address = _text(item.get("name")), _text(item.get("address"))
        label = name or f"origin-{n}"
        if not address:
            why = f"pool {pool_id} origin {label} has no address"
            origins.append(PoolOrigin(name=label, address="", malformed=why))
            continue
        origins.append(
            PoolOrigin(
                name=name or address,
                address=address,
                enabled=item.get("enabled", True) is not False,
            )
        )
    return Pool(
        id=pool_id,
        name=str(result.get("name") or pool_id),
        enabled=result.get("enabled", True) is not False,
        origins=tuple(origins),
    )


def tiered_caching(transport: Transport, zone_id: str) -> bool:
    """``GET /zones/{zone_id}/argo/tiered_caching``: Tiered Cache on?"""
    return _on_off(transport, f"zones/{zone_id}/argo/tiered_caching", "tiered_caching")


def smart_topology(transport: Transport, zone_id: str) -> bool:
    """``GET /zones/{zone_id}/cache/tiered_cache_smart_topology_enable``: Smart topology on?"""
    path = f"zones/{zone_id}/cache/tiered_cache_smart_topology_enable"
    return _on_off(transport, path, "smart_tiered_cache")


def _on_off(transport: Transport, path: str, endpoint: str) -> bool:
    """A zone setting envelope ``{id, value: "on"|"off", editable, modified_on}``."""
    result = transport.request("GET", path, endpoint=endpoint).result
    value = result.get("value") if isinstance(result, dict) else None
    if value not in ("on", "off"):
        raise malformed(f"GET {path}", f"setting value is not 'on' or 'off': {value!r:.40}")
    return bool(value == "on")


def read(
    transport: Transport, zone_id: str, *, name: str, label: str, account: str = ""
) -> OriginSources:
    """What the zone's origins are made of besides its records: details, load balancers, pools.

    ``name`` is the configured zone name (used when the details cannot be read), ``label`` how
    messages name the zone, ``account`` its account when ``GET /zones`` said (then its details
    are not read: they would say only that and the name). A 403 on the details, the load
    balancers or a pool is a warning naming the permission; any other error raises (the zone
    fails). ``records`` is left empty: they are read every run (``records``), these only when
    the zone is verified.
    """
    warnings: list[str] = []
    if not account:
        name, account = _owner(transport, zone_id, name, label, warnings)
    balancers = None
    try:
        balancers = tuple(load_balancers(transport, zone_id))
    except AuthError as exc:
        if exc.status != 403:
            raise
        warnings.append(_missing(label, "Load Balancing: Read", "its load balancers", exc.status))
    ids = dict.fromkeys(
        p
        for lb in balancers or ()
        for p in (*lb.pool_ids, *(p for r in lb.routes for p in r.pool_ids))
    )
    pools, unreadable = _pools(transport, account, ids)
    if unreadable and account:
        what = f"the account's pools ({len(unreadable)} of them)"
        warnings.append(_missing(label, "Load Balancing: Read", what, 403))
    return OriginSources(
        zone_name=name,
        load_balancers=balancers,
        pools=pools,
        unreadable_pools=frozenset(unreadable),
        warnings=tuple(warnings),
    )


def _owner(
    transport: Transport, zone_id: str, name: str, label: str, warnings: list[str]
) -> tuple[str, str]:
    """The zone's name and account from its details; when they name no account, from the
    token's zone listing (``GET /zones?name=``). What could not be learnt is a warning."""
    try:
        details = zone_details(transport, zone_id)
    except AuthError as exc:
        if exc.status != 403:
            raise
        warnings.append(_missing(label, "Zone: Read", "the zone's details", exc.status))
        return name, ""
    name = details.name or name
    if details.account_id:
        return name, details.account_id
    try:
        account = zones.listed_account(transport, zone_id, name)
    except AuthError as exc:
        what = "the zone's account (GET /zones/{id} has no account.id), and so its pools,"
        warnings.append(_missing(label, "Zone: Read", what, exc.status))
        return name, ""
    if not account:
        warnings.append(
            f"zone {label}: neither GET /zones/{zone_id} nor GET /zones?name={name} names the "
            "zone's account (field account.id), so its load balancers' pools could not be "
            "read; deletions in this zone wait until they can"
        )
    return name, account


def _pools(
    transport: Transport, account: str, ids: Iterable[str]
) -> tuple[dict[str, Pool | str], set[str]]:
    """Each pool by id (or why it is not there), and the pools the token may not read."""
    pools: dict[str, Pool | str] = {}
    unreadable: set[str] = set()
    for pool_id in ids:
        if not account:
            unreadable.add(pool_id)  # the zone's details said which account: a warning above
            continue
        try:
            pools[pool_id] = pool(transport, account, pool_id)
        except CloudflareError as exc:
            if exc.status == 404:
                pools[pool_id] = "no such pool (HTTP 404)"
            elif exc.status == 403:
                unreadable.add(pool_id)
            else:
                raise
    return pools, unreadable


def _missing(label: str, permission: str, what: str, status: int | None) -> str:
    return (
        f"zone {label}: the token lacks {permission} (HTTP {status}), so {what} "
        "could not be read; deletions in this zone wait until it can"
    )


def tiered_cache(transport: Transport, zone_id: str, *, label: str) -> TieredCache:
    """Tiered Cache and Smart topology; syncd never changes them.

    An informational check: any error is a warning on the result, never a failed zone; one
    that is not about permissions is ``transient`` (read again next run, not cached).
    """
    try:
        return TieredCache(
            tiered=tiered_caching(transport, zone_id), smart=smart_topology(transport, zone_id)
        )
    except AuthError as exc:
        why = f"the token lacks Zone Settings: Read (HTTP {exc.status})"
    except CloudflareError as exc:
        warning = f"zone {label}: Smart Tiered Cache not checked: {exc}"
        return TieredCache(warning=warning, transient=True)
    return TieredCache(warning=f"zone {label}: Smart Tiered Cache not checked: {why}")
