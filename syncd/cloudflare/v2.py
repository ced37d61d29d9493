"""API generation 2 (current): ``/zones/{id}/origin/cloud_regions``.

Requests and responses name the IP ``origin_ip``; results are flat; the list is paged with
``page``/``per_page`` (at most 100) and ``result_info``.
"""

from __future__ import annotations

from collections.abc import Sequence

from syncd.cloudflare import wire
from syncd.cloudflare.transport import Transport
from syncd.model import BatchResult, IPAddress, RegionMapping, Vendor, canonical

_IP = "origin_ip"
PER_PAGE = 100


class V2Client:
    generation = "v2"

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def supported_regions(self, zone_id: str) -> dict[Vendor, frozenset[str]]:
        path = f"zones/{zone_id}/origin/cloud_regions/supported_regions"
        env = self._t.request("GET", path, endpoint="v2_supported_regions")
        return wire.supported_regions(env.result, where=f"GET {path}")

    def list_mappings(self, zone_id: str) -> list[RegionMapping]:
        path = f"zones/{zone_id}/origin/cloud_regions"
        out: list[RegionMapping] = []
        page = 1
        while True:
            params = {"page": page, "per_page": PER_PAGE}
            env = self._t.request("GET", path, endpoint="v2_list", params=params)
            batch = wire.entries(env.result, ip_key=_IP, where=f"GET {path} page {page}")
            out += batch
            total_pages = env.result_info.get("total_pages")
            # Stop on the documented total, or on a short/empty page when it is absent.
            if isinstance(total_pages, int) and page >= total_pages:
                return out
            if not isinstance(total_pages, int) and len(batch) < PER_PAGE:
                return out
            page += 1

    def upsert(self, zone_id: str, items: Sequence[RegionMapping]) -> BatchResult:
        path = f"zones/{zone_id}/origin/cloud_regions/batch"
        body = [
            {"origin_ip": m.ip_text, "region": m.region, "vendor": m.vendor.value} for m in items
        ]
        env = self._t.request("PUT", path, endpoint="v2_batch_upsert", body=body)
        return wire.batch_result(env.result, ip_key=_IP, sent=items, where=f"PUT {path}")

    def delete(self, zone_id: str, ips: Sequence[IPAddress]) -> BatchResult:
        path = f"zones/{zone_id}/origin/cloud_regions/batch"
        body = [canonical(ip) for ip in ips]
        env = self._t.request("DELETE", path, endpoint="v2_batch_delete", body=body)
        return wire.batch_result(env.result, ip_key=_IP, sent=ips, where=f"DELETE {path}")
