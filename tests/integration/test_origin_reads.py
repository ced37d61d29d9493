"""The Cloudflare reads behind origins: dns refuse answers that do not have the schema's shape."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from syncd.cloudflare import origin_reads
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
    "records": ("/dns_records$", lambda t: origin_reads.records(t, ZONE)),
    "zone": (f"/zones/{ZONE}$", lambda t: origin_reads.zone_details(t, ZONE)),
    "load_balancers": ("/load_balancers$", lambda t: origin_reads.load_balancers(t, ZONE)),
    "pool": ("/pools/", lambda t: origin_reads.pool(t, DEFAULT_ACCOUNT, POOL)),
    "tiered": ("/tiered_caching$", lambda t: origin_reads.tiered_caching(t, ZONE)),
    "smart": ("smart_topology_enable$", lambda t: origin_reads.smart_topology(t, ZONE)),
}
# A response whose envelope (the result's own shape) is wrong fails the read.
BAD: list[tuple[str, Any, str]] = [
    ("records", {"not": "a list"}, "array of DNS records"),
    ("zone", [], "not a zone object"),
    ("load_balancers", {}, "array of load balancers"),
    ("pool", [], "not a pool object"),
    ("tiered", {"id": "tiered_caching", "value": True}, "'on' or 'off'"),
    ("smart", None, "'on' or 'off'"),
]


@pytest.mark.parametrize(("read", "result", "said"), BAD)
def test_a_malformed_envelope_is_a_transport_error_naming_it(cf, transport, read, result, said):
    path, call = READS[read]
    answer(cf, path, result)
    with pytest.raises(TransportError, match="malformed") as raised:
        call(transport)
    assert said in str(raised.value)


# An item that lacks a field syncd needs (the schema makes every field optional) is kept,
# marked malformed with its id and the field: the zone goes on, its deletions wait.
ITEMS: list[tuple[str, Any, str]] = [
    ("records", [{"id": "r1", "type": "CNAME", "name": "www.example.com"}], "r1 has no content"),
    ("records", [{"id": "r2", "type": "A", "content": "192.0.2.1"}], "r2 has no name"),
    ("records", [{"id": "r3", "name": "x.example.com", "content": "x"}], "r3 has no type"),
    ("records", ["not a record"], "(without an id) has no type"),
    ("load_balancers", [{"id": "x"}], "x has no valid name"),
    ("load_balancers", [{"id": "y", "name": "lb", "default_pools": "p1"}], "default_pools"),
    ("load_balancers", [{"id": "y", "name": "lb", "region_pools": ["p1"]}], "region_pools"),
    ("load_balancers", [{"id": "y", "name": "lb", "fallback_pool": 7}], "fallback_pool"),
    ("load_balancers", [{"id": "y", "name": "lb", "rules": {}}], "no valid rules"),
    (
        "load_balancers",
        [{"id": "y", "name": "lb", "rules": [{"overrides": {"pop_pools": []}}]}],
        "no valid rules[0].overrides.pop_pools",
    ),
    (
        "load_balancers",
        [{"id": "y", "name": "lb", "pool_sets": [{"overrides": {"pools": [1]}}]}],
        "no valid pool_sets[0].overrides.pools",
    ),
]


@pytest.mark.parametrize(("read", "result", "said"), ITEMS)
def test_an_item_without_a_field_syncd_needs_is_kept_as_malformed(
    cf, transport, read, result, said
):
    path, call = READS[read]
    answer(cf, path, result)
    (item,) = call(transport)
    assert said in item.malformed


def test_a_pool_origin_without_an_address_and_a_pool_without_origins(cf, transport):
    answer(cf, "/pools/", {"name": "eu", "origins": [{"name": "o1"}, {"address": "192.0.2.1"}]})
    pool = origin_reads.pool(transport, DEFAULT_ACCOUNT, POOL)
    assert not isinstance(pool, str)
    assert [f"pool {POOL} origin o1 has no address", ""] == [o.malformed for o in pool.origins]
    answer(cf, "/pools/", {"name": "eu", "origins": {}})
    assert "no origins array" in str(origin_reads.pool(transport, DEFAULT_ACCOUNT, POOL))


def test_zone_details_without_an_account_or_a_name(cf, transport):
    answer(cf, f"/zones/{ZONE}$", {"name": "example.com"})
    assert ("example.com", "") == _details(origin_reads.zone_details(transport, ZONE))
    answer(cf, f"/zones/{ZONE}$", {"account": {"id": DEFAULT_ACCOUNT}})
    assert ("", DEFAULT_ACCOUNT) == _details(origin_reads.zone_details(transport, ZONE))


def _details(d: origin_reads.ZoneDetails) -> tuple[str, str]:
    return d.name, d.account_id


def test_records_are_read_across_pages_and_only_origin_types_kept(cf, transport):
    page_one = [
        {"type": "A", "name": "x.example.com", "content": "192.0.2.9"},
        {"type": "MX", "name": "example.com", "content": "mail.example.com"},
    ]
    page_two = [{"type": "CNAME", "name": "www.example.com", "content": "e.example.net"}]
    answer(cf, "/dns_records$", page_one, result_info={"page": 1, "total_pages": 2})
    answer(cf, "/dns_records$", page_two, result_info={"page": 2, "total_pages": 2})
    got = origin_reads.records(transport, ZONE)
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
    (got,) = origin_reads.load_balancers(transport, ZONE)
    assert (("a", "b", "c", "d", "e", "f"), False, False) == (
        got.pool_ids,
        got.enabled,
        got.proxied,
    )


def test_rules_and_pool_sets_name_pools_disabled_ones_too(cf, transport):
    lb = {
        "id": "lb1",
        "name": "lb.example.com",
        "default_pools": ["a"],
        "rules": [
            {
                "name": "eu",
                "condition": 'http.request.uri.path contains "/eu"',
                "overrides": {
                    "default_pools": ["b"],
                    "fallback_pool": "c",
                    "region_pools": {"WEU": ["d"]},
                    "country_pools": {"DE": ["e"]},
                    "pop_pools": {"FRA": ["b", "f"]},
                },
            },
            {"disabled": True, "overrides": {"fallback_pool": "g"}},
            {"name": "fixed", "fixed_response": {"status_code": 503}},
        ],
        "pool_sets": [{"name": "apac", "overrides": {"pools": ["h"], "fallback_pool": "i"}}],
    }
    answer(cf, "/load_balancers$", [lb])
    (got,) = origin_reads.load_balancers(transport, ZONE)
    assert ("", ("a",)) == (got.malformed, got.pool_ids)
    assert [
        ("rule 'eu'", ("b", "c", "d", "e", "f")),
        ("rule #2 (disabled)", ("g",)),
        ("rule 'fixed'", ()),
        ("pool set 'apac'", ("h", "i")),
    ] == [(r.label, r.pool_ids) for r in got.routes]
