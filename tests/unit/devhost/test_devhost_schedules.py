"""Timer schedules: six-field NCRONTAB (seconds first) and TimeSpan, evaluated like the host."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devhost.settings import SettingError
from devhost.timers import CronSchedule, IntervalSchedule, ScheduleError, parse_schedule

START = datetime(2026, 1, 1, 0, 0, 2, tzinfo=timezone.utc)  # a Thursday


def fires(schedule: str, count: int = 3, start: datetime = START) -> list[datetime]:
    parsed = parse_schedule(schedule)
    moments, moment = [], start
    for _ in range(count):
        moment = parsed.next_after(moment)
        moments.append(moment)
    return moments


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=timezone.utc)


def test_every_five_seconds():
    assert fires("*/5 * * * * *") == [at(2026, 1, 1, 0, 0, 5), at(2026, 1, 1, 0, 0, 10), at(2026, 1, 1, 0, 0, 15)]


def test_every_five_minutes_on_the_minute():
    assert fires("0 */5 * * * *") == [at(2026, 1, 1, 0, 5), at(2026, 1, 1, 0, 10), at(2026, 1, 1, 0, 15)]


def test_weekdays_at_two_in_the_morning():
    assert fires("0 0 2 * * 1-5") == [at(2026, 1, 1, 2), at(2026, 1, 2, 2), at(2026, 1, 5, 2)]


def test_day_and_weekday_must_both_match_as_in_ncrontab():
    # Friday the 13th only, not every Friday plus every 13th.
    assert fires("0 0 0 13 * 5", count=2) == [at(2026, 2, 13), at(2026, 3, 13)]


def test_next_occurrence_is_strictly_after_the_given_moment():
    assert parse_schedule("*/5 * * * * *").next_after(at(2026, 1, 1, 0, 0, 5)) == at(2026, 1, 1, 0, 0, 10)


def test_timespan_is_an_interval():
    schedule = parse_schedule("00:00:30")
    assert schedule == IntervalSchedule(timedelta(seconds=30))
    assert schedule.next_after(START) == START + timedelta(seconds=30)
    assert parse_schedule("1.02:00:00") == IntervalSchedule(timedelta(days=1, hours=2))


def test_placeholder_is_resolved_from_settings(monkeypatch):
    monkeypatch.setenv("CLEANUP_SCHEDULE", "0 30 * * * *")
    assert parse_schedule("%CLEANUP_SCHEDULE%") == CronSchedule("0 30 * * * *")


def test_unset_placeholder_names_the_setting(monkeypatch):
    monkeypatch.delenv("NO_SUCH_SCHEDULE", raising=False)
    with pytest.raises(SettingError, match="NO_SUCH_SCHEDULE"):
        parse_schedule("%NO_SUCH_SCHEDULE%")


@pytest.mark.parametrize(("schedule", "reason"), [
    ("* * * * *", "expected 6 NCRONTAB fields"),
    ("* * * * * * *", "expected 6 NCRONTAB fields"),
    ("61 * * * * *", "61"),
    ("0 0 25 * * *", "25"),
    ("every minute please", "expected 6"),
    ("00:00:00", "positive"),
    ("00:61:00", "out of range"),
    ("", "got 0 field"),
])
def test_invalid_schedules_fail_with_a_clear_message(schedule, reason):
    with pytest.raises(ScheduleError, match="schedule") as caught:
        parse_schedule(schedule)
    assert reason in str(caught.value)
