"""A strict stand-in for the Cloudflare API calls syncd makes: origin cloud regions, DNS records,
zone details, load balancers (with rules and pool sets) and pools, and the two Tiered Cache
settings. Its answers are checked against Cloudflare's official SDK (the oracle test).

Both generations (v1 ``/cache/origin_cloud_regions``, v2 ``/origin/cloud_regions``) serve one
store per zone with the documented envelopes, codes and limits; DNS record listing pages and
filters; the read-only origin endpoints answer in the published schema's shapes, and a token
can be denied a permission (``deny()``) to get Cloudflare's 403. ``POST /graphql`` is the
GraphQL Analytics API, served by ``simulators/analytics.py`` (``analytics``).

Undocumented behaviour is a documented choice (docs/simulators.md). It imports nothing
from syncd except ``simulators.base``; faults come only through ``inject()``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hmac
import ipaddress
import json
import math
import re
import signal
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from syncd.simulators import analytics
from syncd.simulators.base import Fault, Request, Response, SimulatorServer

VENDORS = ("aws", "azure", "gcp", "oci")
MAX_BATCH = 100  # maxItems on every batch body (SPEC)
MAX_MAPPINGS = 3500  # per zone (SPEC); 1164 beyond it
V2_PER_PAGE = (1, 100, 20)  # min, max, default
DNS_PER_PAGE = (1, 5_000_000, 100)
ZONES_PER_PAGE = (5, 50, 20)  # GET /zones (shared/reference, "Zones")
ZONE_STATUSES = ("initializing", "pending", "active", "moved")
ZONE_LISTING_ACCOUNTS = 500  # GET /zones across more accounts needs account.id (docs/simulators.md)
DEFAULT_ACCOUNT = "0" * 31 + "1"  # the account of zones added without one
SETTING_ID = "origin_public_cloud_region"
RATE_LIMIT = (1200, 300)  # requests per window of seconds, per user (LIM)

# Cloudflare's messages, as quoted in shared/reference/cloudflare-origin-cloud-regions.md.
MSG_NOT_FOUND = (
    "Unable to retrieve origin_public_cloud_region setting value. The zone setting does not exist."
)
MSG_EXISTS = (
    "Unable to create new origin_public_cloud_region setting. The zone setting already exists."
)
MSG_BAD_IP = "Invalid or missing origin IP address."
MSG_BAD_REGION = (
    "The vendor provided doesn't exist or the region provided does not exist for the specified"
    " cloud vendor"
)
MSG_FULL = "Maximum number of IP mappings configured for zone."
MSG_RATE_LIMITED = "Please wait and consider throttling your request speed"

DNS_TYPES = frozenset(
    {"A", "AAAA", "CAA", "CERT", "CNAME", "DNSKEY", "DS", "HTTPS", "LOC", "MX", "NAPTR", "NS"}
    | {"OPENPGPKEY", "PTR", "SMIMEA", "SRV", "SSHFP", "SVCB", "TLSA", "TXT", "URI"}
)
_PROXIABLE = frozenset({"A", "AAAA", "CNAME"})

# vendor -> region -> upper-tier colos (IATA codes of Cloudflare data centres near the region).
_UPPER_TIERS: dict[str, dict[str, tuple[str, ...]]] = {
    "aws": {
        "us-east-1": ("IAD", "EWR"), "us-east-2": ("CMH", "ORD"), "us-west-1": ("SJC", "LAX"),
        "us-west-2": ("SEA",), "ca-central-1": ("YUL",), "ca-west-1": ("YYC",),
        "mx-central-1": ("QRO",), "sa-east-1": ("GRU",), "eu-west-1": ("DUB",),
        "eu-west-2": ("LHR",), "eu-west-3": ("CDG",), "eu-central-1": ("FRA", "AMS"),
        "eu-central-2": ("ZRH",), "eu-north-1": ("ARN",), "eu-south-1": ("MXP",),
        "eu-south-2": ("MAD",), "il-central-1": ("TLV",), "me-south-1": ("BAH",),
        "me-central-1": ("DXB",), "af-south-1": ("JNB", "CPT"), "ap-east-1": ("HKG",),
        "ap-south-1": ("BOM",), "ap-south-2": ("HYD",), "ap-northeast-1": ("NRT",),
        "ap-northeast-2": ("ICN",), "ap-northeast-3": ("KIX",), "ap-southeast-1": ("SIN",),
        "ap-southeast-2": ("SYD",), "ap-southeast-3": ("CGK",), "ap-southeast-4": ("MEL",),
        "ap-southeast-5": ("KUL",), "ap-southeast-7": ("BKK",),
    },
    "gcp": {
        "us-central1": ("ORD",), "us-east1": ("ATL",), "us-east4": ("IAD",),
        "us-east5": ("CMH",), "us-south1": ("DFW",), "us-west1": ("SEA",), "us-west2": ("LAX",),
        "us-west3": ("SLC",), "us-west4": ("LAS",), "northamerica-northeast1": ("YUL",),
        "northamerica-northeast2": ("YYZ",), "southamerica-east1": ("GRU",),
        "southamerica-west1": ("SCL",), "europe-west1": ("BRU", "AMS"), "europe-west2": ("LHR",),
        "europe-west3": ("FRA",), "europe-west4": ("AMS",), "europe-west6": ("ZRH",),
        "europe-west8": ("MXP",), "europe-west9": ("CDG",), "europe-west10": ("TXL",),
        "europe-north1": ("HEL",), "europe-central2": ("WAW",), "europe-southwest1": ("MAD",),
        "asia-east1": ("TPE",), "asia-east2": ("HKG",), "asia-northeast1": ("NRT",),
        "asia-northeast2": ("KIX",), "asia-northeast3": ("ICN",), "asia-south1": ("BOM",),
        "asia-south2": ("DEL",), "asia-southeast1": ("SIN",), "asia-southeast2": ("CGK",),
        "australia-southeast1": ("SYD",), "australia-southeast2": ("MEL",),
        "me-central1": ("DOH",), "me-west1": ("TLV",), "africa-south1": ("JNB",),
    },
    "azure": {
        "eastus": ("IAD",), "eastus2": ("IAD", "RIC"), "centralus": ("ORD",),
        "northcentralus": ("ORD",), "southcentralus": ("DFW",), "westcentralus": ("DEN",),
        "westus": ("SJC",), "westus2": ("SEA",), "westus3": ("PHX",), "canadacentral": ("YYZ",),
        "canadaeast": ("YUL",), "mexicocentral": ("QRO",), "brazilsouth": ("GRU",),
        "northeurope": ("DUB",), "westeurope": ("AMS",), "uksouth": ("LHR",), "ukwest": ("MAN",),
        "francecentral": ("CDG",), "germanywestcentral": ("FRA",), "switzerlandnorth": ("ZRH",),
        "norwayeast": ("OSL",), "swedencentral": ("ARN",), "polandcentral": ("WAW",),
        "italynorth": ("MXP",), "spaincentral": ("MAD",), "israelcentral": ("TLV",),
        "uaenorth": ("DXB",), "qatarcentral": ("DOH",), "southafricanorth": ("JNB",),
        "centralindia": ("BOM",), "southindia": ("MAA",), "japaneast": ("NRT",),
        "japanwest": ("KIX",), "koreacentral": ("ICN",), "eastasia": ("HKG",),
        "southeastasia": ("SIN",), "australiaeast": ("SYD",), "australiasoutheast": ("MEL",),
    },
    "oci": {
        "us-ashburn-1": ("IAD",), "us-phoenix-1": ("PHX",), "us-sanjose-1": ("SJC",),
        "us-chicago-1": ("ORD",), "ca-toronto-1": ("YYZ",), "ca-montreal-1": ("YUL",),
        "mx-queretaro-1": ("QRO",), "sa-saopaulo-1": ("GRU",), "sa-vinhedo-1": ("GRU",),
        "sa-santiago-1": ("SCL",), "eu-frankfurt-1": ("FRA",), "eu-amsterdam-1": ("AMS",),
        "eu-zurich-1": ("ZRH",), "eu-madrid-1": ("MAD",), "eu-marseille-1": ("MRS",),
        "eu-milan-1": ("MXP",), "eu-paris-1": ("CDG",), "eu-stockholm-1": ("ARN",),
        "uk-london-1": ("LHR",), "uk-cardiff-1": ("MAN",), "me-dubai-1": ("DXB",),
        "me-jeddah-1": ("JED",), "il-jerusalem-1": ("TLV",), "af-johannesburg-1": ("JNB",),
        "ap-mumbai-1": ("BOM",), "ap-hyderabad-1": ("HYD",), "ap-tokyo-1": ("NRT",),
        "ap-osaka-1": ("KIX",), "ap-seoul-1": ("ICN",), "ap-chuncheon-1": ("ICN",),
        "ap-singapore-1": ("SIN",), "ap-sydney-1": ("SYD",), "ap-melbourne-1": ("MEL",),
    },
}  # fmt: skip

DEFAULT_REGIONS: dict[str, list[str]] = {v: list(rs) for v, rs in _UPPER_TIERS.items()}

_ZONE_ID = re.compile(r"[0-9a-f]{32}")
_TOKEN = re.compile(r"[A-Za-z0-9_-]+")  # real tokens are 40 of these; the length is not enforced
_GLOBAL_KEY = re.compile(r"[0-9a-f]{37}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_ZONE_PATH = re.compile(r"/client/v4/zones/(?P<zone>[^/]+)(?P<rest>/.*)?")
_ZONES_PATH = "/client/v4/zones"
_POOL_PATH = re.compile(
    r"/client/v4/accounts/(?P<account>[^/]+)/load_balancers/pools(?:/(?P<pool>[^/]+))?/?"
)
# What a token may lack, and the routes each permission guards (``deny()``).
PERMISSIONS = ("load_balancing", "pools", "zone_settings", "analytics")


@dataclass(frozen=True, slots=True)
class _Gen:
    """How one API generation names things."""

    name: str
    ip_in: str  # the IP key in requests
    ip_out: str  # the IP key in responses
    wrapped: bool  # results sit in the zone-setting envelope


V1 = _Gen("v1", "ip", "origin-ip", wrapped=True)
V2 = _Gen("v2", "origin_ip", "origin_ip", wrapped=False)
DNS = _Gen("dns", "", "", wrapped=False)
ZONE = _Gen("zone", "", "", wrapped=False)  # zone details, load balancers, tiered cache

_REST: tuple[tuple[_Gen, re.Pattern[str], str], ...] = (
    (V1, re.compile(r"/cache/origin_cloud_regions"), "collection"),
    (V1, re.compile(r"/cache/origin_cloud_regions/batch"), "batch"),
    (V1, re.compile(r"/cache/origin_cloud_regions/supported_regions"), "supported"),
    (V1, re.compile(r"/cache/origin_cloud_regions/(?P<ip>[^/]+)"), "single"),
    (V2, re.compile(r"/origin/cloud_regions"), "collection"),
    (V2, re.compile(r"/origin/cloud_regions/batch"), "batch"),
    (V2, re.compile(r"/origin/cloud_regions/supported_regions"), "supported"),
    (V2, re.compile(r"/origin/cloud_regions/(?P<ip>[^/]+)"), "single"),
    (DNS, re.compile(r"/dns_records"), "dns"),
    (ZONE, re.compile(r""), "details"),
    (ZONE, re.compile(r"/load_balancers"), "load_balancers"),
    (ZONE, re.compile(r"/argo/tiered_caching"), "tiered_caching"),
    (ZONE, re.compile(r"/cache/tiered_cache_smart_topology_enable"), "smart_topology"),
)
_GUARDED = {
    "load_balancers": "load_balancing",
    "pool": "pools",
    "tiered_caching": "zone_settings",
    "smart_topology": "zone_settings",
}


class _ApiError(Exception):
    """Raised inside a handler; becomes Cloudflare's failure envelope."""

    def __init__(
        self, status: int, code: int, message: str, *, chain: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        error: dict[str, Any] = {"code": code, "message": message}
        if chain:
            error["error_chain"] = chain
        self.status = status
        self.errors = [error]
        self.bare = False  # some edge answers carry only success and errors

    def response(self) -> Response:
        body: dict[str, Any] = {"success": False, "errors": self.errors}
        if not self.bare:
            body.update(messages=[], result=None)
        return Response(self.status, body)


def _bare(status: int, code: int, message: str) -> _ApiError:
    error = _ApiError(status, code, message)
    error.bare = True
    return error


def _bad_headers(code: int, message: str) -> _ApiError:
    return _ApiError(
        400, 6003, "Invalid request headers", chain=[{"code": code, "message": message}]
    )


def _no_route(path: str) -> _ApiError:
    error = _ApiError(
        400, 7003, f"Could not route to {path}, perhaps your object identifier is invalid?"
    )
    error.errors.append({"code": 7000, "message": "No route for that URI"})
    return error


def failure_body(code: int, message: str) -> dict[str, Any]:
    """The documented failure envelope."""
    return {
        "success": False,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": None,
    }


def cf_error(
    status: int,
    code: int,
    message: str,
    *,
    times: int = 1,
    method: str | None = None,
    path: str | None = None,
    headers: dict[str, str] | None = None,
) -> Fault:
    """A fault answering ``status`` with Cloudflare's failure envelope carrying ``code``."""
    return Fault(
        status=status,
        body=json.dumps(failure_body(code, message)).encode(),
        headers={"Content-Type": "application/json", **(headers or {})},
        times=times,
        method=method,
        path=path,
    )


def rate_limited(
    retry_after: int = 1, *, times: int = 1, method: str | None = None, path: str | None = None
) -> Fault:
    """HTTP 429 as Cloudflare sends it: code 971 and ``Retry-After`` in whole seconds."""
    return cf_error(
        429,
        971,
        MSG_RATE_LIMITED,
        times=times,
        method=method,
        path=path,
        headers={"Retry-After": str(retry_after)},
    )


def canonical_ip(text: str) -> str:
    """RFC 5952 text, IPv4-mapped as ``::ffff:192.0.2.1`` (section 5); ValueError if not an IP."""
    if "%" in text:
        raise ValueError(f"zone (scope) identifiers are not allowed: {text!r}")
    ip = ipaddress.ip_address(text)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return ip.compressed


def _ip_order(text: str) -> tuple[int, int]:
    ip = ipaddress.ip_address(text)
    return ip.version, int(ip)


def _now(*, micro: bool = False) -> str:
    """RFC 3339 in UTC with a ``Z``."""
    stamp = dt.datetime.now(dt.UTC).isoformat(timespec="microseconds" if micro else "seconds")
    return stamp.replace("+00:00", "Z")


@dataclass(slots=True)
class _Mapping:
    vendor: str
    region: str
    modified_on: str


@dataclass(slots=True)
class _Record:
    id: str
    type: str
    name: str
    content: str
    proxied: bool
    created_on: str
    omit: tuple[str, ...] = ()  # fields the answer leaves out (the schema makes them optional)

    def json(self, zone_id: str, zone_name: str) -> dict[str, Any]:
        return _without(
            self.omit,
            {
                "id": self.id,
                "zone_id": zone_id,
                "zone_name": zone_name,
                "name": self.name,
                "type": self.type,
                "content": self.content,
                "proxiable": self.type in _PROXIABLE,
                "proxied": self.proxied,
                "ttl": 1,
                "settings": {},
                "meta": {},
                "comment": None,
                "tags": [],
                "created_on": self.created_on,
                "modified_on": self.created_on,
            },
        )


@dataclass(slots=True)
class _Pool:
    id: str
    name: str
    enabled: bool
    origins: list[dict[str, Any]]
    created_on: str

    def json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "description": "",
            "enabled": self.enabled,
            "minimum_origins": 1,
            "monitor": None,
            "check_regions": None,
            "origins": self.origins,
            "notification_email": "",
            "created_on": self.created_on,
            "modified_on": self.created_on,
        }


@dataclass(slots=True)
class _LoadBalancer:
    id: str
    name: str
    enabled: bool
    proxied: bool
    default_pools: list[str]
    fallback_pool: str
    region_pools: dict[str, list[str]]
    country_pools: dict[str, list[str]]
    pop_pools: dict[str, list[str]]
    created_on: str
    rules: list[dict[str, Any]] = field(default_factory=list)
    pool_sets: list[dict[str, Any]] = field(default_factory=list)
    omit: tuple[str, ...] = ()

    def json(self) -> dict[str, Any]:
        return _without(
            self.omit,
            {
                "id": self.id,
                "name": self.name,
                "description": "",
                "enabled": self.enabled,
                "proxied": self.proxied,
                "ttl": 30,
                "default_pools": self.default_pools,
                "fallback_pool": self.fallback_pool,
                "region_pools": self.region_pools,
                "country_pools": self.country_pools,
                "pop_pools": self.pop_pools,
                "rules": self.rules,
                "pool_sets": self.pool_sets,
                "steering_policy": "",
                "session_affinity": "none",
                "created_on": self.created_on,
                "modified_on": self.created_on,
            },
        )


@dataclass(slots=True)
class _Zone:
    id: str
    name: str
    account_id: str = DEFAULT_ACCOUNT
    status: str = "active"
    tiered_cache: bool = True
    smart_topology: bool = True
    load_balancers: dict[str, _LoadBalancer] = field(default_factory=dict)
    mappings: dict[str, _Mapping] = field(default_factory=dict)
    modified_on: str | None = None  # of the whole set; None when the zone holds no mapping
    records: dict[str, _Record] = field(default_factory=dict)
    account_in_details: bool = True  # False: GET /zones/{id} leaves account.id out

    def entry(self, gen: _Gen, ip: str) -> dict[str, Any]:
        m = self.mappings[ip]
        return {
            gen.ip_out: ip,
            "vendor": m.vendor,
            "region": m.region,
            "modified_on": m.modified_on,
        }

    def entries(self, gen: _Gen) -> list[dict[str, Any]]:
        return [self.entry(gen, ip) for ip in sorted(self.mappings, key=_ip_order)]

    def json(self) -> dict[str, Any]:
        """The zone as ``GET /zones`` lists it and ``GET /zones/{id}`` shows it: every field
        the published schema requires (the SDK's ``Zone`` model), and a few more."""
        return {
            "id": self.id,
            "name": self.name,
            "status": self.status,
            "paused": False,
            "type": "full",
            "development_mode": 0,
            "name_servers": ["ada.ns.cloudflare.com", "bob.ns.cloudflare.com"],
            "original_name_servers": None,
            "account": {"id": self.account_id, "name": f"account {self.account_id[-4:]}"},
            "owner": {"id": None, "type": "user", "name": None},
            "plan": {"id": "0feeeeeeeeeeeeeeeeeeeeeeeeeeeeee", "name": "Free Website"},
            "meta": {"phishing_detected": False},
            "created_on": "2024-01-01T00:00:00Z",
            "modified_on": "2024-01-01T00:00:00Z",
            "activated_on": "2024-01-01T00:00:00Z",
        }

    def touch(self) -> str:
        self.modified_on = _now() if self.mappings else None
        return _now()


@dataclass(frozen=True, slots=True)
class _Call:
    zone: _Zone
    gen: _Gen
    request: Request
    ip: str | None  # the still-encoded IP path segment of single-mapping routes


@dataclass(slots=True)
class _Item:
    """One body item after validation: ``ip`` is canonical when valid; ``error`` if it failed."""

    echo: str  # what goes under the IP key of a failed item
    ip: str | None = None
    vendor: str = ""
    region: str = ""
    error: str | None = None
    code: int = 1146  # the code a single-item endpoint answers with for ``error``


_Handler = Callable[[_Call], Response]


class CloudflareSimulator(SimulatorServer):
    """Origin cloud regions (v1 and v2 over one store) and DNS record listing, per zone.

    ``base_url`` is what syncd's ``cloudflare.base_url`` points at. Control methods change the
    store directly (no request is logged) and are safe to call while requests are served.
    """

    def __init__(
        self,
        *,
        token: str | None = "test-token",
        email: str | None = None,
        api_key: str | None = None,
        regions: dict[str, list[str]] | None = None,
        max_mappings: int = MAX_MAPPINGS,
        rate_limit: tuple[int, float] = RATE_LIMIT,
        latency: float = 0.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(latency=latency, host=host, port=port)
        if rate_limit[0] < 1 or rate_limit[1] <= 0:
            raise ValueError("rate_limit is (requests >= 1, seconds > 0)")
        _check_credentials(token, email, api_key)
        regions = DEFAULT_REGIONS if regions is None else regions
        unknown = set(regions) - set(VENDORS)
        if unknown:
            raise ValueError(f"unknown vendors {sorted(unknown)}; Cloudflare knows {VENDORS}")
        if max_mappings < 0:
            raise ValueError("max_mappings must be >= 0")
        self._token = token
        self._email = email
        self._key = api_key
        self._regions = {v: list(rs) for v, rs in regions.items()}
        self.max_mappings = max_mappings
        self._zones: dict[str, _Zone] = {}
        self._disabled: set[str] = set()
        self._denied: set[str] = set()
        self._pools: dict[tuple[str, str], _Pool] = {}  # (account, pool id) -> pool
        # False: the token lacks Zone Read, and GET /zones answers 403 (9109).
        self.zone_read = True
        # GET /zones without ``account.id`` is refused when the token's zones span more accounts.
        self.zone_listing_accounts = ZONE_LISTING_ACCOUNTS
        # False: answers carry no Ratelimit/Ratelimit-Policy (as through a proxy that strips
        # them); the limit is still enforced.
        self.rate_limit_headers = True
        self.rate_limit = rate_limit
        self._window: deque[float] = deque()
        self._blocked_until = 0.0
        self._handlers = self._routes()
        # POST /graphql: the GraphQL Analytics API (simulators/analytics.py), its own quota.
        self.analytics = analytics.AnalyticsSimulator()

    def _routes(self) -> dict[tuple[str, str, str], _Handler]:
        """(API generation or family, resource kind, method) -> the handler that serves it."""
        return {
            ("v1", "collection", "GET"): self._list_v1,
            ("v1", "collection", "POST"): self._create_v1,
            ("v1", "collection", "PATCH"): self._upsert_one_v1,
            ("v1", "single", "GET"): self._get_one,
            ("v1", "single", "DELETE"): self._delete_one,
            ("v1", "batch", "PATCH"): self._batch_upsert,
            ("v1", "batch", "DELETE"): self._batch_delete,
            ("v1", "supported", "GET"): self._supported_regions,
            ("v2", "collection", "GET"): self._list_v2,
            ("v2", "single", "GET"): self._get_one,
            ("v2", "single", "PUT"): self._put_one_v2,
            ("v2", "single", "DELETE"): self._delete_one,
            ("v2", "batch", "PUT"): self._batch_upsert,
            ("v2", "batch", "DELETE"): self._batch_delete,
            ("v2", "supported", "GET"): self._supported_regions,
            ("dns", "dns", "GET"): self._list_dns,
            ("zone", "details", "GET"): self._zone_details,
            ("zone", "load_balancers", "GET"): self._list_load_balancers,
            ("zone", "tiered_caching", "GET"): self._tiered_caching,
            ("zone", "smart_topology", "GET"): self._smart_topology,
        }

    @property
    def base_url(self) -> str:
        return f"{self.url}/client/v4"

    # --- control API ----------------------------------------------------------------------

    def add_zone(
        self,
        zone_id: str,
        name: str = "",
        *,
        account_id: str = DEFAULT_ACCOUNT,
        status: str = "active",
    ) -> None:
        if not _ZONE_ID.fullmatch(zone_id):
            raise ValueError(f"a zone id is 32 lower-case hex characters, not {zone_id!r}")
        if not _ZONE_ID.fullmatch(account_id):
            raise ValueError(f"an account id is 32 lower-case hex characters, not {account_id!r}")
        if status not in ZONE_STATUSES:
            raise ValueError(f"zone status must be one of {ZONE_STATUSES}, not {status!r}")
        with self._lock:
            self._zones.setdefault(zone_id, _Zone(zone_id, name, account_id, status))

    def remove_zone(self, zone_id: str) -> None:
        """The zone is deleted (or moved out of the token's reach): every route answers 403."""
        with self._lock:
            self._zone(zone_id)
            del self._zones[zone_id]

    def rotate_token(self, token: str) -> None:
        """The user rolls the API token: from now on only ``token`` is accepted."""
        with self._lock:
            self._token = token

    def set_mapping(
        self, zone_id: str, ip: str, vendor: str, region: str, *, new_vendor: bool = False
    ) -> None:
        """Store a mapping as if written earlier (any region; the zone maximum is not applied).
        ``new_vendor``: any vendor name, as if Cloudflare had added a vendor to its API."""
        if vendor not in VENDORS and not new_vendor:
            raise ValueError(f"vendor must be one of {VENDORS}, not {vendor!r}")
        with self._lock:
            zone = self._zone(zone_id)
            zone.mappings[canonical_ip(ip)] = _Mapping(vendor, region, _now())
            zone.touch()

    def mappings(self, zone_id: str) -> dict[str, tuple[str, str]]:
        with self._lock:
            return {ip: (m.vendor, m.region) for ip, m in self._zone(zone_id).mappings.items()}

    def add_dns_record(
        self,
        zone_id: str,
        type: str,
        name: str,
        content: str,
        *,
        proxied: bool = True,
        omit: Sequence[str] = (),
    ) -> str:
        """Add a record as given (AAAA content is kept as written); return its id. ``omit``:
        fields the answer leaves out (the schema makes ``content``, ``name``... optional)."""
        if type not in DNS_TYPES:
            raise ValueError(f"unknown DNS record type {type!r}")
        family = {"A": 4, "AAAA": 6}.get(type)
        if family is not None and ipaddress.ip_address(content).version != family:
            raise ValueError(f"{type} content must be an IPv{family} address, not {content!r}")
        record = _Record(
            id=uuid.uuid4().hex,
            type=type,
            name=name,
            content=content,
            proxied=proxied and type in _PROXIABLE,
            created_on=_now(micro=True),
            omit=tuple(omit),
        )
        with self._lock:
            self._zone(zone_id).records[record.id] = record
        return record.id

    def remove_dns_record(self, zone_id: str, record_id: str) -> None:
        with self._lock:
            records = self._zone(zone_id).records
            if record_id not in records:
                raise KeyError(f"no DNS record {record_id} in zone {zone_id}")
            del records[record_id]

    def disable(self, generation: str) -> None:
        """Every route of ``generation`` answers 400 7003/7000 "No route", as the edge does."""
        with self._lock:
            self._disabled.add(_generation(generation))

    def enable(self, generation: str) -> None:
        with self._lock:
            self._disabled.discard(_generation(generation))

    def set_tiered_cache(self, zone_id: str, enabled: bool) -> None:
        """With Tiered Cache off, ``supported_regions`` answers 403 code 1135."""
        with self._lock:
            self._zone(zone_id).tiered_cache = enabled

    def hide_account(self, zone_id: str) -> None:
        """``GET /zones/{id}`` leaves out ``account.id`` (optional in the schema); ``GET /zones``
        still names it."""
        with self._lock:
            self._zone(zone_id).account_in_details = False

    def set_smart_topology(self, zone_id: str, enabled: bool) -> None:
        """``tiered_cache_smart_topology_enable``: on (Smart) or off (Generic topology)."""
        with self._lock:
            self._zone(zone_id).smart_topology = enabled

    def add_pool(
        self,
        name: str,
        origins: Sequence[dict[str, Any]],
        *,
        account: str = DEFAULT_ACCOUNT,
        enabled: bool = True,
    ) -> str:
        """An account-level pool; each origin ``{address, name?, enabled?, weight?}``. Its id."""
        if not re.fullmatch(r"[A-Za-z0-9_-]+", name):
            raise ValueError(f"a pool name is letters, digits, '-' and '_': {name!r}")
        full = []
        for n, o in enumerate(origins):
            if not isinstance(o.get("address"), str) and "address" not in o:
                raise TypeError(f"origin {n} of pool {name} needs an address (None: left out)")
            origin = {
                "name": o.get("name", f"origin-{n}"),
                "address": o["address"],
                "enabled": o.get("enabled", True),
                "weight": o.get("weight", 1),
                "header": {},
            }
            full.append(_without(("address",) if o["address"] is None else (), origin))
        pool = _Pool(uuid.uuid4().hex, name, enabled, full, _now(micro=True))
        with self._lock:
            self._pools[(account, pool.id)] = pool
        return pool.id

    def set_pool_origins(
        self, pool_id: str, origins: Sequence[dict[str, Any]], *, account: str = DEFAULT_ACCOUNT
    ) -> None:
        with self._lock:
            pool = self._pools[(account, pool_id)]
        fresh = self.add_pool(pool.name, origins, account=account, enabled=pool.enabled)
        with self._lock:
            pool.origins = self._pools.pop((account, fresh)).origins

    def remove_pool(self, pool_id: str, *, account: str = DEFAULT_ACCOUNT) -> None:
        with self._lock:
            del self._pools[(account, pool_id)]

    def add_load_balancer(
        self,
        zone_id: str,
        name: str,
        *,
        default_pools: Sequence[str],
        fallback_pool: str,
        region_pools: dict[str, list[str]] | None = None,
        country_pools: dict[str, list[str]] | None = None,
        pop_pools: dict[str, list[str]] | None = None,
        enabled: bool = True,
        proxied: bool = True,
        rules: Sequence[dict[str, Any]] = (),
        pool_sets: Sequence[dict[str, Any]] = (),
        omit: Sequence[str] = (),
    ) -> str:
        """A load balancer on hostname ``name``; pool ids are not checked (as a stale LB).

        ``rules`` and ``pool_sets`` in the schema's shapes (``{name, condition, disabled,
        overrides: {default_pools, fallback_pool, region_pools, ..., pools}}``); ``omit``: fields
        the answer leaves out (the schema makes every field optional)."""
        if not default_pools:
            raise ValueError("default_pools needs at least one pool id")
        lb = _LoadBalancer(
            id=uuid.uuid4().hex,
            name=name,
            enabled=enabled,
            proxied=proxied,
            default_pools=list(default_pools),
            fallback_pool=fallback_pool,
            region_pools=dict(region_pools or {}),
            country_pools=dict(country_pools or {}),
            pop_pools=dict(pop_pools or {}),
            created_on=_now(micro=True),
            rules=[_rule(n, r) for n, r in enumerate(rules)],
            pool_sets=[_pool_set(p) for p in pool_sets],
            omit=tuple(omit),
        )
        with self._lock:
            self._zone(zone_id).load_balancers[lb.id] = lb
        return lb.id

    def deny(self, permission: str) -> None:
        """The token loses ``permission`` (one of PERMISSIONS): its routes answer 403."""
        if permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {PERMISSIONS}, not {permission!r}")
        with self._lock:
            self._denied.add(permission)

    def allow(self, permission: str) -> None:
        with self._lock:
            self._denied.discard(permission)

    def _zone(self, zone_id: str) -> _Zone:
        zone = self._zones.get(zone_id)
        if zone is None:
            raise KeyError(f"no zone {zone_id}; add_zone() it first")
        return zone

    # --- request handling -----------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        limited, headers = self._count()
        if limited:
            response = _ApiError(429, 971, MSG_RATE_LIMITED).response()
        else:
            try:
                with self._lock:
                    response = self._serve(request)
            except _ApiError as exc:
                response = exc.response()
        if self.rate_limit_headers or "Retry-After" in headers:
            response.headers.update(
                headers if self.rate_limit_headers else {"Retry-After": headers["Retry-After"]}
            )
        return response

    def _serve(self, request: Request) -> Response:
        if request.path == analytics.PATH:
            return self._graphql(request)
        pool = _POOL_PATH.fullmatch(request.path)
        if pool is not None:
            return self._get_pool(request, pool["account"], pool["pool"])
        if request.path.rstrip("/") == _ZONES_PATH:
            if request.method != "GET":
                raise _no_route(request.path)
            self._authenticate(request)
            return self._list_zones(request)
        zone_id, gen, kind, ip = self._route(request)
        self._authenticate(request)
        self._check_permission(kind)
        zone = self._zones.get(zone_id)
        if zone is None:
            # A token cannot see a zone outside its scope; Cloudflare does not tell "no such
            # zone" from "not yours" and answers as for a token without access.
            raise _bare(403, 10000, "Authentication error")
        handler = self._handlers[(gen.name, kind, request.method)]
        return handler(_Call(zone, gen, request, ip))

    def _graphql(self, request: Request) -> Response:
        """``POST /graphql``, authenticated like every route, answered by the analytics half."""
        if request.method != "POST":
            raise _no_route(request.path)
        self._authenticate(request)
        try:
            body = json.loads(request.body)
        except (ValueError, UnicodeDecodeError):
            body = None
        status, answer = self.analytics.answer(
            body, zones=self._zones.keys(), denied="analytics" in self._denied
        )
        return Response(status, answer)

    def _check_permission(self, kind: str) -> None:
        needed = _GUARDED.get(kind)
        # Load Balancing read covers both; "pools" alone is the account-level half of it.
        if needed in self._denied or (needed == "pools" and "load_balancing" in self._denied):
            raise _bare(403, 10000, "Authentication error")

    def _route(self, request: Request) -> tuple[str, _Gen, str, str | None]:
        match = _ZONE_PATH.fullmatch(request.path)
        if match is None or not _ZONE_ID.fullmatch(match["zone"]):
            raise _no_route(request.path)
        for gen, pattern, kind in _REST:
            found = pattern.fullmatch(match["rest"] or "")
            if found is None:
                continue
            key = (gen.name, kind, request.method)
            if gen.name in self._disabled or key not in self._handlers:
                raise _no_route(request.path)
            return match["zone"], gen, kind, found.groupdict().get("ip")
        raise _no_route(request.path)

    def _authenticate(self, request: Request) -> None:
        headers = request.headers
        scheme, _, token = headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            token = token.strip()
            if not _TOKEN.fullmatch(token):
                raise _bad_headers(6111, "Invalid format for Authorization header")
            if self._token is None or not hmac.compare_digest(token, self._token):
                raise _bare(403, 10000, "Authentication error")
            return
        email, key = headers.get("x-auth-email"), headers.get("x-auth-key")
        if email is None or key is None:
            raise _bare(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")
        chain = []
        if not _EMAIL.fullmatch(email):
            chain.append({"code": 6102, "message": "Invalid format for X-Auth-Email header"})
        if not _GLOBAL_KEY.fullmatch(key):
            chain.append({"code": 6103, "message": "Invalid format for X-Auth-Key header"})
        if chain:
            raise _ApiError(400, 6003, "Invalid request headers", chain=chain)
        known = self._email is not None and self._key is not None
        if (
            not known
            or email.lower() != str(self._email).lower()
            or not hmac.compare_digest(key, str(self._key))
        ):
            raise _ApiError(403, 9103, "Unknown X-Auth-Key or X-Auth-Email")

    def _count(self) -> tuple[bool, dict[str, str]]:
        """Count an arrival against the per-user limit (LIM); (over the limit?, headers).

        Like Cloudflare, every request counts, and one over the quota blocks every call for a
        whole window: 429 with ``Retry-After`` until it has passed.
        """
        quota, window = self.rate_limit
        now = time.monotonic()
        with self._lock:
            self._window.append(now)
            while self._window and self._window[0] <= now - window:
                self._window.popleft()
            if now >= self._blocked_until and len(self._window) > quota:
                self._blocked_until = now + window
            left = max(0, quota - len(self._window))
            reset = math.ceil(self._window[0] + window - now)
            blocked = self._blocked_until - now
        headers = {
            "Ratelimit": f'"default";r={left};t={reset}',
            "Ratelimit-Policy": f'"default";q={quota};w={window:g}',
        }
        if blocked > 0:
            # (now + window) - now is not always window in floating point: 600.0000000001
            # must still say 600.
            headers["Retry-After"] = str(math.ceil(round(blocked, 6)))
        return blocked > 0, headers

    # --- envelopes ------------------------------------------------------------------------

    @staticmethod
    def _ok(gen: _Gen, value: Any, modified_on: str | None = None, **extra: Any) -> Response:
        result = value
        if gen.wrapped:
            result = {
                "id": SETTING_ID,
                "editable": True,
                "value": value,
                "modified_on": modified_on,
            }
        return Response(
            200, {"success": True, "errors": [], "messages": [], "result": result, **extra}
        )

    # --- lists and single mappings --------------------------------------------------------

    def _list_v1(self, call: _Call) -> Response:
        zone = call.zone
        return self._ok(call.gen, zone.entries(call.gen), zone.modified_on)

    def _list_v2(self, call: _Call) -> Response:
        per_page = _int_param(call.request, "per_page", V2_PER_PAGE, code=1146)
        page = _int_param(call.request, "page", (1, sys.maxsize, 1), code=1146)
        entries = call.zone.entries(call.gen)
        chunk = entries[(page - 1) * per_page : page * per_page]
        info = _result_info(page, per_page, len(chunk), len(entries))
        return self._ok(call.gen, chunk, result_info=info)

    def _path_ip(self, call: _Call) -> str:
        try:
            return canonical_ip(unquote(call.ip or ""))
        except ValueError:
            raise _ApiError(400, 1146, MSG_BAD_IP) from None

    def _existing(self, call: _Call) -> str:
        ip = self._path_ip(call)
        if ip not in call.zone.mappings:
            raise _ApiError(404, 1142, MSG_NOT_FOUND)
        return ip

    def _get_one(self, call: _Call) -> Response:
        ip = self._existing(call)
        entry = call.zone.entry(call.gen, ip)
        return self._ok(call.gen, entry, entry["modified_on"])

    def _delete_one(self, call: _Call) -> Response:
        ip = self._existing(call)
        entry = call.zone.entry(call.gen, ip)
        del call.zone.mappings[ip]
        call.zone.touch()
        if call.gen.wrapped:
            return self._ok(call.gen, entry, call.zone.modified_on)
        return self._ok(call.gen, {call.gen.ip_out: ip})

    def _create_v1(self, call: _Call) -> Response:
        item = self._single_item(call)
        if item.ip in call.zone.mappings:
            raise _ApiError(400, 1145, MSG_EXISTS)
        return self._write_one(call, item, whole_set=False)

    def _upsert_one_v1(self, call: _Call) -> Response:
        return self._write_one(call, self._single_item(call), whole_set=True)

    def _put_one_v2(self, call: _Call) -> Response:
        path_ip = self._path_ip(call)
        item = self._single_item(call)
        if item.ip != path_ip:
            raise _ApiError(400, 1146, "body origin_ip does not match URL")
        return self._write_one(call, item, whole_set=False)

    def _single_item(self, call: _Call) -> _Item:
        body = _json_body(call.request, dict, "a JSON object")
        item = self._validate(call.gen, body)
        if item.error is not None:
            message = MSG_BAD_IP if item.ip is None else item.error
            raise _ApiError(400, item.code, MSG_BAD_REGION if item.code == 1157 else message)
        return item

    def _write_one(self, call: _Call, item: _Item, *, whole_set: bool) -> Response:
        zone, ip = call.zone, str(item.ip)
        if ip not in zone.mappings and len(zone.mappings) >= self.max_mappings:
            raise _ApiError(403, 1164, MSG_FULL)
        zone.mappings[ip] = _Mapping(item.vendor, item.region, _now())
        now = zone.touch()
        value = zone.entries(call.gen) if whole_set else zone.entry(call.gen, ip)
        return self._ok(call.gen, value, now)

    def _supported_regions(self, call: _Call) -> Response:
        if not call.zone.tiered_cache:
            raise _ApiError(
                403, 1135, "Origin cloud regions require Tiered Cache to be enabled for this zone."
            )
        vendors = {
            vendor: [
                {"name": r, "upper_tier_colos": list(_UPPER_TIERS.get(vendor, {}).get(r, ()))}
                for r in regions
            ]
            for vendor, regions in self._regions.items()
        }
        return self._ok(V2, {"obtained_codes": True, "vendors": vendors})

    # --- batches --------------------------------------------------------------------------

    def _batch_upsert(self, call: _Call) -> Response:
        zone, gen = call.zone, call.gen
        items = [self._validate(gen, raw) for raw in _batch_body(call.request)]
        _reject_duplicates(items)
        good = [i for i in items if i.error is None]
        new = {str(i.ip) for i in good} - set(zone.mappings)
        if len(zone.mappings) + len(new) > self.max_mappings:
            raise _ApiError(403, 1164, MSG_FULL)  # the whole request; nothing is applied
        succeeded = []
        for item in good:
            zone.mappings[str(item.ip)] = _Mapping(item.vendor, item.region, _now())
            succeeded.append({gen.ip_out: item.ip, "region": item.region, "vendor": item.vendor})
        return self._batch_result(call, succeeded, items)

    def _batch_delete(self, call: _Call) -> Response:
        zone, gen = call.zone, call.gen
        items = [_delete_item(zone, raw) for raw in _batch_body(call.request)]
        _reject_duplicates(items)
        succeeded = []
        for item in items:
            if item.error is None:
                gone = zone.mappings.pop(str(item.ip))
                succeeded.append(
                    {gen.ip_out: item.ip, "region": gone.region, "vendor": gone.vendor}
                )
        return self._batch_result(call, succeeded, items)

    def _batch_result(
        self, call: _Call, succeeded: list[dict[str, Any]], items: list[_Item]
    ) -> Response:
        failed = [{call.gen.ip_out: i.echo, "error": i.error} for i in items if i.error is not None]
        modified_on = call.zone.touch() if succeeded else None
        return self._ok(call.gen, {"failed": failed, "succeeded": succeeded}, modified_on)

    def _validate(self, gen: _Gen, raw: Any) -> _Item:
        """One upsert item, checked on its own; failures name the field and what was wrong."""
        if not isinstance(raw, dict):
            return _Item(
                echo="", error=f"item must be an object with {gen.ip_in}, vendor and region"
            )
        item = _Item(echo=_echo(raw, gen), ip=_parse_ip(raw.get(gen.ip_in)))
        if item.ip is None:
            item.error = _ip_error(raw, gen)
            return item
        item.echo = item.ip
        unknown = sorted(set(raw) - {gen.ip_in, "vendor", "region"})
        if unknown:
            item.error = f"unknown field(s) {unknown}: an item has {gen.ip_in}, vendor and region"
            return item
        item.error = self._check_region(raw.get("vendor"), raw.get("region"))
        if item.error is None:
            item.vendor, item.region = raw["vendor"], raw["region"]
        else:
            item.code = 1157
        return item

    def _check_region(self, vendor: Any, region: Any) -> str | None:
        if vendor not in VENDORS:
            return f"vendor {vendor!r} is not one of {', '.join(VENDORS)}"
        if not isinstance(region, str) or region not in self._regions.get(vendor, ()):
            return f"region {region!r} is not a supported region for vendor {vendor!r}"
        return None

    # --- zones ----------------------------------------------------------------------------

    def _list_zones(self, request: Request) -> Response:
        """``GET /zones``: the zones the token can read, filtered by name, status, account."""
        if not self.zone_read:
            raise _ApiError(403, 9109, "Unauthorized to access requested resource")
        per_page = _int_param(request, "per_page", ZONES_PER_PAGE, code=1001)
        page = _int_param(request, "page", (1, sys.maxsize, 1), code=1001)
        status = request.param("status")
        if status is not None and status not in ZONE_STATUSES:
            raise _ApiError(400, 1001, f"invalid status, must be one of {list(ZONE_STATUSES)}")
        account = request.param("account.id")
        if account is not None and not _ZONE_ID.fullmatch(account):
            raise _ApiError(400, 7003, "Could not route to /zones, invalid account identifier")
        name = request.param("name")
        spanned = len({z.account_id for z in self._zones.values()})
        if account is None and spanned > self.zone_listing_accounts:
            raise _ApiError(
                400,
                1001,
                f"Listing zones across more than {self.zone_listing_accounts} accounts is "
                "currently not allowed, please apply the 'account.id' filter",
            )
        zones = [
            z
            for z in sorted(self._zones.values(), key=lambda z: (z.name, z.id))
            if (status is None or z.status == status)
            and (account is None or z.account_id == account)
            and (name is None or z.name == name.lower())
        ]
        chunk = zones[(page - 1) * per_page : page * per_page]
        info = _result_info(page, per_page, len(chunk), len(zones))
        return self._ok(DNS, [z.json() for z in chunk], result_info=info)

    # --- DNS ------------------------------------------------------------------------------

    def _list_dns(self, call: _Call) -> Response:
        request = call.request
        per_page = _int_param(request, "per_page", DNS_PER_PAGE, code=1004)
        page = _int_param(request, "page", (1, sys.maxsize, 1), code=1004)
        tests = _dns_filters(request)
        match = request.param("match") or "all"
        if match not in ("all", "any"):
            raise _ApiError(400, 1004, "match must be 'all' or 'any'")
        combine = all if match == "all" else any
        records = [
            r for r in call.zone.records.values() if not tests or combine(t(r) for t in tests)
        ]
        chunk = records[(page - 1) * per_page : page * per_page]
        result = [r.json(call.zone.id, call.zone.name) for r in chunk]
        info = _result_info(page, per_page, len(chunk), len(records))
        return self._ok(DNS, result, result_info=info)

    # --- zone details, load balancers, pools, tiered cache (read-only) -------------------

    def _zone_details(self, call: _Call) -> Response:
        result = call.zone.json()
        if not call.zone.account_in_details:
            result["account"] = {"name": result["account"]["name"]}
        return self._ok(ZONE, result)

    def _list_load_balancers(self, call: _Call) -> Response:
        result = [lb.json() for lb in call.zone.load_balancers.values()]
        return self._ok(ZONE, result)

    def _get_pool(self, request: Request, account: str, pool_id: str | None) -> Response:
        """One pool, or (``pool_id`` None) every pool of the account: one page, no paging."""
        if request.method != "GET" or not _ZONE_ID.fullmatch(account):
            raise _no_route(request.path)
        self._authenticate(request)
        self._check_permission("pool")
        if account not in {z.account_id for z in self._zones.values()}:
            raise _bare(403, 10000, "Authentication error")
        if pool_id is None:
            listed = [p.json() for (a, _), p in self._pools.items() if a == account]
            return self._ok(ZONE, listed)
        pool = self._pools.get((account, pool_id))
        if pool is None:
            raise _ApiError(404, 1003, "Pool not found")
        return self._ok(ZONE, pool.json())

    def _setting(self, setting_id: str, on: bool) -> Response:
        value = {"id": setting_id, "value": "on" if on else "off", "editable": True}
        return self._ok(ZONE, {**value, "modified_on": "2024-01-01T00:00:00Z"})

    def _tiered_caching(self, call: _Call) -> Response:
        return self._setting("tiered_caching", call.zone.tiered_cache)

    def _smart_topology(self, call: _Call) -> Response:
        return self._setting("tiered_cache_smart_topology_enable", call.zone.smart_topology)


# --- helpers of the request handlers (module level: they need no simulator state) --------------


def _check_credentials(token: str | None, email: str | None, key: str | None) -> None:
    if token is not None and not _TOKEN.fullmatch(token):
        raise ValueError("an API token is made of letters, digits, '-' and '_'")
    if (email is None) != (key is None):
        raise ValueError("give email and api_key together")
    if key is not None and not _GLOBAL_KEY.fullmatch(key):
        raise ValueError("a Global API Key is 37 lower-case hex characters")
    if email is not None and not _EMAIL.fullmatch(email):
        raise ValueError("email must look like user@example.com")


def _generation(name: str) -> str:
    if name not in ("v1", "v2"):
        raise ValueError(f"generation must be 'v1' or 'v2', not {name!r}")
    return name


def _echo(raw: dict[str, Any], gen: _Gen) -> str:
    """The IP a failed item is reported under, even when it came under the wrong key."""
    for key in (gen.ip_in, "origin_ip", "ip", "origin-ip"):
        if isinstance(raw.get(key), str):
            return str(raw[key])
    return ""


def _parse_ip(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return canonical_ip(value)
    except ValueError:
        return None


def _ip_error(raw: dict[str, Any], gen: _Gen) -> str:
    if gen.ip_in in raw:
        return f"{gen.ip_in} {raw[gen.ip_in]!r} is not a valid IP address"
    wrong = [k for k in ("ip", "origin_ip", "origin-ip") if k in raw]
    hint = f" ({wrong[0]!r} is not this API's name for it)" if wrong else ""
    return f"missing required field {gen.ip_in!r}{hint}"


def _without(omit: Sequence[str], item: dict[str, Any]) -> dict[str, Any]:
    """``item`` less the fields named in ``omit`` (each optional in the published schema)."""
    return {k: v for k, v in item.items() if k not in omit}


def _rule(n: int, rule: dict[str, Any]) -> dict[str, Any]:
    """A load balancing rule as the API returns it: every schema field, defaults filled in."""
    return {
        "name": f"rule-{n + 1}",
        "condition": "",
        "disabled": False,
        "priority": n,
        "terminates": False,
        "fixed_response": None,
        "overrides": {},
        **rule,
    }


def _pool_set(pool_set: dict[str, Any]) -> dict[str, Any]:
    """A pool set as the API returns it: ``{name, disabled, match, overrides}``."""
    return {"disabled": False, "match": {"default": True}, "overrides": {}, **pool_set}


def _delete_item(zone: _Zone, raw: Any) -> _Item:
    if not isinstance(raw, str):
        return _Item(echo="", error=f"item must be an IP address string, not {raw!r}")
    try:
        ip = canonical_ip(raw)
    except ValueError:
        return _Item(echo=raw, error=f"{raw!r} is not an IP address")
    if ip not in zone.mappings:
        return _Item(echo=ip, ip=ip, error="no origin cloud region mapping for this IP")
    return _Item(echo=ip, ip=ip)


def _reject_duplicates(items: list[_Item]) -> None:
    """Every item whose IP appears more than once fails: which one should win is ambiguous."""
    seen: dict[str, int] = {}
    for item in items:
        if item.ip is not None:
            seen[item.ip] = seen.get(item.ip, 0) + 1
    for item in items:
        if item.ip is not None and seen[item.ip] > 1:
            item.error = f"origin IP {item.ip} appears {seen[item.ip]} times in this request"


def _json_body(request: Request, kind: type, what: str) -> Any:
    if not request.body:
        raise _ApiError(400, 1146, f"request body must be {what}")
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media not in ("application/json", "multipart/form-data"):
        raise _bad_headers(
            6105,
            "Invalid Content-Type header, valid values are application/json,multipart/form-data",
        )
    try:
        body = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise _ApiError(400, 6007, "Malformed JSON in request body") from None
    if not isinstance(body, kind):
        raise _ApiError(400, 1146, f"request body must be {what}")
    return body


def _batch_body(request: Request) -> list[Any]:
    body: list[Any] = _json_body(request, list, "a JSON array")
    if len(body) > MAX_BATCH:
        raise _ApiError(
            400, 1146, f"too many items: {len(body)}; a batch holds at most {MAX_BATCH}"
        )
    return body


def _int_param(request: Request, name: str, bounds: tuple[int, int, int], *, code: int) -> int:
    low, high, default = bounds
    raw = request.param(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        upper = "" if high == sys.maxsize else f" and {high}"
        rule = f"between {low}{upper}" if upper else f"at least {low}"
        raise _ApiError(400, code, f"invalid {name} parameter, must be {rule}")
    return value


def _result_info(page: int, per_page: int, count: int, total: int) -> dict[str, int]:
    return {
        "page": page,
        "per_page": per_page,
        "count": count,
        "total_count": total,
        "total_pages": math.ceil(total / per_page),
    }


_MATCHERS: dict[str, Callable[[str, str], bool]] = {
    "exact": lambda have, want: have == want,
    "contains": lambda have, want: want in have,
    "startswith": lambda have, want: have.startswith(want),
    "endswith": lambda have, want: have.endswith(want),
}


def _dns_filters(request: Request) -> list[Callable[[_Record], bool]]:
    """``type``, ``proxied``, ``name[.op]`` and ``content[.op]`` as record predicates."""
    tests: list[Callable[[_Record], bool]] = []
    kind = request.param("type")
    if kind is not None:
        if kind not in DNS_TYPES:
            raise _ApiError(400, 1004, f"type must be one of {sorted(DNS_TYPES)}")
        tests.append(lambda r: r.type == kind)
    proxied = request.param("proxied")
    if proxied is not None:
        if proxied not in ("true", "false"):
            raise _ApiError(400, 1004, "proxied must be true or false")
        tests.append(lambda r: r.proxied == (proxied == "true"))
    for attr in ("name", "content"):
        for key in request.query:
            field_name, _, op = key.partition(".")
            if field_name == attr:
                tests.append(_text_filter(attr, op or "exact", request.param(key) or ""))
    return tests


def _text_filter(attr: str, op: str, want: str) -> Callable[[_Record], bool]:
    matcher = _MATCHERS.get(op)
    if matcher is None:
        raise _ApiError(400, 1004, f"unknown filter {attr}.{op}")
    return lambda r: matcher(str(getattr(r, attr)).lower(), want.lower())


# --- standalone entry ---------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m syncd.simulators.cloudflare",
        description="Serve the Cloudflare simulator until SIGINT or SIGTERM; print its base URL.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--token", help="the API token to accept (Bearer)")
    parser.add_argument("--email", help="with --api-key: the legacy credentials to accept")
    parser.add_argument("--api-key", help="a Global API Key (37 lower-case hex characters)")
    parser.add_argument(
        "--zone", action="append", default=[], metavar="ZONEID[:NAME]", help="repeatable"
    )
    parser.add_argument(
        "--zones",
        type=int,
        default=0,
        metavar="N",
        help="also add N generated active zones (zone-0001.example ...), for discovery at scale",
    )
    parser.add_argument("--max-mappings", type=int, default=MAX_MAPPINGS)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to answers")
    parser.add_argument(
        "--rate-limit",
        default=f"{RATE_LIMIT[0]}/{RATE_LIMIT[1]}",
        metavar="REQUESTS/SECONDS",
        help="the per-user limit it enforces (default: Cloudflare's, %(default)s)",
    )
    parser.add_argument(
        "--disable", action="append", default=[], choices=["v1", "v2"], help="answer 7003 for it"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.token is None and args.api_key is None:
        parser.error("give --token, or --email and --api-key")
    requests, _, seconds = args.rate_limit.partition("/")
    if not requests.isdigit() or not seconds.replace(".", "", 1).isdigit():
        parser.error(f"--rate-limit {args.rate_limit!r}: expected REQUESTS/SECONDS, e.g. 1200/300")
    try:
        sim = CloudflareSimulator(
            token=args.token,
            email=args.email,
            api_key=args.api_key,
            max_mappings=args.max_mappings,
            rate_limit=(int(requests), float(seconds)),
            latency=args.latency,
            host=args.host,
            port=args.port,
        )
        for spec in args.zone:
            zone_id, _, name = spec.partition(":")
            sim.add_zone(zone_id, name)
        for n in range(1, args.zones + 1):
            sim.add_zone(f"{n:032x}", f"zone-{n:04d}.example")
        for generation in args.disable:
            sim.disable(generation)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    sim.start()
    try:
        sys.stdout.write(f"{sim.base_url}\n")
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        sim.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
