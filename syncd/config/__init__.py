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
    ZoneConfig,
    ZoneDiscoveryConfig,
    ZoneSettings,
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
from syncd.config.loader import expand, load, parse, resolve_path, validate
from syncd.config.runtime import (
    LoggingConfig,
    MetricsConfig,
    ResolverConfig,
)
from syncd.config.schedule import ScheduleConfig, cron_trigger, crontab_weekdays
from syncd.config.settings import Settings, masked
from syncd.config.values import (
    parse_duration,
    shown,
)
from syncd.config.yaml_reader import MAX_DEPTH, MAX_NODES

__all__ = [
    "MAX_DEPTH",
    "MAX_NODES",
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
    "ResolverConfig",
    "ScheduleConfig",
    "Settings",
    "StaticEntry",
    "ZoneConfig",
    "ZoneDiscoveryConfig",
    "ZoneSettings",
    "cron_trigger",
    "crontab_weekdays",
    "expand",
    "load",
    "masked",
    "parse",
    "parse_duration",
    "resolve_path",
    "shown",
    "validate",
]
