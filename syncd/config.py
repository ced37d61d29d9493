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
        description="dns: only IPs in the zone's A/AAAA records (the 3,500 budget goes to real "
        "origins); all: every discovered address (small estates).",
    )
    proxied_only: bool = False
    collectors: tuple[str, ...] | None = Field(
        None, min_length=1, description="Collector names; None is all (an empty list is an error)."
    )
    policy: Literal["upsert-only", "sync"] = Field(
        "upsert-only", description="upsert-only never deletes: the safe default."
    )
    adopt: bool = Field(False, description="Take ownership of existing mappings equal to ours.")
    match_tags: dict[str, str] = Field(default_factory=dict)


class ZoneConfig(ZoneSettings):
    id: str = Field(
        description="The zone id: 32 hexadecimal characters (the zone's Overview page)."
    )
    name: str = ""

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
        (), description="Cloudflare account ids to list zones of; empty is every account."
    )
    include: tuple[str, ...] = Field(("*",), min_length=1, description="Zone name globs.")
    exclude: tuple[str, ...] = Field((), description="Zone name globs; exclude wins.")
    defaults: ZoneSettings = Field(
        default_factory=ZoneSettings, description="Per-zone keys for every discovered zone."
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
    requests: int = Field(1200, ge=1, description="Cloudflare's per-user budget per period.")
    period: RatePeriod = 300.0


class CloudflareConfig(_Section):
    api_token: SecretStr | None = None
    api_email: str | None = None
    api_key: SecretStr | None = None
    base_url: str = DEFAULT_BASE_URL
    api: Literal["auto", "v1", "v2"] = "auto"
    max_mappings_per_zone: int = Field(3500, ge=1)
    rate_limit: RateLimitConfig = RateLimitConfig()
    zones: tuple[ZoneConfig, ...] = Field(
        (), description="Explicit zones; with zone_discovery, each overrides the defaults."
    )
    zone_discovery: ZoneDiscoveryConfig | None = Field(
        None, description="Keep every zone the token can list (that matches) in step."
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

VendorName = Literal["aws", "azure", "gcp", "oci"]


class StaticEntry(_Section):
    ip: str
    vendor: VendorName
    region: str = Field(min_length=1)

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
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$")


class AwsOrganization(_Section):
    role_name: str = Field(min_length=1)
    exclude: tuple[str, ...] = ()
    external_id: str | None = Field(None, min_length=2)


class AwsCollectorConfig(_Named):
    profile: str | None = None
    role_arn: str | None = None
    external_id: str | None = Field(None, min_length=2)
    session_name: str = "syncd"
    regions: Literal["all"] | tuple[str, ...] = "all"
    organization: AwsOrganization | None = None
    endpoint_url: str | None = None

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class GcpCollectorConfig(_Named):
    projects: Literal["all"] | tuple[str, ...] = "all"
    credentials_file: FilePath | None = None
    global_region: str | None = Field(
        None, description="Region to map global (anycast) addresses to; unset skips them."
    )
    api_endpoint: str | None = None
    resource_manager_endpoint: str | None = None

    @field_validator("api_endpoint", "resource_manager_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else _check_url(value)


class AzureCollectorConfig(_Named):
    subscriptions: Literal["all"] | tuple[str, ...] = "all"
    tenant_id: str | None = None
    client_id: str | None = None
    client_secret: SecretStr | None = None
    client_certificate_path: FilePath | None = None
    authority_host: str | None = Field(
        None, description="Entra ID authority (sovereign clouds, or a simulator's token endpoint)."
    )
    base_url: str | None = None

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
    config_file: FilePath = Path("~/.oci/config")
    profile: str = "DEFAULT"
    auth: Literal["api_key", "instance_principal", "resource_principal"] = "api_key"
    compartments: Literal["all"] | tuple[str, ...] = "all"
    regions: Literal["subscribed"] | tuple[str, ...] = "subscribed"
    service_endpoint_template: str | None = Field(
        None, description="For simulators: a URL with {region} in it (OCI puts it in the host)."
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
    static: tuple[StaticEntry, ...] = ()
    aws: tuple[AwsCollectorConfig, ...] = ()
    gcp: tuple[GcpCollectorConfig, ...] = ()
    azure: tuple[AzureCollectorConfig, ...] = ()
    oci: tuple[OciCollectorConfig, ...] = ()

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
    batch_size: int = Field(100, ge=1, le=100, description="Cloudflare accepts at most 100.")
    timeout: RequestTimeout = Field(30.0, description="Per HTTP request to Cloudflare.")
    retries: int = Field(5, ge=0, le=20, description="Retries of a retryable Cloudflare error.")
    backoff: Backoff = Field(0.5, description="First retry delay; doubles, with jitter, to 30s.")
    concurrency: int = Field(16, ge=1, le=256, description="Collector tasks run at once.")
    cloud_attempts: int = Field(
        5, ge=1, le=20, description="Attempts per cloud API request, the first included."
    )
    scope_timeout: ScopeTimeout = Field(120.0, description="Cap on one scope, retries included.")
    max_delete_fraction: float = Field(0.2, ge=0, le=1)


class ScheduleConfig(_Section):
    interval: Interval | None = 900.0
    cron: str | None = None
    jitter: Jitter = 0.0
    shutdown_timeout: ShutdownTimeout = 30.0

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if len(value.split()) != 5:
            raise ValueError(f"cron needs five fields (min hour day month weekday): {shown(value)}")
        try:
            CronTrigger.from_crontab(value)  # syntax only; the daemon maps crontab weekdays
        except ValueError as exc:
            raise ValueError(f"not a valid cron expression {shown(value)}: {exc}") from None
        return value


class MetricsConfig(_Section):
    listen: str = "0.0.0.0:9464"
    pushgateway: str | None = None
    instance: str | None = None
    stale_after: StaleAfter | None = Field(None, description="Default: three schedule intervals.")

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
        (), description="host or host:port ([v6]:port); empty: the system's resolv.conf."
    )
    timeout: ResolveTimeout = Field(5.0, description="Per name, A and AAAA together.")
    concurrency: int = Field(32, ge=1, le=1024, description="Names resolved at once.")

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
    path: FilePath = Path("./syncd-state.db")

    @field_validator("path")
    @classmethod
    def _file(cls, value: Path) -> Path:
        if value.is_dir():
            raise ValueError("is a directory; give a file path, e.g. /var/lib/syncd/state.db")
        return value


class LoggingConfig(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "text"] = "auto"


class Settings(_Section):
    cloudflare: CloudflareConfig
    collectors: CollectorsConfig = CollectorsConfig()
    sync: SyncConfig = SyncConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    metrics: MetricsConfig = MetricsConfig()
    state: StateConfig = StateConfig()
    logging: LoggingConfig = LoggingConfig()
    resolver: ResolverConfig = ResolverConfig()

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
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError([_describe(err) for err in exc.errors()]) from None


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
