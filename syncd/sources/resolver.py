"""Names to addresses, through a real DNS resolver (dnspython), for CNAME and pool origins.

A ``Resolver`` lives for one run: each distinct name is asked at most once (A and AAAA), on a
bounded pool of ``concurrency`` threads, and every outcome comes back as a ``NameResolution`` value:

- ``resolved``: addresses, and the CNAME chain the resolver followed to reach them;
- ``unresolved``: NXDOMAIN, or the name exists without A/AAAA data (a dangling record);
- ``failed``: timeout, SERVFAIL, REFUSED, no resolver reachable, a chain over the limit or a
  loop. The caller treats it as an origin it cannot see this run (no deletion through it).

Nothing here raises for an answer; it never touches Cloudflare or its rate limit.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

import dns.exception
import dns.message
import dns.name
import dns.nameserver
import dns.rcode
import dns.rdatatype
import dns.resolver

from syncd.config import ResolverConfig
from syncd.model import NameResolution, ResolutionStatus, dns_name, parse_ip

_RECORD_TYPES = ("A", "AAAA")
_MAX_CHAIN = 32  # names kept from a runaway answer, for the report


class Resolver:
    """One run's resolver: at most ``concurrency`` names in flight, each name resolved once.

    Shared by every zone of the run (zones read concurrently); ``close()`` ends its threads.
    """

    def __init__(
        self,
        *,
        nameservers: Sequence[tuple[str, int]] = (),
        timeout: float = 5.0,
        concurrency: int = 32,
        system_config: str = "/etc/resolv.conf",
    ) -> None:
        """``nameservers`` empty: the system's resolvers, read from ``system_config``."""
        self._timeout = timeout
        self._futures: dict[str, Future[NameResolution]] = {}
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max(1, concurrency), thread_name_prefix="syncd-dns")
        self._setup_error = ""
        self._resolver: dns.resolver.Resolver | None = None
        try:
            resolver = dns.resolver.Resolver(filename=system_config, configure=not nameservers)
        except dns.resolver.NoResolverConfiguration as exc:
            self._setup_error = f"no resolver configured ({system_config}): {exc}"
            return
        if nameservers:
            resolver.nameservers = [
                dns.nameserver.Do53Nameserver(host, port) for host, port in nameservers
            ]
        resolver.timeout = timeout
        resolver.lifetime = timeout
        resolver.cache = None
        self._resolver = resolver

    @classmethod
    def configured(cls, cfg: ResolverConfig) -> Resolver:
        """The run's resolver, as the ``resolver`` section says."""
        return cls(nameservers=cfg.addresses, timeout=cfg.timeout, concurrency=cfg.concurrency)

    def __enter__(self) -> Resolver:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def resolve_all(self, names: Iterable[str]) -> dict[str, NameResolution]:
        """Every name's resolution (asked now unless already asked this run)."""
        wanted = {dns_name(n) for n in names}
        with self._lock:
            futures = {}
            for name in sorted(wanted):
                if name not in self._futures:
                    self._futures[name] = self._pool.submit(self._resolve, name)
                futures[name] = self._futures[name]
        return {name: f.result() for name, f in futures.items()}

    @property
    def asked(self) -> int:
        """Distinct names asked this run."""
        with self._lock:
            return len(self._futures)

    def _resolve(self, name: str) -> NameResolution:
        if self._resolver is None:
            return NameResolution(
                name=name, status=ResolutionStatus.FAILED, error=self._setup_error
            )
        # One deadline for the name: AAAA gets what A left of ``timeout``; a failed A ends it.
        deadline = time.monotonic() + self._timeout
        parts: list[NameResolution] = []
        for rdtype in _RECORD_TYPES:
            left = deadline - time.monotonic()
            if left <= 0:
                parts.append(_timed_out(name, rdtype, self._timeout))
                break
            parts.append(_query(self._resolver, name, rdtype, left))
            if parts[-1].status is ResolutionStatus.FAILED:
                break
        chain = max((p.chain for p in parts), key=len)
        failed = [p for p in parts if p.status is ResolutionStatus.FAILED]
        if failed:
            error = "; ".join(sorted({p.error for p in failed}))
            return NameResolution(
                name=name, status=ResolutionStatus.FAILED, error=error, chain=chain
            )
        addresses = tuple(a for p in parts for a in p.addresses)
        if addresses:
            return NameResolution(
                name=name, status=ResolutionStatus.RESOLVED, addresses=addresses, chain=chain
            )
        error = "; ".join(sorted({p.error for p in parts}))
        return NameResolution(
            name=name, status=ResolutionStatus.UNRESOLVED, chain=chain, error=error
        )


def _timed_out(name: str, rdtype: str, timeout: float) -> NameResolution:
    return NameResolution(
        name=name,
        status=ResolutionStatus.FAILED,
        error=f"{rdtype}: no answer within {timeout:g}s (timeout)",
    )


def _query(
    resolver: dns.resolver.Resolver, name: str, rdtype: str, lifetime: float
) -> NameResolution:
    """One query type; the status, as for the whole name."""
    try:
        answer = resolver.resolve(name, rdtype, search=False, lifetime=lifetime)
    except dns.resolver.NXDOMAIN:
        return NameResolution(name=name, status=ResolutionStatus.UNRESOLVED, error="NXDOMAIN")
    except dns.resolver.NoAnswer as exc:
        response = exc.kwargs.get("response")
        chain = _chain_of(response, name) if isinstance(response, dns.message.Message) else ()
        return NameResolution(
            name=name, status=ResolutionStatus.UNRESOLVED, chain=chain, error="no A/AAAA data"
        )
    except dns.resolver.NoNameservers as exc:
        return _no_nameservers(name, rdtype, exc)
    except dns.resolver.LifetimeTimeout:
        return _timed_out(name, rdtype, resolver.lifetime)
    except dns.exception.DNSException as exc:
        return NameResolution(
            name=name, status=ResolutionStatus.FAILED, error=f"{rdtype}: {type(exc).__name__}"
        )
    addresses = tuple(parse_ip(r.to_text()) for r in answer)
    chain = tuple(dns_name(str(rrset[0].target)) for rrset in answer.chaining_result.cnames)
    return NameResolution(
        name=name, status=ResolutionStatus.RESOLVED, addresses=addresses, chain=chain
    )


def _no_nameservers(name: str, rdtype: str, exc: dns.resolver.NoNameservers) -> NameResolution:
    """SERVFAIL, REFUSED, unreachable servers, or an answer whose CNAMEs loop or run on."""
    errors = exc.kwargs.get("errors") or []
    for _server, _tcp, _port, error, response in errors:
        if isinstance(error, dns.message.ChainTooLong) and response is not None:
            chain = _chain_of(response, name)
            looped = len(set(chain)) < len(chain) or name in chain
            what = "CNAME loop" if looped else "CNAME chain too long for the resolver"
            return NameResolution(
                name=name, status=ResolutionStatus.FAILED, chain=chain, error=what
            )
    details = sorted(
        {_describe(server, error, response) for server, _, _, error, response in errors}
    )
    text = "; ".join(details) or "no nameserver answered"
    return NameResolution(name=name, status=ResolutionStatus.FAILED, error=f"{rdtype}: {text}")


def _describe(server: str, error: object, response: dns.message.Message | None) -> str:
    if response is not None:
        return f"{server} answered {dns.rcode.to_text(response.rcode())}"
    return f"{server}: {type(error).__name__}: {error}"


def _chain_of(response: dns.message.Message, name: str) -> tuple[str, ...]:
    """The CNAME targets in ``response`` from ``name`` on, stopping at the first repeat."""
    targets = {
        dns_name(str(rrset.name)): dns_name(str(rrset[0].target))
        for rrset in response.answer
        if rrset.rdtype == dns.rdatatype.CNAME and len(rrset)
    }
    chain: list[str] = []
    current = dns_name(name)
    while current in targets:
        current = targets[current]
        chain.append(current)
        if current in chain[:-1] or current == dns_name(name) or len(chain) > _MAX_CHAIN:
            break
    return tuple(chain)
