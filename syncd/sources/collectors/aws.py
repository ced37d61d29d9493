"""AWS collector: Elastic IPs and public ENI addresses, one scope per (account, region).

``scopes()`` lists the account (or every ACTIVE account of an Organization) times the enabled
regions; ``collect()`` reads one of them through its own botocore session. Every botocore failure
is translated into ``syncd.errors`` here and nowhere else. It must not filter addresses by
"publicness" (the planner does that) and knows nothing of Cloudflare, zones, state or metrics.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import botocore.loaders
import botocore.session
from botocore.config import Config
from botocore.credentials import (
    CredentialProvider,
    CredentialResolver,
    Credentials,
    DeferredRefreshableCredentials,
)
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    CredentialRetrievalError,
    HTTPClientError,
    NoCredentialsError,
    PartialCredentialsError,
    ProfileNotFound,
    ReadTimeoutError,
)
from botocore.exceptions import ConnectionError as BotoConnectionError
from botocore.parsers import ResponseParserError

from syncd.config import AwsCollectorConfig
from syncd.model import Address, IPAddress, Reason, Scope, Skip, SkipReason, Vendor, parse_ip
from syncd.sources.collectors import failures
from syncd.sources.collectors.base import (
    CloudCollector,
    CollectorSettings,
    Discovery,
    address_in,
    skip_in,
)
from syncd.sources.collectors.failures import ScopeDeadline

if TYPE_CHECKING:
    from botocore.client import BaseClient
    from mypy_boto3_ec2.client import EC2Client
    from mypy_boto3_ec2.type_defs import NetworkInterfaceTypeDef, TagTypeDef
    from mypy_boto3_organizations.client import OrganizationsClient
    from mypy_boto3_sts.client import STSClient
    from mypy_boto3_sts.type_defs import AssumeRoleRequestTypeDef

# Where STS, Organizations and DescribeRegions are called when neither the profile nor
# AWS_DEFAULT_REGION names a region (GovCloud and China deployments must name one).
_HOME_REGION = "us-east-1"
_ENABLED = frozenset({"opt-in-not-required", "opted-in"})
# Held while a client is made: a botocore session is not thread-safe, and without it the first
# scopes all load the (multi-megabyte) EC2 model at once instead of once (measured: 2x the CPU).
_CREATE = threading.Lock()
# EC2 answers a call to a region the account has not enabled with one of these, the same codes
# it uses for bad credentials; describe_regions tells the two apart (see _region_enabled).
_REGION_DENIED = frozenset({"AuthFailure", "OptInRequired", "UnauthorizedOperation"})

# botocore's throttling codes (shared/reference/cloud-collectors.md, "Throttling and retry").
_THROTTLED = (
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
)
_AUTH = (
    "AccessDenied",
    "AccessDeniedException",
    "AccessDeniedForDependencyException",
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "SignatureDoesNotMatch",
    "IncompleteSignature",
    "MissingAuthenticationToken",
    "ExpiredToken",
    "ExpiredTokenException",
    "RequestExpired",
    "RegionDisabledException",
)
# Error.Code -> reason. Codes not listed fall back on the HTTP status.
_CODES: dict[str, Reason] = {
    **dict.fromkeys(_THROTTLED, Reason.THROTTLED),
    **dict.fromkeys([*_REGION_DENIED, *_AUTH], Reason.AUTH),
    "AWSOrganizationsNotInUseException": Reason.NOT_FOUND,
}


class AwsCollector(CloudCollector[AwsCollectorConfig]):
    """Public IPv4 and IPv6 addresses of one AWS account, or of every account of an Organization."""

    VENDOR = Vendor.AWS

    def __init__(self, cfg: AwsCollectorConfig, *, settings: CollectorSettings) -> None:
        super().__init__(cfg, settings=settings)
        timeout = min(settings.request_timeout, settings.scope_timeout)
        self._config = Config(
            retries={"mode": "adaptive", "total_max_attempts": settings.max_attempts},
            connect_timeout=timeout,
            read_timeout=timeout,
        )
        self._hub: Credentials | None = None
        self._home = _HOME_REGION
        self._members: dict[str, Credentials] = {}
        self._sessions: dict[Credentials | None, botocore.session.Session] = {}
        self._sessions_lock = threading.Lock()

    def scopes(self) -> Iterator[Scope]:
        """Accounts (the caller's, or the Organization's ACTIVE ones) times enabled regions."""
        deadline = self._settings.deadline()
        what = f"{self.name}: listing accounts and regions"
        with _translated(what):
            session = self._session(self._hub_credentials())
            accounts = self._accounts(session, deadline, what)
            regions = self._regions(session, deadline, what)
        for account in accounts:
            for region in regions:
                yield Scope(collector=self.name, vendor=Vendor.AWS, account=account, region=region)

    def collect(self, scope: Scope) -> Iterator[Discovery]:
        """Elastic IPs and ENI addresses of one (account, region), each IP once."""
        deadline = self._settings.deadline()
        what = f"{self.name}: account {scope.account} region {scope.region}"
        with _translated(what):
            session = self._session(self._scope_credentials(scope.account))
            ec2 = cast("EC2Client", self._client(session, "ec2", scope.region, deadline, what))
            try:
                found = _read(ec2, scope)
            except ClientError as exc:
                if _code(exc) in _REGION_DENIED and not self._region_enabled(
                    session, scope.region, deadline, what
                ):
                    raise failures.ScopeDenied(
                        f"{what}: region not enabled for the account ({_code(exc)})",
                        reason=Reason.REGION_DISABLED,
                    ) from exc
                raise
        yield from found

    # --- credentials and clients ---------------------------------------------------------------

    def _session(self, credentials: Credentials | None) -> botocore.session.Session:
        """The session of ``credentials`` (one per account), sharing the process's model cache.

        A session costs ~13 ms of CPU to build; one per scope was most of a large first sync.
        Sessions are not thread-safe, so clients are only ever made under ``_CREATE`` (the
        clients themselves are).
        """
        with self._sessions_lock:
            session = self._sessions.get(credentials)
            if session is None:
                session = botocore.session.Session(profile=self._cfg.profile)
                session.register_component("data_loader", _models())
                if credentials is not None:
                    session.register_component(
                        "credential_provider", CredentialResolver([_Shared(credentials)])
                    )
                self._sessions[credentials] = session
            return session

    def _client(
        self,
        session: botocore.session.Session,
        service: str,
        region: str,
        deadline: ScopeDeadline | None,
        what: str,
    ) -> BaseClient:
        with _CREATE:
            client = session.create_client(
                service,
                region_name=region,
                endpoint_url=self._cfg.endpoint_url,
                config=self._config,
            )
        if deadline is not None:
            # Checked before every HTTP attempt, retries included, so a scope that keeps failing
            # stops near scope_timeout instead of after max_attempts x request_timeout per call.
            # First, so it runs before adaptive mode's rate limiter waits for a token.
            client.meta.events.register_first("before-send", _deadline_guard(deadline, what))
        return client

    def _hub_credentials(self) -> Credentials:
        """The base chain's credentials, or ``role_arn`` assumed from them; resolved once."""
        with self._lock:
            if self._hub is None:
                base_session = self._session(None)
                self._home = base_session.get_config_variable("region") or _HOME_REGION
                base = base_session.get_credentials()
                if base is None:
                    raise failures.CollectorError(
                        f"{self.name}: no AWS credentials found (environment, profile, web "
                        "identity, container or instance role)",
                        reason=Reason.AUTH,
                    )
                if self._cfg.role_arn is not None:
                    base = self._assumed(base, self._cfg.role_arn, self._cfg.external_id)
                self._hub = base
            return self._hub

    def _scope_credentials(self, account: str) -> Credentials:
        hub = self._hub_credentials()
        org = self._cfg.organization
        if org is None:
            return hub
        with self._lock:
            if account not in self._members:
                role = f"arn:aws:iam::{account}:role/{org.role_name}"
                self._members[account] = self._assumed(hub, role, org.external_id)
            return self._members[account]

    def _assumed(self, source: Credentials, role_arn: str, external_id: str | None) -> Credentials:
        """Refreshable credentials for ``role_arn``: AssumeRole on first use and near expiry."""
        sts = cast("STSClient", self._client(self._session(source), "sts", self._home, None, ""))
        request: AssumeRoleRequestTypeDef = {
            "RoleArn": role_arn,
            "RoleSessionName": self._cfg.session_name,
        }
        if external_id is not None:
            request["ExternalId"] = external_id

        def refresh() -> dict[str, str]:
            creds = sts.assume_role(**request)["Credentials"]
            return {
                "access_key": creds["AccessKeyId"],
                "secret_key": creds["SecretAccessKey"],
                "token": creds["SessionToken"],
                "expiry_time": creds["Expiration"].isoformat(),
            }

        return DeferredRefreshableCredentials(refresh_using=refresh, method="sts-assume-role")

    # --- enumeration ---------------------------------------------------------------------------

    def _accounts(
        self, session: botocore.session.Session, deadline: ScopeDeadline, what: str
    ) -> list[str]:
        org = self._cfg.organization
        if org is None:
            sts = cast("STSClient", self._client(session, "sts", self._home, deadline, what))
            return [sts.get_caller_identity()["Account"]]
        orgs = cast(
            "OrganizationsClient",
            self._client(session, "organizations", self._home, deadline, what),
        )
        listed = [
            a
            for page in orgs.get_paginator("list_accounts").paginate()
            for a in page.get("Accounts", [])
        ]
        if not listed:
            # An organization always holds its management account; nothing at all means the
            # caller sees no organization, which must not pass for "no addresses anywhere".
            raise failures.CollectorError(
                f"{what}: ListAccounts returned no accounts", reason=Reason.NOT_FOUND
            )
        return sorted(
            a["Id"]
            for a in listed
            # State is the newer field; Status is kept for older partitions and emulators.
            if "Id" in a
            and (a.get("State") or a.get("Status")) == "ACTIVE"
            and a["Id"] not in org.exclude
        )

    def _regions(
        self, session: botocore.session.Session, deadline: ScopeDeadline, what: str
    ) -> list[str]:
        if self._cfg.regions != "all":
            return list(dict.fromkeys(self._cfg.regions))
        ec2 = cast("EC2Client", self._client(session, "ec2", self._home, deadline, what))
        regions = ec2.describe_regions(AllRegions=True).get("Regions", [])
        return sorted(
            r["RegionName"]
            for r in regions
            if "RegionName" in r and r.get("OptInStatus", "opt-in-not-required") in _ENABLED
        )

    def _region_enabled(
        self, session: botocore.session.Session, region: str, deadline: ScopeDeadline, what: str
    ) -> bool:
        """Ask the account from its home region; True when it cannot tell, so nothing hides."""
        ec2 = cast("EC2Client", self._client(session, "ec2", self._home, deadline, what))
        try:
            found = ec2.describe_regions(AllRegions=True, RegionNames=[region]).get("Regions", [])
        except (ClientError, BotoCoreError):
            return True
        statuses = {r.get("RegionName"): r.get("OptInStatus") for r in found}
        return statuses.get(region, "opt-in-not-required") in _ENABLED


# The only operations syncd calls. botocore builds a client class with one method per operation
# of the model on every create_client: ~15 ms of CPU for EC2's 830, once per (account, region),
# which was most of a large first sync's CPU. Served a model with just these, it builds three.
_OPERATIONS: dict[str, frozenset[str]] = {
    "ec2": frozenset({"DescribeAddresses", "DescribeNetworkInterfaces", "DescribeRegions"}),
    "sts": frozenset({"AssumeRole", "GetCallerIdentity"}),
    "organizations": frozenset({"ListAccounts"}),
}


class _Models(botocore.loaders.Loader):
    """botocore's packaged service models, restricted to ``_OPERATIONS``.

    Shapes, endpoints, paginators and rules are the SDK's own, untouched: only the operations
    syncd never calls are left out of the clients it makes.
    """

    def load_service_model(
        self, service_name: str, type_name: str, api_version: str | None = None
    ) -> Any:
        model = super().load_service_model(service_name, type_name, api_version)
        keep = _OPERATIONS.get(service_name)
        if type_name != "service-2" or keep is None:
            return model
        return {**model, "operations": {k: v for k, v in model["operations"].items() if k in keep}}


@functools.cache
def _models() -> botocore.loaders.Loader:
    """The process's one model loader, shared by every session.

    Loading the EC2 model costs 0.15-0.4 s of CPU. Sessions are made per account and collectors
    per run, so without one process-wide loader each would pay it again. It caches nothing but
    the SDK's own read-only data files.
    """
    return _Models()


class _Shared(CredentialProvider):
    """Hands every per-scope session the same credentials object (thread-safe when refreshed)."""

    METHOD = "syncd-shared"
    CANONICAL_NAME = "custom-syncd-shared"

    def __init__(self, credentials: Credentials) -> None:
        super().__init__()
        self._credentials = credentials

    def load(self) -> Credentials:
        return self._credentials


def _deadline_guard(deadline: ScopeDeadline, what: str) -> Callable[..., None]:
    def guard(**_: object) -> None:
        deadline.left(what)

    return guard


# --- reading one scope -------------------------------------------------------------------------


def _read(ec2: EC2Client, scope: Scope) -> list[Discovery]:
    """EIPs first, so an IP seen both as an EIP and on its ENI is reported as the EIP."""
    found: dict[IPAddress, Address] = {}
    skips: list[Skip] = []
    # describe_addresses has no paginator and no MaxResults: one response holds every EIP.
    for eip in ec2.describe_addresses().get("Addresses", []):
        text = eip.get("PublicIp")
        if text:
            resource = f"eip/{eip.get('AllocationId') or text}"
            _add(found, skips, scope, text, resource=resource, tags=eip.get("Tags"))
    pages = ec2.get_paginator("describe_network_interfaces").paginate(
        PaginationConfig={"PageSize": 1000}
    )
    for page in pages:
        for eni in page.get("NetworkInterfaces", []):
            resource = f"eni/{eni.get('NetworkInterfaceId', '')}"
            for text in _eni_ips(eni):
                _add(found, skips, scope, text, resource=resource, tags=eni.get("TagSet"))
    return [*found.values(), *skips]


def _eni_ips(eni: NetworkInterfaceTypeDef) -> Iterator[str]:
    """The primary public IPv4, public IPv4s of secondary private IPs, and every IPv6 address."""
    primary = eni.get("Association", {}).get("PublicIp")
    if primary:
        yield primary
    for private in eni.get("PrivateIpAddresses", []):
        public = private.get("Association", {}).get("PublicIp")
        if public:
            yield public
    for v6 in eni.get("Ipv6Addresses", []):
        text = v6.get("Ipv6Address")
        if text:
            yield text


def _add(
    found: dict[IPAddress, Address],
    skips: list[Skip],
    scope: Scope,
    text: str,
    *,
    resource: str,
    tags: Iterable[TagTypeDef] | None,
) -> None:
    try:
        ip = parse_ip(text)
    except ValueError:
        skips.append(skip_in(scope, text, SkipReason.INVALID_IP, resource))
        return
    if ip in found:
        return
    found[ip] = address_in(
        scope,
        ip,
        resource=resource,
        tags={t["Key"]: t.get("Value", "") for t in tags or () if "Key" in t},
    )


# --- the error boundary ------------------------------------------------------------------------


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "")


@contextmanager
def _translated(what: str) -> Iterator[None]:
    """Turn every botocore failure into a ``CollectorError`` naming the scope, never the secret."""
    try:
        yield
    except ClientError as exc:
        raise _client_error(exc, what) from exc
    except (BotoCoreError, ResponseParserError) as exc:
        raise failures.by_type(what, exc, _BOTO_ERRORS) from exc


# botocore's failures without an answer from AWS (timeouts are HTTPClientErrors: first).
_BOTO_ERRORS: failures.ByType = (
    ((ConnectTimeoutError, ReadTimeoutError), Reason.TIMEOUT, "no answer in time ({type})"),
    ((BotoConnectionError, HTTPClientError), Reason.UNREACHABLE, "endpoint unreachable ({type})"),
    (
        (NoCredentialsError, PartialCredentialsError, CredentialRetrievalError, ProfileNotFound),
        Reason.AUTH,
        "credentials unavailable ({type})",
    ),
    (ResponseParserError, Reason.MALFORMED, "unreadable response ({type})"),
)


def _client_error(exc: ClientError, what: str) -> failures.CollectorError:
    """Classify by Error.Code, then by HTTP status. AWS's message text is not echoed."""
    code = _code(exc)
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    reason = _CODES.get(code) or failures.from_status(status)
    message = f"{what}: {exc.operation_name} failed with {code or 'no error code'} (HTTP {status})"
    return failures.CollectorError(message, reason=reason)
