"""A wall-clock deadline for each Cloudflare request, under httpx's per-operation timeouts.

httpx's timeout bounds each socket operation: an answer trickling one byte every 0.2 s never
times out (issue 14 item 3). Every network operation of the run's client (connect, TLS, each
write and read) is given at most what is left of the request's deadline, and none once it has
passed, so ``cloudflare.timeout`` bounds the whole request: connect, send, headers and body.

The deadline is per thread (zones are pushed concurrently, one request per thread at a time):
``Deadline.running(seconds)`` opens it around one request. The clients' network backend is
httpcore's own, wrapped; the pool's backend is set after httpx built it (httpx pinned < 0.29).
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


class Deadline:
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
    def __init__(self, stream: httpcore.NetworkStream, deadline: Deadline) -> None:
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
    def __init__(self, deadline: Deadline) -> None:
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


def transport(deadline: Deadline) -> httpx.HTTPTransport:
    """httpx's own transport, its connections made through the deadline-keeping backend."""
    out = httpx.HTTPTransport()
    out._pool._network_backend = _Backend(deadline)  # the module docstring says why
    return out
