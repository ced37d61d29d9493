"""The command line: argv -> configuration -> one call into a stage -> exit code.

The only module that prints. Exit codes: 0 everything applied, 1 any item, zone or collector
failed (or deletions were refused), 2 a configuration or usage error.
"""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable, Sequence

import yaml
from prometheus_client import CollectorRegistry

from syncd import __version__, collectors, config, daemon, logs, metrics, render, sync
from syncd.cloudflare import api
from syncd.config import Settings
from syncd.config.collectors import installed
from syncd.errors import CloudflareError, ConfigError, ExitCode
from syncd.model import RunResult


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
    s.add_argument("--allow-mass-delete", action="store_true", help="pass the mass-delete guard")
    s.add_argument(
        "--verify",
        action="store_true",
        help="list every zone's mappings in full (ignore the mirror's cloudflare.verify_interval)",
    )
    p = verbs.add_parser("plan", parents=[common], help="what sync would do, without writes")
    p.add_argument("--output", choices=["table", "json"], default="table")
    p.add_argument("--allow-mass-delete", action="store_true", help="plan past the guard")
    verbs.add_parser("run", parents=[common], help="the long-running service (scheduled syncs)")
    d = verbs.add_parser("discover", parents=[common], help="list discovered addresses only")
    d.add_argument("--output", choices=["table", "json", "csv"], default="table")
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
    o.add_argument("--output", choices=["table", "json"], default="table")
    verbs.add_parser("regions", parents=[common], help="Cloudflare's supported vendors/regions")
    c = verbs.add_parser("check-config", parents=[common], help="validate and print the config")
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
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``syncd`` console script."""
    args = _parser().parse_args(argv)
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
        metrics.Metrics(registry).observe(report)
        if settings.metrics.pushgateway:
            metrics.push(settings.metrics, registry, report)
        print(render.summary(report))
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
        print(render.dumps(render.report_json(report)))
    else:
        print(render.plan_table(report))
    return ExitCode.OK if report.result is RunResult.SUCCESS else ExitCode.FAILED


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
    print(
        render.observed(report, args.output)
        if args.observed
        else render.origins(report, args.output)
    )
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
        metrics=metrics.Metrics(registry),
        registry=registry,
        stop=stop,
    )


def _discover(settings: Settings, args: argparse.Namespace) -> int:
    inventory = collectors.collect(settings)
    print(render.discovery(inventory.addresses, args.output))
    problems = [o for o in inventory.scopes if o.status.value == "failed"]
    for o in problems:
        print(f"scope {o.scope.key} failed ({o.reason}): {o.error}", file=sys.stderr)
    for c in inventory.collectors:
        if not c.listed:
            print(f"collector {c.collector} failed ({c.reason}): {c.error}", file=sys.stderr)
    return ExitCode.OK if inventory.complete() else ExitCode.FAILED


def _regions(settings: Settings, _: argparse.Namespace) -> int:
    try:
        with sync.connect(settings) as cloudflare:
            zones = cloudflare.zones(settings.cloudflare).zones
            supported = api.supported_regions(cloudflare, [z.id for z in zones])
    except CloudflareError as exc:
        print(f"syncd: {exc}", file=sys.stderr)
        return ExitCode.FAILED
    print(render.regions(supported.regions))
    return ExitCode.OK


def _check_config(settings: Settings, args: argparse.Namespace) -> int:
    if not args.zones:
        print(yaml.safe_dump(config.masked(settings), sort_keys=False).rstrip())
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
    if rows:
        print(render.zones(rows))
    if settings.cloudflare.zone_discovery is not None:
        print(
            f"zone discovery: {found.listed} active zones listed, {found.discovered} matched",
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
