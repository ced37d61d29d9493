"""The OCI collector: public IPv4 and IPv6 addresses per (compartment, region) of a tenancy.

Scopes are compartments x regions. Per scope it reads public IPs (REGION scope, then the ephemeral
AVAILABILITY_DOMAIN-scoped ones of each AD) and walks IPv6-enabled subnets for their IPv6
addresses, with the real oci SDK and its own retries bounded by ``collectors.scope_timeout``. oci
errors become ``CollectorError`` here: no oci type or exception leaves this module. It knows
nothing of Cloudflare, zones, state or metrics.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import oci

from syncd.config import OciCollectorConfig
from syncd.model import Address, IPAddress, Reason, Scope, SkipReason, Vendor, parse_ip
from syncd.sources.collectors.base import (
    CloudCollector,
    CollectorSettings,
    Discovery,
    address_in,
    skip_in,
)
from syncd.sources.collectors.failures import (
    ByType,
    CollectorError,
    by_type,
    failure,
    from_status,
    translated,
)

# Lifecycle states of a public IP or IPv6 that is on its way out: not worth a mapping.
_GONE = frozenset({"TERMINATING", "TERMINATED"})
_SUBSCRIBED = "READY"
_ACTIVE = "ACTIVE"


@dataclass(frozen=True, slots=True)
class _Credentials:
    """Who syncd is in the tenancy: the signer every client shares (API key or principal)."""

    tenancy: str
    region: str  # where tenancy-wide lists (subscriptions, compartments) are read
    signer: Any
    config: dict[str, Any]  # the API-key profile (clients validate it); empty for principals


class OciCollector(CloudCollector[OciCollectorConfig]):
    """Lists the public addresses of one tenancy (one config profile or principal)."""

    VENDOR = Vendor.OCI

    def __init__(self, cfg: OciCollectorConfig, *, settings: CollectorSettings) -> None:
        super().__init__(cfg, settings=settings)
        self._credentials: _Credentials | None = None
        self._ads: dict[str, tuple[str, ...]] = {}

    def scopes(self) -> Iterator[Scope]:
        """Compartments (configured, or the tenancy and its ACTIVE subtree) x regions."""
        where = f"oci collector {self.name}"
        limits = _CallLimits(self._settings, where)
        with _translated(where):
            creds = self._load(limits)
            with self._client(oci.identity.IdentityClient, creds, creds.region) as identity:
                regions = self._cfg.regions
                if regions == "subscribed":
                    regions = _subscribed_regions(identity, creds.tenancy, limits)
                compartments = self._cfg.compartments
                if compartments == "all":
                    compartments = _active_compartments(identity, creds.tenancy, limits)
        for compartment in compartments:
            for region in regions:
                yield Scope(
                    collector=self.name, vendor=Vendor.OCI, account=compartment, region=region
                )

    def collect(self, scope: Scope) -> Iterator[Discovery]:
        """Public IPs and IPv6 addresses of one compartment in one region, each IP once."""
        where = f"oci compartment {scope.account} in {scope.region}"
        limits = _CallLimits(self._settings, where)
        seen: set[IPAddress] = set()
        with _translated(where):
            creds = self._load(limits)
            with self._client(oci.core.VirtualNetworkClient, creds, scope.region) as vcn:
                for item in self._discover(vcn, creds, scope, limits):
                    if isinstance(item, Address):
                        if item.ip in seen:
                            continue
                        seen.add(item.ip)
                    yield item

    def _discover(
        self, vcn: Any, creds: _Credentials, scope: Scope, limits: _CallLimits
    ) -> Iterator[Discovery]:
        # Reserved IPs and ephemeral ones on regional entities (NAT gateways) are REGION-scoped;
        # ephemeral IPs on VNICs are listed per availability domain (shared/reference, OCI).
        for item in _pages(vcn, "list_public_ips", limits, "REGION", scope.account):
            yield _public_ip(item, scope)
        for ad in self._availability_domains(creds, scope.region, limits):
            for item in _pages(
                vcn,
                "list_public_ips",
                limits,
                "AVAILABILITY_DOMAIN",
                scope.account,
                availability_domain=ad,
                lifetime="EPHEMERAL",
            ):
                yield _public_ip(item, scope)
        # IPv6 has no compartment-wide list: walk the subnets that have an IPv6 prefix.
        for subnet in _pages(vcn, "list_subnets", limits, scope.account):
            yield from _subnet_ipv6s(vcn, subnet, scope, limits)

    def _availability_domains(
        self, creds: _Credentials, region: str, limits: _CallLimits
    ) -> tuple[str, ...]:
        """The region's ADs, read once per collector and region (they do not change)."""
        with self._lock:
            cached = self._ads.get(region)
        if cached is not None:
            return cached
        with self._client(oci.identity.IdentityClient, creds, region) as identity:
            response = identity.list_availability_domains(
                creds.tenancy, retry_strategy=limits.arm(identity)
            )
        operation = "list_availability_domains"
        names = tuple(_text(ad, "name", operation) for ad in _items(response, operation))
        with self._lock:
            self._ads[region] = names
        return names

    def _load(self, limits: _CallLimits) -> _Credentials:
        """Read the config profile or build the principal's signer, once per collector."""
        with self._lock:
            if self._credentials is None:
                self._credentials = self._read_credentials(limits)
            return self._credentials

    def _read_credentials(self, limits: _CallLimits) -> _Credentials:
        cfg = self._cfg
        if cfg.auth == "api_key":
            config = oci.config.from_file(str(cfg.config_file), cfg.profile)
            oci.config.validate_config(config)
            # One signer for all clients: loading the RSA key costs ~0.1 s, and signing keeps
            # no per-request state, so threads can share it.
            signer = oci.signer.Signer.from_config(config)
            return _Credentials(
                tenancy=config["tenancy"], region=config["region"], signer=signer, config=config
            )
        if cfg.auth == "instance_principal":
            signer = oci.auth.signers.InstancePrincipalsSecurityTokenSigner(
                retry_strategy=limits.retry_strategy(attempt=self._settings.request_timeout),
                federation_client_retry_strategy=limits.retry_strategy(
                    attempt=self._settings.request_timeout
                ),
                federation_client_circuit_breaker_strategy=_no_circuit_breaker(),
            )
        else:
            signer = _principal_signer(cfg.auth, self.name)
        return _Credentials(
            tenancy=str(signer.tenancy_id), region=str(signer.region), signer=signer, config={}
        )

    @contextlib.contextmanager
    def _client(self, kind: Callable[..., Any], creds: _Credentials, region: str) -> Iterator[Any]:
        """A new client for one region, one per scope (oci clients are not shared between
        threads), closed after use so that a long-running daemon keeps no idle sockets."""
        kwargs: dict[str, Any] = {
            # The timeout is set again before each call, cut to what the scope has left.
            "timeout": (self._settings.request_timeout, self._settings.request_timeout),
            # The default breaker is shared by name across clients: one failing compartment
            # would open it and stall the healthy scopes (issue 11).
            "circuit_breaker_strategy": _no_circuit_breaker(),
            # Retries are passed per call, sized to what is left of the scope (``_CallLimits.arm``).
            "retry_strategy": oci.retry.NoneRetryStrategy(),
            # Raw JSON: parsed and checked below, so a malformed answer is a typed error.
            "skip_deserialization": True,
            "signer": creds.signer,
        }
        if self._cfg.service_endpoint_template is not None:
            kwargs["service_endpoint"] = self._cfg.service_endpoint_template.format(region=region)
        client = kind({**creds.config, "region": region}, **kwargs)
        try:
            yield client
        finally:
            client.base_client.session.close()


class _CallLimits:
    """A scope's time. Before each call, ``arm`` cuts the client's timeout and the SDK's retries
    to what is left of ``scope_timeout``, so no attempt ends past the deadline."""

    def __init__(self, settings: CollectorSettings, where: str) -> None:
        self._settings = settings
        self._where = where
        self._deadline = settings.deadline()

    def arm(self, client: Any) -> Any:
        """Set ``client``'s timeout for the next call and return that call's retry strategy."""
        remaining = self._remaining()
        # At most half of what is left, so that a retry still fits after a timed-out attempt.
        timeout = min(self._settings.request_timeout, remaining / 2)
        client.base_client.timeout = (timeout, timeout)
        return self.retry_strategy(remaining, attempt=timeout)

    def retry_strategy(self, remaining: float | None = None, *, attempt: float = 0.0) -> Any:
        """The SDK's own strategy (429, 409, 5xx, timeouts), capped in attempts and in time.

        The SDK's defaults (1 s base, 30 s cap) for the default 120 s scope; a shorter scope
        shrinks both so that several attempts still fit. Retries stop early enough that the last
        sleep and the last attempt (``attempt`` seconds at most) end inside the deadline.
        """
        s = self._settings
        remaining = self._remaining() if remaining is None else remaining
        base = min(1.0, s.scope_timeout / 64)
        max_wait = min(30.0, s.scope_timeout / 8)
        return oci.retry.RetryStrategyBuilder(
            max_attempts=s.max_attempts,
            # Never 0: the builder reads 0 as "unset" and applies its 600 s default.
            total_elapsed_time_seconds=max(remaining - max_wait - attempt, 0.001),
            retry_base_sleep_time_seconds=base,
            decorrelated_jitter=base,
            retry_max_wait_between_calls_seconds=max_wait,
            service_error_retry_on_any_5xx=True,
        ).get_retry_strategy()

    def _remaining(self) -> float:
        return self._deadline.left(self._where)


def _no_circuit_breaker() -> Any:
    return oci.circuit_breaker.NoCircuitBreakerStrategy()


def _pages(
    client: Any, operation: str, limits: _CallLimits, *args: Any, **kwargs: Any
) -> Iterator[dict[str, Any]]:
    """Every item of a list call, following ``opc-next-page``. Not the SDK's pagination
    helpers: they wrap each page in DEFAULT_RETRY_STRATEGY on top of ours (8 x 600 s)."""
    call = getattr(client, operation)
    page: str | None = None
    while True:
        response = call(*args, page=page, retry_strategy=limits.arm(client), **kwargs)
        yield from _items(response, operation)
        page = response.next_page
        if not page:
            return


def _subscribed_regions(identity: Any, tenancy: str, limits: _CallLimits) -> tuple[str, ...]:
    operation = "list_region_subscriptions"
    response = identity.list_region_subscriptions(tenancy, retry_strategy=limits.arm(identity))
    return tuple(
        _text(sub, "regionName", operation)
        for sub in _items(response, operation)
        if sub.get("status") == _SUBSCRIBED
    )


def _active_compartments(identity: Any, tenancy: str, limits: _CallLimits) -> tuple[str, ...]:
    """The tenancy (the root compartment, which the subtree list leaves out) and every ACTIVE
    compartment below it."""
    found = _pages(
        identity,
        "list_compartments",
        limits,
        tenancy,
        compartment_id_in_subtree=True,
        access_level="ACCESSIBLE",
        lifecycle_state=_ACTIVE,
    )
    below = [
        _text(c, "id", "list_compartments") for c in found if c.get("lifecycleState") == _ACTIVE
    ]
    return (tenancy, *below)


def _subnet_ipv6s(
    vcn: Any, subnet: dict[str, Any], scope: Scope, limits: _CallLimits
) -> Iterator[Discovery]:
    subnet_id = _text(subnet, "id", "list_subnets")
    blocks = subnet.get("ipv6CidrBlocks") or (
        [subnet["ipv6CidrBlock"]] if subnet.get("ipv6CidrBlock") else []
    )
    if not blocks:
        return
    if subnet.get("prohibitInternetIngress") is True:
        # OCI: with prohibitInternetIngress, no IPv6 on the subnet's VNICs is reachable from the
        # internet, so none of them can be an origin; one Skip says so instead of a list call.
        detail = "subnet prohibits internet ingress; its IPv6 addresses are not public"
        yield skip_in(scope, f"subnet/{subnet_id}", SkipReason.NON_PUBLIC, detail)
        return
    for item in _pages(vcn, "list_ipv6s", limits, subnet_id=subnet_id):
        yield _address(item, scope, kind="ipv6", operation="list_ipv6s")


def _public_ip(item: dict[str, Any], scope: Scope) -> Discovery:
    return _address(item, scope, kind="publicip", operation="list_public_ips")


def _address(item: dict[str, Any], scope: Scope, *, kind: str, operation: str) -> Discovery:
    """One public IP or IPv6 record as an Address, or a Skip when OCI is releasing it."""
    ocid = _text(item, "id", operation)
    text = _text(item, "ipAddress", operation)
    try:
        ip: IPAddress | None = parse_ip(text)
    except ValueError:
        ip = None
    state = item.get("lifecycleState")
    if state in _GONE:
        return skip_in(scope, text, SkipReason.UNALLOCATED, f"{kind} {ocid} is {state}", ip=ip)
    if ip is None:
        return skip_in(scope, text, SkipReason.INVALID_IP, f"{kind} {ocid} holds no IP address")
    return address_in(scope, ip, resource=f"{kind}/{ocid}", tags=_tags(item, operation))


def _items(response: Any, operation: str) -> list[dict[str, Any]]:
    """The body of a list call: a bare JSON array of objects, or a ``malformed`` error."""
    data = response.data
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise _Malformed(f"{operation} answered with something other than a JSON array of objects")
    return data


def _text(item: dict[str, Any], key: str, operation: str) -> str:
    value = item.get(key)
    if not isinstance(value, str) or not value:
        raise _Malformed(f"{operation}: an item has no {key}")
    return value


def _tags(item: dict[str, Any], operation: str) -> dict[str, str]:
    tags = item.get("freeformTags") or {}
    if not isinstance(tags, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in tags.items()
    ):
        raise _Malformed(f"{operation}: freeformTags is not a map of strings")
    return tags


class _Malformed(Exception):
    """An answer that is not what the API documents; becomes ``reason="malformed"``."""


def _principal_signer(auth: str, name: str) -> Any:
    """The resource principal signer ``auth`` names, from what the runtime provides (service
    account token and environment on OKE; the function's environment otherwise)."""
    try:
        if auth == "oke_workload_identity":
            return oci.auth.signers.get_oke_workload_identity_resource_principal_signer()
        return oci.auth.signers.get_resource_principals_signer()
    except (ValueError, KeyError, OSError) as exc:  # the SDK's words for "not provided here"
        raise CollectorError(
            f"oci collector {name}: auth {auth} is not available in this environment: {exc}",
            reason=Reason.AUTH,
        ) from exc


def _translated(where: str) -> contextlib.AbstractContextManager[None]:
    """Turn whatever the oci SDK raises into a ``CollectorError`` naming the scope."""
    return translated(where, _OCI_FAILURES, _oci_error)


def _oci_error(where: str, exc: BaseException) -> CollectorError:
    """By OCI's answer (status and code), by the wire's cause, else by the table."""
    if isinstance(exc, oci.exceptions.ServiceError):
        return _service_error(exc, where)
    if isinstance(exc, oci.exceptions.RequestException):
        # The SDK wraps the exception of its vendored (private) requests as the first argument;
        # a timeout is told by the socket's own TimeoutError down the chain, not by that class.
        cause = exc.args[0] if exc.args else None
        reason = Reason.TIMEOUT if _timed_out(exc) else Reason.UNREACHABLE
        return failure(where, reason, f"no answer from OCI ({type(cause).__name__})")
    return by_type(where, exc, _OCI_ERRORS)


# The SDK's failures without an answer from OCI; the first matching row wins. The SDK decodes
# every body as UTF-8 before we see it; an OSError is the key file named by the profile.
_OCI_ERRORS: ByType = (
    (_Malformed, Reason.MALFORMED, "{exc}"),
    (UnicodeDecodeError, Reason.MALFORMED, "answer is not UTF-8 text"),
    (oci.exceptions.ConnectTimeout, Reason.TIMEOUT, "timed out connecting to OCI"),
    (oci.exceptions.ClientError, Reason.AUTH, "OCI credentials are unusable ({type})"),
    (OSError, Reason.AUTH, "cannot read the OCI key file {exc.filename}"),
)
_OCI_FAILURES = (
    _Malformed,
    UnicodeDecodeError,
    oci.exceptions.ServiceError,
    oci.exceptions.RequestException,
    oci.exceptions.ClientError,
    OSError,  # oci.exceptions.ConnectTimeout among them
)


def _timed_out(exc: BaseException) -> bool:
    """Whether a socket timeout is anywhere in the chain of causes and contexts."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, TimeoutError):
            return True
        todo += [e.__cause__, e.__context__, *(a for a in e.args if isinstance(a, BaseException))]
    return False


def _service_error(exc: Any, where: str) -> CollectorError:
    """Classify by HTTP status and OCI code, never by the message."""
    status = exc.status if isinstance(exc.status, int) else 0
    code = exc.code if isinstance(exc.code, str) else ""
    message = f"{where}: {exc.operation_name or 'call'} answered {status} {code}".rstrip()
    if status == 404 and code == "NotAuthorizedOrNotFound":
        # OCI says NotAuthorizedOrNotFound both for a missing policy and a missing compartment.
        return CollectorError(message, reason=Reason.AUTH)
    return CollectorError(message, reason=from_status(status))
