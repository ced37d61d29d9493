"""API generation 1, ``/zones/{id}/cache/origin_cloud_regions`` (deprecated; EOL 2026-10-01).

Requests name the IP ``ip``; responses call it ``origin-ip`` and wrap results in the zone-setting
envelope ``{id, editable, value, modified_on}``. The list is one unpaged response.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from syncd.cloudflare import wire
from syncd.cloudflare.transport import Transport
from syncd.model import (
    BatchResult,
    IPAddress,
    Listing,
    RegionMapping,
    SupportedRegions,
    canonical,
)

_IP = "origin-ip"


class V1Client:
    generation = "v1"

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def supported_regions(self, zone_id: str) -> SupportedRegions:
        path = f"zones/{zone_id}/cache/origin_cloud_regions/supported_regions"
        env = self._t.request("GET", path, endpoint="v1_supported_regions")
        return wire.supported(env.result, where=f"GET {path}")

    def list_mappings(self, zone_id: str) -> Listing:
        path = f"zones/{zone_id}/cache/origin_cloud_regions"
        env = self._t.request("GET", path, endpoint="v1_list")
        return wire.entries(_value(env.result, path), ip_key=_IP, where=f"GET {path}")

    def upsert(self, zone_id: str, items: Sequence[RegionMapping]) -> BatchResult:
        path = f"zones/{zone_id}/cache/origin_cloud_regions/batch"
        body = [{"ip": m.ip_text, "region": m.region, "vendor": m.vendor.value} for m in items]
        env = self._t.request("PATCH", path, endpoint="v1_batch_upsert", body=body)
        where = f"PATCH {path}"
        return wire.batch_result(_value(env.result, path), ip_key=_IP, sent=items, where=where)

    def delete(self, zone_id: str, ips: Sequence[IPAddress]) -> BatchResult:
        path = f"zones/{zone_id}/cache/origin_cloud_regions/batch"
        body = [canonical(ip) for ip in ips]
        env = self._t.request("DELETE", path, endpoint="v1_batch_delete", body=body)
        where = f"DELETE {path}"
        return wire.batch_result(_value(env.result, path), ip_key=_IP, sent=ips, where=where)


def _value(result: Any, path: str) -> Any:
    """The zone-setting envelope's ``value``."""
    if not isinstance(result, dict) or "value" not in result:
        raise wire.malformed(path, "result is not the zone-setting envelope with a 'value'")
    return result["value"]
