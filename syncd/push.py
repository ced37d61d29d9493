"""Apply one zone's plan: deletions, then upserts, in batches; record ownership per batch.

Deletions go first so that they free room under the zone's maximum. Per-item failures are
collected, never raised: a failed item is reported and simply planned again next run. A whole
request that fails after its retries fails that batch's items; credentials refused, a missing
route or a full zone (1164) also fail every batch still to come for the zone.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import partial

from syncd.cloudflare import wire
from syncd.cloudflare.api import CloudflareAPI
from syncd.errors import AuthError, CloudflareError, RouteMissing, ZoneFull
from syncd.model import BatchResult, IPAddress, ItemFailure, Mapping, Upsert, ZonePlan
from syncd.state import Registry

_FATAL = (AuthError, RouteMissing)


@dataclass(slots=True)
class Outcome:
    """What pushing one zone achieved (mutable while the zone is pushed, by one thread)."""

    created: int = 0
    updated: int = 0
    deleted: list[IPAddress] = field(default_factory=list)
    upserted: list[Upsert] = field(default_factory=list)
    failures: list[ItemFailure] = field(default_factory=list)
    error: str = ""
    error_reason: str = ""


def apply(
    api: CloudflareAPI, registry: Registry, zplan: ZonePlan, *, stop: threading.Event | None = None
) -> Outcome:
    """Push ``zplan``; every succeeded item is in the registry when this returns.

    ``stop`` (shutdown) is checked between batches: the batch in flight always finishes.
    """
    out = Outcome()
    registry.record(zplan.zone_id, upserted=zplan.adopted)
    for batch in zplan.delete_batches():
        if _stopping(out, stop):
            break
        result = _send(out, batch, partial(api.delete, zplan.zone_id, [m.ip for m in batch]))
        registry.record(zplan.zone_id, deleted=result.succeeded)
        out.deleted += result.succeeded
        if out.error:
            break
    for ubatch in zplan.upsert_batches():
        if _stopping(out, stop):
            break
        if out.error:
            out.failures += wire.failures(_mappings(ubatch), out.error, out.error_reason).failed
            continue
        items = _mappings(ubatch)
        registry.begin(zplan.zone_id, ubatch)
        result = _send(out, items, partial(api.upsert, zplan.zone_id, items))
        ok = set(result.succeeded)
        done = [u for u in ubatch if u.mapping.ip in ok]
        registry.record(zplan.zone_id, upserted=done, clear_pending=True)
        out.upserted += done
        out.created += sum(1 for u in done if u.previous is None)
        out.updated += sum(1 for u in done if u.previous is not None)
    return out


def _stopping(out: Outcome, stop: threading.Event | None) -> bool:
    """Shutdown asked: the rest of the plan is left for the next run (nothing is lost)."""
    if stop is None or not stop.is_set():
        return False
    if not out.error:
        out.error, out.error_reason = (
            "interrupted by shutdown; the rest is left for the next run",
            ("interrupted"),
        )
    return True


def _mappings(batch: Sequence[Upsert]) -> list[Mapping]:
    return [u.mapping for u in batch]


def _send(out: Outcome, sent: Sequence[Mapping], call: Callable[[], BatchResult]) -> BatchResult:
    """Run one batch request; fold its failures into ``out``."""
    try:
        result = call()
    except ZoneFull as exc:
        _stop(out, exc, "zone holds its maximum number of mappings (1164)")
        result = wire.failures(sent, str(exc), exc.reason)
    except _FATAL as exc:
        _stop(out, exc, str(exc))
        result = wire.failures(sent, str(exc), exc.reason)
    except CloudflareError as exc:
        result = wire.failures(sent, str(exc), exc.reason)
    out.failures += result.failed
    return result


def _stop(out: Outcome, exc: CloudflareError, message: str) -> None:
    out.error = message
    out.error_reason = exc.reason
