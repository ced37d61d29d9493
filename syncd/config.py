"""Configuration: the YAML file, validated into frozen pydantic models grouped by concern.

``load()`` is the only place that reads files and environment variables. ``${VAR}`` and
``${VAR:-default}`` are expanded before validation so secrets stay out of files. Every problem is
reported with its key path on one line; secret values are never echoed back, other values are cut
to ``SHOWN_CHARS``, and a YAML error points at a line and column without quoting the file (the
line may hold a token). The YAML reader refuses what would crash or stall it: duplicate keys,
nesting deeper than ``MAX_DEPTH``, aliases expanding past ``MAX_NODES`` nodes.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import yaml
from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from syncd.errors import ConfigError
from syncd.model import Policy, Vendor

DEFAULT_PATH = Path("config/syncd.yaml")
DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
SHOWN_CHARS = 80  # an echoed value is cut to this many characters (a 100 KB value stays out)


def shown(value: object) -> str:
    """``repr(value)`` for a message, cut to ``SHOWN_CHARS`` characters."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[: SHOWN_CHARS - 3]}... ({len(text):,} characters)"


def parse_duration(value: object) -> float:
    """``15m``, ``30s``, ``1.5h``, ``250ms`` or a plain number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value)):
        return float(m.group(1)) * _UNITS[m.group(2)]
    raise ValueError(f"not a duration (use e.g. 30s, 15m, 1h): {shown(value)}")


def format_duration(seconds: float) -> str:
    """The shortest of ``250ms``, ``30s``, ``5m``, ``6h``, ``7d`` that is exact."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms" if 0 < seconds < 1 else f"{seconds:g}s"


def _within(low: float, high: float) -> AfterValidator:
    """A duration between ``low`` and ``high`` seconds; infinity and NaN are never one."""

    def check(seconds: float) -> float:
        if not (math.isfinite(seconds) and low <= seconds <= high):
            raise ValueError(f"must be between {format_duration(low)} and {format_duration(high)}")
        return seconds

    return AfterValidator(check)


# Each duration has a range a serious deployment stays inside (docs/configuration.md): 0 would
# fail every request, .inf or 1e10 would crash the socket layer or never end.
RequestTimeout = Annotated[float, BeforeValidator(parse_duration), _within(0.1, 300.0)]
Backoff = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 60.0)]
RatePeriod = Annotated[float, BeforeValidator(parse_duration), _within(1.0, 86400.0)]
ScopeTimeout = Annotated[float, BeforeValidator(parse_duration), _within(1.0, 6 * 3600.0)]
Interval = Annotated[float, BeforeValidator(parse_duration), _within(0.01, 7 * 86400.0)]
Jitter = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 86400.0)]
ShutdownTimeout = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 3600.0)]
StaleAfter = Annotated[float, BeforeValidator(parse_duration), _within(1.0, 30 * 86400.0)]
VerifyInterval = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 30 * 86400.0)]
ResolveTimeout = Annotated[float, BeforeValidator(parse_duration), _within(0.01, 300.0)]


def _path(value: object) -> object:
    """A file path given as text: not empty (``''`` would become ``.``), no NUL byte."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("a path cannot be empty")
        if "\x00" in value:
            raise ValueError("a path cannot contain a NUL byte")
    return value


FilePath = Annotated[Path, BeforeValidator(_path)]


def _header_value(value: str) -> str:
    """``value`` without surrounding whitespace (a mounted secret file ends in a newline); it must
    be sendable as an HTTP header value. The message names the key and never the value."""
    text = value.strip()
    if not text:
        raise ValueError("is empty (after removing surrounding whitespace)")
    for position, char in enumerate(text, 1):
        if not " " < char < "\x7f":
            raise ValueError(
                f"cannot be sent in an HTTP header: character {position} of {len(text)} "
                "is a space, a control or a non-ASCII character"
            )
    return text


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback_host(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1, the only hosts plain HTTP is allowed to."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_url(value: str, *, plain_http: Literal["loopback", "never", "any"] = "loopback") -> str:
    """An http(s) URL. Plain http carries credentials in clear, so by default only to loopback
    (the simulators); ``never`` where TLS is required, ``any`` where nothing secret is sent."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {shown(value)}")
    if parts.scheme == "http" and plain_http == "never":
        raise ValueError(f"https is required here (plain http is never allowed): {shown(value)}")
    if parts.scheme == "http" and plain_http == "loopback" and not is_loopback_host(parts.hostname):
        raise ValueError(f"plain http is allowed only for loopback hosts: {shown(value)}")
    return value.rstrip("/")


# --- cloudflare -----------------------------------------------------------------------------


_ZONE_ID = re.compile(r"[0-9a-fA-F]{32}")


class ZoneSettings(_Section):
    """What syncd does in one zone: every per-zone key except its identity (id, name).

    ``cloudflare.zone_discovery.defaults`` is one of these, applied to every discovered zone.
    """

    origins: Literal["dns", "all"] = Field(
        "dns",
        description=(
            "`dns`: only the addresses Cloudflare really connects to for the zone, so the 3,500 "
            "budget goes to real origins: the contents of its A and AAAA records; the targets of "
            "its CNAME records, followed through the zone's own records when inside the zone and "
            "through DNS (the `resolver` section) when not, chains included (at most 8 links; a "
            "loop is reported); and the origins of the zone's Cloudflare Load Balancers (every "
            "pool they name: default, fallback, region, country and PoP pools; each enabled "
            "origin's address, an IP or a hostname resolved the same way). Every page of the DNS "
            "records API is read. An origin no collector found is reported `undiscovered_origin`; "
            "a name with no address (NXDOMAIN, no A/AAAA data) is a skip `unresolved_origin` "
            "naming the record and target; a name the resolver could not answer (timeout, "
            "SERVFAIL, REFUSED, no resolver), a chain over 8 links, a loop, a pool address that "
            "is neither an IP nor a hostname or a missing pool fails that origin: the run exits 1 "
            "and nothing is deleted in the zone that run. `syncd origins` shows every origin and "
            "how it is reached. `all`: every discovered address goes to the zone (small estates)."
        ),
    )
    proxied_only: bool = Field(
        False,
        description=(
            "With `origins: dns`: only proxied records and proxied load balancers are origins "
            "(the records a proxied CNAME leads to are followed whatever their own proxy status)."
        ),
    )
    collectors: tuple[str, ...] | None = Field(
        None, min_length=1, description="Collector names feeding this zone."
    )
    policy: Policy = Field(
        Policy.UPSERT_ONLY,
        description=(
            "`upsert-only` never deletes. `sync` also deletes mappings syncd owns whose address "
            "is no longer discovered, never from a scope that failed this run, and never more "
            "than `sync.max_delete_fraction` of the zone's owned mappings without "
            "`--allow-mass-delete`."
        ),
    )
    adopt: bool = Field(
        False,
        description=(
            "Take ownership of existing mappings that equal what syncd discovered (after a lost "
            "state file, or to take over hand-made mappings). Mappings syncd does not own are "
            "otherwise never changed or deleted (`foreign_mapping`)."
        ),
    )
    match_tags: dict[str, str] = Field(
        default_factory=dict,
        description=(
            "Only addresses whose cloud resource carries all these tags or labels (AWS tags, GCP "
            "labels, Azure tags, OCI freeform tags). Static entries are explicit and always "
            "match."
        ),
    )


class ZoneConfig(ZoneSettings):
    id: str = Field(
        description=(
            "The zone id: 32 hexadecimal characters (the zone's Overview page); upper case is "
            "read as lower case."
        )
    )
    name: str = Field("", description="Used in logs, metrics (`zone` label) and output.")

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _ZONE_ID.fullmatch(value):
            raise ValueError("a zone id is 32 hexadecimal characters (the zone's Overview page)")
        return value.lower()

    @property
    def label(self) -> str:
        return self.name or self.id


# A zone name glob: DNS name characters and fnmatch's * ? [...] (a [ must close).
_GLOB = re.compile(r"^(?:[a-z0-9._*?-]|\[!?[a-z0-9._-]+\])+$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")


def check_glob(pattern: str) -> str:
    """A valid zone-name glob, lower-cased (zone names are case-insensitive)."""
    lowered = pattern.strip().lower()
    if not _GLOB.fullmatch(lowered):
        raise ValueError(
            f"not a valid zone name glob: {shown(pattern)} (use letters, digits, '-', '.', "
            "and the wildcards *, ? and [...] with a closing ])"
        )
    return lowered


class ZoneDiscoveryConfig(_Section):
    """Every active zone the token can list, filtered by account and name, kept in step."""

    account_ids: tuple[str, ...] = Field(
        (),
        description=(
            "Only zones of these accounts (32 hex characters each), one listing per account "
            "(`account.id` filter). Empty: every zone the token can read."
        ),
    )
    include: tuple[str, ...] = Field(
        ("*",),
        min_length=1,
        description=(
            "Zone name globs (`*`, `?`, `[...]`; case-insensitive); a zone is kept if any "
            "matches. A pattern that is not a valid glob (an unclosed `[`, a space, a `/`) is a "
            "config error naming it (exit 2)."
        ),
    )
    exclude: tuple[str, ...] = Field(
        (),
        description=(
            "Zone name globs; a zone matching any of them is left out even when included."
        ),
    )
    defaults: ZoneSettings = Field(
        default_factory=ZoneSettings,
        description=(
            "Every per-zone key for discovered zones: "
            "`cloudflare.zone_discovery.defaults.origins`, "
            "`cloudflare.zone_discovery.defaults.proxied_only`, "
            "`cloudflare.zone_discovery.defaults.collectors`, "
            "`cloudflare.zone_discovery.defaults.policy`, "
            "`cloudflare.zone_discovery.defaults.adopt` and "
            "`cloudflare.zone_discovery.defaults.match_tags` mean what `cloudflare.zones[].*` of "
            "the same name mean."
        ),
    )

    @field_validator("account_ids")
    @classmethod
    def _accounts(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for account in value:
            if not _HEX32.fullmatch(account):
                raise ValueError(f"an account id is 32 lower-case hex characters: {shown(account)}")
        return value

    @field_validator("include", "exclude")
    @classmethod
    def _globs(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(check_glob(p) for p in value)


class RateLimitConfig(_Section):
    requests: int = Field(1200, ge=1, description="Client-side limit on Cloudflare requests ...")
    period: RatePeriod = Field(
        300.0,
        description=(
            "... per sliding window, shared by all zones of a run and, under `syncd run`, by "
            "every run of the service (Cloudflare counts per user, across runs). Cloudflare's own "
            "limit is 1,200 per 5 minutes per user; syncd keeps headroom (5% fewer requests, each "
            "counted 5% longer than the period, at most 1 s more) because it counts requests as "
            "they leave and Cloudflare as they arrive; a 429 pauses every zone until its "
            "`Retry-After` has passed. The window is kept in the state database, so consecutive "
            "`syncd sync` processes (a CronJob) and a restarted `syncd run` go on counting the "
            "requests the previous one sent (a plan reads it but does not add to it). When "
            "Cloudflare's answers carry rate-limit headers (`Ratelimit`/`Ratelimit-Policy`, or "
            "`X-RateLimit-Remaining`/`-Reset`/`-Limit`), syncd also stops sending while the "
            "server's remaining quota, which counts the user's other tools too, is down to the "
            "same 5% reserve, until the server's window resets; "
            "`syncd_cloudflare_budget_remaining` shows the figure. Other tools on the same user "
            "that send no such headers still share Cloudflare's limit but not syncd's: lower "
            "`requests` for them."
        ),
    )


class CloudflareConfig(_Section):
    api_token: SecretStr | None = Field(
        None,
        description=(
            "API token (preferred). Sent as `Authorization: Bearer`; never logged. Surrounding "
            "whitespace is removed (a secret file mounted from Kubernetes or Vault often ends in "
            "a newline); a space, control or non-ASCII character inside it is an error naming the "
            "key and the character's position, never the value."
        ),
    )
    api_email: str | None = Field(
        None,
        description=("With `api_key`: the legacy Global API Key scheme. Checked like `api_token`."),
    )
    api_key: SecretStr | None = Field(
        None, description="The Global API Key (secret). Checked like `api_token`."
    )
    base_url: str = Field(
        DEFAULT_BASE_URL,
        description=("Plain `http://` is accepted only for loopback hosts (the simulators)."),
    )
    api: Literal["auto", "v1", "v2"] = Field(
        "auto",
        description=(
            "`v2` (current), `v1` (deprecated, end of life 2026-10-01) or `auto`: v2, falling "
            "back to v1 for a zone where Cloudflare answers that the v2 route does not exist "
            "(codes 7000/7003). Which one served a zone is logged and shown in the summary."
        ),
    )
    max_mappings_per_zone: int = Field(
        3500,
        ge=1,
        description=(
            "Cloudflare's per-zone maximum. A larger desired set is cut to a deterministic subset "
            "(IPv4 before IPv6, numeric order) and the rest is reported as skipped "
            "`over_capacity`; updates always fit."
        ),
    )
    timeout: RequestTimeout = Field(
        30.0,
        description=(
            "Per Cloudflare request: to connect, and for each read of the answer. Cloud API "
            "requests have their own, `collectors.request_timeout`."
        ),
    )
    retries: int = Field(
        5,
        ge=0,
        le=20,
        description=(
            "Retries of a retryable Cloudflare error: 429, 5xx, codes 1140 and 1156, timeouts and "
            "resets. 1157, 1164, auth errors and other 4xx are never retried."
        ),
    )
    backoff: Backoff = Field(
        0.5,
        description=(
            "First retry delay; it doubles per retry up to 30 s, with jitter. A 429's "
            "`Retry-After` wins."
        ),
    )
    batch_size: int = Field(
        100,
        ge=1,
        le=100,
        description=(
            "Items per Cloudflare batch request (1..100; Cloudflare accepts at most 100)."
        ),
    )
    rate_limit: RateLimitConfig = Field(
        RateLimitConfig(), description="The client-side limit on Cloudflare requests."
    )
    verify_interval: VerifyInterval = Field(
        3600.0,
        description=(
            "syncd keeps each zone's last known mappings in the state database (a mirror: its "
            "last full list plus every write Cloudflare confirmed since) and plans against it, so "
            "a steady run costs O(zones), not O(mappings). A zone is listed in full again when "
            "this long has passed since its last full list (each zone's first due time is spread "
            "over the interval, so verifications never bunch), when a write's answer disagreed "
            "with the mirror (an item refused, the zone full, a request failed), when a batch's "
            "outcome is unknown (pending after a crash), when the mirror is missing or "
            "unreadable, and on `syncd sync --verify`. Drift found then is counted "
            "(`syncd_mapping_drift_total{zone}`) and repaired in the same run. A mapping changed "
            "by hand or by another tool is therefore seen within this interval; `0` lists every "
            "zone at every run (the behaviour before the mirror)."
        ),
    )
    zones: tuple[ZoneConfig, ...] = Field(
        (),
        description=(
            "The zones to keep in step. At least one, unless `zone_discovery` is set; with it, an "
            "explicitly listed zone replaces the discovery defaults for itself (its own keys, or "
            "the built-in defaults for keys it leaves out)."
        ),
    )
    zone_discovery: ZoneDiscoveryConfig | None = Field(
        None,
        description=(
            "Keep every **active** zone the token can list (`GET /zones`, every page) in step, in "
            "addition to `zones`. A zone that appears is picked up at the next run; one that "
            "disappears is reported (`zone_vanished` event, a line in the summary), never an "
            "error. No match is a warning and a run with nothing to do (exit 0). A token that "
            "cannot list zones fails the run (exit 1) naming the permission it needs: **Zone "
            "Read** (Zone > Zone > Read). `syncd check-config --zones` prints the resolved list. "
            "Costs one request per 50 zones per run (per account)."
        ),
    )

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("api_token", "api_key")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(_header_value(value.get_secret_value()))

    @field_validator("api_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else _header_value(value)

    @model_validator(mode="after")
    def _auth(self) -> CloudflareConfig:
        if not self.zones and self.zone_discovery is None:
            raise ValueError(
                "set cloudflare.zones (at least one zone) or cloudflare.zone_discovery"
            )
        if self.api_token is None and (self.api_email is None or self.api_key is None):
            raise ValueError(
                "set cloudflare.api_token (or CLOUDFLARE_API_TOKEN), or both "
                "cloudflare.api_email and cloudflare.api_key"
            )
        for what, values in (
            ("ids", [z.id for z in self.zones]),
            ("names", [z.label for z in self.zones]),
        ):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"zone {what} must be unique; repeated: {repeated}")
        return self


# --- collectors -----------------------------------------------------------------------------


class StaticEntry(_Section):
    ip: str = Field(
        description=(
            "IPv4 or IPv6 address. An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`) names the "
            "IPv4 host and is mapped as that IPv4 address (`check-config` shows it so). An "
            "address with a zone index (`fe80::1%eth0`) names a local link, never a public "
            "origin, and is an error."
        )
    )
    vendor: Vendor = Field(description="`aws`, `azure`, `gcp` or `oci`.")
    region: str = Field(
        min_length=1,
        description=("The vendor's region id as Cloudflare lists it (`syncd regions`)."),
    )

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ip = ipaddress.ip_address(value.strip())
        except ValueError:
            raise ValueError(f"not an IP address: {shown(value)}") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
            raise ValueError(
                "an address with a zone index (%interface) names a local link, never a public "
                "origin"
            )
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # ::ffff:a.b.c.d is the IPv4 host a.b.c.d written as IPv6; Cloudflare maps it as IPv4.
            return str(ip.ipv4_mapped)
        return str(ip)


class _Named(_Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$", description="Collector name.")


class AwsOrganization(_Section):
    role_name: str = Field(
        min_length=1,
        description=("Assumed as `arn:aws:iam::<account>:role/<role_name>` in each account."),
    )
    exclude: tuple[str, ...] = Field((), description="Account ids to leave out.")
    external_id: str | None = Field(
        None, min_length=2, description="ExternalId for the member roles."
    )


class AwsCollectorConfig(_Named):
    profile: str | None = Field(
        None,
        description=("A named profile; otherwise env, web identity (IRSA), instance role, ..."),
    )
    role_arn: str | None = Field(
        None, description="Role assumed from the base credentials (refreshable)."
    )
    external_id: str | None = Field(
        None, min_length=2, description="ExternalId for `role_arn` (at least 2 characters)."
    )
    session_name: str = Field("syncd", description="RoleSessionName of assumed roles.")
    regions: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=(
            "`all`: every region `describe_regions(AllRegions=True)` reports enabled or opted in; "
            "or a list."
        ),
    )
    organization: AwsOrganization | None = Field(
        None,
        description=("Scan every ACTIVE account of the AWS Organization instead of one account."),
    )
    endpoint_url: str | None = Field(None, description="Simulators and tests only (moto).")

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class GcpCollectorConfig(_Named):
    projects: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=(
            "`all`: every ACTIVE project the credentials can see (Resource Manager search); or a "
            "list of ids."
        ),
    )
    credentials_file: FilePath | None = Field(
        None,
        description=(
            "A service-account JSON key; otherwise Application Default Credentials (including "
            "workload identity)."
        ),
    )
    global_region: str | None = Field(
        None,
        description=(
            "Global (anycast) addresses and forwarding rules have no single region and are "
            "skipped as `global_anycast` unless mapped here explicitly."
        ),
    )
    api_endpoint: str | None = Field(None, description="Simulators and tests only.")
    resource_manager_endpoint: str | None = Field(None, description="Simulators and tests only.")

    @field_validator("api_endpoint", "resource_manager_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class AzureCollectorConfig(_Named):
    subscriptions: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=("`all`: every Enabled subscription the identity can see; or a list of ids."),
    )
    tenant_id: str | None = Field(None, description="Tenant of the client credential.")
    client_id: str | None = Field(
        None,
        description=(
            "With `client_secret` or `client_certificate_path`; otherwise "
            "`DefaultAzureCredential` (environment, workload identity, managed identity, Azure "
            "CLI)."
        ),
    )
    client_secret: SecretStr | None = Field(None, description="Secret; masked everywhere.")
    client_certificate_path: FilePath | None = Field(
        None, description="PEM certificate with private key."
    )
    authority_host: str | None = Field(
        None, description="Entra ID authority (sovereign clouds; the simulator)."
    )
    base_url: str | None = Field(
        None, description=("Simulators and tests only; https only (bearer tokens need TLS).")
    )

    @field_validator("base_url", "authority_host")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        # ARM needs TLS for bearer tokens even towards the simulator.
        return None if value is None else _check_url(value, plain_http="never")

    @model_validator(mode="after")
    def _credential(self) -> AzureCollectorConfig:
        secret, cert = self.client_secret is not None, self.client_certificate_path is not None
        if secret and cert:
            raise ValueError("set client_secret or client_certificate_path, not both")
        if (secret or cert) and not (self.client_id and self.tenant_id):
            raise ValueError("client_secret/client_certificate_path need client_id and tenant_id")
        return self


class OciCollectorConfig(_Named):
    config_file: FilePath = Field(Path("~/.oci/config"), description="With `auth: api_key`.")
    profile: str = Field("DEFAULT", description="Profile of the config file.")
    auth: Literal["api_key", "instance_principal", "resource_principal"] = Field(
        "api_key", description="`api_key`, `instance_principal` or `resource_principal`."
    )
    compartments: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=(
            "`all`: the tenancy and every ACTIVE compartment in its subtree; or a list of OCIDs."
        ),
    )
    regions: Literal["subscribed"] | tuple[str, ...] = Field(
        "subscribed",
        description=("The tenancy's region subscriptions, or a list (`us-ashburn-1`, ...)."),
    )
    service_endpoint_template: str | None = Field(
        None, description="Simulators and tests only: a URL containing `{region}`."
    )

    @field_validator("service_endpoint_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "{region}" not in value:
            raise ValueError(f"must contain {{region}}: {shown(value)}")
        return _check_url(value.replace("{region}", "region")).replace("region", "{region}", 1)


class CollectorsConfig(_Section):
    concurrency: int = Field(
        16,
        ge=1,
        le=256,
        description=(
            "Collector tasks (account x region, project, subscription, compartment x region) "
            "running at once, across all clouds."
        ),
    )
    attempts: int = Field(
        5,
        ge=1,
        le=20,
        description=(
            "Attempts per cloud API request, the first included: each SDK's own retry (backoff on "
            "throttling and 5xx) is configured from it."
        ),
    )
    scope_timeout: ScopeTimeout = Field(
        120.0,
        description=(
            "The most a failing scope may cost, its SDK retries included; it is then failed and "
            "its mappings are protected from deletion."
        ),
    )
    request_timeout: RequestTimeout = Field(
        30.0,
        description=(
            "Per cloud API request (to connect and to read), cut to what the scope has left."
        ),
    )
    static: tuple[StaticEntry, ...] = Field(
        (),
        description=(
            "Origins outside any scanned account: `{ip, vendor, region}`. A static entry wins "
            "over a discovered one for the same IP."
        ),
    )
    aws: tuple[AwsCollectorConfig, ...] = Field(
        (), description="Named AWS accounts or Organizations to scan."
    )
    gcp: tuple[GcpCollectorConfig, ...] = Field(
        (), description="Named Google Cloud projects to scan."
    )
    azure: tuple[AzureCollectorConfig, ...] = Field(
        (), description="Named Azure subscriptions to scan."
    )
    oci: tuple[OciCollectorConfig, ...] = Field((), description="Named OCI tenancies to scan.")

    def names(self) -> list[str]:
        named: list[_Named] = [*self.aws, *self.gcp, *self.azure, *self.oci]
        return (["static"] if self.static else []) + [c.name for c in named]

    @model_validator(mode="after")
    def _unique(self) -> CollectorsConfig:
        names = self.names()
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"collector names must be unique; repeated: {dupes}")
        return self


# --- the rest -------------------------------------------------------------------------------


class SyncConfig(_Section):
    """The planner's safety settings (Cloudflare's client and the collectors have their own)."""

    max_delete_fraction: float = Field(
        0.2,
        ge=0,
        le=1,
        allow_inf_nan=False,
        description=(
            "A zone with at least 10 owned mappings refuses to delete more than this share of "
            "them in one run unless `--allow-mass-delete` is given; the refusal is logged, "
            "counted, shown by `syncd plan`, and makes the run exit 1 (its upserts still go "
            "through)."
        ),
    )


# Keys that moved when settings were grouped by concern: an old key is an error naming its place.
MOVED = {
    "sync.timeout": "cloudflare.timeout (Cloudflare requests) and collectors.request_timeout "
    "(cloud API requests); it used to set both",
    "sync.retries": "cloudflare.retries",
    "sync.backoff": "cloudflare.backoff",
    "sync.batch_size": "cloudflare.batch_size",
    "sync.concurrency": "collectors.concurrency",
    "sync.cloud_attempts": "collectors.attempts",
    "sync.scope_timeout": "collectors.scope_timeout",
}


def cron_trigger(expression: str, *, jitter: float | None = None) -> CronTrigger:
    """APScheduler's trigger for a five-field crontab expression, the one cron parser of syncd.

    Not ``CronTrigger.from_crontab``: APScheduler 3.x counts weekdays from Monday (its issue
    286), so crontab's weekday field (0 or 7 is Sunday) is translated to day names first.
    Raises ``ValueError`` naming the expression."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron needs five fields (min hour day month weekday): {shown(expression)}"
        )
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_weekdays(weekday),
            jitter=jitter,
        )
    except ValueError as exc:
        raise ValueError(f"not a valid cron expression {shown(expression)}: {exc}") from None


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 is Sunday; names; ranges; steps) as APScheduler names."""
    if field in {"*", "?"}:
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            start, _, end = span.partition("-")
            first = _crontab_weekday(start)
            last = _crontab_weekday(end) if end else (6 if step else first)
        if not step.isdigit() and step:
            raise ValueError(f"bad step in weekday field: {part!r}")
        days.update(d % 7 for d in range(first, last + 1, int(step or 1)))
    if not days:
        raise ValueError(f"weekday range selects no day: {field!r}")
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def _crontab_weekday(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(text[:3])
    raise ValueError(f"not a weekday: {text!r}")


class ScheduleConfig(_Section):
    interval: Interval | None = Field(
        900.0, description="Time between syncs; the first starts at once."
    )
    cron: str | None = Field(
        None, description="A five-field cron expression instead of `interval`."
    )
    jitter: Jitter = Field(0.0, description="Random delay added to each run.")
    shutdown_timeout: ShutdownTimeout = Field(
        30.0,
        description=(
            "On SIGTERM/SIGINT scheduling stops and the run in flight may finish within this; "
            "syncd then exits 0, or 1 if the run had to be abandoned."
        ),
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            cron_trigger(value)  # the daemon's own trigger, built once here to check it
        return value


class MetricsConfig(_Section):
    listen: str = Field(
        "0.0.0.0:9464",
        description=(
            "`/metrics`, `/healthz`, `/readyz` for `syncd run`. Bind it to a private address."
        ),
    )
    pushgateway: str | None = Field(
        None, description="`syncd sync` pushes its metrics here once at the end."
    )
    instance: str | None = Field(None, description="The Pushgateway grouping key `instance`.")
    stale_after: StaleAfter | None = Field(
        None,
        description=("`/readyz` answers 503 once the last successful sync is older than this."),
    )

    @field_validator("listen")
    @classmethod
    def _listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"expected host:port, e.g. 0.0.0.0:9464: {shown(value)}")
        try:
            ipaddress.ip_address(host.strip("[]"))
        except ValueError:
            if host != "localhost":
                raise ValueError(f"not an IP address to listen on: {shown(host)}") from None
        return value

    @field_validator("pushgateway")
    @classmethod
    def _pushgateway(cls, value: str | None) -> str | None:
        # No credential is sent to a Pushgateway, and in-cluster ones are usually plain http.
        return None if value is None else _check_url(value, plain_http="any")


class ResolverConfig(_Section):
    nameservers: tuple[str, ...] = Field(
        (),
        description=(
            "Recursive resolvers as `host` or `host:port` (`[v6]:port` for IPv6); an IP address, "
            "not a name. A value that is not one is a config error naming it (exit 2)."
        ),
    )
    timeout: ResolveTimeout = Field(
        5.0,
        description=(
            "Per name, A and AAAA together. A name that does not resolve in time fails its origin "
            "(exit 1, no deletion in the zone that run)."
        ),
    )
    concurrency: int = Field(
        32,
        ge=1,
        le=1024,
        description=(
            "Names resolved at once (1 to 1024), shared by every zone of the run. 10,000 names "
            "against a resolver 20 ms away take about 17 s at 32 (docs/benchmarks.md)."
        ),
    )

    @field_validator("nameservers")
    @classmethod
    def _nameservers(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for text in value:
            _nameserver(text)
        return value

    @property
    def addresses(self) -> tuple[tuple[str, int], ...]:
        """``nameservers`` as (IP, port) pairs."""
        return tuple(_nameserver(n) for n in self.nameservers)


def _nameserver(text: str) -> tuple[str, int]:
    """``host`` or ``host:port`` with an IP address for host (a resolver needs no resolving)."""
    host, port = text.strip(), "53"
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = rest.removeprefix(":") if rest else port
    elif host.count(":") == 1:
        host, port = host.split(":")
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ValueError(f"not an IP address (optionally with :port): {text!r}") from None
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"not a port number in {text!r}")
    return host, int(port)


class StateConfig(_Section):
    path: FilePath = Field(
        Path("./syncd-state.db"),
        description=(
            "The ownership store (SQLite, with a `.lock` file beside it). "
            "`/var/lib/syncd/state.db` in the container. Losing it means no deletions until "
            "ownership is rebuilt (`adopt: true`), never mass deletion."
        ),
    )

    @field_validator("path")
    @classmethod
    def _file(cls, value: Path) -> Path:
        if value.is_dir():
            raise ValueError("is a directory; give a file path, e.g. /var/lib/syncd/state.db")
        return value


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description=("`debug`, `info`, `warning` or `error`; `--log-level` overrides it.")
    )
    format: Literal["auto", "json", "text"] = Field(
        "auto", description="`json`, `text`, or `auto`: JSON unless stderr is a terminal."
    )


class Settings(_Section):
    cloudflare: CloudflareConfig = Field(
        description="The API, its credentials, the client's limits and the zones to keep in step."
    )
    collectors: CollectorsConfig = Field(
        CollectorsConfig(), description="Where addresses come from, and the collectors' limits."
    )
    sync: SyncConfig = Field(SyncConfig(), description="The planner's safety settings.")
    schedule: ScheduleConfig = Field(ScheduleConfig(), description="When `syncd run` syncs.")
    metrics: MetricsConfig = Field(MetricsConfig(), description="Prometheus exposition and push.")
    state: StateConfig = Field(
        StateConfig(), description="The state store: ownership, discovered zones, the rate window."
    )
    logging: LoggingConfig = Field(LoggingConfig(), description="Structured logs on stderr.")
    resolver: ResolverConfig = Field(
        ResolverConfig(), description="How CNAME and pool hostname origins are resolved."
    )

    @model_validator(mode="after")
    def _zone_collectors(self) -> Settings:
        known = set(self.collectors.names())
        cf = self.cloudflare
        named: list[tuple[str, ZoneSettings]] = [(f"zone {z.id}", z) for z in cf.zones]
        if cf.zone_discovery is not None:
            named.append(("cloudflare.zone_discovery.defaults", cf.zone_discovery.defaults))
        for where, zone in named:
            unknown = sorted(set(zone.collectors or ()) - known)
            if unknown:
                raise ValueError(
                    f"{where}: collectors {unknown} are not configured (known: {sorted(known)})"
                )
        return self

    @property
    def stale_after(self) -> float:
        if self.metrics.stale_after is not None:
            return self.metrics.stale_after
        return 3 * (self.schedule.interval or 900.0)


# --- loading --------------------------------------------------------------------------------

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
_SECRET_KEYS = {"api_token", "api_key", "client_secret"}


def expand(text: str, env: Mapping[str, str], *, path: str = "") -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without default is an error."""
    missing: list[tuple[str, str]] = []

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and (env[name] or default is None):
            return env[name]
        if default is not None:
            return default
        missing.append((path, f"environment variable {name} is not set"))
        return ""

    out = _VAR.sub(sub, text)
    if missing:
        raise ConfigError(missing)
    return out


def _expand_tree(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Expand variables in every string value (not in comments or keys) of parsed YAML."""
    if isinstance(node, dict):
        return {k: _expand_tree(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_tree(v, env, f"{path}.{i}") for i, v in enumerate(node)]
    if isinstance(node, str):
        return expand(node, env, path=path)
    return node


def resolve_path(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """``--config``, else ``$SYNCD_CONFIG``, else ``config/syncd.yaml``."""
    env = os.environ if env is None else env
    return Path(explicit or env.get("SYNCD_CONFIG") or DEFAULT_PATH)


def load(path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read, expand and validate a config file. Raises ``ConfigError`` naming every problem."""
    env = os.environ if env is None else env
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([("", f"cannot read {path}: {exc.strerror}")]) from None
    return parse(data, env, source=str(path))


def parse(text: str | bytes, env: Mapping[str, str], *, source: str = "<config>") -> Settings:
    """Validate configuration text (bytes must be UTF-8). Raises ``ConfigError``."""
    try:
        raw = read_yaml(text, source=source)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise _problem(f"{source} must be a mapping at the top level")
        return validate(_apply_env_defaults(_expand_tree(raw, env), env))
    except ConfigError as exc:
        raise ConfigError([(_one_line(p), _one_line(m)) for p, m in exc.problems]) from None


def _problem(message: str) -> ConfigError:
    """A problem of the file as a whole (no key path)."""
    return ConfigError([("", message)])


def _one_line(text: str) -> str:
    """Control characters escaped, so every problem stays on its line; cut if long."""
    text = text.translate(_ESCAPES)
    return text if len(text) <= 4 * SHOWN_CHARS else text[: 4 * SHOWN_CHARS - 3] + "..."


_ESCAPES = {c: repr(chr(c))[1:-1] for c in [*range(32), 127]}


# --- the YAML reader ------------------------------------------------------------------------

MAX_DEPTH = 50  # nesting levels; the deepest key of the model is 5 levels down
MAX_NODES = 200_000  # nodes after alias expansion; 3,500 static entries are about 25,000


def read_yaml(text: str | bytes, *, source: str = "<config>") -> Any:
    """Parse one YAML document safely; every failure is a ``ConfigError`` with line and column,
    never the text of the line (it may hold a secret)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            line, column = _position(text, exc.start)
            raise _problem(
                f"{source} is not UTF-8 text: byte 0x{text[exc.start]:02x} at {line}, {column}"
            ) from None
    try:
        return _construct(text)
    except yaml.MarkedYAMLError as exc:
        raise _problem(f"{source} is not valid YAML: {_yaml_problem(exc)}") from None
    except yaml.reader.ReaderError as exc:
        line, column = _position(text, exc.position)
        problem = f"character #x{exc.character:04x} is not allowed in YAML at {line}, {column}"
        raise _problem(f"{source} is not valid YAML: {problem}") from None
    except yaml.YAMLError:  # pragma: no cover (every error PyYAML raises is one of the above)
        raise _problem(f"{source} is not valid YAML") from None


def _construct(text: str) -> Any:
    loader = _Loader(text)  # the reader checks the characters here already
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node)
        return loader.construct_document(node)
    finally:
        loader.dispose()


def _position(data: bytes | str, offset: int) -> tuple[str, str]:
    newline = b"\n" if isinstance(data, bytes) else "\n"
    line = data.count(newline, 0, offset) + 1  # type: ignore[arg-type]
    column = offset - (data.rfind(newline, 0, offset) + 1) + 1  # type: ignore[arg-type]
    return f"line {line}", f"column {column}"


def _at(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark else "an unknown position"


_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")


def _yaml_problem(exc: yaml.MarkedYAMLError) -> str:
    """PyYAML's problem at its line and column, with quoted text (a tag, an anchor, a piece of
    the line) left out: only PyYAML's own words and the position are shown."""
    problem = _QUOTED.sub("(...)", exc.problem or "syntax error")
    return f"{problem} at {_at(exc.problem_mark)}"


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing duplicate keys and deep nesting, with dates left as text
    (nothing in the configuration is a date; ``2026-13-45`` would crash the constructor)."""

    yaml_implicit_resolvers = {
        first: [r for r in resolvers if r[0] != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark  # type: ignore[no-untyped-call]
                raise _problem(f"nesting deeper than {MAX_DEPTH} levels at {_at(mark)}")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:  # noqa: FBT001, FBT002
        try:
            return super().construct_object(node, deep=deep)
        except (ValueError, OverflowError) as exc:  # !!int 0x, !!float x, a 5,000-digit int
            name = node.tag.rsplit(":", 1)[-1]
            raise _problem(
                f"a value at {_at(node.start_mark)} is not a valid {name}: {type(exc).__name__}"
            ) from None

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Any:  # noqa: FBT001, FBT002
        seen: dict[Any, yaml.Node] = {}
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue  # a merge (<<) may override on purpose; other keys fail in the model
            key = self.construct_object(key_node)
            if isinstance(key, Hashable) and key in seen:
                raise _problem(
                    f"duplicate key {shown(key)} at line {key_node.start_mark.line + 1} "
                    f"(first at line {seen[key].start_mark.line + 1}); "
                    "YAML would silently keep only the last"
                )
            if isinstance(key, Hashable):
                seen[key] = key_node
        return super().construct_mapping(node, deep=deep)


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a graph of aliases that expands past ``MAX_NODES`` nodes or ``MAX_DEPTH`` levels,
    or refers to itself (an alias bomb of under 1 KB can expand to billions of nodes), in time
    linear in the document: each node's expanded size and height are computed once."""
    done: dict[int, tuple[int, int]] = {}  # id(node) -> (expanded size, height)
    active: set[int] = set()

    def visit(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        if key in active:
            raise _problem(
                f"the anchored node at {_at(node.start_mark)} contains an alias of itself"
            )
        size, height = done.get(key) or _expand(node, depth)
        if depth + height > MAX_DEPTH:
            raise _problem(f"nesting deeper than {MAX_DEPTH} levels at {_at(node.start_mark)}")
        if size > MAX_NODES:
            raise _problem(
                f"aliases expand to more than {MAX_NODES:,} nodes at {_at(node.start_mark)}"
            )
        return size, height

    def _expand(node: yaml.Node, depth: int) -> tuple[int, int]:
        key = id(node)
        active.add(key)
        children: list[yaml.Node] = []
        if isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        elif isinstance(node, yaml.MappingNode):
            children = [n for pair in node.value for n in pair]
        size, height = 1, 0
        for child in children:
            child_size, child_height = visit(child, depth + 1)
            size, height = size + child_size, max(height, child_height + 1)
            if size > MAX_NODES:
                break
        active.discard(key)
        done[key] = (size, height)
        return size, height

    visit(root, 0)


def _apply_env_defaults(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    cf = raw.get("cloudflare")
    if not isinstance(cf, dict):
        return raw
    cf = {k: v for k, v in cf.items() if v != ""}
    # Credentials from the environment only when the file names none of either kind, so a
    # CLOUDFLARE_API_TOKEN exported for another tool never replaces a configured key.
    keys = ["base_url"]
    if not any(cf.get(k) for k in ("api_token", "api_email", "api_key")):
        keys += ["api_token", "api_email", "api_key"]
    for key in keys:
        var = _ENV_FALLBACK[key]
        if cf.get(key) is None and env.get(var):
            cf[key] = env[var]
    return {**raw, "cloudflare": cf}


_ENV_FALLBACK = {
    "api_token": "CLOUDFLARE_API_TOKEN",
    "api_email": "CLOUDFLARE_EMAIL",
    "api_key": "CLOUDFLARE_API_KEY",
    "base_url": "CLOUDFLARE_BASE_URL",
}


def validate(raw: dict[str, Any]) -> Settings:
    moved, raw = _moved(raw)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(moved + [_describe(err) for err in exc.errors()]) from None
    if moved:
        raise ConfigError(moved)
    return settings


def _moved(raw: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Problems for keys of an older layout (``MOVED``), and ``raw`` without them."""
    section = raw.get("sync")
    if not isinstance(section, dict):
        return [], raw
    old = [k for k in section if f"sync.{k}" in MOVED]
    problems = [(f"sync.{k}", f"moved to {MOVED[f'sync.{k}']}") for k in old]
    rest = {k: v for k, v in section.items() if k not in old}
    return problems, {**raw, "sync": rest}


def _describe(err: Any) -> tuple[str, str]:
    loc = [str(p) for p in err["loc"]]
    path = ".".join(p if len(p) <= SHOWN_CHARS else shown(p) for p in loc)
    value = err.get("input")
    if any(p in _SECRET_KEYS for p in loc) or err["type"] == "extra_forbidden":
        # An unknown key may be a misspelt secret (api_tokn: ...): never echo its value.
        echoed = "'***'" if err["type"] != "extra_forbidden" else ""
    elif isinstance(value, dict | list) or err["type"] == "missing":
        echoed = ""
    else:
        echoed = shown(value)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return path, f"{msg} (got {echoed})" if echoed else msg


def masked(settings: Settings) -> dict[str, Any]:
    """The effective configuration with every secret replaced by ``***``."""
    masked_data: dict[str, Any] = _mask(settings.model_dump(mode="json"))
    return masked_data


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: ("***" if k in _SECRET_KEYS and v is not None else _mask(v)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node
