"""Cloudflare's official SDK as the oracle of the Cloudflare simulator (issue 23).

The SDK (``cloudflare`` on PyPI) is generated from Cloudflare's published OpenAPI schema; with
``_strict_response_validation`` it refuses any answer that does not match the schema. Two
checks, for every endpoint syncd uses:

- the simulator's answers validate against the SDK's models (a simulator that drifts from the
  schema would let syncd drift with it);
- syncd's request (method, path, query, body) is the request the SDK sends for the same call,
  both captured at the simulator; every deliberate difference is listed in docs/simulators.md.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cloudflare import APIStatusError, BadRequestError, Cloudflare
from cloudflare._wrappers import ResultWrapper
from cloudflare.types.cache.origin_cloud_region_bulk_delete_response import (
    OriginCloudRegionBulkDeleteResponse,
)

from syncd.cloudflare import origin_reads, zones
from syncd.cloudflare.transport import RateLimiter, RetryPolicy, Transport, build_client
from syncd.cloudflare.v2 import V2Client
from syncd.errors import CloudflareError
from syncd.model import RegionMapping, Vendor, parse_ip
from syncd.simulators.base import Request
from syncd.simulators.cloudflare import DEFAULT_ACCOUNT, CloudflareSimulator
from tests.conftest import TOKEN, ZONE

IP = "192.0.2.10"


@pytest.fixture
def sdk(cf: CloudflareSimulator) -> Iterator[Cloudflare]:
    client = Cloudflare(
        api_token=TOKEN,
        base_url=cf.base_url,
        _strict_response_validation=True,
        max_retries=0,
    )
    with client:
        yield client


@pytest.fixture
def transport(cf: CloudflareSimulator) -> Iterator[Transport]:
    client = build_client(cf.base_url, token=TOKEN, email=None, key=None, timeout=2.0)
    with client:
        yield Transport(client, limiter=RateLimiter(1000, 1.0), retry=RetryPolicy(retries=0))


@pytest.fixture
def estate(cf: CloudflareSimulator) -> dict[str, str]:
    """Records, a load balancer with a rule and a pool set, pools, a mapping."""
    pool = cf.add_pool("eu", [{"address": "192.0.2.1", "name": "eu-1"}])
    spare = cf.add_pool("spare", [{"address": "origin.example.net"}])
    lb = cf.add_load_balancer(
        ZONE,
        "lb.example.com",
        default_pools=[pool],
        fallback_pool=pool,
        region_pools={"WEU": [pool]},
        rules=[
            {
                "name": "eu",
                "condition": 'ip.src.country eq "DE"',
                "disabled": True,
                "overrides": {"default_pools": [spare], "fallback_pool": spare},
            }
        ],
        pool_sets=[{"name": "apac", "overrides": {"pools": [spare], "fallback_pool": pool}}],
    )
    cf.add_dns_record(ZONE, "A", "a.example.com", "192.0.2.1")
    cf.add_dns_record(ZONE, "AAAA", "b.example.com", "2001:db8::1", proxied=False)
    cf.add_dns_record(ZONE, "CNAME", "www.example.com", "lb.example.com")
    cf.add_dns_record(ZONE, "TXT", "example.com", "v=spf1 -all")
    cf.set_mapping(ZONE, IP, "aws", "us-east-1")
    return {"pool": pool, "spare": spare, "lb": lb}


# --- every answer validates against the SDK's models ---------------------------------------


def test_mappings_list_get_put_batch_put_and_batch_delete_validate(cf, sdk, estate):
    mappings = sdk.cache.origin_cloud_regions
    listed = mappings.list(zone_id=ZONE, page=1, per_page=100)
    assert [(IP, "aws", "us-east-1")] == [(m.origin_ip, m.vendor, m.region) for m in listed]
    got = mappings.get(IP, zone_id=ZONE)
    assert got is not None
    assert ("aws", "us-east-1") == (got.vendor, got.region)
    put = mappings.update(IP, zone_id=ZONE, body_origin_ip=IP, vendor="gcp", region="europe-west1")
    assert put is not None
    assert ("gcp", "europe-west1") == (put.vendor, put.region)
    batch = mappings.bulk_update(
        zone_id=ZONE,
        body=[
            {"origin_ip": "192.0.2.11", "vendor": "azure", "region": "westeurope"},
            {"origin_ip": "192.0.2.12", "vendor": "oci", "region": "nowhere-1"},
        ],
    )
    assert batch is not None
    assert ["192.0.2.11"] == [s.origin_ip for s in batch.succeeded]
    assert ["192.0.2.12"] == [f.origin_ip for f in batch.failed]
    deleted = _batch_delete(sdk, [IP, "192.0.2.99"])
    assert [IP] == [s.origin_ip for s in deleted.succeeded]
    assert ["192.0.2.99"] == [f.origin_ip for f in deleted.failed]
    assert {"192.0.2.11": ("azure", "westeurope")} == cf.mappings(ZONE)


def _batch_delete(sdk: Cloudflare, ips: list[str]) -> OriginCloudRegionBulkDeleteResponse:
    """The batch DELETE with the JSON array body the schema documents (the SDK's generated
    ``bulk_delete`` sends no body: docs/simulators.md), parsed by the SDK's model."""
    wrapped = sdk.delete(
        f"/zones/{ZONE}/origin/cloud_regions/batch",
        body=ips,
        cast_to=ResultWrapper[OriginCloudRegionBulkDeleteResponse],
    )
    return wrapped.result


def test_the_sdks_bodiless_batch_delete_is_refused(sdk, estate):
    with pytest.raises(BadRequestError, match="1146"):
        sdk.cache.origin_cloud_regions.bulk_delete(zone_id=ZONE)


def test_supported_regions_name_upper_tier_colos_for_every_region(cf, sdk):
    answer = sdk.cache.origin_cloud_regions.supported_regions(zone_id=ZONE)
    assert answer is not None
    assert {"aws", "azure", "gcp", "oci"} == set(answer.vendors)
    regions = {r.name: r.upper_tier_colos for r in answer.vendors["aws"]}
    assert ["IAD", "EWR"] == regions["us-east-1"]
    assert all(r.upper_tier_colos for rs in answer.vendors.values() for r in rs)


def test_dns_records_validate(sdk, estate):
    records = sdk.dns.records.list(zone_id=ZONE, page=1, per_page=5000)
    assert {
        ("a.example.com", "A", "192.0.2.1"),
        ("b.example.com", "AAAA", "2001:db8::1"),
        ("www.example.com", "CNAME", "lb.example.com"),
        ("example.com", "TXT", "v=spf1 -all"),
    } == {(r.name, r.type, r.content) for r in records}


def test_load_balancers_with_rules_and_pool_sets_validate(sdk, estate):
    (lb,) = sdk.load_balancers.list(zone_id=ZONE)
    assert (estate["lb"], "lb.example.com") == (lb.id, lb.name)
    (rule,) = lb.rules or []
    assert rule.overrides is not None
    assert (True, estate["spare"]) == (rule.disabled, rule.overrides.fallback_pool)
    (pool_set,) = lb.pool_sets or []
    assert pool_set.overrides is not None
    assert [estate["spare"]] == pool_set.overrides.pools


def test_pools_get_and_list_validate(sdk, estate):
    pool = sdk.load_balancers.pools.get(estate["pool"], account_id=DEFAULT_ACCOUNT)
    assert ["192.0.2.1"] == [o.address for o in pool.origins or []]
    listed = sdk.load_balancers.pools.list(account_id=DEFAULT_ACCOUNT)
    assert {estate["pool"], estate["spare"]} == {p.id for p in listed}


def test_both_tiered_cache_settings_validate(cf, sdk):
    cf.set_smart_topology(ZONE, False)
    tiered = sdk.argo.tiered_caching.get(zone_id=ZONE)
    smart = sdk.cache.smart_tiered_cache.get(zone_id=ZONE)
    assert tiered is not None
    assert smart is not None
    assert ("on", "off") == (tiered.value, smart.value)


def test_zones_list_and_zone_details_validate(cf, sdk):
    other = "b" * 32
    cf.add_zone("c" * 32, "other.example", account_id=other)
    listed = sdk.zones.list(status="active", per_page=50, account={"id": other})
    assert [("c" * 32, "other.example", other)] == [(z.id, z.name, z.account.id) for z in listed]
    zone = sdk.zones.get(zone_id=ZONE)
    assert zone is not None
    assert ("example.com", DEFAULT_ACCOUNT) == (zone.name, zone.account.id)


# --- syncd's requests are the SDK's -------------------------------------------------------

_Call = Callable[[Transport], Any]
_SdkCall = Callable[[Cloudflare], Any]
_MAPPING = RegionMapping(ip=parse_ip("192.0.2.11"), vendor=Vendor.AZURE, region="westeurope")

# (what, syncd's call, the SDK's call for the same thing)
SAME: list[tuple[str, _Call, _SdkCall]] = [
    (
        "v2 list",
        lambda t: V2Client(t).list_mappings(ZONE),
        lambda c: c.cache.origin_cloud_regions.list(zone_id=ZONE, page=1, per_page=100),
    ),
    (
        "v2 batch PUT",
        lambda t: V2Client(t).upsert(ZONE, [_MAPPING]),
        lambda c: c.cache.origin_cloud_regions.bulk_update(
            zone_id=ZONE,
            body=[{"origin_ip": "192.0.2.11", "region": "westeurope", "vendor": "azure"}],
        ),
    ),
    (
        "supported_regions",
        lambda t: V2Client(t).supported_regions(ZONE),
        lambda c: c.cache.origin_cloud_regions.supported_regions(zone_id=ZONE),
    ),
    (
        "DNS records",
        lambda t: origin_reads.records(t, ZONE),
        lambda c: c.dns.records.list(zone_id=ZONE, page=1, per_page=origin_reads.PER_PAGE),
    ),
    (
        "zone details",
        lambda t: origin_reads.zone_details(t, ZONE),
        lambda c: c.zones.get(zone_id=ZONE),
    ),
    (
        "load balancers",
        lambda t: origin_reads.load_balancers(t, ZONE),
        lambda c: c.load_balancers.list(zone_id=ZONE),
    ),
    (
        "pool",
        lambda t: origin_reads.pool(t, DEFAULT_ACCOUNT, "f" * 32),
        lambda c: c.load_balancers.pools.get("f" * 32, account_id=DEFAULT_ACCOUNT),
    ),
    (
        "tiered caching",
        lambda t: origin_reads.tiered_caching(t, ZONE),
        lambda c: c.argo.tiered_caching.get(zone_id=ZONE),
    ),
    (
        "smart topology",
        lambda t: origin_reads.smart_topology(t, ZONE),
        lambda c: c.cache.smart_tiered_cache.get(zone_id=ZONE),
    ),
    (
        "zones in an account",
        lambda t: zones.list_active(t, (DEFAULT_ACCOUNT,)),
        lambda c: c.zones.list(
            status="active", page=1, per_page=zones.PER_PAGE, account={"id": DEFAULT_ACCOUNT}
        ),
    ),
    (
        "zones of every account",
        lambda t: zones.list_active(t, ()),
        lambda c: c.zones.list(status="active", page=1, per_page=zones.PER_PAGE),
    ),
    (
        "a zone's account by name",
        lambda t: zones.listed_account(t, ZONE, "example.com"),
        lambda c: c.zones.list(name="example.com"),
    ),
]


def _first(cf: CloudflareSimulator, call: Callable[[], Any]) -> tuple[str, str, Any, Any]:
    """The first request ``call`` sends, as (method, path, query, JSON body or None)."""
    cf.clear_requests()
    with contextlib.suppress(CloudflareError, APIStatusError):  # a 404 pool, a refused delete
        call()
    request: Request = cf.requests[0]
    return (
        request.method,
        request.path,
        {k: sorted(v) for k, v in request.query.items()},
        json.loads(request.body) if request.body else None,
    )


@pytest.mark.parametrize(("what", "ours", "theirs"), SAME, ids=[s[0] for s in SAME])
def test_syncd_sends_what_the_sdk_sends(cf, sdk, transport, estate, what, ours, theirs):
    assert _first(cf, lambda: theirs(sdk)) == _first(cf, lambda: ours(transport)), what


def test_the_one_deliberate_difference_is_the_batch_delete_body(cf, sdk, transport, estate):
    """syncd sends the JSON array of IPs the schema's request body defines; the generated
    ``bulk_delete`` sends none, and the API refuses it (docs/simulators.md)."""
    method, path, query, body = _first(cf, lambda: V2Client(transport).delete(ZONE, [parse_ip(IP)]))
    sdk_call = _first(cf, lambda: sdk.cache.origin_cloud_regions.bulk_delete(zone_id=ZONE))
    assert ("DELETE", path, query, None) == sdk_call
    assert ([IP], "DELETE") == (body, method)
