"""Throttling helpers for tests: the rate limiter's clock stopped at a chosen time, and a client
address of a test's own (so one test's counts never reach another's)."""

from __future__ import annotations

import ipaddress
import secrets
from datetime import datetime, timedelta
from typing import Callable

import pytest

from shared_code.platform import rate_limit


def stop_rate_limit_clock(monkeypatch: pytest.MonkeyPatch, start: datetime) -> Callable[[float], None]:
    """Stop :mod:`shared_code.platform.rate_limit`'s clock at ``start`` (undone after the test by
    ``monkeypatch``); returns ``advance(seconds)``, which moves it forward."""
    now = {"t": start}
    monkeypatch.setattr(rate_limit, "utc_now", lambda: now["t"])

    def advance(seconds: float) -> None:
        now["t"] += timedelta(seconds=seconds)
    return advance


def own_client_address(network: str) -> str:
    """A random host address in ``network`` (``"10.0.0.0/8"``), as the ``X-Forwarded-For`` entry
    a test sends (TRUSTED_PROXY_HOPS is 1 in the tests: that entry is the client)."""
    hosts = ipaddress.ip_network(network)
    return str(hosts[1 + secrets.randbelow(hosts.num_addresses - 2)])
