"""Human and machine views of a run report, a plan and a discovery, for the CLI to print.

Pure formatting: no I/O. The report holds no secrets, so nothing here can leak one.

Every table goes through ``table()``, and every free line through ``paragraph()``: given a
``width`` (the CLI's terminal width; ``None`` to a pipe or with ``--wide``), long cells of the
columns named ``wrap`` are wrapped in their cell, or, when even that does not fit, moved to
indented detail lines under their row, so nothing is cut. JSON documents carry
``schema_version`` (docs/output.md); a field is only ever added within a version.
"""

from __future__ import annotations

import csv
import io
import json
import textwrap
from collections.abc import Collection, Iterable, Sequence
from dataclasses import replace
from typing import Any

from syncd.model import (
    Address,
    CoverageReason,
    CoverageState,
    Inventory,
    ObservationState,
    ObservedOrigin,
    RunReport,
    ScopeStatus,
    Vendor,
    ZonePlan,
    ZoneReport,
    canonical,
    coverage_counts,
)

SCHEMA_VERSION = 1  # of every JSON document the CLI prints (docs/output.md)
_GAP = 2  # spaces between columns
_NARROWEST = 12  # a wrapped column narrower than this moves to detail lines instead
_WORD = 40  # a longer word (an Azure resource id) may be broken; a shorter one never
_INDENT = "    "  # of a detail line, and of a wrapped free line's continuation


def table(
    headers: Sequence[str],
    rows: Iterable[Sequence[object]],
    *,
    width: int | None = None,
    wrap: Collection[str] = (),
) -> str:
    """An aligned text table; within ``width`` columns when given (see the module docstring):
    the cells of the ``wrap`` columns (chains, sources, region lists) give way, the others never.
    """
    body = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in body)]) for i, h in enumerate(headers)]
    if width is None or _GAP * (len(widths) - 1) + sum(widths) <= width:
        return _aligned(headers, [[[c] for c in r] for r in body], widths)
    flexible = [i for i, h in enumerate(headers) if h in wrap]
    fixed = _GAP * (len(widths) - 1) + sum(w for i, w in enumerate(widths) if i not in flexible)
    shares = _shares([widths[i] for i in flexible], width - fixed)
    # A share narrower than the column's longest word (a host name) would break words: the
    # cells move to detail lines then, where they have the whole width.
    needed = [min(_WORD, max(len(w) for r in body for w in r[i].split() or [""])) for i in flexible]
    if flexible and all(
        share >= max(_NARROWEST, need) for share, need in zip(shares, needed, strict=True)
    ):
        for i, share in zip(flexible, shares, strict=True):
            widths[i] = share
        cells = [[_wrapped(c, w) for c, w in zip(r, widths, strict=True)] for r in body]
        return _aligned(headers, cells, widths)
    return _with_details(headers, body, set(flexible), width)


def _shares(natural: list[int], room: int) -> list[int]:
    """``room`` columns shared among the wrapped columns: none gets more than it needs, the
    rest is split evenly."""
    shares = [0] * len(natural)
    left, open_ = room, sorted(range(len(natural)), key=lambda i: natural[i])
    while open_:
        even = left // len(open_)
        i = open_.pop(0)
        shares[i] = min(natural[i], even)
        left -= shares[i]
    return shares


def _wrapped(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]
    return textwrap.wrap(text, width, break_on_hyphens=False) or [""]


def _aligned(headers: Sequence[str], cells: list[list[list[str]]], widths: list[int]) -> str:
    """Rows of cells that may hold several lines each; a row's later lines leave the other
    columns blank."""

    def line(parts: Sequence[str]) -> str:
        return (" " * _GAP).join(p.ljust(w) for p, w in zip(parts, widths, strict=True)).rstrip()

    lines = [line(headers), (" " * _GAP).join("-" * w for w in widths)]
    for row in cells:
        for n in range(max(len(c) for c in row)):
            lines.append(line([c[n] if n < len(c) else "" for c in row]))
    return "\n".join(lines)


def _with_details(
    headers: Sequence[str], body: list[list[str]], moved: set[int], width: int
) -> str:
    """The table without the ``moved`` columns, each row followed by its moved cells, one
    ``header: text`` detail line each (wrapped to ``width``)."""
    kept = [i for i in range(len(headers)) if i not in moved]
    widths = [max([len(headers[i]), *(len(r[i]) for r in body)]) for i in kept]
    cells: list[list[list[str]]] = []
    for r in body:
        row = [[r[i]] for i in kept]
        details = [
            line
            for i in sorted(moved)
            if r[i]
            for line in paragraph(f"{_INDENT}{headers[i]}: {r[i]}", width).splitlines()
        ]
        row[0] += details  # the first column is the widest free space a detail line can take
        cells.append(row)
    return _aligned([headers[i] for i in kept], cells, widths)


def paragraph(text: str, width: int | None) -> str:
    """Each line of ``text`` wrapped to ``width`` (continued with an indent); whole if ``None``."""
    if width is None:
        return text
    out: list[str] = []
    for line in text.splitlines():
        if len(line) <= width:
            out.append(line)
            continue
        lead = line[: len(line) - len(line.lstrip())]
        out += textwrap.wrap(
            line,
            width,
            initial_indent="",
            subsequent_indent=lead + _INDENT,
            break_on_hyphens=False,
            drop_whitespace=True,
        )
    return "\n".join(out)


def document(kind: str, body: dict[str, Any]) -> str:
    """A JSON document of the stable interface: ``schema_version``, ``kind``, then ``body``."""
    return dumps({"schema_version": SCHEMA_VERSION, "kind": kind, **body})


def summary(report: RunReport, width: int | None = None) -> str:
    """Per-zone result of a sync, then collectors and run-level errors."""
    headers = [
        "zone",
        "api",
        "created",
        "updated",
        "deleted",
        "unchanged",
        "skipped",
        "failed",
        "coverage",
        "observed",
    ]
    rows = [
        [
            z.zone_name,
            z.generation or "-",
            z.created,
            z.updated,
            z.deleted,
            len(z.plan.unchanged),
            len(z.plan.skips),
            len(z.failures),
            coverage_text(z),
            observed_text(z),
        ]
        for z in report.zones
    ]
    parts = [table(headers, rows, width=width)] if report.zones else []
    parts += _problems(report, width)
    parts.append(f"result: {report.result.value} in {report.duration:.1f}s")
    return "\n\n".join(parts)


def _problems(report: RunReport, width: int | None) -> list[str]:
    lines = [*_collector_lines(report.inventory), *_discovery_lines(report)]
    for z in report.zones:
        lines += _zone_problems(z)
    lines += _observation_lines(report)
    if report.verifications_waiting:
        lines.append(
            f"{report.verifications_waiting} zone(s) due for verification wait for the next run "
            "(verification's share of the Cloudflare budget was used)"
        )
    if report.error:
        lines.append(f"run failed: {report.error}")
    return [paragraph("\n".join(lines), width)] if lines else []


def _discovery_lines(report: RunReport) -> list[str]:
    found = report.discovery
    if found is None:
        return []
    lines = [f"zone {name}: no longer listed by zone discovery" for name in found.vanished]
    if not report.zones:
        lines.append(
            f"warning: zone discovery matched no zone ({found.zones_listed} active zones listed): "
            "nothing to do"
        )
    return lines


_ZONES = ["zone_id", "name", "source", "policy", "origins"]


def zones(resolution_zones: Sequence[tuple[str, str, str, str, str]], fmt: str = "table") -> str:
    """``check-config --zones``: id, name, where the zone came from, policy, origins."""
    if fmt == "json":
        listed = [dict(zip(_ZONES, z, strict=True)) for z in resolution_zones]
        return document("zones", {"zones": listed})
    return table(_ZONES, resolution_zones)


def _collector_lines(inventory: Inventory) -> list[str]:
    lines = [
        f"collector {c.collector} failed ({c.reason}): {c.error}"
        for c in inventory.collectors
        if not c.enumerated
    ]
    lines += [
        f"scope {o.scope.key} failed ({o.reason}): {o.error}"
        for o in inventory.scopes
        if o.status is ScopeStatus.FAILED
    ]
    return lines


def coverage_text(z: ZoneReport) -> str:
    """``5/7 (71%)`` of the zone's origins mapped; ``-`` for an ``origins: all`` zone."""
    if z.origins is None:
        return "-"
    counts = coverage_counts(z.coverage)
    mapped, total = counts[CoverageState.MAPPED], sum(counts.values())
    return f"{mapped}/{total} ({mapped / total:.0%})" if total else "0/0"


def _origin_problems(z: ZoneReport) -> list[str]:
    name = z.zone_name
    lines = [
        f"zone {name}: origin {o.source} failed: {o.detail}"
        for o in (z.origins.failed if z.origins else ())
    ]
    lines += [
        f"zone {name}: origin {o.source} skipped ({o.problem}): {o.detail}"
        for o in (z.origins.malformed if z.origins else ())
    ]
    lines += [f"{w}" for w in (z.origins.warnings if z.origins else ())]
    tiered = z.tiered_cache
    if tiered is not None and tiered.warning:
        lines.append(tiered.warning)
    elif tiered is not None and tiered.smart_on is False:
        off = [
            n
            for n, v in (("Tiered Cache", tiered.tiered), ("Smart topology", tiered.smart))
            if v is False
        ]
        lines.append(
            f"zone {name}: {' and '.join(off)} off: origin cloud region mappings have no "
            "effect until Smart Tiered Cache is on (Caching > Tiered Cache)"
        )
    return lines


def _zone_problems(z: ZoneReport) -> list[str]:
    lines = [f"zone {z.zone_name}: {z.error}"] if z.error else []
    if z.deferred:
        lines.append(f"zone {z.zone_name}: deferred to the next run: {z.deferred}")
    lines += _origin_problems(z)
    if z.plan.guard:
        lines.append(f"zone {z.zone_name}: deletions refused: {z.plan.guard}")
    lines += [
        f"zone {z.zone_name}: {f.ip} {f.vendor}/{f.region} failed: {f.error}" for f in z.failures
    ]
    return lines


def plan_table(report: RunReport, width: int | None = None) -> str:
    """Every change and skip of every zone, with reasons."""
    parts: list[str] = []
    for z in report.zones:
        parts.append(_zone_plan(z, width))
    if report.zones:
        parts.append(_plan_summary(report, width))
    parts += _problems(report, width)
    return "\n\n".join(parts)


def _plan_summary(report: RunReport, width: int | None) -> str:
    """One line per zone; ``coverage``: origins mapped now, and once the plan is applied."""
    headers = ["zone", "create", "update", "delete", "unchanged", "skipped", "coverage"]
    rows = [
        [
            z.zone_name,
            len(z.plan.creates),
            len(z.plan.updates),
            len(z.plan.deletes),
            len(z.plan.unchanged),
            len(z.plan.skips),
            _planned_coverage(z),
        ]
        for z in report.zones
    ]
    return table(headers, rows, width=width)


def _planned_coverage(z: ZoneReport) -> str:
    if z.origins is None:
        return "-"
    planned = [
        replace(c, state=CoverageState.MAPPED) if c.reason == CoverageReason.PLANNED else c
        for c in z.coverage
    ]
    counts = coverage_counts(tuple(planned))
    total = sum(counts.values())
    return f"{coverage_text(z)} -> {counts[CoverageState.MAPPED]}/{total}" if total else "0/0"


def _zone_plan(z: ZoneReport, width: int | None) -> str:
    p = z.plan
    head = (
        f"zone {z.zone_name} ({z.zone_id}): {len(p.creates)} to create, {len(p.updates)} to "
        f"update, {len(p.deletes)} to delete, {len(p.unchanged)} unchanged, "
        f"{len(p.skips)} skipped, origins mapped now: {coverage_text(z)}"
    )
    rows = [_row(p, kind) for kind in ("create", "update", "delete", "skip")]
    flat = [r for group in rows for r in group]
    changes = table(["action", "ip", "mapping", "detail"], flat, width=width, wrap=("detail",))
    return paragraph(head, width) + ("\n" + changes if flat else "")


def _row(p: ZonePlan, kind: str) -> list[list[str]]:
    if kind == "create":
        return [["create", u.mapping.ip_text, _m(u.mapping), ""] for u in p.creates]
    if kind == "update":
        return [
            ["update", u.mapping.ip_text, _m(u.mapping), f"was {_m(u.previous)}"]
            for u in p.updates
            if u.previous is not None
        ]
    if kind == "delete":
        return [["delete", m.ip_text, _m(m), "no longer discovered"] for m in p.deletes]
    return [
        [
            f"skip:{s.reason.value}",
            s.subject,
            f"{s.vendor}/{s.region}" if s.vendor else "",
            s.detail,
        ]
        for s in p.skips
    ]


def _m(m: Any) -> str:
    return f"{m.vendor.value}/{m.region}"


def report_json(report: RunReport) -> dict[str, Any]:
    """The plan (or result) as JSON-ready data."""
    return {
        "result": report.result.value,
        "dry_run": report.dry_run,
        "error": report.error or None,
        "discovery": None
        if report.discovery is None
        else {
            "listed": report.discovery.zones_listed,
            "matched": report.discovery.matched,
            "vanished": list(report.discovery.vanished),
        },
        "zones": [_zone_json(z) for z in report.zones],
        "collectors": [
            {"collector": c.collector, "listed": c.enumerated, "error": c.error or None}
            for c in report.inventory.collectors
        ],
        "scopes": [
            {"scope": str(o.scope.key), "status": o.status.value, "reason": o.reason or None}
            for o in report.inventory.scopes
        ],
    }


def _zone_json(z: ZoneReport) -> dict[str, Any]:
    p = z.plan

    def item(m: Any) -> dict[str, str]:
        return {"ip": m.ip_text, "vendor": m.vendor.value, "region": m.region}

    return {
        "zone_id": z.zone_id,
        "zone": z.zone_name,
        "api": z.generation or None,
        "listed": z.listed_because or "mirror",
        "drift": z.drift,
        "deferred": z.deferred or None,
        "create": [item(u.mapping) for u in p.creates],
        "update": [
            {**item(u.mapping), "previous": item(u.previous)} for u in p.updates if u.previous
        ],
        "delete": [item(m) for m in p.deletes],
        "unchanged": len(p.unchanged),
        "skip": [
            {"subject": s.subject, "reason": s.reason.value, "detail": s.detail} for s in p.skips
        ],
        "ignored": p.ignored,
        "deletions_refused": p.guard or None,
        "created": z.created,
        "updated": z.updated,
        "deleted": z.deleted,
        "failed": [
            {"ip": f.ip, "vendor": f.vendor, "region": f.region, "error": f.error}
            for f in z.failures
        ],
        "error": z.error or None,
        "coverage": _coverage_json(z),
        "smart_tiered_cache": z.tiered_cache.smart_on if z.tiered_cache else None,
    }


def _coverage_line(z: ZoneReport) -> str:
    if z.origins is None:
        return (
            f"zone {z.zone_name}: origins: all (every discovered address is mapped; no origin set)"
        )
    return f"zone {z.zone_name}: coverage {coverage_text(z)}"


def _coverage_json(z: ZoneReport) -> dict[str, Any] | None:
    if z.origins is None:
        return None
    counts = coverage_counts(z.coverage)
    return {
        "mapped": counts[CoverageState.MAPPED],
        "unmapped": counts[CoverageState.UNMAPPED],
        "ratio": z.coverage_ratio,
        "failed_origins": [{"source": o.source, "error": o.detail} for o in z.origins.failed],
        "warnings": list(z.origins.warnings),
    }


# What a person scans first (zone, address, its mapping, its state) first; how Cloudflare
# reaches the origin (source, chain), often long, last and wrapped.
_ORIGINS = ["zone", "address", "mapping", "state", "reason", "source", "chain"]


def origins(report: RunReport, fmt: str, width: int | None = None) -> str:
    """``syncd origins``: every origin of every zone, how it is reached and whether it is mapped."""
    rows: list[dict[str, Any]] = []
    for z in report.zones:
        for c in z.coverage:
            o = c.origin
            rows.append(
                {
                    "zone": z.zone_name,
                    "source": o.source,
                    "chain": list(o.chain),
                    "address": canonical(o.ip) if o.ip is not None else None,
                    "discovered": f"{c.vendor}/{c.region}" if c.vendor else None,
                    "state": c.state.value,
                    "reason": c.reason or None,
                    "detail": o.detail or None,
                }
            )
    if fmt == "json":
        zones = [
            {
                "zone": z.zone_name,
                "zone_id": z.zone_id,
                "coverage": _coverage_json(z),
                "smart_tiered_cache": z.tiered_cache.smart_on if z.tiered_cache else None,
                "origins": [r for r in rows if r["zone"] == z.zone_name],
                "error": z.error or None,
            }
            for z in report.zones
        ]
        return document("origins", {"result": report.result.value, "zones": zones})
    lines = [
        [
            r["zone"],
            r["address"] or "-",
            r["discovered"] or "-",
            r["state"],
            r["reason"] or "",
            r["source"],
            " -> ".join(r["chain"]),
        ]
        for r in rows
    ]
    wrapped = ("source", "chain")
    parts = [table(_ORIGINS, lines, width=width, wrap=wrapped)] if lines else ["no origins found"]
    parts.append(paragraph("\n".join(_coverage_line(z) for z in report.zones), width))
    parts += _problems(report, width)
    return "\n\n".join(parts)


def observed_text(z: ZoneReport) -> str:
    """``98% of 1,000`` origin fetches to mapped addresses; why not, or ``-`` when off."""
    seen = z.traffic
    if seen is None:
        return "-"
    if not seen.available:
        return seen.observation.state.value
    fetches = sum(o.fetches for o in seen.origins)
    if seen.coverage_ratio is None:
        return "no fetches"
    return f"{seen.coverage_ratio:.0%} of {fetches:,}"


def _observation_lines(report: RunReport) -> list[str]:
    """A zone whose traffic could not be read, once; a token without Analytics Read, once."""
    unobserved = report.unobserved()
    denied = [(z, o) for z, o in unobserved if o.state is ObservationState.DENIED]
    lines = [
        f"zone {z.zone_name}: traffic {o.state.value}: {o.detail}"
        for z, o in unobserved
        if o.state is not ObservationState.DENIED
    ]
    if denied:
        names = ", ".join(z.zone_name for z, _ in denied[:3]) + (", ..." if len(denied) > 3 else "")
        lines.append(
            f"traffic not observed in {len(denied)} zone(s) ({names}): {denied[0][1].detail}; "
            "give the token Analytics: Read (Zone > Analytics > Read)"
        )
    return lines


def _ratio(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


_OBSERVED = [
    "zone",
    "address",
    "fetches",
    "share",
    "state",
    "reason",
    "mapping",
    "upper tiers",
    "expected",
    "effect",
]


def _observed_row(o: ObservedOrigin) -> dict[str, Any]:
    return {
        "address": canonical(o.ip),
        "fetches": o.fetches,
        "share": round(o.share, 4),
        "state": o.state.value,
        "reason": o.reason or None,
        "mapping": f"{o.vendor}/{o.region}" if o.vendor else None,
        "upper_tiers": [
            {"colo": c, "fetches": n, "share": round(n / o.fetches, 4) if o.fetches else 0.0}
            for c, n in o.tiers
        ],
        "expected_upper_tiers": list(o.expected),
        "effect": None if o.effect is None else round(o.effect, 4),
        "judged": o.judged or None,
    }


def _observed_zone(z: ZoneReport) -> dict[str, Any]:
    seen = z.traffic
    base: dict[str, Any] = {"zone": z.zone_name, "zone_id": z.zone_id, "error": z.error or None}
    if seen is None:
        return {**base, "observation": "disabled", "origins": []}
    o = seen.observation
    return {
        **base,
        "observation": o.state.value,
        "detail": o.detail or None,
        "window": {"since": o.since, "until": o.until} if o.until else None,
        "truncated": o.truncated,
        "coverage_ratio": seen.coverage_ratio,
        "hint_effect_ratio": seen.effect_ratio,
        "too_new": seen.too_new,
        "smart_tiered_cache": z.tiered_cache.smart_on if z.tiered_cache else None,
        "origins": [_observed_row(x) for x in seen.origins],
    }


def observed(report: RunReport, fmt: str, width: int | None = None) -> str:
    """``syncd origins --observed``: every address Cloudflare fetched from, per zone, its share,
    mapped or not and why, the upper tiers that fetched from it, those expected, the effect."""
    zones = [_observed_zone(z) for z in report.zones]
    if fmt == "json":
        return document("observed", {"result": report.result.value, "zones": zones})
    rows = [
        [
            z["zone"],
            r["address"],
            f"{r['fetches']:,}",
            f"{r['share']:.1%}",
            r["state"],
            r["reason"] or "",
            r["mapping"] or "-",
            ", ".join(f"{t['colo']} {t['share']:.0%}" for t in r["upper_tiers"]) or "-",
            ", ".join(r["expected_upper_tiers"]) or "-",
            _effect_text(r),
        ]
        for z in zones
        for r in z["origins"]
    ]
    wrapped = ("upper tiers", "expected")
    parts = (
        [table(_OBSERVED, rows, width=width, wrap=wrapped)]
        if rows
        else ["no origin fetches observed"]
    )
    parts.append(paragraph("\n".join(_observed_line(z) for z in report.zones), width))
    parts += _problems(report, width)
    return "\n\n".join(parts)


def _effect_text(row: dict[str, Any]) -> str:
    if row["effect"] is not None:
        return f"{row['effect']:.0%}"
    return {"too_new": "too new to judge", None: "-"}.get(row["judged"], str(row["judged"]))


def _observed_line(z: ZoneReport) -> str:
    seen = z.traffic
    if seen is None:
        return f"zone {z.zone_name}: traffic not observed (cloudflare.observe.enabled is false)"
    if not seen.available:
        return f"zone {z.zone_name}: traffic {seen.observation.state.value}"
    o = seen.observation
    minutes = (o.until - o.since) / 60
    new = f", {seen.too_new} hint(s) too new to judge" if seen.too_new else ""
    cut = ", only the most fetched groups (Cloudflare's page was full)" if o.truncated else ""
    return (
        f"zone {z.zone_name}: over the last {minutes:.0f} min, {observed_text(z)} origin fetches "
        f"went to mapped addresses; hint effect {_ratio(seen.effect_ratio)} (upper tiers "
        f"compared on their three-letter code){new}{cut}"
    )


def dumps(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


_DISCOVERY = ["ip", "vendor", "region", "collector", "account", "resource"]


def discovery(addresses: Iterable[Address], fmt: str, width: int | None = None) -> str:
    """One line per discovered address, as a table, JSON or CSV."""
    rows = [
        [canonical(a.ip), a.vendor.value, a.region, a.collector, a.account, a.resource]
        for a in sorted(addresses, key=lambda a: (a.ip.version, int(a.ip), a.collector))
    ]
    if fmt == "json":
        found = [dict(zip(_DISCOVERY, r, strict=True)) for r in rows]
        return document("discovery", {"addresses": found})
    if fmt == "csv":
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(_DISCOVERY)
        writer.writerows(rows)
        return buf.getvalue().rstrip("\n")
    return table(_DISCOVERY, rows, width=width, wrap=("resource",))


def regions(supported: dict[Vendor, frozenset[str]], fmt: str, width: int | None = None) -> str:
    """Cloudflare's supported regions per vendor: a table (each list wrapped), or JSON."""
    ordered = sorted(supported.items())
    if fmt == "json":
        return document("regions", {"regions": {v.value: sorted(names) for v, names in ordered}})
    rows = [[v.value, ", ".join(sorted(names))] for v, names in ordered]
    return table(["vendor", "regions"], rows, width=width, wrap=("regions",))
