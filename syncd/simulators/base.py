"""What every simulator shares: a threaded HTTP(S) server on loopback, faults, a request log.

Simulators stand in for real cloud and Cloudflare APIs in the tests and the demo. They import
nothing from the rest of syncd, so they cannot share a bug with the code under test. Faults are
injected through ``inject()``, never triggered by magic values in requests.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import json
import re
import ssl
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True, slots=True)
class Request:
    """One request as the simulator received it (headers lower-cased)."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int = 0
    target: str = ""  # the raw request target (path and query as sent), for signatures
    sent: int = 0  # bytes of the answer's body (what a client had to receive and parse)

    def json(self) -> Any:
        return json.loads(self.body)

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[0] if values else None


@dataclass(slots=True)
class Fault:
    """An answer to give instead of the real one, ``times`` times, to matching requests.

    ``drop`` closes the connection without answering; ``delay`` waits before answering (or before
    dropping); ``reset_mid_body`` sends the headers and part of the body, then closes. ``apply``
    handles the request for real first (a write takes effect) and then gives the fault's answer
    instead of the real one: a request applied whose answer is lost. ``trickle`` sends the
    body one byte every ``trickle`` seconds (each read is quick; the whole answer is not).
    """

    status: int = 500
    body: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    drop: bool = False
    reset_mid_body: bool = False
    apply: bool = False
    trickle: float = 0.0
    times: int = 1
    method: str | None = None
    path: str | None = None  # a regular expression searched in the path

    def matches(self, method: str, path: str) -> bool:
        if self.method is not None and self.method.upper() != method:
            return False
        return self.path is None or re.search(self.path, path) is not None


class Response:
    """What a route handler returns."""

    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        self.status = status
        self.headers = dict(headers or {})
        if body is None:
            self.raw = b""
        elif isinstance(body, bytes):
            self.raw = body
        else:
            self.raw = json.dumps(body).encode()
            self.headers.setdefault("Content-Type", "application/json")


class SimulatorServer:
    """Base class: subclasses implement ``handle(request) -> Response``.

    Start with ``start()`` (or as a context manager); ``url`` is then ``http(s)://127.0.0.1:PORT``.
    ``latency`` adds a delay to every answer (the benchmark's latency model).
    """

    def __init__(
        self, *, tls: bool = False, latency: float = 0.0, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self._host = host
        self._port = port
        self._tls = tls
        self.latency = latency
        self._lock = threading.RLock()
        self._faults: list[Fault] = []
        self.requests: list[Request] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.ca_file: Path | None = None
        self._tmpdir: tempfile.TemporaryDirectory[str] | None = None

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> Self:
        handler = _make_handler(self)
        server = _Server((self._host, self._port), handler)
        if self._tls:
            server.socket = self._tls_context().wrap_socket(server.socket, server_side=True)
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        if self._tmpdir is not None:
            self._tmpdir.cleanup()
            self._tmpdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("simulator not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        scheme = "https" if self._tls else "http"
        return f"{scheme}://{self._host}:{self.port}"

    # --- control API ----------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def clear_requests(self) -> None:
        with self._lock:
            self.requests.clear()

    def requests_matching(
        self, method: str | None = None, path: str | None = None
    ) -> list[Request]:
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method)
                and (path is None or re.search(path, r.path))
            ]

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path):
                    fault.times -= 1
                    if fault.times <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _record(self, request: Request) -> None:
        with self._lock:
            self.requests.append(request)

    def handle(self, request: Request) -> Response:  # pragma: no cover - abstract
        raise NotImplementedError

    # --- TLS ------------------------------------------------------------------------------

    def _tls_context(self) -> ssl.SSLContext:
        cert_pem, key_pem = self_signed_certificate(self._host)
        self._tmpdir = tempfile.TemporaryDirectory(prefix="syncd-sim-")
        cert = Path(self._tmpdir.name) / "cert.pem"
        key = Path(self._tmpdir.name) / "key.pem"
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        key.chmod(0o600)
        self.ca_file = cert
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(cert, key)
        return ctx


def self_signed_certificate(host: str) -> tuple[bytes, bytes]:
    """A throw-away CA-flagged certificate for ``host``, 127.0.0.1 and localhost."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = [
        x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
    ]
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )


class _Handler(BaseHTTPRequestHandler):
    """Serves one simulator: ``sim`` is set on the subclass ``_make_handler`` makes for it."""

    sim: ClassVar[SimulatorServer]
    protocol_version = "HTTP/1.1"
    # Headers and body are written apart; without TCP_NODELAY, Nagle plus the client's
    # delayed ACK add about 40 ms to every request on loopback.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the request log is the record."""

    def _serve(self) -> None:
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if len(body) < length:  # the client went away mid-body: no request reached the API
            self.close_connection = True
            return
        request = Request(
            method=self.command,
            path=parts.path,
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            target=self.path,
        )
        if self.sim.latency:
            time.sleep(self.sim.latency)
        fault = self.sim._take_fault(request.method, request.path)
        if fault is not None:
            if fault.apply:
                self.sim.handle(request)
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                self.sim._record(_with_status(request, 0))
                self.close_connection = True
                self.connection.close()
                return
            answer = fault.body
            if answer is None:  # the {"error": {code, message}} shape Google and ARM share
                answer = json.dumps(
                    {"error": {"code": fault.status, "message": "injected fault"}}
                ).encode()
            # Logged before answering, so a client never holds an answer to an
            # unlogged request.
            response = Response(fault.status, answer, fault.headers)
            self.sim._record(_with_status(request, fault.status, len(response.raw)))
            self._send(response, reset=fault.reset_mid_body, trickle=fault.trickle)
            return
        try:
            response = self.sim.handle(request)
        except Exception as exc:  # noqa: BLE001 (a simulator bug must show as a 500, not hang)
            response = Response(500, {"error": f"simulator error: {exc!r}"})
        self.sim._record(_with_status(request, response.status, len(response.raw)))
        self._send(response)

    def _send(self, response: Response, *, reset: bool = False, trickle: float = 0.0) -> None:
        self.send_response(response.status)
        for key, value in response.headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(response.raw)))
        self.end_headers()
        if trickle:
            for byte in response.raw:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(trickle)  # the fault itself: a slow answer, not a wait in a test
            return
        if reset:
            self.wfile.write(response.raw[: max(1, len(response.raw) // 2)])
            self.wfile.flush()
            self.close_connection = True
            self.connection.close()
            return
        self.wfile.write(response.raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve


def _make_handler(sim: SimulatorServer) -> type[BaseHTTPRequestHandler]:
    return type("Handler", (_Handler,), {"sim": sim})


def _with_status(request: Request, status: int, sent: int = 0) -> Request:
    return dataclasses.replace(request, status=status, sent=sent)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (on a delayed fault, say) is not an error worth a traceback."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)
