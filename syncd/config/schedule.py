"""The `schedule` section and syncd's one cron parser (APScheduler's, weekdays translated)."""

from __future__ import annotations

from apscheduler.triggers.cron import CronTrigger
from pydantic import (
    Field,
    field_validator,
)

from syncd.config.values import Interval, Jitter, Section, ShutdownTimeout, shown


def cron_trigger(expression: str, *, jitter: float | None = None) -> CronTrigger:
    """APScheduler's trigger for a five-field crontab expression, the one cron parser of syncd.

    Not ``CronTrigger.from_crontab``: APScheduler 3.x counts weekdays from Monday (its issue
    286), so crontab's weekday field (0 or 7 is Sunday) is translated to day names first.
    Raises ``ValueError`` naming the expression."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(
            f"cron needs five fields (min hour day month weekday): {shown(expression)}"
        )
    minute, hour, day, month, weekday = fields
    try:
        return CronTrigger(
            minute=minute,
            hour=hour,
            day=day,
            month=month,
            day_of_week=crontab_weekdays(weekday),
            jitter=jitter,
        )
    except ValueError as exc:
        raise ValueError(f"not a valid cron expression {shown(expression)}: {exc}") from None


_CRON_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 is Sunday; names; ranges; steps) as APScheduler names."""
    if field in {"*", "?"}:
        return "*"
    days: set[int] = set()
    for part in field.lower().split(","):
        span, _, step = part.partition("/")
        if span == "*":
            first, last = 0, 6
        else:
            start, _, end = span.partition("-")
            first = _crontab_weekday(start)
            last = _crontab_weekday(end) if end else (6 if step else first)
        if not step.isdigit() and step:
            raise ValueError(f"bad step in weekday field: {part!r}")
        days.update(d % 7 for d in range(first, last + 1, int(step or 1)))
    if not days:
        raise ValueError(f"weekday range selects no day: {field!r}")
    return ",".join(_CRON_DAYS[d] for d in sorted(days))


def _crontab_weekday(text: str) -> int:
    if text.isdigit() and int(text) <= 7:
        return int(text)
    if text[:3] in _CRON_DAYS:
        return _CRON_DAYS.index(text[:3])
    raise ValueError(f"not a weekday: {text!r}")


class ScheduleConfig(Section):
    interval: Interval | None = Field(
        900.0, description="Time between syncs; the first starts at once."
    )
    cron: str | None = Field(
        None, description="A five-field cron expression instead of `interval`."
    )
    jitter: Jitter = Field(0.0, description="Random delay added to each run.")
    shutdown_timeout: ShutdownTimeout = Field(
        30.0,
        description=(
            "On SIGTERM/SIGINT scheduling stops and the run in flight may finish within this; "
            "syncd then exits 0, or 1 if the run had to be abandoned."
        ),
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str | None) -> str | None:
        if value is not None:
            cron_trigger(value)  # the daemon's own trigger, built once here to check it
        return value
