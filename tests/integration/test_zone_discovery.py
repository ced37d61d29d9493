"""Zone discovery over real HTTP: GET /zones against the strict simulator, through run_once and
the CLI (exit codes, messages)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from syncd import cli, config
from syncd.errors import ConfigError
from syncd.model import RunResult
from syncd.run import once as sync
from syncd.simulators.cloudflare import CloudflareSimulator
from tests.conftest import TOKEN, ZONE

ACCOUNT_A = "a" * 32
ACCOUNT_B = "b" * 32
STATIC = [{"ip": "192.0.2.10", "vendor": "aws", "region": "us-east-1"}]


@pytest.fixture
def many() -> Any:
    """120 active zones in account A, 10 in account B, 5 pending in A (never listed active)."""
    sim = CloudflareSimulator(token=TOKEN)
    for n in range(120):
        sim.add_zone(f"{n + 1:032x}", f"shop-{n:03d}.example", account_id=ACCOUNT_A)
    for n in range(10):
        sim.add_zone(f"{n + 1:08x}" + "b" * 24, f"other-{n}.example", account_id=ACCOUNT_B)
    for n in range(5):
        sim.add_zone(f"{n + 1:08x}" + "c" * 24, f"new-{n}.example", status="pending")
    sim.start()
    try:
        yield sim
    finally:
        sim.stop()


def raw_for(cf: CloudflareSimulator, tmp_path: Path, **cloudflare: Any) -> dict[str, Any]:
    return {
        "cloudflare": {
            "backoff": "10ms",
            "retries": 1,
            "timeout": "2s",
            "api_token": TOKEN,
            "base_url": cf.base_url,
            **cloudflare,
        },
        "collectors": {"request_timeout": "2s", "static": STATIC},
        "state": {"path": str(tmp_path / "state.db")},
        "logging": {"format": "json"},
    }


def discovering(cf: CloudflareSimulator, tmp_path: Path, **discovery: Any) -> config.Settings:
    discovery.setdefault("defaults", {"origins": "all"})
    return config.validate(raw_for(cf, tmp_path, zone_discovery=discovery))


def zone_lists(cf: CloudflareSimulator) -> list[dict[str, list[str]]]:
    return [r.query for r in cf.requests_matching(path=r"/client/v4/zones$")]


def test_every_matching_active_zone_is_kept_in_step(many, tmp_path: Path):
    settings = discovering(many, tmp_path, account_ids=[ACCOUNT_A], exclude=["shop-11?.example"])
    report = sync.run_once(settings)
    assert RunResult.SUCCESS == report.result
    assert 110 == len(report.zones)  # 120 in A, minus shop-110 .. shop-119
    assert report.discovery is not None
    assert (120, 110) == (report.discovery.zones_listed, report.discovery.matched)
    assert {"192.0.2.10": ("aws", "us-east-1")} == many.mappings(f"{1:032x}")
    assert {} == many.mappings(f"{111:032x}"), "excluded"
    assert {} == many.mappings("00000001" + "b" * 24), "another account"
    pages = zone_lists(many)
    assert [["1"], ["2"], ["3"]] == [q["page"] for q in pages]
    assert all(q["per_page"] == ["50"] and q["status"] == ["active"] for q in pages)
    assert all(q["account.id"] == [ACCOUNT_A] for q in pages)


def test_an_explicit_zone_replaces_the_defaults_for_itself(many, tmp_path: Path):
    raw = raw_for(
        many,
        tmp_path,
        zones=[{"id": f"{1:032x}", "name": "shop-000.example", "origins": "all"}],
        # dns origins and no DNS records: discovered zones get nothing.
        zone_discovery={"include": ["shop-00?.example"], "defaults": {"origins": "dns"}},
    )
    report = sync.run_once(config.validate(raw))
    assert 10 == len(report.zones)
    assert {"192.0.2.10": ("aws", "us-east-1")} == many.mappings(f"{1:032x}")
    assert {} == many.mappings(f"{2:032x}")


def test_a_zone_that_appears_is_picked_up_and_one_that_vanishes_is_reported(many, tmp_path: Path):
    settings = discovering(many, tmp_path, include=["other-*"])
    first = sync.run_once(settings)
    assert 10 == len(first.zones)
    many.remove_zone("00000003" + "b" * 24)
    many.add_zone("d" * 32, "other-new.example", account_id=ACCOUNT_B)
    second = sync.run_once(settings)
    assert RunResult.SUCCESS == second.result
    assert "other-new.example" in {z.zone_name for z in second.zones}
    assert second.discovery is not None
    assert ("other-2.example",) == second.discovery.vanished
    assert {"192.0.2.10": ("aws", "us-east-1")} == many.mappings("d" * 32)
    assert () == sync.run_once(settings).discovery.vanished  # type: ignore[union-attr]


def test_a_token_without_zone_read_fails_the_run_naming_the_permission(
    many, tmp_path: Path, capsys
):
    many.zone_read = False
    report = sync.run_once(discovering(many, tmp_path))
    assert RunResult.FAILURE == report.result
    assert "Zone Read" in report.error
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw_for(many, tmp_path, zone_discovery={})))
    assert 1 == cli.main(["sync", "--config", str(path)])
    out, _ = capsys.readouterr()
    assert "Zone Read" in out
    assert 1 == cli.main(["check-config", "--zones", "--config", str(path)])
    _, err = capsys.readouterr()
    assert "Zone Read" in err


def test_too_many_accounts_for_one_listing_tells_the_user_to_set_account_ids(many, tmp_path: Path):
    many.zone_listing_accounts = 1  # the token's zones span two accounts (three with pending)
    report = sync.run_once(discovering(many, tmp_path))
    assert RunResult.FAILURE == report.result
    assert "set cloudflare.zone_discovery.account_ids" in report.error
    listed = sync.run_once(discovering(many, tmp_path, account_ids=[ACCOUNT_B]))
    assert RunResult.SUCCESS == listed.result
    assert 10 == len(listed.zones)


def test_no_match_is_a_warning_and_nothing_to_do(many, tmp_path: Path, capsys):
    path = tmp_path / "syncd.yaml"
    raw = raw_for(many, tmp_path, zone_discovery={"include": ["nothing-*.example"]})
    path.write_text(yaml.safe_dump(raw))
    assert 0 == cli.main(["sync", "--config", str(path)])
    out, err = capsys.readouterr()
    assert "zone discovery matched no zone" in out
    assert '"event": "zones_discovered"' in err
    assert '"level": "warning"' in next(line for line in err.splitlines() if "zones_disc" in line)
    assert [] == [r for r in many.requests if "cloud_regions" in r.path]


def test_check_config_zones_prints_the_resolved_list(many, tmp_path: Path, capsys):
    path = tmp_path / "syncd.yaml"
    raw = raw_for(
        many,
        tmp_path,
        zones=[{"id": ZONE, "name": "example.com", "policy": "sync"}],
        zone_discovery={"include": ["other-[01].example"]},
    )
    path.write_text(yaml.safe_dump(raw))
    assert 0 == cli.main(["check-config", "--zones", "--config", str(path)])
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert ["zone_id", "name", "source", "policy", "origins"] == lines[0].split()
    assert [ZONE, "example.com", "explicit", "sync", "dns"] == lines[2].split()
    assert ["00000001" + "b" * 24, "other-0.example", "discovered", "upsert-only", "dns"] == (
        lines[3].split()
    )
    assert 5 == len(lines)
    assert "135 active zones listed, 2 matched" not in err  # pending zones are not active
    assert "130 active zones listed, 2 matched" in err


@pytest.mark.parametrize("pattern", ["shop-[0-9.example", "a b", "zones/*", ""])
def test_a_bad_glob_is_a_config_error_naming_it(cf, tmp_path: Path, capsys, pattern: str):
    with pytest.raises(ConfigError) as caught:
        config.validate(raw_for(cf, tmp_path, zone_discovery={"include": [pattern]}))
    assert "cloudflare.zone_discovery.include" in str(caught.value)
    assert repr(pattern) in str(caught.value)
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw_for(cf, tmp_path, zone_discovery={"exclude": [pattern]})))
    assert 2 == cli.main(["check-config", "--config", str(path)])
    _, err = capsys.readouterr()
    assert "cloudflare.zone_discovery.exclude" in err
    assert "Traceback" not in err


def test_zones_or_discovery_is_required(cf, tmp_path: Path):
    with pytest.raises(ConfigError, match="zone_discovery"):
        config.validate(raw_for(cf, tmp_path))
    with pytest.raises(ConfigError, match="32 lower-case hex"):
        config.validate(raw_for(cf, tmp_path, zone_discovery={"account_ids": ["acct"]}))
    with pytest.raises(ConfigError, match="not configured"):
        config.validate(
            raw_for(cf, tmp_path, zone_discovery={"defaults": {"collectors": ["nope"]}})
        )


def test_regions_works_with_discovery_only(many, tmp_path: Path, capsys):
    path = tmp_path / "syncd.yaml"
    path.write_text(yaml.safe_dump(raw_for(many, tmp_path, zone_discovery={})))
    assert 0 == cli.main(["regions", "--config", str(path)])
    out, _ = capsys.readouterr()
    assert "us-east-1" in out


def test_a_discovered_zone_s_account_comes_from_the_listing(tmp_path: Path):
    """GET /zones names each zone's account: its pools are read there, its details are not."""
    with CloudflareSimulator(token=TOKEN) as sim:
        sim.add_zone(ZONE, "lb.example", account_id=ACCOUNT_B)
        pool = sim.add_pool("fra", [{"address": "192.0.2.10"}], account=ACCOUNT_B)
        sim.add_load_balancer(ZONE, "www.lb.example", default_pools=[pool], fallback_pool=pool)
        settings = discovering(sim, tmp_path, defaults={"origins": "dns"})
        report = sync.run_once(settings)
        assert RunResult.SUCCESS == report.result
        (zone,) = report.zones
        assert zone.origins is not None
        assert {"192.0.2.10"} == {str(ip) for ip in zone.origins.addresses}
        assert [] == sim.requests_matching("GET", f"zones/{ZONE}$"), "no details read"
        assert sim.requests_matching("GET", f"accounts/{ACCOUNT_B}/load_balancers/pools/")
        assert "192.0.2.10" in sim.mappings(ZONE)
