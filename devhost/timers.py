"""Timer triggers: NCRONTAB / TimeSpan schedules and the loop that fires them.

Schedules follow the Functions host: a six-field NCRONTAB expression with seconds first
(``"sec min hour day month day-of-week"``, UTC, day and day-of-week both have to match as in
NCrontab), or a TimeSpan ``"hh:mm:ss"`` / ``"d.hh:mm:ss"`` interval. ``%SETTING%`` placeholders
are resolved first. Expressions are evaluated by ``croniter``.

Runs of one timer never overlap: the next run waits for the current one. Occurrences missed while a
run overran are coalesced into one run at once, which gets ``past_due=True``.
"""

from __future__ import annotations

import asyncio
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from azure.functions.timer import TimerRequest
from croniter import CroniterError, croniter

from devhost.invoke import BoundFunction, Invoker
from devhost.settings import resolve_placeholders

log = logging.getLogger("devhost")

# A run that starts this much later than its occurrence is past due.
PAST_DUE_TOLERANCE = timedelta(milliseconds=500)

_TIMESPAN = re.compile(r"^(?:(?P<days>\d+)\.)?(?P<hours>\d{1,2}):(?P<minutes>\d{2}):(?P<seconds>\d{2})$")


class ScheduleError(ValueError):
    """A schedule cannot be parsed; the message quotes it and says why."""


@dataclass(frozen=True)
class CronSchedule:
    """A six-field NCRONTAB expression (seconds first)."""

    expression: str

    def next_after(self, moment: datetime) -> datetime:
        """The first occurrence strictly after ``moment`` (an aware datetime), in UTC."""
        return croniter(self.expression, moment.astimezone(timezone.utc), ret_type=datetime,
                        second_at_beginning=True, day_or=False).get_next()


@dataclass(frozen=True)
class IntervalSchedule:
    """A TimeSpan schedule: every ``interval``, counted from start-up."""

    interval: timedelta

    def next_after(self, moment: datetime) -> datetime:
        """``moment + interval``."""
        return moment + self.interval


Schedule = CronSchedule | IntervalSchedule


def parse_schedule(schedule: str) -> Schedule:
    """Parse a timer trigger's ``schedule`` after resolving ``%SETTING%`` placeholders.

    Raises :class:`ScheduleError` for anything that is neither six valid NCRONTAB fields nor a
    positive TimeSpan, and :class:`devhost.settings.SettingError` for an unset placeholder.
    """
    text = resolve_placeholders(schedule).strip()
    span = _TIMESPAN.match(text)
    if span:
        parts = {k: int(v or 0) for k, v in span.groupdict().items()}
        if parts["minutes"] > 59 or parts["seconds"] > 59 or parts["hours"] > 23:
            raise ScheduleError(f"schedule {text!r}: TimeSpan fields out of range")
        interval = timedelta(**parts)
        if interval <= timedelta(0):
            raise ScheduleError(f"schedule {text!r}: a TimeSpan schedule must be positive")
        return IntervalSchedule(interval)
    fields = text.split()
    if len(fields) != 6:
        raise ScheduleError(
            f"schedule {text!r}: expected 6 NCRONTAB fields 'second minute hour day month day-of-week' "
            f"or a TimeSpan 'hh:mm:ss', got {len(fields)} field(s)"
        )
    expression = " ".join(fields)
    try:
        croniter(expression, datetime.now(timezone.utc), second_at_beginning=True, day_or=False)
    except (CroniterError, ValueError, KeyError) as exc:
        raise ScheduleError(f"schedule {text!r}: {exc}") from None
    return CronSchedule(expression)


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class TimerRunner:
    """Fires one timer function on its schedule until cancelled."""

    def __init__(self, bound: BoundFunction, invoker: Invoker) -> None:
        """Parses the schedule now, so a bad schedule fails at start-up (:class:`ScheduleError`)."""
        self.bound = bound
        self.invoker = invoker
        self.schedule = parse_schedule(bound.trigger.schedule)
        self.run_on_startup = bool(bound.trigger.run_on_startup)

    async def run(self) -> None:
        """The timer loop; cancel the task to stop it (a run in progress is finished first).

        After a run, the next occurrence is the one following the run's occurrence. If that time
        has already passed (the run overran), it runs at once with ``past_due=True`` and the
        schedule resumes after the moment that late run started: the occurrences in between are
        skipped, so a slow timer never piles up runs.
        """
        last: datetime | None = None
        if self.run_on_startup:
            now = _utcnow()
            await self._fire(now, now, last)
            last = now
        occurrence = self.schedule.next_after(_utcnow())
        while True:
            delay = (occurrence - _utcnow()).total_seconds()
            if delay > 0:
                await asyncio.sleep(delay)
            started = _utcnow()
            past_due = await self._fire(occurrence, started, last)
            last = occurrence
            occurrence = self.schedule.next_after(started if past_due else occurrence)

    async def _fire(self, occurrence: datetime, started: datetime, last: datetime | None) -> bool:
        """Invoke once for ``occurrence``; returns whether the run was past due."""
        past_due = started - occurrence > PAST_DUE_TOLERANCE
        status = {
            "Last": last.isoformat() if last else None,
            "Next": self.schedule.next_after(occurrence).isoformat(),
            "LastUpdated": started.isoformat(),
        }
        request = TimerRequest(past_due=past_due, schedule_status=status,
                                    schedule={"AdjustForDST": False})
        await self.invoker.invoke(self.bound, request, summary=f"past_due={past_due}",
                                  past_due=past_due, scheduled_for=occurrence)
        return past_due
