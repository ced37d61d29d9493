"""The whole configuration (`Settings`) and its masked form for output."""

from __future__ import annotations

from typing import Any

from pydantic import (
    Field,
    model_validator,
)

from syncd.config.cloudflare import CloudflareConfig, ZoneSettings
from syncd.config.collectors import CollectorsConfig
from syncd.config.runtime import (
    LoggingConfig,
    MetricsConfig,
    ResolverConfig,
    StateConfig,
    SyncConfig,
)
from syncd.config.schedule import ScheduleConfig
from syncd.config.values import Section

SECRET_KEYS = {"api_token", "api_key", "client_secret"}  # masked in output, never echoed


class Settings(Section):
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


def masked(settings: Settings) -> dict[str, Any]:
    """The effective configuration with every secret replaced by ``***``."""
    masked_data: dict[str, Any] = _mask(settings.model_dump(mode="json"))
    return masked_data


def _mask(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            k: ("***" if k in SECRET_KEYS and v is not None else _mask(v)) for k, v in node.items()
        }
    if isinstance(node, list):
        return [_mask(v) for v in node]
    return node
