"""A wall-clock deadline for each Cloudflare request, under httpx's per-operation timeouts.

httpx's timeout bounds each socket operation: an answer trickling one byte every 0.2 s never
times out (issue 14 item 3). Every network operation of the run's client (connect, TLS, each
write and read) is given at most what is left of the request's deadline, and none once it has
passed, so ``cloudflare.timeout`` bounds the whole request: connect, send, headers and body.

The deadline is per thread (zones are pushed concurrently, one request per thread at a time):
``RequestDeadline.running(seconds)`` opens it around one request. The client's transport is a small
``httpx.BaseTransport`` over httpcore's ``ConnectionPool``, whose public ``network_backend``
argument takes httpcore's own backend, wrapped: public APIs only, so no httpx release is pinned
out (httpx's own transport offers no way to pass a backend).
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import httpcore
import httpx


class RequestDeadline:
    """The current thread's request deadline (``time.monotonic()`` seconds), if any."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextlib.contextmanager
    def running(self, seconds: float) -> Iterator[None]:
        self._local.at = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.at = None

    def cap(self, timeout: float | None) -> float | None:
        """``timeout`` cut to what is left; a passed deadline is a timeout now."""
        at: float | None = getattr(self._local, "at", None)
        if at is None:
            return timeout
        left = at - time.monotonic()
        if left <= 0:
            raise httpcore.ReadTimeout("the request's deadline (cloudflare.timeout) has passed")
        return left if timeout is None else min(timeout, left)


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream, deadline: RequestDeadline) -> None:
        self._stream = stream
        self._deadline = deadline

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, self._deadline.cap(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, self._deadline.cap(timeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        tls = self._stream.start_tls(ssl_context, server_hostname, self._deadline.cap(timeout))
        return _Stream(tls, self._deadline)

    def get_extra_info(self, info: str) -> Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self, deadline: RequestDeadline) -> None:
        self._backend = httpcore.SyncBackend()
        self._deadline = deadline

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        stream = self._backend.connect_tcp(
            host, port, self._deadline.cap(timeout), local_address, socket_options
        )
        return _Stream(stream, self._deadline)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore.NetworkStream:  # pragma: no cover (Cloudflare is reached over TCP)
        stream = self._backend.connect_unix_socket(
            path, self._deadline.cap(timeout), socket_options
        )
        return _Stream(stream, self._deadline)

    def sleep(self, seconds: float) -> None:  # pragma: no cover (httpcore's retries are off)
        self._backend.sleep(seconds)


# httpcore's errors as httpx's, most specific first: the transport above (``transport.py``)
# translates httpx's alone, as it would from httpx's own transport.
_ERRORS: tuple[tuple[type[Exception], type[httpx.TransportError]], ...] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        for core, ours in _ERRORS:
            if isinstance(exc, core):
                raise ours(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    """The response body as httpcore streams it, its errors translated as it is read."""

    def __init__(self, stream: Iterable[bytes]) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        with _translated():
            yield from self._stream

    def close(self) -> None:
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


class DeadlineTransport(httpx.BaseTransport):
    """httpcore's connection pool, its connections made through the deadline-keeping backend."""

    def __init__(self, deadline: RequestDeadline) -> None:
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),  # certifi, or SSL_CERT_FILE / _DIR
            network_backend=_Backend(deadline),
            # httpx's own limits (httpx.Limits()); httpcore's defaults would cap the zones'
            # concurrent requests at 10 and keep idle connections for ever.
            max_connections=_LIMITS.max_connections,
            max_keepalive_connections=_LIMITS.max_keepalive_connections,
            keepalive_expiry=_LIMITS.keepalive_expiry,
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        core = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _translated():
            answer = self._pool.handle_request(core)
        assert isinstance(answer.stream, Iterable)  # noqa: S101 (the sync pool's, never async)
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_Body(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def transport(deadline: RequestDeadline) -> httpx.BaseTransport:
    """The run's transport: every connection keeps the current request's deadline."""
    return DeadlineTransport(deadline)
