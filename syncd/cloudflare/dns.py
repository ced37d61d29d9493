"""A zone's origin addresses, read from its A and AAAA records (for ``origins: dns``).

Read-only; every page is read. Record contents that are not IP addresses are ignored.
"""

from __future__ import annotations

from syncd.cloudflare.transport import Transport
from syncd.cloudflare.wire import malformed
from syncd.model import IPAddress, parse_ip

PER_PAGE = 5000


def origin_addresses(
    transport: Transport, zone_id: str, *, proxied_only: bool
) -> frozenset[IPAddress]:
    """Every address an A or AAAA record of the zone points at."""
    path = f"zones/{zone_id}/dns_records"
    found: set[IPAddress] = set()
    page = 1
    while True:
        params: dict[str, str | int] = {"page": page, "per_page": PER_PAGE}
        if proxied_only:
            params["proxied"] = "true"
        env = transport.request("GET", path, endpoint="dns_records", params=params)
        if not isinstance(env.result, list):
            raise malformed(f"GET {path}", "result is not an array of records")
        for record in env.result:
            if not isinstance(record, dict) or record.get("type") not in ("A", "AAAA"):
                continue
            if not proxied_only or record.get("proxied") is True:
                try:
                    found.add(parse_ip(str(record.get("content", ""))))
                except ValueError:
                    continue
        # result_info is optional: without total_pages, a short page is the last one.
        total_pages = env.result_info.get("total_pages")
        last = page >= total_pages if isinstance(total_pages, int) else len(env.result) < PER_PAGE
        if last or not env.result:
            return frozenset(found)
        page += 1
