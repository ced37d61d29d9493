"""The daemon over loopback: its HTTP endpoints, its schedule and its stop path.

``run`` is a small function returning RunReport values (the daemon's caller-provided unit of
work); everything else is the real daemon: APScheduler, the HTTP listener, prometheus-client.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from structlog.testing import capture_logs

from syncd import config, daemon
from syncd.errors import ConfigError
from syncd.model import Inventory, RunReport
from syncd.views.metrics import Metrics
from tests.conftest import eventually

DEADLINE = 5.0


def settings(**schedule: Any) -> config.Settings:
    return config.validate(
        {
            "cloudflare": {
                "api_token": "t",
                "zones": [{"id": "0123456789abcdef0123456789abcdef", "name": "example.com"}],
            },
            "schedule": {"interval": "0.2s", **schedule},
            "metrics": {"listen": "127.0.0.1:0", "stale_after": "60s"},
        }
    )


def report(clock: Callable[[], float] = time.time, *, error: str = "") -> RunReport:
    now = clock()
    return RunReport(started=now, finished=now, inventory=Inventory(), error=error)


class Runs:
    """A ``run`` callable: counts calls and overlaps; blocks while ``gate`` is closed."""

    def __init__(self, make: Callable[[int], RunReport] | None = None) -> None:
        self.gate = threading.Event()
        self.gate.set()
        self.calls = 0
        self.active = 0
        self.max_active = 0
        self._make = make or (lambda _: report())
        self._lock = threading.Lock()

    def __call__(self) -> RunReport:
        with self._lock:
            self.calls += 1
            self.active += 1
            self.max_active = max(self.max_active, self.active)
            n = self.calls
        try:
            self.gate.wait()
            return self._make(n)
        finally:
            with self._lock:
                self.active -= 1


class Running:
    """A Service serving in a thread, with its registry and the stop event."""

    def __init__(self, service: daemon.Service, registry: CollectorRegistry) -> None:
        self.service = service
        self.registry = registry
        self.stop = threading.Event()
        self.code: int | None = None
        self.thread = threading.Thread(target=self._serve)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{service.port}", timeout=5.0)

    def _serve(self) -> None:
        self.code = self.service.serve(self.stop)

    def get(self, path: str, **headers: str) -> httpx.Response:
        return self.http.get(path, headers=headers)

    def sample(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@contextmanager
def serving(
    runs: Callable[[], RunReport],
    *,
    clock: Callable[[], float] = time.time,
    **schedule: Any,
) -> Iterator[Running]:
    registry = CollectorRegistry()
    service = daemon.Service(
        settings(**schedule), run=runs, metrics=Metrics(registry), registry=registry, clock=clock
    )
    running = Running(service, registry)
    running.thread.start()
    try:
        yield running
    finally:
        running.stop.set()
        if isinstance(runs, Runs):
            runs.gate.set()
        running.thread.join(DEADLINE)
        running.http.close()


def test_endpoints_through_a_sync_cycle():
    runs = Runs()
    runs.gate.clear()
    with serving(runs) as svc:
        assert 200 == svc.get("/healthz").status_code
        eventually(lambda: runs.calls == 1, "the first run to start at once")
        before = svc.get("/readyz")
        assert (503, "no sync has completed yet\n") == (before.status_code, before.text)
        runs.gate.set()
        eventually(lambda: svc.get("/readyz").status_code == 200, "ready after a success")
        assert "ok\n" == svc.get("/readyz").text
        text = svc.get("/metrics")
        assert text.headers["content-type"].startswith("text/plain; version=0.0.4")
        assert 'syncd_sync_runs_total{result="success"}' in text.text
        assert 404 == svc.get("/nope").status_code


def test_metrics_exposition_is_prometheus_clients_own_gzip_head_and_process_metrics():
    with serving(Runs()) as svc:
        eventually(lambda: svc.sample("syncd_sync_runs_total", result="success") == 1, "a run")
        zipped = svc.http.get("/metrics", headers={"Accept-Encoding": "gzip"})
        head = svc.http.head("/metrics")
        plain = svc.get("/metrics")
        landing = svc.get("/")
        probe = svc.http.head("/healthz")
    assert "gzip" == zipped.headers["content-encoding"]
    assert 'syncd_sync_runs_total{result="success"} 1.0' in zipped.text  # httpx inflates it
    assert 200 == head.status_code
    assert b"" == head.content
    assert head.headers["content-type"] == plain.headers["content-type"]
    assert "process_cpu_seconds_total" in plain.text
    assert "python_info{" in plain.text
    assert 'syncd_build_info{python_version="' in plain.text
    assert (200, "text/html; charset=utf-8") == (
        landing.status_code,
        landing.headers["content-type"],
    )
    for link in ('href="metrics"', 'href="healthz"', 'href="readyz"'):
        assert link in landing.text
    assert (200, b"") == (probe.status_code, probe.content)


def test_metrics_in_openmetrics_when_asked():
    with serving(Runs()) as svc:
        answer = svc.get("/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert answer.headers["content-type"].startswith("application/openmetrics-text")
    assert answer.text.endswith("# EOF\n")
    assert "# TYPE syncd_sync_runs counter" in answer.text


def test_readyz_turns_503_once_the_last_success_is_stale():
    now = [1000.0]
    outcomes = {1: "", 2: "Cloudflare: 401"}  # a success, then only failures

    def make(n: int) -> RunReport:
        return report(lambda: now[0], error=outcomes.get(n, "Cloudflare: 401"))

    runs = Runs(make)
    with serving(runs, clock=lambda: now[0]) as svc:
        eventually(lambda: svc.get("/readyz").status_code == 200, "ready after a success")
        eventually(lambda: runs.calls >= 3, "failed runs after the success")
        assert 200 == svc.get("/readyz").status_code  # a failure alone does not unready
        now[0] += 61.0
        stale = svc.get("/readyz")
    assert (503, "last success 61s ago (stale after 60s)\n") == (stale.status_code, stale.text)


def test_readyz_503_while_no_run_succeeded():
    with serving(Runs(lambda _: report(error="Cloudflare: 401"))) as svc:
        eventually(
            lambda: (svc.sample("syncd_sync_runs_total", result="failure") or 0) >= 1, "a run"
        )
        answer = svc.get("/readyz")
    assert (503, "no sync has succeeded yet\n") == (answer.status_code, answer.text)


def test_a_crashing_run_is_failed_and_recorded_and_the_schedule_goes_on():
    def make(n: int) -> RunReport:
        if n == 1:
            raise RuntimeError("bug in a collector")
        return report()

    with capture_logs() as events, serving(Runs(make)) as svc:
        eventually(
            lambda: (svc.sample("syncd_sync_runs_total", result="success") or 0) >= 1,
            "a success after the crash",
        )
        assert 1.0 == svc.sample("syncd_sync_runs_total", result="failure")
        assert 200 == svc.get("/healthz").status_code
    (crash,) = [e for e in events if e["event"] == "sync_crashed"]
    assert "exc_info" in crash
    failed = [e for e in events if e["event"] == "sync_finished" and e["result"] == "failure"]
    assert "run crashed: RuntimeError: bug in a collector" == failed[0]["error"]


def test_never_two_runs_at_once(caplog: pytest.LogCaptureFixture):
    runs = Runs()
    runs.gate.clear()
    with caplog.at_level(logging.WARNING, logger="apscheduler"), serving(runs, interval="0.05s"):
        eventually(
            lambda: any("maximum number of running instances" in r.message for r in caplog.records),
            "APScheduler to skip a run while one is in flight",
        )
        runs.gate.set()
        eventually(lambda: runs.calls >= 2, "the next run after the long one")
    assert 1 == runs.max_active


def test_stop_lets_the_run_in_flight_finish_then_exits_0():
    runs = Runs()
    runs.gate.clear()
    with capture_logs() as events, serving(runs) as svc:
        eventually(lambda: runs.calls == 1, "a run in flight")
        svc.stop.set()
        eventually(lambda: any(e["event"] == "shutdown_started" for e in events), "shutdown")
        assert svc.thread.is_alive()
        runs.gate.set()
        svc.thread.join(DEADLINE)
        assert 0 == svc.code
        assert 1.0 == svc.sample("syncd_sync_runs_total", result="success")
        with pytest.raises(httpx.ConnectError):
            svc.get("/healthz")  # the listener closed with the scheduler
    names = [e["event"] for e in events]
    assert names.index("sync_finished") < names.index("shutdown_finished")
    assert 1 == runs.calls


def test_a_run_that_outlives_the_shutdown_timeout_is_abandoned_with_exit_1():
    runs = Runs()
    runs.gate.clear()
    with capture_logs() as events, serving(runs, shutdown_timeout="0.1s") as svc:
        eventually(lambda: runs.calls == 1, "a run in flight")
        svc.stop.set()
        svc.thread.join(DEADLINE)
        assert 1 == svc.code
    assert any(e["event"] == "shutdown_timed_out" for e in events)


def test_cron_schedule_also_runs_at_once():
    runs = Runs()
    with serving(runs, cron="0 3 * * *", interval=None) as svc:
        eventually(lambda: svc.sample("syncd_sync_runs_total", result="success") == 1.0, "a run")


def test_run_service_reports_its_port_and_stops_on_the_event():
    registry = CollectorRegistry()
    stop = threading.Event()
    codes: list[int] = []

    def serve() -> None:
        codes.append(
            daemon.run_service(
                settings(), run=Runs(), metrics=Metrics(registry), registry=registry, stop=stop
            )
        )

    thread = threading.Thread(target=serve)
    with capture_logs() as events:
        thread.start()
        try:
            eventually(lambda: any(e["event"] == "metrics_listening" for e in events), "port")
            (listening,) = [e for e in events if e["event"] == "metrics_listening"]
            answer = httpx.get(f"http://127.0.0.1:{listening['port']}/healthz")
            assert 200 == answer.status_code
        finally:
            stop.set()
            thread.join(DEADLINE)
    assert [0] == codes


def test_run_service_on_a_port_in_use_is_a_usage_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = settings().model_copy(
            update={"metrics": config.MetricsConfig(listen=f"127.0.0.1:{port}")}
        )
        registry = CollectorRegistry()
        with capture_logs() as events:
            code = daemon.run_service(cfg, run=Runs(), metrics=Metrics(registry), registry=registry)
    assert 2 == code
    (failed,) = [e for e in events if e["event"] == "metrics_listen_failed"]
    assert f"127.0.0.1:{port}" == failed["listen"]


@pytest.mark.parametrize(
    ("field", "expected"),
    [
        ("*", "*"),
        ("1-5", "mon,tue,wed,thu,fri"),
        ("0", "sun"),
        ("7", "sun"),
        ("5-7", "sun,fri,sat"),
        ("*/2", "sun,tue,thu,sat"),
        ("sat,sun", "sun,sat"),
        ("mon-wed", "mon,tue,wed"),
    ],
)
def test_crontab_weekdays_count_from_sunday(field: str, expected: str):
    """APScheduler 3.x counts from Monday; crontab's 1-5 must still mean Monday to Friday."""
    assert expected == config.crontab_weekdays(field)


def test_a_bad_cron_is_refused_when_the_config_loads():
    with pytest.raises(ConfigError) as info:
        settings(cron="61 * * * *", interval=None)
    assert "schedule.cron" == info.value.problems[0][0]


def test_sigterm_in_the_main_thread_stops_the_service_with_exit_0():
    """run_service installs its handlers in the main thread (as the CLI calls it)."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers need the main thread; SIGTERM would end this process")
    registry = CollectorRegistry()
    before = signal.getsignal(signal.SIGTERM)

    def terminate_when_listening() -> None:
        eventually(lambda: any(e["event"] == "metrics_listening" for e in events), "port")
        os.kill(os.getpid(), signal.SIGTERM)

    with capture_logs() as events:
        killer = threading.Thread(target=terminate_when_listening)
        killer.start()
        code = daemon.run_service(
            settings(), run=Runs(), metrics=Metrics(registry), registry=registry
        )
        killer.join(DEADLINE)
    assert 0 == code
    assert [{"event": "signal_received", "signal": "SIGTERM", "log_level": "info"}] == [
        e for e in events if e["event"] == "signal_received"
    ]
    assert before == signal.getsignal(signal.SIGTERM)
