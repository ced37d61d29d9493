"""The ownership registry on real SQLite: a broken registry stops the run before any write."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from syncd.errors import StateError
from syncd.model import RunResult
from syncd.registry import Registry
from syncd.run import once as sync
from tests.conftest import ZONE, settings_for

STATIC = [{"ip": "192.0.2.1", "vendor": "aws", "region": "us-east-1"}]
SYNC_ZONE = [{"id": ZONE, "name": "example.com", "origins": "all", "policy": "sync"}]


def test_locked_registry_is_a_clear_error_and_nothing_is_written(cf, tmp_path: Path):
    settings = settings_for(cf, tmp_path, static=STATIC, zones=SYNC_ZONE)
    with Registry(settings.state.path):  # another syncd holds it
        report = sync.run_once(settings)
    assert RunResult.FAILURE == report.result
    assert "locked by another syncd process" in report.error
    assert [] == [r for r in cf.requests if r.method != "GET"]


def test_corrupt_registry_is_a_clear_error_and_nothing_is_written(cf, tmp_path: Path):
    settings = settings_for(cf, tmp_path, static=STATIC, zones=SYNC_ZONE)
    settings.state.path.write_bytes(b"this is not a database" * 100)
    report = sync.run_once(settings)
    assert RunResult.FAILURE == report.result
    assert str(settings.state.path) in report.error
    assert [] == [r for r in cf.requests if r.method != "GET"]


def test_unwritable_registry_place_is_a_clear_error(cf, tmp_path: Path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    settings = settings_for(cf, tmp_path, static=STATIC, state={"path": str(blocker / "s.db")})
    report = sync.run_once(settings)
    assert RunResult.FAILURE == report.result
    assert "not writable" in report.error
    assert [] == [r for r in cf.requests if r.method != "GET"]


def test_plan_reads_without_creating_or_locking(cf, tmp_path: Path):
    settings = settings_for(cf, tmp_path, static=STATIC)
    plan = sync.run_once(settings, options=sync.Options(dry_run=True))
    assert 1 == len(plan.zones[0].plan.creates)
    assert not settings.state.path.exists()
    sync.run_once(settings)
    with Registry(settings.state.path):  # a running syncd holds the lock; a plan still works
        again = sync.run_once(settings, options=sync.Options(dry_run=True))
    assert 1 == len(again.zones[0].plan.unchanged)


def test_schema_from_the_future_is_refused(tmp_path: Path):
    path = tmp_path / "s.db"
    Registry(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    with pytest.raises(StateError, match="schema 99"):
        Registry(path)


def test_pending_batch_is_owned_only_where_cloudflare_holds_it(tmp_path: Path):
    """A crash between sending a batch and recording it: the next run settles it."""
    from syncd.model import RegionMapping, ScopeKey, Upsert, Vendor, parse_ip

    def m(ip: str, region: str = "us-east-1") -> RegionMapping:
        return RegionMapping(ip=parse_ip(ip), vendor=Vendor.AWS, region=region)

    path = tmp_path / "s.db"
    with Registry(path) as reg:
        reg.ownership.record(
            ZONE, upserted=[Upsert(mapping=m("192.0.2.9"), previous=None, scope_key=ScopeKey("s"))]
        )
        reg.ownership.begin(
            ZONE,
            [
                Upsert(mapping=m(ip), previous=None, scope_key=ScopeKey("k"))
                for ip in ("192.0.2.1", "192.0.2.2", "192.0.2.3")
            ],
        )
    current = {x.ip: x for x in (m("192.0.2.1"), m("192.0.2.2", "eu-west-1"))}
    with Registry(path, read_only=True) as reader:
        planned = reader.ownership.settle(ZONE, current)
    with Registry(path) as reg:
        owned = reg.ownership.settle(ZONE, current)
        assert owned == planned
        assert {"192.0.2.1"} == {str(ip) for ip in owned}
        assert ScopeKey("k") == owned[parse_ip("192.0.2.1")].scope_key
        assert owned == reg.ownership.settle(ZONE, current), "settling twice changes nothing"


def test_a_full_list_replaces_the_mirror_and_counts_its_drift(tmp_path: Path):
    """The first list of a zone is next due at a point spread over the interval; a later list
    is due a whole interval on, and counts each mapping where it disagreed with the mirror."""
    from syncd.model import RegionMapping, Vendor, parse_ip

    def m(ip: str, region: str = "us-east-1") -> RegionMapping:
        return RegionMapping(ip=parse_ip(ip), vendor=Vendor.AWS, region=region)

    first = {x.ip: x for x in (m("192.0.2.1"), m("192.0.2.2"))}
    later = {x.ip: x for x in (m("192.0.2.1", "eu-west-1"), m("192.0.2.3"))}
    with Registry(tmp_path / "s.db") as reg:
        listed = reg.mirror.relisted(ZONE, first, was=None, now=1000.0, interval=3600.0)
        assert 0 == listed.drift
        listed_at, due = listed.schedule
        assert 1000.0 == listed_at
        assert 1000.0 < due <= 4600.0
        was = reg.mirror.get(ZONE)
        assert was is not None
        assert (first, 1000.0, due) == (was.mappings, was.listed_at, was.verify_after)
        again = reg.mirror.relisted(ZONE, later, was=was, now=2000.0, interval=3600.0)
        assert 3 == again.drift, "one changed, one gone, one new"
        assert (2000.0, 5600.0) == again.schedule
        assert {ZONE: (5600.0, 2)} == reg.mirror.verification_schedule()


def test_writes_distrust_the_mirror_until_they_are_confirmed(tmp_path: Path):
    from syncd.model import RegionMapping, Vendor, parse_ip

    one = RegionMapping(ip=parse_ip("192.0.2.1"), vendor=Vendor.AWS, region="us-east-1")
    with Registry(tmp_path / "s.db") as reg:
        listed = reg.mirror.relisted(ZONE, {}, was=None, now=1000.0, interval=3600.0)
        reg.mirror.writing(ZONE)
        assert reg.mirror.get(ZONE) is None, "a process killed now lists the zone next time"
        reg.mirror.written(ZONE, {one.ip: one}, listed.schedule)
        kept = reg.mirror.get(ZONE)
        assert kept is not None
        assert ({one.ip: one}, listed.schedule) == (
            kept.mappings,
            (kept.listed_at, kept.verify_after),
        )


def test_a_mirror_that_cannot_be_saved_is_logged_and_never_fails_the_zone(tmp_path: Path):
    from structlog.testing import capture_logs

    from syncd.model import RegionMapping, Vendor, parse_ip

    one = RegionMapping(ip=parse_ip("192.0.2.1"), vendor=Vendor.AWS, region="us-east-1")
    path = tmp_path / "s.db"
    with Registry(path) as reg:
        reg.mirror.relisted(ZONE, {}, was=None, now=1000.0, interval=3600.0)
        assert reg.mirror.get(ZONE) is not None
        with sqlite3.connect(path) as other:
            other.execute("DROP TABLE mirror")
        with capture_logs() as logs:
            reg.mirror.written(ZONE, {one.ip: one}, (1.0, 2.0))
        assert reg.mirror.get(ZONE) is None, "distrusted: the zone is listed next run"
    [event] = [e for e in logs if e["event"] == "mirror_not_saved"]
    assert ZONE == event["zone"]
    assert "cannot be written" in event["error"]
