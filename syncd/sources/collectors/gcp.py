"""GCP collector: the external IPs of each project (one scope per project), as ``Address`` records.

Reads Compute Engine over REST with aggregated lists (one paged call covers every region and zone)
plus the global lists, and Resource Manager's project search for ``projects: all``. Google, auth
and transport errors are translated here into ``syncd.errors``; no SDK type leaves this module.
It must not filter non-public IPs (the planner does) and knows nothing of Cloudflare.
"""

from __future__ import annotations

import contextlib
import functools
import ipaddress
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import google.auth
import requests
from google.api_core import exceptions as gexc
from google.api_core import retry as gretry
from google.auth import credentials as gcreds
from google.auth import exceptions as auth_exc
from google.cloud import compute_v1, resourcemanager_v3
from google.oauth2 import service_account
from google.protobuf import json_format

from syncd.config import GcpCollectorConfig
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
    ScopeDeadline,
    ScopeDenied,
    by_type,
    from_status,
    translated,
)

# Read-only: Compute lists, and the project search for `projects: all`.
OAUTH_SCOPES = (
    "https://www.googleapis.com/auth/compute.readonly",
    "https://www.googleapis.com/auth/cloudplatformprojects.readonly",
)
PAGE_SIZE = 500  # the most Compute Engine accepts (shared/reference/cloud-collectors.md)
GLOBAL = "global"
_EXTERNAL_SCHEMES = frozenset({"EXTERNAL", "EXTERNAL_MANAGED"})
_RATE_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
_DISABLED_REASONS = frozenset({"accessNotConfigured", "SERVICE_DISABLED"})
# The SDK's default retry covers neither 429 nor 500; ours does, with a short first backoff that
# doubles to _BACKOFF_MAX, bounded by settings.max_attempts and what the scope has left.
_TRANSIENT: tuple[type[Exception], ...] = (
    gexc.TooManyRequests,
    gexc.InternalServerError,
    gexc.BadGateway,
    gexc.ServiceUnavailable,
    gexc.GatewayTimeout,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
)
_BACKOFF_FIRST = 0.25
_BACKOFF_MAX = 8.0
_MIN_ATTEMPT_TIMEOUT = 0.05

# Ask for less (issue 26 item 4). Compute leaves INTERNAL addresses and forwarding rules out
# itself (the filters are the collector's own tests, which it keeps, in Compute's filter syntax)
# and answers with only the fields syncd reads: a field mask per list, in JSON names, sent as
# X-Goog-FieldMask (the `fields` system parameter's header form, through the SDK's public
# `metadata`). Each mask names nextPageToken: without it an answer has no link to the next page.
_ADDRESS_FIELDS = "name,address,addressType,region,labels"
_RULE_FIELDS = "name,region,labels,IPAddress,loadBalancingScheme"
_VM_FIELDS = (
    "name,zone,labels,networkInterfaces(accessConfigs/natIP,ipv6AccessConfigs/externalIpv6)"
)
FIELDS = {
    "addresses": f"items/*/addresses({_ADDRESS_FIELDS}),nextPageToken",
    "global_addresses": f"items({_ADDRESS_FIELDS}),nextPageToken",
    "instances": f"items/*/instances({_VM_FIELDS}),nextPageToken",
    "forwarding_rules": f"items/*/forwardingRules({_RULE_FIELDS}),nextPageToken",
    "global_forwarding_rules": f"items({_RULE_FIELDS}),nextPageToken",
}
EXTERNAL_ADDRESSES = 'addressType = "EXTERNAL"'
EXTERNAL_RULES = " OR ".join(f'(loadBalancingScheme = "{s}")' for s in sorted(_EXTERNAL_SCHEMES))

# Errors from outside the API's answers (token refresh, the wire, the body). An API's answer
# (GoogleAPICallError) is classified by its HTTP status instead.
_OTHER_ERRORS: ByType = (
    (auth_exc.TransportError, Reason.UNREACHABLE, "token endpoint unreachable ({type})"),
    (auth_exc.GoogleAuthError, Reason.AUTH, "credentials refused ({type})"),
    (requests.Timeout, Reason.TIMEOUT, "no answer in time ({type})"),
    (requests.RequestException, Reason.UNREACHABLE, "unreachable ({type})"),
    (json_format.ParseError, Reason.MALFORMED, "malformed answer ({type})"),
    (
        UnicodeDecodeError,
        Reason.MALFORMED,
        "malformed answer ({type})",
    ),  # protobuf decodes the body first
)
_TRANSLATED = (
    gexc.GoogleAPIError,
    auth_exc.GoogleAuthError,
    requests.RequestException,
    json_format.ParseError,
    UnicodeDecodeError,
)


class GcpCollector(CloudCollector[GcpCollectorConfig]):
    """Lists projects (configured, or every ACTIVE one) and collects each project's IPs."""

    VENDOR = Vendor.GCP

    def __init__(self, cfg: GcpCollectorConfig, *, settings: CollectorSettings) -> None:
        super().__init__(cfg, settings=settings)
        self._credentials: gcreds.Credentials | None = None
        self._clients: _Clients | None = None

    def scopes(self) -> Iterator[Scope]:
        """One scope per project: the configured ids, or Resource Manager's ACTIVE projects."""
        if self._cfg.projects == "all":
            projects: Iterator[str] = self._searched_projects()
        else:
            projects = iter(self._cfg.projects)
        seen: set[str] = set()
        for project in projects:
            if project not in seen:
                seen.add(project)
                yield Scope(collector=self.name, vendor=Vendor.GCP, account=project)

    def collect(self, scope: Scope) -> Iterator[Discovery]:
        """Every external IP of one project, once each, within ``settings.scope_timeout``."""
        pages = _Pager(self._settings.deadline(), self._settings)
        seen: set[IPAddress | str] = set()
        reader = _ProjectReader(scope.account, self._compute_clients(), pages)
        for found in reader.everything():
            item = self._discovery(found, scope)
            key = item.ip if isinstance(item, Address) else item.subject
            if key not in seen:
                seen.add(key)
                yield item

    # --- records --------------------------------------------------------------------------

    def _discovery(self, found: _Found, scope: Scope) -> Discovery:
        try:
            ip = _assigned_ip(found.ip)
        except ValueError:
            return skip_in(scope, found.ip, SkipReason.INVALID_IP, found.resource)
        region = found.region
        if region == GLOBAL:
            if self._cfg.global_region is None:
                return skip_in(scope, str(ip), SkipReason.GLOBAL_ANYCAST, found.resource, ip=ip)
            region = self._cfg.global_region
        return address_in(scope, ip, resource=found.resource, region=region, tags=found.labels)

    # --- SDK plumbing ---------------------------------------------------------------------

    def _searched_projects(self) -> Iterator[str]:
        pages = _Pager(self._settings.deadline(), self._settings)
        options = _client_options(self._cfg.resource_manager_endpoint)
        where = f"gcp collector {self.name}: projects:search"
        with _translated(where):
            client = resourcemanager_v3.ProjectsClient(
                credentials=self._shared_credentials(), transport="rest", client_options=options
            )
        with client:
            request = resourcemanager_v3.SearchProjectsRequest(query="state:ACTIVE")
            for page in pages.pages(client.search_projects, request, where):
                for project in page.projects:
                    if project.state == resourcemanager_v3.Project.State.ACTIVE:
                        yield str(project.project_id)

    def _compute_clients(self) -> _Clients:
        """The collector's clients, made once and shared by its scopes' threads (each call
        brings its own retry and timeout; requests' session and urllib3's pool serve calls from
        several threads). Made per scope, each client signed a token of its own with the
        service account's key and opened its own connections: 50 clients for 10 projects, more
        CPU than their answers (issue 26). They live as long as the collector, one collection
        in its vendor's process."""
        credentials = self._shared_credentials()
        with self._lock:
            if self._clients is None:
                self._clients = self._new_clients(credentials)
            return self._clients

    def _new_clients(self, credentials: gcreds.Credentials) -> _Clients:
        options = _client_options(self._cfg.api_endpoint)

        def make(cls: Callable[..., Any]) -> Any:
            with _translated(f"gcp collector {self.name}: compute client"):
                return cls(credentials=credentials, client_options=options)

        return _Clients(
            addresses=make(compute_v1.AddressesClient),
            global_addresses=make(compute_v1.GlobalAddressesClient),
            instances=make(compute_v1.InstancesClient),
            forwarding_rules=make(compute_v1.ForwardingRulesClient),
            global_forwarding_rules=make(compute_v1.GlobalForwardingRulesClient),
        )

    def _shared_credentials(self) -> gcreds.Credentials:
        """Loaded once per collector: a service-account key file, else ADC.

        Sharing is safe: each client copies a service-account credential (to sign its own JWTs),
        and a concurrent refresh of any other kind costs at most one extra token request.
        """
        with self._lock:
            if self._credentials is None:
                self._credentials = self._load_credentials()
            return self._credentials

    def _load_credentials(self) -> gcreds.Credentials:
        where = f"gcp collector {self.name}"
        path = self._cfg.credentials_file
        if path is None:
            with _translated(f"{where}: application default credentials"):
                credentials, _project = google.auth.default(scopes=OAUTH_SCOPES)
            return credentials
        try:
            # google-auth leaves this classmethod unannotated.
            loaded: gcreds.Credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
                str(path), scopes=OAUTH_SCOPES
            )
            return loaded
        except (OSError, ValueError, KeyError) as exc:
            # The file's content (a private key) must not reach the message: name the path only.
            raise CollectorError(
                f"{where}: credentials_file {path} is not a readable service-account key "
                f"({type(exc).__name__})",
                reason=Reason.AUTH,
            ) from exc


@dataclass(frozen=True, slots=True)
class _Found:
    """An IP as the API reports it (an IPv6 may be a ``/96`` range); ``region`` may be global."""

    ip: str
    region: str
    resource: str
    labels: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class _Clients:
    addresses: compute_v1.AddressesClient
    global_addresses: compute_v1.GlobalAddressesClient
    instances: compute_v1.InstancesClient
    forwarding_rules: compute_v1.ForwardingRulesClient
    global_forwarding_rules: compute_v1.GlobalForwardingRulesClient


class _ProjectReader:
    """The five list calls of one project, as ``_Found`` records (EXTERNAL only)."""

    def __init__(self, project: str, clients: _Clients, pages: _Pager) -> None:
        self._project = project
        self._clients = clients
        self._pages = pages

    def everything(self) -> Iterator[_Found]:
        # Reservations first, so an IP both reserved and in use is reported as the address.
        yield from self.addresses()
        yield from self.global_addresses()
        yield from self.instances()
        yield from self.forwarding_rules()
        yield from self.global_forwarding_rules()

    def addresses(self) -> Iterator[_Found]:
        request = compute_v1.AggregatedListAddressesRequest(
            project=self._project, max_results=PAGE_SIZE, filter=EXTERNAL_ADDRESSES
        )
        call = self._clients.addresses.aggregated_list
        for scope_key, address in self._aggregated(call, request, "addresses"):
            yield from _address(address, scope_key)

    def global_addresses(self) -> Iterator[_Found]:
        request = compute_v1.ListGlobalAddressesRequest(
            project=self._project, max_results=PAGE_SIZE, filter=EXTERNAL_ADDRESSES
        )
        for address in self._listed(
            self._clients.global_addresses.list, request, "global_addresses"
        ):
            yield from _address(address, GLOBAL)

    def instances(self) -> Iterator[_Found]:
        request = compute_v1.AggregatedListInstancesRequest(
            project=self._project, max_results=PAGE_SIZE
        )
        call = self._clients.instances.aggregated_list
        for scope_key, vm in self._aggregated(call, request, "instances"):
            zone = (vm.zone or scope_key).rstrip("/").rsplit("/", 1)[-1]
            region = _region_of(vm.zone or scope_key)
            resource = f"instance/{zone}/{vm.name}"
            labels = _labels(vm.labels)
            for nic in vm.network_interfaces:
                for access in nic.access_configs:
                    if access.nat_i_p:
                        yield _Found(access.nat_i_p, region, resource, labels)
                for access in nic.ipv6_access_configs:
                    if access.external_ipv6:
                        yield _Found(access.external_ipv6, region, resource, labels)

    def forwarding_rules(self) -> Iterator[_Found]:
        request = compute_v1.AggregatedListForwardingRulesRequest(
            project=self._project, max_results=PAGE_SIZE, filter=EXTERNAL_RULES
        )
        call = self._clients.forwarding_rules.aggregated_list
        for scope_key, rule in self._aggregated(call, request, "forwarding_rules"):
            yield from _forwarding_rule(rule, scope_key)

    def global_forwarding_rules(self) -> Iterator[_Found]:
        request = compute_v1.ListGlobalForwardingRulesRequest(
            project=self._project, max_results=PAGE_SIZE, filter=EXTERNAL_RULES
        )
        call = self._clients.global_forwarding_rules.list
        for rule in self._listed(call, request, "global_forwarding_rules"):
            yield from _forwarding_rule(rule, GLOBAL)

    def _listed(self, call: Callable[..., Any], request: Any, field: str) -> Iterator[Any]:
        """Every resource of a global list's pages (``field`` names the list and its mask)."""
        where = self._where(field.replace("_", " "))
        for page in self._pages.pages(call, request, where, FIELDS[field]):
            yield from _raw(page).items

    def _aggregated(
        self, call: Callable[..., Any], request: Any, field: str
    ) -> Iterator[tuple[str, Any]]:
        """``(scope key, resource)`` over every page; empty scopes carry only a warning."""
        where = self._where(f"aggregated {field.replace('_', ' ')}")
        for page in self._pages.pages(call, request, where, FIELDS[field]):
            for scope_key, scoped in _raw(page).items.items():
                for resource in getattr(scoped, field):
                    yield str(scope_key), resource

    def _where(self, what: str) -> str:
        return f"gcp project {self._project}: {what}"


def _raw(pager: Any) -> Any:
    """The protobuf message of the SDK pager's page (its ``pages``' first, which is the answer
    it holds, no request made; then proto-plus's ``Message.pb``), whose fields and those of the
    resources in it read at C speed: each read through the SDK's wrappers converts the value
    anew, which cost more CPU than the collector's own work per address (issue 26). The field
    names are the same; an unset string reads as ``""`` in both."""
    page = next(iter(pager.pages))
    return type(page).pb(page)


def _address(address: Any, scope_key: str) -> Iterator[_Found]:
    # Aggregated lists include INTERNAL addresses; GCP itself says those are not external.
    if address.address_type == "EXTERNAL" and address.address:
        region = _region_of(address.region or scope_key)
        resource = f"address/{region}/{address.name}"
        yield _Found(address.address, region, resource, _labels(address.labels))


def _forwarding_rule(rule: Any, scope_key: str) -> Iterator[_Found]:
    if rule.load_balancing_scheme in _EXTERNAL_SCHEMES and rule.I_p_address:
        region = _region_of(rule.region or scope_key)
        resource = f"forwardingRule/{region}/{rule.name}"
        yield _Found(rule.I_p_address, region, resource, _labels(rule.labels))


def _labels(labels: Mapping[str, str]) -> dict[str, str]:
    # By key: dict() of a protobuf map goes through the Mapping mixins, twice the CPU.
    return {key: labels[key] for key in labels}


def _region_of(where: str) -> str:
    """The region of a region/zone URL or aggregated scope key (``us-central1-a`` ->
    ``us-central1``); ``global`` for global resources."""
    parts = where.rstrip("/").split("/")
    kind = parts[-2] if len(parts) > 1 else ""
    if kind == "zones":
        return parts[-1].rsplit("-", 1)[0]
    if kind == "regions":
        return parts[-1]
    return GLOBAL if GLOBAL in parts else parts[-1]


def _assigned_ip(text: str) -> IPAddress:
    """The address GCP assigns: an IPv6 range (``/96``) is reduced to its first address."""
    if "/" in text:
        return ipaddress.ip_network(text.strip(), strict=False).network_address
    return parse_ip(text)


def _client_options(endpoint: str | None) -> dict[str, str] | None:
    # An explicit http:// scheme is kept by the REST transports (simulators on loopback).
    return {"api_endpoint": endpoint} if endpoint else None


# --- bounded paging, retries and error translation ----------------------------------------


class _Pager:
    """Fetches pages one request at a time, so the scope's deadline bounds all of them.

    The SDK's pager would reuse one retry (and its timeout) for every page; here each page gets
    a fresh retry whose timeout is what the scope has left.
    """

    def __init__(self, deadline: ScopeDeadline, settings: CollectorSettings) -> None:
        self._deadline = deadline
        self._settings = settings

    def pages(
        self, call: Callable[..., Any], request: Any, where: str, fields: str | None = None
    ) -> Iterator[Any]:
        """Every page of ``call``; ``fields``: the field mask of each answer."""
        metadata = () if fields is None else (("x-goog-fieldmask", fields),)
        while True:
            remaining = self._deadline.left(where)
            retry = gretry.Retry(
                predicate=_TransientRetries(self._settings.max_attempts),
                initial=_BACKOFF_FIRST,
                maximum=_BACKOFF_MAX,
                multiplier=2.0,
                timeout=remaining,
            )
            timeout = _AttemptTimeout(self._settings.request_timeout, self._deadline)
            with _translated(where):
                try:
                    page = call(request=request, retry=retry, timeout=timeout, metadata=metadata)
                except (AttributeError, TypeError, KeyError) as exc:
                    # google-api-core reading an error body that is JSON but not an object.
                    raise CollectorError(
                        f"{where}: malformed answer ({type(exc).__name__})",
                        reason=Reason.MALFORMED,
                    ) from exc
            yield page
            if not page.next_page_token:
                return
            request.page_token = page.next_page_token


class _TransientRetries:
    """Retry predicate of one request: transient errors only, ``max_attempts`` in all."""

    def __init__(self, max_attempts: int) -> None:
        self._retries_left = max_attempts - 1

    def __call__(self, exc: Exception) -> bool:
        if self._retries_left <= 0 or not (isinstance(exc, _TRANSIENT) or _rate_limited(exc)):
            return False
        self._retries_left -= 1
        return True


class _AttemptTimeout:
    """GAPIC timeout decorator: each attempt gets ``request_timeout``, cut to the deadline.

    A float timeout would be stretched back to its full value once under a second is left.
    """

    def __init__(self, request_timeout: float, deadline: ScopeDeadline) -> None:
        self._request_timeout = request_timeout
        self._deadline = deadline

    def __call__(self, func: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(func)
        def attempt(*args: Any, **kwargs: Any) -> Any:
            left = min(self._request_timeout, self._deadline.remaining())
            kwargs["timeout"] = max(_MIN_ATTEMPT_TIMEOUT, left)
            return func(*args, **kwargs)

        return attempt


def _reasons(exc: gexc.GoogleAPICallError) -> frozenset[str]:
    """The machine-readable reasons of a Google error: ``errors[].reason`` and ErrorInfo's."""
    found = {e.get("reason") for e in exc.errors if isinstance(e, Mapping)}
    found.add(exc.reason)
    return frozenset(r for r in found if isinstance(r, str))


def _rate_limited(exc: BaseException) -> bool:
    return isinstance(exc, gexc.Forbidden) and bool(_reasons(exc) & _RATE_REASONS)


def _translated(where: str) -> contextlib.AbstractContextManager[None]:
    """Google, auth and transport errors become ``CollectorError``s (by type and code)."""
    return translated(where, _TRANSLATED, _translate)


def _translate(where: str, exc: BaseException) -> CollectorError:
    if isinstance(exc, gexc.RetryError):
        # The scope's deadline ran out while retrying: say what kept failing.
        if exc.cause is None:
            return CollectorError(f"{where}: timed out", reason=Reason.TIMEOUT)
        return _translate(where, exc.cause)
    if isinstance(exc, gexc.GoogleAPICallError):
        return _call_error(where, exc)
    return by_type(where, exc, _OTHER_ERRORS)


def _call_error(where: str, exc: gexc.GoogleAPICallError) -> CollectorError:
    reasons = _reasons(exc)
    label = ",".join(sorted(reasons)) or type(exc).__name__
    message = f"{where}: HTTP {exc.code} {label}"
    if isinstance(exc, gexc.Forbidden) and reasons & _DISABLED_REASONS:
        # No Compute API, no Compute resources: skipped by design, not failed.
        return ScopeDenied(
            f"{where}: the API is disabled in the project", reason=Reason.API_DISABLED
        )
    if _rate_limited(exc):
        return CollectorError(message, reason=Reason.THROTTLED)
    if isinstance(exc, gexc.DeadlineExceeded):  # the RPC's own deadline, not an HTTP 504 page
        return CollectorError(message, reason=Reason.TIMEOUT)
    return CollectorError(message, reason=from_status(exc.code or 0))
