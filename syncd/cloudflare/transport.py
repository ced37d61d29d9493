"""HTTP to Cloudflare: auth headers, the shared rate limit, retries, and error translation.

The one place that talks httpx and the one place that retries. A response becomes the parsed
envelope or a ``CloudflareError`` chosen by HTTP status and Cloudflare code (never by message
text). Every exchange is recorded as a ``CloudflareCall`` for the run report. Credentials are
set as headers once and never appear in messages.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx

from syncd import __version__
from syncd.cloudflare.deadline import RequestDeadline
from syncd.cloudflare.deadline import transport as deadline_transport
from syncd.errors import (
    AuthError,
    CloudflareError,
    RateLimited,
    RouteMissing,
    TransportError,
    ZoneFull,
)
from syncd.model import CloudflareCall, RateWindow, WindowSource

# Codes from shared/reference/cloudflare-origin-cloud-regions.md section 3.
ZONE_FULL = 1164
SERVER_SIDE = frozenset({1140, 1156})
FEATURE_UNAVAILABLE = 1135  # e.g. supported_regions while the zone has Tiered Cache off
NO_ROUTE = frozenset({7000, 7003})
# Retried as Cloudflare's SDK retries them (``_should_retry``): 408, a request timeout (the write
# may have been applied: outcome unknown), and 409, a lock timeout (refused: ask again).
REQUEST_TIMEOUT, LOCK_TIMEOUT = 408, 409
_MAX_BACKOFF = 30.0
_MAX_RETRY_AFTER = 300.0  # Cloudflare blocks for five minutes at most after a 429


@dataclass(frozen=True, slots=True)
class Envelope:
    """A successful Cloudflare answer: ``result`` and, on paged lists, ``result_info``."""

    result: Any
    result_info: dict[str, Any]


@dataclass(frozen=True, slots=True)
class ServerQuota:
    """What Cloudflare's rate-limit headers said: ``remaining`` requests until ``reset``
    seconds from the answer, out of ``limit`` (when the policy header gave it)."""

    remaining: int
    reset: float
    limit: int | None = None


@dataclass(frozen=True, slots=True)
class WindowLeft:
    """The requests left in the rate window now: the server's figure when it sent one
    recently, else syncd's own count."""

    remaining: int
    source: WindowSource


class RateLimiter:
    """At most ``requests`` per sliding ``period`` seconds, shared by every thread of a run.

    A 429 pauses everyone until its Retry-After has passed. When Cloudflare's answers carry
    rate-limit headers, sending also stops while the server's remaining quota (which counts
    the user's other tools too) is down to the reserve, until the server's window resets.
    """

    def __init__(
        self,
        requests: int,
        period: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        wall: Callable[[], float] = time.time,
    ) -> None:
        # Headroom: a slot is taken just before its request is built and sent, but Cloudflare
        # counts arrivals, and a busy process may send some requests later than others after
        # taking their slots. So 5% fewer requests than allowed, and each slot held 5% longer
        # than the period (at most a second).
        self._requests = max(1, int(requests * 0.95))
        self._reserve = requests - self._requests  # the same 5% kept from the server's figure
        self._period = period + min(1.0, period * 0.05)
        self._clock = clock
        self._sleep = sleep
        self._wall = wall
        self._taken: deque[float] = deque()  # when each slot of the last period was taken
        self._paused_until = 0.0
        self._server: tuple[int, float] | None = None  # (remaining, resets at), clock time
        self._restored = False
        self._lock = threading.Lock()

    def acquire(self) -> None:
        """Block until a request may go, and count it as gone now.

        Slots are recorded at the time they are really taken, never booked ahead: a thread
        that wakes late (a loaded machine, the GIL) would otherwise send its booked request
        in a later window than the one it was counted in.
        """
        while True:
            with self._lock:
                now = self._clock()
                self._expire(now)
                wait = self._paused_until - now
                if wait <= 0 and self._server is not None and self._server[0] <= self._reserve:
                    wait = self._server[1] - now  # the server's quota is spent until it resets
                if wait <= 0:
                    if len(self._taken) < self._requests:
                        self._taken.append(now)
                        if self._server is not None:
                            self._server = (self._server[0] - 1, self._server[1])
                        return
                    wait = self._taken[0] + self._period - now
            self._sleep(wait)

    def _expire(self, now: float) -> None:
        while self._taken and self._taken[0] + self._period <= now:
            self._taken.popleft()
        if self._server is not None and self._server[1] <= now:
            self._server = None  # the server's window reset: its old figure says nothing

    def try_acquire(self) -> bool:
        """Take a slot if one is free now (never waits); False when the window is full or
        paused. For a quota whose requests may simply wait for the next run."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._paused_until > now or len(self._taken) >= self._requests:
                return False
            self._taken.append(now)
            return True

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, quota: ServerQuota) -> None:
        """Take the server's remaining quota from an answer's headers."""
        with self._lock:
            now = self._clock()
            # Answers of concurrent requests arrive out of order: within one server window,
            # the lowest figure is the most recent truth.
            resets = now + quota.reset
            if self._server is not None and abs(self._server[1] - resets) < 1.0:
                self._server = (min(self._server[0], quota.remaining), self._server[1])
            else:
                self._server = (quota.remaining, resets)
            if quota.limit is not None:  # the same 5% reserve, of the server's quota
                self._reserve = max(1, quota.limit - int(quota.limit * 0.95))

    def window_left(self) -> WindowLeft:
        """Requests left in the current window: the server's figure if fresh, else syncd's."""
        with self._lock:
            now = self._clock()
            self._expire(now)
            if self._server is not None:
                return WindowLeft(max(0, self._server[0]), WindowSource.SERVER)
            return WindowLeft(max(0, self._requests - len(self._taken)), WindowSource.SYNCD)

    def window(self) -> RateWindow:
        """The slots of the last period and any pause, in wall-clock time."""
        with self._lock:
            now, wall = self._clock(), self._wall()
            self._expire(now)
            return RateWindow(
                taken=tuple(wall - (now - t) for t in self._taken),
                paused_until=wall + (self._paused_until - now) if self._paused_until > now else 0,
            )

    def restore(self, window: RateWindow) -> None:
        """Count the requests an earlier process sent in the last period (once per limiter:
        a daemon's limiter already holds its own runs' requests)."""
        with self._lock:
            if self._restored:
                return
            self._restored = True
            now, wall = self._clock(), self._wall()
            earlier = sorted(now - (wall - t) for t in window.taken if t <= wall)
            self._taken = deque(sorted([*earlier, *self._taken]))
            self._expire(now)
            if window.paused_until > wall:
                self._paused_until = max(self._paused_until, now + window.paused_until - wall)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    retries: int = 5
    backoff: float = 0.5


class Transport:
    """Sends one logical request, retrying what is retryable, and parses the envelope."""

    def __init__(
        self,
        client: httpx.Client,
        *,
        limiter: RateLimiter,
        retry: RetryPolicy,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        deadline: tuple[RequestDeadline, float] | None = None,
    ) -> None:
        """``deadline``: the client's ``RequestDeadline`` and the seconds each request may take in
        all (``cloudflare.timeout``), connect to last byte."""
        self._client = client
        self._deadline = deadline
        self._limiter = limiter
        self._retry = retry
        self._sleep = sleep
        self._clock = clock
        self._calls: list[CloudflareCall] = []
        self._lock = threading.Lock()
        # Zones push concurrently: each thread marks its own last call as retried.
        self._last = threading.local()

    @property
    def limiter(self) -> RateLimiter:
        return self._limiter

    def calls(self) -> tuple[CloudflareCall, ...]:
        with self._lock:
            return tuple(self._calls)

    def sent(self) -> int:
        """How many requests have been sent so far (retries included)."""
        with self._lock:
            return len(self._calls)

    def request(
        self,
        method: str,
        path: str,
        *,
        endpoint: str,
        params: dict[str, Any] | None = None,
        body: Any = None,
        parse: Callable[[httpx.Response, str, str], Envelope] | None = None,
    ) -> Envelope:
        """Send with retries; raise the translated error of the last attempt, marked
        ``outcome_unknown`` when any attempt may have been applied unanswered. ``parse``: how
        an answer becomes an envelope (the REST envelope unless told; ``parse_graphql``)."""
        attempt, unknown = 0, False
        while True:
            try:
                return self._once(method, path, endpoint, params, body, parse or _parse)
            except CloudflareError as exc:
                unknown = unknown or exc.outcome_unknown or _maybe_applied(exc)
                if not exc.retryable or attempt >= self._retry.retries:
                    exc.outcome_unknown = unknown
                    raise
                delay = self._delay(exc, attempt)
                self._mark_retried(exc)
                attempt += 1
                self._sleep(delay)

    def _whole_request(self) -> contextlib.AbstractContextManager[None]:
        if self._deadline is None:
            return contextlib.nullcontext()
        deadline, seconds = self._deadline
        return deadline.running(seconds)

    def _delay(self, exc: CloudflareError, attempt: int) -> float:
        if isinstance(exc, RateLimited) and exc.retry_after is not None:
            wait = min(exc.retry_after, _MAX_RETRY_AFTER)
            self._limiter.pause(wait)
            return wait
        base = min(_MAX_BACKOFF, self._retry.backoff * 2.0**attempt)
        return base / 2 + random.uniform(0, base / 2)  # "equal jitter"

    def _mark_retried(self, exc: CloudflareError) -> None:
        index: int = self._last.index
        with self._lock:
            last = self._calls[index]
            self._calls[index] = CloudflareCall(
                endpoint=last.endpoint,
                method=last.method,
                code=last.code,
                duration=last.duration,
                retry_reason=exc.reason,
            )

    def _once(  # noqa: PLR0917 (private: request()'s arguments, in order)
        self,
        method: str,
        path: str,
        endpoint: str,
        params: dict[str, Any] | None,
        body: Any,
        parse: Callable[[httpx.Response, str, str], Envelope],
    ) -> Envelope:
        self._limiter.acquire()
        start = self._clock()
        code = "error"
        try:
            with self._whole_request():
                response = self._client.request(
                    method,
                    path.lstrip("/"),
                    params=params,
                    json=body if body is not None else None,
                )
            code = str(response.status_code)
            quota = server_quota(response.headers)
            if quota is not None:
                self._limiter.observe(quota)
            return parse(response, method, path)
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TransportError(  # never reached Cloudflare: nothing can have been applied
                f"{method} {path}: no connection ({type(exc).__name__})", sent=False, retryable=True
            ) from exc
        except httpx.TimeoutException as exc:
            raise TransportError(
                f"{method} {path}: timed out ({type(exc).__name__})", retryable=True
            ) from exc
        except httpx.HTTPError as exc:  # connection, protocol, decoding: no usable answer
            raise TransportError(
                f"{method} {path}: no usable answer ({type(exc).__name__})", retryable=True
            ) from exc
        finally:
            call = CloudflareCall(
                endpoint=endpoint, method=method, code=code, duration=self._clock() - start
            )
            with self._lock:
                self._calls.append(call)
                self._last.index = len(self._calls) - 1


def _maybe_applied(exc: CloudflareError) -> bool:
    """A 5xx or a 408 may come after the write was applied (a proxy or an overloaded origin
    answering in Cloudflare's place, a request that timed out); any other 4xx and a 429 say the
    request was refused."""
    return exc.status is not None and (exc.status >= 500 or exc.status == REQUEST_TIMEOUT)


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def _errors(data: dict[str, Any]) -> list[dict[str, Any]]:
    """The REST envelope's ``errors`` that are objects."""
    raw = data.get("errors")
    return [e for e in raw if isinstance(e, dict)] if isinstance(raw, list) else []


def _parse(response: httpx.Response, method: str, path: str) -> Envelope:
    where = f"{method} {path}"
    status = response.status_code
    data = _json(response)
    if not isinstance(data, dict) or "success" not in data:
        # A cut or garbled success (a proxy, a reset) is worth another try: batches are
        # idempotent. A 4xx page (a WAF, say) will not change by asking again.
        kind = "retryable" if _retried(status) or status == 429 or status < 300 else "final"
        raise _raw_error(response, where, kind)
    if status < 400 and data.get("success") is True:
        info = data.get("result_info")
        return Envelope(data.get("result"), info if isinstance(info, dict) else {})
    raise _api_error(response, where, _errors(data))


def parse_graphql(response: httpx.Response, method: str, path: str) -> Envelope:
    """A GraphQL answer: ``{data, errors}`` as the envelope's ``result``, errors included (they
    come with HTTP 200, or 400 for a refused query, and belong to the caller). Anything else is
    translated as a REST answer is, except a 429: the GraphQL quota is its own, so it neither
    pauses the REST requests nor is retried (the reading waits for the next run)."""
    where = f"{method} {path}"
    status = response.status_code
    data = _json(response)
    graphql = isinstance(data, dict) and ("data" in data or "errors" in data)
    if graphql and status in (200, 400):
        return Envelope(data, {})
    if status == 429:
        raise CloudflareError(f"{where}: HTTP 429: the GraphQL quota is used", status=status)
    if isinstance(data, dict) and "success" in data:
        raise _api_error(response, where, _errors(data))
    kind = "retryable" if status >= 500 else "final"
    raise _raw_error(response, where, kind)


def _raw_error(response: httpx.Response, where: str, kind: str) -> CloudflareError:
    status = response.status_code
    if status == 429:
        return RateLimited(f"{where}: HTTP 429", retry_after=_retry_after(response))
    return TransportError(
        f"{where}: HTTP {status} without a Cloudflare JSON envelope "
        f"({response.headers.get('content-type', 'no content type')})",
        status=status,
        retryable=kind == "retryable",
    )


def _api_error(
    response: httpx.Response, where: str, errors: list[dict[str, Any]]
) -> CloudflareError:
    status = response.status_code
    codes = [e.get("code") for e in errors if isinstance(e.get("code"), int)]
    code = codes[0] if codes else None
    text = "; ".join(f"{e.get('code')}: {e.get('message', '')}" for e in errors) or "no detail"
    message = f"{where}: HTTP {status}: {text}"
    if status == 429:
        return RateLimited(message, retry_after=_retry_after(response), code=code)
    if ZONE_FULL in codes:
        return ZoneFull(message, status=status, code=ZONE_FULL)
    if NO_ROUTE & set(codes) and status in (400, 404, 405):
        return RouteMissing(message, status=status, code=code)
    if status in (401, 403) and code != FEATURE_UNAVAILABLE:
        return AuthError(message, status=status, code=code)
    retryable = _retried(status) or bool(SERVER_SIDE & set(codes))
    return CloudflareError(message, status=status, code=code, retryable=retryable)


def _retried(status: int) -> bool:
    """Statuses asked again (besides 429): a 5xx, a request timeout, a lock timeout."""
    return status >= 500 or status in (REQUEST_TIMEOUT, LOCK_TIMEOUT)


def server_quota(headers: httpx.Headers) -> ServerQuota | None:
    """The quota left according to the answer's headers, if it carries any.

    Cloudflare documents the IETF draft's form (``Ratelimit: "default";r=50;t=30`` and
    ``Ratelimit-Policy: "burst";q=100;w=60``); ``X-RateLimit-Remaining``/``-Reset``/``-Limit``
    are accepted too. Several limits in one header: the one with the fewest requests left.
    Anything unreadable is ignored: the client-side limit still holds.
    """
    items = [_fields(item) for item in headers.get("ratelimit", "").split(",") if item.strip()]
    limits = [
        (int(i["r"]), float(i.get("t", "0")), i[""])
        for i in items
        if i.get("r", "").isdigit() and _number(i.get("t", "0"))
    ]
    if limits:
        remaining, reset, name = min(limits)
        reset = min(reset, _MAX_RETRY_AFTER)
        policies = [_fields(p) for p in headers.get("ratelimit-policy", "").split(",")]
        quota = [int(p["q"]) for p in policies if p.get("") == name and p.get("q", "").isdigit()]
        return ServerQuota(remaining, reset, quota[0] if quota else None)
    remaining_text = headers.get("x-ratelimit-remaining", "").strip()
    if not remaining_text.isdigit():
        return None
    reset_text = headers.get("x-ratelimit-reset", "").strip()
    reset = float(reset_text) if _number(reset_text) else 0.0
    if reset > 1e9:  # some servers send an epoch time rather than seconds
        reset = max(0.0, reset - time.time())
    reset = min(reset, _MAX_RETRY_AFTER)
    limit_text = headers.get("x-ratelimit-limit", "").strip()
    limit = int(limit_text) if limit_text.isdigit() else None
    return ServerQuota(int(remaining_text), reset, limit)


def _fields(item: str) -> dict[str, str]:
    """One structured-field list item, ``"name";k=v;k=v``, as {"": name, k: v}."""
    name, *params = (part.strip() for part in item.split(";"))
    out = {"": name.strip('"')}
    for param in params:
        key, _, value = param.partition("=")
        out[key.strip().lower()] = value.strip().strip('"')
    return out


def _number(text: str) -> bool:
    try:
        return float(text) >= 0
    except ValueError:
        return False


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def build_client(
    base_url: str,
    *,
    token: str | None,
    email: str | None,
    key: str | None,
    timeout: float,
    transport: httpx.BaseTransport | None = None,
    deadline: RequestDeadline | None = None,
) -> httpx.Client:
    """The run's one ``httpx.Client``: base URL, auth headers, timeouts, User-Agent; with
    ``deadline``, its connections keep each request's wall-clock deadline."""
    if transport is None and deadline is not None:
        transport = deadline_transport(deadline)
    headers = {"User-Agent": f"syncd/{__version__}", "Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif email and key:
        headers["X-Auth-Email"] = email
        headers["X-Auth-Key"] = key
    return httpx.Client(
        base_url=base_url.rstrip("/") + "/",
        headers=headers,
        timeout=httpx.Timeout(timeout),
        transport=transport,
        follow_redirects=False,
    )
