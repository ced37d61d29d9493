"""The `cloudflare` section: the API client's settings, the zones and zone discovery."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    SecretStr,
    field_validator,
    model_validator,
)

from syncd.config.values import (
    DEFAULT_BASE_URL,
    Backoff,
    FilePath,
    HexId,
    ObserveSpan,
    RatePeriod,
    RequestTimeout,
    Section,
    VerifyInterval,
    check_url,
    header_value,
    shown,
)
from syncd.errors import ConfigError
from syncd.model import Policy

_ZONE_ID = re.compile(r"[0-9a-fA-F]{32}")


class ZoneSettings(Section):
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
            "pool they name: default, fallback, region, country and PoP pools, and the pools of "
            "their custom rules and pool sets, disabled ones included since they can be enabled "
            "at any time; each enabled origin's address, an IP or a hostname resolved the same "
            "way). Every page of the DNS records API is read. An origin no collector found is "
            "reported `undiscovered_origin`; a name with no address (NXDOMAIN, no A/AAAA data) is "
            "a skip `unresolved_origin` naming the record and target; a record, load balancer or "
            "pool origin Cloudflare lists without a field syncd needs (content, name, address) is "
            "a skip `malformed_origin` naming its id and the field, and nothing is deleted in the "
            "zone that run; a name the resolver could not answer (timeout, "
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
    id: HexId = Field(
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


class ZoneDiscoveryConfig(Section):
    """Every active zone the token can list, filtered by account and name, kept in step."""

    account_ids: tuple[HexId, ...] = Field(
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


class RateLimitConfig(Section):
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


class ObserveConfig(Section):
    """What Cloudflare really fetched: the GraphQL Analytics API (``syncd origins --observed``)."""

    enabled: bool = Field(
        True,
        description=(
            "Read each zone's origin fetches from Cloudflare's GraphQL Analytics API (dataset "
            "`httpRequestsAdaptiveGroups`, grouped by `originIP` and `upperTierColoName`; "
            "available on every plan; the token needs **Analytics: Read**) to measure coverage "
            "by traffic (`syncd_zone_observed_coverage_ratio`) and whether the hints changed the "
            "upper tier (`syncd_zone_hint_effect_ratio`). Under `origins: dns`, an address "
            "Cloudflare fetched from that a collector found is an origin of the zone (mapped even "
            "when no record, CNAME or pool shows it; not deleted while observed). Advisory: a "
            "zone whose plan lacks the dataset or a field is `unavailable` (named), a token "
            "without Analytics: Read gets one warning, an error, a refused time range or the "
            "GraphQL quota (300 queries per 5 minutes) leaves the zone unobserved that run with a "
            "warning; none of them fails a run or changes its exit code. At most 10 zones per "
            "query; the settings node is asked first (and every six intervals) so only zones "
            "that can answer are queried."
        ),
    )
    window: ObserveSpan = Field(
        3600.0,
        description=(
            "The span of traffic read, ending at the run (1m to 7d); clipped to what the zone's "
            "plan allows (the settings node's `maxDuration` and `notOlderThan`). A hint younger "
            "than the window is shown as too new to judge, and its fetches count once it is older."
        ),
    )
    interval: ObserveSpan = Field(
        3600.0,
        description=(
            "How often each zone's traffic is read (1m to 7d); kept in the state database with "
            "the zone's other facts, so a run inside the interval sends no GraphQL query. Each "
            "zone's first reading is followed by the next at a point spread over the interval, so "
            "the queries of many zones never bunch (about zones / 10 per interval). `syncd sync "
            "--verify` and `syncd origins --observed` read now."
        ),
    )


class CloudflareConfig(Section):
    api_token: SecretStr | None = Field(
        None,
        description=(
            "API token (preferred). Sent as `Authorization: Bearer`; never logged. Surrounding "
            "whitespace is removed (a secret file mounted from Kubernetes or Vault often ends in "
            "a newline); a space, control or non-ASCII character inside it is an error naming the "
            "key and the character's position, never the value."
        ),
    )
    api_token_file: FilePath | None = Field(
        None,
        description=(
            "A file holding the API token (a mounted Kubernetes or Vault secret), instead of "
            "`api_token`; `CLOUDFLARE_API_TOKEN_FILE` when the file names no credential. Read "
            "when the configuration loads (unreadable or not a token: exit 2 naming this key, "
            "never the value) and again at every run, so `syncd run` uses a rotated token from "
            "its next run without a restart; a file unreadable at a run fails that run (exit 1). "
            "Surrounding whitespace is removed, as for `api_token`."
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
            "Per Cloudflare request, whole: connect, send, and the last byte of the answer "
            "(an answer trickling in is cut here, not only a read that stalls); each retry has "
            "its own. Cloud API requests have their own, `collectors.request_timeout`."
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
            "zone at every run (the behaviour before the mirror). The zone's other reads are "
            "kept the same way: its load balancers and pools (and details) are read again when "
            "it is verified, its Tiered Cache settings (informational) every six intervals; "
            "its DNS records at every run."
        ),
    )
    run_budget: Annotated[int, Field(ge=1)] | Literal["auto"] = Field(
        "auto",
        description=(
            "Cloudflare requests one run may send (an integer >= 1), or `auto`: what "
            "`rate_limit` allows in one `schedule.interval` (one `rate_limit.period` with a cron "
            "schedule), so a run never outlasts its interval waiting for the rate limit. A zone "
            "the run cannot finish within it is **deferred**: reported as such (not a failure; "
            "`syncd_last_run_deferred_zones`), what it did send is kept, and it is served first "
            "next run. Zones are served in turn, those deferred last run first, so one large zone "
            "never starves the rest. Verification lists (see `verify_interval`) take at most "
            "half of `rate_limit.requests` and half of this budget per run, so writes always "
            "keep room; the zones due beyond that wait, most overdue first next run."
        ),
    )
    observe: ObserveConfig = Field(
        ObserveConfig(), description="Reading what Cloudflare really fetched (see its keys)."
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
        return check_url(value)

    @field_validator("api_token", "api_key")
    @classmethod
    def _secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        return SecretStr(header_value(value.get_secret_value()))

    @field_validator("api_email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:
        return None if value is None else header_value(value)

    @field_validator("api_token_file")
    @classmethod
    def _token_file(cls, value: Path | None) -> Path | None:
        if value is not None:
            _read_token(value)
        return value

    def token(self) -> str | None:
        """The API token for this run: ``api_token``, or ``api_token_file`` read now (a
        rotated secret is picked up without a restart). Raises ``ConfigError`` naming the key."""
        if self.api_token is not None:
            return self.api_token.get_secret_value()
        if self.api_token_file is None:
            return None
        try:
            return _read_token(self.api_token_file)
        except ValueError as exc:
            raise ConfigError([("cloudflare.api_token_file", str(exc))]) from None

    @model_validator(mode="after")
    def _auth(self) -> CloudflareConfig:
        if not self.zones and self.zone_discovery is None:
            raise ValueError(
                "set cloudflare.zones (at least one zone) or cloudflare.zone_discovery"
            )
        if self.api_token is not None and self.api_token_file is not None:
            raise ValueError(
                "set cloudflare.api_token or cloudflare.api_token_file, not both (the "
                "environment's CLOUDFLARE_API_TOKEN and CLOUDFLARE_API_TOKEN_FILE count)"
            )
        token = self.api_token is not None or self.api_token_file is not None
        if not token and (self.api_email is None or self.api_key is None):
            raise ValueError(
                "set cloudflare.api_token (or CLOUDFLARE_API_TOKEN), cloudflare.api_token_file "
                "(or CLOUDFLARE_API_TOKEN_FILE), or both cloudflare.api_email and "
                "cloudflare.api_key"
            )
        for what, values in (
            ("ids", [z.id for z in self.zones]),
            ("names", [z.label for z in self.zones]),
        ):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"zone {what} must be unique; repeated: {repeated}")
        return self


def _read_token(path: Path) -> str:
    """The token in ``path``, checked like ``api_token``; ``ValueError`` never holds the value."""
    try:
        text = path.expanduser().read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise ValueError(f"cannot read the token file {shown(str(path))}: {reason}") from None
    return header_value(text)
