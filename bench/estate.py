"""The benchmark's estate: every simulator, seeded at scale, in a process of its own.

A spawned child process runs Cloudflare, AWS (moto's WSGI app behind a latency middleware), GCP,
Azure and one OCI simulator per tenancy, seeds them in process (no API calls, no latency), and
answers commands from the parent over a pipe: drain the request logs into a ``model.Workload``,
apply churn, forget Cloudflare's mappings. The syncd under test runs in the parent, so its CPU
and peak RSS are its own. Nothing here is imported by syncd.
"""

from __future__ import annotations

import contextlib
import io
import ipaddress
import logging
import math
import multiprocessing
import os
import random
import re
import resource
import secrets
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from bench.model import Task, Workload
from bench.replay import Replayer, Upstream
from syncd.simulators.azure import AzureSimulator
from syncd.simulators.base import Request, Response
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.simulators.gcp import GcpSimulator
from syncd.simulators.oci import OciSimulator

AWS_REGIONS = (
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1", "eu-west-1",
    "eu-west-2", "eu-west-3", "eu-central-1", "eu-north-1", "ap-south-1", "ap-northeast-1",
    "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2",
)  # fmt: skip
GCP_REGIONS = (
    "us-central1", "us-east1", "us-east4", "us-west1", "europe-west1", "europe-west4",
    "asia-east1", "asia-northeast1",
)  # fmt: skip
AZURE_LOCATIONS = (
    "eastus", "eastus2", "westus2", "centralus", "westeurope", "northeurope", "uksouth",
    "japaneast",
)  # fmt: skip
OCI_REGIONS = (
    ("us-ashburn-1", "IAD"), ("us-phoenix-1", "PHX"), ("us-sanjose-1", "SJC"),
    ("us-chicago-1", "ORD"), ("ca-toronto-1", "YYZ"), ("eu-frankfurt-1", "FRA"),
    ("eu-amsterdam-1", "AMS"), ("uk-london-1", "LHR"), ("ap-tokyo-1", "NRT"),
    ("ap-sydney-1", "SYD"),
)  # fmt: skip
# Share of the addresses per cloud, and where each cloud's addresses start (all globally routable).
SHARES = {"aws": 0.5, "gcp": 0.2, "azure": 0.2, "oci": 0.1}
_IP_BASE = {
    "aws": int(ipaddress.IPv4Address("3.16.0.0")),
    "gcp": int(ipaddress.IPv4Address("34.64.0.0")),
    "azure": int(ipaddress.IPv4Address("20.40.0.0")),
    "oci": int(ipaddress.IPv4Address("129.146.0.0")),
}
_CHURN_OFFSET = 400_000  # addresses added by churn come from further up each cloud's block
AWS_HUB_KEY = "benchhubkey"  # moto maps an unknown key to its default (management) account
AWS_MANAGEMENT = "123456789012"
AWS_ROLE = "SyncdReader"
_BOOT_TIMEOUT = 900.0


@dataclass(frozen=True, slots=True)
class Spec:
    """The estate's shape (issue 10's numbers by default) and the latency model."""

    aws_accounts: int = 20
    aws_regions: int = 17
    gcp_projects: int = 10
    azure_subscriptions: int = 10
    oci_tenancies: int = 3
    oci_regions: int = 10
    oci_compartments: int = 4  # the tenancy (root) and three below it
    addresses: int = 50_000
    zones: int = 10
    origins_per_zone: int = 3_000
    latency_cloud: float = 0.05
    latency_cloudflare: float = 0.1
    seed: int = 10

    def scaled(self, fraction: float) -> Spec:
        """Fewer accounts, projects, subscriptions, tenancies, addresses and zones, in proportion;
        regions, compartments and a zone's origins stay, so each task and zone chain does too."""

        def part(n: int) -> int:
            return max(1, round(n * fraction))

        return replace(
            self,
            aws_accounts=part(self.aws_accounts),
            gcp_projects=part(self.gcp_projects),
            azure_subscriptions=part(self.azure_subscriptions),
            oci_tenancies=part(self.oci_tenancies),
            addresses=part(self.addresses),
            zones=part(self.zones),
        )

    @property
    def origins(self) -> int:
        """DNS origins per zone: as asked, but at most 60% of the estate spread over the zones."""
        return min(self.origins_per_zone, int(self.addresses * 0.6) // self.zones)


@dataclass(frozen=True, slots=True)
class Info:
    """What the parent needs to point syncd at the estate."""

    env: dict[str, str]
    cloudflare_url: str
    zones: tuple[tuple[str, str], ...]  # (id, name)
    aws_endpoint: str
    aws_regions: tuple[str, ...]
    gcp_url: str
    gcp_key_file: str
    azure_url: str
    azure_tenant: str
    azure_client: str
    oci: tuple[tuple[str, str, str], ...]  # (config file, profile, endpoint template)
    addresses: int
    origins: int
    seconds_to_seed: float


@dataclass(frozen=True, slots=True)
class PhaseLog:
    """The simulators' view of one phase: requests per cloud, Cloudflare by kind and time."""

    workload: Workload
    cloud_requests: dict[str, int]
    cloudflare_kinds: dict[str, int]
    cloudflare_times: tuple[tuple[float, str], ...]  # (arrival, kind), monotonic seconds
    simulator_cpu: float  # the simulators' host and the replayers, since they started
    replay_cpu: float = 0.0  # of which the replayers'
    replayed: int = 0  # cloud requests answered from memory (bench.replay)
    forwarded: tuple[str, ...] = ()  # cloud requests passed to a simulator (not rehearsed)
    cloud_bytes: dict[str, int] = field(default_factory=dict)  # answers' body bytes per cloud


@dataclass(frozen=True, slots=True)
class Churn:
    """What a churn step changed, and the writes it must cost per zone."""

    released: int
    moved: int
    added: int
    upserts: dict[str, int]  # zone id -> mappings to create or update
    deletes: dict[str, int]  # zone id -> mappings to delete

    def expected_writes(self, batch: int = 100) -> int:
        ups = sum(math.ceil(n / batch) for n in self.upserts.values())
        return ups + sum(math.ceil(n / batch) for n in self.deletes.values())


class SimulatorError(Exception):
    """The simulators' process failed or stopped answering."""


@dataclass(frozen=True, slots=True)
class _Failed:
    text: str


# --- the parent's handle ------------------------------------------------------------------------


class Host:
    """The simulators' process. ``with Host(spec, workdir) as host:``; ``host.info`` then."""

    def __init__(self, spec: Spec, workdir: Path, *, replay: bool = True) -> None:
        self.spec = spec
        self.workdir = workdir
        self.replay = replay
        self._conn: Connection | None = None
        self._proc: Any = None
        self.info: Info | None = None
        # Whether every cloud answer of the estate as it is now has been rendered once (replay).
        self.rehearsed = False

    def __enter__(self) -> Host:
        ctx = multiprocessing.get_context("spawn")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=serve,
            args=(child, self.spec, str(self.workdir), self.replay),
            name="bench-simulators",
        )
        self._proc.start()
        child.close()
        self.info = self._answer(_BOOT_TIMEOUT)
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError, SimulatorError):
            self.call("stop")
        if self._proc is not None:
            self._proc.join(timeout=15)
            if self._proc.is_alive():
                self._proc.terminate()  # our own child, by its handle
                self._proc.join(timeout=5)

    @property
    def pid(self) -> int | None:
        return None if self._proc is None else int(self._proc.pid)

    def call(self, command: str, **kwargs: Any) -> Any:
        assert self._conn is not None
        self._conn.send((command, kwargs))
        return self._answer(_BOOT_TIMEOUT)

    def drain(self) -> PhaseLog:
        """Every request since the last drain, and forget them."""
        log: PhaseLog = self.call("drain")
        return log

    def churn(self, fraction: float) -> Churn:
        changed: Churn = self.call("churn", fraction=fraction)
        self.rehearsed = False  # the replayers forgot their answers
        return changed

    def reset_cloudflare(self) -> None:
        self.call("reset_cloudflare")

    def origins(self) -> dict[str, int]:
        """Zone id -> addresses its DNS points at now (after any churn)."""
        counts: dict[str, int] = self.call("origins")
        return counts

    def _answer(self, timeout: float) -> Any:
        assert self._conn is not None
        if not self._conn.poll(timeout):
            raise SimulatorError(f"the simulators did not answer within {timeout:g}s")
        value = self._conn.recv()
        if isinstance(value, _Failed):
            raise SimulatorError(f"simulator process failed:\n{value.text}")
        return value


def settings_yaml(
    info: Info, *, concurrency: int, state: Path, rate_limit: tuple[int, float] = (1200, 300.0)
) -> dict[str, Any]:
    """syncd's configuration for the estate (the parent writes it as YAML)."""
    requests, period = rate_limit
    return {
        "cloudflare": {
            "api_token": "${CLOUDFLARE_API_TOKEN}",
            "base_url": info.cloudflare_url,
            "rate_limit": {"requests": requests, "period": period},
            "zones": [
                {"id": zid, "name": name, "origins": "dns", "policy": "sync"}
                for zid, name in info.zones
            ],
        },
        "collectors": _collectors(info, concurrency),
        "state": {"path": str(state)},
        "logging": {"level": "warning"},
    }


def _collectors(info: Info, concurrency: int) -> dict[str, Any]:
    """The ``collectors`` section: one collector per simulated cloud."""
    return {
        "concurrency": concurrency,
        "aws": [
            {
                "name": "aws-bench",
                "regions": list(info.aws_regions),
                "endpoint_url": info.aws_endpoint,
                "organization": {"role_name": AWS_ROLE},
            }
        ],
        "gcp": [
            {
                "name": "gcp-bench",
                "credentials_file": info.gcp_key_file,
                "api_endpoint": info.gcp_url,
                "resource_manager_endpoint": info.gcp_url,
            }
        ],
        "azure": [
            {
                "name": "azure-bench",
                "tenant_id": info.azure_tenant,
                "client_id": info.azure_client,
                "client_secret": "${SYNCD_BENCH_AZURE_SECRET}",
                "authority_host": info.azure_url,
                "base_url": info.azure_url,
            }
        ],
        "oci": [
            {
                "name": f"oci-bench-{i}",
                "config_file": config,
                "profile": profile,
                "service_endpoint_template": template,
            }
            for i, (config, profile, template) in enumerate(info.oci)
        ],
    }


# --- the child process ----------------------------------------------------------------------------


def serve(conn: Connection, spec: Spec, workdir: str, replay: bool = True) -> None:
    """The simulator process's main: start, seed, then answer commands until ``stop``."""
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"  # 5x faster EC2 backends, no AMIs needed
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        with contextlib.ExitStack() as stack:
            estate = _Estate(spec, Path(workdir), stack, replay=replay)
            conn.send(estate.info)
            _loop(conn, estate)
    except Exception:
        conn.send(_Failed(traceback.format_exc()))


def _loop(conn: Connection, estate: _Estate) -> None:
    commands: dict[str, Callable[..., Any]] = {
        "drain": estate.drain,
        "churn": estate.churn,
        "reset_cloudflare": estate.reset_cloudflare,
        "origins": estate.origins,
    }
    while True:
        command, kwargs = conn.recv()
        if command == "stop":
            conn.send(None)
            return
        try:
            conn.send(commands[command](**kwargs))
        except Exception:
            conn.send(_Failed(traceback.format_exc()))


@dataclass(slots=True)
class _Item:
    """One seeded address and how to find it again (for churn)."""

    ip: str
    vendor: str
    account: str  # AWS account, GCP project, Azure subscription, OCI compartment
    region: str
    name: str  # EIP allocation id, GCP/Azure resource name, OCI ocid
    kind: str = ""  # GCP: addresses, instances or rules
    tenancy: int = 0  # which OCI simulator
    zone: str = ""  # the Cloudflare zone whose DNS points here
    record: str = ""  # that DNS record's id
    alive: bool = True


@dataclass(frozen=True, slots=True)
class _AwsCall:
    service: str
    action: str
    key: str
    region: str
    role_account: str
    sent: int = 0  # bytes of the answer's body


class _TimedCloudflare(CloudflareSimulator):
    """A Cloudflare simulator that notes when each request arrived (for the rate limit).

    It applies the latency itself, after taking the time: the base class sleeps before
    ``handle``, and a sleep's overshoot would blur the arrival times.
    """

    def __init__(self, token: str, latency: float) -> None:
        # Not enforced here: the bench counts arrivals per window itself and reports them against
        # the limit syncd was given (an enforced limit would turn an overshoot into stalls).
        super().__init__(token=token, latency=0.0, rate_limit=(10**9, 300.0))
        self.delay = latency
        self.arrivals: list[tuple[float, str, str]] = []

    def handle(self, request: Request) -> Response:
        arrived = time.monotonic()
        with self._lock:
            self.arrivals.append((arrived, request.method, request.path))
        if self.delay:
            time.sleep(self.delay)
        return super().handle(request)

    def forget_mappings(self) -> None:
        """Every zone back to no mappings; its DNS records stay. (The simulator's control API
        has no bulk delete, and this is a test double of our own: its store is reached directly.)
        """
        with self._lock:
            for zone in self._zones.values():
                zone.mappings.clear()
                zone.modified_on = None


class _Moto:
    """moto's WSGI app on werkzeug's threaded server, with per-request latency and a call log."""

    def __init__(self, latency: float) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        self.latency = latency
        self.calls: list[_AwsCall] = []
        self._lock = threading.Lock()
        app = DomainDispatcherApplication(create_backend_app)
        # Without TCP_NODELAY, Nagle and delayed ACKs add ~40 ms to a request on loopback.
        handler = type("Handler", (MotoRequestHandler,), {"disable_nagle_algorithm": True})
        self._server = make_server(
            "127.0.0.1", 0, self._middleware(app), threaded=True, request_handler=handler
        )
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}"

    def stop(self) -> None:
        self._server.shutdown()
        self._thread.join(timeout=5)

    def _middleware(self, app: Callable[..., Any]) -> Callable[..., Any]:
        def call(environ: dict[str, Any], start_response: Any) -> Any:
            length = int(environ.get("CONTENT_LENGTH") or 0)
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            if self.latency:
                time.sleep(self.latency)
            answer = b"".join(app(environ, start_response))
            self._note(environ, body, len(answer))
            return [answer]

        return call

    def _note(self, environ: dict[str, Any], body: bytes, sent: int) -> None:
        call = _aws_call(
            environ.get("HTTP_AUTHORIZATION", ""), environ.get("HTTP_X_AMZ_TARGET", ""), body, sent
        )
        with self._lock:
            self.calls.append(call)


def _aws_call(authorization: str, target: str, body: bytes, sent: int) -> _AwsCall:
    """What an AWS request was: service, action, key and region from its signature's scope;
    ``sent``: the bytes of its answer's body."""
    scope = re.search(r"Credential=([^/]+)/[^/]+/([^/]+)/([^/]+)/", authorization)
    key, region, service = scope.groups() if scope else ("", "", "")
    form = parse_qs(body.decode(errors="replace")) if body else {}
    action = target.rsplit(".", 1)[-1] if target else form.get("Action", [""])[0]
    role = form.get("RoleArn", [""])[0]
    account = role.split(":")[4] if role.count(":") >= 5 else ""
    return _AwsCall(service, action, key, region, account, sent)


class _Estate:
    """The running simulators, what was seeded in them, and the commands of the pipe."""

    def __init__(
        self, spec: Spec, workdir: Path, stack: contextlib.ExitStack[Any], *, replay: bool
    ) -> None:
        started = time.monotonic()
        self.spec = spec
        self._rng = random.Random(spec.seed)
        self._items: list[_Item] = []
        self._next_ip = dict.fromkeys(_IP_BASE, 0)
        self._added = 0
        token = secrets.token_hex(16)
        azure_secret = secrets.token_hex(12)
        self.cf = stack.enter_context(_TimedCloudflare(token, spec.latency_cloudflare))
        latency = 0.0 if replay else spec.latency_cloud  # else the replayers wait it
        self.moto = _Moto(latency)
        stack.callback(self.moto.stop)
        self.gcp = stack.enter_context(GcpSimulator(latency=latency))
        self.azure = stack.enter_context(
            AzureSimulator(client_secret=azure_secret, latency=latency)
        )
        self.ocis = [
            stack.enter_context(
                OciSimulator(tenancy=f"ocid1.tenancy.oc1..bench{t}", latency=latency)
            )
            for t in range(spec.oci_tenancies)
        ]
        self.replayers: dict[str, Replayer] = {}
        if replay:
            self._start_replayers(workdir, stack)
        self._accounts = self._seed_aws_organization()
        self._seed_addresses()
        zones = self._seed_zones()
        self.info = self._describe(workdir, token, azure_secret, zones, started)

    def _start_replayers(self, workdir: Path, stack: contextlib.ExitStack[Any]) -> None:
        """One replayer process per cloud vendor in front of its simulators (bench.replay)."""
        upstreams = {
            "aws": [Upstream("aws", self.moto.url)],
            "gcp": [Upstream("gcp", self.gcp.url)],
            "azure": [Upstream("azure", self.azure.url, str(self.azure.ca_file))],
            "oci": [Upstream(f"oci{t}", sim.url) for t, sim in enumerate(self.ocis)],
        }
        for vendor, ups in upstreams.items():
            replayer = Replayer(vendor, ups, self.spec.latency_cloud, workdir / f"replay-{vendor}")
            self.replayers[vendor] = stack.enter_context(replayer)

    def _url(self, simulator_url: str) -> str:
        """The URL syncd is given for a simulator: its replayer's, when there is one."""
        for replayer in self.replayers.values():
            if simulator_url in replayer.urls:
                return replayer.urls[simulator_url]
        return simulator_url

    # --- seeding ------------------------------------------------------------------------

    def _seed_aws_organization(self) -> list[str]:
        from moto.organizations.models import organizations_backends

        org = organizations_backends[AWS_MANAGEMENT]["aws"]
        org.create_organization(region="us-east-1", FeatureSet="ALL")
        accounts = [AWS_MANAGEMENT]
        for i in range(self.spec.aws_accounts - 1):
            made = org.create_account(AccountName=f"bench-{i}", Email=f"bench-{i}@example.com")
            accounts.append(made["CreateAccountStatus"]["AccountId"])
        return accounts

    def _scopes(self, vendor: str) -> list[tuple[str, str, int]]:
        """(account, region, tenancy) of every scope of ``vendor``."""
        s = self.spec
        if vendor == "aws":
            regions = AWS_REGIONS[: s.aws_regions]
            return [(a, r, 0) for a in self._accounts for r in regions]
        if vendor == "gcp":
            return [(f"bench-project-{p:02d}", "", 0) for p in range(s.gcp_projects)]
        if vendor == "azure":
            return [(_guid(i), "", 0) for i in range(s.azure_subscriptions)]
        return [
            (_compartment(t, c, self.ocis[t].tenancy), region, t)
            for t in range(s.oci_tenancies)
            for c in range(s.oci_compartments)
            for region, _ in OCI_REGIONS[: s.oci_regions]
        ]

    def _seed_addresses(self) -> None:
        for t, sim in enumerate(self.ocis):
            for region, key in OCI_REGIONS[: self.spec.oci_regions]:
                sim.add_region(region, key)
                sim.subscribe(sim.tenancy, region)
            for c in range(1, self.spec.oci_compartments):
                sim.add_compartment(_compartment(t, c, sim.tenancy), sim.tenancy)
        for sub in range(self.spec.azure_subscriptions):
            self.azure.add_subscription(_guid(sub))
        for p in range(self.spec.gcp_projects):
            self.gcp.add_project(f"bench-project-{p:02d}")
        counts = _split(self.spec.addresses)
        for vendor, count in counts.items():
            scopes = self._scopes(vendor)
            for i in range(count):
                scope = scopes[i % len(scopes)]
                self._items.append(self._create(vendor, scope, i, i // len(scopes)))

    def _create(self, vendor: str, scope: tuple[str, str, int], i: int, nth: int) -> _Item:
        """The ``i``-th address of ``vendor``, the ``nth`` of its scope."""
        account, region, _ = scope
        ip = self._new_ip(vendor)
        tags = {"team": f"team-{i % 4}"}
        if vendor == "aws":
            return self._create_aws(ip, account, region, tags)
        if vendor == "gcp":
            # Per project: 40% reserved addresses, 50% VM NAT IPs, 10% forwarding rules.
            kind = "addresses" if nth % 10 < 4 else "instances" if nth % 10 < 9 else "rules"
            item = _Item(ip, vendor, account, GCP_REGIONS[i % len(GCP_REGIONS)], f"r{i}", kind)
            self._put_gcp(item, tags)
            return item
        if vendor == "azure":
            location = AZURE_LOCATIONS[i % len(AZURE_LOCATIONS)]
            item = _Item(ip, vendor, account, location, f"pip-{i}")
            self.azure.add_public_ip(account, item.name, location=location, ip=ip, tags=tags)
            return item
        return self._create_oci(ip, scope, nth, tags)

    def _create_aws(self, ip: str, account: str, region: str, tags: dict[str, str]) -> _Item:
        from moto.ec2.models import ec2_backends

        eip = ec2_backends[account][region].allocate_address("vpc", address=ip, tags=tags)
        assert eip.allocation_id is not None, "moto allocates a VPC address with an id"
        return _Item(ip, "aws", account, region, eip.allocation_id)

    def _put_gcp(self, item: _Item, labels: dict[str, str]) -> None:
        if item.kind == "addresses":
            self.gcp.add_address(item.account, item.region, item.name, item.ip, labels=labels)
        elif item.kind == "instances":
            zone = f"{item.region}-b"
            self.gcp.add_instance(item.account, zone, item.name, nat_ips=[item.ip], labels=labels)
        else:
            self.gcp.add_forwarding_rule(item.account, item.region, item.name, item.ip)

    def _drop_gcp(self, item: _Item) -> None:
        if item.kind == "addresses":
            self.gcp.remove_address(item.account, item.region, item.name)
        elif item.kind == "instances":
            self.gcp.remove_instance(item.account, f"{item.region}-b", item.name)
        else:
            self.gcp.remove_forwarding_rule(item.account, item.region, item.name)

    def _create_oci(
        self, ip: str, scope: tuple[str, str, int], nth: int, tags: dict[str, str]
    ) -> _Item:
        compartment, region, tenancy = scope
        sim = self.ocis[tenancy]
        if nth % 3 == 0:  # a third are ephemeral IPs on VNICs, listed per availability domain
            ads = sim.availability_domains(region)
            ocid = sim.add_public_ip(
                region,
                compartment,
                ip,
                lifetime="EPHEMERAL",
                scope="AVAILABILITY_DOMAIN",
                ad=ads[nth // 3 % len(ads)],
                freeform_tags=tags,
            )
        else:
            ocid = sim.add_public_ip(region, compartment, ip, freeform_tags=tags)
        return _Item(ip, "oci", compartment, region, ocid, tenancy=tenancy)

    def _new_ip(self, vendor: str) -> str:
        n = self._next_ip[vendor]
        self._next_ip[vendor] = n + 1
        return str(ipaddress.IPv4Address(_IP_BASE[vendor] + n))

    def _seed_zones(self) -> list[tuple[str, str]]:
        zones = [(f"be{z:030x}", f"zone{z}.bench.example") for z in range(self.spec.zones)]
        for zid, name in zones:
            self.cf.add_zone(zid, name)
        per_zone = self.spec.origins
        chosen = self._rng.sample(range(len(self._items)), per_zone * len(zones))
        for n, index in enumerate(chosen):
            self._point_dns(self._items[index], zones[n // per_zone], n)
        return zones

    def _point_dns(self, item: _Item, zone: tuple[str, str], n: int) -> None:
        zid, name = zone
        item.zone = zid
        item.record = self.cf.add_dns_record(zid, "A", f"o{n}.{name}", item.ip)

    def _describe(
        self,
        workdir: Path,
        token: str,
        azure_secret: str,
        zones: list[tuple[str, str]],
        started: float,
    ) -> Info:
        oci = []
        for t, sim in enumerate(self.ocis):
            config, profile = sim.write_config(workdir, profile=f"T{t}")
            template = sim.endpoint_template().replace(sim.url, self._url(sim.url))
            oci.append((str(config), profile, template))
        gcp_key = self.gcp.write_service_account(workdir / "gcp-key.json")
        gcp_key.write_text(gcp_key.read_text().replace(self.gcp.url, self._url(self.gcp.url)))
        ca_file = self.replayers["azure"].ca_file if self.replayers else self.azure.ca_file
        assert ca_file is not None
        env = {
            "CLOUDFLARE_API_TOKEN": token,
            "AWS_ACCESS_KEY_ID": AWS_HUB_KEY,
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_DEFAULT_REGION": "us-east-1",
            "REQUESTS_CA_BUNDLE": str(ca_file),
            "SYNCD_BENCH_AZURE_SECRET": azure_secret,
        }
        return Info(
            env=env,
            cloudflare_url=self.cf.base_url,
            zones=tuple(zones),
            aws_endpoint=self._url(self.moto.url),
            aws_regions=AWS_REGIONS[: self.spec.aws_regions],
            gcp_url=self._url(self.gcp.url),
            gcp_key_file=str(gcp_key),
            azure_url=self._url(self.azure.url),
            azure_tenant=self.azure.tenant_id,
            azure_client=self.azure.client_id,
            oci=tuple(oci),
            addresses=len(self._items),
            origins=sum(1 for i in self._items if i.zone),
            seconds_to_seed=time.monotonic() - started,
        )

    # --- commands -----------------------------------------------------------------------

    def reset_cloudflare(self) -> None:
        self.cf.forget_mappings()

    def origins(self) -> dict[str, int]:
        return dict(Counter(item.zone for item in self._items if item.alive and item.zone))

    def churn(self, fraction: float) -> Churn:
        """Release, move (to another region) and add ``fraction`` of the addresses, a third each.

        OCI's simulator cannot remove an address, so releases and moves are drawn from the other
        clouds; additions go to every cloud, each with an A record in one of the zones.
        """
        n = max(3, round(len(self._items) * fraction))
        third = n // 3
        movable = [i for i, it in enumerate(self._items) if it.alive and it.vendor != "oci"]
        picked = self._rng.sample(movable, 2 * third)
        upserts: Counter[str] = Counter()
        deletes: Counter[str] = Counter()
        for index in picked[:third]:
            item = self._items[index]
            self._release(item)
            if item.zone:
                deletes[item.zone] += 1
        for index in picked[third:]:
            item = self._items[index]
            self._move(item)
            if item.zone:
                upserts[item.zone] += 1
        for k in range(n - 2 * third):
            upserts[self._add(k).zone] += 1
        for replayer in self.replayers.values():
            replayer.forget()
        return Churn(third, third, n - 2 * third, dict(upserts), dict(deletes))

    def _release(self, item: _Item) -> None:
        from moto.ec2.models import ec2_backends

        item.alive = False
        if item.vendor == "aws":
            ec2_backends[item.account][item.region].release_address(allocation_id=item.name)
        elif item.vendor == "gcp":
            self._drop_gcp(item)
        else:
            self.azure.remove_public_ip(item.account, item.name)
        if item.record:
            self.cf.remove_dns_record(item.zone, item.record)

    def _move(self, item: _Item) -> None:
        """The same IP reappears in the next region of the same account."""
        from moto.ec2.models import ec2_backends

        if item.vendor == "aws":
            ec2_backends[item.account][item.region].release_address(allocation_id=item.name)
            regions = AWS_REGIONS[: self.spec.aws_regions]
            item.region = _next(regions, item.region)
            moved = ec2_backends[item.account][item.region].allocate_address("vpc", item.ip)
            assert moved.allocation_id is not None, "moto allocates a VPC address with an id"
            item.name = moved.allocation_id
        elif item.vendor == "gcp":
            self._drop_gcp(item)
            item.region = _next(GCP_REGIONS, item.region)
            self._put_gcp(item, {})
        else:
            self.azure.remove_public_ip(item.account, item.name)
            item.region = _next(AZURE_LOCATIONS, item.region)
            self.azure.add_public_ip(item.account, item.name, location=item.region, ip=item.ip)

    def _add(self, k: int) -> _Item:
        vendor = tuple(SHARES)[k % len(SHARES)]
        scopes = self._scopes(vendor)
        scope = scopes[self._rng.randrange(len(scopes))]
        self._next_ip[vendor] = max(self._next_ip[vendor], _CHURN_OFFSET)
        item = self._create(vendor, scope, _CHURN_OFFSET + self._added, self._added)
        self._added += 1
        self._items.append(item)
        zone = self.info.zones[k % len(self.info.zones)]
        self._point_dns(item, zone, _CHURN_OFFSET + k)
        return item

    def drain(self) -> PhaseLog:
        """The requests since the last drain, as a workload; the logs are then emptied."""
        usage = os.times()  # first: the phase's CPU, not the bookkeeping below
        with self.moto._lock:
            aws = list(self.moto.calls)
            self.moto.calls.clear()
        with self.cf._lock:
            arrivals = list(self.cf.arrivals)
            self.cf.arrivals.clear()
        sims = [self.gcp, self.azure, *self.ocis]
        logs = [list(sim.requests) for sim in sims]
        for sim in sims:
            sim.clear_requests()
        gcp, azure, *ocis = logs
        replayed, forwarded = 0, list[str]()
        replay_cpu = 0.0
        if self.replayers:  # what syncd sent is in the replayers' logs (a simulator's: misses)
            seen = {vendor: r.drain() for vendor, r in self.replayers.items()}
            aws = [
                _aws_call(
                    r.headers.get("authorization", ""),
                    r.headers.get("x-amz-target", ""),
                    r.body,
                    r.sent,
                )
                for r in seen["aws"].requests["aws"]
            ]
            gcp, azure = seen["gcp"].requests["gcp"], seen["azure"].requests["azure"]
            ocis = [seen["oci"].requests[f"oci{t}"] for t in range(len(self.ocis))]
            replayed = sum(log.replayed for log in seen.values())
            forwarded = [f"{vendor}: {f}" for vendor, log in seen.items() for f in log.forwarded]
            replay_cpu = sum(log.cpu for log in seen.values())
        tasks = [*_aws_tasks(aws), *_gcp_tasks(gcp), *_azure_tasks(azure)]
        for t, log in enumerate(ocis):
            tasks += _oci_tasks(f"oci{t}", log)
        kinds = [(at, _cloudflare_kind(method, path)) for at, method, path in arrivals]
        workload = Workload(tasks=tuple(tasks), **_cloudflare_chains(arrivals))
        return PhaseLog(
            workload=workload,
            cloud_requests={
                "aws": len(aws),
                "gcp": len(gcp),
                "azure": len(azure),
                "oci": sum(len(log) for log in ocis),
            },
            cloudflare_kinds=dict(Counter(kind for _, kind in kinds)),
            cloudflare_times=tuple(kinds),
            simulator_cpu=usage.user + usage.system + replay_cpu,
            replay_cpu=replay_cpu,
            replayed=replayed,
            forwarded=tuple(forwarded),
            cloud_bytes={
                "aws": sum(call.sent for call in aws),
                "gcp": sum(r.sent for r in gcp),
                "azure": sum(r.sent for r in azure),
                "oci": sum(r.sent for log in ocis for r in log),
            },
        )


# --- measurements in a fresh process (run by the parent with a spawned worker) -----------------


def tree_cpu(exclude: Iterable[int | None] = ()) -> tuple[float, float]:
    """CPU seconds (user + system) of this process, and of every process below it but those of
    ``exclude`` (the simulators' host): the children that ended (``RUSAGE_CHILDREN``) and, from
    /proc, each live child with the children it reaped, which is how syncd's vendor processes
    are counted (forked and reaped by the fork server, a live child of syncd's)."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    below = kids.ru_utime + kids.ru_stime
    skip = {pid for pid in exclude if pid is not None}
    me = str(os.getpid())
    tick = os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            # pid (comm) state ppid ... utime stime cutime cstime: fields 14-17, after the comm.
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # it ended meanwhile: counted in RUSAGE_CHILDREN if it was ours
            continue
        if fields[1] == me and int(stat.parent.name) not in skip:
            below += sum(int(f) for f in fields[11:15]) / tick
    return own.ru_utime + own.ru_stime, below


def peak_rss_mb() -> float:
    """This process's peak resident set, in MiB.

    VmHWM, not ``getrusage``: Linux carries ``ru_maxrss`` over fork and exec, so a process
    spawned by a large parent would report the parent's peak as its own.
    """
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def quiet_logs() -> None:
    """syncd's log setup, as the CLI does it: warnings and worse, to stderr."""
    from syncd.config import LoggingConfig
    from syncd.views import logs

    logs.configure(LoggingConfig(level="warning"), stream=sys.stderr)


def rss_mb() -> float:
    """This process's resident set now, in MiB (VmRSS)."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return 0.0


def fresh_sync(config_path: str, env: dict[str, str]) -> dict[str, Any]:
    """One ``run_once`` in this (fresh) process, as ``syncd run`` makes it: the peak RSS of this
    process and of the largest vendor process (the cloud SDKs live there), and this process's
    RSS once the run is over, its report dropped and ``release_memory`` called, as ``syncd run``
    does between runs, beside the collectors' fork server's.

    The vendor processes are the fork server's children, not this process's, and end with their
    vendor's collection: their peaks (VmHWM, which counts the pages they share with the fork
    server) are sampled from /proc every 20 ms while the run lasts."""
    os.environ.update(env)
    quiet_logs()
    from syncd import config
    from syncd.daemon import release_memory
    from syncd.run import once as sync

    settings = config.load(Path(config_path))
    peaks: dict[int, float] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.02):
            for pid, mb in children_rss_mb("VmHWM", depth=2).items():
                peaks[pid] = max(mb, peaks.get(pid, 0.0))

    sampler = threading.Thread(target=sample, name="bench-rss-sampler", daemon=True)
    start = rss_mb()
    t0 = time.perf_counter()
    sampler.start()
    try:
        report = sync.run_once(settings)
    finally:
        done.set()
        sampler.join()
    out = {
        "addresses": len(report.inventory.addresses),
        "result": report.result.value,
        "wall": time.perf_counter() - t0,
        "start_rss_mb": start,
        "peak_rss_mb": peak_rss_mb(),
        "child_peak_rss_mb": max(peaks.values(), default=0.0),
        "allocator": os.environ.get("PYTHONMALLOC", "pymalloc"),
    }
    del report
    release_memory()
    out["idle_rss_mb"] = rss_mb()
    # The fork server stays between runs with the SDKs it imported: memory syncd run keeps.
    out["fork_server_rss_mb"] = sum(children_rss_mb().values())
    return out


def children_rss_mb(field: str = "VmRSS", depth: int = 1) -> dict[int, float]:
    """``field`` of /proc/<pid>/status (VmRSS: resident now; VmHWM: its peak), in MB, of every
    live process at least ``depth`` levels below this one (1: children and all below them;
    2: grandchildren and below, such as the vendor processes of the collectors' fork server),
    by pid. Those that ended, or are ending (no memory left), are not in it."""
    parents: dict[int, int] = {}
    values: dict[int, float] = {}
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":", 1) for line in status.read_text().splitlines() if ":" in line
            )
            pid, ppid = int(status.parent.name), int(fields["PPid"])
        except (OSError, KeyError, ValueError):
            continue
        parents[pid] = ppid
        if field in fields:
            values[pid] = int(fields[field].split()[0]) / 1024.0

    def level(pid: int) -> int:
        """How far below this process ``pid`` is (0: not below it)."""
        me, steps = os.getpid(), 0
        while pid in parents and steps < 64:
            pid, steps = parents[pid], steps + 1
            if pid == me:
                return steps
        return 0

    return {pid: mb for pid, mb in values.items() if level(pid) >= depth}


# planning / calibration loop, best of 5 (plan_cpu, the inventory in collection order), on
# 2026-12-08 after issue 26 item 2 (measured on a loaded machine; docs/benchmarks.md, "Issue 26
# item 2"). tests/unit/test_plan_speed.py fails at 3x this.
PLAN_RATIO_RECORDED = 2.5


def plan_cpu(addresses: int, zones: int, repeats: int = 5) -> dict[str, Any]:
    """plan.resolve and plan.build (each zone, steady state) on synthetic addresses, as
    ``sync.run_once`` runs them (the inventory frozen): the best of ``repeats`` and the median,
    beside the best of the calibration loop in the same process."""
    from syncd import plan
    from syncd.model import Vendor
    from syncd.run import once as sync
    from syncd.simulators.cloudflare import DEFAULT_REGIONS

    inventory = _synthetic_inventory(addresses)
    base = peak_rss_mb()
    matcher = plan.RegionMatcher({Vendor(v): frozenset(r) for v, r in DEFAULT_REGIONS.items()})
    calibration = min(calibration_cpu() for _ in range(repeats))
    runs = []
    with sync.inventory_frozen():
        for _ in range(repeats):
            t0 = time.process_time()
            resolved = plan.resolve(inventory, matcher)
            resolve_cpu = time.process_time() - t0
            inputs = _steady_zones(resolved, zones)  # the run's reads: not timed
            t1 = time.process_time()
            _build_all(inventory, resolved, inputs)
            runs.append((resolve_cpu + time.process_time() - t1, resolve_cpu))
            del resolved, inputs
    runs.sort()
    best, median = runs[0], runs[len(runs) // 2]
    return {
        "addresses": addresses,
        "zones": zones,
        "repeats": repeats,
        "resolve_cpu": best[1],
        "build_cpu": best[0] - best[1],
        "cpu": best[0],
        "median_cpu": median[0],
        "calibration_cpu": calibration,
        "inventory_rss_mb": base,
        "peak_rss_mb": peak_rss_mb(),
    }


def calibration_cpu() -> float:
    """CPU seconds of a fixed pure-Python loop (dict, tuples, a keyed sort, like the planner's
    work): the machine's speed right now, to read planning's CPU against."""
    t0 = time.process_time()
    table = {}
    for i in range(400_000):
        table[i * 7919 % 400_009] = (i, i & 3)
    sorted(table.items(), key=_second)
    return time.process_time() - t0


def _second(item: tuple[int, tuple[int, int]]) -> tuple[int, int]:
    return item[1]


def _steady_zones(resolved: Any, zones: int) -> list[tuple[Any, ...]]:
    """Each zone's config, Cloudflare's list and the registry: every zone in sync (the
    daemon's usual run)."""
    from syncd.config import ZoneConfig
    from syncd.model import Owned

    ips = list(resolved.candidates)
    per_zone = min(3000, len(ips) // max(1, zones))
    inputs = []
    for z in range(zones):
        share = ips[z * per_zone : (z + 1) * per_zone]
        origins = frozenset(share)
        # Cloudflare's list, parsed in the order it pages (IP order), as plan.index makes it.
        current = {ip: resolved.candidates[ip].mapping for ip in share}
        owned = {
            ip: Owned(mapping=m, scope_key=resolved.candidates[ip].scope_key)
            for ip, m in current.items()
        }
        zone = ZoneConfig(id=f"be{z:030x}", origins="dns", policy="sync")
        inputs.append((zone, current, owned, origins))
    return inputs


def _build_all(inventory: Any, resolved: Any, inputs: list[tuple[Any, ...]]) -> None:
    from syncd import plan

    health = plan.Health.of(inventory)
    for zone, current, owned, origins in inputs:
        zplan = plan.build(
            zone,
            resolved,
            current=current,
            owned=owned,
            dns_origins=origins,
            health=health,
            settings=plan.PlanSettings(),
        )
        assert not zplan.upserts, "a steady-state plan has nothing to write"


def _synthetic_inventory(n: int) -> Any:
    """``n`` addresses shaped like the estate's: four clouds, real regions, tags, scope keys."""
    from syncd.model import Address, Inventory, ScopeKey, Vendor

    regions = {
        Vendor.AWS: AWS_REGIONS,
        Vendor.GCP: GCP_REGIONS,
        Vendor.AZURE: AZURE_LOCATIONS,
        Vendor.OCI: tuple(r for r, _ in OCI_REGIONS),
    }
    vendors = list(regions)
    start = int(ipaddress.IPv4Address("3.16.0.0"))
    # Collection order is not IP order (a scope's answer lists resources, not sorted IPs): the
    # addresses come in a fixed shuffled order, so that planning pays for its sorts as it does
    # on a real estate (an inventory in IP order hid a third of resolve's CPU).
    offsets = list(range(n))
    random.Random(n).shuffle(offsets)
    out = []
    for i in range(n):
        vendor = vendors[i % 4]
        region = regions[vendor][i // 4 % len(regions[vendor])]
        account = f"acct-{i % 20}"
        out.append(
            Address(
                ip=ipaddress.IPv4Address(start + offsets[i]),
                vendor=vendor,
                region=region,
                collector=f"{vendor.value}-bench",
                account=account,
                resource=f"res/{i}",
                scope_key=ScopeKey(f"{vendor.value}-bench", account, region),
                tags=(("team", f"team-{i % 4}"),),
            )
        )
    return Inventory(addresses=tuple(out))


# --- request logs as chains -----------------------------------------------------------------------


def _chains(
    collector: str, listing: int, scopes: Counter[str], after: dict[str, str] | None = None
) -> list[Task]:
    """The listing task, then one task per scope (after the listing, or after ``after[key]``)."""
    head = f"{collector}/list"
    tasks = [Task(head, listing)]
    for key, n in sorted(scopes.items()):
        tasks.append(Task(f"{collector}/{key}", n, (after or {}).get(key, head)))
    return tasks


def _aws_tasks(calls: Iterable[_AwsCall]) -> list[Task]:
    from moto.iam.models import get_account_id_from

    listing = 0
    roles: Counter[str] = Counter()
    scopes: Counter[str] = Counter()
    for call in calls:
        if call.action == "AssumeRole":
            roles[call.role_account] += 1
        elif call.service == "ec2" and call.key != AWS_HUB_KEY:
            scopes[f"{get_account_id_from(call.key)}/{call.region}"] += 1
        else:
            listing += 1  # ListAccounts, GetCallerIdentity, DescribeRegions with the hub's key
    tasks = _chains("aws", listing, scopes, {k: f"aws/role/{k.split('/')[0]}" for k in scopes})
    tasks += [Task(f"aws/role/{acct}", n, "aws/list") for acct, n in sorted(roles.items())]
    known = {t.key for t in tasks}
    return [t if not t.after or t.after in known else replace(t, after="aws/list") for t in tasks]


def _gcp_tasks(requests: list[Any]) -> list[Task]:
    """Compute calls by project; token requests (one per client) spread over the projects, the
    first one being the project search's."""
    listing = 0
    tokens = 0
    scopes: Counter[str] = Counter()
    for r in requests:
        if r.path == "/token":
            tokens += 1
        elif r.path.startswith("/compute/v1/projects/"):
            scopes[r.path.split("/")[4]] += 1
        else:
            listing += 1
    if tokens:
        listing += 1
        _spread(scopes, tokens - 1)
    return _chains("gcp", listing, scopes)


def _azure_tasks(requests: list[Any]) -> list[Task]:
    listing = 0
    scopes: Counter[str] = Counter()
    for r in requests:
        parts = r.path.lower().split("/")
        if len(parts) > 3 and parts[1] == "subscriptions" and parts[3] == "providers":
            scopes[parts[2]] += 1
        else:
            listing += 1  # OpenID configuration, token, the subscription list
    return _chains("azure", listing, scopes)


def _oci_tasks(collector: str, requests: list[Any]) -> list[Task]:
    """Scopes by (compartment, region); a region's AD list comes first in that region."""
    listing = 0
    ads: Counter[str] = Counter()
    scopes: Counter[str] = Counter()
    for r in requests:
        region, _, rest = r.path.lstrip("/").partition("/")
        if rest.endswith("/availabilityDomains"):
            ads[region] += 1
        elif rest.endswith(("/publicIps", "/subnets", "/ipv6")):
            compartment = r.param("compartmentId") or r.param("subnetId") or ""
            scopes[f"{compartment}/{region}"] += 1
        else:
            listing += 1
    after = {key: f"{collector}/ads/{key.rsplit('/', 1)[1]}" for key in scopes}
    tasks = _chains(collector, listing, scopes, after)
    head = f"{collector}/list"
    for region, n in sorted(ads.items()):
        tasks.append(Task(f"{collector}/ads/{region}", 1, head))
        # Scopes that raced for the same region's ADs asked again, in parallel.
        tasks += [Task(f"{collector}/ads/{region}/{k}", 1, head) for k in range(1, n)]
    known = {t.key for t in tasks}
    return [t if not t.after or t.after in known else replace(t, after=head) for t in tasks]


def _spread(scopes: Counter[str], extra: int) -> None:
    keys = sorted(scopes)
    for k in range(extra if keys else 0):
        scopes[keys[k % len(keys)]] += 1


_CF_ZONE = re.compile(r"/client/v4/zones/([^/]+)/")


def _cloudflare_kind(method: str, path: str) -> str:
    if path.endswith("/supported_regions"):
        return "supported_regions"
    if path.endswith("/dns_records"):
        return "dns_records"
    if path.endswith("/batch"):
        return "batch_delete" if method == "DELETE" else "batch_upsert"
    if path.endswith(("/origin/cloud_regions", "/cache/origin_cloud_regions")) and method == "GET":
        return "list_mappings"
    return f"other_{method.lower()}"


def _cloudflare_chains(arrivals: Iterable[tuple[float, str, str]]) -> dict[str, Any]:
    setup = 0
    reads: Counter[str] = Counter()
    writes: Counter[str] = Counter()
    for _, method, path in arrivals:
        kind = _cloudflare_kind(method, path)
        match = _CF_ZONE.match(path)
        zone = match.group(1) if match else ""
        if kind == "supported_regions":
            setup += 1
        elif kind in ("dns_records", "list_mappings"):
            reads[zone] += 1
        else:
            writes[zone] += 1
    zones = sorted(reads.keys() | writes.keys())
    return {
        "cf_setup": setup,
        "cf_reads": tuple(reads[z] for z in zones),
        "cf_writes": tuple(writes[z] for z in zones),
    }


# --- small pure pieces ----------------------------------------------------------------------------


def _split(total: int) -> dict[str, int]:
    """``total`` addresses by ``SHARES``; the rounding remainder goes to AWS."""
    counts = {vendor: int(total * share) for vendor, share in SHARES.items()}
    counts["aws"] += total - sum(counts.values())
    return counts


def _guid(i: int) -> str:
    return f"{i:08x}-0000-4000-8000-{i:012x}"


def _compartment(tenancy: int, c: int, root: str) -> str:
    return root if c == 0 else f"ocid1.compartment.oc1..bench{tenancy}c{c}"


def _next(names: tuple[str, ...], current: str) -> str:
    return names[(names.index(current) + 1) % len(names)]
