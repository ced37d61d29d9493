"""What Cloudflare says about a zone's origins besides its A/AAAA records, read-only.

Every DNS record that can carry an origin (A, AAAA, CNAME; every page), the zone's details (its
name and account), its load balancers and every pool they reference, and the two settings that
decide whether cloud region hints are read at all (Tiered Cache, Smart topology). Shapes are
Cloudflare's published API schema, written down in docs/simulators.md. A malformed answer raises
``TransportError``. ``read()`` and ``tiered_cache()`` are what a run calls: a 403 there becomes a
warning naming the permission the token lacks, and the run goes on without what it guards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from syncd.cloudflare.paging import pages
from syncd.cloudflare.transport import Transport
from syncd.cloudflare.wire import malformed
from syncd.errors import AuthError, CloudflareError
from syncd.model import DnsRecord, LoadBalancer, OriginSources, Pool, PoolOrigin, TieredCache

PER_PAGE = 5000
MAX_RECORD_PAGES = 200  # a million records: far past any zone's quota
_ORIGIN_TYPES = frozenset({"A", "AAAA", "CNAME"})
# Every key of a load balancer that names pools: a list, or a map of key -> list.
_POOL_LISTS = ("default_pools",)
_POOL_MAPS = ("region_pools", "country_pools", "pop_pools")


@dataclass(frozen=True, slots=True, kw_only=True)
class ZoneDetails:
    name: str
    account_id: str


def records(transport: Transport, zone_id: str) -> list[DnsRecord]:
    """Every A, AAAA and CNAME record of the zone (all pages; proxied or not)."""
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
    for item in (item for page in listed for item in page):
        if not isinstance(item, dict) or item.get("type") not in _ORIGIN_TYPES:
            continue
        name, content = item.get("name"), item.get("content")
        if not isinstance(name, str) or not isinstance(content, str):
            raise malformed(f"GET {path}", f"record without name or content: {item!r:.120}")
        found.append(
            DnsRecord(
                name=name, type=item["type"], content=content, proxied=item.get("proxied") is True
            )
        )
    return found


def zone_details(transport: Transport, zone_id: str) -> ZoneDetails:
    """``GET /zones/{zone_id}``: the zone's name and the id of the account that owns it."""
    path = f"zones/{zone_id}"
    result = transport.request("GET", path, endpoint="zone_details").result
    account = result.get("account") if isinstance(result, dict) else None
    if (
        not isinstance(result, dict)
        or not isinstance(result.get("name"), str)
        or not isinstance(account, dict)
        or not isinstance(account.get("id"), str)
    ):
        raise malformed(f"GET {path}", "zone without a name or an account id")
    return ZoneDetails(name=result["name"], account_id=account["id"])


def load_balancers(transport: Transport, zone_id: str) -> list[LoadBalancer]:
    """``GET /zones/{zone_id}/load_balancers`` (one answer, no paging in the schema)."""
    path = f"zones/{zone_id}/load_balancers"
    result = transport.request("GET", path, endpoint="load_balancers").result
    if not isinstance(result, list):
        raise malformed(f"GET {path}", "result is not an array of load balancers")
    return [_load_balancer(item, f"GET {path}") for item in result]


def _load_balancer(item: Any, where: str) -> LoadBalancer:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise malformed(where, f"load balancer without a name: {item!r:.120}")
    pools: list[str] = []
    for key in _POOL_LISTS:
        pools += _ids(item.get(key), where, key)
    fallback = item.get("fallback_pool")
    if fallback is not None:
        pools += _ids([fallback], where, "fallback_pool")
    for key in _POOL_MAPS:
        value = item.get(key) or {}
        if not isinstance(value, dict):
            raise malformed(where, f"{key} is not an object of pool id lists")
        for ids in value.values():
            pools += _ids(ids, where, key)
    return LoadBalancer(
        id=str(item.get("id", "")),
        name=item["name"],
        enabled=item.get("enabled", True) is not False,
        proxied=item.get("proxied") is True,
        pool_ids=tuple(dict.fromkeys(pools)),
    )


def _ids(value: Any, where: str, key: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise malformed(where, f"{key} is not a list of pool ids")
    return list(value)


def pool(transport: Transport, account_id: str, pool_id: str) -> Pool:
    """``GET /accounts/{account_id}/load_balancers/pools/{pool_id}``."""
    path = f"accounts/{account_id}/load_balancers/pools/{pool_id}"
    result = transport.request("GET", path, endpoint="load_balancer_pool").result
    where = f"GET {path}"
    if not isinstance(result, dict) or not isinstance(result.get("origins", []), list):
        raise malformed(where, "pool without an origins array")
    origins = []
    for o in result.get("origins") or []:
        if not isinstance(o, dict) or not isinstance(o.get("address"), str):
            raise malformed(where, f"pool origin without an address: {o!r:.120}")
        origins.append(
            PoolOrigin(
                name=str(o.get("name") or o["address"]),
                address=o["address"],
                enabled=o.get("enabled", True) is not False,
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


def read(transport: Transport, zone_id: str, *, name: str, label: str) -> OriginSources:
    """Everything about the zone's origins: records, details, load balancers and their pools.

    ``name`` is the configured zone name (used when the details cannot be read), ``label`` how
    messages name the zone. A 403 on the details, the load balancers or a pool is a warning
    naming the permission; any other error raises (the zone fails).
    """
    warnings: list[str] = []
    found = records(transport, zone_id)
    account = ""
    try:
        details = zone_details(transport, zone_id)
        name, account = details.name, details.account_id
    except AuthError as exc:
        if exc.status != 403:
            raise
        warnings.append(_missing(label, "Zone: Read", "the zone's details", exc.status))
    balancers = None
    try:
        balancers = tuple(load_balancers(transport, zone_id))
    except AuthError as exc:
        if exc.status != 403:
            raise
        warnings.append(_missing(label, "Load Balancing: Read", "its load balancers", exc.status))
    pools: dict[str, Pool | str] = {}
    unreadable: set[str] = set()
    for pool_id in dict.fromkeys(p for lb in balancers or () for p in lb.pool_ids):
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
    if unreadable and account:
        what = f"the account's pools ({len(unreadable)} of them)"
        warnings.append(_missing(label, "Load Balancing: Read", what, 403))
    return OriginSources(
        zone_name=name,
        records=tuple(found),
        load_balancers=balancers,
        pools=pools,
        unreadable_pools=frozenset(unreadable),
        warnings=tuple(warnings),
    )


def _missing(label: str, permission: str, what: str, status: int | None) -> str:
    return (
        f"zone {label}: the token lacks {permission} (HTTP {status}), so {what} "
        "could not be read; deletions in this zone wait until it can"
    )


def tiered_cache(transport: Transport, zone_id: str, *, label: str) -> TieredCache:
    """Tiered Cache and Smart topology, read once per run; syncd never changes them.

    An informational check: any error is a warning on the result, never a failed zone.
    """
    try:
        return TieredCache(
            tiered=tiered_caching(transport, zone_id), smart=smart_topology(transport, zone_id)
        )
    except AuthError as exc:
        why = f"the token lacks Zone Settings: Read (HTTP {exc.status})"
    except CloudflareError as exc:
        why = str(exc)
    return TieredCache(warning=f"zone {label}: Smart Tiered Cache not checked: {why}")
