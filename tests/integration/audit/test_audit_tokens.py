"""Token decisions in the audit log, through the handlers: ``token_issued`` and ``token_revoked``
(a token ref, never the token), and the refusals of the token endpoints: ``ip_forbidden`` and
``rate_limited`` once per client address and window, ``verify_failure_burst`` once per window; the
address only as a salted digest. With the log down an issue or revocation answers 503 and changes
nothing; the refusal that would be logged answers 503, and the next one logs it."""

from __future__ import annotations

import pytest

from shared_code.audit.entries import salted_digest
from shared_code.platform import cosmos
from shared_code.platform.crypto import random_token, sha256_hex
from shared_code.tokens import bearer_tokens
from tests.support.audit import entries_since, log_size, only_entry
from tests.support.devices import call, json_body

pytestmark = pytest.mark.integration


def _issue(client_ip: str, **request) -> int:
    return _issued(client_ip, **request)[0]


def _issued(client_ip: str, **request) -> tuple[int, dict]:
    headers, body = json_body({"ttl_seconds": 60, **request})
    return call("generate_token", "POST", "generate_token", headers={**headers, "X-Forwarded-For": client_ip}, body=body)


def _revoke(token: str) -> int:
    headers, body = json_body({"token": token})
    return call("revoke_token", "POST", "revoke_token", headers=headers, body=body)[0]


def _verify(client_ip: str, token: str) -> tuple[int, dict]:
    return call("verify_token", "GET", "verify_token", headers={"Authorization": f"Bearer {token}",
                                                                "X-Forwarded-For": client_ip})


def _stored_tokens() -> int:
    return cosmos.query_first(cosmos.TOKENS, "SELECT VALUE COUNT(1) FROM c", [], 1)[0]


# --- issued and revoked ----------------------------------------------------------------------------

def test_issued_and_revoked_tokens_are_logged_with_a_token_ref_and_a_salted_client(emulators, client_ip):
    size = log_size()
    status, issued = _issued(client_ip, scope="files:read")
    assert status == 200
    token_ref = sha256_hex(issued["token"])[:12]
    entry = only_entry(size, "token_issued", issued["token"], client_ip)
    assert (entry["actor"], entry["outcome"], entry["client"]) == ("operator", "granted", salted_digest(client_ip))
    assert (entry["objects"]["token_ref"], entry["objects"]["scope"]) == (token_ref, "files:read")
    assert len(entry["request_id"]) == 32

    size = log_size()
    assert _revoke(issued["token"]) == 200
    assert only_entry(size, "token_revoked", issued["token"])["objects"] == {"token_ref": token_ref}
    size = log_size()
    assert _revoke(issued["token"]) == 200
    assert log_size() == size  # nothing left to revoke: no decision, no entry


def test_with_the_log_down_no_token_is_issued(client_ip, log_down):
    before, size = _stored_tokens(), log_size()
    status, body = _issued(client_ip)
    assert (status, body["message"]) == (503, "service_unavailable") and "token" not in body
    assert (_stored_tokens(), log_size()) == (before, size)


def test_with_the_log_down_a_token_stays_unrevoked(emulators, audit_outage):
    issued = bearer_tokens.issue_token(60)
    audit_outage.down()
    assert _revoke(issued.token) == 503
    assert bearer_tokens.verify_token(issued.token) is not None  # the revocation did not take effect


# --- refusals of the token endpoints ---------------------------------------------------------------

def test_a_denied_address_is_logged_once_per_window_whatever_the_endpoint(emulators, app_settings, window_clock, client_ip):
    app_settings(TOKEN_IP_DENY=client_ip)
    size = log_size()
    assert [_issue(client_ip) for _ in range(3)] == [403, 403, 403]
    assert _verify(client_ip, random_token(32))[0] == 403
    entry = only_entry(size, "ip_forbidden", client_ip)
    assert (entry["actor"], entry["client"], entry["outcome"], entry["failed_checks"]) == (
        "operator", salted_digest(client_ip), "refused", ["ip_forbidden"])
    assert entry["objects"] == {"endpoint": "generate_token"}
    window_clock(40)
    size = log_size()
    assert _issue(client_ip) == 403
    assert len(entries_since(size, "ip_forbidden")) == 1  # a new window: logged again


def test_a_rate_limited_client_is_logged_once_per_window(emulators, app_settings, window_clock, client_ip):
    app_settings(TOKEN_RATE_LIMIT_PER_MINUTE="2")
    token = bearer_tokens.issue_token(600).token
    size = log_size()
    assert [_verify(client_ip, token)[0] for _ in range(5)] == [200, 200, 429, 429, 429]
    entry = only_entry(size, "rate_limited", client_ip, token)
    assert (entry["client"], entry["objects"], entry["failed_checks"]) == (
        salted_digest(client_ip), {"endpoint": "verify_token"}, ["rate_limited"])


def test_a_burst_of_failed_verifications_is_logged_once_per_window(emulators, app_settings, window_clock, client_ip):
    app_settings(TOKEN_VERIFY_FAILURE_BURST="3")
    guesses = [random_token(32) for _ in range(6)]
    size = log_size()
    assert [_verify(client_ip, guess)[1]["valid"] for guess in guesses] == [False] * 6
    entry = only_entry(size, "verify_failure_burst", client_ip, *guesses)
    assert (entry["client"], entry["objects"]) == (
        salted_digest(client_ip), {"endpoint": "verify_token", "failures": 3, "window_seconds": 60})


def _introspect(client_ip: str, token: str) -> tuple[int, dict]:
    headers, body = json_body({"token": token})
    return call("introspect", "POST", "introspect", headers={**headers, "X-Forwarded-For": client_ip}, body=body)


def test_failed_introspections_count_with_failed_verifications_and_the_burst_names_its_endpoint(
        emulators, app_settings, window_clock, client_ip):
    app_settings(TOKEN_VERIFY_FAILURE_BURST="3")
    size = log_size()
    assert [_verify(client_ip, random_token(32))[1]["valid"] for _ in range(2)] == [False, False]
    assert _introspect(client_ip, random_token(32)) == (200, {"active": False})
    entry = only_entry(size, "verify_failure_burst", client_ip)
    assert entry["objects"] == {"endpoint": "introspect", "failures": 3, "window_seconds": 60}


def test_with_the_log_down_a_denied_address_gets_503_until_its_refusal_is_logged(
        emulators, app_settings, window_clock, client_ip, audit_outage):
    app_settings(TOKEN_IP_DENY=client_ip)
    audit_outage.down()
    assert [_issue(client_ip) for _ in range(2)] == [503, 503]
    audit_outage.up()
    size = log_size()
    assert [_issue(client_ip) for _ in range(2)] == [403, 403]
    assert len(entries_since(size, "ip_forbidden")) == 1


def test_with_the_log_down_a_rate_limited_client_gets_503_until_its_refusal_is_logged(
        emulators, app_settings, window_clock, client_ip, audit_outage):
    app_settings(TOKEN_RATE_LIMIT_PER_MINUTE="1")
    token = bearer_tokens.issue_token(600).token
    assert _verify(client_ip, token)[0] == 200
    audit_outage.down()
    assert _verify(client_ip, token)[0] == 503
    audit_outage.up()
    size = log_size()
    assert [_verify(client_ip, token)[0] for _ in range(2)] == [429, 429]
    assert len(entries_since(size, "rate_limited")) == 1


def test_with_the_log_down_the_failure_that_makes_a_burst_is_503_and_the_next_logs_it(
        emulators, app_settings, window_clock, client_ip, audit_outage):
    app_settings(TOKEN_VERIFY_FAILURE_BURST="2")
    assert _verify(client_ip, random_token(32))[0] == 200
    audit_outage.down()
    assert _verify(client_ip, random_token(32))[0] == 503
    audit_outage.up()
    size = log_size()
    assert _verify(client_ip, random_token(32)) == (200, {"code": 200, "message": "token_checked", "valid": False})
    assert len(entries_since(size, "verify_failure_burst")) == 1
