"""The JSON shapes both API generations share, turned into syncd records.

v1 and v2 differ in paths, the envelope around results and the IP key (``origin-ip`` versus
``origin_ip``); entries, batch item results and supported regions are otherwise alike. Anything
that does not have the documented shape raises ``TransportError`` naming what was wrong.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncd.errors import TransportError
from syncd.model import (
    BatchResult,
    IPAddress,
    ItemFailure,
    Listing,
    RegionMapping,
    SupportedRegions,
    UnknownMapping,
    Vendor,
    parse_ip,
)


def malformed(where: str, what: str) -> TransportError:
    return TransportError(f"{where}: malformed response: {what}")


def entry(item: Any, *, ip_key: str, where: str) -> RegionMapping | UnknownMapping:
    """One stored mapping (``{<ip_key>, vendor, region}``); a vendor syncd does not know is an
    ``UnknownMapping`` (Cloudflare may add vendors), not a malformed answer."""
    if not isinstance(item, dict):
        raise malformed(where, f"mapping entry is not an object: {item!r:.80}")
    try:
        ip = parse_ip(str(item[ip_key]))
        vendor, region = item["vendor"], item["region"]
    except (KeyError, ValueError) as exc:
        raise malformed(where, f"bad mapping entry {item!r:.120}: {exc}") from None
    if not isinstance(region, str) or not isinstance(vendor, str) or not vendor:
        raise malformed(where, f"vendor or region is not a string in {item!r:.120}")
    if vendor not in Vendor.__members__.values():
        return UnknownMapping(ip=ip, vendor=vendor[:40], region=region[:80])
    return RegionMapping(ip=ip, vendor=Vendor(vendor), region=region)


def entries(items: Any, *, ip_key: str, where: str) -> Listing:
    # Only [] means "no mappings": a null would make the registry forget what syncd owns.
    if not isinstance(items, list):
        raise malformed(where, "mapping list is not an array")
    found = [entry(i, ip_key=ip_key, where=where) for i in items]
    return Listing(
        mappings=tuple(m for m in found if isinstance(m, RegionMapping)),
        unknown=tuple(m for m in found if isinstance(m, UnknownMapping)),
    )


def batch_result(
    value: Any, *, ip_key: str, sent: Sequence[RegionMapping] | Sequence[IPAddress], where: str
) -> BatchResult:
    """Per-item outcome; an item Cloudflare did not mention at all counts as failed."""
    if not isinstance(value, dict):
        raise malformed(where, "batch result is not an object")
    by_ip = {_ip_of(s): s for s in sent}
    succeeded: list[IPAddress] = []
    failed: list[ItemFailure] = []
    for item in _items(value, "succeeded", where):
        ip = _parse_item_ip(item, ip_key, where)
        if ip in by_ip:
            succeeded.append(ip)
    for item in _items(value, "failed", where):
        ip = _parse_item_ip(item, ip_key, where)
        if ip in by_ip and ip not in succeeded:
            error = str(item.get("error") or "no error given")
            failed.append(ItemFailure.of(by_ip.pop(ip), error))
    acknowledged = set(succeeded)
    failed += [
        ItemFailure.of(s, "not in Cloudflare's succeeded or failed list")
        for ip, s in by_ip.items()
        if ip not in acknowledged
    ]
    return BatchResult(succeeded=tuple(succeeded), failed=tuple(failed))


def _ip_of(sent: RegionMapping | IPAddress) -> IPAddress:
    return sent.ip if isinstance(sent, RegionMapping) else sent


def _items(value: dict[str, Any], key: str, where: str) -> list[dict[str, Any]]:
    items = value.get(key) or []
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise malformed(where, f"{key} is not an array of objects")
    return items


def _parse_item_ip(item: dict[str, Any], ip_key: str, where: str) -> IPAddress:
    try:
        return parse_ip(str(item[ip_key]))
    except (KeyError, ValueError):
        raise malformed(where, f"batch item without a valid {ip_key!r}: {item!r:.120}") from None


def supported_regions(result: Any, *, where: str) -> dict[Vendor, frozenset[str]]:
    """``{vendors: {aws: [{name, upper_tier_colos}], ...}}`` as names per known vendor."""
    vendors = result.get("vendors") if isinstance(result, dict) else None
    if not isinstance(vendors, dict):
        raise malformed(where, "supported_regions has no 'vendors' object")
    out: dict[Vendor, frozenset[str]] = {}
    for name, regions in vendors.items():
        if name not in Vendor.__members__.values() or not isinstance(regions, list):
            continue  # a vendor syncd does not know yet is not an error
        out[Vendor(name)] = frozenset(
            r["name"] for r in regions if isinstance(r, dict) and isinstance(r.get("name"), str)
        )
    return out


def supported(result: Any, *, where: str) -> SupportedRegions:
    """The regions per known vendor and, for each region, the upper tiers Cloudflare lists
    (``upper_tier_colos``; a region without the list has none)."""
    regions = supported_regions(result, where=where)
    tiers: dict[tuple[Vendor, str], tuple[str, ...]] = {}
    for vendor in regions:
        for r in result["vendors"][vendor.value]:
            colos = r.get("upper_tier_colos") if isinstance(r, dict) else None
            if isinstance(colos, list) and isinstance(r.get("name"), str):
                tiers[(vendor, r["name"])] = tuple(c for c in colos if isinstance(c, str))
    return SupportedRegions(regions, tiers)
