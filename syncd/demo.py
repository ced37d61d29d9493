"""``syncd demo``: the whole pipeline on a simulated multi-cloud estate; no account needed.

Starts every simulator in process (Cloudflare, AWS on moto's server, GCP, Azure, OCI, and a DNS
resolver), seeds a small realistic estate, writes a config pointing at them, and runs plan, sync,
a second sync that changes nothing, one simulated change (an address released, one moved) and a
third sync, then shows how Cloudflare reaches each origin (``syncd origins``): a CNAME in front of
a load balancer whose pools hold an AWS load balancer's hostname and an IP, and what Cloudflare
really fetched (``syncd origins --observed``: the simulated GraphQL Analytics API's traffic,
including an origin no record shows). One zone has Smart Tiered Cache off, which the summaries
report.
The only stage allowed to start simulators; it drives the pipeline exactly as the CLI does.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, TextIO

import boto3
import httpx
import yaml
from prometheus_client import CollectorRegistry

from syncd import config, daemon, plan
from syncd.config import Settings
from syncd.errors import ExitCode
from syncd.model import Reason, RunReport, parse_ip
from syncd.run import once as sync
from syncd.simulators.azure import AzureSimulator
from syncd.simulators.cloudflare import CloudflareSimulator
from syncd.simulators.dns import DnsSimulator
from syncd.simulators.gcp import GcpSimulator
from syncd.simulators.oci import OciSimulator
from syncd.views import logs, metrics, render

ZONE_ALL = "de300000000000000000000000000a11"
ZONE_DNS = "de300000000000000000000000000d45"
AWS_ACCOUNT = "123456789012"  # moto's default account
AZURE_SUBS = ("11111111-2222-4333-8444-555555555555", "66666666-7777-4888-9999-000000000000")
OCI_CHILD = "ocid1.compartment.oc1..demoweb"
MOVED_IP = "198.51.100.30"
RELEASED_IP = "203.0.113.11"
ALB_HOST = "demo-alb-1234.eu-west-1.elb.amazonaws.com"  # an AWS ALB the CNAME chain reaches
ALB_IP = "203.0.113.20"  # what the ALB's name resolves to: an AWS address in eu-west-1


@dataclass
class Estate:
    """Running simulators, the written config and the handles needed to change the estate."""

    workdir: Path
    config_path: Path
    env: dict[str, str]
    cloudflare: CloudflareSimulator
    gcp: GcpSimulator
    azure: AzureSimulator
    oci: OciSimulator
    aws_endpoint: str
    dns: DnsSimulator

    def settings(self) -> Settings:
        return config.load(self.config_path, self.env)

    def change(self) -> None:
        """One address released (an AWS Elastic IP) and one moved (a GCP VM to another region)."""
        ec2 = _ec2(self.aws_endpoint, "us-east-1")
        (eip,) = ec2.describe_addresses(PublicIps=[RELEASED_IP])["Addresses"]
        ec2.release_address(AllocationId=eip["AllocationId"])
        self.gcp.remove_instance("demo-web", "us-central1-a", "web-1")
        self.gcp.add_instance("demo-web", "europe-west1-b", "web-1", nat_ips=[MOVED_IP])


@contextlib.contextmanager
def estate(workdir: Path | None = None) -> Iterator[Estate]:
    """Start and seed every simulator; write ``syncd.yaml``; stop them all on exit."""
    from moto.server import ThreadedMotoServer  # the 'demo' extra

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="syncd-demo-")))
        token = secrets.token_hex(16)
        cf = stack.enter_context(CloudflareSimulator(token=token))
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        moto.start()
        stack.callback(moto.stop)
        host, port = moto.get_host_and_port()
        aws_endpoint = f"http://{host}:{port}"
        # moto keeps its state per process, not per server: start and leave it clean.
        _reset_moto(aws_endpoint)
        stack.callback(_reset_moto, aws_endpoint)
        gcp = stack.enter_context(GcpSimulator())
        azure_secret = secrets.token_hex(12)
        azure = stack.enter_context(AzureSimulator(client_secret=azure_secret))
        oci = stack.enter_context(OciSimulator())
        dns = stack.enter_context(DnsSimulator())
        dns.set_cname(ALB_HOST, f"dualstack.{ALB_HOST}")
        dns.set_addresses(f"dualstack.{ALB_HOST}", ALB_IP)
        assert azure.ca_file is not None  # noqa: S101 (a TLS simulator always has its CA)
        # The SDKs' own credential chains and CA settings read these, in this process only.
        env = {
            "CLOUDFLARE_API_TOKEN": token,
            "AWS_ACCESS_KEY_ID": "demo",
            "AWS_SECRET_ACCESS_KEY": "demo",
            "AWS_DEFAULT_REGION": "us-east-1",
            "REQUESTS_CA_BUNDLE": str(azure.ca_file),
            "SYNCD_DEMO_AZURE_SECRET": azure_secret,
        }
        stack.callback(_restore_environ, dict(os.environ))
        os.environ.update(env)
        _seed_cloudflare(cf)
        _seed_aws(aws_endpoint)
        _seed_gcp(gcp)
        _seed_azure(azure)
        oci_config = _seed_oci(oci, workdir)
        raw = _config(cf, aws_endpoint, gcp, azure, oci, workdir, oci_config)
        raw["resolver"] = {"nameservers": [dns.nameserver], "timeout": "2s"}
        path = workdir / "syncd.yaml"
        path.write_text(yaml.safe_dump(raw, sort_keys=False))
        yield Estate(workdir, path, env, cf, gcp, azure, oci, aws_endpoint, dns)


def _restore_environ(saved: dict[str, str]) -> None:
    os.environ.clear()
    os.environ.update(saved)


def run(out: TextIO, *, serve: bool = False) -> int:
    """The demo's five steps (or ``syncd run`` against the estate with ``serve``)."""
    with estate() as e:
        settings = e.settings()
        if serve:
            return _serve(settings, out)
        _say(out, f"simulated estate ready; config written to {e.config_path}")
        _say(out, "step 1/5: syncd plan (no writes)")
        _print(out, render.plan_table(sync.run_once(settings, options=sync.Options(dry_run=True))))
        _say(out, "step 2/5: syncd sync")
        first = _sync(settings, out)
        _say(out, "step 3/5: syncd sync again: nothing to change, zero writes")
        writes_before = _writes(e.cloudflare)
        _sync(settings, out)
        _print(out, f"writes to Cloudflare in this run: {_writes(e.cloudflare) - writes_before}")
        _say(out, f"step 4/5: the estate changes: {RELEASED_IP} released, {MOVED_IP} moved")
        e.change()
        _print(out, render.plan_table(sync.run_once(settings, options=sync.Options(dry_run=True))))
        _say(out, "step 5/5: syncd sync converges")
        last = _sync(settings, out)
        _say(out, "Cloudflare now holds")
        rows = [
            [zone.zone_name, ip, f"{vendor}/{region}"]
            for zone in last.zones
            for ip, (vendor, region) in sorted(
                e.cloudflare.mappings(zone.zone_id).items(),
                key=lambda kv: plan.ip_order(parse_ip(kv[0])),
            )
        ]
        _print(out, render.table(["zone", "ip", "mapping"], rows))
        _say(out, "syncd origins: how Cloudflare reaches each origin of shop.example.net")
        dry = sync.run_once(settings, options=sync.Options(dry_run=True))
        shop = [z for z in dry.zones if z.zone_id == ZONE_DNS]
        _print(out, render.origins(replace(dry, zones=tuple(shop)), "table"))
        _say(out, "syncd origins --observed: what Cloudflare really fetched, and the hints' effect")
        seen = sync.run_once(settings, options=sync.Options(dry_run=True, observe_now=True))
        _print(out, render.observed(seen, "table"))
        # Skips and an undiscovered origin are expected in the demo; failures are not.
        ok = not any(z.failures or z.error for z in (*first.zones, *last.zones))
        return ExitCode.OK if ok and not first.error and not last.error else ExitCode.FAILED


def _sync(settings: Settings, out: TextIO) -> RunReport:
    report = sync.run_once(settings)
    logs.log_report(report)
    _print(out, render.summary(report))
    return report


def _serve(settings: Settings, out: TextIO) -> int:
    _say(out, f"syncd run against the simulators; metrics on {settings.metrics.listen}")
    registry = CollectorRegistry()
    return daemon.run_service(
        settings,
        run=lambda: sync.run_once(settings),
        metrics=metrics.Metrics(registry, error_reasons=tuple(Reason)),
        registry=registry,
    )


def _writes(cf: CloudflareSimulator) -> int:
    return len([r for r in cf.requests_matching(path=r"/batch$") if r.method != "GET"])


def _say(out: TextIO, text: str) -> None:
    out.write(f"\n=== {text}\n")
    out.flush()


def _print(out: TextIO, text: str) -> None:
    out.write(text + "\n")
    out.flush()


# --- the estate -----------------------------------------------------------------------------


def _seed_cloudflare(cf: CloudflareSimulator) -> None:
    cf.add_zone(ZONE_ALL, "example.com")
    cf.add_zone(ZONE_DNS, "shop.example.net")
    cf.set_mapping(ZONE_ALL, "192.0.2.200", "aws", "us-west-2")  # made by hand: left alone
    for name, ip in (
        ("shop", "203.0.113.10"),
        ("api", "34.120.0.5"),
        ("eu", "198.51.100.40"),
        ("v6", "2001:db8:a::10"),
        ("legacy", "192.0.2.250"),  # no collector finds it: reported undiscovered_origin
    ):
        kind = "AAAA" if ":" in ip else "A"
        cf.add_dns_record(ZONE_DNS, kind, f"{name}.shop.example.net", ip)
    # www is a CNAME to the zone's load balancer; its pools hold an AWS ALB's hostname (resolved
    # through DNS) and an OCI address; "old" points at a name that no longer exists.
    alb = cf.add_pool("alb-eu", [{"name": "alb", "address": ALB_HOST}])
    oci = cf.add_pool("oci-fra", [{"name": "fra-1", "address": "192.0.2.61"}])
    cf.add_load_balancer(ZONE_DNS, "lb.shop.example.net", default_pools=[alb], fallback_pool=oci)
    cf.add_dns_record(ZONE_DNS, "CNAME", "www.shop.example.net", "lb.shop.example.net")
    cf.add_dns_record(ZONE_DNS, "CNAME", "old.shop.example.net", "retired.example.org")
    # Region hints do nothing on a zone without Smart Tiered Cache: the summaries say so.
    cf.set_smart_topology(ZONE_ALL, False)
    _seed_traffic(cf)


def _seed_traffic(cf: CloudflareSimulator) -> None:
    """What Cloudflare fetched in the last hour (the GraphQL Analytics API): the records'
    origins through the upper tiers of their regions, an Azure address no record shows (a
    Worker's subrequests: traffic proves it an origin), an origin no collector finds, and the
    hand-made mapping's traffic through its region's upper tier (an old hint: judged)."""
    fetched = (
        (ZONE_DNS, "203.0.113.10", "IAD", 4200),  # aws us-east-1
        (ZONE_DNS, "203.0.113.10", "FRA", 300),
        (ZONE_DNS, "34.120.0.5", "ord01", 1800),  # gcp us-central1, spelled another way
        (ZONE_DNS, "198.51.100.40", "AMS", 900),  # gcp europe-west1
        (ZONE_DNS, "198.51.100.50", "IAD", 600),  # azure eastus, no record: a Worker's
        (ZONE_DNS, "192.0.2.250", "IAD", 120),  # legacy: no collector finds it
        (ZONE_ALL, "192.0.2.200", "SEA", 700),  # aws us-west-2, made by hand
        (ZONE_ALL, "192.0.2.200", "LAX", 100),
    )
    for zone, ip, tier, count in fetched:
        cf.analytics.add_fetches(zone, ip, count, upper_tier=tier)
    cf.analytics.add_fetches(ZONE_DNS, "", 25_000, cache_status="hit")  # answered from cache


def _reset_moto(endpoint: str) -> None:
    httpx.post(f"{endpoint}/moto-api/reset").raise_for_status()


def _ec2(endpoint: str, region: str) -> Any:
    return boto3.client("ec2", region_name=region, endpoint_url=endpoint)


def _seed_aws(endpoint: str) -> None:
    east = _ec2(endpoint, "us-east-1")
    for ip in ("203.0.113.10", RELEASED_IP, "203.0.113.99"):
        east.allocate_address(
            Domain="vpc",
            Address=ip,
            TagSpecifications=[
                {"ResourceType": "elastic-ip", "Tags": [{"Key": "team", "Value": "web"}]}
            ],
        )
    vpc = east.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = east.create_subnet(VpcId=vpc, CidrBlock="10.0.1.0/24")["Subnet"]["SubnetId"]
    east.create_network_interface(SubnetId=subnet, Description="private only")
    west = _ec2(endpoint, "eu-west-1")
    west.allocate_address(Domain="vpc", Address="203.0.113.20")


def _seed_gcp(gcp: GcpSimulator) -> None:
    gcp.add_project("demo-web")
    gcp.add_project("demo-data")
    gcp.add_instance("demo-web", "us-central1-a", "web-1", nat_ips=[MOVED_IP])
    gcp.add_instance(
        "demo-web",
        "europe-west1-b",
        "web-2",
        nat_ips=["198.51.100.40"],
        ipv6=[("2001:db8:a::10", 96)],
    )
    gcp.add_address("demo-web", "us-central1", "api", "34.120.0.5")
    gcp.add_address("demo-data", "us-east1", "db-internal", "10.10.0.5", address_type="INTERNAL")
    gcp.add_forwarding_rule("demo-data", None, "global-lb", "34.110.0.1")  # global anycast


def _seed_azure(azure: AzureSimulator) -> None:
    for sub in AZURE_SUBS:
        azure.add_subscription(sub)
    azure.add_public_ip(AZURE_SUBS[0], "app-eastus", location="eastus", ip="198.51.100.50")
    azure.add_public_ip(AZURE_SUBS[0], "app-v6", location="westeurope", ip="2001:db8:b::1")
    azure.add_public_ip(AZURE_SUBS[0], "pending", location="eastus", ip=None)  # unallocated
    azure.add_public_ip(AZURE_SUBS[1], "india", location="westindia", ip="198.51.100.60")
    # The same IP as an AWS Elastic IP, in another cloud: a conflict, skipped and reported.
    azure.add_public_ip(AZURE_SUBS[1], "dup", location="westeurope", ip="203.0.113.99")


def _seed_oci(oci: OciSimulator, workdir: Path) -> tuple[Path, str]:
    oci.add_region("us-ashburn-1", "IAD")
    oci.add_region("eu-frankfurt-1", "FRA")
    oci.subscribe(oci.tenancy, "us-ashburn-1")
    oci.subscribe(oci.tenancy, "eu-frankfurt-1")
    oci.add_compartment(OCI_CHILD, oci.tenancy)
    oci.add_public_ip("us-ashburn-1", OCI_CHILD, "192.0.2.60", lifetime="RESERVED")
    oci.add_public_ip("eu-frankfurt-1", oci.tenancy, "192.0.2.61", lifetime="RESERVED")
    return oci.write_config(workdir)


def _config(  # noqa: PLR0917 (one call site, in order of the estate)
    cf: CloudflareSimulator,
    aws_endpoint: str,
    gcp: GcpSimulator,
    azure: AzureSimulator,
    oci: OciSimulator,
    workdir: Path,
    oci_config: tuple[Path, str],
) -> dict[str, Any]:
    key_file = gcp.write_service_account(workdir / "gcp-key.json")
    return {
        "cloudflare": {
            "api_token": "${CLOUDFLARE_API_TOKEN}",
            "base_url": cf.base_url,
            "timeout": "10s",
            "retries": 2,
            "backoff": "50ms",
            "zones": [
                {"id": ZONE_ALL, "name": "example.com", "origins": "all", "policy": "sync"},
                {"id": ZONE_DNS, "name": "shop.example.net", "origins": "dns"},
            ],
        },
        "collectors": {
            "scope_timeout": "20s",
            "request_timeout": "10s",
            "static": [
                {"ip": "192.0.2.5", "vendor": "aws", "region": "eu-west-1"},
                {"ip": "10.0.0.5", "vendor": "aws", "region": "us-east-1"},  # not public
            ],
            **_clouds(aws_endpoint, gcp, azure, oci, key_file, oci_config),
        },
        "schedule": {"interval": "30s"},
        "metrics": {"listen": "127.0.0.1:9464"},
        "state": {"path": str(workdir / "state.db")},
        "logging": {"level": "warning"},
    }


def _clouds(  # noqa: PLR0917 (one call site, in order of the estate)
    aws_endpoint: str,
    gcp: GcpSimulator,
    azure: AzureSimulator,
    oci: OciSimulator,
    key_file: Path,
    oci_config: tuple[Path, str],
) -> dict[str, list[dict[str, Any]]]:
    """One collector per cloud, each aimed at its simulator."""
    aws = {"name": "aws-demo", "regions": ["us-east-1", "eu-west-1"], "endpoint_url": aws_endpoint}
    return {
        "aws": [aws],
        "gcp": [
            {
                "name": "gcp-demo",
                "credentials_file": str(key_file),
                "api_endpoint": gcp.url,
                "resource_manager_endpoint": gcp.url,
            }
        ],
        "azure": [
            {
                "name": "azure-demo",
                "tenant_id": azure.tenant_id,
                "client_id": azure.client_id,
                "client_secret": "${SYNCD_DEMO_AZURE_SECRET}",
                "authority_host": azure.url,
                "base_url": azure.url,
            }
        ],
        "oci": [
            {
                "name": "oci-demo",
                "config_file": str(oci_config[0]),
                "profile": oci_config[1],
                "service_endpoint_template": oci.endpoint_template(),
            }
        ],
    }
