"""What the integration tests share: each cloud's simulator, started once per test module.

A module seeds and resets the simulator in its own ``sim`` fixture; starting, stopping and the
simulator's shape (pages of two, so every list takes several requests) are defined here once.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from syncd.simulators.azure import AzureSimulator
from syncd.simulators.base import SimulatorServer
from syncd.simulators.gcp import GcpSimulator
from syncd.simulators.oci import OciSimulator

OCI_TENANCY = "ocid1.tenancy.oc1..aaaaaaaatenancy"
_S = TypeVar("_S", bound=SimulatorServer)


def _serving(simulator: _S) -> Iterator[_S]:
    simulator.start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="module")
def azure_server() -> Iterator[AzureSimulator]:
    """Azure Resource Manager and Entra ID over TLS on 127.0.0.1:<ephemeral>."""
    yield from _serving(AzureSimulator())


@pytest.fixture(scope="module")
def gcp_server() -> Iterator[GcpSimulator]:
    """Compute Engine and Resource Manager on 127.0.0.1:<ephemeral>, pages of two."""
    yield from _serving(GcpSimulator(page_size=2))


@pytest.fixture(scope="module")
def oci_server() -> Iterator[OciSimulator]:
    """OCI's identity and networking APIs for ``OCI_TENANCY``, pages of two."""
    yield from _serving(OciSimulator(tenancy=OCI_TENANCY, page_size=2))
