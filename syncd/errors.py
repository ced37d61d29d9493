"""The one exception tree of syncd.

Every failure that crosses a stage boundary is one of these; SDK and HTTP errors are translated
where they happen (each collector module, ``cloudflare/transport.py``) and never leak upward.

    SyncdError               reason: a bounded label for logs and metrics
    ├── ConfigError          key path, masked value; the CLI exits 2
    ├── CollectorError       in collectors/failures.py: a Reason, retryable derived from it
    │   └── ScopeDenied      region not enabled / API disabled: the scope is skipped, not failed
    ├── CloudflareError      status, code, message, retryable
    │   ├── AuthError        401/403 (not 1135): the zone's remaining batches are not sent
    │   ├── RateLimited      429, retry_after
    │   ├── ZoneFull         code 1164: the zone holds its maximum of mappings
    │   ├── RouteMissing     codes 7000/7003: this API generation is not routed; auto switches
    │   └── TransportError   timeouts, resets, malformed bodies: no usable answer at all
    ├── StateError           the ownership registry cannot be read or written
    └── BudgetSpent          the run's Cloudflare budget is spent: the zone is deferred, not failed
"""

from __future__ import annotations

from enum import IntEnum
from typing import Any


class ExitCode(IntEnum):
    """The one definition of syncd's exit codes (the CLI, the service and the demo)."""

    OK = 0  # everything applied (or, for a plan, would be)
    FAILED = 1  # an item, zone or collector failed, deletions were refused, a run was abandoned
    USAGE = 2  # a configuration or usage error: nothing was sent
    CHANGES = 3  # `plan --detailed-exitcode`: the plan succeeded and has changes to make


class SyncdError(Exception):
    """Root of every error syncd raises on purpose."""

    @property
    def reason(self) -> str:
        """A bounded label value (logs, metrics); subclasses say more."""
        return type(self).__name__.lower()


class ConfigError(SyncdError):
    """The configuration is invalid; ``problems`` lists ``(key_path, message)`` pairs, and
    ``source`` names the file they came from ("" for settings built in code)."""

    def __init__(self, problems: list[tuple[str, str]], *, source: str = "") -> None:
        self.problems = problems
        self.source = source
        lines = [f"{path}: {msg}" if path else msg for path, msg in problems]
        head = f"invalid configuration in {source}" if source else "invalid configuration"
        if len(lines) == 1:  # one line for one problem, a list for several
            super().__init__(f"{head}: {lines[0]}")
        else:
            super().__init__(f"{head}:\n  " + "\n  ".join(lines))


class CloudflareError(SyncdError):
    """Cloudflare answered with an error for a whole request (not a per-item failure)."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: int | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.retryable = retryable
        # True when some attempt may have reached Cloudflare and been applied although no usable
        # answer came back (a read timeout, a reset, a 5xx): a write's outcome is then unknown.
        self.outcome_unknown = False

    @property
    def reason(self) -> str:
        """A bounded label value: the Cloudflare code, else the HTTP status, else the class."""
        if self.code is not None:
            return str(self.code)
        if self.status is not None:
            return f"http_{self.status}"
        return type(self).__name__.lower()


class AuthError(CloudflareError):
    """The credentials were refused (401, or 403 other than 1135) for this request."""

    @property
    def for_every_zone(self) -> bool:
        """401: the credentials themselves are invalid, so no other zone will answer either
        (a 403 may be one zone's permission only)."""
        return self.status == 401


class RateLimited(CloudflareError):
    """HTTP 429; ``retry_after`` is Cloudflare's Retry-After in seconds, when it sent one."""

    def __init__(
        self, message: str, *, retry_after: float | None, status: int = 429, code: int | None = None
    ) -> None:
        super().__init__(message, status=status, code=code, retryable=True)
        self.retry_after = retry_after


class ZoneFull(CloudflareError):
    """Code 1164: the zone already holds its maximum number of mappings."""


class RouteMissing(CloudflareError):
    """Codes 7000/7003 ("No route for that URI"): this API generation is not available."""


class TransportError(CloudflareError):
    """No usable HTTP answer: timeout, reset, or a body that is not the documented envelope.

    ``sent``: the request may have reached Cloudflare (every case but a failed connection)."""

    def __init__(self, message: str, *, sent: bool = True, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.outcome_unknown = sent

    @property
    def reason(self) -> str:
        return "transport"


class StateError(SyncdError):
    """The ownership registry is locked, corrupt or unwritable."""


class BudgetSpent(SyncdError):
    """The run's Cloudflare budget (``cloudflare.run_budget``) was spent before a zone was read:
    the zone is deferred to the next run, which is not a failure."""
