"""Normalization: canonical IP text and the public-address rules."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd.model import canonical, parse_ip
from syncd.plan import non_public_reason


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2001:DB8:0:0::1", "2001:db8::1"),
        ("2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"),
        ("2001:db8:0:1:0:0:0:1", "2001:db8:0:1::1"),
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
        ("2001:db8::1:0:1", "2001:db8::1:0:1"),
        (" 192.0.2.1 ", "192.0.2.1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
    ],
)
def test_canonical_text_is_rfc5952(text: str, expected: str):
    assert expected == canonical(parse_ip(text))


@pytest.mark.parametrize("text", ["192.0.2.01", "300.1.1.1", "2001:db8::g", "", "example.com"])
def test_bad_ip_text_names_the_value(text: str):
    with pytest.raises(ValueError, match="not an IP address") as info:
        parse_ip(text)
    assert repr(text) in str(info.value)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("10.1.2.3", "private"),
        ("172.16.0.1", "private"),
        ("192.168.1.1", "private"),
        ("127.0.0.1", "loopback"),
        ("169.254.1.1", "link-local"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
        ("240.0.0.1", "reserved"),
        ("100.64.0.1", "shared address space (100.64.0.0/10)"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("::1", "loopback"),
        ("ff02::1", "multicast"),
        ("::ffff:8.8.8.8", "IPv4-mapped IPv6 address (map the IPv4 address instead)"),
    ],
)
def test_non_public_addresses_are_named(text: str, reason: str):
    assert reason == non_public_reason(ipaddress.ip_address(text))


@pytest.mark.parametrize(
    "text",
    [
        "8.8.8.8",
        "34.120.1.1",
        "2600:1f18::1",
        "192.0.2.5",
        "198.51.100.7",
        "203.0.113.9",
        "2001:db8::5",
    ],
)
def test_public_and_documentation_addresses_are_accepted(text: str):
    assert "" == non_public_reason(ipaddress.ip_address(text))


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        # The table is one sorted key space, IPv6 offset past IPv4: the same integer names a
        # different range in each family, and the edges between the two stay where they are.
        (ipaddress.IPv4Address(int(ipaddress.IPv4Address("10.0.0.1"))), "private"),
        (ipaddress.IPv6Address(int(ipaddress.IPv4Address("10.0.0.1"))), "reserved"),
        (ipaddress.IPv4Address(int(ipaddress.IPv4Address("8.8.8.8"))), ""),
        (ipaddress.IPv6Address(int(ipaddress.IPv4Address("8.8.8.8"))), "reserved"),
        (ipaddress.IPv4Address(0), "unspecified"),
        (ipaddress.IPv6Address(0), "unspecified"),
        (ipaddress.IPv4Address(1), "private"),
        (ipaddress.IPv6Address(1), "loopback"),
        (ipaddress.IPv4Address(2**32 - 1), "reserved"),
        (ipaddress.IPv6Address(2**32 - 1), "reserved"),
        (ipaddress.IPv6Address(2**128 - 1), "multicast"),
    ],
)
def test_each_family_is_read_against_its_own_ranges(ip, reason: str):
    assert reason == non_public_reason(ip)


def _python_says(ip) -> str:
    """The reference classification, straight from ipaddress's properties (slow)."""
    doc = ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "2001:db8::/32")
    if any(ip in ipaddress.ip_network(n) for n in doc):
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return "mapped"
    if ip in ipaddress.ip_network("100.64.0.0/10") if ip.version == 4 else False:
        return "shared"
    return "" if ip.is_global and not ip.is_multicast and not ip.is_reserved else "non-public"


@given(
    st.one_of(
        st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address),
        st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address),
        st.integers(0, 2**16 - 1).map(lambda n: ipaddress.IPv6Address((0x2001 << 112) + n)),
    )
)
def test_the_range_table_agrees_with_python_ipaddress(ip):
    ours = non_public_reason(ip)
    assert (ours == "") == (_python_says(ip) == ""), ours


_EDGES = [
    "01.2.3.4", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.04", "0.0.0.0", "0x1.2.3.4",
    "1.2.3.4/32", "", "::", "::1", "::ffff:01.2.3.4", "1::2::3", "1:2:3:4:5:6:7:8:9",
    "1:2:3:4:5:6:1.2.3.4", "::1.2.3.4", "::00001", "12345::1", "::ffff:1.2.3", "1.2.3.4\n",
    "\u0663.2.3.4", "1:2:3:4:5:6:7::", "FE80::A",
]  # fmt: skip


def _reference(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().split("%", 1)[0])
    except ValueError:
        return None


def _agrees(text: str) -> None:
    """parse_ip gives what ipaddress gives (same value and type), or refuses what it refuses."""
    expected = _reference(text)
    if expected is None:
        with pytest.raises(ValueError, match="not an IP address"):
            parse_ip(text)
    else:
        assert expected == parse_ip(text)
        assert type(expected) is type(parse_ip(text))


@pytest.mark.parametrize("text", _EDGES)
def test_parse_ip_accepts_exactly_what_ipaddress_accepts(text: str):
    _agrees(text)


@given(
    st.one_of(
        st.ip_addresses().map(str),
        st.ip_addresses().map(lambda ip: ip.exploded),
        st.text(alphabet="0123456789abcdefABCDEF.:x/% ", max_size=45),
    )
)
def test_parse_ip_agrees_with_ipaddress_on_any_text(text: str):
    _agrees(text)
