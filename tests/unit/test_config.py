"""Configuration loading: expansion, defaults, and errors that name the key and value."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from syncd import config
from syncd.config.loader import expand_tree
from syncd.errors import ConfigError

MINIMAL = """
cloudflare:
  api_token: ${TOKEN}
  zones: [{id: 0123456789abcdef0123456789abcdef, name: example.com, origins: all}]
collectors:
  static:
    - {ip: 192.0.2.10, vendor: aws, region: us-east-1}
"""


def problems(text: str, env: dict[str, str] | None = None) -> list[tuple[str, str]]:
    with pytest.raises(ConfigError) as info:
        config.parse(text, {"TOKEN": "t0ken-value"} if env is None else env)
    return info.value.problems


def test_minimal_config_gets_safe_defaults():
    s = config.parse(MINIMAL, {"TOKEN": "t0ken-value"})
    zone = s.cloudflare.zones[0]
    assert zone.policy == "upsert-only"
    assert s.cloudflare.batch_size == 100
    assert s.cloudflare.base_url == "https://api.cloudflare.com/client/v4"
    assert s.cloudflare.api == "auto"
    assert s.cloudflare.max_mappings_per_zone == 3500
    assert s.cloudflare.api_token is not None
    assert s.cloudflare.api_token.get_secret_value() == "t0ken-value"


def test_env_default_syntax_and_missing_variable():
    text = MINIMAL.replace("${TOKEN}", "${NOPE:-fallback}")
    s = config.parse(text, {})
    assert s.cloudflare.api_token is not None
    assert s.cloudflare.api_token.get_secret_value() == "fallback"
    assert problems(MINIMAL, {}) == [
        ("cloudflare.api_token", "environment variable TOKEN is not set")
    ]


def test_environment_variables_fill_cloudflare_credentials():
    text = MINIMAL.replace("  api_token: ${TOKEN}\n", "")
    s = config.parse(text, {"CLOUDFLARE_EMAIL": "ops@example.com", "CLOUDFLARE_API_KEY": "k3y"})
    assert s.cloudflare.api_email == "ops@example.com"
    assert s.cloudflare.api_key is not None
    assert s.cloudflare.api_token is None


def test_missing_credentials_is_an_error_naming_the_keys():
    text = MINIMAL.replace("  api_token: ${TOKEN}\n", "")
    ((path, msg),) = problems(text, {})
    assert path == "cloudflare"
    assert "cloudflare.api_token" in msg


@pytest.mark.parametrize(
    ("snippet", "path", "needle"),
    [
        ("sync: {max_delete_fraction: 1.5}", "sync.max_delete_fraction", "1.5"),
        ("sync: {bogus: 1}", "sync.bogus", "unknown key"),
        ("collectors: {request_timeout: soon}", "collectors.request_timeout", "soon"),
        ("collectors: {concurrency: 0}", "collectors.concurrency", "0"),
        ("schedule: {cron: '* * *'}", "schedule.cron", "five fields"),
        ("schedule: {cron: '61 * * * *'}", "schedule.cron", "61 * * * *"),
        ("metrics: {listen: 'nowhere:99999'}", "metrics.listen", "nowhere"),
        ("state: {path: [1]}", "state.path", ""),
        ("logging: {level: loud}", "logging.level", "loud"),
        ("collectors: {aws: [{name: 'bad name'}]}", "collectors.aws.0.name", "bad name"),
        (
            "collectors: {static: [{ip: 300.1.1.1, vendor: aws, region: x}]}",
            "collectors.static.0.ip",
            "300.1.1.1",
        ),
        (
            "collectors: {static: [{ip: 192.0.2.1, vendor: ibm, region: x}]}",
            "collectors.static.0.vendor",
            "ibm",
        ),
        (
            "collectors: {oci: [{name: o, service_endpoint_template: 'http://127.0.0.1:1'}]}",
            "collectors.oci.0.service_endpoint_template",
            "{region}",
        ),
        (
            "collectors: {azure: [{name: a, base_url: 'http://127.0.0.1:1'}]}",
            "collectors.azure.0.base_url",
            "plain http",
        ),
        ("resolver: {nameservers: [dns.google]}", "resolver.nameservers", "dns.google"),
        ("resolver: {nameservers: ['127.0.0.1:99999']}", "resolver.nameservers", "99999"),
        ("resolver: {nameservers: ['[::1]:x']}", "resolver.nameservers", "[::1]:x"),
        ("resolver: {timeout: 0s}", "resolver.timeout", "between 10ms and 5m"),
        ("resolver: {concurrency: 0}", "resolver.concurrency", "0"),
    ],
)
def test_each_section_names_the_bad_key(snippet: str, path: str, needle: str):
    # A second top-level `collectors:` would be a duplicate key: the snippet replaces MINIMAL's.
    base = (
        MINIMAL.split("collectors:", maxsplit=1)[0]
        if snippet.startswith("collectors:")
        else MINIMAL
    )
    found = problems(base + snippet + "\n")
    assert [p for p, _ in found] == [path]
    assert needle in found[0][1]


def test_plain_http_only_for_loopback():
    bad = MINIMAL.replace("  zones:", "  base_url: http://api.example.com/client/v4\n  zones:")
    ((path, msg),) = problems(bad)
    assert path == "cloudflare.base_url"
    assert "loopback" in msg
    ok = MINIMAL.replace("  zones:", "  base_url: http://127.0.0.1:8080/client/v4\n  zones:")
    assert config.parse(ok, {"TOKEN": "x"}).cloudflare.base_url.startswith("http://127.0.0.1")


def test_secret_values_are_masked_in_errors_and_dumps():
    text = MINIMAL.replace("  zones:", "  api_key: [not, a, string]\n  zones:")
    found = problems(text, {"TOKEN": "s3cr3t-token"})
    assert "s3cr3t" not in repr(found)
    s = config.parse(MINIMAL, {"TOKEN": "s3cr3t-token"})
    dumped = config.masked(s)
    assert dumped["cloudflare"]["api_token"] == "***"
    assert "s3cr3t" not in repr(dumped)
    assert "s3cr3t" not in repr(s)


def test_zone_collectors_must_exist_and_names_are_unique():
    text = MINIMAL.replace("origins: all}", "origins: all, collectors: [aws-prod]}")
    ((path, msg),) = problems(text)
    assert "aws-prod" in msg
    dupes = MINIMAL + "  aws: [{name: a}, {name: a}]\n"
    ((path, msg),) = problems(dupes)
    assert path == "collectors"
    assert "'a'" in msg


def test_durations():
    assert config.parse_duration("15m") == 900
    assert config.parse_duration("250ms") == 0.25
    assert config.parse_duration(3) == 3
    with pytest.raises(ValueError, match="fortnight"):
        config.parse_duration("fortnight")


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h30m", 5400), ("90s", 90), ("1d", 86400), ("1d2h3m4s", 93784), ("1m500ms", 60.5)],
)
def test_compound_durations_as_prometheus_writes_them(text: str, seconds: float):
    assert seconds == config.parse_duration(text)


@pytest.mark.parametrize("text", ["30m1h", "1h1h", "1h 30", "h", "1w"])
def test_a_compound_duration_out_of_order_or_unknown_is_refused(text: str):
    with pytest.raises(ValueError, match="not a duration"):
        config.parse_duration(text)


def test_schedule_interval_takes_a_compound_duration():
    settings = config.parse(MINIMAL + "schedule: {interval: 1h30m}\n", {"TOKEN": "t"})
    assert 5400 == settings.schedule.interval


@pytest.mark.parametrize(
    "zone_id", ["01234567012345670123456701234567", "12345678901234567890123456789012"]
)
def test_an_unquoted_numeric_zone_id_is_told_to_be_quoted(zone_id: str):
    text = MINIMAL.replace("id: 0123456789abcdef0123456789abcdef", f"id: {zone_id}")
    assert text != MINIMAL
    ((path, msg),) = problems(text)
    assert "cloudflare.zones.0.id" == path
    assert "write it in quotes" in msg


def test_load_reports_unreadable_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        config.load(tmp_path / "absent.yaml", {})
    bad = tmp_path / "bad.yaml"
    bad.write_text("cloudflare: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load(bad, {})


def test_resolve_path_order():
    assert config.resolve_path("a.yaml", {"SYNCD_CONFIG": "b.yaml"}) == Path("a.yaml")
    assert config.resolve_path(None, {"SYNCD_CONFIG": "b.yaml"}) == Path("b.yaml")
    assert config.resolve_path(None, {}) == Path("config/syncd.yaml")


_keys = st.sampled_from(
    [
        "cloudflare",
        "zones",
        "id",
        "api_token",
        "collectors",
        "static",
        "aws",
        "name",
        "regions",
        "sync",
        "batch_size",
        "schedule",
        "interval",
        "cron",
        "metrics",
        "listen",
        "state",
        "path",
        "logging",
        "level",
        "ip",
        "vendor",
        "region",
        "policy",
        "origins",
        "x",
    ]
)
_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-5, 500)
    | st.floats(allow_nan=False)
    | st.text(max_size=12)
    | st.sampled_from(["${MISSING}", "${HOME:-x}", "15m", "all", "sync"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=20,
)


@given(st.dictionaries(_keys, _values, max_size=5))
def test_any_structure_loads_or_names_its_problems(raw):
    try:
        config.validate(expand_tree(raw, {}))
    except ConfigError as exc:
        assert exc.problems  # noqa: PT017 (hypothesis: raising is optional)
        assert all(isinstance(path, str) for path, _ in exc.problems)  # noqa: PT017
        assert all(msg for _, msg in exc.problems)  # noqa: PT017


@given(st.text(max_size=200))
def test_any_text_parses_or_is_a_config_error(text):
    try:
        config.parse(text, {})
    except ConfigError as exc:
        assert str(exc).startswith("invalid configuration")  # noqa: PT017


def test_an_empty_collector_list_for_a_zone_is_an_error():
    text = MINIMAL.replace("origins: all}", "origins: all, collectors: []}")
    ((path, _),) = problems(text)
    assert "cloudflare.zones.0.collectors" == path


def test_an_exported_token_never_replaces_a_configured_key():
    text = MINIMAL.replace("  api_token: ${TOKEN}\n", "  api_email: a@example.com\n  api_key: k\n")
    s = config.parse(text, {"CLOUDFLARE_API_TOKEN": "for-another-tool"})
    assert (None, "a@example.com") == (s.cloudflare.api_token, s.cloudflare.api_email)


def test_a_misspelt_secret_key_is_not_echoed():
    text = MINIMAL.replace(
        "  api_token: ${TOKEN}", "  api_token: ${TOKEN}\n  api_tokn: s3cr3t-value"
    )
    found = problems(text)
    assert [("cloudflare.api_tokn", "unknown key")] == found


A, B = "a" * 32, "b" * 32


def test_repeated_zone_ids_and_names_are_named():
    text = MINIMAL.replace(
        "  zones: [{id: 0123456789abcdef0123456789abcdef, name: example.com, origins: all}]",
        f"  zones: [{{id: {A}, name: x}}, {{id: {A}, name: y}}, {{id: {B}, name: x}}]",
    )
    ((path, msg),) = problems(text)
    assert (
        "cloudflare",
        "zone ids must be unique; repeated: ['aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa']",
    ) == (
        path,
        msg.split(" (")[0].replace("Value error, ", ""),
    )


def test_resolver_nameservers_as_ip_and_port():
    settings = config.parse(
        MINIMAL + "resolver: {nameservers: ['192.0.2.53', '127.0.0.1:5353', '[::1]:53', '::1']}\n",
        {"TOKEN": "t"},
    )
    assert (
        ("192.0.2.53", 53),
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("::1", 53),
    ) == settings.resolver.addresses
    default = config.parse(MINIMAL, {"TOKEN": "t"}).resolver
    assert (5.0, 32, ()) == (default.timeout, default.concurrency, default.addresses)


def _with_token_file(path: str, **extra: object) -> dict[str, object]:
    zones = [{"id": "a" * 32}]
    return {"cloudflare": {"api_token_file": path, "zones": zones, **extra}}


def test_api_token_file_is_read_stripped_and_again_at_each_call(tmp_path: Path):
    secret = tmp_path / "token"
    secret.write_text("  cf-token-one\n")
    cf = config.validate(_with_token_file(str(secret))).cloudflare
    assert "cf-token-one" == cf.token()
    secret.write_text("cf-token-two\n")  # rotated: no reload needed
    assert "cf-token-two" == cf.token()
    secret.unlink()
    with pytest.raises(ConfigError, match=r"cloudflare\.api_token_file: cannot read"):
        cf.token()


def test_api_token_file_problems_name_the_key_never_the_value(tmp_path: Path):
    secret = tmp_path / "token"
    secret.write_text("cf-token with-a-space\n")
    with pytest.raises(ConfigError) as bad:
        config.validate(_with_token_file(str(secret)))
    assert "cloudflare.api_token_file" in str(bad.value)
    assert "with-a-space" not in str(bad.value)
    with pytest.raises(ConfigError, match="cannot read the token file"):
        config.validate(_with_token_file(str(tmp_path / "missing")))
    secret.write_text("cf-token\n")
    with pytest.raises(ConfigError, match="not both"):
        config.validate(_with_token_file(str(secret), api_token="cf-other"))


def test_cloudflare_api_token_file_from_the_environment(tmp_path: Path):
    secret = tmp_path / "token"
    secret.write_text("cf-from-env\n")
    text = "cloudflare:\n  zones: [{id: " + "b" * 32 + "}]\n"
    settings = config.parse(text, {"CLOUDFLARE_API_TOKEN_FILE": str(secret)})
    assert "cf-from-env" == settings.cloudflare.token()
