"""The narrow protocol the pipeline uses to reach Cloudflare, and the choice of API generation.

Nothing above ``cloudflare/`` knows v1 from v2. ``auto`` uses v2 and falls back to v1 for a zone
where Cloudflare answers that the v2 route does not exist (codes 7000/7003). Per-item outcomes
come back as ``BatchResult`` values; only a failure of a whole request raises.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from typing import Literal, Protocol, TypeVar

import structlog

from syncd.cloudflare.transport import Transport
from syncd.cloudflare.v1 import V1Client
from syncd.cloudflare.v2 import V2Client
from syncd.errors import RouteMissing
from syncd.model import BatchResult, IPAddress, Mapping, Vendor

log = structlog.stdlib.get_logger(__name__)
_R = TypeVar("_R")


class CloudflareAPI(Protocol):
    """The four calls syncd makes on origin cloud regions."""

    def supported_regions(self, zone_id: str) -> dict[Vendor, frozenset[str]]: ...
    def list_mappings(self, zone_id: str) -> list[Mapping]: ...
    def upsert(self, zone_id: str, items: Sequence[Mapping]) -> BatchResult: ...
    def delete(self, zone_id: str, ips: Sequence[IPAddress]) -> BatchResult: ...


class AutoClient:
    """v2 first; a zone whose v2 route is missing is served by v1 from then on."""

    def __init__(self, transport: Transport) -> None:
        self._v2 = V2Client(transport)
        self._v1 = V1Client(transport)
        self._fallback: set[str] = set()
        self._lock = threading.Lock()

    def generation(self, zone_id: str) -> str:
        with self._lock:
            return "v1" if zone_id in self._fallback else "v2"

    def _call(self, zone_id: str, op: Callable[[CloudflareAPI], _R]) -> _R:
        if self.generation(zone_id) == "v1":
            return op(self._v1)
        try:
            return op(self._v2)
        except RouteMissing as exc:
            with self._lock:
                self._fallback.add(zone_id)
            log.warning("api_fallback", zone=zone_id, using="v1", cause=exc.code)
            return op(self._v1)

    def supported_regions(self, zone_id: str) -> dict[Vendor, frozenset[str]]:
        return self._call(zone_id, lambda api: api.supported_regions(zone_id))

    def list_mappings(self, zone_id: str) -> list[Mapping]:
        return self._call(zone_id, lambda api: api.list_mappings(zone_id))

    def upsert(self, zone_id: str, items: Sequence[Mapping]) -> BatchResult:
        return self._call(zone_id, lambda api: api.upsert(zone_id, items))

    def delete(self, zone_id: str, ips: Sequence[IPAddress]) -> BatchResult:
        return self._call(zone_id, lambda api: api.delete(zone_id, ips))


def open_api(mode: Literal["auto", "v1", "v2"], transport: Transport) -> CloudflareAPI:
    """The client for ``cloudflare.api``."""
    if mode == "v1":
        return V1Client(transport)
    if mode == "v2":
        return V2Client(transport)
    return AutoClient(transport)


def generation_of(api: CloudflareAPI, zone_id: str) -> str:
    """Which generation serves ``zone_id`` (for logs and the report)."""
    if isinstance(api, AutoClient):
        return api.generation(zone_id)
    return api.generation if isinstance(api, V1Client | V2Client) else ""
