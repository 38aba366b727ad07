"""The token service and logout under storage timeouts (the fault harness, :mod:`tests.support.faults`).

Each is one write: a stalled write answers 503 and lands afterwards; the retry answers what is
now true (used up, revoked, logged out) and a new token works.
"""

from __future__ import annotations

import pytest

from shared_code.accounts import sessions
from shared_code.platform import cosmos
from tests.support.accounts import post
from tests.support.devices import call, json_body
from tests.support.faults import cosmos_op
from tests.support.files import register_user

pytestmark = pytest.mark.integration

TOKENS = cosmos.TOKENS.name


def _generate(**body) -> tuple[int, dict]:
    headers, raw = json_body(body)
    return call("generate_token", "POST", "generate_token", headers=headers, body=raw)


def _verify(token: str) -> tuple[int, dict]:
    return call("verify_token", "GET", "verify_token", headers={"Authorization": f"Bearer {token}"})


def _revoke(token: str) -> tuple[int, dict]:
    headers, raw = json_body({"token": token})
    return call("revoke_token", "POST", "revoke_token", headers=headers, body=raw)


def test_a_stalled_issue_leaves_no_usable_token_and_the_retry_gets_one(faults):
    with faults.cosmos.freeze(cosmos_op("create", TOKENS)):
        assert _generate()[0] == 503
    status, body = _generate()
    assert status == 200 and _verify(body["token"])[1]["valid"] is True


def test_a_stalled_one_time_verification_used_the_token_up(faults):
    token = _generate(one_time=True)[1]["token"]
    with faults.cosmos.freeze(cosmos_op("delete", TOKENS)):
        assert _verify(token)[0] == 503
    assert _verify(token)[1]["valid"] is False


def test_a_stalled_revocation_lands_and_its_retry_answers_200(faults):
    token = _generate()[1]["token"]
    with faults.cosmos.freeze(cosmos_op("delete", TOKENS)):
        assert _revoke(token)[0] == 503
    assert _verify(token)[1]["valid"] is False
    assert _revoke(token)[0] == 200


def test_a_stalled_logout_lands_and_its_retry_says_the_session_is_gone(faults):
    register_user("logout-crash@example.org")  # a session names its account
    sid = sessions.create_session("logout-crash@example.org")
    with faults.cosmos.freeze(cosmos_op("delete", cosmos.SESSIONS.name)):
        assert post("logout", {}, headers={"sid": sid})[0] == 503
    assert post("logout", {}, headers={"sid": sid})[1]["message"] == "invalid_session"
