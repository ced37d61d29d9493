"""The resolver (dnspython) against a real DNS server on loopback (the DNS simulator)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from syncd.model import ResolutionStatus, parse_ip
from syncd.simulators.dns import DnsSimulator
from syncd.sources.resolver import Resolver


def resolver(dns: DnsSimulator, **kw: Any) -> Resolver:
    return Resolver(nameservers=[("127.0.0.1", dns.port)], **{"timeout": 1.0, **kw})


def test_addresses_of_both_families_and_the_chain_followed(dns_sim):
    dns_sim.set_cname("www.example.net", "lb.example.net")
    dns_sim.set_cname("lb.example.net", "edge.example.net")
    dns_sim.set_addresses("edge.example.net", "192.0.2.1", "2001:db8::1")
    with resolver(dns_sim) as r:
        (res,) = r.resolve_all(["WWW.Example.Net."]).values()
    assert ResolutionStatus.RESOLVED == res.status
    assert "www.example.net" == res.name
    assert (parse_ip("192.0.2.1"), parse_ip("2001:db8::1")) == res.addresses
    assert ("lb.example.net", "edge.example.net") == res.chain


def test_nxdomain_and_no_data_are_unresolved_not_failed(dns_sim):
    dns_sim.set_cname("dangling.example.net", "gone.example.net")
    dns_sim.set_addresses("v4only.example.net", "192.0.2.1")
    dns_sim.set_cname("empty.example.net", "v6less.example.net")
    dns_sim.set_addresses("v6less.example.net")
    with resolver(dns_sim) as r:
        got = r.resolve_all(["nope.example.net", "dangling.example.net", "empty.example.net"])
        v4 = r.resolve_all(["v4only.example.net"])["v4only.example.net"]
    assert {ResolutionStatus.UNRESOLVED} == {g.status for g in got.values()}
    assert "NXDOMAIN" == got["nope.example.net"].error
    assert "no A/AAAA data" == got["empty.example.net"].error
    assert ("v6less.example.net",) == got["empty.example.net"].chain
    assert ResolutionStatus.RESOLVED == v4.status, "a name with only A data resolves"


@pytest.mark.parametrize(
    ("fault", "said"), [("servfail", "SERVFAIL"), ("refuse", "REFUSED"), ("silent", "timeout")]
)
def test_servfail_refused_and_silence_fail_naming_the_error(dns_sim, fault, said):
    dns_sim.set_addresses("app.example.net", "192.0.2.1")
    dns_sim.fault("app.example.net", fault)
    with resolver(dns_sim, timeout=0.5) as r:
        res = r.resolve_all(["app.example.net"])["app.example.net"]
    assert ResolutionStatus.FAILED == res.status
    assert said in res.error


def test_a_timeout_is_per_name_a_and_aaaa_together(dns_sim):
    dns_sim.set_addresses("quiet.example.net", "192.0.2.1")
    dns_sim.fault("quiet.example.net", "silent")
    with resolver(dns_sim, timeout=0.6) as r:
        start = time.monotonic()
        r.resolve_all(["quiet.example.net"])
        elapsed = time.monotonic() - start
    assert elapsed < 0.6 + 0.5


def test_a_loop_fails_and_names_the_loop(dns_sim):
    dns_sim.set_cname("a.example.net", "b.example.net")
    dns_sim.set_cname("b.example.net", "a.example.net")
    with resolver(dns_sim) as r:
        res = r.resolve_all(["a.example.net"])["a.example.net"]
    assert (ResolutionStatus.FAILED, "CNAME loop") == (res.status, res.error)
    assert ("b.example.net", "a.example.net") == res.chain


def test_no_resolver_listening_is_a_failure_not_a_crash():
    with Resolver(nameservers=[("127.0.0.1", 9)], timeout=0.3) as r:
        res = r.resolve_all(["app.example.net"])["app.example.net"]
    assert ResolutionStatus.FAILED == res.status


@pytest.mark.parametrize("resolv_conf", ["", "search example.net\n", None])
def test_no_system_resolver_fails_each_name_naming_the_file(tmp_path, resolv_conf):
    # A container without /etc/resolv.conf, or one naming no nameserver, and no `nameservers`
    # configured: every name fails (the run exits 1, nothing is deleted), nothing crashes.
    path = tmp_path / "resolv.conf"
    if resolv_conf is not None:
        path.write_text(resolv_conf)
    with Resolver(system_config=str(path), timeout=1.0) as r:
        got = r.resolve_all(["lb.example.net", "www.example.net"])
    assert {ResolutionStatus.FAILED} == {g.status for g in got.values()}
    assert all(f"no resolver configured ({path})" in g.error for g in got.values())


def test_each_name_is_asked_once_per_run_however_often_it_is_wanted(dns_sim):
    for n in range(20):
        dns_sim.set_addresses(f"n{n}.example.net", f"192.0.2.{n + 1}")
    names = [f"n{n}.example.net" for n in range(20)]
    with resolver(dns_sim) as r:
        threads = [threading.Thread(target=r.resolve_all, args=(names,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        again = r.resolve_all([*names, *names])
        assert 20 == r.asked
    assert 20 == len(again)
    assert 40 == dns_sim.queries, "A and AAAA once per name"


def test_concurrency_bounds_the_names_in_flight():
    with DnsSimulator(latency=0.1) as dns:
        for n in range(8):
            dns.set_addresses(f"n{n}.example.net", "192.0.2.1")
        with Resolver(nameservers=[("127.0.0.1", dns.port)], concurrency=2, timeout=2) as r:
            start = time.monotonic()
            r.resolve_all([f"n{n}.example.net" for n in range(8)])
            elapsed = time.monotonic() - start
    # 8 names, 2 queries each of 0.1 s, two at a time: at least 0.8 s; all at once: 0.2 s.
    assert elapsed >= 0.8
