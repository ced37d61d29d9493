"""API generation 2 (current): ``/zones/{id}/origin/cloud_regions``.

Requests and responses name the IP ``origin_ip``; results are flat; the list is paged with
``page``/``per_page`` (at most 100) and ``result_info``.
"""

from __future__ import annotations

from collections.abc import Sequence

from syncd.cloudflare import wire
from syncd.cloudflare.paging import pages
from syncd.cloudflare.transport import Transport
from syncd.model import (
    BatchResult,
    IPAddress,
    Listing,
    RegionMapping,
    SupportedRegions,
    canonical,
)

_IP = "origin_ip"
PER_PAGE = 100
# Cloudflare holds at most 3,500 mappings per zone: 35 pages of 100, and slack for a list that
# changes while it is read.
MAX_PAGES = -(-3500 // PER_PAGE) + 5


class V2Client:
    generation = "v2"

    def __init__(self, transport: Transport) -> None:
        self._t = transport

    def supported_regions(self, zone_id: str) -> SupportedRegions:
        path = f"zones/{zone_id}/origin/cloud_regions/supported_regions"
        env = self._t.request("GET", path, endpoint="v2_supported_regions")
        return wire.supported(env.result, where=f"GET {path}")

    def list_mappings(self, zone_id: str) -> Listing:
        path = f"zones/{zone_id}/origin/cloud_regions"
        out: list[Listing] = []
        listed = pages(
            self._t,
            path,
            endpoint="v2_list",
            per_page=PER_PAGE,
            max_pages=MAX_PAGES,
            what="mappings",
        )
        for number, items in enumerate(listed, 1):
            out.append(wire.entries(items, ip_key=_IP, where=f"GET {path} page {number}"))
        return Listing(
            mappings=tuple(m for page in out for m in page.mappings),
            unknown=tuple(m for page in out for m in page.unknown),
        )

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
