"""Parsers of Cloudflare answers: any JSON yields a result or a TransportError, never a crash."""

from __future__ import annotations

import json

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from syncd.cloudflare import wire
from syncd.cloudflare.transport import RateLimiter, RetryPolicy, Transport
from syncd.errors import CloudflareError, TransportError
from syncd.model import Listing, RegionMapping, UnknownMapping, Vendor, parse_ip

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False)
    | st.text(max_size=8)
    | st.sampled_from(["192.0.2.1", "2001:db8::1", "aws", "us-east-1", "origin_ip", "origin-ip"]),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "origin_ip",
                    "origin-ip",
                    "vendor",
                    "region",
                    "succeeded",
                    "failed",
                    "error",
                    "value",
                    "vendors",
                    "name",
                    "x",
                ]
            ),
            inner,
            max_size=5,
        )
    ),
    max_leaves=20,
)
SENT = [RegionMapping(ip=parse_ip("192.0.2.1"), vendor=Vendor.AWS, region="us-east-1")]


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_any_json_parses_or_raises_transport_error(value):
    for call in (
        lambda: wire.entries(value, ip_key="origin_ip", where="t"),
        lambda: wire.batch_result(value, ip_key="origin_ip", sent=SENT, where="t"),
        lambda: wire.supported_regions(value, where="t"),
    ):
        try:
            call()
        except TransportError as exc:
            assert "malformed" in str(exc)  # noqa: PT017 (hypothesis: raising is optional)


def test_unmentioned_items_count_as_failed():
    result = wire.batch_result(
        {"succeeded": [], "failed": []}, ip_key="origin_ip", sent=SENT, where="t"
    )
    assert ("192.0.2.1", "not in Cloudflare's succeeded or failed list") == (
        result.failed[0].ip,
        result.failed[0].error,
    )


def _transport(handler) -> Transport:
    client = httpx.Client(
        base_url="http://127.0.0.1:9/client/v4/", transport=httpx.MockTransport(handler)
    )
    return Transport(client, limiter=RateLimiter(100, 1), retry=RetryPolicy(retries=0))


body_bytes = st.one_of(
    st.binary(max_size=64),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(
        lambda ok, errs, res: json.dumps(
            {"success": ok, "errors": errs, "messages": [], "result": res}
        ).encode(),
        st.booleans(),
        json_values,
        json_values,
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from([200, 400, 401, 403, 404, 429, 500, 502]), body_bytes)
def test_any_http_answer_is_a_result_or_a_typed_error(status, body):
    transport = _transport(lambda request: httpx.Response(status, content=body))
    try:
        transport.request("GET", "zones/z/origin/cloud_regions", endpoint="t")
    except CloudflareError as exc:
        assert str(exc).startswith("GET zones/z/origin/cloud_regions")  # noqa: PT017


@pytest.mark.parametrize(
    ("status", "code", "kind", "retryable"),
    [
        (403, 1164, "ZoneFull", False),
        (400, 7003, "RouteMissing", False),
        (401, 10000, "AuthError", False),
        (403, 9109, "AuthError", False),
        (500, 1140, "CloudflareError", True),
        (503, 1156, "CloudflareError", True),
        (400, 1157, "CloudflareError", False),
        (429, 971, "RateLimited", True),
        (408, 1000, "CloudflareError", True),  # as the SDK's _should_retry
        (409, 1000, "CloudflareError", True),
    ],
)
def test_errors_are_classified_by_status_and_code(status, code, kind, retryable):
    body = {
        "success": False,
        "errors": [{"code": code, "message": "m"}],
        "messages": [],
        "result": None,
    }
    transport = _transport(lambda request: httpx.Response(status, json=body))
    with pytest.raises(CloudflareError) as info:
        transport.request("PUT", "zones/z/origin/cloud_regions/batch", endpoint="t", body=[])
    assert (kind, retryable, code) == (
        type(info.value).__name__,
        info.value.retryable,
        info.value.code,
    )


def test_a_null_mapping_list_is_malformed_not_empty():
    with pytest.raises(TransportError, match="not an array"):
        wire.entries(None, ip_key="origin_ip", where="t")
    assert Listing(mappings=()) == wire.entries([], ip_key="origin_ip", where="t")


def test_a_vendor_syncd_does_not_know_is_listed_apart_not_malformed():
    items = [
        {"origin_ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"},
        {"origin_ip": "192.0.2.2", "vendor": "newcloud", "region": "nc-west-1"},
    ]
    listing = wire.entries(items, ip_key="origin_ip", where="t")
    assert (SENT[0],) == listing.mappings
    assert (UnknownMapping(parse_ip("192.0.2.2"), "newcloud", "nc-west-1"),) == listing.unknown
    for bad in ({"vendor": None}, {"vendor": ""}, {"vendor": 7}, {"region": None}):
        with pytest.raises(TransportError, match="malformed"):
            wire.entries([items[1] | bad], ip_key="origin_ip", where="t")
