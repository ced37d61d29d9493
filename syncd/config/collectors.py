"""The `collectors` section: static entries, the four clouds' scopes and the collectors' limits."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    SecretStr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from syncd.config.values import FilePath, RequestTimeout, ScopeTimeout, Section, check_url, shown
from syncd.model import Vendor


class StaticEntry(Section):
    ip: str = Field(
        description=(
            "IPv4 or IPv6 address. An IPv4-mapped IPv6 address (`::ffff:192.0.2.7`) names the "
            "IPv4 host and is mapped as that IPv4 address (`check-config` shows it so). An "
            "address with a zone index (`fe80::1%eth0`) names a local link, never a public "
            "origin, and is an error."
        )
    )
    vendor: Vendor = Field(description="`aws`, `azure`, `gcp` or `oci`.")
    region: str = Field(
        min_length=1,
        description=("The vendor's region id as Cloudflare lists it (`syncd regions`)."),
    )

    @field_validator("ip")
    @classmethod
    def _ip(cls, value: str) -> str:
        try:
            ip = ipaddress.ip_address(value.strip())
        except ValueError:
            raise ValueError(f"not an IP address: {shown(value)}") from None
        if isinstance(ip, ipaddress.IPv6Address) and ip.scope_id is not None:
            raise ValueError(
                "an address with a zone index (%interface) names a local link, never a public "
                "origin"
            )
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            # ::ffff:a.b.c.d is the IPv4 host a.b.c.d written as IPv6; Cloudflare maps it as IPv4.
            return str(ip.ipv4_mapped)
        return str(ip)


class _CollectorSection(Section):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:-]+$", description="Collector name.")


class AwsOrganization(Section):
    role_name: str = Field(
        min_length=1,
        description=("Assumed as `arn:aws:iam::<account>:role/<role_name>` in each account."),
    )
    exclude: tuple[str, ...] = Field((), description="Account ids to leave out.")
    external_id: str | None = Field(
        None, min_length=2, description="ExternalId for the member roles."
    )


class AwsCollectorConfig(_CollectorSection):
    profile: str | None = Field(
        None,
        description=("A named profile; otherwise env, web identity (IRSA), instance role, ..."),
    )
    role_arn: str | None = Field(
        None, description="Role assumed from the base credentials (refreshable)."
    )
    external_id: str | None = Field(
        None, min_length=2, description="ExternalId for `role_arn` (at least 2 characters)."
    )
    session_name: str = Field("syncd", description="RoleSessionName of assumed roles.")
    regions: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=(
            "`all`: every region `describe_regions(AllRegions=True)` reports enabled or opted in; "
            "or a list."
        ),
    )
    organization: AwsOrganization | None = Field(
        None,
        description=("Scan every ACTIVE account of the AWS Organization instead of one account."),
    )
    endpoint_url: str | None = Field(None, description="Simulators and tests only (moto).")

    @field_validator("endpoint_url")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)


class GcpCollectorConfig(_CollectorSection):
    projects: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=(
            "`all`: every ACTIVE project the credentials can see (Resource Manager search); or a "
            "list of ids."
        ),
    )
    credentials_file: FilePath | None = Field(
        None,
        description=(
            "A service-account JSON key; otherwise Application Default Credentials (including "
            "workload identity)."
        ),
    )
    global_region: str | None = Field(
        None,
        description=(
            "Global (anycast) addresses and forwarding rules have no single region and are "
            "skipped as `global_anycast` unless mapped here explicitly."
        ),
    )
    api_endpoint: str | None = Field(None, description="Simulators and tests only.")
    resource_manager_endpoint: str | None = Field(None, description="Simulators and tests only.")

    @field_validator("api_endpoint", "resource_manager_endpoint")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        return None if value is None else check_url(value)


class AzureCollectorConfig(_CollectorSection):
    subscriptions: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=("`all`: every Enabled subscription the identity can see; or a list of ids."),
    )
    tenant_id: str | None = Field(None, description="Tenant of the client credential.")
    client_id: str | None = Field(
        None,
        description=(
            "With `client_secret` or `client_certificate_path`; otherwise "
            "`DefaultAzureCredential` (environment, workload identity, managed identity, Azure "
            "CLI)."
        ),
    )
    client_secret: SecretStr | None = Field(None, description="Secret; masked everywhere.")
    client_certificate_path: FilePath | None = Field(
        None, description="PEM certificate with private key."
    )
    authority_host: str | None = Field(
        None, description="Entra ID authority (sovereign clouds; the simulator)."
    )
    base_url: str | None = Field(
        None, description=("Simulators and tests only; https only (bearer tokens need TLS).")
    )

    @field_validator("base_url", "authority_host")
    @classmethod
    def _endpoint(cls, value: str | None) -> str | None:
        # ARM needs TLS for bearer tokens even towards the simulator.
        return None if value is None else check_url(value, plain_http="never")

    @model_validator(mode="after")
    def _credential(self) -> AzureCollectorConfig:
        secret, cert = self.client_secret is not None, self.client_certificate_path is not None
        if secret and cert:
            raise ValueError("set client_secret or client_certificate_path, not both")
        if (secret or cert) and not (self.client_id and self.tenant_id):
            raise ValueError("client_secret/client_certificate_path need client_id and tenant_id")
        return self


class OciCollectorConfig(_CollectorSection):
    config_file: FilePath = Field(Path("~/.oci/config"), description="With `auth: api_key`.")
    profile: str = Field("DEFAULT", description="Profile of the config file.")
    auth: Literal[
        "api_key", "instance_principal", "resource_principal", "oke_workload_identity"
    ] = Field(
        "api_key",
        description=(
            "`api_key` (`config_file`, `profile`), `instance_principal` (the node's dynamic "
            "group), `resource_principal`, or `oke_workload_identity`: the pod's own "
            "identity on OKE (enhanced clusters), through the SDK's OKE workload identity "
            "signer (the pod's service account token, `OCI_RESOURCE_PRINCIPAL_VERSION=2.2` "
            "and `OCI_RESOURCE_PRINCIPAL_REGION` set; docs/collectors/oci.md), so a pod need "
            "not share its node's instance principal."
        ),
    )
    compartments: Literal["all"] | tuple[str, ...] = Field(
        "all",
        description=(
            "`all`: the tenancy and every ACTIVE compartment in its subtree; or a list of OCIDs."
        ),
    )
    regions: Literal["subscribed"] | tuple[str, ...] = Field(
        "subscribed",
        description=("The tenancy's region subscriptions, or a list (`us-ashburn-1`, ...)."),
    )
    service_endpoint_template: str | None = Field(
        None, description="Simulators and tests only: a URL containing `{region}`."
    )

    @field_validator("service_endpoint_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if "{region}" not in value:
            raise ValueError(f"must contain {{region}}: {shown(value)}")
        return check_url(value.replace("{region}", "region")).replace("region", "{region}", 1)


# Each cloud's SDK is an extra of the package (pyproject.toml); these modules tell whether it is
# installed without importing it.
_SDK_MODULES = {
    "aws": ("boto3",),
    "gcp": ("google.cloud.compute_v1", "google.cloud.resourcemanager_v3"),
    "azure": ("azure.mgmt.network", "azure.mgmt.subscription", "azure.identity"),
    "oci": ("oci",),
}


def installed(module: str) -> bool:
    """Whether ``module`` can be imported, without importing it."""
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package (google, azure) is not installed either
        return False


def missing_extra(vendor: str) -> str | None:
    """The extra to install for ``vendor``'s collector, or None when its SDK is installed."""
    missing = [m for m in _SDK_MODULES[vendor] if not installed(m)]
    return f"syncd[{vendor}]" if missing else None


class CollectorsConfig(Section):
    concurrency: int = Field(
        16,
        ge=1,
        le=256,
        description=(
            "Collector tasks (account x region, project, subscription, compartment x region) "
            "running at once, across all clouds."
        ),
    )
    attempts: int = Field(
        5,
        ge=1,
        le=20,
        description=(
            "Attempts per cloud API request, the first included: each SDK's own retry (backoff on "
            "throttling and 5xx) is configured from it."
        ),
    )
    scope_timeout: ScopeTimeout = Field(
        120.0,
        description=(
            "The most a failing scope may cost, its SDK retries included; it is then failed and "
            "its mappings are protected from deletion."
        ),
    )
    request_timeout: RequestTimeout = Field(
        30.0,
        description=(
            "Per cloud API request (to connect and to read), cut to what the scope has left."
        ),
    )
    static: tuple[StaticEntry, ...] = Field(
        (),
        description=(
            "Origins outside any scanned account: `{ip, vendor, region}`. A static entry wins "
            "over a discovered one for the same IP."
        ),
    )
    aws: tuple[AwsCollectorConfig, ...] = Field(
        (), description="Named AWS accounts or Organizations to scan."
    )
    gcp: tuple[GcpCollectorConfig, ...] = Field(
        (), description="Named Google Cloud projects to scan."
    )
    azure: tuple[AzureCollectorConfig, ...] = Field(
        (), description="Named Azure subscriptions to scan."
    )
    oci: tuple[OciCollectorConfig, ...] = Field((), description="Named OCI tenancies to scan.")

    def names(self) -> list[str]:
        named: list[_CollectorSection] = [*self.aws, *self.gcp, *self.azure, *self.oci]
        return (["static"] if self.static else []) + [c.name for c in named]

    @field_validator("aws", "gcp", "azure", "oci")
    @classmethod
    def _sdk_installed(
        cls, value: tuple[_CollectorSection, ...], info: ValidationInfo
    ) -> tuple[_CollectorSection, ...]:
        extra = missing_extra(str(info.field_name)) if value else None
        if extra is not None:
            raise ValueError(
                f"this cloud's SDK is not installed: install the extra, pip install '{extra}' "
                "(or 'syncd[all]'; the container image: --build-arg EXTRAS=...)"
            )
        return value

    @model_validator(mode="after")
    def _unique(self) -> CollectorsConfig:
        names = self.names()
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"collector names must be unique; repeated: {dupes}")
        return self
