"""Fixtures of the audit tests: the audit log's outage switch (:mod:`tests.support.audit`) and a
stopped rate-limit clock for the once-per-window refusals."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Callable

import pytest

from tests.support.audit import audit_outage, log_down  # noqa: F401 - fixtures
from tests.support.throttle import own_client_address, stop_rate_limit_clock

# 40 s before a one-minute window ends.
WINDOW_START = datetime(2034, 4, 4, 4, 4, 20, tzinfo=timezone.utc)


@pytest.fixture
def window_clock(monkeypatch) -> Callable[[float], None]:
    """The rate limiter's clock, stopped at :data:`WINDOW_START`; ``window_clock(seconds)`` moves it on."""
    return stop_rate_limit_clock(monkeypatch, WINDOW_START)


@pytest.fixture
def client_ip() -> str:
    """A client address of this test alone."""
    return own_client_address("10.0.0.0/8")
