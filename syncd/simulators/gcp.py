"""A strict stand-in for the Compute Engine and Resource Manager REST calls the GCP collector makes.

It serves the aggregated and global address, instance and forwarding-rule lists and
``projects:search`` in the JSON shapes Google returns (so the real client parses them), pages with
``maxResults``/``pageToken``, applies a list ``filter`` and a field mask (the ``fields`` system
parameter or its ``X-Goog-FieldMask`` header), and demands a bearer token it issued or a JWT signed
by the service-account key it generated. It imports nothing from syncd except ``simulators.base``.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import json
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from syncd.simulators.base import Fault, Request, Response, SimulatorServer

COMPUTE = "https://www.googleapis.com/compute/v1"
MAX_RESULTS = 500  # Compute Engine rejects a larger maxResults with 400
TOKEN_LIFETIME = 3600
_AUTH = "https://www.googleapis.com/auth/"
_JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
_CLOCK_SKEW = 300
# google-auth puts Google's token URL in the assertion's aud whatever token_uri says.
_TOKEN_AUDIENCES = frozenset(
    {"https://oauth2.googleapis.com/token", "https://www.googleapis.com/oauth2/v4/token"}
)

# Which OAuth scopes open which API (Google answers 403 ACCESS_TOKEN_SCOPE_INSUFFICIENT otherwise).
_BROAD = frozenset({_AUTH + "cloud-platform", _AUTH + "cloud-platform.read-only"})
COMPUTE_SCOPES = _BROAD | {_AUTH + "compute", _AUTH + "compute.readonly"}
PROJECTS_SCOPES = _BROAD | {
    _AUTH + "cloudplatformprojects",
    _AUTH + "cloudplatformprojects.readonly",
}
# A self-signed JWT without a scope claim names its API by audience (AIP-4111).
_AUDIENCES = {
    "https://compute.googleapis.com/": frozenset({_AUTH + "compute.readonly"}),
    "https://cloudresourcemanager.googleapis.com/": frozenset(
        {_AUTH + "cloudplatformprojects.readonly"}
    ),
}

_COMPUTE_PATH = re.compile(
    r"/compute/v1/projects/([^/]+)/(aggregated|global)/(addresses|instances|forwardingRules)"
)
_LIST_PARAMS = frozenset(
    {"maxResults", "pageToken", "filter", "orderBy", "includeAllScopes", "returnPartialSuccess"}
    | {"serviceProjectNumber", "alt", "$alt", "prettyPrint", "fields", "quotaUser"}
)
_SEARCH_PARAMS = frozenset({"query", "pageSize", "pageToken", "alt", "$alt", "prettyPrint"})
_QUERY_FIELDS = {"state": "state", "id": "projectId", "projectid": "projectId", "name": "name"}
_FILTER = re.compile(r'\s*\(?\s*([A-Za-z][A-Za-z0-9_]*)\s*(=|!=)\s*"?([^"()]*?)"?\s*\)?\s*')
# Between the parenthesized expressions of a compound filter: ") OR (", ") AND (" or ") (".
_FILTER_TERMS = re.compile(r"\)\s*(OR |AND |)\s*\(")
_PROJECT_STATES = {"ACTIVE": 1, "DELETE_REQUESTED": 2}

# collection -> (aggregated kind, list kind, scope prefix of its aggregated items)
_KINDS = {
    "addresses": ("compute#addressAggregatedList", "compute#addressList", "regions"),
    "instances": ("compute#instanceAggregatedList", "compute#instanceList", "zones"),
    "forwardingRules": (
        "compute#forwardingRuleAggregatedList",
        "compute#forwardingRuleList",
        "regions",
    ),
}
_DEFAULT_REGIONS = ("asia-east1", "europe-west1", "us-central1", "us-east1")
_DEFAULT_ZONES = ("asia-east1-a", "europe-west1-b", "us-central1-a", "us-central1-b", "us-east1-b")
_ERROR_REASONS = {
    400: ("invalid", "INVALID_ARGUMENT"),
    401: ("authError", "UNAUTHENTICATED"),
    403: ("forbidden", "PERMISSION_DENIED"),
    404: ("notFound", "NOT_FOUND"),
    429: ("rateLimitExceeded", "RESOURCE_EXHAUSTED"),
    500: ("backendError", "INTERNAL"),
    502: ("backendError", "UNAVAILABLE"),
    503: ("backendError", "UNAVAILABLE"),
    504: ("backendError", "DEADLINE_EXCEEDED"),
}


def google_error(
    code: int,
    message: str,
    *,
    reason: str | None = None,
    domain: str = "global",
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The ``{"error": {code, message, errors[], status}}`` body Google APIs answer with."""
    default_reason, status = _ERROR_REASONS.get(code, ("error", "UNKNOWN"))
    error: dict[str, Any] = {
        "code": code,
        "message": message,
        "errors": [{"message": message, "domain": domain, "reason": reason or default_reason}],
        "status": status,
    }
    if details:
        error["details"] = details
    return Response(code, {"error": error}, headers)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(slots=True)
class _Project:
    project_id: str
    number: str
    state: str
    compute_enabled: bool
    labels: dict[str, str]
    # (collection, scope key, name) -> resource JSON; scope key is global, regions/x or zones/y
    resources: dict[tuple[str, str, str], dict[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Cursor:
    """Where a page token continues: the same list, with the same filter, from ``offset``."""

    path: str
    filter: str
    offset: int


@dataclass(frozen=True, slots=True)
class _Token:
    scopes: frozenset[str]
    expires: float


class GcpSimulator(SimulatorServer):
    """Compute Engine (five list calls), ``projects:search`` and an OAuth2 token endpoint.

    Seed with ``add_project``/``add_address``/``add_instance``/``add_forwarding_rule`` (or
    ``seed()`` from a YAML-shaped mapping). ``page_size`` caps every page below what the client
    asks for, as the real API may, so paging is exercised with few resources.
    """

    def __init__(
        self,
        *,
        page_size: int = MAX_RESULTS,
        tls: bool = False,
        latency: float = 0.0,
        client_email: str = "syncd-collector@syncd-sim.iam.gserviceaccount.com",
    ) -> None:
        super().__init__(tls=tls, latency=latency)
        self.page_size = self._initial_page_size = page_size
        self.client_email = client_email
        self.private_key_id = secrets.token_hex(20)
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self._projects: dict[str, _Project] = {}
        self._tokens: dict[str, _Token] = {}
        self._cursors: dict[str, _Cursor] = {}
        self._ids = itertools.count(4_000_000_000_000_000_000)
        self._regions: set[str] = set(_DEFAULT_REGIONS)
        self._zones: set[str] = set(_DEFAULT_ZONES)

    def reset(self) -> None:
        """Forget projects, tokens, page tokens, faults and the request log; keep the key."""
        with self._lock:
            self.page_size = self._initial_page_size
            self._projects.clear()
            self._tokens.clear()
            self._cursors.clear()
            self._regions = set(_DEFAULT_REGIONS)
            self._zones = set(_DEFAULT_ZONES)
        self.clear_faults()
        self.clear_requests()

    # --- credentials ----------------------------------------------------------------------

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def write_service_account(self, path: Path, *, trusted: bool = True) -> Path:
        """Write a service-account JSON key whose ``token_uri`` is this simulator.

        ``trusted=False`` writes a key with the same email and key id but a private key the
        simulator does not know, so everything it signs is refused.
        """
        key = (
            self._key if trusted else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        info = {
            "type": "service_account",
            "project_id": "syncd-sim",
            "private_key_id": self.private_key_id,
            "private_key": pem,
            "client_email": self.client_email,
            "client_id": "100000000000000000001",
            "auth_uri": "https://accounts.google.com/o/oauth2/auth",
            "token_uri": self.token_uri,
            "universe_domain": "googleapis.com",
        }
        path.write_text(json.dumps(info, indent=2))
        path.chmod(0o600)
        return path

    def issue_token(
        self, scopes: Iterable[str] = (_AUTH + "cloud-platform",), *, lifetime: float = 3599
    ) -> str:
        """An access token, as ``POST /token`` would issue it (for tests over plain HTTP)."""
        token = "ya29.sim-" + secrets.token_urlsafe(32)
        with self._lock:
            self._tokens[token] = _Token(frozenset(scopes), time.time() + lifetime)
        return token

    def revoke_tokens(self) -> None:
        with self._lock:
            self._tokens.clear()

    @staticmethod
    def fault(
        status: int,
        *,
        path: str | None = None,
        times: int = 1,
        reason: str | None = None,
        delay: float = 0.0,
    ) -> Fault:
        """A fault answering in Google's error shape (``fault(429, path="/projects/p1/")``)."""
        response = google_error(status, f"injected HTTP {status}", reason=reason)
        return Fault(
            status=status,
            body=response.raw,
            headers={"Content-Type": "application/json"},
            path=path,
            times=times,
            delay=delay,
            method="GET",
        )

    # --- seeding --------------------------------------------------------------------------

    def add_project(
        self,
        project_id: str,
        *,
        state: str = "ACTIVE",
        compute_enabled: bool = True,
        labels: Mapping[str, str] | None = None,
    ) -> None:
        if state not in _PROJECT_STATES:
            raise ValueError(f"project state must be one of {sorted(_PROJECT_STATES)}")
        with self._lock:
            number = str(100_000_000_000 + len(self._projects) + 1)
            self._projects[project_id] = _Project(
                project_id, number, state, compute_enabled, dict(labels or {})
            )

    def remove_project(self, project_id: str) -> None:
        with self._lock:
            del self._projects[project_id]

    def set_compute_enabled(self, project_id: str, *, enabled: bool) -> None:
        with self._lock:
            self._projects[project_id].compute_enabled = enabled

    def add_address(
        self,
        project: str,
        region: str | None,
        name: str,
        address: str,
        *,
        address_type: str = "EXTERNAL",
        ip_version: str | None = None,
        status: str = "IN_USE",
        labels: Mapping[str, str] | None = None,
        prefix_length: int | None = None,
        users: Iterable[str] = (),
    ) -> None:
        """A reserved address; ``region=None`` makes it global (anycast)."""
        version = ip_version or ("IPV6" if ":" in address else "IPV4")
        body: dict[str, Any] = {
            "kind": "compute#address",
            "name": name,
            "address": address,
            "addressType": address_type,
            "ipVersion": version,
            "status": status,
            "labels": dict(labels or {}),
            "users": list(users),
        }
        if address_type == "EXTERNAL":
            body["networkTier"] = "PREMIUM"
        else:
            body["purpose"] = "GCE_ENDPOINT"
        if version == "IPV6":
            body["prefixLength"] = prefix_length or 96
            body["ipv6EndpointType"] = "VM"
        self._put(project, "addresses", _regional(region), name, body)

    def add_instance(
        self,
        project: str,
        zone: str,
        name: str,
        *,
        nat_ips: Iterable[str] = (),
        ipv6: Iterable[tuple[str, int]] = (),
        labels: Mapping[str, str] | None = None,
        status: str = "RUNNING",
    ) -> None:
        """A VM; NIC ``i`` carries ``nat_ips[i]`` and ``ipv6[i]`` (address, prefix length)."""
        v4, v6 = list(nat_ips), list(ipv6)
        nics = [
            _nic(i, v4[i] if i < len(v4) else None, v6[i] if i < len(v6) else None)
            for i in range(max(len(v4), len(v6), 1))
        ]
        body = {
            "kind": "compute#instance",
            "name": name,
            "status": status,
            "machineType": f"{COMPUTE}/projects/{project}/zones/{zone}/machineTypes/e2-small",
            "labels": dict(labels or {}),
            "networkInterfaces": nics,
        }
        self._put(project, "instances", f"zones/{zone}", name, body)

    def add_forwarding_rule(
        self,
        project: str,
        region: str | None,
        name: str,
        ip: str,
        *,
        scheme: str = "EXTERNAL",
        labels: Mapping[str, str] | None = None,
        ip_version: str | None = None,
    ) -> None:
        """A forwarding rule; ``region=None`` makes it global (anycast)."""
        body = {
            "kind": "compute#forwardingRule",
            "name": name,
            "IPAddress": ip,
            "IPProtocol": "TCP",
            "portRange": "443-443",
            "loadBalancingScheme": scheme,
            "ipVersion": ip_version or ("IPV6" if ":" in ip else "IPV4"),
            "labels": dict(labels or {}),
        }
        if scheme.startswith("EXTERNAL"):
            body["networkTier"] = "PREMIUM"
        self._put(project, "forwardingRules", _regional(region), name, body)

    def remove_address(self, project: str, region: str | None, name: str) -> None:
        self._drop(project, "addresses", _regional(region), name)

    def remove_instance(self, project: str, zone: str, name: str) -> None:
        self._drop(project, "instances", f"zones/{zone}", name)

    def remove_forwarding_rule(self, project: str, region: str | None, name: str) -> None:
        self._drop(project, "forwardingRules", _regional(region), name)

    def seed(self, data: Mapping[str, Any]) -> None:
        """Seed from a YAML-shaped mapping: ``{projects: [{id, state?, compute_enabled?,
        addresses: [{region?, name, address, ...}], instances: [{zone, name, ...}],
        forwarding_rules: [{region?, name, ip, ...}]}]}``."""
        for p in data.get("projects", []):
            pid = p["id"]
            self.add_project(
                pid,
                state=p.get("state", "ACTIVE"),
                compute_enabled=p.get("compute_enabled", True),
                labels=p.get("labels"),
            )
            for entry in p.get("addresses", []):
                a = dict(entry)
                self.add_address(pid, a.pop("region", None), a.pop("name"), a.pop("address"), **a)
            for entry in p.get("instances", []):
                vm = dict(entry)
                ipv6 = [(str(v[0]), int(v[1])) for v in vm.pop("ipv6", [])]
                self.add_instance(pid, vm.pop("zone"), vm.pop("name"), ipv6=ipv6, **vm)
            for entry in p.get("forwarding_rules", []):
                fr = dict(entry)
                region = fr.pop("region", None)
                self.add_forwarding_rule(pid, region, fr.pop("name"), fr.pop("ip"), **fr)

    def _put(
        self, project: str, collection: str, scope: str, name: str, body: dict[str, Any]
    ) -> None:
        with self._lock:
            p = self._projects[project]
            self._remember_scope(scope)
            base = f"{COMPUTE}/projects/{project}/{scope}"
            body = {"id": str(next(self._ids)), "creationTimestamp": _RFC3339, **body}
            body["selfLink"] = f"{base}/{collection}/{name}"
            if scope.startswith("regions/"):
                body["region"] = base
            elif scope.startswith("zones/"):
                body["zone"] = base
            p.resources[(collection, scope, name)] = body

    def _drop(self, project: str, collection: str, scope: str, name: str) -> None:
        with self._lock:
            del self._projects[project].resources[(collection, scope, name)]

    def _remember_scope(self, scope: str) -> None:
        kind, _, where = scope.partition("/")
        if kind == "regions":
            self._regions.add(where)
        elif kind == "zones":
            self._zones.add(where)

    # --- routing --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if request.path == "/token":
            if request.method != "POST":
                return Response(405, {"error": "invalid_request"})
            return self._token(request)
        if request.method != "GET":
            return google_error(404, f"The requested URL {request.path} was not found.")
        if request.path == "/v3/projects:search":
            return self._authorize(request, PROJECTS_SCOPES) or self._search(request)
        match = _COMPUTE_PATH.fullmatch(request.path)
        if match is None or match.group(2, 3) == ("global", "instances"):
            return google_error(404, f"The requested URL {request.path} was not found.")
        project, where, collection = match.groups()
        return self._authorize(request, COMPUTE_SCOPES) or self._compute_list(
            request, project, collection, aggregated=where == "aggregated"
        )

    # --- auth -----------------------------------------------------------------------------

    def _authorize(self, request: Request, needed: frozenset[str]) -> Response | None:
        """None if the bearer token may call this API; else Google's 401/403 answer."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return _unauthenticated(
                "required",
                "Request is missing required authentication credential. Expected OAuth 2 "
                "access token, login cookie or other valid authentication credential.",
            )
        scopes = self._token_scopes(token.strip())
        if scopes is None:
            return _unauthenticated(
                "authError",
                "Request had invalid authentication credentials. Expected OAuth 2 access "
                "token, login cookie or other valid authentication credential.",
            )
        if not scopes & needed:
            return google_error(
                403,
                "Request had insufficient authentication scopes.",
                reason="insufficientPermissions",
                details=[_error_info("ACCESS_TOKEN_SCOPE_INSUFFICIENT", "googleapis.com")],
            )
        return None

    def _token_scopes(self, token: str) -> frozenset[str] | None:
        """Scopes of an issued access token, or of a self-signed JWT from our key (AIP-4111)."""
        with self._lock:
            issued = self._tokens.get(token)
        if issued is not None:
            return issued.scopes if issued.expires > time.time() else None
        claims = self._verified_claims(token)
        if claims is None or _lifetime_problem(claims) or claims.get("sub") != self.client_email:
            return None
        if isinstance(claims.get("scope"), str):
            return frozenset(claims["scope"].split())
        return _AUDIENCES.get(str(claims.get("aud")))

    def _verified_claims(self, jwt: str) -> dict[str, Any] | None:
        """The claims of an RS256 JWT signed by the simulator's service-account key, else None."""
        try:
            head_b64, body_b64, sig_b64 = jwt.split(".")
            header = json.loads(_unb64url(head_b64))
            claims = json.loads(_unb64url(body_b64))
            self._key.public_key().verify(
                _unb64url(sig_b64),
                f"{head_b64}.{body_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, binascii.Error, InvalidSignature):
            return None
        if not isinstance(header, dict) or not isinstance(claims, dict):
            return None
        if header.get("alg") != "RS256" or header.get("kid") != self.private_key_id:
            return None
        return claims if claims.get("iss") == self.client_email else None

    def _token(self, request: Request) -> Response:
        """``POST /token``: the OAuth2 JWT-bearer grant a service account uses (RFC 7523)."""
        form = parse_qs(request.body.decode(errors="replace"), keep_blank_values=True)
        grant = (form.get("grant_type") or [""])[0]
        if grant != _JWT_BEARER:
            return _oauth_error("unsupported_grant_type", f"Invalid grant_type: {grant}")
        claims = self._verified_claims((form.get("assertion") or [""])[0])
        if claims is None:
            return _oauth_error("invalid_grant", "Invalid JWT Signature.")
        if claims.get("aud") not in {*_TOKEN_AUDIENCES, self.token_uri}:
            return _oauth_error("invalid_grant", "Invalid JWT: Failed audience check.")
        problem = _lifetime_problem(claims)
        if problem:
            return _oauth_error("invalid_grant", problem)
        scopes = str(claims.get("scope") or "").split()
        if not scopes:
            return _oauth_error(
                "invalid_scope", "Invalid OAuth scope or ID token audience provided."
            )
        token = self.issue_token(scopes, lifetime=TOKEN_LIFETIME)
        return Response(
            200, {"access_token": token, "expires_in": TOKEN_LIFETIME - 1, "token_type": "Bearer"}
        )

    # --- compute --------------------------------------------------------------------------

    def _compute_list(
        self, request: Request, project_id: str, collection: str, *, aggregated: bool
    ) -> Response:
        problem = _unknown_param(request, _LIST_PARAMS) or self._project_problem(project_id)
        if problem:
            return problem
        size = _page_size(request, "maxResults", MAX_RESULTS)
        if isinstance(size, Response):
            return size
        text = request.param("filter") or ""
        keep = _parse_filter(text)
        if keep is None:
            return google_error(
                400, f"Invalid value for field 'filter': '{text}'. Invalid list filter expression."
            )
        mask = _field_mask(request, collection, aggregated=aggregated)
        if isinstance(mask, Response):
            return mask
        offset = self._cursor(request, text)
        if isinstance(offset, Response):
            return offset
        with self._lock:
            rows = [
                (scope, json.loads(json.dumps(body)))
                for (kind, scope, name), body in sorted(
                    self._projects[project_id].resources.items()
                )
                if kind == collection and (aggregated or scope == "global") and keep(body)
            ]
        page = rows[offset : offset + min(size, self.page_size)]
        more = offset + len(page) < len(rows)
        where = "aggregated" if aggregated else "global"
        body: dict[str, Any] = {
            "id": f"projects/{project_id}/{where}/{collection}",
            "selfLink": f"{COMPUTE}/projects/{project_id}/{where}/{collection}",
        }
        if aggregated:
            body["kind"] = _KINDS[collection][0]
            body["items"] = self._scoped_items(collection, page)
        else:
            body["kind"] = _KINDS[collection][1]
            if page:
                body["items"] = [item for _, item in page]
        if more:
            body["nextPageToken"] = self._new_cursor(request.path, text, offset + len(page))
        return Response(200, body if mask is None else _masked(body, mask))

    def _scoped_items(
        self, collection: str, page: list[tuple[str, dict[str, Any]]]
    ) -> dict[str, Any]:
        """Every scope of the aggregated list; empty ones carry Google's NO_RESULTS_ON_PAGE."""
        prefix = _KINDS[collection][2]
        with self._lock:
            names = self._regions if prefix == "regions" else self._zones
            keys = [f"{prefix}/{n}" for n in sorted(names)]
        if prefix == "regions":
            keys.insert(0, "global")
        items: dict[str, Any] = {}
        for key in keys:
            found = [body for scope, body in page if scope == key]
            items[key] = {collection: found} if found else {"warning": _no_results(key)}
        return items

    def _project_problem(self, project_id: str) -> Response | None:
        with self._lock:
            project = self._projects.get(project_id)
        if project is None or project.state != "ACTIVE":
            return google_error(404, f"The resource 'projects/{project_id}' was not found")
        if not project.compute_enabled:
            return _compute_disabled(project)
        return None

    # --- paging ---------------------------------------------------------------------------

    def _new_cursor(self, path: str, text: str, offset: int) -> str:
        token = secrets.token_urlsafe(24)
        with self._lock:
            self._cursors[token] = _Cursor(path, text, offset)
        return token

    def _cursor(self, request: Request, text: str) -> int | Response:
        """The offset a ``pageToken`` continues from; 400 if it belongs to another listing."""
        token = request.param("pageToken")
        if not token:
            return 0
        with self._lock:
            cursor = self._cursors.get(token)
        if cursor is None or cursor.path != request.path or cursor.filter != text:
            return google_error(
                400, f"Invalid value for field 'pageToken': '{token}'. Invalid page token."
            )
        return cursor.offset

    # --- resource manager -----------------------------------------------------------------

    def _search(self, request: Request) -> Response:
        """``GET /v3/projects:search``: projects matching ``query`` (``state:ACTIVE``), paged."""
        problem = _unknown_param(request, _SEARCH_PARAMS)
        if problem:
            return problem
        size = _page_size(request, "pageSize", None)
        query = request.param("query") or ""
        terms = _parse_query(query)
        if isinstance(size, Response) or terms is None:
            return _invalid_argument()
        offset = self._cursor(request, query)
        if isinstance(offset, Response):
            return _invalid_argument()
        as_int = "enum-encoding=int" in (request.param("$alt") or "")
        with self._lock:
            matching = [
                _project_json(p, enum_as_int=as_int)
                for _, p in sorted(self._projects.items())
                if all(str(_project_json(p)[f]).lower() == v for f, v in terms)
            ]
        page = matching[offset : offset + min(size or self.page_size, self.page_size)]
        body: dict[str, Any] = {"projects": page} if page else {}
        if offset + len(page) < len(matching):
            body["nextPageToken"] = self._new_cursor(request.path, query, offset + len(page))
        return Response(200, body)


_RFC3339 = "2025-01-15T09:30:00.000-08:00"


def _regional(region: str | None) -> str:
    return "global" if region is None else f"regions/{region}"


def _nic(index: int, nat_ip: str | None, ipv6: tuple[str, int] | None) -> dict[str, Any]:
    nic: dict[str, Any] = {
        "kind": "compute#networkInterface",
        "name": f"nic{index}",
        "networkIP": f"10.128.{index}.{2 + index}",
        "stackType": "IPV4_IPV6" if ipv6 else "IPV4_ONLY",
    }
    if nat_ip is not None:
        nic["accessConfigs"] = [
            {
                "kind": "compute#accessConfig",
                "type": "ONE_TO_ONE_NAT",
                "name": "External NAT",
                "natIP": nat_ip,
                "networkTier": "PREMIUM",
            }
        ]
    if ipv6 is not None:
        nic["ipv6AccessConfigs"] = [
            {
                "kind": "compute#accessConfig",
                "type": "DIRECT_IPV6",
                "name": "external-ipv6",
                "externalIpv6": ipv6[0],
                "externalIpv6PrefixLength": ipv6[1],
                "networkTier": "PREMIUM",
            }
        ]
    return nic


def _project_json(p: _Project, *, enum_as_int: bool = False) -> dict[str, Any]:
    return {
        "name": f"projects/{p.number}",
        "parent": "organizations/123456789012",
        "projectId": p.project_id,
        "state": _PROJECT_STATES[p.state] if enum_as_int else p.state,
        "displayName": p.project_id,
        "createTime": "2025-01-15T17:30:00.000Z",
        "updateTime": "2025-01-15T17:30:00.000Z",
        "etag": f'W/"{p.number}"',
        "labels": dict(p.labels),
    }


def _no_results(scope: str) -> dict[str, Any]:
    return {
        "code": "NO_RESULTS_ON_PAGE",
        "message": f"There are no results for scope '{scope}' on this page.",
        "data": [{"key": "scope", "value": scope}],
    }


def _error_info(reason: str, domain: str, **metadata: str) -> dict[str, Any]:
    return {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": reason,
        "domain": domain,
        "metadata": metadata,
    }


def _compute_disabled(project: _Project) -> Response:
    message = (
        f"Compute Engine API has not been used in project {project.number} before or it is "
        "disabled. Enable it by visiting https://console.developers.google.com/apis/api/"
        f"compute.googleapis.com/overview?project={project.number} then retry."
    )
    return google_error(
        403,
        message,
        reason="accessNotConfigured",
        domain="usageLimits",
        details=[
            _error_info(
                "SERVICE_DISABLED",
                "googleapis.com",
                service="compute.googleapis.com",
                consumer=f"projects/{project.number}",
            )
        ],
    )


def _unauthenticated(reason: str, message: str) -> Response:
    return google_error(
        401,
        message,
        reason=reason,
        headers={"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
    )


def _invalid_argument() -> Response:
    body = {
        "code": 400,
        "message": "Request contains an invalid argument.",
        "status": "INVALID_ARGUMENT",
    }
    return Response(400, {"error": body})


def _oauth_error(error: str, description: str) -> Response:
    return Response(400, {"error": error, "error_description": description})


def _lifetime_problem(claims: Mapping[str, Any]) -> str:
    """Google's check on ``iat``/``exp``: short-lived (an hour at most) and current."""
    iat, exp, now = claims.get("iat"), claims.get("exp"), time.time()
    if not isinstance(iat, int | float) or not isinstance(exp, int | float):
        return "Invalid JWT: iat and exp are required."
    if exp - iat > TOKEN_LIFETIME or iat > now + _CLOCK_SKEW or exp <= now:
        return (
            "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable "
            "timeframe. Check your iat and exp values in the JWT claim."
        )
    return ""


def _unknown_param(request: Request, known: frozenset[str]) -> Response | None:
    unknown = sorted(set(request.query) - known)
    if not unknown:
        return None
    name = unknown[0]
    return google_error(
        400,
        f'Invalid JSON payload received. Unknown name "{name}": Cannot bind query parameter. '
        f"Field '{name}' could not be found in request message.",
    )


def _page_size(request: Request, name: str, limit: int | None) -> int | Response:
    """The requested page size (0 when absent); 400 if it is not a number or over ``limit``."""
    text = request.param(name)
    if text is None:
        return 0 if limit is None else limit
    if not re.fullmatch(r"\d+", text):
        return google_error(400, f"Invalid value for field '{name}': '{text}'. Must be a number.")
    value = int(text)
    if limit is not None and value > limit:
        return google_error(
            400,
            f"Invalid value for field '{name}': '{text}'. Must be less than or equal to {limit}",
        )
    return value or (0 if limit is None else limit)


def _parse_filter(text: str) -> Callable[[Mapping[str, Any]], bool] | None:
    """``field = "value"`` or ``field != "value"``, or parenthesized ones joined by ``OR`` (or
    by ``AND``, or by nothing, which is AND), as Compute documents; None if malformed. Mixing
    ``OR`` with ``AND`` is not supported here (Compute's precedence for it is not documented)."""
    if not text.strip():
        return lambda _body: True
    match = _FILTER.fullmatch(text)
    if match is not None:
        return _comparison(*match.groups())
    text = text.strip()
    if not (text.startswith("(") and text.endswith(")")):
        return None
    terms = _FILTER_TERMS.split(text[1:-1])
    joins = {join.strip() or "AND" for join in terms[1::2]}
    parts = [_FILTER.fullmatch(part) for part in terms[::2]]
    if len(joins) != 1 or not all(part is not None for part in parts):
        return None
    tests = [_comparison(*part.groups()) for part in parts if part is not None]
    if joins == {"OR"}:
        return lambda body: any(test(body) for test in tests)
    return lambda body: all(test(body) for test in tests)


def _comparison(name: str, op: str, value: str) -> Callable[[Mapping[str, Any]], bool]:
    if op == "=":
        return lambda body: str(body.get(name, "")) == value
    return lambda body: str(body.get(name, "")) != value


def _parse_query(query: str) -> list[tuple[str, str]] | None:
    """``state:ACTIVE id:p1`` as ``[(json field, lower-case value)]``; None if malformed."""
    terms: list[tuple[str, str]] = []
    for term in query.split():
        key, sep, value = term.partition(":")
        fieldname = _QUERY_FIELDS.get(key.lower())
        if not sep or fieldname is None or not value:
            return None
        terms.append((fieldname, value.lower()))
    return terms


# --- field masks (partial responses) ----------------------------------------------------------
#
# Google's partial-response syntax: comma-separated paths, ``/`` between a field and its
# sub-field, ``(a,b)`` for several sub-fields, ``*`` for every field or map entry. Paths descend
# through arrays. What is not selected is left out, ``nextPageToken`` included: a client that
# does not ask for it sees one page. A name the resource does not have is a 400, as at Google.

# A schema maps each JSON field to its own schema, or to None for a value with no sub-fields.
# ``{"*": schema}`` is a map with free keys (labels, an aggregated list's scopes). It holds the
# fields this simulator serves, which are the fields syncd reads and their neighbours.
_Schema = dict[str, Any]
_MAP = "*"
_FREE_MAP: _Schema = {_MAP: None}
_ACCESS_CONFIG: _Schema = dict.fromkeys(
    ["kind", "type", "name", "natIP", "externalIpv6", "externalIpv6PrefixLength", "networkTier"]
)
_RESOURCES: dict[str, _Schema] = {
    "addresses": {
        **dict.fromkeys(["kind", "id", "name", "address", "addressType", "ipVersion", "status"]),
        **dict.fromkeys(["region", "selfLink", "users", "networkTier", "purpose"]),
        **dict.fromkeys(["prefixLength", "ipv6EndpointType"]),
        "labels": _FREE_MAP,
    },
    "instances": {
        **dict.fromkeys(["kind", "id", "name", "status", "zone", "machineType", "selfLink"]),
        "labels": _FREE_MAP,
        "networkInterfaces": {
            **dict.fromkeys(["kind", "name", "networkIP", "stackType"]),
            "accessConfigs": _ACCESS_CONFIG,
            "ipv6AccessConfigs": _ACCESS_CONFIG,
        },
    },
    "forwardingRules": {
        **dict.fromkeys(["kind", "id", "name", "IPAddress", "IPProtocol", "portRange"]),
        **dict.fromkeys(["loadBalancingScheme", "ipVersion", "networkTier", "region"]),
        "selfLink": None,
        "labels": _FREE_MAP,
    },
}
_WARNING: _Schema = {"code": None, "message": None, "data": {"key": None, "value": None}}
_ENVELOPE: _Schema = dict.fromkeys(["kind", "id", "selfLink", "nextPageToken", "unreachables"])
_MASK_NAME = re.compile(r"\*|[A-Za-z_][A-Za-z0-9_]*")


def _list_schema(collection: str, *, aggregated: bool) -> _Schema:
    resource = _RESOURCES[collection]
    if aggregated:
        scoped = {collection: resource, "warning": _WARNING}
        return {**_ENVELOPE, "warning": _WARNING, "items": {_MAP: scoped}}
    return {**_ENVELOPE, "warning": _WARNING, "items": resource}


def _field_mask(
    request: Request, collection: str, *, aggregated: bool
) -> _Schema | Response | None:
    """The response's field mask as a tree (None: no mask, every field); 400 if it is malformed
    or names a field the list does not have. ``fields`` and ``X-Goog-FieldMask`` are one system
    parameter, sent as a query parameter or as a header."""
    text = request.param("fields") or request.headers.get("x-goog-fieldmask")
    if text is None or text.strip() in ("", "*"):
        return None
    tree = _parse_mask(text)
    if tree is None:
        return _invalid_fields(f"Invalid field selection {text}")
    unknown = _unknown_field(tree, _list_schema(collection, aggregated=aggregated))
    if unknown is not None:
        return _invalid_fields(f"Invalid field selection {unknown}")
    return tree


def _parse_mask(text: str) -> _Schema | None:
    """``a/b(c,d),e`` as ``{"a": {"b": {"c": None, "d": None}}, "e": None}``; None if malformed."""
    tree, rest = _parse_selections(text)
    return tree if rest == "" else None


def _parse_selections(text: str) -> tuple[_Schema | None, str | None]:
    """Selections up to an unmatched ``)`` or the end: (tree, what follows), or (None, None)."""
    tree: _Schema = {}
    while True:
        path: list[str] = []
        while True:
            match = _MASK_NAME.match(text)
            if match is None:
                return None, None
            path.append(match.group())
            text = text[match.end() :]
            if not text.startswith("/"):
                break
            text = text[1:]
        sub: _Schema | None = None
        if text.startswith("("):
            sub, rest = _parse_selections(text[1:])
            if sub is None or rest is None or not rest.startswith(")"):
                return None, None
            text = rest[1:]
        _merge(tree, path, sub)
        if not text.startswith(","):
            return tree, text
        text = text[1:]


def _merge(tree: _Schema, path: list[str], sub: _Schema | None) -> None:
    """Add one selection; a field selected whole stays whole."""
    head, *tail = path
    if head in tree and tree[head] is None:
        return
    if not tail and sub is None:
        tree[head] = None
        return
    child = tree.setdefault(head, {})
    if tail:
        _merge(child, tail, sub)
    elif sub is not None:
        for name, value in sub.items():
            _merge(child, [name], value)


def _unknown_field(tree: _Schema, schema: _Schema | None, where: str = "") -> str | None:
    """The first selected path the schema does not have, or None."""
    for name, sub in tree.items():
        path = f"{where}/{name}" if where else name
        if schema is None:
            return path  # a sub-field of a value that has none
        if _MAP in schema:  # a map: any key
            known = schema[_MAP]
        elif name == _MAP:  # every field of an object: nothing to check by name
            continue
        elif name in schema:
            known = schema[name]
        else:
            return path
        if sub is not None:
            found = _unknown_field(sub, known, path)
            if found is not None:
                return found
    return None


def _masked(value: Any, tree: _Schema) -> Any:
    """``value`` with only what ``tree`` selects; objects left empty by the mask are dropped."""
    if isinstance(value, list):
        return [_masked(item, tree) for item in value]
    if not isinstance(value, dict):
        return value
    kept: dict[str, Any] = {}
    for name, item in value.items():
        if name not in tree and _MAP not in tree:
            continue
        sub = tree[name] if name in tree else tree[_MAP]
        if sub is None:
            kept[name] = item
            continue
        masked = _masked(item, sub)
        if masked not in ({}, []):
            kept[name] = masked
    return kept


def _invalid_fields(message: str) -> Response:
    return google_error(400, message, reason="invalidParameter")
