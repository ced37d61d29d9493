"""Configuration: the YAML file, validated into frozen pydantic models grouped by concern.

``load()`` is the only place that reads files and environment variables. ``${VAR}`` and
``${VAR:-default}`` are expanded before validation so secrets stay out of files. Every problem is
reported with its key path on one line; secret values are never echoed back, other values are cut
to ``SHOWN_CHARS``, and a YAML error points at a line and column without quoting the file (the
line may hold a token). The YAML reader refuses what would crash or stall it: duplicate keys,
nesting deeper than ``MAX_DEPTH``, aliases adding more than ``MAX_NODES`` nodes.

One module per concern: ``values`` (durations, paths, URLs, how a value is echoed),
``cloudflare``, ``collectors``, ``schedule``, ``runtime`` (sync, metrics, resolver, state,
logging), ``settings`` (the whole), ``yaml_reader`` and ``loader``. This package re-exports what
the rest of syncd uses.
"""

from syncd.config.cloudflare import (
    CloudflareConfig,
    ObserveConfig,
    RateLimitConfig,
    ZoneConfig,
    ZoneDiscoveryConfig,
    ZoneSettings,
    check_glob,
)
from syncd.config.collectors import (
    AwsCollectorConfig,
    AwsOrganization,
    AzureCollectorConfig,
    CollectorsConfig,
    GcpCollectorConfig,
    OciCollectorConfig,
    StaticEntry,
)
from syncd.config.loader import DEFAULT_PATH, expand, load, parse, resolve_path, validate
from syncd.config.runtime import (
    MOVED,
    LoggingConfig,
    MetricsConfig,
    ResolverConfig,
    StateConfig,
    SyncConfig,
)
from syncd.config.schedule import ScheduleConfig, cron_trigger, crontab_weekdays
from syncd.config.settings import Settings, masked
from syncd.config.values import (
    DEFAULT_BASE_URL,
    SHOWN_CHARS,
    format_duration,
    is_loopback_host,
    parse_duration,
    shown,
)
from syncd.config.yaml_reader import MAX_DEPTH, MAX_NODES, read_yaml

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_PATH",
    "MAX_DEPTH",
    "MAX_NODES",
    "MOVED",
    "SHOWN_CHARS",
    "AwsCollectorConfig",
    "AwsOrganization",
    "AzureCollectorConfig",
    "CloudflareConfig",
    "CollectorsConfig",
    "GcpCollectorConfig",
    "LoggingConfig",
    "MetricsConfig",
    "ObserveConfig",
    "OciCollectorConfig",
    "RateLimitConfig",
    "ResolverConfig",
    "ScheduleConfig",
    "Settings",
    "StateConfig",
    "StaticEntry",
    "SyncConfig",
    "ZoneConfig",
    "ZoneDiscoveryConfig",
    "ZoneSettings",
    "check_glob",
    "cron_trigger",
    "crontab_weekdays",
    "expand",
    "format_duration",
    "is_loopback_host",
    "load",
    "masked",
    "parse",
    "parse_duration",
    "read_yaml",
    "resolve_path",
    "shown",
    "validate",
]
