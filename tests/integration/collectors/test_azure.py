"""The Azure collector: real azure-identity and azure-mgmt clients, over HTTPS to the simulator.

Every test goes through the real client-credentials flow against the simulator's Entra ID token
endpoint, then reads ARM with azure-mgmt-network / azure-mgmt-subscription. The simulator's
self-signed certificate is trusted through REQUESTS_CA_BUNDLE, so the collector's code is the
production code: only ``base_url`` and ``authority_host`` point elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from azure.core.exceptions import AzureError
from pydantic import ValidationError

from syncd.config import AzureCollectorConfig
from syncd.model import Address, Scope, ScopeStatus, Skip, SkipReason, Vendor
from syncd.simulators.azure import (
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_TENANT,
    AzureSimulator,
)
from syncd.simulators.base import Fault, Request
from syncd.sources.collectors import runner
from syncd.sources.collectors.azure import AzureCollector
from syncd.sources.collectors.base import CollectorSettings, Discovery
from syncd.sources.collectors.failures import CollectorError
from tests.conftest import eventually

SUB = "6f1c4b7e-0d8a-4a53-9d2e-000000000001"
SUB2 = "6f1c4b7e-0d8a-4a53-9d2e-000000000002"
SUB3 = "6f1c4b7e-0d8a-4a53-9d2e-000000000003"
NAME = "azure:test"
FAST = CollectorSettings(scope_timeout=5.0, request_timeout=2.0, max_attempts=3)
PIPS = "/providers/Microsoft.Network/publicIPAddresses"


@pytest.fixture
def sim(azure_server: AzureSimulator, monkeypatch: pytest.MonkeyPatch) -> AzureSimulator:
    """The module's simulator, emptied, with one subscription; its certificate trusted."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(azure_server.ca_file))
    azure_server.reset()
    azure_server.page_size = 2
    azure_server.add_subscription(SUB)
    return azure_server


def _collector(
    sim: AzureSimulator, settings: CollectorSettings = FAST, **overrides: Any
) -> AzureCollector:
    raw: dict[str, Any] = {
        "name": NAME,
        "subscriptions": [SUB],
        "tenant_id": DEFAULT_TENANT,
        "client_id": DEFAULT_CLIENT_ID,
        "client_secret": DEFAULT_CLIENT_SECRET,
        "authority_host": sim.url,
        "base_url": sim.url,
        **overrides,
    }
    return AzureCollector(AzureCollectorConfig.model_validate(raw), settings=settings)


def _scope(account: str = SUB) -> Scope:
    return Scope(collector=NAME, vendor=Vendor.AZURE, account=account)


def _collect(collector: AzureCollector, account: str = SUB) -> list[Discovery]:
    return list(collector.collect(_scope(account)))


def _addresses(items: list[Discovery]) -> dict[str, tuple[str, str, tuple[tuple[str, str], ...]]]:
    return {str(a.ip): (a.region, a.resource, a.tags) for a in items if isinstance(a, Address)}


def _logged(sim: AzureSimulator, path: str, count: int) -> list[Request]:
    """GETs to ``path``, polled (bounded) until ``count`` are logged, in case the server
    records a request only after answering it."""
    return eventually(
        lambda: found if len(found := sim.requests_matching("GET", path)) >= count else [],
        f"{count} GETs of {path}",
    )


def _failure(collector: AzureCollector, account: str = SUB) -> CollectorError:
    with pytest.raises(CollectorError) as caught:
        _collect(collector, account)
    return caught.value


def test_collects_every_allocated_address_across_pages_and_locations(
    sim: AzureSimulator,
) -> None:
    sim.add_public_ip(SUB, "web1", ip="20.10.0.1", location="eastus", tags={"app": "web"})
    sim.add_public_ip(SUB, "web2", ip="20.10.0.2", location="East US", resource_group="prod")
    sim.add_public_ip(SUB, "eu", ip="51.105.0.7", location="westeurope")
    sim.add_public_ip(SUB, "v6", ip="2603:1030:20e::7", location="westus2")
    sim.add_public_ip(SUB, "pending", allocation_method="Dynamic", location="uksouth")
    sim.add_public_ip(SUB, "asia", ip="20.205.0.9", location="southeastasia")

    items = _collect(_collector(sim))

    assert {
        "20.10.0.1": ("eastus", "publicip/rg/web1", (("app", "web"),)),
        "20.10.0.2": ("eastus", "publicip/prod/web2", ()),
        "51.105.0.7": ("westeurope", "publicip/rg/eu", ()),
        "2603:1030:20e::7": ("westus2", "publicip/rg/v6", ()),
        "20.205.0.9": ("southeastasia", "publicip/rg/asia", ()),
    } == _addresses(items)
    assert 3 == len(_logged(sim, PIPS, 3))  # six resources, pages of two


def test_addresses_carry_scope_account_and_parsed_ips(sim: AzureSimulator) -> None:
    sim.add_public_ip(SUB, "v6", ip="2603:1030:20E:0::7", location="westus2")

    [address] = _collect(_collector(sim))

    assert (
        Address(
            ip=ipaddress.IPv6Address("2603:1030:20e::7"),
            vendor=Vendor.AZURE,
            region="westus2",
            collector=NAME,
            account=SUB,
            resource="publicip/rg/v6",
            scope_key=_scope().key,
        )
        == address
    )


def test_unallocated_address_is_skipped_with_its_resource_id(sim: AzureSimulator) -> None:
    rid = sim.add_public_ip(SUB, "pending", allocation_method="Dynamic", location="uksouth")

    [skip] = _collect(_collector(sim))

    assert isinstance(skip, Skip)
    assert ("publicip/rg/pending", SkipReason.UNALLOCATED, "uksouth") == (
        skip.subject,
        skip.reason,
        skip.region,
    )
    assert rid in skip.detail


def test_unparseable_address_is_skipped_as_invalid(sim: AzureSimulator) -> None:
    rid = sim.add_public_ip(SUB, "odd", ip="20.80.0.300", version="IPv4")

    [skip] = _collect(_collector(sim))

    assert isinstance(skip, Skip)
    assert ("publicip/rg/odd", SkipReason.INVALID_IP) == (skip.subject, skip.reason)
    assert rid in skip.detail


def test_global_tier_address_is_skipped_as_anycast(sim: AzureSimulator) -> None:
    sim.add_public_ip(SUB, "xlb", ip="20.30.0.1", sku_tier="Global", location="eastus")

    [skip] = _collect(_collector(sim))

    assert isinstance(skip, Skip)
    assert ("20.30.0.1", SkipReason.GLOBAL_ANYCAST) == (skip.subject, skip.reason)


def test_prefix_is_not_expanded_only_its_public_ip_resources_are_collected(
    sim: AzureSimulator,
) -> None:
    prefix = sim.add_prefix(SUB, "nat", prefix="20.40.0.0/30", location="northeurope")
    sim.add_public_ip(SUB, "member", ip="20.40.0.1", prefix_id=prefix, location="northeurope")

    items = _collect(_collector(sim))

    assert {"20.40.0.1"} == set(_addresses(items))
    [skip] = [i for i in items if isinstance(i, Skip)]
    assert ("20.40.0.0/30", SkipReason.PREFIX_NOT_EXPANDED) == (skip.subject, skip.reason)
    assert prefix
    assert "20.40.0.0/30" in skip.detail


def test_same_address_twice_in_a_subscription_is_reported_once(sim: AzureSimulator) -> None:
    sim.add_public_ip(SUB, "a", ip="20.50.0.1", resource_group="one")
    sim.add_public_ip(SUB, "a", ip="20.50.0.1", resource_group="two")

    assert 1 == len(_addresses(_collect(_collector(sim))))


def test_configured_subscriptions_are_the_scopes_without_any_call(sim: AzureSimulator) -> None:
    collector = _collector(sim, subscriptions=[SUB2, SUB, SUB2])

    assert [_scope(SUB2), _scope(SUB)] == list(collector.scopes())
    assert [] == sim.requests


def test_subscriptions_all_lists_active_ones_and_skips_disabled(sim: AzureSimulator) -> None:
    states = {SUB2: "Warned", SUB3: "Disabled"}
    for sub, state in states.items():
        sim.add_subscription(sub, state=state)
    sim.add_subscription("6f1c4b7e-0d8a-4a53-9d2e-000000000004", state="PastDue")
    sim.add_subscription("6f1c4b7e-0d8a-4a53-9d2e-000000000005", state="Deleted")

    scopes = list(_collector(sim, subscriptions="all").scopes())

    expected = [SUB, SUB2, "6f1c4b7e-0d8a-4a53-9d2e-000000000004"]
    assert expected == [s.account for s in scopes]
    assert 3 == len(_logged(sim, r"^/subscriptions$", 3))  # five, pages of two


def test_failing_subscription_is_recorded_while_the_others_succeed(sim: AzureSimulator) -> None:
    sim.add_subscription(SUB2, readable=False)
    sim.add_public_ip(SUB, "web", ip="20.60.0.1")
    collector = _collector(sim, subscriptions=[SUB, SUB2, SUB3])

    with ThreadPoolExecutor(4) as pool:
        inventory = runner.run([collector], executor=pool)

    outcomes = {o.scope.account: (o.status, o.reason) for o in inventory.scopes}
    assert {
        SUB: (ScopeStatus.OK, None),
        SUB2: (ScopeStatus.FAILED, "auth"),
        SUB3: (ScopeStatus.FAILED, "not_found"),
    } == outcomes
    assert ["20.60.0.1"] == [str(a.ip) for a in inventory.addresses]


def test_throttled_read_waits_for_retry_after_then_succeeds(sim: AzureSimulator) -> None:
    sim.add_public_ip(SUB, "web", ip="20.70.0.1")
    sim.throttle(times=1, retry_after=1, path=PIPS)

    started = time.monotonic()
    items = _collect(_collector(sim))
    elapsed = time.monotonic() - started

    assert ["20.70.0.1"] == list(_addresses(items))
    assert [429, 200] == [r.status for r in _logged(sim, PIPS, 2)]
    assert elapsed >= 1.0


def test_persistent_throttling_fails_the_scope_within_its_timeout(sim: AzureSimulator) -> None:
    sim.throttle(times=100, retry_after=1, path=PIPS)
    settings = CollectorSettings(scope_timeout=1.5, request_timeout=1.0, max_attempts=10)

    started = time.monotonic()
    error = _failure(_collector(sim, settings))
    elapsed = time.monotonic() - started

    assert ("throttled", True) == (error.reason, error.retryable)
    assert elapsed < 2.0
    assert 2 <= len(_logged(sim, PIPS, 2))


def test_always_failing_subscription_costs_about_the_scope_timeout(sim: AzureSimulator) -> None:
    sim.inject(Fault(status=503, times=1000, path=PIPS))
    settings = CollectorSettings(scope_timeout=2.0, request_timeout=1.0, max_attempts=100)

    started = time.monotonic()
    error = _failure(_collector(sim, settings))
    elapsed = time.monotonic() - started

    assert ("server_error", True) == (error.reason, error.retryable)
    assert elapsed < 2.0 + 0.5


def test_real_client_secret_credential_gets_its_token_from_the_authority(
    sim: AzureSimulator,
) -> None:
    _collect(_collector(sim))

    [token] = sim.requests_matching("POST", f"/{DEFAULT_TENANT}/oauth2/v2.0/token")
    assert 200 == token.status
    bearer = sim.requests_matching("GET", PIPS)[0].headers["authorization"]
    assert bearer.startswith("Bearer ")


def test_wrong_client_secret_fails_scopes_with_auth_and_no_secret(sim: AzureSimulator) -> None:
    wrong = "wrong-secret-9f8e7d"
    collector = _collector(sim, subscriptions="all", client_secret=wrong)

    with pytest.raises(CollectorError) as caught:
        list(collector.scopes())

    assert "auth" == caught.value.reason
    assert wrong not in str(caught.value)
    assert DEFAULT_CLIENT_SECRET not in str(caught.value)
    assert [] == sim.requests_matching("GET", r"^/subscriptions")


def test_secret_without_tenant_is_a_config_error(sim: AzureSimulator) -> None:
    with pytest.raises(ValidationError, match="need client_id and tenant_id"):
        _collector(sim, tenant_id=None)


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (Fault(status=401, body=b'{"error": {"code": "InvalidAuthenticationToken"}}'), "auth"),
        (Fault(status=403, body=b'{"error": {"code": "AuthorizationFailed"}}'), "auth"),
        (Fault(status=404, body=b'{"error": {"code": "SubscriptionNotFound"}}'), "not_found"),
        (Fault(status=429, headers={"Retry-After": "30"}), "throttled"),
        (Fault(status=500, times=10), "server_error"),
        (Fault(status=200, body=b"<html>not json</html>"), "malformed"),
        (Fault(drop=True, times=10), "unreachable"),
    ],
    ids=["401", "403", "404", "429", "500", "malformed", "dropped"],
)
def test_no_azure_exception_escapes(sim: AzureSimulator, fault: Fault, reason: str) -> None:
    fault.path = PIPS
    sim.inject(fault)
    settings = CollectorSettings(scope_timeout=1.0, request_timeout=0.3, max_attempts=2)

    error = _failure(_collector(sim, settings))

    assert reason == error.reason
    assert not isinstance(error, AzureError)
    assert isinstance(error.__cause__, AzureError)


def test_unanswered_reads_fail_the_scope_as_timeout_within_its_timeout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Its own simulator: the delayed answers finish after the test, and must not land in the
    # shared simulator's request log.
    silent = AzureSimulator()
    silent.add_subscription(SUB)
    silent.inject(Fault(drop=True, delay=3.0, times=5, path=PIPS))  # hangs, never answers
    settings = CollectorSettings(scope_timeout=1.0, request_timeout=0.7, max_attempts=3)
    with silent:
        monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(silent.ca_file))
        started = time.monotonic()
        error = _failure(_collector(silent, settings))
        elapsed = time.monotonic() - started

    assert ("timeout", True) == (error.reason, error.retryable)
    # Two attempts: 0.7 s, then the 0.3 s the scope has left, not another 0.7 s.
    assert elapsed < 1.3


def test_missing_client_certificate_is_a_config_failure(sim: AzureSimulator) -> None:
    collector = _collector(
        sim, client_secret=None, client_certificate_path="/nonexistent/syncd-test.pem"
    )

    assert "config" == _failure(collector).reason


def test_unreachable_arm_endpoint_is_reported_as_unreachable(sim: AzureSimulator) -> None:
    settings = CollectorSettings(scope_timeout=1.0, request_timeout=0.5, max_attempts=2)
    collector = _collector(sim, settings, base_url=f"https://127.0.0.1:{_closed_port()}")

    assert "unreachable" == _failure(collector).reason
