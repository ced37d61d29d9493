"""Answers recorded once, replayed from memory: the timed phases measure syncd, not simulators.

Issue 26: the simulators (moto above all) spent as much CPU as syncd on the same two cores, so
the benchmark's wall times measured them. A replayer stands in front of one cloud vendor's
simulators, in a process of its own, one listener per simulator. The first time it sees a
request it passes it to the simulator and keeps the answer (status, headers and body, the
simulator's address rewritten to the listener's); the same request later is answered from
memory. Every answer waits the configured latency on an event loop (no thread per request), so
the latency model holds and the replayer's own CPU per request stays a fraction of a
millisecond. ``python -m bench`` rehearses each estate's collection once, untimed, so every answer
is rendered by the simulators themselves before a phase is timed; ``forget()`` drops what was
kept when the estate changes. Every request is logged as the simulators log them, for the
latency model, and counted as replayed or forwarded.

Two requests are the same when their method, path, query, body and caller are, except token
requests (a path ending in ``/token``), whose bodies carry a fresh timestamp: those match by
path. The caller is what the ``Authorization`` header says without its signature (which changes
with the time): AWS's credential scope (access key, day, region and service: the same body goes
to every account and region) or OCI's ``keyId``. A bearer token is left out: Google's are
self-signed JWTs stamped with the time, and each listener has one bearer (the bench's service
account or principal).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import re
import ssl
import traceback
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

from syncd.simulators.base import Request, self_signed_certificate

_BOOT_TIMEOUT = 60.0
# Hop-by-hop headers (aiohttp sets its own), and per-answer ones the replayer's server adds.
_HOP = frozenset({"content-length", "transfer-encoding", "connection", "keep-alive"})
_DROPPED = _HOP | {"date", "server"}
_CALLER = re.compile(r'Credential=[^,\s]+|keyId="[^"]*"')


@dataclass(frozen=True, slots=True)
class Upstream:
    """One simulator behind a replayer: a name for its log, its URL, the CA it serves with."""

    name: str
    url: str
    ca_file: str | None = None


@dataclass(frozen=True, slots=True)
class ReplayLog:
    """What a replayer saw since the last drain."""

    requests: dict[str, list[Request]]  # upstream name -> requests in arrival order
    replayed: int  # answered from memory
    forwarded: list[str]  # what was passed to the simulator (not seen before): method, target
    cpu: float  # the replayer process's CPU seconds since it started


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int
    headers: tuple[tuple[str, str], ...]
    body: bytes


@dataclass(slots=True)
class _State:
    latency: float
    answers: dict[tuple[str, str, str, bytes], _Answer] = field(default_factory=dict)
    # upstream name -> (method, target, headers, body, answer's body size) of each request,
    # made Requests at drain
    log: dict[str, list[tuple[str, str, dict[str, str], bytes, int]]] = field(default_factory=dict)
    replayed: int = 0
    forwarded: list[str] = field(default_factory=list)


class Replayer:
    """One vendor's replayer process: ``with Replayer(...) as r``, then ``r.urls[name]``."""

    def __init__(self, vendor: str, upstreams: list[Upstream], latency: float, workdir: Path):
        self.vendor = vendor
        self._upstreams = upstreams
        self._latency = latency
        self._workdir = workdir
        self._conn: Connection | None = None
        self._proc: Any = None
        self.urls: dict[str, str] = {}  # upstream URL -> the replayer's URL standing for it
        self.ca_file: str | None = None  # the certificate its TLS listeners serve, if any

    def __enter__(self) -> Replayer:
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=serve,
            args=(child, self._upstreams, self._latency, str(self._workdir)),
            name=f"bench-replay-{self.vendor}",
        )
        self._proc.start()
        child.close()
        self.urls, self.ca_file = self._answer()
        return self

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(OSError, EOFError, RuntimeError):
            self._call("stop")
        if self._proc is not None:
            self._proc.join(timeout=10)
            if self._proc.is_alive():
                self._proc.terminate()  # our own child, by its handle
                self._proc.join(timeout=5)

    def drain(self) -> ReplayLog:
        """The requests since the last drain (then forgotten), and the counts."""
        log: ReplayLog = self._call("drain")
        return log

    def forget(self) -> None:
        """Drop every kept answer (the estate changed): each request is passed on once more."""
        self._call("forget")

    def _call(self, command: str) -> Any:
        assert self._conn is not None
        self._conn.send(command)
        return self._answer()

    def _answer(self) -> Any:
        assert self._conn is not None
        if not self._conn.poll(_BOOT_TIMEOUT):
            raise RuntimeError(f"the {self.vendor} replayer did not answer")
        value = self._conn.recv()
        if isinstance(value, str) and value.startswith("Traceback"):
            raise RuntimeError(f"the {self.vendor} replayer failed:\n{value}")
        return value


# --- the replayer's process -------------------------------------------------------------------


def serve(conn: Connection, upstreams: list[Upstream], latency: float, workdir: str) -> None:
    """The process's main: listen for each upstream, then answer commands until ``stop``."""
    try:
        asyncio.run(_main(conn, upstreams, latency, Path(workdir)))
    except Exception:
        conn.send(traceback.format_exc())


async def _main(conn: Connection, upstreams: list[Upstream], latency: float, workdir: Path) -> None:
    import aiohttp
    from aiohttp import web

    state = _State(latency)
    tls = _server_tls(workdir) if any(u.url.startswith("https:") for u in upstreams) else None
    runners: list[web.ServerRunner] = []
    urls: dict[str, str] = {}
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        for upstream in upstreams:
            state.log[upstream.name] = []
            # aiohttp's low-level server: no application, router or middleware per request.
            server = web.Server(_handler(state, upstream, session, urls), access_log=None)
            runner = web.ServerRunner(server, handle_signals=False)
            await runner.setup()
            https = upstream.url.startswith("https:")
            site = web.TCPSite(
                runner, "127.0.0.1", 0, ssl_context=tls[0] if https and tls else None
            )
            await site.start()
            runners.append(runner)
            port = runner.addresses[0][1]
            urls[upstream.url] = f"{'https' if https else 'http'}://127.0.0.1:{port}"
        conn.send((urls, str(tls[1]) if tls else None))
        try:
            await _commands(conn, state)
        finally:
            for runner in runners:
                await runner.cleanup()


async def _commands(conn: Connection, state: _State) -> None:
    loop = asyncio.get_running_loop()
    while True:
        command = await loop.run_in_executor(None, conn.recv)
        if command == "stop":
            conn.send(None)
            return
        if command == "forget":
            state.answers.clear()
            conn.send(None)
        elif command == "drain":
            usage = os.times()  # before the log is made: the phase's CPU, not the bench's
            log, state.log = state.log, {name: [] for name in state.log}
            requests = {name: [_request(*r) for r in entries] for name, entries in log.items()}
            cpu = usage.user + usage.system
            conn.send(ReplayLog(requests, state.replayed, state.forwarded, cpu))
            state.replayed, state.forwarded = 0, []


def _request(method: str, target: str, headers: dict[str, str], body: bytes, sent: int) -> Request:
    """A logged request as the simulators log theirs (what bench.estate's workload reads)."""
    path, _, query = target.partition("?")
    return Request(
        method=method,
        path=path,
        query=parse_qs(query, keep_blank_values=True),
        headers={k.lower(): v for k, v in headers.items()},
        body=body,
        target=target,
        sent=sent,
    )


def _handler(state: _State, upstream: Upstream, session: Any, urls: dict[str, str]) -> Any:
    from aiohttp import web
    from multidict import CIMultiDict
    from yarl import URL

    context = ssl.create_default_context(cafile=upstream.ca_file) if upstream.ca_file else None

    async def handle(request: web.BaseRequest) -> web.Response:
        body = await request.read()
        key = request_key(
            request.method, request.raw_path, request.headers.get("Authorization", ""), body
        )
        answer = state.answers.get(key)
        if answer is None:
            state.forwarded.append(f"{request.method} {request.raw_path}")
            headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP}
            headers["Accept-Encoding"] = "identity"  # bodies are rewritten: keep them plain
            async with session.request(
                request.method,
                URL(upstream.url + request.raw_path, encoded=True),
                headers=headers,  # Host as the client sent it: OCI signs it
                data=body,
                allow_redirects=False,
                ssl=context if context is not None else True,
            ) as response:
                answer = _rewritten(
                    response.status,
                    list(response.headers.items()),
                    await response.read(),
                    (upstream.url, urls[upstream.url]),
                )
            state.answers[key] = answer
        else:
            state.replayed += 1
        state.log[upstream.name].append(
            (request.method, request.raw_path, dict(request.headers), body, len(answer.body))
        )
        if state.latency:
            await asyncio.sleep(state.latency)
        return web.Response(
            status=answer.status, headers=CIMultiDict(answer.headers), body=answer.body
        )

    return handle


def request_key(
    method: str, target: str, authorization: str, body: bytes
) -> tuple[str, str, str, bytes]:
    """What makes two requests the same (the module's docstring says why)."""
    path = target.partition("?")[0]
    if path.endswith("/token"):
        return (method, path, "", b"")
    caller = _CALLER.search(authorization)
    return (method, target, caller.group(0) if caller else "", body)


def _rewritten(
    status: int, headers: list[tuple[str, str]], body: bytes, urls: tuple[str, str]
) -> _Answer:
    """The simulator's answer with its own address replaced by the replayer's (Azure's
    ``nextLink`` and OpenID configuration, any ``Location``)."""
    upstream, replayer = urls
    return _Answer(
        status,
        tuple((k, v.replace(upstream, replayer)) for k, v in headers if k.lower() not in _DROPPED),
        body.replace(upstream.encode(), replayer.encode()),
    )


def _server_tls(workdir: Path) -> tuple[ssl.SSLContext, Path]:
    """A throw-away certificate for the TLS listeners, and the file clients trust it from."""
    cert_pem, key_pem = self_signed_certificate("127.0.0.1")
    workdir.mkdir(parents=True, exist_ok=True)
    cert, key = workdir / "replay-cert.pem", workdir / "replay-key.pem"
    cert.write_bytes(cert_pem)
    key.write_bytes(key_pem)
    key.chmod(0o600)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, cert
