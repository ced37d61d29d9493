"""Every collector fed arbitrary answers by its API: a result or a CollectorError, nothing else.

hypothesis draws the bodies; each is served over real HTTP to the real SDK, so the SDK's own
parsing and our translation of its records are both under test.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from syncd.demo import Estate, estate
from syncd.model import Address, Skip
from syncd.simulators.base import Fault, Request, Response, SimulatorServer
from syncd.sources import collectors
from syncd.sources.collectors.base import CollectorSettings
from syncd.sources.collectors.failures import CollectorError

FAST = CollectorSettings(scope_timeout=5, request_timeout=2, max_attempts=1)
KEYS = [
    "value",
    "items",
    "nextLink",
    "nextPageToken",
    "properties",
    "ipAddress",
    "address",
    "ipVersion",
    "addressType",
    "location",
    "id",
    "name",
    "natIP",
    "networkInterfaces",
    "accessConfigs",
    "ip-address",
    "lifetime",
    "regions/us-central1",
    "warning",
    "sku",
]
json_bodies = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=10)
    | st.sampled_from(["198.51.100.1", "2001:db8::1", "EXTERNAL", "IPV6", "eastus", "Static"]),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4)
    ),
    max_leaves=15,
).map(lambda v: json.dumps(v).encode())
bodies = st.one_of(json_bodies, st.binary(max_size=40))
FUZZ = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture(scope="module")
def demo() -> Iterator[Estate]:
    with estate() as e:
        yield e


def _collect_all(collector) -> list[Address | Skip]:
    found: list[Address | Skip] = []
    for scope in collector.scopes():
        found += collector.collect(scope)
    return found


@pytest.mark.parametrize(
    ("vendor", "path"),
    [
        ("gcp", "/aggregated/instances$"),
        ("azure", "/publicIPAddresses$"),
        ("oci", "/publicIps$"),
    ],
)
@FUZZ
@given(body=bodies, status=st.sampled_from([200, 200, 400, 404, 500]))
def test_arbitrary_answers_are_results_or_collector_errors(demo, vendor, path, body, status):
    sim = {"gcp": demo.gcp, "azure": demo.azure, "oci": demo.oci}[vendor]
    cfg = getattr(demo.settings().collectors, vendor)
    (collector,) = collectors.build(
        type(demo.settings().collectors)(**{vendor: cfg}), settings=FAST
    )
    sim.clear_faults()
    sim.inject(
        Fault(
            status=status,
            body=body,
            headers={"Content-Type": "application/json"},
            path=path,
            times=1000,
        )
    )
    try:
        found = _collect_all(collector)
    except CollectorError:
        return
    finally:
        sim.clear_faults()
    assert all(isinstance(item, Address | Skip) for item in found)


class _Ec2Answers(SimulatorServer):
    """An EC2 endpoint that answers every call with the body under test."""

    body = b""
    status = 200

    def handle(self, request: Request) -> Response:
        return Response(self.status, self.body, {"Content-Type": "text/xml"})


xml_bodies = st.one_of(
    st.binary(max_size=60),
    st.builds(
        lambda tag, inner: (
            f"<{tag}Response><addressesSet><item><publicIp>{inner}</publicIp>"
            f"</item></addressesSet></{tag}Response>".encode()
        ),
        st.sampled_from(["DescribeAddresses", "DescribeNetworkInterfaces", "Error"]),
        st.text(alphabet="0123456789.:abcdef<>/", max_size=20),
    ),
)


@FUZZ
@given(body=xml_bodies, status=st.sampled_from([200, 400, 500, 503]))
def test_aws_arbitrary_answers_are_results_or_collector_errors(monkeypatch, body, status):
    from syncd.config import AwsCollectorConfig
    from syncd.model import Scope, Vendor
    from syncd.sources.collectors.aws import AwsCollector

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "fuzz")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "fuzz")
    with _Ec2Answers() as ec2:
        ec2.body, ec2.status = body, status
        cfg = AwsCollectorConfig(name="aws", regions=("us-east-1",), endpoint_url=ec2.url)
        scope = Scope(
            collector="aws", vendor=Vendor.AWS, account="123456789012", region="us-east-1"
        )
        try:
            found = list(AwsCollector(cfg, settings=FAST).collect(scope))
        except CollectorError:
            return
    assert all(isinstance(item, Address | Skip) for item in found)
