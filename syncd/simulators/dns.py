"""A recursive DNS resolver's answers on loopback (UDP and TCP), from a table of names.

It answers as a recursive resolver does: an A or AAAA question for a name that is a CNAME gets
the whole chain (every CNAME, then the addresses) in one answer, NXDOMAIN for a name it does not
hold, NOERROR with no data for a name without that type. Faults per name: ``servfail`` (answer
SERVFAIL), ``refuse`` (REFUSED) and ``silent`` (no answer at all). ``latency`` delays every
answer. Built on dnslib's server; imports nothing from the rest of syncd.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from typing import Any

from dnslib import AAAA, CNAME, QTYPE, RCODE, RR, A, DNSError, DNSRecord
from dnslib.server import DNSLogger, DNSServer

MAX_CHAIN = 16  # a loop in the table is cut here, as a resolver gives up on one


class DnsSimulator:
    """Names -> addresses or a CNAME target; start() on an ephemeral loopback port."""

    def __init__(self, *, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0) -> None:
        self.latency = latency
        self._host = host
        self._port = port
        self._lock = threading.Lock()
        self._addresses: dict[str, list[str]] = {}
        self._cnames: dict[str, str] = {}
        self._faults: dict[str, str] = {}
        self._udp: DNSServer | None = None
        self._tcp: DNSServer | None = None
        self.queries = 0

    # --- control ------------------------------------------------------------------------------

    def set_addresses(self, name: str, *addresses: str) -> None:
        for a in addresses:
            ipaddress.ip_address(a)  # a typo in a test fails here, not as a strange answer
        with self._lock:
            self._cnames.pop(_key(name), None)
            self._addresses[_key(name)] = list(addresses)

    def set_cname(self, name: str, target: str) -> None:
        with self._lock:
            self._addresses.pop(_key(name), None)
            self._cnames[_key(name)] = _key(target)

    def remove(self, name: str) -> None:
        with self._lock:
            self._addresses.pop(_key(name), None)
            self._cnames.pop(_key(name), None)

    def fault(self, name: str, kind: str | None) -> None:
        """``servfail``, ``refuse``, ``silent``, or None to answer normally again."""
        if kind not in (None, "servfail", "refuse", "silent"):
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            if kind is None:
                self._faults.pop(_key(name), None)
            else:
                self._faults[_key(name)] = kind

    # --- serving ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        if self._udp is None:
            raise RuntimeError("start() the simulator first")
        return int(self._udp.server.server_address[1])

    @property
    def nameserver(self) -> str:
        """What ``resolver.nameservers`` takes: ``host:port``."""
        return f"{self._host}:{self.port}"

    def start(self) -> DnsSimulator:
        logger = DNSLogger(log="-recv,-send,-request,-reply,-truncated,-data,-error", prefix=False)
        # UDP and TCP on one port: an ephemeral UDP port may be taken for TCP, so try again.
        for _ in range(50):
            udp = DNSServer(self, address=self._host, port=self._port, logger=logger)
            port = int(udp.server.server_address[1])
            try:
                tcp = DNSServer(self, address=self._host, port=port, tcp=True, logger=logger)
            except OSError:
                udp.server.server_close()
                if self._port:
                    raise
                continue
            self._udp, self._tcp = udp, tcp
            udp.start_thread()
            tcp.start_thread()
            return self
        raise OSError(f"no free port for UDP and TCP together on {self._host}")

    def stop(self) -> None:
        for server in (self._udp, self._tcp):
            if server is not None:
                server.server.shutdown()
                server.server.server_close()

    def __enter__(self) -> DnsSimulator:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    # dnslib calls this for every question (on its own thread per request).
    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        if self.latency:
            time.sleep(self.latency)
        reply = request.reply()
        qname = _key(str(request.q.qname))
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries += 1
            fault = self._faults.get(qname)
            if fault == "silent":
                raise DNSError(f"silent for {qname}")  # the handler sends nothing
            if fault in ("servfail", "refuse"):
                reply.header.rcode = RCODE.SERVFAIL if fault == "servfail" else RCODE.REFUSED
                return reply
            return self._answer(reply, qname, qtype)

    def _answer(self, reply: DNSRecord, qname: str, qtype: str) -> DNSRecord:
        name = qname
        for _ in range(MAX_CHAIN + 1):
            if name in self._cnames:
                target = self._cnames[name]
                reply.add_answer(RR(name + ".", QTYPE.CNAME, rdata=CNAME(target + "."), ttl=60))
                if self._faults.get(target) in ("servfail", "refuse", "silent"):
                    reply.header.rcode = RCODE.SERVFAIL
                    return reply
                name = target
                continue
            if name in self._addresses:
                for address in self._addresses[name]:
                    version = ipaddress.ip_address(address).version
                    if qtype == "A" and version == 4:
                        reply.add_answer(RR(name + ".", QTYPE.A, rdata=A(address), ttl=60))
                    elif qtype == "AAAA" and version == 6:
                        reply.add_answer(RR(name + ".", QTYPE.AAAA, rdata=AAAA(address), ttl=60))
                return reply
            reply.header.rcode = RCODE.NXDOMAIN  # also where a chain ends in a missing name
            return reply
        return reply  # a loop: the answer holds the repeating chain, as some resolvers give it


def _key(name: str) -> str:
    return name.strip().rstrip(".").lower()
