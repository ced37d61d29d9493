"""The Cloudflare simulator answers as the documented API does, seen on the wire with plain httpx.

Both generations over one store, their envelopes and key names, paging, auth failures, request
validation, per-item failures, the zone maximum, switched-off routes, injected faults and DNS.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import (
    DEFAULT_ACCOUNT,
    DEFAULT_REGIONS,
    CloudflareSimulator,
    cf_error,
    main,
    rate_limited,
)

TOKEN = "sim-token_0123"
ZONE = "0123456789abcdef0123456789abcdef"
OTHER_ZONE = "fedcba9876543210fedcba9876543210"
EMAIL = "ops@example.com"
KEY = "0123456789abcdef0123456789abcdef01234"  # 37 hex, the shape of a Global API Key
V1 = f"zones/{ZONE}/cache/origin_cloud_regions"
V2 = f"zones/{ZONE}/origin/cloud_regions"
DNS = f"zones/{ZONE}/dns_records"


@pytest.fixture
def sim() -> Iterator[CloudflareSimulator]:
    """A fresh simulator (a zone holds at most 5 mappings) with one empty zone."""
    running = CloudflareSimulator(token=TOKEN, email=EMAIL, api_key=KEY, max_mappings=5)
    running.add_zone(ZONE, "example.com")
    running.start()
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def http(sim: CloudflareSimulator) -> Iterator[httpx.Client]:
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with httpx.Client(base_url=sim.base_url + "/", headers=headers, timeout=5) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    body = response.json()
    assert (200, True, [], []) == (
        response.status_code,
        body["success"],
        body["errors"],
        body["messages"],
    ), body
    return body["result"]


def codes(response: httpx.Response) -> tuple[int, list[int]]:
    body = response.json()
    assert body["success"] is False
    return response.status_code, [e["code"] for e in body["errors"]]


def rfc3339(value: str) -> bool:
    return value.endswith("Z") and dt.datetime.fromisoformat(value).tzinfo is not None


# --- envelopes of both generations -------------------------------------------------------------


def test_v1_batch_upsert_answers_in_the_zone_setting_envelope_with_origin_ip(http):
    body = [
        {"ip": "192.0.2.1", "region": "us-east-1", "vendor": "aws"},
        {"ip": "2001:db8::1", "region": "us-central1", "vendor": "gcp"},
    ]
    result = ok(http.patch(f"{V1}/batch", json=body))
    assert {"id", "editable", "value", "modified_on"} == set(result)
    assert ("origin_public_cloud_region", True) == (result["id"], result["editable"])
    assert rfc3339(result["modified_on"])
    assert {
        "failed": [],
        "succeeded": [
            {"origin-ip": "192.0.2.1", "region": "us-east-1", "vendor": "aws"},
            {"origin-ip": "2001:db8::1", "region": "us-central1", "vendor": "gcp"},
        ],
    } == result["value"]


def test_v2_batch_upsert_is_flat_with_origin_ip_and_merges(http, sim):
    sim.set_mapping(ZONE, "198.51.100.9", "oci", "us-ashburn-1")
    body = [{"origin_ip": "192.0.2.1", "region": "us-east-1", "vendor": "aws"}]
    result = ok(http.put(f"{V2}/batch", json=body))
    assert {
        "failed": [],
        "succeeded": [{"origin_ip": "192.0.2.1", "region": "us-east-1", "vendor": "aws"}],
    } == result
    assert {
        "192.0.2.1": ("aws", "us-east-1"),
        "198.51.100.9": ("oci", "us-ashburn-1"),
    } == sim.mappings(ZONE)


def test_both_generations_read_and_write_one_store(http, sim):
    ok(
        http.patch(
            f"{V1}/batch", json=[{"ip": "192.0.2.1", "region": "eu-west-1", "vendor": "aws"}]
        )
    )
    ok(
        http.put(
            f"{V2}/batch", json=[{"origin_ip": "192.0.2.2", "region": "eastus", "vendor": "azure"}]
        )
    )
    v1 = ok(http.get(V1))
    v2 = ok(http.get(V2))
    assert ["192.0.2.1", "192.0.2.2"] == [e["origin-ip"] for e in v1["value"]]
    assert ["192.0.2.1", "192.0.2.2"] == [e["origin_ip"] for e in v2]
    assert {"origin_ip", "vendor", "region", "modified_on"} == set(v2[0])
    assert rfc3339(v1["modified_on"])
    assert all(rfc3339(e["modified_on"]) for e in v2)


def test_empty_zone_lists_as_documented(http):
    assert {
        "id": "origin_public_cloud_region",
        "editable": True,
        "value": [],
        "modified_on": None,
    } == ok(http.get(V1))
    response = http.get(V2)
    assert [] == ok(response)
    assert {"count": 0, "page": 1, "per_page": 20, "total_count": 0, "total_pages": 0} == (
        response.json()["result_info"]
    )


def test_v2_list_pages_in_ip_order_with_result_info(http, sim):
    for i in range(25, 0, -1):
        sim.set_mapping(ZONE, f"192.0.2.{i}", "aws", "us-east-1")
    pages = [http.get(V2, params={"page": p, "per_page": 10}) for p in (1, 2, 3, 4)]
    default = http.get(V2)
    seen = [e["origin_ip"] for page in pages for e in ok(page)]
    assert [f"192.0.2.{i}" for i in range(1, 26)] == seen
    infos = [p.json()["result_info"] for p in pages]
    assert [(1, 10, 10), (2, 10, 10), (3, 10, 5), (4, 10, 0)] == [
        (i["page"], i["per_page"], i["count"]) for i in infos
    ]
    assert {(25, 3)} == {(i["total_count"], i["total_pages"]) for i in infos}
    assert (20, 20) == (len(ok(default)), default.json()["result_info"]["per_page"])


@pytest.mark.parametrize("per_page", ["0", "101", "ten"])
def test_v2_per_page_outside_1_to_100_is_1146(http, per_page):
    response = http.get(V2, params={"per_page": per_page})
    assert (400, [1146]) == codes(response)
    assert "per_page" in response.json()["errors"][0]["message"]


# --- auth, routing, zones ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code", "chain"),
    [
        ({}, 400, 9106, []),
        ({"Authorization": TOKEN}, 400, 9106, []),
        ({"Authorization": "Bearer wrong-token"}, 403, 10000, []),
        ({"Authorization": "Bearer not a token!"}, 400, 6003, [6111]),
        ({"X-Auth-Email": EMAIL, "X-Auth-Key": "wrong-key-123"}, 400, 6003, [6103]),
        ({"X-Auth-Email": "nobody", "X-Auth-Key": KEY}, 400, 6003, [6102]),
        ({"X-Auth-Email": EMAIL, "X-Auth-Key": "f" * 37}, 403, 9103, []),
    ],
    ids=["none", "no-bearer", "wrong-token", "bad-token", "bad-key", "bad-email", "wrong-key"],
)
def test_auth_failures_have_cloudflare_shapes(sim, headers, status, code, chain):
    response = httpx.get(f"{sim.base_url}/{V2}", headers=headers)
    body = response.json()
    assert (status, [code]) == codes(response)
    assert chain == [c["code"] for c in body["errors"][0].get("error_chain", [])]


def test_both_credential_schemes_are_accepted(sim):
    for headers in (
        {"Authorization": f"Bearer {TOKEN}"},
        {"X-Auth-Email": EMAIL, "X-Auth-Key": KEY},
    ):
        assert [] == ok(httpx.get(f"{sim.base_url}/{V2}", headers=headers))


def test_unknown_zone_is_403_and_a_malformed_zone_id_has_no_route(http):
    assert (403, [10000]) == codes(http.get(f"zones/{OTHER_ZONE}/origin/cloud_regions"))
    response = http.get(f"zones/{ZONE}0/origin/cloud_regions")
    assert (400, [7003, 7000]) == codes(response)
    assert (
        f"/client/v4/zones/{ZONE}0/origin/cloud_regions" in response.json()["errors"][0]["message"]
    )


def test_unknown_paths_and_methods_have_no_route(http):
    assert (400, [7003, 7000]) == codes(http.get(f"zones/{ZONE}/origin/nothing"))
    assert (400, [7003, 7000]) == codes(http.patch(f"{V2}/batch", json=[]))
    assert (400, [7003, 7000]) == codes(http.get("user/tokens/verify"))


def test_disabled_generation_answers_no_route_and_the_other_still_works(http, sim):
    sim.disable("v2")
    for response in (
        http.get(V2),
        http.get(f"{V2}/supported_regions"),
        http.put(f"{V2}/batch", json=[]),
    ):
        assert (400, [7003, 7000]) == codes(response)
    assert [] == ok(http.get(V1))["value"]
    sim.enable("v2")
    assert [] == ok(http.get(V2))


# --- request validation ------------------------------------------------------------------------


def test_more_than_100_items_are_rejected_whole(http, sim):
    body = [
        {"origin_ip": f"192.0.2.{i}", "vendor": "aws", "region": "us-east-1"} for i in range(101)
    ]
    response = http.put(f"{V2}/batch", json=body)
    assert (400, [1146]) == codes(response)
    assert "101" in response.json()["errors"][0]["message"]
    assert {} == sim.mappings(ZONE)


def test_bad_json_wrong_content_type_and_non_arrays_are_400(http):
    bad_json = http.patch(
        f"{V1}/batch", content=b"[{", headers={"Content-Type": "application/json"}
    )
    assert (400, [6007]) == codes(bad_json)
    plain = http.patch(f"{V1}/batch", content=b"[]", headers={"Content-Type": "text/plain"})
    assert (400, [6003]) == codes(plain)
    assert [6105] == [c["code"] for c in plain.json()["errors"][0]["error_chain"]]
    assert (400, [1146]) == codes(http.put(f"{V2}/batch", json={"origin_ip": "192.0.2.1"}))
    assert (400, [1146]) == codes(http.request("DELETE", f"{V2}/batch"))


@pytest.mark.parametrize(
    ("gen", "path", "key", "other"), [("v1", V1, "ip", "origin_ip"), ("v2", V2, "origin_ip", "ip")]
)
def test_each_item_is_validated_on_its_own(http, sim, gen, path, key, other):
    out = "origin-ip" if gen == "v1" else "origin_ip"
    body = [
        {key: "192.0.2.1", "vendor": "aws", "region": "us-east-1"},
        {key: "192.0.2.300", "vendor": "aws", "region": "us-east-1"},
        {key: "192.0.2.2", "vendor": "AWS", "region": "us-east-1"},
        {key: "192.0.2.3", "vendor": "gcp", "region": "us-east-1"},
        {other: "192.0.2.4", "vendor": "aws", "region": "us-east-1"},
        {key: "192.0.2.5", "vendor": "aws"},
        {key: "192.0.2.6", "vendor": "aws", "region": "us-east-1", "comment": "x"},
        {key: "2001:db8::7", "vendor": "aws", "region": "us-east-1"},
        {key: "2001:DB8:0:0::7", "vendor": "aws", "region": "us-west-2"},
        "192.0.2.8",
    ]
    method = "PATCH" if gen == "v1" else "PUT"
    result = ok(http.request(method, f"{path}/batch", json=body))
    value = result["value"] if gen == "v1" else result
    assert [{out: "192.0.2.1", "vendor": "aws", "region": "us-east-1"}] == value["succeeded"]
    failed = {f[out]: f["error"] for f in value["failed"]}
    assert [
        "192.0.2.300",
        "192.0.2.2",
        "192.0.2.3",
        "192.0.2.4",
        "192.0.2.5",
        "192.0.2.6",
        "2001:db8::7",
        "",
    ] == list(failed)
    assert len(value["failed"]) == 9, "both copies of the duplicated IP fail"
    assert key in failed["192.0.2.4"], "a wrong IP key name is a clear per-item error"
    assert all(isinstance(e, str) and e for e in failed.values())
    assert {"192.0.2.1": ("aws", "us-east-1")} == sim.mappings(ZONE)


def test_the_zone_maximum_rejects_a_batch_that_would_cross_it(http, sim):
    """max_mappings=5: a batch taking the zone to 6 fails whole with 1164; updates still work."""
    for i in range(1, 4):
        sim.set_mapping(ZONE, f"192.0.2.{i}", "aws", "us-east-1")
    new = [
        {"origin_ip": f"198.51.100.{i}", "vendor": "aws", "region": "us-east-1"} for i in range(3)
    ]
    response = http.put(f"{V2}/batch", json=new)
    assert (403, [1164]) == codes(response)
    assert (
        "Maximum number of IP mappings configured for zone."
        == response.json()["errors"][0]["message"]
    )
    assert 3 == len(sim.mappings(ZONE))
    ok(http.put(f"{V2}/batch", json=new[:2]))
    change = [{"origin_ip": "192.0.2.1", "vendor": "aws", "region": "eu-west-1"}]
    assert 1 == len(ok(http.put(f"{V2}/batch", json=change))["succeeded"])
    assert (403, [1164]) == codes(http.put(f"{V2}/batch", json=new[2:]))
    one = {"ip": "203.0.113.1", "vendor": "aws", "region": "us-east-1"}
    assert (403, [1164]) == codes(http.patch(V1, json=one))


def test_ipv6_is_canonicalized_for_storage_and_lookup(http, sim):
    body = [
        {"origin_ip": "2001:DB8:0:0:0:0:0:0001", "vendor": "gcp", "region": "europe-west1"},
        {"origin_ip": "::FFFF:192.0.2.33", "vendor": "aws", "region": "eu-west-1"},
    ]
    succeeded = ok(http.put(f"{V2}/batch", json=body))["succeeded"]
    assert ["2001:db8::1", "::ffff:192.0.2.33"] == [s["origin_ip"] for s in succeeded]
    assert {"2001:db8::1", "::ffff:192.0.2.33"} == set(sim.mappings(ZONE))
    assert "2001:db8::1" == ok(http.get(f"{V2}/2001:0db8::0:1"))["origin_ip"]
    assert "2001:db8::1" == ok(http.get(f"{V1}/2001%3ADB8%3A%3A1"))["value"]["origin-ip"]
    assert (400, [1146]) == codes(http.get(f"{V2}/fe80::1%25eth0"))
    deleted = ok(http.request("DELETE", f"{V1}/batch", json=["2001:DB8::1", "2001:db8::2"]))
    assert [{"origin-ip": "2001:db8::1", "region": "europe-west1", "vendor": "gcp"}] == deleted[
        "value"
    ]["succeeded"]
    assert ["2001:db8::2"] == [f["origin-ip"] for f in deleted["value"]["failed"]]


def test_batch_delete_reports_unknown_ips_and_the_last_delete_empties_the_setting(http, sim):
    sim.set_mapping(ZONE, "192.0.2.1", "oci", "eu-frankfurt-1")
    result = ok(
        http.request("DELETE", f"{V2}/batch", json=["192.0.2.1", "192.0.2.9", "not-an-ip", 7])
    )
    assert [{"origin_ip": "192.0.2.1", "region": "eu-frankfurt-1", "vendor": "oci"}] == result[
        "succeeded"
    ]
    assert ["192.0.2.9", "not-an-ip", ""] == [f["origin_ip"] for f in result["failed"]]
    assert None is ok(http.get(V1))["modified_on"]
    assert (404, [1142]) == codes(http.get(f"{V2}/192.0.2.1"))
    assert (404, [1142]) == codes(http.delete(f"{V1}/192.0.2.1"))


def test_single_mapping_routes_of_both_generations(http, sim):
    item = {"ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}
    created = ok(http.post(V1, json=item))
    assert {"origin-ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"} == {
        k: v for k, v in created["value"].items() if k != "modified_on"
    }
    assert (400, [1145]) == codes(http.post(V1, json=item))
    assert (400, [1157]) == codes(
        http.post(V1, json={**item, "ip": "192.0.2.2", "region": "mars-1"})
    )
    assert (400, [1146]) == codes(http.post(V1, json={**item, "ip": "nope"}))
    whole = ok(http.patch(V1, json={**item, "ip": "192.0.2.2"}))["value"]
    assert 2 == len(whole), "v1 PATCH answers with every mapping of the zone"
    put = {"origin_ip": "192.0.2.3", "vendor": "azure", "region": "westeurope"}
    assert "westeurope" == ok(http.put(f"{V2}/192.0.2.3", json=put))["region"]
    assert (400, [1146]) == codes(http.put(f"{V2}/192.0.2.4", json=put))
    assert {"origin_ip": "192.0.2.3"} == ok(http.delete(f"{V2}/192.0.2.3"))
    assert "192.0.2.2" == ok(http.delete(f"{V1}/192.0.2.2"))["value"]["origin-ip"]
    assert {"192.0.2.1": ("aws", "us-east-1")} == sim.mappings(ZONE)


def test_supported_regions_are_the_same_for_both_and_need_tiered_cache(http, sim):
    v1 = ok(http.get(f"{V1}/supported_regions"))
    assert v1 == ok(http.get(f"{V2}/supported_regions"))
    assert True is v1["obtained_codes"]
    assert {"us-east-1": ["IAD", "EWR"]} == {
        r["name"]: r["upper_tier_colos"] for r in v1["vendors"]["aws"] if r["name"] == "us-east-1"
    }
    assert {v: [r["name"] for r in rs] for v, rs in v1["vendors"].items()} == DEFAULT_REGIONS
    assert all(r["upper_tier_colos"] for rs in v1["vendors"].values() for r in rs)
    sim.set_tiered_cache(ZONE, False)
    assert (403, [1135]) == codes(http.get(f"{V2}/supported_regions"))


# --- faults ------------------------------------------------------------------------------------


def test_injected_cloudflare_errors_come_first_then_the_real_answer(http, sim):
    sim.inject(rate_limited(3, path=r"/batch$"))
    sim.inject(cf_error(500, 1140, "Internal error.", times=2, method="PUT", path=r"/batch$"))
    body = [{"origin_ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}]
    limited = http.put(f"{V2}/batch", json=body)
    assert (429, [971], "3") == (*codes(limited), limited.headers["Retry-After"])
    assert (500, [1140]) == codes(http.put(f"{V2}/batch", json=body))
    assert (500, [1140]) == codes(http.put(f"{V2}/batch", json=body))
    ok(http.put(f"{V2}/batch", json=body))
    assert [429, 500, 500, 200] == [r.status for r in sim.requests_matching("PUT", r"/batch$")]
    sim.inject(cf_error(500, 1156, "Failed to validate region against cloud vendor"))
    assert {
        "success": False,
        "errors": [{"code": 1156, "message": "Failed to validate region against cloud vendor"}],
        "messages": [],
        "result": None,
    } == http.get(V2).json()


def test_raw_faults_reach_the_client(http, sim):
    sim.inject(Fault(status=502, body=b"<html>bad gateway</html>"))
    response = http.get(V2)
    assert (502, b"<html>bad gateway</html>") == (response.status_code, response.content)
    sim.inject(Fault(drop=True))
    with pytest.raises(httpx.TransportError):
        http.get(V2)


def test_responses_carry_rate_limit_headers(http):
    response = http.get(V2)
    assert response.headers["Ratelimit-Policy"] == '"default";q=1200;w=300'
    assert response.headers["Ratelimit"].startswith('"default";r=')


def test_over_the_rate_limit_every_call_is_blocked_for_a_window():
    """LIM: one request over the per-user quota blocks all calls, 429 971 with Retry-After."""
    sim = CloudflareSimulator(token=TOKEN, rate_limit=(3, 600))
    sim.add_zone(ZONE, "example.com")
    with sim, httpx.Client(base_url=sim.base_url + "/", headers=_bearer()) as client:
        first = [client.get(V2) for _ in range(3)]
        assert [200, 200, 200] == [r.status_code for r in first]
        assert ['"default";r=2', '"default";r=0'] == [
            first[0].headers["Ratelimit"].split(";t=")[0],
            first[2].headers["Ratelimit"].split(";t=")[0],
        ]
        over = client.get(V2)
        assert (429, [971]) == (over.status_code, [e["code"] for e in over.json()["errors"]])
        assert 599 <= int(over.headers["Retry-After"]) <= 600
        # Blocked means blocked: a write is refused too, and changes nothing.
        body = [{"ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}]
        assert 429 == client.patch(f"{V2}/batch", json=body).status_code
    assert {} == sim.mappings(ZONE)


def _bearer() -> dict[str, str]:
    return {"Authorization": f"Bearer {TOKEN}"}


# --- DNS ---------------------------------------------------------------------------------------


def test_dns_records_page_and_filter(http, sim):
    ids = [sim.add_dns_record(ZONE, "A", f"a{i}.example.com", f"192.0.2.{i}") for i in range(5)]
    sim.add_dns_record(ZONE, "AAAA", "v6.example.com", "2001:DB8::5", proxied=False)
    sim.add_dns_record(ZONE, "TXT", "example.com", "v=spf1 -all")
    sim.remove_dns_record(ZONE, ids[0])
    first = http.get(DNS, params={"per_page": 2})
    assert {
        "page": 1,
        "per_page": 2,
        "count": 2,
        "total_count": 6,
        "total_pages": 3,
    } == first.json()["result_info"]
    record = ok(first)[0]
    assert {
        "id": ids[1],
        "type": "A",
        "name": "a1.example.com",
        "content": "192.0.2.1",
        "proxied": True,
        "zone_id": ZONE,
    } == {k: record[k] for k in ("id", "type", "name", "content", "proxied", "zone_id")}
    assert 100 == http.get(DNS).json()["result_info"]["per_page"]
    assert ["2001:DB8::5"] == [r["content"] for r in ok(http.get(DNS, params={"type": "AAAA"}))]
    proxied = ok(http.get(DNS, params={"proxied": "true", "per_page": 5000}))
    assert 4 == len(proxied)
    assert ["a3.example.com"] == [
        r["name"] for r in ok(http.get(DNS, params={"name.startswith": "A3."}))
    ]
    assert (400, [1004]) == codes(http.get(DNS, params={"per_page": 0}))
    assert (400, [1004]) == codes(http.get(DNS, params={"type": "BOGUS"}))
    assert (400, [1004]) == codes(http.get(DNS, params={"proxied": "yes"}))


# --- construction and the standalone entry -----------------------------------------------------


def test_control_api_rejects_what_cloudflare_would_never_hold():
    with pytest.raises(ValueError, match="32"):
        CloudflareSimulator().add_zone(ZONE + "0")
    with pytest.raises(ValueError, match="37"):
        CloudflareSimulator(email=EMAIL, api_key="short")
    with pytest.raises(ValueError, match="v1"):
        CloudflareSimulator().disable("v3")
    with pytest.raises(ValueError, match="rate_limit"):
        CloudflareSimulator(rate_limit=(0, 300))


def test_standalone_entry_names_a_bad_rate_limit(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--token", TOKEN, "--rate-limit", "1200/five-minutes"])
    assert 2 == exited.value.code
    assert "--rate-limit '1200/five-minutes': expected REQUESTS/SECONDS" in capsys.readouterr().err


def test_standalone_entry_prints_its_base_url_and_stops_on_sigterm():
    command = [sys.executable, "-m", "syncd.simulators.cloudflare", "--port", "0", "--token", TOKEN]
    command += ["--zone", f"{ZONE}:example.com", "--rate-limit", "50/1.5", "--zones", "30"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    with subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env) as proc:
        try:
            assert proc.stdout is not None
            base_url = proc.stdout.readline().strip()
            auth = {"Authorization": f"Bearer {TOKEN}"}
            response = httpx.get(f"{base_url}/{V2}", headers=auth)
            assert [] == ok(response)
            listed = httpx.get(f"{base_url}/zones", params={"per_page": 50}, headers=auth)
            assert 31 == listed.json()["result_info"]["total_count"]
        finally:
            proc.send_signal(signal.SIGTERM)
            assert 0 == proc.wait(timeout=10)


def test_zones_list_pages_filters_by_status_and_account(sim, http):
    account = "a" * 32
    for n in range(60):
        sim.add_zone(f"{n + 1:032x}", f"z{n:02d}.example", account_id=account)
    sim.add_zone("e" * 32, "parked.example", status="pending")
    first = http.get("zones", params={"per_page": 50, "status": "active"}).json()
    assert 50 == len(first["result"])
    assert {"page": 1, "per_page": 50, "count": 50, "total_count": 61, "total_pages": 2} == (
        first["result_info"]
    )
    zone = first["result"][0]
    assert {"id", "name", "status", "account"} <= set(zone)
    mine = http.get("zones", params={"account.id": account, "page": 2, "per_page": 50}).json()
    assert 10 == len(mine["result"])
    assert {account} == {z["account"]["id"] for z in mine["result"]}
    pending = http.get("zones", params={"status": "pending"}).json()["result"]
    assert ["parked.example"] == [z["name"] for z in pending]
    named = http.get("zones", params={"name": "Z01.example"}).json()["result"]
    assert [f"{2:032x}"] == [z["id"] for z in named]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"per_page": 4}, 400),
        ({"per_page": 51}, 400),
        ({"page": 0}, 400),
        ({"status": "gone"}, 400),
        ({"account.id": "not-an-account"}, 400),
    ],
)
def test_zones_list_rejects_what_cloudflare_rejects(http, params, status):
    response = http.get("zones", params=params)
    assert status == response.status_code
    assert False is response.json()["success"]


def test_zones_list_needs_zone_read_and_a_get(sim, http):
    assert 400 == http.post("zones", json={}).status_code
    sim.zone_read = False
    response = http.get("zones")
    assert (403, 9109) == (response.status_code, response.json()["errors"][0]["code"])
    anonymous = httpx.get(sim.base_url + "/zones")
    assert 400 == anonymous.status_code


def test_a_removed_zone_answers_like_one_out_of_reach(sim, http):
    sim.remove_zone(ZONE)
    assert 403 == http.get(V2).status_code
    with pytest.raises(KeyError):
        sim.remove_zone(ZONE)
    with pytest.raises(ValueError, match="account id"):
        sim.add_zone(OTHER_ZONE, account_id="x")
    with pytest.raises(ValueError, match="status"):
        sim.add_zone(OTHER_ZONE, status="deleted")


# --- zone details, load balancers, pools, tiered cache (issue 16) ------------------------------


def test_zone_details_name_the_zone_and_its_account(sim, http):
    zone = ok(http.get(f"zones/{ZONE}"))
    assert (ZONE, "example.com", DEFAULT_ACCOUNT) == (
        zone["id"],
        zone["name"],
        zone["account"]["id"],
    )
    assert (400, [7003, 7000]) == codes(http.patch(f"zones/{ZONE}", json={}))


def test_load_balancers_and_their_pools_in_the_schema_shapes(sim, http):
    eu = sim.add_pool("eu", [{"address": "origin.example.net", "name": "o1"}])
    us = sim.add_pool("us", [{"address": "192.0.2.1", "enabled": False}], enabled=False)
    sim.add_load_balancer(
        ZONE, "lb.example.com", default_pools=[eu], fallback_pool=us, region_pools={"WNAM": [us]}
    )
    (lb,) = ok(http.get(f"zones/{ZONE}/load_balancers"))
    assert ("lb.example.com", True, True, [eu], us, {"WNAM": [us]}, {}, {}) == (
        lb["name"],
        lb["enabled"],
        lb["proxied"],
        lb["default_pools"],
        lb["fallback_pool"],
        lb["region_pools"],
        lb["country_pools"],
        lb["pop_pools"],
    )
    pool = ok(http.get(f"accounts/{DEFAULT_ACCOUNT}/load_balancers/pools/{us}"))
    assert (us, "us", False) == (pool["id"], pool["name"], pool["enabled"])
    assert [("192.0.2.1", False, "origin-0")] == [
        (o["address"], o["enabled"], o["name"]) for o in pool["origins"]
    ]
    missing = http.get(f"accounts/{DEFAULT_ACCOUNT}/load_balancers/pools/{'0' * 32}")
    assert (404, [1003]) == codes(missing)
    stranger = http.get(f"accounts/{'e' * 32}/load_balancers/pools/{us}")
    assert (403, [10000]) == codes(stranger)
    sim.set_pool_origins(eu, [{"address": "192.0.2.9"}])
    pool = ok(http.get(f"accounts/{DEFAULT_ACCOUNT}/load_balancers/pools/{eu}"))
    assert ["192.0.2.9"] == [o["address"] for o in pool["origins"]]
    sim.remove_pool(eu)
    assert 404 == http.get(f"accounts/{DEFAULT_ACCOUNT}/load_balancers/pools/{eu}").status_code


def test_the_two_tiered_cache_settings_are_zone_setting_envelopes(sim, http):
    tiered = ok(http.get(f"zones/{ZONE}/argo/tiered_caching"))
    smart = ok(http.get(f"zones/{ZONE}/cache/tiered_cache_smart_topology_enable"))
    assert ("tiered_caching", "on", True) == (tiered["id"], tiered["value"], tiered["editable"])
    assert ("tiered_cache_smart_topology_enable", "on") == (smart["id"], smart["value"])
    sim.set_tiered_cache(ZONE, False)
    sim.set_smart_topology(ZONE, False)
    assert "off" == ok(http.get(f"zones/{ZONE}/argo/tiered_caching"))["value"]
    assert "off" == ok(http.get(f"zones/{ZONE}/cache/tiered_cache_smart_topology_enable"))["value"]
    assert (400, [7003, 7000]) == codes(http.patch(f"zones/{ZONE}/argo/tiered_caching", json={}))


def test_a_denied_permission_answers_403_on_the_routes_it_guards(sim, http):
    pool = sim.add_pool("p", [{"address": "192.0.2.1"}])
    sim.deny("load_balancing")
    assert 403 == http.get(f"zones/{ZONE}/load_balancers").status_code
    assert 403 == http.get(f"accounts/{DEFAULT_ACCOUNT}/load_balancers/pools/{pool}").status_code
    assert 200 == http.get(f"zones/{ZONE}/argo/tiered_caching").status_code
    sim.deny("zone_settings")
    assert 403 == http.get(f"zones/{ZONE}/cache/tiered_cache_smart_topology_enable").status_code
    sim.allow("load_balancing")
    assert 200 == http.get(f"zones/{ZONE}/load_balancers").status_code
    with pytest.raises(ValueError, match="permission"):
        sim.deny("dns")
    with pytest.raises(ValueError, match="pool name"):
        sim.add_pool("no spaces", [])
    with pytest.raises(TypeError, match="address"):
        sim.add_pool("p2", [{"name": "x"}])
    with pytest.raises(ValueError, match="default_pools"):
        sim.add_load_balancer(ZONE, "lb.example.com", default_pools=[], fallback_pool=pool)
