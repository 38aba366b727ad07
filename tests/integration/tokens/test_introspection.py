"""POST /introspect (RFC 7662) against cosmosdb-server, following the RFC's own examples."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from urllib.parse import urlencode

import pytest

from shared_code.tokens import bearer_tokens
from tests.support.devices import respond

pytestmark = pytest.mark.integration

FORM = {"content-type": "application/x-www-form-urlencoded", "accept": "application/json"}
# RFC 7662 §2.2's example response: iat 1419350238, exp 1419356238 (6000 s later).
RFC_IAT = datetime.fromtimestamp(1419350238, tz=timezone.utc)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, emulators):
    now = {"t": RFC_IAT}
    monkeypatch.setattr(bearer_tokens, "utc_now", lambda: now["t"])
    return now


def introspect(params: dict, *, form: bool = True) -> tuple[int, dict, dict]:
    if form:
        headers, body = FORM, urlencode(params).encode("ascii")
    else:
        headers, body = {"content-type": "application/json"}, json.dumps(params).encode()
    response = respond("introspect", "POST", "introspect", headers=headers, body=body)
    return response.status_code, json.loads(response.get_body()), dict(response.headers)


def test_rfc7662_example_active_token_with_a_hint_is_described_as_in_section_2_2(clock) -> None:
    # §2.1 second example: token + token_type_hint=access_token; §2.2 example response.
    issued = bearer_tokens.issue_token(6000, scope="read write dolphin", client_id="l238j323ds-23ij4")
    status, body, headers = introspect({"token": issued.token, "token_type_hint": "access_token"})
    assert status == 200
    assert body == {"active": True, "client_id": "l238j323ds-23ij4", "scope": "read write dolphin",
                    "exp": 1419356238, "iat": 1419350238, "token_type": "Bearer", "one_time": False}
    assert headers["Cache-Control"] == "no-store"


def test_rfc7662_example_unknown_token_is_exactly_active_false(clock) -> None:
    # §2.1 first example request (token=2YotnFZFEjr1zCsicMWpAA, not one of ours); §2.2 inactive example.
    assert introspect({"token": "2YotnFZFEjr1zCsicMWpAA"})[:2] == (200, {"active": False})


def test_expired_and_revoked_tokens_are_inactive_without_a_reason(clock) -> None:
    expiring = bearer_tokens.issue_token(60)
    revoked = bearer_tokens.issue_token(600)
    bearer_tokens.revoke_token(revoked.token)
    clock["t"] += timedelta(seconds=60)
    assert introspect({"token": expiring.token})[1] == {"active": False}
    assert introspect({"token": revoked.token}, form=False)[1] == {"active": False}


def test_a_token_without_scope_or_client_has_neither_member_and_json_bodies_work(clock) -> None:
    issued = bearer_tokens.issue_token(60)
    status, body, _ = introspect({"token": issued.token}, form=False)
    assert status == 200 and body == {"active": True, "exp": 1419350298, "iat": 1419350238,
                                      "token_type": "Bearer", "one_time": False}


def test_introspection_does_not_use_up_a_one_time_token_unless_asked_to(clock) -> None:
    issued = bearer_tokens.issue_token(60, one_time=True)
    for _ in range(3):
        assert introspect({"token": issued.token, "consume": "false"})[1]["active"] is True
    assert introspect({"token": issued.token})[1]["one_time"] is True
    assert introspect({"token": issued.token, "consume": "true"})[1]["active"] is True
    assert introspect({"token": issued.token})[1] == {"active": False}
    assert bearer_tokens.verify_token(issued.token) is None


def test_consuming_introspections_let_exactly_one_of_many_see_a_one_time_token(clock) -> None:
    issued = bearer_tokens.issue_token(60, one_time=True)
    with ThreadPoolExecutor(max_workers=20) as pool:
        answers = list(pool.map(lambda _: introspect({"token": issued.token, "consume": True}, form=False)[1], range(20)))
    assert sum(answer["active"] for answer in answers) == 1


@pytest.mark.parametrize("body, content_type", [
    (b"", "application/x-www-form-urlencoded"),                         # no token
    (b"token_type_hint=access_token", "application/x-www-form-urlencoded"),
    (b"token=a&token=b", "application/x-www-form-urlencoded"),           # RFC 6749 §3.1: never twice
    (b"token=%FF", "application/x-www-form-urlencoded"),                 # not UTF-8
    (b"token=abc&consume=maybe", "application/x-www-form-urlencoded"),
    (b'{"token": 5}', "application/json"),
])
def test_malformed_requests_are_400_invalid_request(emulators, body, content_type) -> None:
    response = respond("introspect", "POST", "introspect", headers={"content-type": content_type}, body=body)
    answer = json.loads(response.get_body())
    assert (response.status_code, answer["message"]) == (400, "invalid_request")


def test_unknown_form_parameters_are_ignored_even_repeated(clock) -> None:
    issued = bearer_tokens.issue_token(60)
    body = f"token={issued.token}&extra=1&extra=2&=x&=y".encode()
    response = respond("introspect", "POST", "introspect", headers=FORM, body=body)
    assert response.status_code == 200 and json.loads(response.get_body())["active"] is True
