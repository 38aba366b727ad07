"""Fixtures of the audit tests: the audit log's outage switch (:mod:`tests.support.audit`) and a
stopped rate-limit clock for the once-per-window refusals."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta, timezone
from typing import Callable

import pytest

from shared_code.platform import rate_limit
from tests.support.audit import audit_outage, log_down  # noqa: F401 - fixtures

# 40 s before a one-minute window ends.
WINDOW_START = datetime(2034, 4, 4, 4, 4, 20, tzinfo=timezone.utc)


@pytest.fixture
def window_clock(monkeypatch) -> Callable[[float], None]:
    """The rate limiter's clock, stopped at :data:`WINDOW_START`; ``window_clock(seconds)`` moves it on."""
    now = {"t": WINDOW_START}
    monkeypatch.setattr(rate_limit, "utc_now", lambda: now["t"])

    def advance(seconds: float) -> None:
        now["t"] += timedelta(seconds=seconds)
    return advance


@pytest.fixture
def client_ip() -> str:
    """A client address of this test alone (TRUSTED_PROXY_HOPS is 1: the X-Forwarded-For entry counts)."""
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
