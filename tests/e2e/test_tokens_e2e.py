"""The token service and the purge timer through devhost over real HTTP.

devhost appends the TCP peer to ``X-Forwarded-For`` as Azure's front end does; these tests run
with ``TRUSTED_PROXY_HOPS=2`` and send their own ``X-Forwarded-For``, so each test is a distinct
client address (as if behind one more trusted proxy) with its own rate-limit counters.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from typing import Iterator

import pytest
import requests

import function_app
from devhost.server import serving
from shared_code.platform import config, cosmos, purge, rate_limit
from shared_code.platform.crypto import random_token
from shared_code.platform.timeutil import to_iso
from shared_code.tokens import bearer_tokens

pytestmark = pytest.mark.e2e


@pytest.fixture
def env(live_app) -> Iterator[callable]:
    """Set app settings for one test (restored after); two trusted proxy hops by default."""
    saved = dict(os.environ)

    def apply(**values: str) -> None:
        os.environ.update(values)
        config.reset_settings()

    apply(TRUSTED_PROXY_HOPS="2")
    yield apply
    os.environ.clear()
    os.environ.update(saved)
    config.reset_settings()


class Caller:
    """One client address talking to the live app."""

    def __init__(self, base_url: str, address: str | None = None) -> None:
        self.base_url = base_url
        self.address = address or f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(254) + 1}"
        self.session = requests.Session()

    def _headers(self, extra: dict | None = None) -> dict:
        return {"X-Forwarded-For": self.address, **(extra or {})}

    def generate(self, body: dict | None = None) -> requests.Response:
        return self.session.post(f"{self.base_url}/generate_token", json=body, headers=self._headers(), timeout=30)

    def verify(self, token: str | None = None, authorization: str | None = None) -> requests.Response:
        value = authorization if authorization is not None else f"Bearer {token}"
        return self.session.get(f"{self.base_url}/verify_token", headers=self._headers({"Authorization": value}), timeout=30)

    def revoke(self, token) -> requests.Response:
        return self.session.post(f"{self.base_url}/revoke_token", json={"token": token}, headers=self._headers(), timeout=30)

    def token(self, **body) -> str:
        response = self.generate(body or None)
        assert response.status_code == 200, response.text
        return response.json()["token"]


@pytest.fixture
def caller(live_app, env) -> Caller:
    return Caller(live_app.base_url)


def test_issue_then_verify_with_scope_and_expiry(caller) -> None:
    response = caller.generate({"ttl_seconds": 120, "scope": "files:read"})
    body = response.json()
    assert response.status_code == 200 and len(body["token"]) == 43
    checked = caller.verify(body["token"]).json()
    assert checked == {"code": 200, "message": "token_checked", "valid": True,
                       "expires_at": body["expires_at"], "scope": "files:read"}
    assert caller.generate().status_code == 200  # no body at all: defaults


def test_expired_token_verifies_false_without_a_reason(caller, monkeypatch) -> None:
    token = caller.token(ttl_seconds=30)
    later = datetime.now(timezone.utc) + timedelta(seconds=31)
    monkeypatch.setattr(bearer_tokens, "utc_now", lambda: later)
    assert caller.verify(token).json() == {"code": 200, "message": "token_checked", "valid": False}


def test_one_time_token_is_valid_for_exactly_one_of_fifty_concurrent_verifies(caller) -> None:
    token = caller.token(one_time=True)
    clients = [Caller(caller.base_url, caller.address) for _ in range(50)]
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda c: c.verify(token), clients))
    assert [r.status_code for r in responses] == [200] * 50
    assert sum(r.json()["valid"] for r in responses) == 1


def test_revoked_token_is_invalid_at_once_and_revoke_always_answers_200(caller) -> None:
    token = caller.token()
    assert caller.revoke(token).json() == {"code": 200, "message": "token_revoked"}
    assert caller.verify(token).json()["valid"] is False
    assert caller.revoke(token).status_code == 200
    assert caller.revoke(random_token(32)).status_code == 200
    assert caller.revoke(12).json()["message"] == "invalid_field"


@pytest.mark.parametrize("body, message", [
    ({"ttl_seconds": 0}, "invalid_ttl"), ({"ttl_seconds": 86401}, "invalid_ttl"), ({"ttl_seconds": "60"}, "invalid_ttl"),
    ({"one_time": "yes"}, "invalid_field"), ({"scope": 7}, "invalid_field"), ([1], "invalid_json"),
])
def test_bad_token_requests_are_400(caller, body, message) -> None:
    response = caller.generate(body)
    assert (response.status_code, response.json()["message"]) == (400, message)


@pytest.mark.parametrize("authorization, status, message", [
    (None, 401, "missing_token"), ("", 401, "missing_token"),  # no credentials at all (RFC 6750 §3)
    *((bad, 400, "invalid_authorization") for bad in (
        "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Bearer " + "A" * 10 * 1024, "Bearer tökén")),
])
def test_bad_authorization_headers_are_refused_with_a_bearer_challenge(caller, authorization, status, message) -> None:
    headers = {"X-Forwarded-For": caller.address}
    if authorization is not None:
        headers["Authorization"] = authorization
    encoded = {k: v.encode("utf-8") for k, v in headers.items()}  # non-ASCII sent as raw UTF-8 bytes
    response = requests.get(f"{caller.base_url}/verify_token", headers=encoded, timeout=30)
    assert (response.status_code, response.json()["message"]) == (status, message)
    assert response.headers["WWW-Authenticate"].startswith("Bearer ")


def test_well_formed_unknown_token_is_simply_invalid(caller) -> None:
    assert caller.verify(random_token(32)).json()["valid"] is False
    assert caller.verify("abc.def").json()["valid"] is False


def test_ip_deny_and_allow_lists_refuse_with_403(live_app, env) -> None:
    env(TOKEN_IP_DENY="192.0.2.0/24,2001:db8:bad::/48", TOKEN_IP_ALLOW="192.0.2.0/23,2001:db8::/32")
    denied, allowed = Caller(live_app.base_url, "192.0.2.77"), Caller(live_app.base_url, "193.0.2.1")
    inside = Caller(live_app.base_url, "192.0.3.9:4711")
    v6_denied, v6_ok = Caller(live_app.base_url, "[2001:db8:bad::1]:443"), Caller(live_app.base_url, "2001:db8:1::1")
    for blocked in (denied, allowed, v6_denied):
        for response in (blocked.generate(), blocked.verify(random_token(32)), blocked.revoke("x")):
            assert (response.status_code, response.json()["message"]) == (403, "ip_forbidden")
    token = inside.token()
    assert inside.verify(token).json()["valid"] is True
    assert v6_ok.verify(token).json()["valid"] is True


def test_spoofed_forwarded_entries_beyond_the_trusted_hops_are_ignored(live_app, env) -> None:
    env(TOKEN_IP_DENY="203.0.113.9")
    spoofing = Caller(live_app.base_url, "1.2.3.4, 203.0.113.9")  # the client wrote 1.2.3.4
    assert spoofing.generate().json()["message"] == "ip_forbidden"
    assert Caller(live_app.base_url, "203.0.113.9, 1.2.3.4").generate().status_code == 200


def test_rate_limit_answers_429_with_retry_after_per_endpoint(live_app, env, monkeypatch) -> None:
    env(TOKEN_RATE_LIMIT_PER_MINUTE="3")
    moment = datetime(2031, 5, 5, 5, 5, 20, tzinfo=timezone.utc)  # 40 s before the window ends
    monkeypatch.setattr(rate_limit, "utc_now", lambda: moment)
    client, other = Caller(live_app.base_url), Caller(live_app.base_url)
    token = client.token()
    assert [client.verify(token).status_code for _ in range(3)] == [200, 200, 200]
    refused = client.verify(token)
    assert (refused.status_code, refused.json()["message"], refused.headers["Retry-After"]) == (429, "rate_limited", "40")
    assert client.verify(authorization="").status_code == 429  # counted before the header is read
    assert [client.generate().status_code for _ in range(3)] == [200, 200, 429]
    assert other.verify(token).status_code == 200


def test_security_events_are_logged_without_the_token(caller, env, caplog) -> None:
    env(TOKEN_VERIFY_FAILURE_BURST="3", TOKEN_IP_DENY="198.51.100.0/24")
    with caplog.at_level(logging.INFO, logger="trustgate.security"):
        token = caller.token(scope="a")
        caller.revoke(token)
        for _ in range(4):
            caller.verify(token)
        Caller(caller.base_url, "198.51.100.1").generate()
    events = [record.security_event for record in caplog.records if hasattr(record, "security_event")]
    mine = [e for e in events if e.get("client") in (caller.address, "198.51.100.1")]
    assert [e["event"] for e in mine] == ["token_issued", "token_revoked", "verify_failure_burst", "ip_forbidden"]
    assert mine[0]["token_ref"] == mine[1]["token_ref"] and mine[1]["removed"] is True
    assert token not in caplog.text and all(token not in json.dumps(e) for e in events)


def _expiring_item(spec: cosmos.ContainerSpec, expires_at: datetime) -> dict:
    item_id = "e2e-purge-" + random_token(12)
    pk = spec.partition_key.strip("/")
    return cosmos.create_item(spec, {"id": item_id, pk: item_id if pk == "id" else "e2e", "expires_at": to_iso(expires_at), "ttl": 60})


def test_purge_timer_removes_exactly_the_expired_items_across_containers(live_app, caller, env) -> None:
    now = datetime.now(timezone.utc)
    live_token = caller.token(ttl_seconds=600)
    items = {spec.name: (spec, _expiring_item(spec, now - timedelta(seconds=2)), _expiring_item(spec, now + timedelta(minutes=10)))
             for spec in purge.expiring_containers()}
    assert {"challenges", "sessions", "tokens", "rate_limits"} <= set(items)

    env(PURGE_SCHEDULE="* * * * * *")  # every second, for a devhost of its own
    with serving(function_app.app, port=0, blob_triggers=False) as host:
        record = host.wait_for_invocation("purge_expired_items", timeout=15)
    assert record.status == "succeeded", record.error

    for name, (spec, expired, live) in items.items():
        pk = spec.partition_key.strip("/")
        assert cosmos.read_item(spec, expired["id"], expired[pk]) is None, name
        assert cosmos.read_item(spec, live["id"], live[pk]) is not None, name
    assert caller.verify(live_token).json()["valid"] is True
