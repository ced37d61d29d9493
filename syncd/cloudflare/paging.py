"""Every paged Cloudflare list, read one way: the one pager of syncd.

A list ends at the page ``result_info.total_pages`` names, at an empty page, or (when no total
is given) at a short page; a list that goes on past ``max_pages`` is a malformed answer, never an
endless loop (issue 14: empty pages with a huge ``total_pages`` made 1,000+ requests, then hung on
the rate limiter). Each caller sets ``max_pages`` from what the list can hold: mappings from the
per-zone maximum, DNS records and zones from documented orders of magnitude, with slack.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from syncd.cloudflare.transport import Transport
from syncd.cloudflare.wire import malformed


def pages(
    transport: Transport,
    path: str,
    *,
    endpoint: str,
    per_page: int,
    max_pages: int,
    what: str,
    params: dict[str, str | int] | None = None,
) -> Iterator[list[Any]]:
    """The ``result`` array of each page of ``GET path``, in order."""
    for page in range(1, max_pages + 1):
        query: dict[str, str | int] = {**(params or {}), "page": page, "per_page": per_page}
        env = transport.request("GET", path, endpoint=endpoint, params=query)
        if not isinstance(env.result, list):
            raise malformed(f"GET {path} page {page}", f"result is not an array of {what}")
        if not env.result:
            return  # an empty page ends the list, whatever total_pages claims
        yield env.result
        total_pages = env.result_info.get("total_pages")
        if isinstance(total_pages, int) and not isinstance(total_pages, bool):
            if page >= total_pages:
                return
        elif len(env.result) < per_page:
            return
    raise malformed(
        f"GET {path}",
        f"more than {max_pages} pages of {per_page} {what} (more than the list can hold)",
    )
