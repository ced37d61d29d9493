"""The CLI in process against the Cloudflare simulator: outputs, formats and exit codes."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
import yaml

from syncd import cli
from syncd.simulators.cloudflare import cf_error
from tests.conftest import TOKEN, ZONE

STATIC = [
    {"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"},
    {"ip": "2001:db8::10", "vendor": "gcp", "region": "us-central1"},
    {"ip": "10.0.0.5", "vendor": "aws", "region": "us-east-1"},
]


@pytest.fixture(autouse=True)
def _no_terminal_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """Output to a pipe keeps whole lines; an exported COLUMNS would fit the tables."""
    monkeypatch.delenv("COLUMNS", raising=False)


@pytest.fixture
def config(cf, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", TOKEN)
    raw = {
        "cloudflare": {
            "backoff": "10ms",
            "retries": 1,
            "api_token": "${CLOUDFLARE_API_TOKEN}",
            "base_url": cf.base_url,
            "zones": [{"id": ZONE, "name": "example.com", "origins": "all"}],
        },
        "collectors": {"static": STATIC},
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"format": "json"},
    }
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_plan_then_sync_then_idle(capsys, cf, config: Path):
    code, out, _ = run(capsys, "plan", "--config", str(config))
    assert 0 == code
    assert "2 to create" in out
    assert "skip:non_public" in out
    assert {} == cf.mappings(ZONE), "plan never writes"

    code, out, err = run(capsys, "sync", "--config", str(config))
    assert 0 == code
    assert "result: success" in out
    assert {"192.0.2.10", "2001:db8::10"} == set(cf.mappings(ZONE))
    events = [json.loads(line)["event"] for line in err.splitlines() if line.startswith("{")]
    assert "sync_finished" in events
    assert TOKEN not in out + err

    code, out, _ = run(capsys, "plan", "--config", str(config), "--output", "json")
    plan = json.loads(out)
    assert (0, [], 2) == (code, plan["zones"][0]["create"], plan["zones"][0]["unchanged"])


def test_failed_items_exit_1(capsys, cf, config: Path):
    cf.inject(cf_error(500, 1140, "Internal error.", times=5, path="/batch$"))
    code, out, _ = run(capsys, "sync", "--config", str(config))
    assert 1 == code
    assert "failed: " in out


def test_config_error_exits_2_naming_the_key(capsys, config: Path):
    raw = yaml.safe_load(config.read_text())
    raw["cloudflare"]["batch_size"] = 500
    config.write_text(yaml.safe_dump(raw))
    code, _, err = run(capsys, "sync", "--config", str(config))
    assert 2 == code
    assert "cloudflare.batch_size" in err
    assert "500" in err


def test_discover_formats(capsys, config: Path):
    code, table, _ = run(capsys, "discover", "--config", str(config))
    assert 0 == code
    assert "2001:db8::10" in table
    _, out, _ = run(capsys, "discover", "--config", str(config), "--output", "csv")
    rows = list(csv.DictReader(io.StringIO(out)))
    assert ["10.0.0.5", "192.0.2.10", "2001:db8::10"] == [r["ip"] for r in rows]
    _, out, _ = run(capsys, "discover", "--config", str(config), "--output", "json")
    doc = json.loads(out)
    assert (1, "discovery") == (doc["schema_version"], doc["kind"])
    assert {"ip", "vendor", "region", "collector", "account", "resource"} == set(
        doc["addresses"][0]
    )


def test_plan_detailed_exitcode_tells_drift_from_none(capsys, cf, config: Path):
    """As Terraform's: 3 while changes are pending, 0 once applied; without the flag, 0."""
    assert 0 == run(capsys, "plan", "--config", str(config))[0]
    code, out, _ = run(capsys, "plan", "--config", str(config), "--detailed-exitcode")
    assert (3, True) == (code, "2 to create" in out)
    assert 0 == run(capsys, "sync", "--config", str(config))[0]
    code, out, _ = run(capsys, "plan", "--config", str(config), "--detailed-exitcode")
    assert (0, True) == (code, "0 to create" in out)
    cf.inject(cf_error(500, 1140, "Internal error.", times=50))
    code, _, _ = run(capsys, "plan", "--config", str(config), "--detailed-exitcode")
    assert 1 == code, "a failure is 1, never taken for drift or its absence"


def test_every_result_has_a_versioned_json_document(capsys, cf, config: Path):
    docs = {}
    for argv in (
        ["sync", "--output", "json"],
        ["plan", "--output", "json"],
        ["regions", "--output", "json"],
        ["origins", "--output", "json"],
        ["discover", "--output", "json"],
        ["check-config", "--output", "json"],
        ["check-config", "--zones", "--output", "json"],
    ):
        code, out, _ = run(capsys, *argv, "--config", str(config))
        assert 0 == code, argv
        doc = json.loads(out)
        assert 1 == doc["schema_version"], argv
        docs[" ".join(argv[:2] if argv[1] == "--zones" else argv[:1])] = doc
    assert ["192.0.2.10", "2001:db8::10"] == sorted(
        m["ip"] for m in docs["sync"]["zones"][0]["create"]
    )
    assert "us-east-1" in docs["regions"]["regions"]["aws"]
    assert "***" == docs["check-config"]["config"]["cloudflare"]["api_token"]
    assert [ZONE] == [z["zone_id"] for z in docs["check-config --zones"]["zones"]]
    assert TOKEN not in json.dumps(docs)


def test_regions_and_check_config(capsys, cf, config: Path):
    code, out, _ = run(capsys, "regions", "--config", str(config))
    assert 0 == code
    assert "us-east-1" in out
    code, out, _ = run(capsys, "check-config", "--config", str(config))
    assert 0 == code
    assert "api_token: '***'" in out
    assert TOKEN not in out


def test_regions_with_a_bad_token_exits_1(capsys, config: Path, monkeypatch):
    monkeypatch.setenv("CLOUDFLARE_API_TOKEN", "not-the-token-0000")
    code, _, err = run(capsys, "regions", "--config", str(config))
    assert 1 == code
    assert "10000" in err
    assert "not-the-token" not in err


def test_origins_shows_each_chain_and_state_and_writes_nothing(capsys, cf, dns_sim, tmp_path):
    raw = {
        "cloudflare": {
            "api_token": TOKEN,
            "base_url": cf.base_url,
            "zones": [{"id": ZONE, "name": "example.com"}],
        },
        "collectors": {"static": STATIC},
        "resolver": {"nameservers": [dns_sim.nameserver], "timeout": "1s"},
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"format": "json"},
    }
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw))
    cf.add_dns_record(ZONE, "CNAME", "www.example.com", "edge.example.net")
    cf.add_dns_record(ZONE, "CNAME", "old.example.com", "gone.example.net")
    dns_sim.set_addresses("edge.example.net", "192.0.2.10", "198.51.100.1")

    code, out, _ = run(capsys, "plan", "--config", str(path))
    assert 0 == code
    summary = out.split("zone      ")[-1]
    assert "0/3 (0%) -> 1/3" in summary, "the plan would map the one discovered origin"
    code, out, _ = run(capsys, "origins", "--config", str(path))
    assert 0 == code, "a dangling name is not a failure"
    assert "www.example.com -> edge.example.net" in out
    assert "unresolved_origin" in out
    assert "zone example.com: coverage 0/3 (0%)" in out, "nothing is mapped yet"
    writes = [r for r in cf.requests if r.method != "GET" and not r.path.endswith("/graphql")]
    assert [] == writes, "origins never writes (GraphQL reads are POSTs)"

    assert 0 == run(capsys, "sync", "--config", str(path))[0]
    code, out, _ = run(
        capsys, "origins", "--config", str(path), "--zone", "example.com", "--output", "json"
    )
    assert 0 == code
    (zone,) = json.loads(out)["zones"]
    states = {(o["address"], o["state"], o["reason"]) for o in zone["origins"]}
    assert {
        ("192.0.2.10", "mapped", None),
        ("198.51.100.1", "unmapped", "undiscovered_origin"),
        (None, "unmapped", "unresolved_origin"),
    } == states
    assert {"mapped": 1, "unmapped": 2} == {k: zone["coverage"][k] for k in ("mapped", "unmapped")}

    code, _, err = run(capsys, "origins", "--config", str(path), "--zone", "nope.example")
    assert 2 == code
    assert "no zone 'nope.example'" in err

    dns_sim.fault("edge.example.net", "servfail")
    code, out, _ = run(capsys, "origins", "--config", str(path))
    assert 1 == code
    assert "origin CNAME www.example.com failed: resolving edge.example.net" in out


def test_sync_summary_has_a_coverage_column(capsys, cf, config: Path):
    code, out, _ = run(capsys, "sync", "--config", str(config))
    assert 0 == code
    head, _, row = out.splitlines()[:3]
    assert ["coverage", "observed"] == head.split()[-2:]
    coverage = row[head.index("coverage") :].split()
    assert "-" == coverage[0], "origins: all zones have no coverage"
    assert "no fetches" == " ".join(coverage[1:]), "but their traffic is observed"
    code, out, _ = run(capsys, "origins", "--config", str(config))
    assert 0 == code
    assert "zone example.com: origins: all (every discovered address is mapped" in out


def _effective(out: str) -> dict:
    return yaml.safe_load(out)


def test_flags_win_over_the_environment_which_wins_over_the_file(capsys, config: Path, monkeypatch):
    # The file says json and the default listen address and level.
    code, out, _ = run(capsys, "check-config", "--config", str(config))
    assert 0 == code
    assert ("json", "info", "0.0.0.0:9464") == (
        _effective(out)["logging"]["format"],
        _effective(out)["logging"]["level"],
        _effective(out)["metrics"]["listen"],
    )
    monkeypatch.setenv("SYNCD_LOG_FORMAT", "text")
    monkeypatch.setenv("SYNCD_LOG_LEVEL", "warning")
    monkeypatch.setenv("SYNCD_METRICS_LISTEN", "127.0.0.1:9500")
    code, out, _ = run(capsys, "check-config", "--config", str(config))
    effective = _effective(out)
    assert ("text", "warning", "127.0.0.1:9500") == (
        effective["logging"]["format"],
        effective["logging"]["level"],
        effective["metrics"]["listen"],
    )
    flags = ["--log-format", "json", "--log-level", "error", "--listen-address", "127.0.0.1:0"]
    code, out, _ = run(capsys, "check-config", "--config", str(config), *flags)
    effective = _effective(out)
    assert ("json", "error", "127.0.0.1:0") == (
        effective["logging"]["format"],
        effective["logging"]["level"],
        effective["metrics"]["listen"],
    )


@pytest.mark.parametrize(
    ("argv", "env", "named"),
    [
        (["--log-level", "loud"], {}, "logging.level (from --log-level)"),
        (["--listen-address", "nowhere"], {}, "metrics.listen (from --listen-address)"),
        ([], {"SYNCD_LOG_FORMAT": "xml"}, "logging.format (from SYNCD_LOG_FORMAT)"),
        (
            [],
            {"SYNCD_METRICS_LISTEN": "1.2.3.4:99999"},
            "metrics.listen (from SYNCD_METRICS_LISTEN)",
        ),
    ],
)
def test_a_bad_flag_or_variable_is_exit_2_naming_it(
    capsys, config: Path, monkeypatch, argv, env, named
):
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    code, _, err = run(capsys, "check-config", "--config", str(config), *argv)
    assert 2 == code
    assert named in err
    assert 1 == len(err.strip().splitlines())
