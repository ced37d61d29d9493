"""Zone discovery: which zones a run keeps in step, from ``GET /zones`` and the configuration.

Read-only. Every page of the token's active zones is listed (once per configured account, or
once for all), filtered by the ``include``/``exclude`` globs, and each match becomes a zone
with the discovery ``defaults``; an explicitly configured zone replaces the defaults for itself.
A token that may not list zones is an ``AuthError`` naming the permission (Zone Read).
"""

from __future__ import annotations

import fnmatch
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import ValidationError

from syncd.cloudflare.paging import pages
from syncd.cloudflare.transport import Transport
from syncd.cloudflare.wire import malformed
from syncd.config import CloudflareConfig, ZoneConfig, ZoneDiscoveryConfig
from syncd.errors import AuthError, CloudflareError

PER_PAGE = 50  # the most GET /zones returns per page
# 1,700 zones per account are reported in the field; 200 pages of 50 is ten thousand zones.
MAX_PAGES = 200


@dataclass(frozen=True, slots=True)
class ListedZone:
    """A zone as ``GET /zones`` lists it."""

    id: str
    name: str
    account_id: str


@dataclass(frozen=True, slots=True)
class Resolution:
    """The run's zones: explicit ones first, then the discovered ones by name."""

    zones: tuple[ZoneConfig, ...]
    discovered: int  # how many of ``zones`` came from discovery (not explicit)
    zones_listed: int  # active zones the token listed, before the globs
    # The account of each listed zone (by id): reading a zone's details is then not needed.
    accounts: Mapping[str, str] = field(default_factory=dict)


def list_active(transport: Transport, account_ids: tuple[str, ...]) -> list[ListedZone]:
    """Every active zone the token can read, in the given accounts (all accounts when empty)."""
    found: dict[str, ListedZone] = {}
    for account in account_ids or (None,):
        for zone in _pages(transport, account):
            found.setdefault(zone.id, zone)
    return list(found.values())


def _pages(transport: Transport, account: str | None) -> list[ListedZone]:
    params: dict[str, str | int] = {"status": "active"}
    if account is not None:
        params["account.id"] = account
    listed = pages(
        transport,
        "zones",
        endpoint="zones",
        per_page=PER_PAGE,
        max_pages=MAX_PAGES,
        what="zones",
        params=params,
    )
    out: list[ListedZone] = []
    try:
        for raw in (raw for page in listed for raw in page):
            zone = _zone(raw)
            if zone is None:
                raise malformed("GET zones", f"a zone without a string id and name: {raw!r:.80}")
            out.append(zone)
    except AuthError as exc:
        raise AuthError(
            f"zone discovery: the token cannot list zones; it needs the Zone Read "
            f"permission (Zone > Zone > Read){_in(account)} ({exc})",
            status=exc.status,
            code=exc.code,
        ) from exc
    except CloudflareError as exc:
        # Cloudflare refuses to list zones across too many accounts (500 today) without the
        # account.id filter: a 400 to this plain listing can only be that (docs/simulators.md).
        if account is not None or exc.status != 400:
            raise
        raise CloudflareError(
            "zone discovery: Cloudflare refused to list the zones of every account the token "
            "can reach (too many accounts for one listing); set "
            f"cloudflare.zone_discovery.account_ids to the accounts to list ({exc})",
            status=exc.status,
            code=exc.code,
        ) from exc
    return out


def listed_account(transport: Transport, zone_id: str, name: str) -> str:
    """The account of ``zone_id`` as the token's zone listing names it (``GET /zones?name=``):
    "" when the listing does not name one. A token without Zone Read raises ``AuthError``."""
    # A zone name is unique among the token's zones: one page holds the answer.
    result = transport.request("GET", "zones", endpoint="zones", params={"name": name}).result
    if not isinstance(result, list):
        raise malformed("GET zones", "result is not an array of zones")
    for raw in result:
        zone = _zone(raw)
        if zone is not None and zone.id == zone_id:
            return zone.account_id
    return ""


def _in(account: str | None) -> str:
    return f" in account {account}" if account else ""


def _zone(raw: object) -> ListedZone | None:
    if not isinstance(raw, dict):
        return None
    zone_id, name, account = raw.get("id"), raw.get("name"), raw.get("account")
    if not isinstance(zone_id, str) or not isinstance(name, str):
        return None
    account_id = account.get("id") if isinstance(account, dict) else None
    return ListedZone(zone_id, name.lower(), account_id if isinstance(account_id, str) else "")


def matches(discovery: ZoneDiscoveryConfig, name: str) -> bool:
    """Whether a zone name is kept: any include glob matches and no exclude glob does."""
    name = name.lower()
    return any(fnmatch.fnmatchcase(name, p) for p in discovery.include) and not any(
        fnmatch.fnmatchcase(name, p) for p in discovery.exclude
    )


def resolve(cf: CloudflareConfig, listed: list[ListedZone]) -> Resolution:
    """The explicit zones, then each listed zone that matches with the discovery defaults."""
    explicit = {z.id for z in cf.zones}
    discovery = cf.zone_discovery
    if discovery is None:
        return Resolution(cf.zones, 0, 0)
    defaults = discovery.defaults.model_dump()
    found: list[ZoneConfig] = []
    for z in sorted(listed, key=lambda z: (z.name, z.id)):
        if z.id in explicit or not matches(discovery, z.name):
            continue
        try:
            found.append(ZoneConfig(id=z.id, name=z.name, **defaults))
        except ValidationError:
            raise malformed("GET zones", f"not a zone id: {z.id!r:.80}") from None
    accounts = {z.id: z.account_id for z in listed if z.account_id}
    return Resolution((*cf.zones, *found), len(found), len(listed), accounts)


def discover(transport: Transport, cf: CloudflareConfig) -> Resolution:
    """List (when discovery is configured) and resolve the run's zones."""
    if cf.zone_discovery is None:
        return Resolution(cf.zones, 0, 0)
    return resolve(cf, list_active(transport, cf.zone_discovery.account_ids))
