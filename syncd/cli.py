"""The command line: argv -> configuration -> one call into a stage -> exit code.

The only module that prints. Exit codes: 0 everything applied, 1 any item, zone or collector
failed (or deletions were refused), 2 a configuration or usage error, 3 ``plan
--detailed-exitcode`` with changes pending. Tables fit the terminal (``COLUMNS`` or the
terminal's width; to a pipe or a file, lines stay whole; ``--wide`` keeps them whole anywhere).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import threading
from collections.abc import Callable, Sequence

import yaml
from prometheus_client import CollectorRegistry

from syncd import __version__, completion, config, daemon
from syncd.cloudflare import api
from syncd.config import Settings
from syncd.config.collectors import installed
from syncd.errors import CloudflareError, ConfigError, ExitCode
from syncd.model import Reason, RunResult
from syncd.run import once as sync
from syncd.sources import collectors
from syncd.views import logs, metrics, render


def _common() -> argparse.ArgumentParser:
    """The options every command takes."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--config",
        metavar="PATH",
        default=argparse.SUPPRESS,
        help="configuration file (default: $SYNCD_CONFIG, else config/syncd.yaml)",
    )
    # Settings operators change per deployment: a flag wins over the variable and the file.
    for flag, metavar, values, env, key in (
        (
            "--log-level",
            "LEVEL",
            "debug, info, warning or error",
            "SYNCD_LOG_LEVEL",
            "logging.level",
        ),
        ("--log-format", "FORMAT", "json, text or auto", "SYNCD_LOG_FORMAT", "logging.format"),
        (
            "--listen-address",
            "HOST:PORT",
            "syncd run's /metrics",
            "SYNCD_METRICS_LISTEN",
            "metrics.listen",
        ),
    ):
        help_text = f"{values}; wins over ${env} and {key}"
        common.add_argument(flag, metavar=metavar, default=argparse.SUPPRESS, help=help_text)
    return common


def _output(parser: argparse.ArgumentParser, formats: Sequence[str]) -> None:
    """``--output`` (JSON is the stable interface of docs/output.md) and ``--wide``."""
    parser.add_argument(
        "--output",
        choices=formats,
        default="table",
        help="table for people; json: the stable, versioned interface (docs/output.md)",
    )
    parser.add_argument(
        "--wide", action="store_true", help="one line per row, whatever the terminal's width"
    )


def _width(args: argparse.Namespace) -> int | None:
    """The width tables fit: the terminal's (``COLUMNS`` first), none to a pipe or a file."""
    if getattr(args, "wide", False):
        return None
    if "COLUMNS" in os.environ or sys.stdout.isatty():
        return max(40, shutil.get_terminal_size().columns)
    return None


def _parser() -> argparse.ArgumentParser:
    common = _common()
    parser = argparse.ArgumentParser(
        prog="syncd",
        description="Keep Cloudflare origin cloud region mappings in step with your clouds.",
        parents=[common],
    )
    parser.add_argument("--version", action="version", version=f"syncd {__version__}")
    verbs = parser.add_subparsers(dest="verb", required=True, metavar="COMMAND")
    s = verbs.add_parser("sync", parents=[common], help="one run: collect, plan, push")
    _output(s, ["table", "json"])
    s.add_argument("--allow-mass-delete", action="store_true", help="pass the mass-delete guard")
    s.add_argument(
        "--verify",
        action="store_true",
        help="list every zone's mappings in full (ignore the mirror's cloudflare.verify_interval)",
    )
    p = verbs.add_parser("plan", parents=[common], help="what sync would do, without writes")
    _output(p, ["table", "json"])
    p.add_argument("--allow-mass-delete", action="store_true", help="plan past the guard")
    p.add_argument(
        "--detailed-exitcode",
        action="store_true",
        help=f"exit {ExitCode.CHANGES} when changes are pending, 0 when none (1 failure, 2 config)",
    )
    verbs.add_parser("run", parents=[common], help="the long-running service (scheduled syncs)")
    d = verbs.add_parser("discover", parents=[common], help="list discovered addresses only")
    _output(d, ["table", "json", "csv"])
    o = verbs.add_parser(
        "origins", parents=[common], help="each zone's origins, how reached, mapped or not"
    )
    o.add_argument("--zone", metavar="NAME", help="only this zone (its name or id)")
    o.add_argument(
        "--observed",
        action="store_true",
        help="what Cloudflare really fetched (read now): each address, its share, mapped or "
        "not and why, the upper tiers, the hints' effect",
    )
    _output(o, ["table", "json"])
    r = verbs.add_parser("regions", parents=[common], help="Cloudflare's supported vendors/regions")
    _output(r, ["table", "json"])
    c = verbs.add_parser("check-config", parents=[common], help="validate and print the config")
    c.add_argument(
        "--output",
        choices=["yaml", "json"],
        default="yaml",
        help="the masked configuration (or --zones list) as YAML, or JSON (docs/output.md)",
    )
    c.add_argument(
        "--zones",
        action="store_true",
        help="print the resolved zone list instead (lists zones when zone_discovery is set)",
    )
    demo = verbs.add_parser("demo", help="the whole pipeline on built-in simulators")
    demo.add_argument("--serve", action="store_true", help="keep `syncd run` going against them")
    sim = verbs.add_parser("simulate", help="serve a simulator standalone (for local testing)")
    sim.add_argument("api", choices=["cloudflare"])
    sim.add_argument("args", nargs=argparse.REMAINDER, help="its options (see --help)")
    comp = verbs.add_parser("completion", help="print the shell completion script")
    comp.add_argument("shell", choices=completion.SHELLS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncd`` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    if args.verb == "completion":
        print(completion.script(parser, args.shell))
        return ExitCode.OK
    if args.verb == "demo":
        return _demo(args)
    if args.verb == "simulate":
        from syncd.simulators import cloudflare

        return cloudflare.main(args.args)
    flags = {
        key: (getattr(args, name), f"--{name.replace('_', '-')}")
        for key, name in _FLAGS.items()
        if getattr(args, name, None) is not None
    }
    try:
        settings = config.load(config.resolve_path(getattr(args, "config", None)), flags=flags)
    except ConfigError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return ExitCode.USAGE
    logs.configure(settings.logging, stream=sys.stderr)
    verb: Callable[[Settings, argparse.Namespace], int] = _VERBS[args.verb]
    try:
        return verb(settings, args)
    except ConfigError as exc:  # a setting read again at run time (api_token_file) went bad
        print(f"syncd: {exc}", file=sys.stderr)
        return ExitCode.FAILED


# Settings a flag may give (over the environment and the file): key path -> argparse dest.
_FLAGS = {
    "logging.level": "log_level",
    "logging.format": "log_format",
    "metrics.listen": "listen_address",
}


def _sync(settings: Settings, args: argparse.Namespace) -> int:
    """One run. SIGTERM or Ctrl-C: the batch in flight finishes, the rest is left for the next
    run, and syncd exits ``128 + signal`` (143, 130) with one line; a second one exits at once."""
    stop = threading.Event()
    options = sync.Options(allow_mass_delete=args.allow_mass_delete, verify=args.verify, stop=stop)
    with daemon.signals_set(stop, restore=False) as received:  # the process ends after it
        report = sync.run_once(settings, options=options)
        logs.log_report(report)
        registry = CollectorRegistry()
        metrics.Metrics(registry, error_reasons=tuple(Reason)).observe(report)
        if settings.metrics.pushgateway:
            metrics.push(settings.metrics, registry, report)
        if args.output == "json":
            print(render.document("sync", render.report_json(report)))
        else:
            print(render.summary(report, _width(args)))
        if received:
            sig = received[0]
            print(
                f"syncd: stopped by {sig.name}: the batch in flight finished; the rest is left "
                "for the next run",
                file=sys.stderr,
            )
            return 128 + int(sig)
        return ExitCode.OK if report.result is RunResult.SUCCESS else ExitCode.FAILED


def _plan(settings: Settings, args: argparse.Namespace) -> int:
    options = sync.Options(dry_run=True, allow_mass_delete=args.allow_mass_delete)
    report = sync.run_once(settings, options=options)
    if args.output == "json":
        print(render.document("plan", render.report_json(report)))
    else:
        print(render.plan_table(report, _width(args)))
    if report.result is not RunResult.SUCCESS:
        return ExitCode.FAILED
    pending = any(z.plan.creates or z.plan.updates or z.plan.deletes for z in report.zones)
    return ExitCode.CHANGES if args.detailed_exitcode and pending else ExitCode.OK


def _origins(settings: Settings, args: argparse.Namespace) -> int:
    """Read-only: a dry run's view of every origin (no write, the registry opened read-only)."""
    if args.zone:
        zones = [z for z in settings.cloudflare.zones if args.zone in (z.id, z.name, z.label)]
        if not zones:
            known = ", ".join(z.label for z in settings.cloudflare.zones)
            print(
                f"syncd: no zone {args.zone!r} in cloudflare.zones (known: {known})",
                file=sys.stderr,
            )
            return ExitCode.USAGE
        cf = settings.cloudflare.model_copy(update={"zones": tuple(zones)})
        settings = settings.model_copy(update={"cloudflare": cf})
    options = sync.Options(dry_run=True, observe_now=args.observed)
    report = sync.run_once(settings, options=options)
    view = render.observed if args.observed else render.origins
    print(view(report, args.output, _width(args)))
    failed = report.error or any(z.error or (z.origins and z.origins.failed) for z in report.zones)
    return ExitCode.FAILED if failed else ExitCode.OK


def _run(settings: Settings, _: argparse.Namespace) -> int:
    registry = CollectorRegistry()
    stop = threading.Event()  # SIGTERM sets it; a run in flight stops after its current batch
    # One limiter for the service's life: Cloudflare counts requests per user, across runs.
    options = sync.Options(stop=stop, limiter=api.rate_limiter(settings.cloudflare))
    return daemon.run_service(
        settings,
        run=lambda: sync.run_once(settings, options=options),
        metrics=metrics.Metrics(registry, error_reasons=tuple(Reason)),
        registry=registry,
        stop=stop,
    )


def _discover(settings: Settings, args: argparse.Namespace) -> int:
    inventory = collectors.collect(settings)
    print(render.discovery(inventory.addresses, args.output, _width(args)))
    problems = [o for o in inventory.scopes if o.status.value == "failed"]
    for o in problems:
        print(f"scope {o.scope.key} failed ({o.reason}): {o.error}", file=sys.stderr)
    for c in inventory.collectors:
        if not c.enumerated:
            print(f"collector {c.collector} failed ({c.reason}): {c.error}", file=sys.stderr)
    return ExitCode.OK if inventory.complete() else ExitCode.FAILED


def _regions(settings: Settings, args: argparse.Namespace) -> int:
    try:
        with sync.connect(settings) as cloudflare:
            zones = cloudflare.zones(settings.cloudflare).zones
            supported = api.supported_regions(cloudflare, [z.id for z in zones])
    except CloudflareError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    print(render.regions(supported.regions, args.output, _width(args)))
    return ExitCode.OK


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    if not args.zones:
        masked = config.masked(settings)
        if args.output == "json":
            print(render.document("config", {"config": masked}))
        else:
            print(yaml.safe_dump(masked, sort_keys=False).rstrip())
        return ExitCode.OK
    try:
        with sync.connect(settings) as cloudflare:
            found = cloudflare.zones(settings.cloudflare)
    except CloudflareError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    explicit = {z.id for z in settings.cloudflare.zones}
    rows = [
        (z.id, z.name or "-", "explicit" if z.id in explicit else "discovered", z.policy, z.origins)
        for z in found.zones
    ]
    if rows or args.output == "json":
        print(render.zones(rows, "json" if args.output == "json" else "table"))
    if settings.cloudflare.zone_discovery is not None:
        print(
            f"zone discovery: {found.zones_listed} active zones listed, {found.discovered} matched",
            file=sys.stderr,
        )
        if not found.zones:
            print("syncd: warning: zone discovery matched no zone: nothing to do", file=sys.stderr)
    return ExitCode.OK


_DEMO_NEEDS = ("moto", "dnslib", "cryptography", "boto3", "google.auth", "azure.identity", "oci")


def _demo(args: argparse.Namespace) -> int:
    # The image and the per-cloud installs leave the 'demo' extra (moto, dnslib, every SDK) out;
    # say so in one line before anything starts, not as an ImportError half way.
    missing = [m for m in _DEMO_NEEDS if not installed(m)]
    if missing:
        print(
            f"syncd: the demo needs the 'demo' extra: pip install 'syncd[demo]' "
            f"({', '.join(missing)} not installed)",
            file=sys.stderr,
        )
        return ExitCode.USAGE
    from syncd import demo
    from syncd.config import LoggingConfig

    logs.configure(LoggingConfig(level="warning"), stream=sys.stderr)
    return demo.run(sys.stdout, serve=args.serve)


_VERBS: dict[str, Callable[[Settings, argparse.Namespace], int]] = {
    "sync": _sync,
    "plan": _plan,
    "run": _run,
    "discover": _discover,
    "origins": _origins,
    "regions": _regions,
    "check-config": _check_config,
}
