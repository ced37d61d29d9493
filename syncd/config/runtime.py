"""The process's own sections: the planner's safety (`sync`), metrics, resolver, state, logs;
and the keys that moved when settings were grouped by concern."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    field_validator,
)

from syncd.config.values import FilePath, ResolveTimeout, Section, StaleAfter, check_url, shown


class SyncConfig(Section):
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


class MetricsConfig(Section):
    listen: str = Field(
        "0.0.0.0:9464",
        description=(
            "`/metrics`, `/healthz`, `/readyz` for `syncd run`. Bind it to a private address."
        ),
    )
    pushgateway: str | None = Field(
        None, description="`syncd sync` pushes its metrics here once at the end."
    )
    instance: str | None = Field(
        None,
        description=(
            'The Pushgateway grouping key `instance` (with `job="syncd"`); default `syncd`. '
            "Stable by default, never the host name: a CronJob's pods each have their own name, "
            "and a group per pod would leave every retired pod's group behind, stale. Set it "
            "only to tell apart several syncd deployments pushing to one Pushgateway."
        ),
    )
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
        return None if value is None else check_url(value, plain_http="any")


class ResolverConfig(Section):
    nameservers: tuple[str, ...] = Field(
        (),
        description=(
            "Recursive resolvers as `host` or `host:port` (`[v6]:port` for IPv6); an IP address, "
            "not a name. A value that is not one is a config error naming it (exit 2). Empty: "
            "the system's resolvers from `/etc/resolv.conf`; without that file, or with no "
            "nameserver in it, every CNAME and hostname origin fails (exit 1, nothing deleted)."
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


class StateConfig(Section):
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


class LoggingConfig(Section):
    level: Literal["debug", "info", "warning", "error"] = Field(
        "info",
        description=(
            "`debug`, `info`, `warning` or `error`; `SYNCD_LOG_LEVEL`, then `--log-level`, "
            "override it."
        ),
    )
    format: Literal["auto", "json", "text"] = Field(
        "auto", description="`json`, `text`, or `auto`: JSON unless stderr is a terminal."
    )
