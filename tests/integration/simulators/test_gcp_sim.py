"""The GCP simulator's own strictness, over plain httpx (and google-auth for the token flows)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import google.auth.transport.requests
import httpx
import pytest
from google.auth import crypt, jwt
from google.auth import exceptions as auth_exc
from google.oauth2 import service_account

from syncd.simulators.gcp import GcpSimulator

AUTH = "https://www.googleapis.com/auth/"
ADDRESSES = "/compute/v1/projects/p1/aggregated/addresses"
GLOBAL_ADDRESSES = "/compute/v1/projects/p1/global/addresses"
SEARCH = "/v3/projects:search"


@pytest.fixture
def sim(gcp_server: GcpSimulator) -> GcpSimulator:
    gcp_server.reset()
    gcp_server.add_project("p1")
    for i in range(5):
        gcp_server.add_address("p1", "us-central1", f"a{i}", f"34.1.0.{i}")
    gcp_server.add_address("p1", None, "anycast", "34.149.0.1")
    gcp_server.add_address("p1", "us-east1", "private", "10.0.0.2", address_type="INTERNAL")
    return gcp_server


@pytest.fixture
def http(sim: GcpSimulator) -> Iterator[httpx.Client]:
    token = sim.issue_token([AUTH + "compute.readonly", AUTH + "cloudplatformprojects.readonly"])
    with httpx.Client(base_url=sim.url, headers={"Authorization": f"Bearer {token}"}) as client:
        yield client


def error_of(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()["error"]
    return body


def reasons(response: httpx.Response) -> list[str]:
    return [e["reason"] for e in error_of(response)["errors"]]


def every_page(http: httpx.Client, path: str, **params: str) -> list[dict[str, Any]]:
    pages, token = [], None
    while True:
        query = {**params, **({"pageToken": token} if token else {})}
        response = http.get(path, params=query)
        assert 200 == response.status_code, response.text
        pages.append(response.json())
        token = pages[-1].get("nextPageToken")
        if not token:
            return pages


def names(pages: list[dict[str, Any]]) -> list[str]:
    return [
        item["name"]
        for page in pages
        for scoped in page["items"].values()
        for item in scoped.get("addresses", [])
    ]


# --- auth -------------------------------------------------------------------------------------


def test_request_without_bearer_token_is_401(sim: GcpSimulator) -> None:
    response = httpx.get(sim.url + ADDRESSES)

    assert 401 == response.status_code
    assert ("UNAUTHENTICATED", ["required"]) == (error_of(response)["status"], reasons(response))


@pytest.mark.parametrize("token", ["fake", "ya29.sim-never-issued", "a.b.c"])
def test_token_the_simulator_never_issued_is_401(sim: GcpSimulator, token: str) -> None:
    response = httpx.get(sim.url + ADDRESSES, headers={"Authorization": f"Bearer {token}"})

    assert 401 == response.status_code
    assert ["authError"] == reasons(response)


def test_expired_token_is_401(sim: GcpSimulator) -> None:
    token = sim.issue_token(lifetime=-1)

    response = httpx.get(sim.url + ADDRESSES, headers={"Authorization": f"Bearer {token}"})

    assert 401 == response.status_code


def test_token_without_a_compute_scope_is_403_scope_insufficient(sim: GcpSimulator) -> None:
    token = sim.issue_token([AUTH + "cloudplatformprojects.readonly"])

    response = httpx.get(sim.url + ADDRESSES, headers={"Authorization": f"Bearer {token}"})

    assert 403 == response.status_code
    assert "ACCESS_TOKEN_SCOPE_INSUFFICIENT" == error_of(response)["details"][0]["reason"]


def test_token_endpoint_grants_a_token_for_an_assertion_signed_by_the_key(
    sim: GcpSimulator, tmp_path: Path
) -> None:
    """google-auth's own JWT-bearer grant against ``token_uri``, then the token on Compute."""
    key = sim.write_service_account(tmp_path / "sa.json")
    credentials = service_account.Credentials.from_service_account_file(
        str(key), scopes=[AUTH + "compute.readonly"]
    )

    credentials.refresh(google.auth.transport.requests.Request())
    response = httpx.get(
        sim.url + ADDRESSES, headers={"Authorization": f"Bearer {credentials.token}"}
    )

    assert 200 == response.status_code
    assert ["POST"] == [r.method for r in sim.requests_matching(path="^/token$")]


def test_token_endpoint_refuses_a_key_it_does_not_know(sim: GcpSimulator, tmp_path: Path) -> None:
    forged = sim.write_service_account(tmp_path / "forged.json", trusted=False)
    credentials = service_account.Credentials.from_service_account_file(
        str(forged), scopes=[AUTH + "compute.readonly"]
    )

    with pytest.raises(auth_exc.RefreshError, match="invalid_grant"):
        credentials.refresh(google.auth.transport.requests.Request())


@pytest.mark.parametrize(
    ("claims", "problem"),
    [
        ({"aud": "https://example.com/token"}, "Failed audience check"),
        ({"exp_in": 7200}, "short-lived"),
        ({"scope": ""}, "Invalid OAuth scope"),
    ],
)
def test_token_endpoint_checks_the_assertion_claims(
    sim: GcpSimulator, tmp_path: Path, claims: dict[str, Any], problem: str
) -> None:
    key = sim.write_service_account(tmp_path / "sa.json")
    signer = crypt.RSASigner.from_service_account_file(str(key))
    now = int(time.time())
    payload = {
        "iss": sim.client_email,
        "aud": claims.get("aud", "https://oauth2.googleapis.com/token"),
        "scope": claims.get("scope", AUTH + "compute.readonly"),
        "iat": now,
        "exp": now + claims.get("exp_in", 3600),
    }
    assertion = jwt.encode(signer, payload).decode()

    response = httpx.post(
        sim.url + "/token",
        data={"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer", "assertion": assertion},
    )

    assert 400 == response.status_code
    assert problem in response.json()["error_description"]


def test_token_endpoint_refuses_other_grants(sim: GcpSimulator) -> None:
    response = httpx.post(
        sim.url + "/token", data={"grant_type": "client_credentials", "assertion": "x"}
    )

    assert (400, "unsupported_grant_type") == (response.status_code, response.json()["error"])


def test_self_signed_jwt_of_the_service_account_is_accepted(
    sim: GcpSimulator, tmp_path: Path
) -> None:
    """What the GAPIC clients send for a service-account key (AIP-4111), with no token call."""
    key = sim.write_service_account(tmp_path / "sa.json")
    for_compute = jwt.Credentials.from_service_account_file(
        str(key), audience="https://compute.googleapis.com/"
    )
    for_projects = jwt.Credentials.from_service_account_file(
        str(key), audience="https://cloudresourcemanager.googleapis.com/"
    )
    for_compute.refresh(google.auth.transport.requests.Request())
    for_projects.refresh(google.auth.transport.requests.Request())

    def status(credentials: jwt.Credentials) -> int:
        token = (
            credentials.token.decode()
            if isinstance(credentials.token, bytes)
            else credentials.token
        )
        headers = {"Authorization": f"Bearer {token}"}
        return httpx.get(sim.url + ADDRESSES, headers=headers).status_code

    assert (200, 403) == (status(for_compute), status(for_projects))
    assert [] == sim.requests_matching(path="^/token$")


# --- compute lists ----------------------------------------------------------------------------


def test_max_results_over_500_is_400(http: httpx.Client) -> None:
    response = http.get(ADDRESSES, params={"maxResults": "501"})

    assert 400 == response.status_code
    assert ["invalid"] == reasons(response)
    assert 200 == http.get(ADDRESSES, params={"maxResults": "500"}).status_code


@pytest.mark.parametrize("params", [{"maxResults": "ten"}, {"pageSize": "5"}, {"bogus": "1"}])
def test_malformed_or_unknown_parameters_are_400(
    http: httpx.Client, params: dict[str, str]
) -> None:
    assert 400 == http.get(ADDRESSES, params=params).status_code


def test_pages_follow_next_page_token_without_repeats(http: httpx.Client) -> None:
    pages = every_page(http, ADDRESSES, maxResults="500")

    assert 4 == len(pages)
    assert ["anycast", "a0", "a1", "a2", "a3", "a4", "private"] == names(pages)
    assert {"compute#addressAggregatedList"} == {p["kind"] for p in pages}


def test_page_size_is_the_smaller_of_max_results_and_the_simulator_cap(
    sim: GcpSimulator, http: httpx.Client
) -> None:
    sim.page_size = 500

    assert 3 == len(every_page(http, ADDRESSES, maxResults="3"))
    assert 1 == len(every_page(http, ADDRESSES))


def test_page_token_belongs_to_its_list_and_filter(http: httpx.Client) -> None:
    token = http.get(ADDRESSES).json()["nextPageToken"]

    other_list = http.get(GLOBAL_ADDRESSES, params={"pageToken": token})
    other_filter = http.get(ADDRESSES, params={"pageToken": token, "filter": 'name = "a1"'})
    made_up = http.get(ADDRESSES, params={"pageToken": "made-up"})

    assert [400, 400, 400] == [r.status_code for r in (other_list, other_filter, made_up)]


def test_empty_scopes_carry_a_no_results_on_page_warning(http: httpx.Client) -> None:
    items = http.get(ADDRESSES).json()["items"]

    warning = items["regions/europe-west1"]["warning"]
    assert "NO_RESULTS_ON_PAGE" == warning["code"]
    assert [{"key": "scope", "value": "regions/europe-west1"}] == warning["data"]
    assert {"global", "regions/us-central1", "regions/us-east1"} <= set(items)


def test_global_list_holds_only_global_resources(http: httpx.Client) -> None:
    body = http.get(GLOBAL_ADDRESSES).json()

    assert ("compute#addressList", ["anycast"]) == (
        body["kind"],
        [a["name"] for a in body["items"]],
    )
    assert "region" not in body["items"][0]


def test_filter_keeps_matching_resources(http: httpx.Client) -> None:
    external = names(every_page(http, ADDRESSES, filter='addressType = "EXTERNAL"'))
    internal = names(every_page(http, ADDRESSES, filter='addressType != "EXTERNAL"'))

    assert (6, ["private"]) == (len(external), internal)
    assert 400 == http.get(ADDRESSES, params={"filter": "addressType ~ EXT OR"}).status_code


def test_filter_joins_parenthesized_expressions_with_or_and_and(
    sim: GcpSimulator, http: httpx.Client
) -> None:
    rules = "/compute/v1/projects/p1/aggregated/forwardingRules"
    for name, scheme in (("e", "EXTERNAL"), ("m", "EXTERNAL_MANAGED"), ("i", "INTERNAL")):
        sim.add_forwarding_rule("p1", "us-east1", name, "34.1.1.1", scheme=scheme)
    either = '(loadBalancingScheme = "EXTERNAL") OR (loadBalancingScheme = "EXTERNAL_MANAGED")'
    both = '(loadBalancingScheme = "EXTERNAL") (name = "m")'

    def rule_names(text: str) -> list[str]:
        pages = every_page(http, rules, filter=text)
        return sorted(r["name"] for p in pages for s in p["items"].values() for r in s.get(
            "forwardingRules", []))  # fmt: skip

    assert (["e", "i", "m"], ["e", "m"], []) == (
        rule_names(""),
        rule_names(either),
        rule_names(both),
    )
    for malformed in ("(name = e) OR (name = m) AND (name = i)", "(name = e) XOR (name = m)"):
        assert 400 == http.get(rules, params={"filter": malformed}).status_code


def test_a_field_mask_keeps_only_what_it_selects_as_parameter_or_header(
    sim: GcpSimulator, http: httpx.Client
) -> None:
    sim.page_size = 500
    mask = "items/*/addresses(name,address),nextPageToken"

    by_param = http.get(ADDRESSES, params={"fields": mask}).json()
    by_header = http.get(ADDRESSES, headers={"X-Goog-FieldMask": mask}).json()
    whole = http.get(ADDRESSES).json()

    assert by_param == by_header
    assert {"items"} == set(by_param)  # one page: no nextPageToken to keep
    kept = [a for scoped in by_param["items"].values() for a in scoped["addresses"]]
    assert 7 == len(kept)
    assert {frozenset({"name", "address"})} == {frozenset(a) for a in kept}
    # Scopes with nothing selected (only a warning) are left out with the rest.
    assert {"global", "regions/us-central1", "regions/us-east1"} == set(by_param["items"])
    assert len(json.dumps(by_param)) < len(json.dumps(whole))


def test_the_request_log_holds_the_size_of_each_answer(
    sim: GcpSimulator, http: httpx.Client
) -> None:
    sim.clear_requests()
    whole = http.get(ADDRESSES)
    refused = http.get(ADDRESSES, params={"fields": "bogus"})

    assert [len(whole.content), len(refused.content)] == [r.sent for r in sim.requests]


def test_a_field_mask_without_next_page_token_drops_the_link_to_the_next_page(
    http: httpx.Client,
) -> None:
    masked = http.get(ADDRESSES, params={"fields": "items/*/addresses/name"}).json()
    kept = http.get(ADDRESSES, params={"fields": "items/*/addresses/name,nextPageToken"}).json()

    assert "nextPageToken" not in masked
    assert kept["nextPageToken"]


def test_a_field_mask_applies_to_global_lists_and_nested_fields(
    sim: GcpSimulator, http: httpx.Client
) -> None:
    sim.add_instance("p1", "us-central1-a", "vm", nat_ips=["35.192.0.1"], labels={"o": "1"})
    mask = "items/*/instances(name,networkInterfaces(accessConfigs/natIP))"

    vms = http.get("/compute/v1/projects/p1/aggregated/instances", params={"fields": mask})
    names_only = http.get(GLOBAL_ADDRESSES, params={"fields": "items/name"}).json()

    assert {"zones/us-central1-a": {"instances": [
        {"name": "vm", "networkInterfaces": [{"accessConfigs": [{"natIP": "35.192.0.1"}]}]}
    ]}} == vms.json()["items"]  # fmt: skip
    assert {"items": [{"name": "anycast"}]} == names_only


@pytest.mark.parametrize(
    "mask",
    [
        "items/*/addresses(name,bogus)",
        "items/*/addresses/name/first",
        "itemz",
        "items/*/addresses(name",
        "items//name",
        "items,,nextPageToken",
    ],
)
def test_a_field_mask_naming_what_the_list_does_not_have_is_400(
    http: httpx.Client, mask: str
) -> None:
    response = http.get(ADDRESSES, headers={"X-Goog-FieldMask": mask})

    assert 400 == response.status_code
    assert ["invalidParameter"] == reasons(response)
    assert "Invalid field selection" in error_of(response)["message"]


def test_instances_and_forwarding_rules_have_the_real_field_names(
    sim: GcpSimulator, http: httpx.Client
) -> None:
    sim.add_instance("p1", "us-east1-b", "vm", nat_ips=["35.1.1.1"], ipv6=[("2600:1900::", 96)])
    sim.add_forwarding_rule("p1", "us-east1", "fr", "34.2.2.2", scheme="EXTERNAL_MANAGED")

    vm = http.get("/compute/v1/projects/p1/aggregated/instances").json()["items"]
    rules = http.get("/compute/v1/projects/p1/aggregated/forwardingRules").json()["items"]

    nic = vm["zones/us-east1-b"]["instances"][0]["networkInterfaces"][0]
    assert "35.1.1.1" == nic["accessConfigs"][0]["natIP"]
    assert ("2600:1900::", 96) == (
        nic["ipv6AccessConfigs"][0]["externalIpv6"],
        nic["ipv6AccessConfigs"][0]["externalIpv6PrefixLength"],
    )
    rule = rules["regions/us-east1"]["forwardingRules"][0]
    assert ("34.2.2.2", "EXTERNAL_MANAGED") == (rule["IPAddress"], rule["loadBalancingScheme"])
    assert 404 == http.get("/compute/v1/projects/p1/global/instances").status_code


def test_unknown_project_is_404_in_google_error_shape(http: httpx.Client) -> None:
    response = http.get("/compute/v1/projects/nope/aggregated/instances")

    assert 404 == response.status_code
    assert ["notFound"] == reasons(response)
    assert "The resource 'projects/nope' was not found" == error_of(response)["message"]


def test_project_with_compute_disabled_is_403_access_not_configured(
    sim: GcpSimulator, http: httpx.Client
) -> None:
    sim.add_project("billing", compute_enabled=False)

    response = http.get("/compute/v1/projects/billing/aggregated/addresses")

    assert 403 == response.status_code
    assert ["accessNotConfigured"] == reasons(response)
    assert "SERVICE_DISABLED" == error_of(response)["details"][0]["reason"]


def test_fault_helper_answers_in_google_error_shape(sim: GcpSimulator, http: httpx.Client) -> None:
    sim.inject(GcpSimulator.fault(429, path="/aggregated/addresses$"))

    throttled, after = http.get(ADDRESSES), http.get(ADDRESSES)

    assert (429, "RESOURCE_EXHAUSTED", ["rateLimitExceeded"]) == (
        throttled.status_code,
        error_of(throttled)["status"],
        reasons(throttled),
    )
    assert 200 == after.status_code
    assert [429, 200] == [r.status for r in sim.requests_matching("GET", ADDRESSES)]


# --- resource manager -------------------------------------------------------------------------


def test_search_pages_through_active_projects(sim: GcpSimulator, http: httpx.Client) -> None:
    for project in ("p2", "p3", "p4"):
        sim.add_project(project)
    sim.add_project("p0", state="DELETE_REQUESTED")

    pages = every_page(http, SEARCH, query="state:ACTIVE")

    assert [["p1", "p2"], ["p3", "p4"]] == [
        [p["projectId"] for p in page["projects"]] for page in pages
    ]
    assert {"ACTIVE"} == {p["state"] for page in pages for p in page["projects"]}


def test_search_encodes_enums_as_numbers_when_asked(http: httpx.Client) -> None:
    body = http.get(SEARCH, params={"query": "state:ACTIVE", "$alt": "json;enum-encoding=int"})

    assert [1] == [p["state"] for p in body.json()["projects"]]


@pytest.mark.parametrize("query", ["colour:blue", "state", "state:"])
def test_search_rejects_a_query_it_cannot_parse(http: httpx.Client, query: str) -> None:
    response = http.get(SEARCH, params={"query": query})

    assert (400, "INVALID_ARGUMENT") == (response.status_code, error_of(response)["status"])


def test_search_needs_a_projects_scope(sim: GcpSimulator) -> None:
    token = sim.issue_token([AUTH + "compute.readonly"])

    response = httpx.get(sim.url + SEARCH, headers={"Authorization": f"Bearer {token}"})

    assert 403 == response.status_code


def test_seed_from_a_yaml_shaped_mapping(sim: GcpSimulator, http: httpx.Client) -> None:
    sim.seed(
        {
            "projects": [
                {
                    "id": "demo",
                    "addresses": [{"region": "europe-west1", "name": "web", "address": "34.7.0.1"}],
                    "instances": [
                        {"zone": "europe-west1-b", "name": "vm", "ipv6": [["2600:1900::", 96]]}
                    ],
                    "forwarding_rules": [{"name": "gfr", "ip": "34.149.7.7"}],
                }
            ]
        }
    )

    base = "/compute/v1/projects/demo"
    assert ["web"] == names(every_page(http, base + "/aggregated/addresses"))
    assert ["gfr"] == [
        r["name"] for r in http.get(base + "/global/forwardingRules").json()["items"]
    ]
