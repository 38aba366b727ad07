"""UTC time helpers. Timestamps are stored as ISO-8601 strings with microseconds and 'Z'."""

from __future__ import annotations

from datetime import datetime, timezone


def utc_now() -> datetime:
    """The current time, timezone-aware UTC (tests may patch this)."""
    return datetime.now(timezone.utc)


def to_iso(moment: datetime) -> str:
    """``moment`` as ISO-8601 UTC, e.g. ``2026-11-21T19:39:25.123456Z`` (sorts lexically)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def from_iso(text: str) -> datetime:
    """Parse a timestamp written by :func:`to_iso` (or any ISO-8601 with offset) to aware UTC."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc)
