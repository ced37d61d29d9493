"""How a collector fails: the error types, the translation helpers, and the scope's deadline.

Every vendor module translates its SDK's failures here and nowhere else: it picks a
``model.Reason``
from the SDK's own error type or code where that says more (a throttling code, an auth error
type), and otherwise from the HTTP status through ``from_status``, the one table of statuses.
``retryable`` follows from the reason and is never set by hand. A ``ScopeDeadline`` bounds the
time of one scope (``scope_timeout``) on the clock the collector was given.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from syncd.errors import SyncdError
from syncd.model import Reason


class CollectorError(SyncdError):
    """A collector could not read one scope (an account/region, project, subscription, ...)."""

    def __init__(self, message: str, *, reason: Reason = Reason.ERROR) -> None:
        super().__init__(message)
        self._reason = reason

    @property
    def reason(self) -> Reason:
        return self._reason

    @property
    def retryable(self) -> bool:
        return self._reason.retryable


class ScopeDenied(CollectorError):
    """The scope cannot be read by design (region not enabled): skipped, not failed."""


def from_status(status: int) -> Reason:
    """The reason an HTTP status gives, when the SDK's error says nothing more precise."""
    if status in (401, 403):
        return Reason.AUTH
    if status == 404:
        return Reason.NOT_FOUND
    if status == 408:
        return Reason.TIMEOUT
    if status == 429:
        return Reason.THROTTLED
    if status >= 500:
        return Reason.SERVER_ERROR
    return Reason.ERROR


def failure(where: str, reason: Reason, detail: str) -> CollectorError:
    """The error of ``where`` (a collector, scope or call) with ``detail`` (never a secret)."""
    return CollectorError(f"{where}: {detail}", reason=reason)


# An SDK's exception types, each with its reason and what to say; the first matching row wins.
# What is said is a format: ``{type}`` the exception's type name, ``{exc}`` the exception,
# ``{detail}`` what the vendor's ``detail`` function makes of it.
ByType = Sequence[tuple[type[BaseException] | tuple[type[BaseException], ...], Reason, str]]


def by_type(
    where: str,
    exc: BaseException,
    table: ByType,
    *,
    detail: Callable[[BaseException], str] | None = None,
) -> CollectorError:
    """The error for an SDK exception that carries no HTTP status (the wire, credentials, a
    body that does not parse), classified by its type; unlisted types are ``error``. A row
    quotes the type's name unless it says more: an SDK's message may hold a URL with a token,
    or a key, so only what a vendor's ``detail`` keeps of it (never a secret) is quoted."""
    for kinds, reason, said in table:
        if isinstance(exc, kinds):
            told = said.format(type=type(exc).__name__, exc=exc, detail=detail and detail(exc))
            return failure(where, reason, told)
    return failure(where, Reason.ERROR, type(exc).__name__)


@contextmanager
def translated(
    where: str,
    kinds: tuple[type[BaseException], ...],
    translate: Callable[[str, BaseException], CollectorError],
) -> Iterator[None]:
    """Run the body; an SDK failure of ``kinds`` is raised as ``translate``'s ``CollectorError``
    (the vendor's one translation: its table, and what its SDK says better than a table)."""
    try:
        yield
    except kinds as exc:
        raise translate(where, exc) from exc


def reason_of(exc: BaseException) -> Reason:
    """A collector's own reason; anything else that escaped it is an ``error``."""
    return exc.reason if isinstance(exc, CollectorError) else Reason.ERROR


@dataclass(frozen=True, slots=True)
class ScopeDeadline:
    """The end of one scope's time: ``scope_timeout`` from when it was made, on ``clock``."""

    at: float
    limit: float
    clock: Callable[[], float] = time.monotonic

    @classmethod
    def after(cls, seconds: float, *, clock: Callable[[], float] = time.monotonic) -> ScopeDeadline:
        return cls(clock() + seconds, seconds, clock)

    def remaining(self) -> float:
        """Seconds left; zero or less once the deadline has passed."""
        return self.at - self.clock()

    def left(self, where: str) -> float:
        """Seconds left, or a ``timeout`` ``CollectorError`` naming ``where`` when none are."""
        remaining = self.remaining()
        if remaining <= 0:
            raise failure(
                where,
                Reason.TIMEOUT,
                f"out of time after {self.limit:g}s (collectors.scope_timeout)",
            )
        return remaining
