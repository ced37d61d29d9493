"""The Azure collector: public IP addresses per subscription, read through Azure Resource Manager.

Scopes are subscriptions (configured, or every active one the identity can see). Per scope it
yields each allocated public IPv4/IPv6 address with its ``location`` as the region, and ``Skip``
records for unallocated, Global-tier and prefix resources. azure-core and azure-identity errors are
translated here into ``CollectorError``; no SDK type or exception leaves this module, and nothing
here knows of Cloudflare, zones, state or metrics.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Iterator, Mapping
from contextlib import AbstractContextManager
from typing import Any, TypeVar

from azure.core.credentials import TokenCredential
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    DeserializationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceRequestTimeoutError,
    ServiceResponseError,
    ServiceResponseTimeoutError,
)
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import RetryPolicy
from azure.identity import CertificateCredential, ClientSecretCredential, DefaultAzureCredential
from azure.mgmt.network import NetworkManagementClient
from azure.mgmt.network.models import PublicIPAddress, PublicIPPrefix
from azure.mgmt.subscription import SubscriptionClient
from azure.mgmt.subscription.models import Subscription

from syncd.config import AzureCollectorConfig
from syncd.model import Address, IPAddress, Reason, Scope, Skip, SkipReason, Vendor, parse_ip
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
    ScopeDeadline,
    by_type,
    failure,
    from_status,
    translated,
)

# Subscription states: Warned and PastDue subscriptions still run resources; Disabled and Deleted
# ones are read-only shells (shared/reference/cloud-collectors.md, Azure "Calls").
_ACTIVE_STATES = frozenset({"enabled", "warned", "pastdue"})
# azure-core's default exponential backoff factor; Retry-After, when sent, wins over it.
_BACKOFF_FACTOR = 0.8
_BACKOFF_MAX = 30.0


_T = TypeVar("_T")


class AzureCollector(CloudCollector[AzureCollectorConfig]):
    """Reads ``publicIPAddresses`` and ``publicIPPrefixes`` of each subscription."""

    VENDOR = Vendor.AZURE

    def __init__(self, cfg: AzureCollectorConfig, *, settings: CollectorSettings) -> None:
        super().__init__(cfg, settings=settings)
        self._credential: TokenCredential | None = None

    def scopes(self) -> Iterator[Scope]:
        """The configured subscriptions, or every active one ``subscriptions.list()`` shows."""
        if self._cfg.subscriptions != "all":
            for sub in dict.fromkeys(self._cfg.subscriptions):
                yield self._scope(sub)
            return
        where = f"azure collector {self.name!r}: listing subscriptions"
        with _translated(where):
            client = SubscriptionClient(self._get_credential(), **self._client_options())
            with client:
                for listed in _parsed(client.subscriptions.list(), Subscription, where):
                    # The model declares its read-only fields as ``self.state = None``, so
                    # mypy types them None; read them as the strings they are.
                    sub_id = _text(getattr(listed, "subscription_id", None))
                    state = _text(getattr(listed, "state", None)).lower()
                    if sub_id and state in _ACTIVE_STATES:
                        yield self._scope(sub_id)

    def collect(self, scope: Scope) -> Iterator[Discovery]:
        """Every public IP resource of one subscription, then its prefixes as skips."""
        where = f"azure collector {self.name!r}, subscription {scope.account}"
        with _translated(where):
            client = NetworkManagementClient(
                self._get_credential(), scope.account, **self._client_options()
            )
            with client:
                seen: set[IPAddress] = set()
                for pip in _parsed(client.public_ip_addresses.list_all(), PublicIPAddress, where):
                    item = self._discovery(scope, pip)
                    if isinstance(item, Address):
                        if item.ip in seen:
                            continue
                        seen.add(item.ip)
                    if item is not None:
                        yield item
                for prefix in _parsed(client.public_ip_prefixes.list_all(), PublicIPPrefix, where):
                    yield _prefix_skip(scope, prefix)

    # --- records ------------------------------------------------------------------------------

    def _scope(self, subscription_id: str) -> Scope:
        return Scope(collector=self.name, vendor=Vendor.AZURE, account=subscription_id)

    def _discovery(self, scope: Scope, pip: PublicIPAddress) -> Discovery | None:
        fields = _fields(pip)
        rid = _text(fields.get("id"))
        region = _region(fields.get("location"))
        resource = _resource(rid, fields.get("name"))
        address = _fields(fields.get("properties")).get("ipAddress")
        if not address:
            detail = f"no address allocated (Dynamic, not attached); {rid}"
            return skip_in(scope, resource, SkipReason.UNALLOCATED, detail, region=region)
        try:
            ip = parse_ip(str(address))
        except ValueError:
            detail = f"ipAddress {address!r} is not an IP address; {rid}"
            return skip_in(scope, resource, SkipReason.INVALID_IP, detail, region=region)
        if _text(_fields(fields.get("sku")).get("tier")).lower() == "global":
            detail = f"{resource}: Global tier (cross-region load balancer)"
            reason = SkipReason.GLOBAL_ANYCAST
            return skip_in(scope, str(address), reason, detail, region=region, ip=ip)
        return address_in(scope, ip, resource=resource, region=region, tags=fields.get("tags"))

    # --- SDK plumbing -------------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        """Keyword arguments for an ARM client: one per scope, with its own retry budget."""
        retry = _DeadlineRetryPolicy(
            deadline=self._settings.deadline(),
            read_timeout=self._settings.request_timeout,
            **self._retry_options(),
        )
        options: dict[str, Any] = {
            "retry_policy": retry,
            # Called on every attempt (the hook policy sits inside the retry loop).
            "raw_request_hook": retry.cap_read_timeout,
            **self._transport_options(),
        }
        if self._cfg.base_url is not None:
            options["base_url"] = self._cfg.base_url
        return options

    def _retry_options(self) -> dict[str, Any]:
        # azure-core caps status, connect and read retries at 3 each by default, below
        # retry_total; max_attempts is meant to be the one cap, so all four get it.
        retries = max(0, self._settings.max_attempts - 1)
        return {
            "retry_total": retries,
            "retry_status": retries,
            "retry_connect": retries,
            "retry_read": retries,
            "retry_backoff_factor": _BACKOFF_FACTOR,
            "retry_backoff_max": _BACKOFF_MAX,
        }

    def _transport_options(self) -> dict[str, Any]:
        timeout = min(self._settings.request_timeout, self._settings.scope_timeout)
        return {"connection_timeout": timeout, "read_timeout": timeout}

    def _get_credential(self) -> TokenCredential:
        """One credential per collector, shared by its scopes (azure-identity's are thread-safe)."""
        with self._lock:
            if self._credential is None:
                try:
                    self._credential = self._new_credential()
                except (ValueError, OSError) as exc:
                    # azure-identity validates ids, the authority and the certificate file here.
                    raise CollectorError(
                        f"azure collector {self.name!r}: credential: {exc}", reason=Reason.CONFIG
                    ) from exc
            return self._credential

    def _new_credential(self) -> TokenCredential:
        cfg = self._cfg
        options: dict[str, Any] = {**self._retry_options(), **self._transport_options()}
        if cfg.authority_host is not None:
            # A private authority (sovereign cloud, simulator) is not in MSAL's list of known
            # hosts; without this MSAL asks login.microsoftonline.com to vouch for it.
            options["authority"] = cfg.authority_host
            options["disable_instance_discovery"] = True
        if cfg.client_secret is not None or cfg.client_certificate_path is not None:
            if not cfg.client_id or not cfg.tenant_id:
                raise CollectorError(
                    f"azure collector {self.name!r}: client_secret or client_certificate_path "
                    "needs client_id and tenant_id",
                    reason=Reason.CONFIG,
                )
            if cfg.client_secret is not None:
                return ClientSecretCredential(
                    cfg.tenant_id, cfg.client_id, cfg.client_secret.get_secret_value(), **options
                )
            return CertificateCredential(
                cfg.tenant_id,
                cfg.client_id,
                certificate_path=str(cfg.client_certificate_path),
                **options,
            )
        # Environment, workload identity, managed identity, then the developer CLIs; nothing
        # interactive, since a daemon has nobody to click.
        return DefaultAzureCredential(
            managed_identity_client_id=cfg.client_id,
            workload_identity_tenant_id=cfg.tenant_id,
            exclude_interactive_browser_credential=True,
            exclude_visual_studio_code_credential=True,
            exclude_shared_token_cache_credential=True,
            exclude_broker_credential=True,
            **options,
        )


class _DeadlineRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's retries (429/408/5xx, Retry-After honoured), capped by one scope deadline.

    A retry whose wait would end past the deadline is not taken, so an always-failing scope costs
    about ``scope_timeout`` and fails with the last real answer (429 stays "throttled"). azure-core
    cuts only the connect timeout to the time left; ``cap_read_timeout`` cuts the read timeout.
    """

    def __init__(self, *, deadline: ScopeDeadline, read_timeout: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._deadline = deadline
        self._read_timeout = read_timeout

    def cap_read_timeout(self, request: PipelineRequest[Any]) -> None:
        """Give one attempt at most the scope's remaining time to answer."""
        left = max(0.001, self._remaining())
        request.context.options["read_timeout"] = min(self._read_timeout, left)

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings = super().configure_retries(options)
        settings["timeout"] = max(0.0, min(settings["timeout"], self._remaining()))
        return settings

    def increment(
        self,
        settings: dict[str, Any],
        response: PipelineRequest[Any] | PipelineResponse[Any, Any] | None = None,
        error: Exception | None = None,
    ) -> bool:
        if not super().increment(settings, response=response, error=error):
            return False
        wait = self.get_backoff_time(settings)
        if error is None and isinstance(response, PipelineResponse):
            wait = self.get_retry_after(response) or wait
        return wait < self._remaining()

    def _remaining(self) -> float:
        return self._deadline.remaining()


# How an azure-core failure is reported; classified by type, then by HTTP status
# (``errors.from_status``), never by message.
#
#   failure                                   reason
#   ClientAuthenticationError                 auth
#   HttpResponseError                         by its status
#   body not JSON / not the model             malformed
#   request/response timeout                  timeout
#   connection refused, reset, TLS            unreachable
#   anything else from azure-core             error


def _prefix_skip(scope: Scope, prefix: PublicIPPrefix) -> Skip:
    # Only the prefix's addresses that exist as public IP resources are mapped: a NAT gateway
    # can use the whole range without one, and such outbound-only addresses are no origins.
    fields = _fields(prefix)
    props = _fields(fields.get("properties"))
    cidr = props.get("ipPrefix")
    members = len(props.get("publicIPAddresses") or ())
    detail = (
        f"public IP prefix {cidr or '(not allocated)'}: not expanded; its {members} "
        "address(es) that are public IP resources are collected as such"
    )
    subject = str(cidr or _resource(_text(fields.get("id")), fields.get("name")))
    region = _region(fields.get("location"))
    return skip_in(scope, subject, SkipReason.PREFIX_NOT_EXPANDED, detail, region=region)


def _parsed(pager: Iterable[Any], kind: type[_T], where: str) -> Iterator[_T]:
    """The SDK's pager, checked: its own parsing of a page that is not the ARM list shape
    surfaces as plain Python errors (``null``: AttributeError; empty: JSONDecodeError) or as
    items of the wrong type (``{"value": "abc"}`` yields characters)."""
    items = iter(pager)
    while True:
        try:
            item = next(items)
        except StopIteration:
            return
        except (ValueError, AttributeError, TypeError, KeyError) as exc:
            raise CollectorError(
                f"{where}: malformed answer ({type(exc).__name__})", reason=Reason.MALFORMED
            ) from exc
        if not isinstance(item, kind):
            raise CollectorError(
                f"{where}: malformed answer (a {type(item).__name__} in the list)",
                reason=Reason.MALFORMED,
            )
        yield item


def _translated(where: str) -> AbstractContextManager[None]:
    """Turn every azure-core and azure-identity failure into a ``CollectorError``."""
    return translated(where, (AzureError, DeserializationError), _azure_error)


def _azure_error(where: str, exc: BaseException) -> CollectorError:
    """By the table; an HTTP answer not in it (ARM's error) by its status."""
    if isinstance(exc, HttpResponseError) and not isinstance(exc, _NOT_BY_STATUS):
        return failure(where, from_status(exc.status_code or 0), _describe(exc))
    return by_type(where, exc, _AZURE_ERRORS, detail=_describe)


# azure-core's failures that say more than their status (both are HttpResponseErrors).
_NOT_BY_STATUS = (ClientAuthenticationError, DecodeError)
_AZURE_ERRORS: ByType = (
    (ClientAuthenticationError, Reason.AUTH, "authentication failed: {detail}"),
    ((DecodeError, DeserializationError), Reason.MALFORMED, "malformed answer ({type})"),
    (
        (ServiceRequestTimeoutError, ServiceResponseTimeoutError),
        Reason.TIMEOUT,
        "timed out: {detail}",
    ),
    ((ServiceRequestError, ServiceResponseError), Reason.UNREACHABLE, "unreachable: {detail}"),
    (AzureError, Reason.ERROR, "{detail}"),
)


def _describe(exc: BaseException) -> str:
    """Status, ARM error code and the first line of the message (no secrets are in these)."""
    parts: list[str] = []
    text = exc.message if isinstance(exc, AzureError) else str(exc)
    if isinstance(exc, HttpResponseError):
        if exc.status_code is not None:
            parts.append(f"HTTP {exc.status_code}")
        if exc.error is not None and exc.error.code:
            parts.append(str(exc.error.code))
            text = exc.error.message or text
    lines = str(text or type(exc).__name__).strip().splitlines()
    first = lines[0][:300] if lines else type(exc).__name__
    return f"{' '.join(parts)}: {first}" if parts else first


def _fields(model: object) -> dict[str, Any]:
    """An object of an ARM answer by REST name, as sent (``{}`` if it is not one). The SDK's
    models are Mappings of the JSON they were read from, and their ``items()`` are its own: a
    field read as an attribute is converted anew on every read, and one looked up by key goes
    through two failed attribute lookups first, which cost the collector more CPU than its own
    work per address (issue 26)."""
    return dict(model.items()) if isinstance(model, Mapping) else {}


def _text(value: object) -> str:
    """A model field as text: the SDK's str-enums print as ``Class.MEMBER`` through ``str()``."""
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "" if value is None else str(value)


def _region(location: object) -> str:
    # ARM names are lowercase without spaces; older resources sometimes say "East US".
    return _text(location).lower().replace(" ", "")


def _resource(rid: str, name: object) -> str:
    """``publicip/<resource group>/<name>``; the subscription is the Address's account."""
    parts = rid.split("/")
    lowered = [p.lower() for p in parts]
    group = parts[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered[:-1] else ""
    leaf = _text(name) or (parts[-1] if parts else "")
    return f"publicip/{group}/{leaf}" if group else f"publicip/{leaf}"
