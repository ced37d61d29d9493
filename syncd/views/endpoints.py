"""What ``syncd run`` serves over HTTP, as one WSGI application.

``/metrics`` is prometheus_client's own exposition (content negotiation between the text format
and OpenMetrics, gzip when asked, ``name[]`` filtering), answered to HEAD too; ``/healthz`` and
``/readyz`` answer the probes; ``/`` is a small landing page with links. The server is
prometheus_client's threaded WSGI server with a request handler that writes no access log.
"""

from __future__ import annotations

import socket
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import ThreadingWSGIServer, make_wsgi_app

Check = Callable[[], tuple[bool, str]]  # (healthy, what to say)
StartResponse = Callable[..., Any]

_LANDING = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>syncd</title></head>
<body><h1>syncd</h1>
<p>Keeps Cloudflare origin cloud region mappings in step with the clouds.</p>
<ul>
<li><a href="metrics">/metrics</a>: Prometheus metrics</li>
<li><a href="healthz">/healthz</a>: the process and its scheduler are alive</li>
<li><a href="readyz">/readyz</a>: a sync succeeded recently</li>
</ul></body></html>
"""


def app(registry: CollectorRegistry, *, health: Check, ready: Check) -> Callable[..., Any]:
    """The WSGI application for ``syncd run``."""
    metrics = make_wsgi_app(registry)

    def serve(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        head = environ.get("REQUEST_METHOD") == "HEAD"
        if path == "/metrics":
            asked = {**environ, "REQUEST_METHOD": "GET"} if head else environ
            body = metrics(asked, start_response)
        elif path == "/healthz":
            body = _check(health, start_response)
        elif path == "/readyz":
            body = _check(ready, start_response)
        elif path == "/":
            body = _plain(start_response, HTTPStatus.OK, _LANDING, "text/html; charset=utf-8")
        else:
            body = _plain(start_response, HTTPStatus.NOT_FOUND, b"not found\n")
        return [] if head else body  # HEAD: the same status and headers, no body

    return serve


def server(listen: str, application: Callable[..., Any]) -> ThreadingWSGIServer:
    """A threaded WSGI server bound to ``host:port`` (IPv6 when the host is)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]")

    class _Server(ThreadingWSGIServer):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    return make_server(host, int(port), application, _Server, handler_class=_Quiet)


class _Quiet(WSGIRequestHandler):
    """No access log on stderr: a scrape every 15 s would drown syncd's own JSON logs."""

    def log_message(self, format: str, *args: Any) -> None:
        pass


def _check(check: Check, start_response: StartResponse) -> list[bytes]:
    ok, text = check()
    status = HTTPStatus.OK if ok else HTTPStatus.SERVICE_UNAVAILABLE
    return _plain(start_response, status, f"{text}\n".encode())


def _plain(
    start_response: StartResponse,
    status: HTTPStatus,
    body: bytes,
    content_type: str = "text/plain; charset=utf-8",
) -> list[bytes]:
    headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
    start_response(f"{status.value} {status.phrase}", headers)
    return [body]
