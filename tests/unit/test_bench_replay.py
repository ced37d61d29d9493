"""The benchmark's replayer (bench/replay.py) answers as the simulator behind it did.

A real replayer process in front of the Azure simulator (TLS, absolute ``nextLink`` paging, a
bearer token required), driven over HTTPS with httpx: a request is passed on once and then
answered from memory, byte for byte; the simulator's address in an answer becomes the
replayer's; ``forget()`` passes the next request on again. If the replayer confused two requests
or kept a stale answer, the benchmark would time syncd on answers the estate never gave.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.replay import Replayer, Upstream, request_key
from syncd.simulators.azure import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, AzureSimulator

SUB = "0b1f6471-1bf0-4dda-aec3-111122223333"
PIPS = f"/subscriptions/{SUB}/providers/Microsoft.Network/publicIPAddresses"
LATENCY = 0.05


@pytest.fixture(scope="module")
def azure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[AzureSimulator, Replayer]]:
    with AzureSimulator(client_secret=DEFAULT_CLIENT_SECRET, page_size=2) as sim:
        sim.add_subscription(SUB)
        for i in range(3):
            sim.add_public_ip(SUB, f"pip-{i}", location="westeurope", ip=f"20.40.0.{i + 1}")
        upstream = Upstream("azure", sim.url, str(sim.ca_file))
        workdir = tmp_path_factory.mktemp("replay")
        with Replayer("azure", [upstream], LATENCY, workdir) as replayer:
            yield sim, replayer


def _client(replayer: Replayer, sim: AzureSimulator) -> httpx.Client:
    assert replayer.ca_file is not None
    return httpx.Client(base_url=replayer.urls[sim.url], verify=replayer.ca_file, timeout=10)


def _token(http: httpx.Client, sim: AzureSimulator) -> str:
    answer = http.post(
        f"/{sim.tenant_id}/oauth2/v2.0/token",
        data={
            "grant_type": "client_credentials",
            "client_id": DEFAULT_CLIENT_ID,
            "client_secret": DEFAULT_CLIENT_SECRET,
            "scope": "https://management.azure.com/.default",
        },
    )
    assert 200 == answer.status_code, answer.text
    return str(answer.json()["access_token"])


def _pages(http: httpx.Client, token: str) -> list[dict[str, Any]]:
    """Every page of the public IP list, following ``nextLink`` as the SDK does."""
    pages = []
    url: str | None = f"{PIPS}?api-version=2024-05-01"
    while url:
        answer = http.get(url, headers={"Authorization": f"Bearer {token}"})
        assert 200 == answer.status_code, answer.text
        pages.append(answer.json())
        url = pages[-1].get("nextLink")
    return pages


def test_an_answer_is_passed_on_once_then_replayed_byte_for_byte(
    azure: tuple[AzureSimulator, Replayer],
) -> None:
    sim, replayer = azure
    replayer.forget()
    replayer.drain()
    sim.clear_requests()
    with _client(replayer, sim) as http:
        token = _token(http, sim)
        first = _pages(http, token)
        started = time.monotonic()
        again = _pages(http, _token(http, sim))
        replayed_in = time.monotonic() - started
    assert first == again
    assert ["20.40.0.1", "20.40.0.2", "20.40.0.3"] == [
        item["properties"]["ipAddress"] for page in first for item in page["value"]
    ]
    # The simulator saw the token request and both pages once; the replayer saw everything twice.
    assert 3 == len(sim.requests)
    log = replayer.drain()
    assert 3 == len(log.forwarded)
    assert 3 == log.replayed
    assert 6 == len(log.requests["azure"])
    assert replayed_in >= 3 * LATENCY  # the latency model holds for replayed answers too


def test_the_simulators_address_in_an_answer_is_the_replayers(
    azure: tuple[AzureSimulator, Replayer],
) -> None:
    sim, replayer = azure
    with _client(replayer, sim) as http:
        pages = _pages(http, _token(http, sim))
    link = str(pages[0]["nextLink"])
    assert link.startswith(replayer.urls[sim.url] + "/subscriptions/")
    assert sim.url not in link


def test_after_forget_the_estate_as_it_is_now_is_seen(
    azure: tuple[AzureSimulator, Replayer],
) -> None:
    sim, replayer = azure
    with _client(replayer, sim) as http:
        before = _pages(http, _token(http, sim))
        sim.add_public_ip(SUB, "pip-new", location="uksouth", ip="20.40.0.99")
        stale = _pages(http, _token(http, sim))
        replayer.forget()
        fresh = _pages(http, _token(http, sim))
    assert before == stale  # kept answers, as the benchmark wants between rehearsals
    ips = [i["properties"]["ipAddress"] for p in fresh for i in p["value"]]
    assert "20.40.0.99" in ips
    sim.remove_public_ip(SUB, "pip-new")
    replayer.forget()


def test_requests_differ_by_caller_not_by_signature() -> None:
    body = b"Action=DescribeAddresses&Version=2016-11-15"

    def sigv4(key: str, region: str, signature: str) -> str:
        return (
            f"AWS4-HMAC-SHA256 Credential={key}/20261208/{region}/ec2/aws4_request, "
            f"SignedHeaders=host;x-amz-date, Signature={signature}"
        )

    one = request_key("POST", "/", sigv4("AKIAONE", "us-east-1", "aa"), body)
    assert one == request_key("POST", "/", sigv4("AKIAONE", "us-east-1", "bb"), body)
    assert one != request_key("POST", "/", sigv4("AKIATWO", "us-east-1", "aa"), body)
    assert one != request_key("POST", "/", sigv4("AKIAONE", "eu-west-1", "aa"), body)
    oci = 'Signature version="1",keyId="t/u/fp",algorithm="rsa-sha256",signature="{}"'
    assert request_key("GET", "/r/x?a=1", oci.format("s1"), b"") == request_key(
        "GET", "/r/x?a=1", oci.format("s2"), b""
    )
    assert request_key("GET", "/r/x?a=1", oci.format("s1"), b"") != request_key(
        "GET", "/r/x?a=2", oci.format("s1"), b""
    )
    # A token request's body carries the time: it is matched by its path.
    assert request_key("POST", "/token", "", b"assertion=1") == request_key(
        "POST", "/token", "", b"assertion=2"
    )


def test_the_replayer_stops_with_its_context(tmp_path: Path) -> None:
    with AzureSimulator(client_secret=DEFAULT_CLIENT_SECRET) as sim:
        replayer = Replayer("azure", [Upstream("azure", sim.url, str(sim.ca_file))], 0.0, tmp_path)
        with replayer:
            url = replayer.urls[sim.url]
            ca_file = replayer.ca_file
            assert ca_file is not None
            # It answers while it runs (the simulator's own refusal of a bare request)...
            assert (
                401 == httpx.get(f"{url}{PIPS}?api-version=2024-05-01", verify=ca_file).status_code
            )
        # ...and nothing listens once it has stopped.
        with pytest.raises(httpx.ConnectError):
            httpx.get(url, verify=ca_file, timeout=2)
