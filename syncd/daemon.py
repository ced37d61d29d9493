"""``syncd run``: schedule ``run`` (one sync) with APScheduler, serve /metrics /healthz /readyz.

The daemon only schedules, serves HTTP and handles signals; each run's work and its report come
from the ``run`` callable (``sync.run_once``). Never two runs at once; a run that raises is failed
and recorded, never fatal. SIGTERM/SIGINT stop the schedule and let the run in flight finish
within ``schedule.shutdown_timeout``. The daemon must not compute anything the report lacks.
"""

from __future__ import annotations

import ctypes
import datetime as dt
import gc
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

import structlog
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.interval import IntervalTrigger
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import ThreadingWSGIServer

from syncd.config import ScheduleConfig, Settings, cron_trigger
from syncd.errors import ExitCode
from syncd.model import Inventory, RunReport, RunResult
from syncd.views import endpoints, logs
from syncd.views.metrics import Metrics

log = structlog.stdlib.get_logger(__name__)

_JOB_ID = "sync"
_HTTP_POLL = 0.1  # how often serve_forever checks for shutdown (stdlib default 0.5 s)


@dataclass(slots=True)
class _InFlight:
    """One run: ``done`` when its report is recorded; ``release`` frees the scheduler thread."""

    done: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class Service:
    """The listener (bound on construction, like ``socketserver``), the schedule and readiness."""

    def __init__(
        self,
        settings: Settings,
        *,
        run: Callable[[], RunReport],
        metrics: Metrics,
        registry: CollectorRegistry,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = settings
        self._run = run
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._stopping = False
        self._in_flight: _InFlight | None = None
        self._last_completed: float | None = None
        self._last_success: float | None = None
        self._trigger = _trigger(settings.schedule)
        self._scheduler = BackgroundScheduler()
        # A long-running process: its CPU, memory, file descriptors and Python, as exporters do.
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        self._http = _server(settings.metrics.listen, self, registry)

    @property
    def port(self) -> int:
        """The bound port (``metrics.listen`` may ask for port 0)."""
        port: int = self._http.server_address[1]
        return port

    def alive(self) -> bool:
        """The scheduler is running (the process is, or this would not answer)."""
        return bool(self._scheduler.running)

    def readiness(self) -> tuple[bool, str]:
        """Ready once a run completed and the last success is younger than ``stale_after``."""
        with self._lock:
            completed, success = self._last_completed, self._last_success
        if completed is None:
            return False, "no sync has completed yet"
        if success is None:
            return False, "no sync has succeeded yet"
        age = self._clock() - success
        stale_after = self._settings.stale_after
        if age > stale_after:
            return False, f"last success {age:.0f}s ago (stale after {stale_after:.0f}s)"
        return True, "ok"

    def serve(self, stop: threading.Event) -> int:
        """Schedule and serve until ``stop`` is set; then shut down. Returns the exit code."""
        try:
            # The scheduler first, so /healthz never sees it not yet started; the socket is bound
            # already, so an early connection waits in the backlog instead of being refused.
            self._start_schedule()
        except BaseException:
            self.close()
            raise
        thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": _HTTP_POLL},
            name="syncd-http",
            daemon=True,
        )
        thread.start()
        host, port = self._http.server_address[:2]
        log.info("metrics_listening", host=host, port=port)
        try:
            stop.wait()
            return self._shutdown()
        finally:
            self._http.shutdown()
            self._http.server_close()
            thread.join()

    def close(self) -> None:
        """Release the listening socket of a service that never served."""
        self._http.server_close()

    def _start_schedule(self) -> None:
        schedule = self._settings.schedule
        self._scheduler.add_job(
            self._job,
            trigger=self._trigger,
            id=_JOB_ID,
            name="sync",
            next_run_time=dt.datetime.now(dt.UTC),
            max_instances=1,
            coalesce=True,
            misfire_grace_time=_grace(schedule),
        )
        self._scheduler.start()
        log.info("schedule_started", interval=schedule.interval, cron=schedule.cron)

    def _shutdown(self) -> int:
        with self._lock:
            self._stopping = True
            current = self._in_flight
        log.info("shutdown_started", run_in_flight=current is not None)
        self._scheduler.shutdown(wait=False)
        timeout = self._settings.schedule.shutdown_timeout
        if current is not None and not current.done.wait(timeout):
            # The run goes on in a daemon thread and dies with the process.
            current.release.set()
            log.error("shutdown_timed_out", timeout=timeout)
            return ExitCode.FAILED
        log.info("shutdown_finished")
        return ExitCode.OK

    def _job(self) -> None:
        """On the scheduler's thread: the run itself goes to a daemon thread, so a run that
        outlives ``shutdown_timeout`` cannot keep the process alive."""
        with self._lock:
            if self._stopping:
                return
            current = self._in_flight = _InFlight()
        worker = threading.Thread(target=self._tick, args=(current,), name="syncd-run", daemon=True)
        worker.start()
        current.release.wait()
        with self._lock:
            self._in_flight = None

    def _tick(self, current: _InFlight) -> None:
        try:
            self._record(self._run_guarded())
            release_memory()  # the run's report is gone: idle between runs at a small size
        finally:
            current.done.set()
            current.release.set()

    def _record(self, report: RunReport) -> None:
        # /readyz first: whoever sees the run in /metrics then sees it in /readyz too.
        with self._lock:
            self._last_completed = report.finished
            if report.result is RunResult.SUCCESS:
                self._last_success = report.finished
        self._metrics.observe(report)
        logs.log_report(report)

    def _run_guarded(self) -> RunReport:
        started = self._clock()
        log.info("sync_started")
        try:
            return self._run()
        except Exception as exc:  # the scheduled-run boundary: failed and recorded (style 16)
            log.exception("sync_crashed")
            return RunReport(
                started=started,
                finished=self._clock(),
                inventory=Inventory(),
                error=f"run crashed: {type(exc).__name__}: {exc}",
            )


def release_memory() -> bool:
    """Give what a run freed back to the system: a collection, then glibc's ``malloc_trim``.

    Under ``PYTHONMALLOC=malloc`` (the container image sets it) every object lives in glibc's
    heap, so the trim returns nearly all of a large run's memory; under pymalloc it returns
    less (docs/benchmarks.md). False where there is no glibc (musl, macOS): only collected.
    """
    gc.collect()
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim
    except (OSError, AttributeError):
        return False
    trim(0)
    return True


def run_service(
    settings: Settings,
    *,
    run: Callable[[], RunReport],
    metrics: Metrics,
    registry: CollectorRegistry,
    clock: Callable[[], float] = time.time,
    stop: threading.Event | None = None,
) -> int:
    """``syncd run``: serve until SIGTERM/SIGINT (or ``stop``). Exit code 0 on a clean stop, 2 when
    the listener cannot bind (the cron expression was checked when the config loaded), 1 when the
    run in flight outlived ``schedule.shutdown_timeout``."""
    stop = threading.Event() if stop is None else stop
    try:
        service = Service(settings, run=run, metrics=metrics, registry=registry, clock=clock)
    except OSError as exc:
        problem = exc
    else:
        with signals_set(stop):
            return service.serve(stop)
    error = problem.strerror or str(problem)
    log.error("metrics_listen_failed", listen=settings.metrics.listen, error=error)
    return ExitCode.USAGE


@contextmanager
def signals_set(stop: threading.Event, *, restore: bool = True) -> Iterator[list[signal.Signals]]:
    """SIGTERM and SIGINT (Ctrl-C) set ``stop``: the batch in flight finishes, no other is sent.
    A second one exits at once (``128 + signal``): the user insists, and every write already
    recorded is in the state database's committed transactions. Yields the signals received.

    ``restore=False`` (a process about to exit) keeps the handlers after the block: one restored
    before the process ends turns a late Ctrl-C into a ``KeyboardInterrupt`` traceback and
    exit -2. Only the main thread installs handlers.
    """
    received: list[signal.Signals] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handle(signum: int, _: FrameType | None) -> None:
        sig = signal.Signals(signum)
        if stop.is_set() and received:
            log.warning("signal_received_again", signal=sig.name, exit_code=128 + signum)
            os._exit(128 + signum)
        log.info("signal_received", signal=sig.name)
        received.append(sig)
        stop.set()

    previous = {s: signal.signal(s, handle) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield received
    finally:
        for s, handler in previous.items() if restore else ():
            signal.signal(s, handler)


def _trigger(schedule: ScheduleConfig) -> Any:
    """The APScheduler trigger: the interval, or the cron expression the config has checked."""
    jitter = schedule.jitter or None
    if not schedule.cron:
        return IntervalTrigger(seconds=schedule.interval or 900.0, jitter=jitter)
    return cron_trigger(schedule.cron, jitter=jitter)


def _grace(schedule: ScheduleConfig) -> int:
    """A run later than this is dropped (coalesce keeps one); APScheduler's default is 1 s."""
    if schedule.cron:
        return 300
    return max(1, int(schedule.interval or 900.0))


def _server(listen: str, service: Service, registry: CollectorRegistry) -> ThreadingWSGIServer:
    """/metrics (prometheus_client's exposition), /healthz, /readyz and a landing page."""

    def health() -> tuple[bool, str]:
        alive = service.alive()
        return alive, "ok" if alive else "scheduler stopped"

    application = endpoints.app(registry, health=health, ready=service.readiness)
    return endpoints.server(listen, application)
