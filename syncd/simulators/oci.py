"""A strict stand-in for the OCI Identity and Core Services calls the OCI collector makes.

One port serves several regions by a path prefix (``/us-ashburn-1/20160918/publicIps``), because
OCI carries the region only in the host name. Every request must carry a valid HTTP signature from
a registered API key; lists are bare JSON arrays paged with ``limit``/``page`` and the
``opc-next-page`` header. It imports nothing from syncd except ``simulators.base``.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import itertools
import json
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from syncd.simulators.base import Fault, Request, Response, SimulatorServer

API = "20160918"
MAX_LIMIT = 1000  # Core and Identity list calls reject a larger limit with 400
DEFAULT_TENANCY = "ocid1.tenancy.oc1..aaaaaaaasimtenancy"
DEFAULT_USER = "ocid1.user.oc1..aaaaaaaasimuser"
SIGNED_HEADERS = ("date", "(request-target)", "host")
_CLOCK_SKEW = 300  # OCI refuses a Date header more than 5 minutes off
_ROUTE = re.compile(r"^/(?P<region>[a-z0-9-]+)/" + API + r"(?P<rest>/.*)$")
_SUBSCRIPTIONS = re.compile(r"^/tenancies/(?P<tenancy>[^/]+)/regionSubscriptions$")
_PARAM = re.compile(r'(\w+)="([^"]*)"')
_LIFETIMES = frozenset({"EPHEMERAL", "RESERVED"})
_SCOPES = frozenset({"REGION", "AVAILABILITY_DOMAIN"})
_COMPARTMENT_STATES = frozenset({"CREATING", "ACTIVE", "INACTIVE", "DELETING", "DELETED"})
_ACCESS_LEVELS = frozenset({"ANY", "ACCESSIBLE"})
_ENTITY_TYPES = frozenset({"PRIVATE_IP", "NAT_GATEWAY"})


class OciError(Exception):
    """Raised inside a handler; becomes the ``{"code", "message"}`` answer OCI gives."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def oci_error(status: int, code: str, message: str) -> Response:
    """The error body every OCI service answers with."""
    return Response(status, {"code": code, "message": message})


def oci_fault(status: int, code: str, *, times: int = 1, path: str | None = None) -> Fault:
    """A ``Fault`` whose body is a proper OCI error, so the SDK reads ``.status``/``.code``."""
    body = json.dumps({"code": code, "message": f"injected {code}"}).encode()
    return Fault(
        status=status,
        body=body,
        headers={"Content-Type": "application/json"},
        times=times,
        path=path,
    )


def fingerprint(public_key: rsa.RSAPublicKey) -> str:
    """OCI's key fingerprint: MD5 of the DER SubjectPublicKeyInfo, colon-separated hex."""
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ":".join(f"{b:02x}" for b in hashlib.md5(der).digest())


@dataclass(slots=True)
class _Compartment:
    ocid: str
    parent: str
    state: str
    name: str


@dataclass(slots=True)
class _PublicIp:
    ocid: str
    region: str
    compartment: str
    ip: str
    lifetime: str
    scope: str
    ad: str | None
    entity_type: str | None
    state: str
    tags: dict[str, str]

    def json(self) -> dict[str, Any]:
        return {
            "id": self.ocid,
            "ipAddress": self.ip,
            "lifetime": self.lifetime,
            "scope": self.scope,
            "availabilityDomain": self.ad,
            "assignedEntityType": self.entity_type,
            "assignedEntityId": None if self.entity_type is None else f"{self.ocid}.entity",
            "privateIpId": f"{self.ocid}.privateip" if self.entity_type == "PRIVATE_IP" else None,
            "lifecycleState": self.state,
            "compartmentId": self.compartment,
            "displayName": self.ip,
            "freeformTags": dict(self.tags),
            "definedTags": {},
            "timeCreated": "2026-01-01T00:00:00.000Z",
            "publicIpPoolId": None,
        }


@dataclass(slots=True)
class _Subnet:
    ocid: str
    region: str
    compartment: str
    ipv6_cidr_blocks: tuple[str, ...]
    prohibit_internet_ingress: bool

    def json(self) -> dict[str, Any]:
        return {
            "id": self.ocid,
            "compartmentId": self.compartment,
            "vcnId": f"{self.ocid}.vcn",
            "cidrBlock": "10.0.0.0/24",
            "ipv4CidrBlocks": ["10.0.0.0/24"],
            "ipv6CidrBlock": self.ipv6_cidr_blocks[0] if self.ipv6_cidr_blocks else None,
            "ipv6CidrBlocks": list(self.ipv6_cidr_blocks) or None,
            "lifecycleState": "AVAILABLE",
            "displayName": self.ocid.rsplit(".", 1)[-1],
            "prohibitInternetIngress": self.prohibit_internet_ingress,
            "prohibitPublicIpOnVnic": self.prohibit_internet_ingress,
            "freeformTags": {},
            "definedTags": {},
            "timeCreated": "2026-01-01T00:00:00.000Z",
        }


@dataclass(slots=True)
class _Ipv6:
    ocid: str
    subnet: _Subnet
    ip: str
    tags: dict[str, str]

    def json(self) -> dict[str, Any]:
        return {
            "id": self.ocid,
            "ipAddress": self.ip,
            "subnetId": self.subnet.ocid,
            "vnicId": f"{self.ocid}.vnic",
            "compartmentId": self.subnet.compartment,
            "lifecycleState": "AVAILABLE",
            "ipState": "ASSIGNED",
            "lifetime": "EPHEMERAL",
            "displayName": self.ip,
            "freeformTags": dict(self.tags),
            "definedTags": {},
            "timeCreated": "2026-01-01T00:00:00.000Z",
        }


@dataclass(slots=True)
class _Caller:
    """Who signed the request, and which region it was sent to."""

    tenancy: str
    region: str


@dataclass(slots=True)
class _Region:
    name: str
    key: str
    ads: tuple[str, ...]


class OciSimulator(SimulatorServer):
    """Identity (region subscriptions, compartments, ADs) and Core (public IPs, subnets, IPv6).

    Seed with ``add_region``, ``subscribe``, ``add_compartment``, ``add_public_ip``,
    ``add_subnet`` and ``add_ipv6``; authenticate with ``write_config`` (or ``add_api_key``).
    ``deny_compartment`` makes every call naming a compartment fail as a missing policy would.
    """

    def __init__(
        self, *, tenancy: str = DEFAULT_TENANCY, page_size: int = 100, latency: float = 0.0
    ) -> None:
        super().__init__(latency=latency)
        self.tenancy = tenancy
        self.page_size = page_size
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._regions: dict[str, _Region] = {}
        self._subscriptions: dict[str, list[str]] = {}
        self._compartments: dict[str, _Compartment] = {}
        self._public_ips: list[_PublicIp] = []
        self._subnets: dict[str, _Subnet] = {}
        self._ipv6s: list[_Ipv6] = []
        self._denied: dict[str, tuple[int, str]] = {}
        self._ids = itertools.count(1)

    # --- seeding --------------------------------------------------------------------------

    def endpoint_template(self) -> str:
        """The collector's ``service_endpoint_template`` for this simulator."""
        return self.url + "/{region}"

    def add_api_key(self, key_id: str, public_pem: str | bytes) -> None:
        """Register ``<tenancy>/<user>/<fingerprint>``; the fingerprint must match the key."""
        pem = public_pem.encode() if isinstance(public_pem, str) else public_pem
        key = serialization.load_pem_public_key(pem)
        if not isinstance(key, rsa.RSAPublicKey):
            raise TypeError("OCI API keys are RSA keys")
        parts = key_id.split("/")
        if len(parts) != 3 or parts[2] != fingerprint(key):
            raise ValueError(f"key id must be <tenancy>/<user>/<fingerprint of the key>: {key_id}")
        with self._lock:
            self._keys[key_id] = key

    def write_config(
        self,
        directory: Path,
        *,
        profile: str = "DEFAULT",
        region: str | None = None,
        user: str = DEFAULT_USER,
        register: bool = True,
    ) -> tuple[Path, str]:
        """Generate an RSA key and an OCI config file for it; register it unless told not to."""
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_file = directory / f"oci-{profile.lower()}.pem"
        key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.TraditionalOpenSSL,
                serialization.NoEncryption(),
            )
        )
        key_file.chmod(0o600)
        fp = fingerprint(key.public_key())
        if region is None:
            region = next(iter(self._regions), "us-ashburn-1")
        config_path = directory / "oci-config"  # one file per directory; profiles append
        with config_path.open("a") as config:
            config.write(
                f"[{profile}]\nuser={user}\nfingerprint={fp}\nkey_file={key_file}\n"
                f"tenancy={self.tenancy}\nregion={region}\n\n"
            )
        if register:
            public_pem = key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            self.add_api_key(f"{self.tenancy}/{user}/{fp}", public_pem)
        return config_path, profile

    def add_region(self, name: str, key: str, *, ads: int = 3, ad_prefix: str = "Uocm") -> None:
        """A region such as ``us-ashburn-1``/``IAD`` with ``ads`` availability domains."""
        stem = name.upper().rsplit("-", 1)[0]
        names = tuple(f"{ad_prefix}:{stem}-AD-{i}" for i in range(1, ads + 1))
        with self._lock:
            self._regions[name] = _Region(name=name, key=key.upper(), ads=names)

    def availability_domains(self, region: str) -> tuple[str, ...]:
        return self._regions[region].ads

    def subscribe(self, tenancy: str, region: str) -> None:
        with self._lock:
            if region not in self._regions:
                raise KeyError(f"unknown region {region}; add_region first")
            self._subscriptions.setdefault(tenancy, []).append(region)

    def add_compartment(self, ocid: str, parent: str, state: str = "ACTIVE") -> None:
        if state not in _COMPARTMENT_STATES:
            raise ValueError(f"unknown compartment state {state}")
        with self._lock:
            if parent != self.tenancy and parent not in self._compartments:
                raise KeyError(f"unknown parent compartment {parent}")
            self._compartments[ocid] = _Compartment(ocid, parent, state, ocid.rsplit(".", 1)[-1])

    def add_public_ip(
        self,
        region: str,
        compartment: str,
        ip: str,
        *,
        lifetime: str = "RESERVED",
        scope: str = "REGION",
        ad: str | None = None,
        freeform_tags: Mapping[str, str] | None = None,
        assigned_entity_type: str | None = None,
        state: str | None = None,
    ) -> str:
        """A public IP; reserved ones are always REGION-scoped, AD-scoped ones need ``ad``."""
        self._check_public_ip(region, lifetime, scope, ad, assigned_entity_type)
        if assigned_entity_type is None and lifetime == "EPHEMERAL":
            assigned_entity_type = "PRIVATE_IP" if scope == "AVAILABILITY_DOMAIN" else "NAT_GATEWAY"
        if state is None:
            state = "ASSIGNED" if assigned_entity_type else "AVAILABLE"
        ocid = self._ocid("publicip", region)
        record = _PublicIp(
            ocid=ocid,
            region=region,
            compartment=compartment,
            ip=ip,
            lifetime=lifetime,
            scope=scope,
            ad=ad,
            entity_type=assigned_entity_type,
            state=state,
            tags=dict(freeform_tags or {}),
        )
        with self._lock:
            self._public_ips.append(record)
        return ocid

    def _check_public_ip(
        self, region: str, lifetime: str, scope: str, ad: str | None, entity: str | None
    ) -> None:
        if lifetime not in _LIFETIMES or scope not in _SCOPES:
            raise ValueError(f"bad lifetime/scope {lifetime}/{scope}")
        if lifetime == "RESERVED" and scope != "REGION":
            raise ValueError("reserved public IPs are always REGION-scoped")
        if (scope == "AVAILABILITY_DOMAIN") != (ad is not None):
            raise ValueError("an availability domain goes with, and only with, AD scope")
        if ad is not None and ad not in self._regions[region].ads:
            raise ValueError(f"{ad} is not an availability domain of {region}")
        if entity is not None and entity not in _ENTITY_TYPES:
            raise ValueError(f"unknown assigned entity type {entity}")

    def add_subnet(
        self,
        region: str,
        compartment: str,
        ipv6_cidr_blocks: Sequence[str] = (),
        *,
        prohibit_internet_ingress: bool = False,
    ) -> str:
        ocid = self._ocid("subnet", region)
        with self._lock:
            self._subnets[ocid] = _Subnet(
                ocid, region, compartment, tuple(ipv6_cidr_blocks), prohibit_internet_ingress
            )
        return ocid

    def add_ipv6(
        self, region: str, subnet: str, ip: str, freeform_tags: Mapping[str, str] | None = None
    ) -> str:
        with self._lock:
            owner = self._subnets[subnet]
            if owner.region != region or not owner.ipv6_cidr_blocks:
                raise ValueError(f"subnet {subnet} has no IPv6 prefix in {region}")
            ocid = self._ocid("ipv6", region)
            self._ipv6s.append(_Ipv6(ocid, owner, ip, dict(freeform_tags or {})))
        return ocid

    def deny_compartment(
        self, ocid: str, *, status: int = 404, code: str = "NotAuthorizedOrNotFound"
    ) -> None:
        """Every call naming ``ocid`` fails (404 is what a missing IAM policy looks like)."""
        with self._lock:
            self._denied[ocid] = (status, code)

    def allow_compartment(self, ocid: str) -> None:
        with self._lock:
            self._denied.pop(ocid, None)

    def clear_denied(self) -> None:
        with self._lock:
            self._denied.clear()

    def _ocid(self, kind: str, region: str) -> str:
        key = self._regions[region].key.lower()
        return f"ocid1.{kind}.oc1.{key}.aaaaaaaa{next(self._ids):08d}"

    # --- serving --------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        try:
            with self._lock:
                return self._serve(request)
        except OciError as exc:
            return oci_error(exc.status, exc.code, exc.message)

    def _serve(self, request: Request) -> Response:
        match = _ROUTE.match(request.path)
        if request.method != "GET" or match is None or match["region"] not in self._regions:
            raise OciError(404, "NotAuthorizedOrNotFound", f"No route for {request.path}")
        tenancy = self._authenticate(request)
        if match["region"] not in self._subscriptions.get(tenancy, ()):
            # An unsubscribed region's identity replica does not know the user: unauthenticated.
            raise _unauthenticated(f"the tenancy is not subscribed to {match['region']}")
        return self._route(_Caller(tenancy, match["region"]), match["rest"], request)

    def _route(self, caller: _Caller, rest: str, request: Request) -> Response:
        subs = _SUBSCRIPTIONS.match(rest)
        if subs is not None:
            return self._region_subscriptions(caller, subs["tenancy"])
        routes: dict[str, Callable[[_Caller, Request], Response]] = {
            "/compartments": self._list_compartments,
            "/availabilityDomains": self._list_ads,
            "/publicIps": self._list_public_ips,
            "/subnets": self._list_subnets,
            "/ipv6": self._list_ipv6s,  # singular: the SDK never asks for /ipv6s
        }
        route = routes.get(rest)
        if route is None:
            raise OciError(404, "NotAuthorizedOrNotFound", f"No route for {rest}")
        return route(caller, request)

    # --- authentication -------------------------------------------------------------------

    def _authenticate(self, request: Request) -> str:
        """Check the draft-cavage signature OCI requires; return the caller's tenancy."""
        header = request.headers.get("authorization", "")
        scheme, _, rest = header.partition(" ")
        params = dict(_PARAM.findall(rest))
        if scheme != "Signature" or not params.get("signature"):
            raise _unauthenticated("missing or malformed Authorization header")
        if params.get("version") != "1" or params.get("algorithm") != "rsa-sha256":
            raise _unauthenticated("unsupported signature version or algorithm")
        signed = params.get("headers", "").split()
        if any(h not in signed for h in SIGNED_HEADERS):
            raise _unauthenticated("the signature must cover date, (request-target) and host")
        key = self._keys.get(params.get("keyId", ""))
        if key is None:
            raise _unauthenticated("unknown keyId")
        _check_date(request.headers.get("date", ""))
        message = signing_string(request, signed)
        try:
            signature = base64.b64decode(params["signature"], validate=True)
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (InvalidSignature, binascii.Error) as exc:
            raise _unauthenticated("signature does not verify") from exc
        return str(params["keyId"]).split("/", 1)[0]

    # --- identity -------------------------------------------------------------------------

    def _region_subscriptions(self, caller: _Caller, tenancy: str) -> Response:
        if tenancy != caller.tenancy:
            raise OciError(404, "NotAuthorizedOrNotFound", f"Tenancy {tenancy} not found")
        home = self._subscriptions[tenancy][0]
        return Response(
            200,
            [
                {
                    "regionKey": self._regions[name].key,
                    "regionName": name,
                    "status": "READY",
                    "isHomeRegion": name == home,
                }
                for name in self._subscriptions[tenancy]
            ],
            {"opc-request-id": _request_id()},
        )

    def _list_compartments(self, caller: _Caller, request: Request) -> Response:
        parent = self._compartment_param(caller, request)
        subtree = _boolean(request, "compartmentIdInSubtree")
        if subtree and parent != caller.tenancy:
            raise _invalid("compartmentIdInSubtree is allowed only on the tenancy")
        state = _enum(request, "lifecycleState", _COMPARTMENT_STATES)
        _enum(request, "accessLevel", _ACCESS_LEVELS)  # every compartment is accessible here
        found = [
            c
            for c in self._compartments.values()
            if (self._under(c.ocid, parent) if subtree else c.parent == parent)
            and (state is None or c.state == state)
        ]
        items = [
            {
                "id": c.ocid,
                "compartmentId": c.parent,
                "name": c.name,
                "description": c.name,
                "lifecycleState": c.state,
                "timeCreated": "2026-01-01T00:00:00.000Z",
                "isAccessible": True,
                "freeformTags": {},
                "definedTags": {},
            }
            for c in found
        ]
        return self._page(request, items)

    def _list_ads(self, caller: _Caller, request: Request) -> Response:
        tenancy = self._compartment_param(caller, request)
        region = self._regions[caller.region]
        items = [
            {"name": name, "id": f"ocid1.availabilitydomain.oc1..{i}", "compartmentId": tenancy}
            for i, name in enumerate(region.ads, 1)
        ]
        return Response(200, items, {"opc-request-id": _request_id()})

    # --- core -----------------------------------------------------------------------------

    def _list_public_ips(self, caller: _Caller, request: Request) -> Response:
        scope = _enum(request, "scope", _SCOPES, required=True)
        compartment = self._compartment_param(caller, request)
        ad = request.param("availabilityDomain")
        if (scope == "AVAILABILITY_DOMAIN") != (ad is not None):
            raise _invalid("availabilityDomain is required for, and only for, AVAILABILITY_DOMAIN")
        if ad is not None and ad not in self._regions[caller.region].ads:
            raise _invalid(f"availabilityDomain {ad} is not in {caller.region}")
        lifetime = _enum(request, "lifetime", _LIFETIMES)
        items = [
            ip.json()
            for ip in self._public_ips
            if ip.region == caller.region
            and ip.compartment == compartment
            and ip.scope == scope
            and ip.ad == ad
            and (lifetime is None or ip.lifetime == lifetime)
        ]
        return self._page(request, items)

    def _list_subnets(self, caller: _Caller, request: Request) -> Response:
        compartment = self._compartment_param(caller, request)
        items = [
            s.json()
            for s in self._subnets.values()
            if s.region == caller.region and s.compartment == compartment
        ]
        return self._page(request, items)

    def _list_ipv6s(self, caller: _Caller, request: Request) -> Response:
        subnet_id = request.param("subnetId")
        vnic_id = request.param("vnicId")
        if (subnet_id is None) == (vnic_id is None):
            raise _invalid("exactly one of subnetId and vnicId must be given")
        if subnet_id is not None:
            subnet = self._subnets.get(subnet_id)
            if subnet is None or subnet.region != caller.region:
                raise OciError(404, "NotAuthorizedOrNotFound", f"Subnet {subnet_id} not found")
            self._check_compartment(caller, subnet.compartment)
        items = [
            v.json()
            for v in self._ipv6s
            if v.subnet.region == caller.region
            and (subnet_id is None or v.subnet.ocid == subnet_id)
            and (vnic_id is None or f"{v.ocid}.vnic" == vnic_id)
        ]
        return self._page(request, items)

    # --- shared rules ---------------------------------------------------------------------

    def _compartment_param(self, caller: _Caller, request: Request) -> str:
        compartment = request.param("compartmentId")
        if not compartment:
            raise OciError(400, "MissingParameter", "compartmentId is required")
        self._check_compartment(caller, compartment)
        return compartment

    def _check_compartment(self, caller: _Caller, compartment: str) -> None:
        denied = self._denied.get(compartment)
        if denied is not None:
            raise OciError(denied[0], denied[1], f"{denied[1]} for compartment {compartment}")
        if compartment != caller.tenancy and not (
            compartment in self._compartments and self._under(compartment, caller.tenancy)
        ):
            raise OciError(404, "NotAuthorizedOrNotFound", f"Compartment {compartment} not found")

    def _under(self, ocid: str, ancestor: str) -> bool:
        """True when ``ocid`` lies strictly below ``ancestor``."""
        node = self._compartments.get(ocid)
        while node is not None:
            if node.parent == ancestor:
                return True
            node = self._compartments.get(node.parent)
        return False

    def _page(self, request: Request, items: list[dict[str, Any]]) -> Response:
        limit_text = request.param("limit")
        limit = self.page_size
        if limit_text is not None:
            if not limit_text.isdigit() or not 1 <= int(limit_text) <= MAX_LIMIT:
                raise _invalid(f"limit must be between 1 and {MAX_LIMIT}")
            limit = int(limit_text)
        start = _page_offset(request.param("page"))
        if start > len(items):
            raise _invalid("page token is out of range")
        headers = {"opc-request-id": _request_id()}
        if start + limit < len(items):
            headers["opc-next-page"] = _page_token(start + limit)
        return Response(200, items[start : start + limit], headers)


def signing_string(request: Request, signed: Sequence[str]) -> bytes:
    """The lines OCI signs, over the request target exactly as the client sent it."""
    target = request.target
    lines = []
    for name in signed:
        if name == "(request-target)":
            lines.append(f"(request-target): {request.method.lower()} {target}")
        else:
            lines.append(f"{name}: {request.headers.get(name, '')}")
    return "\n".join(lines).encode()


def _check_date(value: str) -> None:
    try:
        sent = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError) as exc:
        raise _unauthenticated("missing or malformed Date header") from exc
    if abs(time.time() - sent) > _CLOCK_SKEW:
        raise _unauthenticated("the Date header is more than 5 minutes off")


def _unauthenticated(detail: str) -> OciError:
    return OciError(
        401,
        "NotAuthenticated",
        f"The required information to complete authentication was not provided or was incorrect: "
        f"{detail}",
    )


def _invalid(message: str) -> OciError:
    return OciError(400, "InvalidParameter", message)


def _enum(
    request: Request, name: str, allowed: frozenset[str], *, required: bool = False
) -> str | None:
    value = request.param(name)
    if value is None:
        if required:
            raise OciError(400, "MissingParameter", f"{name} is required")
        return None
    if value not in allowed:
        raise _invalid(f"{name} must be one of {sorted(allowed)}")
    return value


def _boolean(request: Request, name: str) -> bool:
    value = request.param(name)
    if value not in (None, "true", "false"):
        raise _invalid(f"{name} must be true or false")
    return value == "true"


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def _page_offset(token: str | None) -> int:
    if token is None:
        return 0
    try:
        kind, _, number = base64.urlsafe_b64decode(token.encode()).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise _invalid("page token is not valid") from exc
    if kind != "offset" or not number.isdigit():
        raise _invalid("page token is not valid")
    return int(number)


def _request_id() -> str:
    return uuid.uuid4().hex.upper()
