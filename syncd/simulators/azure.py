"""A strict simulator of the Azure Resource Manager reads the Azure collector makes, plus Entra ID.

It serves the subscriptions list and the public IP address and prefix lists (``api-version``
required, absolute ``nextLink`` paging with ``$skiptoken``, bearer token required, ARM's error
JSON) and a minimal Entra ID tenant for the client-credentials flow, so azure-identity's real
``ClientSecretCredential`` works against it. HTTPS only: azure-core refuses bearer tokens over
plain HTTP. It imports nothing from syncd but ``simulators.base`` and never reaches the network.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote

from syncd.simulators.base import Fault, Request, Response, SimulatorServer

DEFAULT_TENANT = "8d2c3f4e-5a6b-4c7d-8e9f-0a1b2c3d4e5f"
DEFAULT_CLIENT_ID = "5e9b1d2c-0a3f-4c1e-9f3b-6d7a8b9c0d1e"
DEFAULT_CLIENT_SECRET = "sim-client-secret-4b1d"  # a fixed test key, not a real credential
ARM_SCOPE = "https://management.azure.com/.default"
# The resource URIs Entra ID knows Azure Resource Manager by (public cloud).
_ARM_RESOURCES = frozenset({"https://management.azure.com", "https://management.core.windows.net"})

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_API_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(-preview)?")
_OPENID = re.compile(r"/(?P<tenant>[^/]+)/v2\.0/\.well-known/openid-configuration")
_TOKEN = re.compile(r"/(?P<tenant>[^/]+)/oauth2/v2\.0/token")
# ARM paths are case-insensitive.
_SUBSCRIPTIONS = re.compile(r"/subscriptions/?", re.I)
_NETWORK_LIST = re.compile(
    r"/subscriptions/(?P<sub>[^/]+)/providers/Microsoft\.Network/"
    r"(?P<kind>publicIPAddresses|publicIPPrefixes)/?",
    re.I,
)
_KINDS = {"publicipaddresses": "publicIPAddresses", "publicipprefixes": "publicIPPrefixes"}


@dataclass(slots=True)
class _Subscription:
    id: str
    display_name: str
    state: str
    readable: bool
    resources: dict[str, dict[str, dict[str, Any]]] = field(
        default_factory=lambda: {"publicIPAddresses": {}, "publicIPPrefixes": {}}
    )


def arm_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An ARM error answer: ``{"error": {"code": ..., "message": ...}}``."""
    return Response(status, {"error": {"code": code, "message": message}}, headers)


def _aad_error(status: int, error: str, code: int, description: str) -> Response:
    """An Entra ID (AAD) token endpoint error, as the v2.0 endpoint shapes it."""
    body = {
        "error": error,
        "error_description": f"AADSTS{code}: {description}",
        "error_codes": [code],
        "timestamp": time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime()),
        "trace_id": str(uuid.uuid4()),
        "correlation_id": str(uuid.uuid4()),
    }
    return Response(status, body)


class AzureSimulator(SimulatorServer):
    """ARM + Entra ID on ``https://127.0.0.1:PORT``; trust ``ca_file`` (e.g. REQUESTS_CA_BUNDLE).

    Seed it with ``add_subscription``, ``add_public_ip`` and ``add_prefix``; aim
    azure-identity at it with ``authority=sim.url`` and the mgmt clients with ``base_url=sim.url``.
    """

    def __init__(
        self,
        *,
        tenant_id: str = DEFAULT_TENANT,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        page_size: int = 100,
        token_lifetime: int = 3599,
        latency: float = 0.0,
    ) -> None:
        super().__init__(tls=True, latency=latency)
        self.tenant_id = tenant_id
        self.client_id = client_id
        self._client_secret = client_secret
        self.page_size = page_size
        self.token_lifetime = token_lifetime
        self._state = threading.RLock()
        self._subscriptions: dict[str, _Subscription] = {}
        self._tokens: dict[str, float] = {}  # access token -> expiry (monotonic)

    # --- seeding and control ------------------------------------------------------------------

    def add_subscription(
        self,
        subscription_id: str,
        *,
        state: str = "Enabled",
        readable: bool = True,
        display_name: str | None = None,
    ) -> None:
        """Add (or replace the state of) a subscription; ``readable=False`` answers 403."""
        if not _GUID.fullmatch(subscription_id):
            raise ValueError(f"subscription ids are GUIDs: {subscription_id!r}")
        with self._state:
            existing = self._subscriptions.get(subscription_id.lower())
            sub = _Subscription(
                id=subscription_id.lower(),
                display_name=display_name or f"sub-{subscription_id[:8]}",
                state=state,
                readable=readable,
            )
            if existing is not None:
                sub.resources = existing.resources
            self._subscriptions[sub.id] = sub

    def add_public_ip(
        self,
        subscription_id: str,
        name: str,
        *,
        location: str = "eastus",
        ip: str | None = None,
        version: str | None = None,
        resource_group: str = "rg",
        tags: dict[str, str] | None = None,
        allocation_method: str | None = None,
        sku_tier: str = "Regional",
        sku_name: str = "Standard",
        prefix_id: str | None = None,
    ) -> str:
        """Add a public IP resource; ``ip=None`` is a Dynamic one with nothing allocated yet."""
        if allocation_method is None:
            allocation_method = "Static" if ip is not None else "Dynamic"
        if version is None:
            version = "IPv6" if ip is not None and ipaddress.ip_address(ip).version == 6 else "IPv4"
        rid = _resource_id(subscription_id, resource_group, "publicIPAddresses", name)
        props: dict[str, Any] = {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "publicIPAddressVersion": version,
            "publicIPAllocationMethod": allocation_method,
            "idleTimeoutInMinutes": 4,
            "ipTags": [],
        }
        if ip is not None:
            props["ipAddress"] = ip
        if prefix_id is not None:
            props["publicIPPrefix"] = {"id": prefix_id}
        resource = _resource(rid, name, "publicIPAddresses", location, tags)
        resource["sku"] = {"name": sku_name, "tier": sku_tier}
        resource["properties"] = props
        self._put(subscription_id, "publicIPAddresses", resource)
        return rid

    def add_prefix(
        self,
        subscription_id: str,
        name: str,
        *,
        prefix: str,
        location: str = "eastus",
        resource_group: str = "rg",
        tags: dict[str, str] | None = None,
        sku_tier: str = "Regional",
    ) -> str:
        """Add a public IP prefix (a CIDR); its member list is the IPs added with its id."""
        network = ipaddress.ip_network(prefix)
        rid = _resource_id(subscription_id, resource_group, "publicIPPrefixes", name)
        resource = _resource(rid, name, "publicIPPrefixes", location, tags)
        resource["sku"] = {"name": "Standard", "tier": sku_tier}
        resource["properties"] = {
            "provisioningState": "Succeeded",
            "resourceGuid": str(uuid.uuid4()),
            "prefixLength": network.prefixlen,
            "publicIPAddressVersion": f"IPv{network.version}",
            "ipPrefix": str(network),
            "ipTags": [],
        }
        self._put(subscription_id, "publicIPPrefixes", resource)
        return rid

    def remove_public_ip(
        self, subscription_id: str, name: str, *, resource_group: str = "rg"
    ) -> None:
        """Delete a public IP resource (KeyError if there is none)."""
        rid = _resource_id(subscription_id, resource_group, "publicIPAddresses", name)
        with self._state:
            del self._subscription(subscription_id).resources["publicIPAddresses"][rid.lower()]

    def reset(self) -> None:
        """Forget every subscription, resource, token, fault and logged request."""
        with self._state:
            self._subscriptions.clear()
            self._tokens.clear()
        self.clear_faults()
        self.clear_requests()

    def issue_token(self) -> str:
        """A valid bearer token, as the token endpoint would issue it (for raw HTTP tests)."""
        token = secrets.token_urlsafe(32)
        with self._state:
            self._tokens[token] = time.monotonic() + self.token_lifetime
        return token

    def expire_tokens(self) -> None:
        """Make every issued token expired (ARM then answers 401 ExpiredAuthenticationToken)."""
        with self._state:
            self._tokens = dict.fromkeys(self._tokens, 0.0)

    def throttle(self, *, times: int = 1, retry_after: int = 1, path: str | None = None) -> None:
        """Answer the next ``times`` matching ARM reads with 429 and ``Retry-After``."""
        body = (
            b'{"error": {"code": "SubscriptionRequestsThrottled", "message": "Number of read '
            b'requests exceeded. Please try again after the Retry-After interval."}}'
        )
        headers = {"Retry-After": str(retry_after), "Content-Type": "application/json"}
        self.inject(
            Fault(status=429, body=body, headers=headers, times=times, method="GET", path=path)
        )

    def _put(self, subscription_id: str, kind: str, resource: dict[str, Any]) -> None:
        with self._state:
            self._subscription(subscription_id).resources[kind][resource["id"].lower()] = resource

    def _subscription(self, subscription_id: str) -> _Subscription:
        sub = self._subscriptions.get(subscription_id.lower())
        if sub is None:
            raise KeyError(f"add_subscription({subscription_id!r}) first")
        return sub

    # --- routing ------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        if m := _OPENID.fullmatch(request.path):
            return self._openid_configuration(request, m["tenant"])
        if m := _TOKEN.fullmatch(request.path):
            return self._token(request, m["tenant"])
        return self._arm(request)

    # --- Entra ID -----------------------------------------------------------------------------

    def _openid_configuration(self, request: Request, tenant: str) -> Response:
        if request.method != "GET":
            return _aad_error(405, "invalid_request", 900561, "The endpoint only accepts GET.")
        if tenant.lower() != self.tenant_id.lower():
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        base = f"{self.url}/{self.tenant_id}"
        return Response(
            200,
            {
                "token_endpoint": f"{base}/oauth2/v2.0/token",
                "token_endpoint_auth_methods_supported": [
                    "client_secret_post",
                    "private_key_jwt",
                    "client_secret_basic",
                ],
                "jwks_uri": f"{self.url}/{self.tenant_id}/discovery/v2.0/keys",
                "response_modes_supported": ["query", "fragment", "form_post"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "response_types_supported": ["code", "id_token", "code id_token", "token id_token"],
                "scopes_supported": ["openid", "profile", "email", "offline_access"],
                "issuer": f"{base}/v2.0",
                "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
                "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
                "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
                "tenant_region_scope": "NA",
                "cloud_instance_name": "microsoftonline.com",
            },
        )

    def _token(self, request: Request, tenant: str) -> Response:
        if request.method != "POST":
            return _aad_error(405, "invalid_request", 900561, "The endpoint only accepts POST.")
        if tenant.lower() != self.tenant_id.lower():
            return _aad_error(400, "invalid_tenant", 90002, f"Tenant '{tenant}' not found.")
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("application/x-www-form-urlencoded"):
            return _aad_error(400, "invalid_request", 900144, "The request body must be a form.")
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        problem = self._check_client_credentials(form)
        if problem is not None:
            return problem
        token = self.issue_token()
        return Response(
            200,
            {
                "token_type": "Bearer",
                "expires_in": self.token_lifetime,
                "ext_expires_in": self.token_lifetime,
                "access_token": token,
            },
        )

    def _check_client_credentials(self, form: dict[str, str]) -> Response | None:
        for name in ("grant_type", "client_id", "scope"):
            if not form.get(name):
                return _aad_error(
                    400,
                    "invalid_request",
                    900144,
                    f"The request body must contain the following parameter: '{name}'.",
                )
        if form["grant_type"] != "client_credentials":
            return _aad_error(
                400,
                "unsupported_grant_type",
                70003,
                "The app requested an unsupported grant type (the simulator has "
                "client_credentials only).",
            )
        if form["client_id"] != self.client_id:
            return _aad_error(
                400,
                "unauthorized_client",
                700016,
                f"Application with identifier '{form['client_id']}' was not found in the "
                f"directory '{self.tenant_id}'.",
            )
        # Client assertions (certificates) are not simulated: a secret is the only proof.
        if not secrets.compare_digest(
            form.get("client_secret", "").encode(), self._client_secret.encode()
        ):
            return _aad_error(
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided. Ensure the secret being sent in the request is "
                "the client secret value, not the client secret ID.",
            )
        return self._check_scope(form["scope"])

    def _check_scope(self, scope: str) -> Response | None:
        if not scope.endswith("/.default"):
            return _aad_error(
                400,
                "invalid_scope",
                1002012,
                f"The provided value for scope {scope} is not valid. Client credential flows "
                "must have a scope value with /.default suffixed to the resource identifier.",
            )
        # Tokens are issued for ARM only, so a token ARM accepts is one meant for ARM.
        resource = scope.removesuffix("/.default").rstrip("/")
        if resource not in _ARM_RESOURCES:
            return _aad_error(
                400,
                "invalid_resource",
                500011,
                f"The resource principal named {resource} was not found in the tenant named "
                f"{self.tenant_id}.",
            )
        return None

    # --- ARM ----------------------------------------------------------------------------------

    def _arm(self, request: Request) -> Response:
        if request.method != "GET":
            return arm_error(
                405, "MethodNotAllowed", f"The simulator serves only reads, not {request.method}."
            )
        denied = self._authenticate(request)
        if denied is not None:
            return denied
        bad_version = _check_api_version(request.param("api-version"))
        if bad_version is not None:
            return bad_version
        if _SUBSCRIPTIONS.fullmatch(request.path):
            with self._state:
                items = [_subscription_json(s) for s in self._subscriptions.values()]
            return self._page(request, items)
        if m := _NETWORK_LIST.fullmatch(request.path):
            return self._network_list(request, m["sub"], _KINDS[m["kind"].lower()])
        return arm_error(404, "NotFound", f"The simulator has no resource at '{request.path}'.")

    def _authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("authorization")
        if header is None:
            return arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing.",
                {"WWW-Authenticate": _challenge("missing 'Authorization' header")},
            )
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return arm_error(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is provided in an invalid "
                "format.",
                {"WWW-Authenticate": _challenge("invalid format of 'Authorization' header")},
            )
        with self._state:
            expiry = self._tokens.get(token)
        if expiry is None:
            return arm_error(
                401,
                "InvalidAuthenticationToken",
                "The access token is invalid.",
                {"WWW-Authenticate": _challenge("invalid access token")},
            )
        if expiry <= time.monotonic():
            return arm_error(
                401,
                "ExpiredAuthenticationToken",
                "The access token expiry UTC time is earlier than current UTC time.",
                {"WWW-Authenticate": _challenge("expired access token")},
            )
        return None

    def _network_list(self, request: Request, subscription_id: str, kind: str) -> Response:
        if not _GUID.fullmatch(subscription_id):
            return arm_error(
                400,
                "InvalidSubscriptionId",
                f"The provided subscription identifier '{subscription_id}' is malformed or "
                "invalid.",
            )
        with self._state:
            sub = self._subscriptions.get(subscription_id.lower())
            if sub is None:
                return arm_error(
                    404,
                    "SubscriptionNotFound",
                    f"The subscription '{subscription_id}' could not be found.",
                )
            if not sub.readable:
                return arm_error(
                    403,
                    "AuthorizationFailed",
                    f"The client '{self.client_id}' with object id '{self.client_id}' does not "
                    f"have authorization to perform action 'Microsoft.Network/{kind}/read' over "
                    f"scope '/subscriptions/{sub.id}' or the scope is invalid. If access was "
                    "recently granted, please refresh your credentials.",
                )
            items = [dict(r) for r in sub.resources[kind].values()]
            if kind == "publicIPPrefixes":
                members = sub.resources["publicIPAddresses"].values()
                for prefix in items:
                    _link_members(prefix, members)
        return self._page(request, items)

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        raw = request.param("$skiptoken")
        offset = 0
        if raw is not None:
            decoded = _decode_skiptoken(raw)
            if decoded is None or decoded > len(items):
                return arm_error(400, "InvalidSkipToken", f"The skip token '{raw}' is invalid.")
            offset = decoded
        end = offset + max(1, self.page_size)
        body: dict[str, Any] = {"value": items[offset:end]}
        if end < len(items):
            version = quote(request.param("api-version") or "", safe="")
            token = _encode_skiptoken(end)
            body["nextLink"] = f"{self.url}{request.path}?api-version={version}&$skiptoken={token}"
        return Response(200, body)


def _check_api_version(version: str | None) -> Response | None:
    if version is None:
        return arm_error(
            400,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        )
    if not _API_VERSION.fullmatch(version):
        return arm_error(
            400,
            "InvalidApiVersionParameter",
            f"The api-version '{version}' is invalid. The supported versions are dates "
            "such as '2016-06-01'.",
        )
    return None


def _challenge(description: str) -> str:
    return (
        'Bearer authorization_uri="https://login.windows.net/", error="invalid_token", '
        f'error_description="The authentication failed because of {description}."'
    )


def _resource_id(subscription_id: str, resource_group: str, kind: str, name: str) -> str:
    return (
        f"/subscriptions/{subscription_id.lower()}/resourceGroups/{resource_group}"
        f"/providers/Microsoft.Network/{kind}/{name}"
    )


def _resource(
    rid: str, name: str, kind: str, location: str, tags: dict[str, str] | None
) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "name": name,
        "id": rid,
        "etag": f'W/"{uuid.uuid4()}"',
        "location": location,
        "type": f"Microsoft.Network/{kind}",
    }
    if tags:
        resource["tags"] = dict(tags)
    return resource


def _link_members(prefix: dict[str, Any], members: Any) -> None:
    """Fill a prefix's ``publicIPAddresses`` with the IP resources allocated from it."""
    own = prefix["id"].lower()
    linked = [
        {"id": m["id"]}
        for m in members
        if m["properties"].get("publicIPPrefix", {}).get("id", "").lower() == own
    ]
    prefix["properties"] = {**prefix["properties"], "publicIPAddresses": linked}


def _subscription_json(sub: _Subscription) -> dict[str, Any]:
    return {
        "id": f"/subscriptions/{sub.id}",
        "authorizationSource": "RoleBased",
        "subscriptionId": sub.id,
        "displayName": sub.display_name,
        "state": sub.state,
        "subscriptionPolicies": {
            "locationPlacementId": "Public_2014-09-01",
            "quotaId": "PayAsYouGo_2014-09-01",
            "spendingLimit": "Off",
        },
    }


def _encode_skiptoken(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _decode_skiptoken(token: str) -> int | None:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    kind, _, number = text.partition(":")
    return int(number) if kind == "offset" and number.isdigit() else None
