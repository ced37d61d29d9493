"""Secrets appear nowhere: logs, CLI output, plan JSON, check-config, metrics, error text."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest

from syncd import cli
from syncd.run import once as sync
from syncd.simulators.cloudflare import CloudflareSimulator, cf_error
from syncd.views import metrics
from tests.conftest import ZONE, settings_for

TOKEN = "sekret-token-4f1d9c2a7b"
EMAIL, KEY = "ops@example.com", "5ec7e70000000000000000000000000000abc"  # 37 hex characters
AZURE_SECRET = "sekret-azure-secret-77"
STATIC = [{"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"}]


def _config(cf: CloudflareSimulator, tmp_path: Path, auth: dict[str, str]) -> Path:
    raw = {
        "cloudflare": {
            "backoff": "10ms",
            "retries": 1,
            "timeout": "1s",
            **auth,
            "base_url": cf.base_url,
            "zones": [{"id": ZONE, "name": "example.com", "origins": "all"}],
        },
        "collectors": {"request_timeout": "1s", "scope_timeout": "2s", "static": STATIC},
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"format": "json", "level": "debug"},
    }
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_check_config_masks_every_secret(capsys, tmp_path: Path):
    raw = {
        "cloudflare": {
            "api_token": TOKEN,
            "api_email": EMAIL,
            "api_key": KEY,
            "zones": [{"id": ZONE}],
        },
        "collectors": {
            "azure": [
                {"name": "az", "tenant_id": "t", "client_id": "c", "client_secret": AZURE_SECRET}
            ]
        },
    }
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert 0 == cli.main(["check-config", "--config", str(path)])
    out = capsys.readouterr().out
    assert 3 == out.count("'***'")
    for secret in (TOKEN, KEY, AZURE_SECRET):
        assert secret not in out


@pytest.mark.parametrize(
    ("auth", "sim_auth", "secrets"),
    [
        ({"api_token": TOKEN}, {"token": TOKEN}, [TOKEN]),
        (
            {"api_email": EMAIL, "api_key": KEY},
            {"token": None, "email": EMAIL, "api_key": KEY},
            [KEY],
        ),
    ],
    ids=["token", "global-key"],
)
def test_no_secret_in_any_output_of_failing_and_succeeding_runs(
    capsys, tmp_path: Path, auth, sim_auth, secrets
):
    seen: list[str] = []
    with CloudflareSimulator(**sim_auth) as cf:
        cf.add_zone(ZONE, "example.com")
        config = _config(cf, tmp_path, auth)
        cf.inject(cf_error(500, 1140, "Internal error.", times=10, path="/batch$"))
        for argv in (
            ["sync"],
            ["plan"],
            ["plan", "--output", "json"],
            ["check-config"],
            ["discover", "--output", "json"],
            ["regions"],
        ):
            cli.main([*argv, "--config", str(config)])
            seen += capsys.readouterr()
        cf.clear_faults()
        assert 0 == cli.main(["sync", "--config", str(config)])
        seen += capsys.readouterr()
        settings = settings_for(cf, tmp_path, static=STATIC, cloudflare=auth)
        registry = CollectorRegistry()
        observer = metrics.Metrics(registry)
        for report in (sync.run_once(settings), _bad_credentials_report(cf, tmp_path, auth)):
            observer.observe(report)
            seen += [repr(report), report.error]
        seen.append(generate_latest(registry).decode())
    text = "\n".join(seen)
    assert "sync_finished" in text, "the outputs were captured"
    assert "***" in text, "check-config shows masked secrets"
    for secret in secrets:
        assert secret not in text


def _bad_credentials_report(cf: CloudflareSimulator, tmp_path: Path, auth: dict[str, str]):
    wrong = {k: (v + "-wrong" if k in ("api_token", "api_key") else v) for k, v in auth.items()}
    report = sync.run_once(settings_for(cf, tmp_path, static=STATIC, cloudflare=wrong))
    assert report.error
    return report
