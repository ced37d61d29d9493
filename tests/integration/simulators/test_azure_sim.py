"""The Azure simulator is as strict as ARM and Entra ID where the collector relies on it.

Raw HTTPS with httpx (trusting the simulator's throw-away certificate), so these tests see the
wire exactly: status codes, ARM's error JSON, absolute nextLinks, the token endpoint's answers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.simulators.azure import (
    ARM_SCOPE,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT,
    AzureSimulator,
)

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
OTHER = "0b1f6471-1bf0-4dda-aec3-444455556666"
API = "2026-03-01"
PIPS = f"/subscriptions/{SUB}/providers/Microsoft.Network/publicIPAddresses"


@pytest.fixture
def sim(azure_server: AzureSimulator) -> AzureSimulator:
    """The module's simulator, emptied, with one readable subscription and pages of two."""
    azure_server.reset()
    azure_server.page_size = 2
    azure_server.add_subscription(SUB)
    return azure_server


@pytest.fixture
def http(sim: AzureSimulator) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sim.url, verify=str(sim.ca_file), timeout=5) as client:
        yield client


def _bearer(sim: AzureSimulator) -> dict[str, str]:
    return {"Authorization": f"Bearer {sim.issue_token()}"}


def _error_code(response: httpx.Response) -> str:
    body: dict[str, Any] = response.json()
    return str(body["error"]["code"])


def test_arm_read_without_api_version_is_rejected(sim: AzureSimulator, http: httpx.Client) -> None:
    response = http.get(PIPS, headers=_bearer(sim))
    assert 400 == response.status_code
    assert "MissingApiVersionParameter" == _error_code(response)


def test_malformed_api_version_is_rejected(sim: AzureSimulator, http: httpx.Client) -> None:
    response = http.get(PIPS, params={"api-version": "latest"}, headers=_bearer(sim))
    assert 400 == response.status_code
    assert "InvalidApiVersionParameter" == _error_code(response)


def test_missing_bearer_token_is_rejected_with_a_challenge(http: httpx.Client) -> None:
    response = http.get(PIPS, params={"api-version": API})
    assert 401 == response.status_code
    assert "AuthenticationFailed" == _error_code(response)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_unknown_token_is_rejected(http: httpx.Client) -> None:
    response = http.get(
        PIPS, params={"api-version": API}, headers={"Authorization": "Bearer made-up"}
    )
    assert 401 == response.status_code
    assert "InvalidAuthenticationToken" == _error_code(response)


def test_expired_token_is_rejected(sim: AzureSimulator, http: httpx.Client) -> None:
    headers = _bearer(sim)
    sim.expire_tokens()
    response = http.get(PIPS, params={"api-version": API}, headers=headers)
    assert 401 == response.status_code
    assert "ExpiredAuthenticationToken" == _error_code(response)


def test_paging_follows_absolute_next_links(sim: AzureSimulator, http: httpx.Client) -> None:
    for i in range(5):
        sim.add_public_ip(SUB, f"pip{i}", ip=f"20.0.0.{i}")
    headers = _bearer(sim)
    names: list[str] = []
    links: list[str] = []
    url: str | None = f"{sim.url}{PIPS}?api-version={API}"
    while url is not None:
        response = http.get(url, headers=headers)
        assert 200 == response.status_code
        body = response.json()
        names += [item["name"] for item in body["value"]]
        url = body.get("nextLink")
        links += [url] if url else []
    assert [f"pip{i}" for i in range(5)] == names
    assert 2 == len(links)
    assert all(link.startswith(f"{sim.url}{PIPS}?api-version={API}&$skiptoken=") for link in links)


def test_invalid_skiptoken_is_rejected(sim: AzureSimulator, http: httpx.Client) -> None:
    response = http.get(
        PIPS, params={"api-version": API, "$skiptoken": "!!!"}, headers=_bearer(sim)
    )
    assert 400 == response.status_code


def test_unknown_subscription_is_not_found(sim: AzureSimulator, http: httpx.Client) -> None:
    path = PIPS.replace(SUB, OTHER)
    response = http.get(path, params={"api-version": API}, headers=_bearer(sim))
    assert 404 == response.status_code
    assert "SubscriptionNotFound" == _error_code(response)


def test_malformed_subscription_id_is_rejected(sim: AzureSimulator, http: httpx.Client) -> None:
    path = PIPS.replace(SUB, "not-a-guid")
    response = http.get(path, params={"api-version": API}, headers=_bearer(sim))
    assert 400 == response.status_code
    assert "InvalidSubscriptionId" == _error_code(response)


def test_unreadable_subscription_is_authorization_failed(
    sim: AzureSimulator, http: httpx.Client
) -> None:
    sim.add_subscription(OTHER, readable=False)
    path = PIPS.replace(SUB, OTHER)
    response = http.get(path, params={"api-version": API}, headers=_bearer(sim))
    assert 403 == response.status_code
    assert "AuthorizationFailed" == _error_code(response)


def test_subscriptions_list_shows_every_state(sim: AzureSimulator, http: httpx.Client) -> None:
    sim.page_size = 10
    sim.add_subscription(OTHER, state="Disabled")
    response = http.get(
        "/subscriptions", params={"api-version": "2016-06-01"}, headers=_bearer(sim)
    )
    assert 200 == response.status_code
    states = {s["subscriptionId"]: s["state"] for s in response.json()["value"]}
    assert {SUB: "Enabled", OTHER: "Disabled"} == states


def test_prefix_lists_the_public_ips_allocated_from_it(
    sim: AzureSimulator, http: httpx.Client
) -> None:
    prefix = sim.add_prefix(SUB, "nat", prefix="20.1.0.0/30", location="westeurope")
    member = sim.add_public_ip(SUB, "in-prefix", ip="20.1.0.1", prefix_id=prefix)
    path = f"/subscriptions/{SUB}/providers/Microsoft.Network/publicIPPrefixes"
    response = http.get(path, params={"api-version": API}, headers=_bearer(sim))
    [listed] = response.json()["value"]
    assert "20.1.0.0/30" == listed["properties"]["ipPrefix"]
    assert [{"id": member}] == listed["properties"]["publicIPAddresses"]


def test_unallocated_public_ip_has_no_address(sim: AzureSimulator, http: httpx.Client) -> None:
    sim.add_public_ip(SUB, "dynamic", allocation_method="Dynamic")
    response = http.get(PIPS, params={"api-version": API}, headers=_bearer(sim))
    [listed] = response.json()["value"]
    assert "ipAddress" not in listed["properties"]
    assert "Dynamic" == listed["properties"]["publicIPAllocationMethod"]


def _token_request(http: httpx.Client, **form: str) -> httpx.Response:
    data = {
        "grant_type": "client_credentials",
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "scope": ARM_SCOPE,
        **form,
    }
    return http.post(f"/{DEFAULT_TENANT}/oauth2/v2.0/token", data=data)


def test_openid_configuration_points_at_the_simulator(
    sim: AzureSimulator, http: httpx.Client
) -> None:
    response = http.get(f"/{DEFAULT_TENANT}/v2.0/.well-known/openid-configuration")
    assert 200 == response.status_code
    expected = f"{sim.url}/{DEFAULT_TENANT}/oauth2/v2.0/token"
    assert expected == response.json()["token_endpoint"]


def test_unknown_tenant_is_rejected(http: httpx.Client) -> None:
    response = http.get("/contoso.example/v2.0/.well-known/openid-configuration")
    assert 400 == response.status_code
    assert "invalid_tenant" == response.json()["error"]


def test_client_credentials_token_is_accepted_by_arm(http: httpx.Client) -> None:
    token = _token_request(http)
    assert 200 == token.status_code
    assert "Bearer" == token.json()["token_type"]
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    assert 200 == http.get(PIPS, params={"api-version": API}, headers=headers).status_code


def test_wrong_client_secret_is_invalid_client(http: httpx.Client) -> None:
    response = _token_request(http, client_secret="wrong")
    assert 401 == response.status_code
    assert "invalid_client" == response.json()["error"]
    assert [7000215] == response.json()["error_codes"]


def test_unknown_client_is_unauthorized(http: httpx.Client) -> None:
    response = _token_request(http, client_id="00000000-0000-0000-0000-000000000000")
    assert 400 == response.status_code
    assert "unauthorized_client" == response.json()["error"]


def test_token_for_another_resource_is_refused(http: httpx.Client) -> None:
    response = _token_request(http, scope="https://graph.microsoft.com/.default")
    assert 400 == response.status_code
    assert "invalid_resource" == response.json()["error"]


def test_client_credentials_need_a_default_scope(http: httpx.Client) -> None:
    response = _token_request(http, scope="https://management.azure.com/user_impersonation")
    assert 400 == response.status_code
    assert "invalid_scope" == response.json()["error"]


def test_throttle_answers_429_with_retry_after(sim: AzureSimulator, http: httpx.Client) -> None:
    sim.throttle(times=1, retry_after=7)
    first = http.get(PIPS, params={"api-version": API}, headers=_bearer(sim))
    second = http.get(PIPS, params={"api-version": API}, headers=_bearer(sim))
    assert (429, "7") == (first.status_code, first.headers["Retry-After"])
    assert 200 == second.status_code


def test_removed_public_ip_is_no_longer_listed(sim: AzureSimulator, http: httpx.Client) -> None:
    sim.add_public_ip(SUB, "keep", ip="20.0.0.1")
    sim.add_public_ip(SUB, "gone", ip="20.0.0.2", resource_group="old")
    sim.remove_public_ip(SUB, "gone", resource_group="old")
    response = http.get(PIPS, params={"api-version": API}, headers=_bearer(sim))
    assert ["keep"] == [item["name"] for item in response.json()["value"]]


def test_writes_are_not_served(sim: AzureSimulator, http: httpx.Client) -> None:
    response = http.put(f"{PIPS}/new", params={"api-version": API}, headers=_bearer(sim))
    assert 405 == response.status_code
