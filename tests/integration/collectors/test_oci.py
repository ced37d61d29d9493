"""The OCI collector: the real oci SDK over HTTP to the OCI simulator, which serves two regions on
one port and verifies every request's RSA signature against the key it registered."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from syncd.config import OciCollectorConfig
from syncd.model import Address, Reason, RunResult, Scope, ScopeStatus, Skip, SkipReason, Vendor
from syncd.run import once as sync
from syncd.simulators.base import Fault
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.simulators.oci import OciSimulator, oci_fault
from syncd.sources.collectors.base import CollectorSettings, Discovery
from syncd.sources.collectors.failures import CollectorError
from syncd.sources.collectors.oci import OciCollector
from syncd.sources.collectors.runner import run
from tests.conftest import ZONE, settings_for
from tests.integration.conftest import OCI_TENANCY

TENANCY = OCI_TENANCY
PARENT = "ocid1.compartment.oc1..aaaaaaaaparent"
CHILD = "ocid1.compartment.oc1..aaaaaaaachild"
GRANDCHILD = "ocid1.compartment.oc1..aaaaaaaagrandchild"  # empty; failed on purpose below
DELETED = "ocid1.compartment.oc1..aaaaaaaadeleted"
ASHBURN = "us-ashburn-1"
PHOENIX = "us-phoenix-1"
SETTINGS = CollectorSettings(scope_timeout=5.0, request_timeout=2.0, max_attempts=3)
RESERVED = [f"192.0.2.{i}" for i in range(1, 6)]  # five: three pages of two

# (ip, region, compartment, resource kind) of every address the seeded tenancy holds.
EXPECTED = {
    *((ip, ASHBURN, CHILD, "publicip") for ip in RESERVED),
    ("198.51.100.7", ASHBURN, CHILD, "publicip"),  # ephemeral, on a NAT gateway (REGION)
    ("203.0.113.10", PHOENIX, PARENT, "publicip"),  # ephemeral on a VNIC, AD-1
    ("203.0.113.11", PHOENIX, PARENT, "publicip"),  # ephemeral on a VNIC, AD-3
    ("203.0.113.20", PHOENIX, TENANCY, "publicip"),  # reserved in the root compartment
    ("2001:db8:10::5", ASHBURN, PARENT, "ipv6"),
    ("2001:db8:10::6", ASHBURN, PARENT, "ipv6"),
    ("2001:db8:20::7", PHOENIX, CHILD, "ipv6"),
}


def seed(sim: OciSimulator) -> None:
    sim.add_region(ASHBURN, "IAD")
    sim.add_region(PHOENIX, "PHX")
    sim.subscribe(TENANCY, ASHBURN)
    sim.subscribe(TENANCY, PHOENIX)
    sim.add_compartment(PARENT, TENANCY)
    sim.add_compartment(CHILD, PARENT)
    sim.add_compartment(GRANDCHILD, CHILD)
    sim.add_compartment(DELETED, PARENT, "DELETED")
    for ip in RESERVED:
        sim.add_public_ip(ASHBURN, CHILD, ip, freeform_tags={"team": "edge"})
    sim.add_public_ip(ASHBURN, CHILD, "198.51.100.7", lifetime="EPHEMERAL")
    phx_ads = sim.availability_domains(PHOENIX)
    for ip, ad in (("203.0.113.10", phx_ads[0]), ("203.0.113.11", phx_ads[2])):
        sim.add_public_ip(
            PHOENIX, PARENT, ip, lifetime="EPHEMERAL", scope="AVAILABILITY_DOMAIN", ad=ad
        )
    sim.add_public_ip(PHOENIX, TENANCY, "203.0.113.20")
    sim.add_public_ip(PHOENIX, TENANCY, "203.0.113.99", state="TERMINATED")
    sim.add_public_ip(ASHBURN, DELETED, "192.0.2.200")  # never listed: compartment not ACTIVE
    v6 = sim.add_subnet(ASHBURN, PARENT, ["2001:db8:10::/64"])
    sim.add_ipv6(ASHBURN, v6, "2001:db8:10::5", {"app": "web"})
    sim.add_ipv6(ASHBURN, v6, "2001:db8:10::6")
    sim.add_subnet(ASHBURN, PARENT)  # IPv4 only: no IPv6 list call
    private = sim.add_subnet(PHOENIX, CHILD, ["2001:db8:30::/64"], prohibit_internet_ingress=True)
    sim.add_ipv6(PHOENIX, private, "2001:db8:30::1")
    sim.add_ipv6(PHOENIX, sim.add_subnet(PHOENIX, CHILD, ["2001:db8:20::/64"]), "2001:db8:20::7")


@pytest.fixture(scope="module")
def server(oci_server: OciSimulator) -> OciSimulator:
    """Two regions, nested compartments, pages of two items, on 127.0.0.1:<ephemeral>."""
    seed(oci_server)
    return oci_server


@pytest.fixture(scope="module")
def credentials(server: OciSimulator, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An OCI config file and profile whose API key the simulator knows (one RSA key per module)."""
    return server.write_config(tmp_path_factory.mktemp("oci"), region=ASHBURN)


@pytest.fixture
def sim(server: OciSimulator) -> Iterator[OciSimulator]:
    """The shared simulator with no faults, denials, latency or logged requests."""
    yield server
    server.clear_faults()
    server.clear_denied()
    server.clear_requests()
    server.latency = 0.0


Build = Callable[..., OciCollector]


@pytest.fixture
def build(sim: OciSimulator, credentials: tuple[Path, str]) -> Build:
    """``build(settings=SETTINGS, **config)``: a collector aimed at the simulator."""

    def make(settings: CollectorSettings = SETTINGS, **cfg: Any) -> OciCollector:
        config = OciCollectorConfig(
            name="oci",
            config_file=credentials[0],
            profile=credentials[1],
            service_endpoint_template=sim.endpoint_template(),
            **cfg,
        )
        return OciCollector(config, settings=settings)

    return make


def scope(compartment: str, region: str) -> Scope:
    return Scope(collector="oci", vendor=Vendor.OCI, account=compartment, region=region)


def found(items: list[Discovery]) -> set[tuple[str, str, str, str]]:
    return {
        (str(a.ip), a.region, a.account, a.resource.split("/", 1)[0])
        for a in items
        if isinstance(a, Address)
    }


def collect_all(col: OciCollector) -> list[Discovery]:
    return [item for s in col.scopes() for item in col.collect(s)]


def test_every_compartment_and_region_is_collected(sim: OciSimulator, build: Build):
    col = build()
    scopes = list(col.scopes())
    compartments = (TENANCY, PARENT, CHILD, GRANDCHILD)
    assert {(c, r) for c in compartments for r in (ASHBURN, PHOENIX)} == {
        (s.account, s.region) for s in scopes
    }
    items = collect_all(col)
    assert EXPECTED == found(items)
    by_ip = {str(a.ip): a for a in items if isinstance(a, Address)}
    assert (("team", "edge"),) == by_ip["192.0.2.1"].tags
    assert (("app", "web"),) == by_ip["2001:db8:10::5"].tags
    assert f"oci/{CHILD}/{ASHBURN}" == str(by_ip["192.0.2.1"].scope_key)
    assert by_ip["192.0.2.1"].resource.startswith("publicip/ocid1.publicip.oc1.iad.")


def test_sync_maps_every_oci_address_in_cloudflare(
    sim: OciSimulator, credentials: tuple[Path, str], cf: CloudflareSimulator, tmp_path: Path
):
    """End to end: ``run_once`` with an OCI collector, against both simulators."""
    oci = {
        "name": "oci",
        "config_file": str(credentials[0]),
        "profile": credentials[1],
        "service_endpoint_template": sim.endpoint_template(),
    }
    report = sync.run_once(settings_for(cf, tmp_path, collectors={"oci": [oci]}))
    assert RunResult.SUCCESS == report.result
    assert {ip: ("oci", region) for ip, region, _, _ in EXPECTED} == cf.mappings(ZONE)


def test_released_ips_and_private_subnets_are_skipped(sim: OciSimulator, build: Build):
    skips = [s for s in collect_all(build()) if isinstance(s, Skip)]
    assert {("203.0.113.99", SkipReason.UNALLOCATED), ("subnet", SkipReason.NON_PUBLIC)} == {
        (s.subject.split("/", 1)[0], s.reason) for s in skips
    }
    assert 2 == len(sim.requests_matching(path="/ipv6$"))  # the private subnet is not asked


def test_lists_follow_opc_next_page(sim: OciSimulator, build: Build):
    col = build()
    items = list(col.collect(scope(CHILD, ASHBURN)))
    assert 6 == len([a for a in items if isinstance(a, Address)])
    pages = [
        r.param("page")
        for r in sim.requests_matching(path="/publicIps$")
        if r.param("scope") == "REGION"
    ]
    assert 3 == len(pages)  # six REGION-scoped IPs in pages of two
    assert [None] == pages[:1]
    assert None not in pages[1:]


def test_ephemeral_vnic_ips_are_asked_per_availability_domain(sim: OciSimulator, build: Build):
    list(build().collect(scope(PARENT, PHOENIX)))
    ad_calls = [
        (r.param("availabilityDomain"), r.param("lifetime"))
        for r in sim.requests_matching(path="/publicIps$")
        if r.param("scope") == "AVAILABILITY_DOMAIN"
    ]
    assert [(ad, "EPHEMERAL") for ad in sim.availability_domains(PHOENIX)] == ad_calls


def test_configured_lists_are_not_discovered(sim: OciSimulator, build: Build):
    col = build(compartments=(CHILD,), regions=(PHOENIX,))
    assert [scope(CHILD, PHOENIX)] == list(col.scopes())
    assert [] == sim.requests_matching(path="/regionSubscriptions$")
    assert [] == sim.requests_matching(path="/compartments$")


def test_one_failing_compartment_leaves_the_others_complete(sim: OciSimulator, build: Build):
    sim.deny_compartment(CHILD)
    with ThreadPoolExecutor(max_workers=4) as pool:
        inventory = run([build()], executor=pool)
    outcomes = {(o.scope.account, o.scope.region): o for o in inventory.scopes}
    assert {(CHILD, ASHBURN), (CHILD, PHOENIX)} == {
        k for k, o in outcomes.items() if o.status is ScopeStatus.FAILED
    }
    assert {"auth"} == {outcomes[(CHILD, r)].reason for r in (ASHBURN, PHOENIX)}
    assert {e for e in EXPECTED if e[2] != CHILD} == found(list(inventory.addresses))


def test_throttling_is_retried_by_the_sdk(sim: OciSimulator, build: Build):
    sim.inject(oci_fault(429, "TooManyRequests", times=2, path="/publicIps$"))
    items = list(build().collect(scope(CHILD, ASHBURN)))
    assert 6 == len([a for a in items if isinstance(a, Address)])
    assert [429, 429, 200] == [r.status for r in sim.requests_matching(path="/publicIps$")][:3]


def test_unregistered_key_fails_with_auth(sim: OciSimulator, tmp_path: Path):
    config_file, profile = sim.write_config(tmp_path, register=False)
    cfg = OciCollectorConfig(
        name="oci",
        config_file=config_file,
        profile=profile,
        service_endpoint_template=sim.endpoint_template(),
    )
    col = OciCollector(cfg, settings=SETTINGS)
    with pytest.raises(CollectorError) as listing:
        list(col.scopes())
    with pytest.raises(CollectorError) as collecting:
        list(col.collect(scope(CHILD, ASHBURN)))
    assert ("auth", "auth") == (listing.value.reason, collecting.value.reason)
    assert 2 == len(sim.requests)  # a refused signature is not retried


def test_missing_config_file_fails_with_auth(tmp_path: Path):
    cfg = OciCollectorConfig(name="oci", config_file=tmp_path / "absent", profile="DEFAULT")
    with pytest.raises(CollectorError) as caught:
        list(OciCollector(cfg, settings=SETTINGS).scopes())
    assert "auth" == caught.value.reason


FAST = CollectorSettings(scope_timeout=1.0, request_timeout=0.5, max_attempts=3)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (oci_fault(400, "InvalidParameter"), "error"),
        (oci_fault(401, "NotAuthenticated"), "auth"),
        (oci_fault(404, "NotAuthorizedOrNotFound"), "auth"),
        (oci_fault(404, "NotFound"), "not_found"),
        (oci_fault(429, "TooManyRequests", times=100), "throttled"),
        (oci_fault(500, "InternalServerError", times=100), "server_error"),
        (Fault(status=200, body=b"<html>maintenance</html>"), "malformed"),
        (Fault(status=200, body=b'[{"id": "x", "ipAddress": 7}]'), "malformed"),
        (
            Fault(status=200, body=b'[{"id": "x", "ipAddress": "1.2.3.4", "freeformTags": 3}]'),
            "malformed",
        ),
        (Fault(drop=True, times=100), "unreachable"),
        (Fault(status=200, body=b"[]", delay=1.5, times=100), "timeout"),
    ],
)
def test_no_oci_exception_escapes(sim: OciSimulator, build: Build, fault: Fault, reason: str):
    """Every failure comes out as a CollectorError with a bounded reason, caused by the SDK's."""
    sim.inject(dataclasses.replace(fault, path="/publicIps$"))
    with pytest.raises(CollectorError) as caught:
        list(build(FAST).collect(scope(CHILD, ASHBURN)))
    assert reason == caught.value.reason
    assert type(caught.value) is CollectorError
    assert CHILD in str(caught.value)


def test_slow_answers_exhaust_the_scope_budget(sim: OciSimulator, build: Build):
    sim.latency = 0.3
    settings = CollectorSettings(scope_timeout=0.5, request_timeout=2.0, max_attempts=3)
    with pytest.raises(CollectorError) as caught:
        list(build(settings).collect(scope(CHILD, ASHBURN)))
    assert "timeout" == caught.value.reason


@pytest.mark.parametrize(("failure", "max_attempts"), [("500", 5), ("500", 100), ("hang", 100)])
def test_always_failing_compartment_costs_at_most_scope_timeout(
    sim: OciSimulator, build: Build, failure: str, max_attempts: int
):
    """Every call to the compartment answers 500, or never answers: the SDK retries until
    max_attempts or the scope's time runs out, and a healthy scope still succeeds after it."""
    # A compartment no other test touches: a late answer from another test's slow request
    # must not be counted as an attempt here.
    if failure == "500":
        sim.deny_compartment(GRANDCHILD, status=500, code="InternalServerError")
    else:
        # Status 200: the client has given up long before, and a late 500 in the request
        # log would look like an attempt of the next test.
        sim.inject(Fault(status=200, body=b"[]", delay=3.0, times=100, path="/publicIps$"))
    settings = CollectorSettings(scope_timeout=2.0, request_timeout=0.5, max_attempts=max_attempts)
    col = build(settings)
    start = time.monotonic()
    with pytest.raises(CollectorError) as caught:
        list(col.collect(scope(GRANDCHILD, ASHBURN)))
    elapsed = time.monotonic() - start
    sim.clear_faults()
    # With the SDK's default circuit breaker, ten failures would have opened it for every client.
    assert found(list(col.collect(scope(PARENT, ASHBURN))))
    print(f"\n{failure}, max_attempts={max_attempts}: the scope cost {elapsed:.2f}s")
    assert elapsed <= settings.scope_timeout + 0.5  # the margin is scheduling, not retries
    if failure == "500":
        assert "server_error" == caught.value.reason
        failed = [
            r
            for r in sim.requests_matching(path="/publicIps$")
            if r.param("compartmentId") == GRANDCHILD
        ]
        assert 1 < len(failed) <= max_attempts
    else:  # a request the client gave up on is logged only when its answer is due
        assert "timeout" == caught.value.reason


@pytest.mark.parametrize("auth", ["oke_workload_identity", "resource_principal"])
def test_a_principal_the_environment_does_not_provide_fails_as_auth_naming_it(
    auth: str, monkeypatch: pytest.MonkeyPatch
):
    # The real SDK's signers, outside a pod (no KUBERNETES_SERVICE_HOST, no service account
    # token) or a function (no OCI_RESOURCE_PRINCIPAL_* variables): one clear auth failure.
    # On OKE the signer fetches a session token from the cluster's proxymux on a fixed port
    # (12250), which a test cannot serve on an ephemeral port; the config and this wiring are
    # what is tested here (docs/collectors/oci.md).
    for var in ("KUBERNETES_SERVICE_HOST", "OCI_RESOURCE_PRINCIPAL_VERSION"):
        monkeypatch.delenv(var, raising=False)
    cfg = OciCollectorConfig(name="oke", auth=auth, compartments=("ocid1.c",), regions=("r",))
    col = OciCollector(cfg, settings=SETTINGS)
    with pytest.raises(CollectorError) as failed:
        list(col.scopes())
    assert Reason.AUTH == failed.value.reason
    assert f"auth {auth} is not available in this environment" in str(failed.value)
