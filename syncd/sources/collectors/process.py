"""One short-lived child process per cloud vendor: its collectors run there, not in syncd.

``collect`` starts a child for one vendor, forked from a fork server that has imported the
vendors' SDKs once (``preload``), which runs the vendor's collectors through ``runner.stream``
and sends what it finds back over a pipe as it goes: compact address records in chunks, scope
outcomes, and the SDKs' log records (which the parent logs through its own handlers). The parent
watches every listing and scope the child has started; one still running ``scope_timeout`` (plus
a grace) after it started is hung in an SDK call, and the child is killed. Whatever the child had
not finished then, or when it dies on its own, is failed (``timeout``, or ``error`` for a crash),
so its mappings are protected from deletion like any failed scope's. The SDKs' memory goes with
the child.

This module knows the collectors' protocol and records only; it knows nothing of Cloudflare.
"""

from __future__ import annotations

import ipaddress
import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from syncd.config import CollectorsConfig
from syncd.model import (
    Address,
    CollectorOutcome,
    Inventory,
    Reason,
    Scope,
    ScopeKey,
    ScopeOutcome,
    ScopeStatus,
    Skip,
    Vendor,
)
from syncd.sources.collectors import runner
from syncd.sources.collectors.base import Collector, CollectorSettings, Discovery

CHUNK = 2_000  # addresses per message: ~100 KB pickled, so neither side holds a scope's worth
_GRACE = 2.0  # seconds, plus 10% of scope_timeout: a scope's own deadline fires first
_STARTUP = 120.0  # seconds for the child to start and import its SDK (a loaded host)
_STOP_POLL = 0.25  # seconds between looks at the shutdown event while the child is quiet
_EXIT = 10.0  # seconds for a child that said it is done to exit before it is killed

# The console script's module (``syncd = "syncd.cli:main"``), which each child's start imports.
_ENTRY = "syncd.cli"
_FREEZE = "syncd.sources.collectors.frozen"  # the fork server's imports out of the GC's walks

# Each vendor's collector module: what the fork server imports once, so that its children do not.
_MODULES = {
    Vendor.AWS: "syncd.sources.collectors.aws",
    Vendor.GCP: "syncd.sources.collectors.gcp",
    Vendor.AZURE: "syncd.sources.collectors.azure",
    Vendor.OCI: "syncd.sources.collectors.oci",
}

# An address as it crosses the pipe: (packed IP, region, resource, tags); the rest is its scope's.
_Record = tuple[bytes, str, str, tuple[tuple[str, str], ...]]


# The protocol: what the child sends the parent, in this order per collector and scope.
@dataclass(frozen=True, slots=True)
class _ChildReady:
    """The child has started and built its collectors: their listings begin."""


@dataclass(frozen=True, slots=True)
class _ScopesListed:
    """A collector's scopes were enumerated (or not: ``outcome.enumerated``)."""

    outcome: CollectorOutcome
    scopes: tuple[Scope, ...]


@dataclass(frozen=True, slots=True)
class _ScopeStarted:
    key: ScopeKey


@dataclass(frozen=True, slots=True)
class _ChunkFound:
    """A chunk of one scope's addresses and skips, before the scope is done."""

    key: ScopeKey
    records: list[_Record]
    skips: list[Skip]


@dataclass(frozen=True, slots=True)
class _ScopeDone:
    """A scope's outcome and its last chunk."""

    outcome: ScopeOutcome
    records: list[_Record]
    skips: list[Skip]


@dataclass(frozen=True, slots=True)
class _ChildLog:
    """One of the SDKs' log records, as text."""

    logger: str
    level: int
    message: str


@dataclass(frozen=True, slots=True)
class _ChildEnd:
    """Every collector is done: the child exits."""


_Message = (
    _ChildReady | _ScopesListed | _ScopeStarted | _ChunkFound | _ScopeDone | _ChildLog | _ChildEnd
)


@dataclass(frozen=True, slots=True)
class Job:
    """What one vendor's child needs: the section (only ``vendor``'s entries are built), the
    run's settings, and the parent's logger levels (so the child sends what would be logged)."""

    vendor: Vendor
    config: CollectorsConfig
    settings: CollectorSettings
    levels: tuple[tuple[str, int], ...] = ()
    chunk: int = CHUNK


def vendor_collectors(
    cfg: CollectorsConfig, vendor: Vendor, *, settings: CollectorSettings
) -> list[Collector]:
    """``vendor``'s configured collectors, in config order; imports that vendor's module only."""
    if vendor is Vendor.AWS:
        from syncd.sources.collectors.aws import AwsCollector

        return [AwsCollector(c, settings=settings) for c in cfg.aws]
    if vendor is Vendor.GCP:
        from syncd.sources.collectors.gcp import GcpCollector

        return [GcpCollector(c, settings=settings) for c in cfg.gcp]
    if vendor is Vendor.AZURE:
        from syncd.sources.collectors.azure import AzureCollector

        return [AzureCollector(c, settings=settings) for c in cfg.azure]
    from syncd.sources.collectors.oci import OciCollector

    return [OciCollector(c, settings=settings) for c in cfg.oci]


def names(cfg: CollectorsConfig, vendor: Vendor) -> tuple[str, ...]:
    """The names of ``vendor``'s configured collectors (none: no child for it)."""
    entries = {
        Vendor.AWS: cfg.aws,
        Vendor.GCP: cfg.gcp,
        Vendor.AZURE: cfg.azure,
        Vendor.OCI: cfg.oci,
    }
    return tuple(c.name for c in entries[vendor])


def preload(vendors: Iterable[Vendor]) -> None:
    """Have the fork server import ``vendors``' collector modules (their SDKs) when it starts.

    The children are forked from a server process of their own (``forkserver``), started by the
    first collection and kept for this process's life (``syncd run``'s every run): it imports
    the SDKs once, not this process, and each child starts with them loaded instead of a fresh
    interpreter importing syncd and its SDK every run (1-1.5 s of CPU a vendor; issue 26). The
    server forks nothing but children, from a single thread. Only the first call counts.

    The server also imports what each child would otherwise import again: multiprocessing runs
    this process's main module anew in every child it starts (``multiprocessing.spawn.prepare``),
    the ``syncd`` console script (``from syncd.cli import main``) or a ``python -m`` module, and
    the forkserver's own ``"__main__"`` preload never takes effect (Python 3.11 looks for a key
    its parent never sends). Without them every vendor's child of every run imported syncd's CLI
    and all below it: 0.3-0.4 s of CPU each (issue 26). Last, ``frozen`` moves all of it out of
    the garbage collector's walks in the children (its docstring says why)."""
    ctx = multiprocessing.get_context("forkserver")
    modules = [__name__, _ENTRY, *_main_module(), *(_MODULES[v] for v in vendors)]
    ctx.set_forkserver_preload([*modules, _FREEZE])  # last: it freezes what came before


def _main_module() -> list[str]:
    """This process's main module by name when it was run as ``python -m name`` (a package's
    ``__main__`` is not run again in a child: multiprocessing skips those, and importing one
    would run it)."""
    spec = getattr(sys.modules["__main__"], "__spec__", None)
    name = getattr(spec, "name", None)
    if not isinstance(name, str) or name == "__main__" or name.endswith(".__main__"):
        return []
    return [name]


def logger_levels() -> tuple[tuple[str, int], ...]:
    """This process's explicitly set logger levels, the root's as ``""``."""
    found = [("", logging.getLogger().level)]
    for name, logger in logging.root.manager.loggerDict.items():
        if isinstance(logger, logging.Logger) and logger.level:
            found.append((name, logger.level))
    return tuple(found)


# --- the parent's side --------------------------------------------------------------------


def collect(job: Job, *, concurrency: int, stop: threading.Event | None = None) -> Inventory:
    """Run ``job`` in a child process; its inventory, with whatever did not finish failed.

    ``stop`` (shutdown) kills the child at once: nothing it had not finished is trusted."""
    ctx = multiprocessing.get_context("forkserver")
    reader, writer = ctx.Pipe(duplex=False)
    child = ctx.Process(
        target=child_main,
        # The server's environment and directory are those of when it started: the child takes
        # this process's, as a spawned child would.
        args=(job, writer, concurrency, dict(os.environ), str(Path.cwd())),
        name=f"syncd-collect-{job.vendor.value}",
        daemon=True,
    )
    watch = _Watch(job, child.name)
    child.start()
    writer.close()
    try:
        watch.follow(reader, child, stop or threading.Event())
    finally:
        reader.close()
        child.join(_EXIT if watch.ended else 0)
        if child.is_alive():
            child.kill()
            child.join()
    if not watch.ended:
        watch.fail_rest(_death(job, watch, child.exitcode))
    return watch.inventory()


@dataclass(frozen=True, slots=True)
class _Death:
    reason: Reason
    said: str  # what happened to the child, after "the <vendor> collector process"


def _death(job: Job, watch: _Watch, exitcode: int | None) -> _Death:
    if watch.stopped:
        return _Death(Reason.ERROR, "was stopped: syncd is shutting down")
    if watch.hung:
        return _Death(
            Reason.TIMEOUT,
            f"was killed: {watch.hung} ran past collectors.scope_timeout "
            f"({job.settings.scope_timeout:g}s)",
        )
    code = exitcode if exitcode is not None else "?"
    if isinstance(exitcode, int) and exitcode < 0:
        return _Death(Reason.ERROR, f"was killed by signal {-exitcode}")
    return _Death(Reason.ERROR, f"exited with code {code}")


@dataclass
class _Watch:
    """The parent's view of one child: what it started and when, and what it sent."""

    job: Job
    process_name: str
    ended: bool = False
    hung: str = ""  # the task that ran out of time, once the child is killed for it
    stopped: bool = False  # killed because syncd is shutting down
    running: dict[str, float] = field(default_factory=dict)  # task -> when it started
    collectors: list[CollectorOutcome] = field(default_factory=list)
    scopes: dict[ScopeKey, Scope] = field(default_factory=dict)  # listed, no outcome yet
    outcomes: list[ScopeOutcome] = field(default_factory=list)
    partial: dict[ScopeKey, runner.Gather] = field(default_factory=dict)
    kept: runner.Gather = field(default_factory=runner.Gather)

    def follow(self, reader: Connection, child: Any, stop: threading.Event) -> None:
        """Take the child's messages until it ends, dies, a task outlives its deadline or
        ``stop`` is set."""
        self.running["start-up"] = time.monotonic()
        while not self.ended:
            wait = self._next_deadline() - time.monotonic()
            if wait <= 0 or stop.is_set():
                self.stopped = stop.is_set()
                self.hung = "" if self.stopped else self._overdue()
                child.kill()
                return
            if reader.poll(min(wait, _STOP_POLL)):
                try:
                    message = reader.recv()
                except EOFError:
                    return
                self._take(message)
            elif not child.is_alive() and not reader.poll():
                return

    def _limit(self, task: str) -> float:
        if task == "start-up":
            return _STARTUP
        timeout = self.job.settings.scope_timeout
        return timeout * 1.1 + _GRACE

    def _next_deadline(self) -> float:
        return min(
            (t + self._limit(task) for task, t in self.running.items()),
            default=time.monotonic() + 60.0,
        )

    def _overdue(self) -> str:
        now = time.monotonic()
        late = [task for task, t in self.running.items() if t + self._limit(task) <= now]
        return sorted(late)[0] if late else "a task"

    def _take(self, message: _Message) -> None:
        match message:
            case _ChildLog(logger, level, text):
                _relog(self.process_name, logger, level, text)
            case _ChildReady():
                del self.running["start-up"]
                now = time.monotonic()
                for name in names(self.job.config, self.job.vendor):
                    self.running[f"collector {name}: listing scopes"] = now
            case _ScopesListed(outcome, scopes):
                self.running.pop(f"collector {outcome.collector}: listing scopes", None)
                self.collectors.append(outcome)
                self.scopes.update((s.key, s) for s in scopes)
            case _ScopeStarted(key):
                self.running[f"scope {key}"] = time.monotonic()
            case _ChunkFound(key, records, skips):
                _keep(
                    self.partial.setdefault(key, runner.Gather()), self.scopes[key], records, skips
                )
            case _ScopeDone():
                self._done(message)
            case _ChildEnd():
                self.ended = True

    def _done(self, done: _ScopeDone) -> None:
        outcome = done.outcome
        key = outcome.scope.key
        self.running.pop(f"scope {key}", None)
        del self.scopes[key]
        part = self.partial.pop(key, runner.Gather())
        self.outcomes.append(outcome)
        if outcome.status is ScopeStatus.OK:
            _keep(part, outcome.scope, done.records, done.skips)
            self.kept.addresses.extend(part.addresses)
            self.kept.skips.extend(part.skips)

    def fail_rest(self, death: _Death) -> None:
        """Every collector not listed and every scope without an outcome, failed."""
        said = f"the {self.job.vendor.value} collector process {death.said}"
        done = {o.collector for o in self.collectors}
        for name in names(self.job.config, self.job.vendor):
            if name not in done:
                self.collectors.append(_unlisted(name, self.job.vendor, death.reason, said))
        for key, scope in self.scopes.items():
            self.outcomes.append(
                ScopeOutcome(
                    scope=scope,
                    status=ScopeStatus.FAILED,
                    reason=death.reason,
                    error=f"{key}: not collected: {said}",
                )
            )
        self.scopes.clear()
        self.partial.clear()

    def inventory(self) -> Inventory:
        self.kept.collectors = self.collectors
        self.kept.scopes = self.outcomes
        return self.kept.inventory()


def _unlisted(name: str, vendor: Vendor, reason: Reason, said: str) -> CollectorOutcome:
    return CollectorOutcome(
        collector=name,
        vendor=vendor,
        enumerated=False,
        error=f"{name}: scopes not listed: {said}",
        reason=reason,
    )


def _keep(into: runner.Gather, scope: Scope, records: list[_Record], skips: list[Skip]) -> None:
    """The addresses of ``records``, rebuilt with their scope's fields."""
    key = scope.key
    into.addresses.extend(
        Address(
            ip=ipaddress.ip_address(packed),
            vendor=scope.vendor,
            region=region,
            collector=scope.collector,
            account=scope.account,
            resource=resource,
            scope_key=key,
            tags=tags,
        )
        for packed, region, resource, tags in records
    )
    into.skips.extend(skips)


def _relog(process: str, name: str, level: int, message: str) -> None:
    """A child's log record, handled here as if logged here (the child filtered its level)."""
    record = logging.makeLogRecord(
        {
            "name": name,
            "levelno": level,
            "levelname": logging.getLevelName(level),
            "msg": message,
            "processName": process,
        }
    )
    logging.getLogger(name).handle(record)


# --- the child's side ---------------------------------------------------------------------


def child_main(
    job: Job, writer: Connection, concurrency: int, environ: dict[str, str], cwd: str
) -> None:
    """The child: collect ``job``'s vendor, sending everything to the parent through ``writer``."""
    os.environ.clear()
    os.environ.update(environ)
    os.chdir(cwd)
    out = _Sender(writer)
    _forward_logs(out, job.levels)
    collectors = vendor_collectors(job.config, job.vendor, settings=job.settings)
    out.send(_ChildReady())
    with ThreadPoolExecutor(concurrency, thread_name_prefix="syncd-scope") as pool:
        runner.stream(collectors, executor=pool, sink=_Streamed(out), chunk=job.chunk)
    out.send(_ChildEnd())
    writer.close()


class _Sender:
    """One pipe, written from every thread of the child."""

    def __init__(self, writer: Connection) -> None:
        self._writer = writer
        self._lock = threading.Lock()

    def send(self, message: _Message) -> None:
        with self._lock:
            self._writer.send(message)


class _Streamed:
    """The child's ``runner.Sink``: each event to the parent, addresses as compact records."""

    def __init__(self, out: _Sender) -> None:
        self._out = out

    def listed(self, outcome: CollectorOutcome, scopes: tuple[Scope, ...]) -> None:
        self._out.send(_ScopesListed(outcome, scopes))

    def started(self, scope: Scope) -> None:
        self._out.send(_ScopeStarted(scope.key))

    def found(self, scope: Scope, items: Sequence[Discovery]) -> None:
        self._out.send(_ChunkFound(scope.key, *_compact(items)))

    def done(self, outcome: ScopeOutcome, items: Sequence[Discovery]) -> None:
        self._out.send(_ScopeDone(outcome, *_compact(items)))


def _compact(items: Sequence[Discovery]) -> tuple[list[_Record], list[Skip]]:
    records = [(i.ip.packed, i.region, i.resource, i.tags) for i in items if isinstance(i, Address)]
    return records, [i for i in items if isinstance(i, Skip)]


class _Forward(logging.Handler):
    """The child's only log handler: each record, as text, to the parent."""

    def __init__(self, out: _Sender) -> None:
        super().__init__()
        self._out = out

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info:
                message += "\n" + logging.Formatter().formatException(record.exc_info)
            self._out.send(_ChildLog(record.name, record.levelno, message))
        except Exception:  # noqa: BLE001 (logging must never fail the scope that logged)
            self.handleError(record)


def _forward_logs(out: _Sender, levels: tuple[tuple[str, int], ...]) -> None:
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(_Forward(out))
    for name, level in levels:
        logging.getLogger(name or None).setLevel(level)
