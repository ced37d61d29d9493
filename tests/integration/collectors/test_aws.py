"""AwsCollector driving the real botocore over loopback HTTP.

moto's ThreadedMotoServer holds the estate (one server for the module, reset between tests). A
small stdlib stand-in for the EC2 query API sits in front of it where moto cannot help: it answers
chosen (region, action) pairs with throttling, errors, slow or paged responses, and forwards the
rest to moto.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.client import HTTPConnection
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import botocore.exceptions
import pytest
from moto.server import ThreadedMotoServer

from syncd.config import AwsCollectorConfig, AwsOrganization
from syncd.model import Address, Scope, ScopeStatus, Skip, SkipReason, Vendor
from syncd.sources.collectors import runner
from syncd.sources.collectors.aws import AwsCollector
from syncd.sources.collectors.base import CollectorSettings
from syncd.sources.collectors.failures import CollectorError, ScopeDenied

BASE_ACCOUNT = "123456789012"  # moto's account for the plain test credentials
OTHER_ACCOUNT = "111122223333"
FAST = CollectorSettings(max_attempts=2, request_timeout=5.0, scope_timeout=20.0)
ONCE = CollectorSettings(max_attempts=1, request_timeout=5.0, scope_timeout=20.0)
NS = 'xmlns="http://ec2.amazonaws.com/doc/2016-11-15/"'
AMI = "ami-03cf127a"  # one of moto's images; describe_images would cost a second per test
FORWARD = None  # a canned "answer" that passes the request on to moto


# --- servers -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def moto() -> Iterator[str]:
    """moto in server mode on 127.0.0.1:<ephemeral>; one per module."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def aws_env(moto: str, monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    """Test credentials only, nothing from the host's AWS set-up, and a clean moto."""
    for var in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ENDPOINT_URL",
        "AWS_MAX_ATTEMPTS",
        "AWS_RETRY_MODE",
        "AWS_REGION",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never reach for 169.254.169.254
    # moto's state is per process: another module's moto may have left some behind.
    urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST"))
    try:
        yield
    finally:
        urllib.request.urlopen(urllib.request.Request(f"{moto}/moto-api/reset", method="POST"))


@dataclass
class Hit:
    region: str
    action: str
    params: dict[str, str]


@dataclass
class Ec2Stub:
    """EC2 query API stand-in: canned answers per (region, action), the rest forwarded."""

    upstream: str
    canned: dict[tuple[str, str], list[tuple[int, str] | None]] = field(default_factory=dict)
    delay: float = 0.0
    hits: list[Hit] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def answer(self, region: str, action: str, *responses: tuple[int, str] | None) -> None:
        """Answer in this order (None: forward to moto); the last answer repeats. Region "*"
        matches any region."""
        self.canned[(region, action)] = list(responses)

    def count(self, region: str, action: str) -> int:
        return sum(1 for h in self.hits if (h.region, h.action) == (region, action))

    def respond(self, region: str, action: str) -> tuple[int, str] | None:
        queue = self.canned.get((region, action)) or self.canned.get(("*", action)) or [FORWARD]
        return queue.pop(0) if len(queue) > 1 else queue[0]


def _handler(stub: Ec2Stub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            scope = re.search(r"Credential=[^/]+/\d{8}/([^/]+)/", self.headers["Authorization"])
            region = scope.group(1) if scope else ""
            params = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            action = params.get("Action", self.headers.get("X-Amz-Target", ""))
            stub.hits.append(Hit(region, action, params))
            if stub.delay:
                stub.stopping.wait(stub.delay)
            canned = stub.respond(region, action)
            if canned is None:
                self._forward(body)
            else:
                status, text = canned
                kind = "application/x-amz-json-1.1" if text.startswith("{") else "text/xml"
                self._send(status, text.encode(), kind)

        def _forward(self, body: bytes) -> None:
            up = urlsplit(stub.upstream)
            conn = HTTPConnection(up.hostname or "", up.port, timeout=10)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "host"}
            conn.request("POST", self.path, body=body, headers=headers)
            resp = conn.getresponse()
            self._send(resp.status, resp.read(), resp.getheader("Content-Type", "text/xml"))
            conn.close()

        def _send(self, status: int, payload: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

    return Handler


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up on a slow answer closed its socket: expected here."""


@pytest.fixture
def stub(moto: str) -> Iterator[Ec2Stub]:
    ec2 = Ec2Stub(upstream=moto)
    server = _QuietServer(("127.0.0.1", 0), _handler(ec2))
    thread = threading.Thread(target=server.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        ec2.url = f"http://127.0.0.1:{server.server_address[1]}"
        yield ec2
    finally:
        ec2.stopping.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def error_xml(code: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error>'
        f"<Code>{code}</Code><Message>stub says {code}</Message></Error></Errors>"
        "<RequestID>11111111-2222-3333-4444-555555555555</RequestID></Response>"
    )


def regions_xml(statuses: dict[str, str]) -> str:
    items = "".join(
        f"<item><regionName>{name}</regionName><regionEndpoint>ec2.{name}.amazonaws.com"
        f"</regionEndpoint><optInStatus>{status}</optInStatus></item>"
        for name, status in statuses.items()
    )
    return (
        f"<DescribeRegionsResponse {NS}><requestId>r-1</requestId>"
        f"<regionInfo>{items}</regionInfo></DescribeRegionsResponse>"
    )


THROTTLED = (503, error_xml("RequestLimitExceeded"))


# --- building the estate in moto ---------------------------------------------------------------


def client(moto: str, service: str, region: str = "us-east-1", **creds: str) -> Any:
    """A boto3 client for setting up the estate (untyped: the service name is a variable)."""
    make: Any = boto3.client
    return make(service, region_name=region, endpoint_url=moto, **creds)


def assumed(moto: str, account: str, role: str = "SyncdReader") -> dict[str, str]:
    """Credentials moto maps to ``account``."""
    arn = f"arn:aws:iam::{account}:role/{role}"
    creds = client(moto, "sts").assume_role(RoleArn=arn, RoleSessionName="setup")["Credentials"]
    return {
        "aws_access_key_id": creds["AccessKeyId"],
        "aws_secret_access_key": creds["SecretAccessKey"],
        "aws_session_token": creds["SessionToken"],
    }


def eip(ec2: Any, ip: str, **tags: str) -> str:
    spec = [
        {"ResourceType": "elastic-ip", "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}
    ]
    kwargs = {"TagSpecifications": spec} if tags else {}
    return str(ec2.allocate_address(Domain="vpc", Address=ip, **kwargs)["AllocationId"])


def build_estate(moto: str) -> dict[str, tuple[str, str, tuple[tuple[str, str], ...]]]:
    """Two regions of one account; returns ip -> (region, resource, tags) that must be found."""
    ec2 = client(moto, "ec2", "us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16", AmazonProvidedIpv6CidrBlock=True)["Vpc"]
    v6net = vpc["Ipv6CidrBlockAssociationSet"][0]["Ipv6CidrBlock"].replace("/56", "/64")
    subnet = ec2.create_subnet(VpcId=vpc["VpcId"], CidrBlock="10.0.1.0/24", Ipv6CidrBlock=v6net)
    subnet_id = subnet["Subnet"]["SubnetId"]
    ec2.modify_subnet_attribute(SubnetId=subnet_id, MapPublicIpOnLaunch={"Value": True})
    web, worker = ec2.run_instances(ImageId=AMI, MinCount=2, MaxCount=2, SubnetId=subnet_id)[
        "Instances"
    ]
    web_eip = eip(ec2, "203.0.113.10")
    ec2.associate_address(AllocationId=web_eip, InstanceId=web["InstanceId"])
    worker_eni = worker["NetworkInterfaces"][0]["NetworkInterfaceId"]
    worker_ip = ec2.describe_instances(InstanceIds=[worker["InstanceId"]])["Reservations"][0][
        "Instances"
    ][0]["PublicIpAddress"]
    v6 = ec2.create_network_interface(
        SubnetId=subnet_id,
        Ipv6AddressCount=1,
        TagSpecifications=[
            {"ResourceType": "network-interface", "Tags": [{"Key": "role", "Value": "v6"}]}
        ],
    )["NetworkInterface"]
    v6_eip = eip(ec2, "203.0.113.11", name="v6-front")
    ec2.associate_address(AllocationId=v6_eip, NetworkInterfaceId=v6["NetworkInterfaceId"])
    nat_eip = eip(ec2, "203.0.113.12")
    ec2.create_nat_gateway(SubnetId=subnet_id, AllocationId=nat_eip)
    spare_eip = eip(ec2, "203.0.113.13", team="edge")
    ec2.create_network_interface(SubnetId=subnet_id)  # private only: contributes nothing
    eu_eip = eip(client(moto, "ec2", "eu-west-1"), "198.51.100.20", Name="eu")
    return {
        "203.0.113.10": ("us-east-1", f"eip/{web_eip}", ()),
        worker_ip: ("us-east-1", f"eni/{worker_eni}", ()),
        "203.0.113.11": ("us-east-1", f"eip/{v6_eip}", (("name", "v6-front"),)),
        v6["Ipv6Addresses"][0]["Ipv6Address"]: (
            "us-east-1",
            f"eni/{v6['NetworkInterfaceId']}",
            (("role", "v6"),),
        ),
        "203.0.113.12": ("us-east-1", f"eip/{nat_eip}", ()),
        "203.0.113.13": ("us-east-1", f"eip/{spare_eip}", (("team", "edge"),)),
        "198.51.100.20": ("eu-west-1", f"eip/{eu_eip}", (("Name", "eu"),)),
    }


def collector(endpoint: str, settings: CollectorSettings = FAST, **cfg: Any) -> AwsCollector:
    config = AwsCollectorConfig.model_validate(
        {"name": "aws:test", "endpoint_url": endpoint, **cfg}
    )
    return AwsCollector(config, settings=settings)


def scope(region: str, account: str = BASE_ACCOUNT) -> Scope:
    return Scope(collector="aws:test", vendor=Vendor.AWS, account=account, region=region)


def everything(aws: AwsCollector) -> list[Address]:
    return [a for s in aws.scopes() for a in aws.collect(s) if isinstance(a, Address)]


def failure(aws: AwsCollector, where: Scope) -> CollectorError:
    """The error collect() raised; it must be ours, never botocore's."""
    with pytest.raises(CollectorError) as info:
        list(aws.collect(where))
    assert not isinstance(
        info.value, botocore.exceptions.BotoCoreError | botocore.exceptions.ClientError
    )
    return info.value


# --- what is found -----------------------------------------------------------------------------


def test_finds_eips_instances_ipv6_and_nat_once_each(moto: str):
    """An EIP seen again on its ENI (instance, ENI, NAT gateway) is one address, kept as the EIP."""
    expected = build_estate(moto)
    aws = collector(moto, regions=["us-east-1", "eu-west-1"])

    found = everything(aws)

    assert expected == {str(a.ip): (a.region, a.resource, a.tags) for a in found}
    assert len(expected) == len(found)
    assert {BASE_ACCOUNT} == {a.account for a in found}
    assert {(Vendor.AWS, "aws:test")} == {(a.vendor, a.collector) for a in found}
    assert all(str(a.scope_key) == f"aws:test/{BASE_ACCOUNT}/{a.region}" for a in found)


def test_explicit_regions_are_scanned_in_the_order_given(moto: str):
    aws = collector(moto, regions=["eu-west-1", "us-east-1", "eu-west-1"])
    assert [scope("eu-west-1"), scope("us-east-1")] == list(aws.scopes())


def test_all_regions_are_the_enabled_ones(moto: str):
    """regions: all keeps opt-in-not-required and opted-in, never not-opted-in."""
    listed = client(moto, "ec2").describe_regions(AllRegions=True)["Regions"]
    enabled = sorted(r["RegionName"] for r in listed if r["OptInStatus"] != "not-opted-in")
    assert "ap-east-1" not in enabled  # moto reports it not-opted-in

    assert [scope(r) for r in enabled] == list(collector(moto).scopes())


def test_all_regions_follow_the_opt_in_status(stub: Ec2Stub):
    stub.answer(
        "us-east-1",
        "DescribeRegions",
        (
            200,
            regions_xml(
                {
                    "us-east-1": "opt-in-not-required",
                    "af-south-1": "opted-in",
                    "ap-east-1": "not-opted-in",
                }
            ),
        ),
    )
    assert [scope("af-south-1"), scope("us-east-1")] == list(collector(stub.url).scopes())


def test_role_arn_reads_the_assumed_account_only(moto: str):
    eip(client(moto, "ec2"), "203.0.113.50")
    eip(client(moto, "ec2", **assumed(moto, OTHER_ACCOUNT)), "198.51.100.50")
    aws = collector(
        moto,
        role_arn=f"arn:aws:iam::{OTHER_ACCOUNT}:role/SyncdReader",
        external_id="ext-0123",
        regions=["us-east-1"],
    )

    assert [scope("us-east-1", OTHER_ACCOUNT)] == list(aws.scopes())
    assert [("198.51.100.50", OTHER_ACCOUNT)] == [(str(a.ip), a.account) for a in everything(aws)]


def test_organization_scans_every_active_account(moto: str):
    org = client(moto, "organizations")
    org.create_organization(FeatureSet="ALL")
    members = [
        org.create_account(Email=f"{n}@example.com", AccountName=n)["CreateAccountStatus"][
            "AccountId"
        ]
        for n in ("alpha", "beta", "gone")
    ]
    org.close_account(AccountId=members[2])  # SUSPENDED: not scanned
    for index, account in enumerate(members):
        ec2 = client(moto, "ec2", "eu-west-1", **assumed(moto, account, "OrgReader"))
        eip(ec2, f"198.51.100.{60 + index}")
    eip(client(moto, "ec2", "eu-west-1"), "203.0.113.60")  # the management account, excluded
    aws = collector(
        moto,
        organization={"role_name": "OrgReader", "exclude": [BASE_ACCOUNT]},
        regions=["eu-west-1"],
    )

    assert sorted(members[:2]) == [s.account for s in aws.scopes()]
    assert {("198.51.100.60", members[0]), ("198.51.100.61", members[1])} == {
        (str(a.ip), a.account) for a in everything(aws)
    }


def test_organization_regions_come_from_the_hub_account(moto: str):
    client(moto, "organizations").create_organization(FeatureSet="ALL")
    aws = collector(moto, organization=AwsOrganization(role_name="OrgReader").model_dump())
    scopes = list(aws.scopes())
    assert {BASE_ACCOUNT} == {s.account for s in scopes}
    assert {s.region for s in scopes} == {s.region for s in collector(moto).scopes()}


def test_eni_pages_and_secondary_ips_are_all_read(stub: Ec2Stub):
    """moto ignores MaxResults, so the stand-in serves two pages, a secondary IP and a bad IP."""
    stub.answer(
        "eu-west-1",
        "DescribeAddresses",
        (
            200,
            f"<DescribeAddressesResponse {NS}>"
            "<requestId>r</requestId><addressesSet/></DescribeAddressesResponse>",
        ),
    )
    stub.answer(
        "eu-west-1",
        "DescribeNetworkInterfaces",
        (
            200,
            eni_page(
                "eni-1",
                "<association><publicIp>198.51.100.1</publicIp></association>"
                "<privateIpAddressesSet><item><privateIpAddress>10.0.0.9</privateIpAddress>"
                "<association><publicIp>198.51.100.2</publicIp></association></item>"
                "</privateIpAddressesSet>",
                next_token="tok-2",
            ),
        ),
        (
            200,
            eni_page(
                "eni-2",
                "<ipv6AddressesSet><item><ipv6Address>2001:DB8::7</ipv6Address>"
                "</item><item><ipv6Address>not-an-ip</ipv6Address></item>"
                "</ipv6AddressesSet><tagSet><item><key>k</key><value>v</value></item>"
                "</tagSet>",
            ),
        ),
    )

    found = list(collector(stub.url).collect(scope("eu-west-1")))

    assert [
        ("198.51.100.1", "eni/eni-1", ()),
        ("198.51.100.2", "eni/eni-1", ()),
        ("2001:db8::7", "eni/eni-2", (("k", "v"),)),
    ] == [(str(a.ip), a.resource, a.tags) for a in found if isinstance(a, Address)]
    assert [
        Skip(
            subject="not-an-ip",
            reason=SkipReason.INVALID_IP,
            detail="eni/eni-2",
            vendor="aws",
            region="eu-west-1",
            collector="aws:test",
        )
    ] == [s for s in found if isinstance(s, Skip)]
    pages = [h.params for h in stub.hits if h.action == "DescribeNetworkInterfaces"]
    assert [("1000", None), ("1000", "tok-2")] == [
        (p.get("MaxResults"), p.get("NextToken")) for p in pages
    ]


def eni_page(eni_id: str, inner: str, next_token: str = "") -> str:
    token = f"<nextToken>{next_token}</nextToken>" if next_token else ""
    return (
        f"<DescribeNetworkInterfacesResponse {NS}><requestId>r</requestId><networkInterfaceSet>"
        f"<item><networkInterfaceId>{eni_id}</networkInterfaceId>{inner}</item>"
        f"</networkInterfaceSet>{token}</DescribeNetworkInterfacesResponse>"
    )


# --- how failures end --------------------------------------------------------------------------


def test_throttled_region_fails_after_max_attempts_while_others_report(moto: str, stub: Ec2Stub):
    for region, ip in [
        ("us-east-1", "203.0.113.80"),
        ("eu-west-1", "198.51.100.80"),
        ("us-west-2", "198.51.100.81"),
    ]:
        eip(client(moto, "ec2", region), ip)
    stub.answer("eu-west-1", "DescribeAddresses", THROTTLED)
    aws = collector(stub.url, regions=["us-east-1", "eu-west-1", "us-west-2"])

    with ThreadPoolExecutor(max_workers=4) as pool:
        inventory = runner.run([aws], executor=pool)

    outcomes = {o.scope.region: (o.status, o.reason) for o in inventory.scopes}
    assert {
        "eu-west-1": (ScopeStatus.FAILED, "throttled"),
        "us-east-1": (ScopeStatus.OK, None),
        "us-west-2": (ScopeStatus.OK, None),
    } == outcomes
    assert {("203.0.113.80", "us-east-1"), ("198.51.100.81", "us-west-2")} == {
        (str(a.ip), a.region) for a in inventory.addresses
    }
    assert FAST.max_attempts == stub.count("eu-west-1", "DescribeAddresses")


def test_throttling_is_a_retryable_collector_error(stub: Ec2Stub):
    stub.answer("eu-west-1", "DescribeAddresses", THROTTLED)
    error = failure(collector(stub.url, settings=ONCE), scope("eu-west-1"))

    assert ("throttled", True) == (error.reason, error.retryable)
    assert 1 == stub.count("eu-west-1", "DescribeAddresses")
    assert "DescribeAddresses failed with RequestLimitExceeded (HTTP 503)" in str(error)
    assert f"account {BASE_ACCOUNT} region eu-west-1" in str(error)
    assert isinstance(error.__cause__, botocore.exceptions.ClientError)


def test_throttling_then_success_is_retried(stub: Ec2Stub, moto: str):
    eip(client(moto, "ec2", "eu-west-1"), "198.51.100.70")
    stub.answer("eu-west-1", "DescribeAddresses", THROTTLED, FORWARD)

    found = list(collector(stub.url).collect(scope("eu-west-1")))

    assert ["198.51.100.70"] == [str(a.ip) for a in found if isinstance(a, Address)]
    assert 2 == stub.count("eu-west-1", "DescribeAddresses")


def test_unreachable_endpoint_fails_fast():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"
    aws = collector(closed)

    started = time.monotonic()
    error = failure(aws, scope("us-east-1"))

    assert ("unreachable", True) == (error.reason, error.retryable)
    assert time.monotonic() - started < 2.5
    with pytest.raises(CollectorError) as listing:
        list(aws.scopes())
    assert "unreachable" == listing.value.reason


def test_slow_answers_fail_with_timeout(stub: Ec2Stub):
    stub.delay = 0.5
    aws = collector(stub.url, settings=CollectorSettings(max_attempts=2, request_timeout=0.2))

    error = failure(aws, scope("eu-west-1"))

    assert ("timeout", True) == (error.reason, error.retryable)
    assert 2 == stub.count("eu-west-1", "DescribeAddresses")


def test_scope_stops_at_its_deadline_instead_of_retrying(stub: Ec2Stub):
    """Five attempts are allowed, but the scope's time is up after the first slow one."""
    stub.answer("us-west-2", "DescribeAddresses", (200, f"<DescribeAddressesResponse {NS}/>"))
    stub.answer("us-west-2", "DescribeNetworkInterfaces", (200, eni_page("eni-1", "")))
    stub.answer("eu-west-1", "DescribeAddresses", THROTTLED)
    settings = CollectorSettings(max_attempts=5, request_timeout=5.0, scope_timeout=0.3)
    aws = collector(stub.url, settings=settings)
    with contextlib.suppress(CollectorError):
        # Loads the EC2 model if no test did yet, which alone may take 0.3 s on a busy machine.
        list(aws.collect(scope("us-west-2")))
    stub.delay = 0.5

    started = time.monotonic()
    error = failure(aws, scope("eu-west-1"))

    assert ("timeout", True) == (error.reason, error.retryable)
    # One slow attempt, or none at all when client set-up alone outlived 0.3 s on a busy machine.
    assert stub.count("eu-west-1", "DescribeAddresses") <= 1
    assert time.monotonic() - started < 0.5 + 1.0 + 0.5  # one answer, one backoff draw, slack


def test_disabled_region_is_skipped_not_failed(stub: Ec2Stub):
    stub.answer("ap-east-1", "DescribeAddresses", (401, error_xml("AuthFailure")))
    stub.answer("us-east-1", "DescribeRegions", (200, regions_xml({"ap-east-1": "not-opted-in"})))

    with pytest.raises(ScopeDenied) as info:
        list(collector(stub.url).collect(scope("ap-east-1")))

    assert "region_disabled" == info.value.reason
    probe = [h.params for h in stub.hits if h.action == "DescribeRegions"]
    assert [("true", "ap-east-1")] == [(p["AllRegions"], p["RegionName.1"]) for p in probe]


def test_region_that_cannot_be_checked_reports_the_original_error(stub: Ec2Stub):
    """If the account cannot say whether the region is enabled, nothing is skipped on a guess."""
    stub.answer("ap-east-1", "DescribeAddresses", (401, error_xml("AuthFailure")))
    stub.answer("us-east-1", "DescribeRegions", (403, error_xml("UnauthorizedOperation")))

    error = failure(collector(stub.url), scope("ap-east-1"))

    assert not isinstance(error, ScopeDenied)
    assert "auth" == error.reason
    assert "DescribeAddresses failed with AuthFailure (HTTP 401)" in str(error)


def test_region_botocore_refuses_is_an_error(moto: str):
    assert "error" == failure(collector(moto), scope("not a region!")).reason


@pytest.mark.parametrize(
    ("status", "code", "reason", "retryable"),
    [
        (401, "AuthFailure", "auth", False),  # in an enabled region: bad credentials
        (403, "UnauthorizedOperation", "auth", False),
        (403, "AccessDenied", "auth", False),
        (500, "InternalError", "server_error", True),
        (400, "InvalidParameterValue", "error", False),
        (404, "NoSuchThing", "not_found", False),
        (429, "SomethingNew", "throttled", True),
    ],
)
def test_errors_are_translated_by_code_and_status(
    stub: Ec2Stub, status: int, code: str, reason: str, retryable: bool
):
    stub.answer("eu-west-1", "DescribeAddresses", (status, error_xml(code)))

    error = failure(collector(stub.url, settings=ONCE), scope("eu-west-1"))

    assert (reason, retryable) == (error.reason, error.retryable)
    assert isinstance(error.__cause__, botocore.exceptions.ClientError)
    assert "stub says" not in str(error)  # AWS's own text is not echoed


def test_unreadable_answer_is_malformed(stub: Ec2Stub):
    stub.answer("eu-west-1", "DescribeAddresses", (200, "<<< not xml"))
    assert "malformed" == failure(collector(stub.url), scope("eu-west-1")).reason


def test_no_organization_fails_the_listing(moto: str, stub: Ec2Stub):
    """moto lists no accounts without an organization; AWS answers NotInUse. Both fail."""
    with pytest.raises(CollectorError) as empty:
        list(collector(moto, organization={"role_name": "OrgReader"}).scopes())
    assert "not_found" == empty.value.reason

    stub.answer(
        "*",
        "AWSOrganizationsV20161128.ListAccounts",
        (400, '{"__type": "AWSOrganizationsNotInUseException", "Message": "no org"}'),
    )
    with pytest.raises(CollectorError) as not_in_use:
        list(collector(stub.url, organization={"role_name": "OrgReader"}).scopes())
    assert "not_found" == not_in_use.value.reason
    assert "AWSOrganizationsNotInUseException" in str(not_in_use.value)


def test_missing_credentials_or_profile_is_auth(moto: str, monkeypatch: pytest.MonkeyPatch):
    with pytest.raises(CollectorError) as missing_profile:
        list(collector(moto, profile="nope").scopes())
    assert "auth" == missing_profile.value.reason

    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    with pytest.raises(CollectorError) as no_credentials:
        list(collector(moto).scopes())
    assert "auth" == no_credentials.value.reason


def test_role_that_cannot_be_assumed_fails_its_scopes(stub: Ec2Stub):
    stub.answer(
        "*",
        "AssumeRole",
        (
            403,
            "<ErrorResponse><Error><Type>Sender</Type><Code>"
            "AccessDenied</Code><Message>no</Message></Error><RequestId>r</RequestId>"
            "</ErrorResponse>",
        ),
    )
    aws = collector(stub.url, organization={"role_name": "Missing", "external_id": "ext-1"})

    error = failure(aws, scope("eu-west-1", OTHER_ACCOUNT))

    assert "auth" == error.reason
    assert "AssumeRole" in str(error)
    assert "ext-1" not in str(error)
    (hit,) = [h for h in stub.hits if h.action == "AssumeRole"]
    assert f"arn:aws:iam::{OTHER_ACCOUNT}:role/Missing" == hit.params["RoleArn"]
    assert "ext-1" == hit.params["ExternalId"]
