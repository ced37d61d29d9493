"""The Cloudflare reads behind origins: dns refuse answers that do not have the schema's shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from syncd.cloudflare import origins
from syncd.cloudflare.transport import RateLimiter, RetryPolicy, Transport, build_client
from syncd.errors import TransportError
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import DEFAULT_ACCOUNT, CloudflareSimulator
from tests.conftest import TOKEN, ZONE

POOL = "p" * 32


@pytest.fixture
def transport(cf: CloudflareSimulator) -> Iterator[Transport]:
    client = build_client(cf.base_url, token=TOKEN, email=None, key=None, timeout=2.0)
    with client:
        yield Transport(client, limiter=RateLimiter(1000, 1.0), retry=RetryPolicy(retries=0))


def answer(cf: CloudflareSimulator, path: str, result: Any, **extra: Any) -> None:
    body = {"success": True, "errors": [], "messages": [], "result": result, **extra}
    cf.inject(
        Fault(
            status=200,
            body=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            path=path,
        )
    )


READS: dict[str, tuple[str, Callable[[Transport], Any]]] = {
    "records": ("/dns_records$", lambda t: origins.records(t, ZONE)),
    "zone": (f"/zones/{ZONE}$", lambda t: origins.zone_details(t, ZONE)),
    "load_balancers": ("/load_balancers$", lambda t: origins.load_balancers(t, ZONE)),
    "pool": ("/pools/", lambda t: origins.pool(t, DEFAULT_ACCOUNT, POOL)),
    "tiered": ("/tiered_caching$", lambda t: origins.tiered_caching(t, ZONE)),
    "smart": ("smart_topology_enable$", lambda t: origins.smart_topology(t, ZONE)),
}
BAD: list[tuple[str, Any, str]] = [
    ("records", {"not": "a list"}, "array of DNS records"),
    ("records", [{"type": "CNAME", "name": "www.example.com", "content": None}], "without name"),
    ("zone", {"name": "example.com"}, "account id"),
    ("zone", [], "account id"),
    ("load_balancers", {}, "array of load balancers"),
    ("load_balancers", [{"id": "x"}], "without a name"),
    ("load_balancers", [{"name": "lb", "default_pools": "p1"}], "default_pools"),
    ("load_balancers", [{"name": "lb", "region_pools": ["p1"]}], "region_pools"),
    ("load_balancers", [{"name": "lb", "fallback_pool": 7}], "fallback_pool"),
    ("pool", {"origins": {}}, "origins array"),
    ("pool", {"origins": [{"name": "no address"}]}, "without an address"),
    ("tiered", {"id": "tiered_caching", "value": True}, "'on' or 'off'"),
    ("smart", None, "'on' or 'off'"),
]


@pytest.mark.parametrize(("read", "result", "said"), BAD)
def test_a_malformed_answer_is_a_transport_error_naming_it(cf, transport, read, result, said):
    path, call = READS[read]
    answer(cf, path, result)
    with pytest.raises(TransportError, match="malformed") as raised:
        call(transport)
    assert said in str(raised.value)


def test_records_are_read_across_pages_and_only_origin_types_kept(cf, transport):
    page_one = [
        {"type": "A", "name": "x.example.com", "content": "192.0.2.9"},
        {"type": "MX", "name": "example.com", "content": "mail.example.com"},
        "not a record",
    ]
    page_two = [{"type": "CNAME", "name": "www.example.com", "content": "e.example.net"}]
    answer(cf, "/dns_records$", page_one, result_info={"page": 1, "total_pages": 2})
    answer(cf, "/dns_records$", page_two, result_info={"page": 2, "total_pages": 2})
    got = origins.records(transport, ZONE)
    assert [("x.example.com", "A"), ("www.example.com", "CNAME")] == [(r.name, r.type) for r in got]
    assert ["1", "2"] == [r.param("page") for r in cf.requests_matching("GET", "/dns_records$")]


def test_a_load_balancer_names_every_pool_once_in_failover_order(cf, transport):
    lb = {
        "name": "lb.example.com",
        "default_pools": ["a", "b"],
        "fallback_pool": "c",
        "region_pools": {"WNAM": ["b", "d"]},
        "country_pools": {"US": ["e"]},
        "pop_pools": {"LAX": ["a", "f"]},
        "enabled": False,
    }
    answer(cf, "/load_balancers$", [lb])
    (got,) = origins.load_balancers(transport, ZONE)
    assert (("a", "b", "c", "d", "e", "f"), False, False) == (
        got.pool_ids,
        got.enabled,
        got.proxied,
    )
