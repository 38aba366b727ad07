"""Per-client limits count an IPv6 client per /64 (RATE_LIMIT_IPV6_PREFIX), as rate limiters do.

Before, the counter key was the full address: 20 of 20 requests from 20 addresses of one /64
passed a limit of 3.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timezone
from typing import Callable

import pytest

from shared_code.platform import rate_limit
from tests.support.devices import json_body, respond
from tests.support.gatherer import new_username

pytestmark = pytest.mark.integration


@pytest.fixture
def limits(emulators, app_settings, monkeypatch) -> Callable[..., None]:
    # One fixed-window minute for the whole test (a window boundary passing mid-test would
    # reset the counters): 20 s into a minute of a day no other test uses.
    moment = datetime(2035, 5, 5, 5, 5, 20, tzinfo=timezone.utc)
    monkeypatch.setattr(rate_limit, "utc_now", lambda: moment)
    return app_settings


def _network() -> str:
    """A fresh /64 of the documentation range, as its first four hextets."""
    return f"2001:db8:{secrets.randbelow(0xffff):x}:{secrets.randbelow(0xffff):x}"


def _host(network: str) -> str:
    return f"{network}:{':'.join(f'{secrets.randbelow(0xffff):x}' for _ in range(4))}"


def _identify(client: str) -> int:
    headers, body = json_body({"message_type": "IDENTIFY", "username": new_username()})
    return respond("gather_identify", "POST", "identify", headers={**headers, "X-Forwarded-For": client}, body=body).status_code


def _generate(client: str) -> int:
    headers, body = json_body({"ttl_seconds": 60})
    return respond("generate_token", "POST", "generate_token", headers={**headers, "X-Forwarded-For": client},
                   body=body).status_code


@pytest.mark.parametrize("send, setting", [(_identify, "LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE"),
                                           (_generate, "TOKEN_RATE_LIMIT_PER_MINUTE")])
def test_addresses_of_one_ipv6_64_share_one_counter(limits, send, setting):
    limits(**{setting: "3"})
    network = _network()
    statuses = [send(_host(network)) for _ in range(20)]
    assert statuses.count(429) == 17 and all(status in (200, 201) for status in statuses[:3])
    assert send(_host(_network())) in (200, 201)  # another /64 is another client
    assert send(f"192.0.2.{secrets.randbelow(254) + 1}") in (200, 201)


def test_the_prefix_is_a_setting(limits):
    limits(LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE="3", RATE_LIMIT_IPV6_PREFIX="128")  # per address
    network = _network()
    assert all(_identify(_host(network)) == 201 for _ in range(6))
    limits(RATE_LIMIT_IPV6_PREFIX="48")
    wide = _network().rsplit(":", 1)[0]  # one /48 holds many /64s
    statuses = [_identify(_host(f"{wide}:{secrets.randbelow(0xffff):x}")) for _ in range(5)]
    assert statuses == [201, 201, 201, 429, 429]
