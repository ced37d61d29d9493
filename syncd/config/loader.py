"""Loading: read the file, expand `${VAR}`, apply environment fallbacks, validate; every
problem a `ConfigError` with its key path on one line."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import (
    ValidationError,
)

from syncd.config.runtime import MOVED
from syncd.config.settings import SECRET_KEYS, Settings
from syncd.config.values import SHOWN_CHARS, shown
from syncd.config.yaml_reader import file_problem, read_yaml
from syncd.errors import ConfigError

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-(.*?))?\}")
DEFAULT_PATH = Path("config/syncd.yaml")


def expand(text: str, env: Mapping[str, str], *, path: str = "") -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without default is an error."""
    missing: list[tuple[str, str]] = []

    def sub(m: re.Match[str]) -> str:
        name, default = m.group(1), m.group(2)
        if name in env and (env[name] or default is None):
            return env[name]
        if default is not None:
            return default
        missing.append((path, f"environment variable {name} is not set"))
        return ""

    out = _VAR.sub(sub, text)
    if missing:
        raise ConfigError(missing)
    return out


def expand_tree(node: Any, env: Mapping[str, str], path: str = "") -> Any:
    """Expand variables in every string value (not in comments or keys) of parsed YAML."""
    if isinstance(node, dict):
        return {k: expand_tree(v, env, f"{path}.{k}" if path else str(k)) for k, v in node.items()}
    if isinstance(node, list):
        return [expand_tree(v, env, f"{path}.{i}") for i, v in enumerate(node)]
    if isinstance(node, str):
        return expand(node, env, path=path)
    return node


def resolve_path(explicit: str | None, env: Mapping[str, str] | None = None) -> Path:
    """``--config``, else ``$SYNCD_CONFIG``, else ``config/syncd.yaml``."""
    env = os.environ if env is None else env
    return Path(explicit or env.get("SYNCD_CONFIG") or DEFAULT_PATH)


Flag = tuple[str, str]  # (value, the flag that gave it), keyed by the setting's path

# What operators change per deployment without editing the file: the environment wins over the
# file, a command-line flag (``flags``) over both. Each problem names where the value came from.
ENV_OVERRIDES = {
    "metrics.listen": "SYNCD_METRICS_LISTEN",
    "metrics.pushgateway": "SYNCD_METRICS_PUSHGATEWAY",
    "logging.format": "SYNCD_LOG_FORMAT",
    "logging.level": "SYNCD_LOG_LEVEL",
}


def load(
    path: Path, env: Mapping[str, str] | None = None, *, flags: Mapping[str, Flag] | None = None
) -> Settings:
    """Read, expand and validate a config file. Raises ``ConfigError`` naming every problem."""
    env = os.environ if env is None else env
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError([("", f"cannot read it: {exc.strerror}")], source=str(path)) from None
    return parse(data, env, source=str(path), flags=flags)


def parse(
    text: str | bytes,
    env: Mapping[str, str],
    *,
    source: str = "<config>",
    flags: Mapping[str, Flag] | None = None,
) -> Settings:
    """Validate configuration text (bytes must be UTF-8). Raises ``ConfigError`` naming
    ``source``, the file the text came from, whatever the problem (YAML, limits, keys)."""
    origins: dict[str, str] = {}
    try:
        raw = read_yaml(text)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise file_problem("the file must be a mapping at the top level")
        raw = _apply_env_defaults(expand_tree(raw, env), env)
        overrides = {k: (env[v], v) for k, v in ENV_OVERRIDES.items() if env.get(v)}
        overrides |= dict(flags or {})
        origins = {key: where for key, (_, where) in overrides.items()}
        return validate(_override(raw, overrides))
    except ConfigError as exc:
        problems = [(_from(p, origins), m) for p, m in exc.problems]
        raise ConfigError(
            [(_one_line(p), _one_line(m)) for p, m in problems], source=_one_line(source)
        ) from None


def _override(raw: dict[str, Any], overrides: Mapping[str, Flag]) -> dict[str, Any]:
    """``raw`` with ``section.key`` values replaced."""
    out = dict(raw)
    for path, (value, _) in overrides.items():
        section, key = path.split(".")
        current = out.get(section)
        out[section] = {**(current if isinstance(current, dict) else {}), key: value}
    return out


def _from(path: str, origins: Mapping[str, str]) -> str:
    return f"{path} (from {origins[path]})" if path in origins else path


def _one_line(text: str) -> str:
    """Control characters escaped, so every problem stays on its line; cut if long."""
    text = text.translate(_ESCAPES)
    return text if len(text) <= 4 * SHOWN_CHARS else text[: 4 * SHOWN_CHARS - 3] + "..."


_ESCAPES = {c: repr(chr(c))[1:-1] for c in [*range(32), 127]}


def _apply_env_defaults(raw: dict[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    cf = raw.get("cloudflare")
    if not isinstance(cf, dict):
        return raw
    cf = {k: v for k, v in cf.items() if v != ""}
    # Credentials from the environment only when the file names none of either kind, so a
    # CLOUDFLARE_API_TOKEN exported for another tool never replaces a configured key.
    keys = ["base_url"]
    if not any(cf.get(k) for k in ("api_token", "api_token_file", "api_email", "api_key")):
        keys += ["api_token", "api_token_file", "api_email", "api_key"]
    for key in keys:
        var = _ENV_FALLBACK[key]
        if cf.get(key) is None and env.get(var):
            cf[key] = env[var]
    return {**raw, "cloudflare": cf}


_ENV_FALLBACK = {
    "api_token": "CLOUDFLARE_API_TOKEN",
    "api_token_file": "CLOUDFLARE_API_TOKEN_FILE",
    "api_email": "CLOUDFLARE_EMAIL",
    "api_key": "CLOUDFLARE_API_KEY",
    "base_url": "CLOUDFLARE_BASE_URL",
}


def validate(raw: dict[str, Any]) -> Settings:
    moved, raw = _moved(raw)
    try:
        settings = Settings.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(moved + [_describe(err) for err in exc.errors()]) from None
    if moved:
        raise ConfigError(moved)
    return settings


def _moved(raw: dict[str, Any]) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Problems for keys of an older layout (``MOVED``), and ``raw`` without them."""
    section = raw.get("sync")
    if not isinstance(section, dict):
        return [], raw
    old = [k for k in section if f"sync.{k}" in MOVED]
    problems = [(f"sync.{k}", f"moved to {MOVED[f'sync.{k}']}") for k in old]
    rest = {k: v for k, v in section.items() if k not in old}
    return problems, {**raw, "sync": rest}


def _describe(err: Any) -> tuple[str, str]:
    loc = [str(p) for p in err["loc"]]
    path = ".".join(p if len(p) <= SHOWN_CHARS else shown(p) for p in loc)
    value = err.get("input")
    if any(p in SECRET_KEYS for p in loc) or err["type"] == "extra_forbidden":
        # An unknown key may be a misspelt secret (api_tokn: ...): never echo its value.
        echoed = "'***'" if err["type"] != "extra_forbidden" else ""
    elif isinstance(value, dict | list) or err["type"] == "missing":
        echoed = ""
    else:
        echoed = shown(value)
    msg = err["msg"]
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    return path, f"{msg} (got {echoed})" if echoed else msg
