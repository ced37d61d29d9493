"""Value types shared by every section: durations with ranges, paths, header-safe secrets,
URLs, and how a value is echoed in a message (cut, never a secret)."""

from __future__ import annotations

import ipaddress
import math
import re
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
)

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"

_NUMBER = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*$")
_COMPOUND = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}  # largest first
SHOWN_CHARS = 80  # an echoed value is cut to this many characters (a 100 KB value stays out)


def shown(value: object) -> str:
    """``repr(value)`` for a message, cut to ``SHOWN_CHARS`` characters."""
    text = repr(value)
    if len(text) <= SHOWN_CHARS:
        return text
    return f"{text[: SHOWN_CHARS - 3]}... ({len(text):,} characters)"


def parse_duration(value: object) -> float:
    """``15m``, ``30s``, ``1.5h``, ``250ms``, a compound ``1h30m`` (units largest first, as
    Prometheus writes them) or a plain number of seconds, as seconds."""
    if isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")  # noqa: TRY004 (pydantic wants ValueError)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str) and (m := _NUMBER.match(value)):
        return float(m.group(1))
    text = value.strip().replace(" ", "") if isinstance(value, str) else ""
    if not _COMPOUND.match(text):
        raise ValueError(f"not a duration (use e.g. 30s, 15m, 1h30m, 1d): {shown(value)}")
    parts = [(float(n), unit) for n, unit in _PART.findall(text)]
    order = [list(_UNITS).index(unit) for _, unit in parts]
    if order != sorted(set(order)):
        raise ValueError(
            f"not a duration: units go largest first, each once (e.g. 1h30m): {shown(value)}"
        )
    return sum(n * _UNITS[unit] for n, unit in parts)


def format_duration(seconds: float) -> str:
    """The shortest of ``250ms``, ``30s``, ``5m``, ``6h``, ``7d`` that is exact."""
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds * 1000:g}ms" if 0 < seconds < 1 else f"{seconds:g}s"


def _within(low: float, high: float) -> AfterValidator:
    """A duration between ``low`` and ``high`` seconds; infinity and NaN are never one."""

    def check(seconds: float) -> float:
        if not (math.isfinite(seconds) and low <= seconds <= high):
            raise ValueError(f"must be between {format_duration(low)} and {format_duration(high)}")
        return seconds

    return AfterValidator(check)


# Each duration has a range a serious deployment stays inside (docs/configuration.md): 0 would
# fail every request, .inf or 1e10 would crash the socket layer or never end.
RequestTimeout = Annotated[float, BeforeValidator(parse_duration), _within(0.1, 300.0)]
Backoff = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 60.0)]
RatePeriod = Annotated[float, BeforeValidator(parse_duration), _within(1.0, 86400.0)]
ScopeTimeout = Annotated[float, BeforeValidator(parse_duration), _within(1.0, 6 * 3600.0)]
Interval = Annotated[float, BeforeValidator(parse_duration), _within(0.01, 7 * 86400.0)]
Jitter = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 86400.0)]
ShutdownTimeout = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 3600.0)]
StaleAfter = Annotated[float, BeforeValidator(parse_duration), _within(1.0, 30 * 86400.0)]
VerifyInterval = Annotated[float, BeforeValidator(parse_duration), _within(0.0, 30 * 86400.0)]
ResolveTimeout = Annotated[float, BeforeValidator(parse_duration), _within(0.01, 300.0)]
ObserveSpan = Annotated[float, BeforeValidator(parse_duration), _within(60.0, 7 * 86400.0)]


def quoted_id(value: object) -> object:
    """A hex id written unquoted is read by YAML as a number when it holds only digits
    (``0123...`` even as an octal one): say to quote it rather than echo a mangled number."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        raise ValueError(  # noqa: TRY004 (pydantic wants ValueError)
            "YAML read this unquoted id as a number (digits only, a leading 0 even as octal): "
            'write it in quotes, e.g. "0123456789abcdef0123456789abcdef"'
        )
    return value


HexId = Annotated[str, BeforeValidator(quoted_id)]


def _path(value: object) -> object:
    """A file path given as text: not empty (``''`` would become ``.``), no NUL byte."""
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("a path cannot be empty")
        if "\x00" in value:
            raise ValueError("a path cannot contain a NUL byte")
    return value


FilePath = Annotated[Path, BeforeValidator(_path)]


def header_value(value: str) -> str:
    """``value`` without surrounding whitespace (a mounted secret file ends in a newline); it must
    be sendable as an HTTP header value. The message names the key and never the value."""
    text = value.strip()
    if not text:
        raise ValueError("is empty (after removing surrounding whitespace)")
    for position, char in enumerate(text, 1):
        if not " " < char < "\x7f":
            raise ValueError(
                f"cannot be sent in an HTTP header: character {position} of {len(text)} "
                "is a space, a control or a non-ASCII character"
            )
    return text


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def is_loopback_host(host: str) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1, the only hosts plain HTTP is allowed to."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_url(value: str, *, plain_http: Literal["loopback", "never", "any"] = "loopback") -> str:
    """An http(s) URL. Plain http carries credentials in clear, so by default only to loopback
    (the simulators); ``never`` where TLS is required, ``any`` where nothing secret is sent."""
    parts = urlsplit(value)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {shown(value)}")
    if parts.scheme == "http" and plain_http == "never":
        raise ValueError(f"https is required here (plain http is never allowed): {shown(value)}")
    if parts.scheme == "http" and plain_http == "loopback" and not is_loopback_host(parts.hostname):
        raise ValueError(f"plain http is allowed only for loopback hosts: {shown(value)}")
    return value.rstrip("/")
