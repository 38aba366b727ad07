"""Account decisions in the audit log, through the handlers with real mail (aiosmtpd): user
registered, logged in, logged out (accounts, and the gatherer's AUTHENTICATE and ``logout``
message), locked out by the login throttles (accounts' ``/login`` and the gatherer's
``/authenticate``, once per window). Emails, usernames, passwords, codes, session
ids and addresses never appear in clear; with the log down each answers 503 and nothing is applied."""

from __future__ import annotations

import jwt
import pytest

from shared_code.accounts import sessions
from shared_code.audit.entries import salted_digest
from shared_code.gatherer import protocol
from shared_code.platform import cosmos
from shared_code.platform.errors import Forbidden
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.security_log import token_ref
from tests.support.accounts import api_login, api_register, new_email, post, strong_password, stored_user
from tests.support.audit import entries_since, log_size, only_entry
from tests.support.gatherer import Gatherer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(emulators, mail_server):
    """Every test here runs against the emulators and the test mailbox."""


def _registered(mail_server) -> tuple[str, str]:
    email, password = new_email(), strong_password()
    (status, _), code = api_register(mail_server, email, password)
    assert status == 200
    assert post("verify_register", {"email": email, "otp": code})[0] == 200
    return email, password


def _login_code(mail_server, email: str, password: str) -> str:
    (status, body), code = api_login(mail_server, email, password)
    assert status == 200, body
    return code


def _sessions_of(email: str) -> int:
    return cosmos.query_first(cosmos.SESSIONS, "SELECT VALUE COUNT(1) FROM c WHERE c.email = @e",
                              [{"name": "@e", "value": email}], 1)[0]


def test_registration_login_and_logout_are_logged_under_the_salted_email(mail_server):
    email, password = new_email(), strong_password()
    (status, _), code = api_register(mail_server, email, password)
    size = log_size()
    assert post("verify_register", {"email": email, "otp": code})[0] == 200
    registered = only_entry(size, "user_registered", email, password, code)
    assert (registered["actor"], registered["outcome"], registered["objects"]) == (
        f"user:{salted_digest(email)}", "granted", {})
    assert len(registered["request_id"]) == 32

    code = _login_code(mail_server, email, password)
    size = log_size()
    status, body = post("verify_login", {"email": email, "otp": code})
    assert status == 200
    sid = body["sid"]
    logged_in = only_entry(size, "user_logged_in", email, password, code, sid)
    assert logged_in["actor"] == registered["actor"]
    assert logged_in["objects"] == {"session_ref": token_ref(sha256_hex(sid))} == {"session_ref": sessions.session_ref(sid)}

    size = log_size()
    assert post("logout", {}, headers={"sid": sid})[0] == 200
    logged_out = only_entry(size, "user_logged_out", email, sid)
    assert (logged_out["actor"], logged_out["objects"]) == (registered["actor"], logged_in["objects"])
    size = log_size()
    assert post("logout", {}, headers={"sid": sid})[0] == 403  # no session: no decision, no entry
    assert log_size() == size


def test_with_the_log_down_no_account_is_created_and_the_code_still_works(mail_server, audit_outage):
    email, password = new_email(), strong_password()
    (status, _), code = api_register(mail_server, email, password)
    audit_outage.down()
    assert post("verify_register", {"email": email, "otp": code})[0] == 503
    assert stored_user(email) is None
    audit_outage.up()
    assert post("verify_register", {"email": email, "otp": code})[0] == 200
    assert stored_user(email) is not None


def test_with_the_log_down_no_session_is_created_and_the_code_still_works(mail_server, audit_outage):
    email, password = _registered(mail_server)
    code = _login_code(mail_server, email, password)
    audit_outage.down()
    assert post("verify_login", {"email": email, "otp": code})[0] == 503
    assert _sessions_of(email) == 0
    audit_outage.up()
    status, body = post("verify_login", {"email": email, "otp": code})
    assert status == 200 and sessions.require_session(body["sid"]).email == email


def test_with_the_log_down_a_logout_is_503_and_the_session_lives_on(mail_server, audit_outage):
    email, password = _registered(mail_server)
    sid = post("verify_login", {"email": email, "otp": _login_code(mail_server, email, password)})[1]["sid"]
    audit_outage.down()
    assert post("logout", {}, headers={"sid": sid})[0] == 503
    assert sessions.require_session(sid).email == email
    audit_outage.up()
    assert post("logout", {}, headers={"sid": sid})[0] == 200
    with pytest.raises(Forbidden):
        sessions.require_session(sid)


# --- locked out by the login throttles -------------------------------------------------------------

def _login(email: str, client_ip: str) -> int:
    return post("login", {"email": email, "password": "Guess-not-it-1"}, headers={"X-Forwarded-For": client_ip})[0]


def test_an_account_lockout_is_logged_once_per_window(app_settings, window_clock, client_ip):
    app_settings(LOGIN_RATE_LIMIT_PER_MINUTE="2")
    email = new_email("victim")
    size = log_size()
    assert [_login(email, client_ip) for _ in range(5)] == [401, 401, 429, 429, 429]
    entry = only_entry(size, "login_locked_out", email, client_ip)
    assert (entry["actor"], entry["outcome"], entry["failed_checks"]) == (
        f"user:{salted_digest(email)}", "refused", ["rate_limited"])
    assert entry["objects"] == {"endpoint": "login", "limit": "account"}

    window_clock(40)  # the next window: guessing again locks the account out again, logged again
    size = log_size()
    assert [_login(email, client_ip) for _ in range(4)] == [401, 401, 429, 429]
    assert len(entries_since(size, "login_locked_out")) == 1


def test_a_client_lockout_is_logged_once_per_window_under_the_salted_address(app_settings, window_clock, client_ip):
    app_settings(LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE="2")
    size = log_size()
    assert [_login(new_email(), client_ip) for _ in range(4)] == [401, 401, 429, 429]
    entry = only_entry(size, "login_locked_out", client_ip)
    assert (entry["actor"], entry["client"], entry["objects"]) == (
        "operator", salted_digest(client_ip), {"endpoint": "login", "limit": "client"})


def test_a_gatherer_lockout_is_logged_under_the_salted_username(app_settings, window_clock, client_ip):
    app_settings(LOGIN_RATE_LIMIT_PER_MINUTE="1")
    user = Gatherer().login()
    size = log_size()
    assert [user.authenticate("wrong-password")[0] for _ in range(3)] == [429, 429, 429]
    entry = only_entry(size, "login_locked_out", user.username, user.password)
    assert (entry["actor"], entry["objects"]) == (
        f"user:{salted_digest(user.username)}", {"endpoint": "authenticate", "limit": "account"})


def test_with_the_log_down_the_first_lockout_is_503_and_the_next_refusal_logs_it(
        app_settings, window_clock, client_ip, audit_outage):
    app_settings(LOGIN_RATE_LIMIT_PER_MINUTE="1")
    email = new_email()
    assert _login(email, client_ip) == 401
    audit_outage.down()
    assert [_login(email, client_ip) for _ in range(2)] == [503, 503]
    audit_outage.up()
    size = log_size()
    assert [_login(email, client_ip) for _ in range(2)] == [429, 429]
    assert len(entries_since(size, "login_locked_out")) == 1


def test_a_code_mailed_or_refused_decides_nothing_and_is_not_logged(mail_server):
    email, password = _registered(mail_server)
    size = log_size()
    code = _login_code(mail_server, email, password)
    wrong = "000000" if code != "000000" else "111111"
    assert post("verify_login", {"email": email, "otp": wrong})[0] == 401
    assert entries_since(size) == []


# --- the message gatherer's logins and logouts ------------------------------------------------------

def _jti(token: str) -> str:
    return jwt.decode(token, options={"verify_signature": False})["jti"]


def test_gatherer_logins_and_logouts_are_logged_under_the_salted_username():
    user = Gatherer()
    assert user.identify()[0] == 201
    size = log_size()
    assert user.authenticate()[0] == 200
    logged_in = only_entry(size, "user_logged_in", user.username, user.password, user.token)
    assert (logged_in["actor"], logged_in["objects"]) == (
        f"user:{salted_digest(user.username)}", {"endpoint": "authenticate", "token_jti": _jti(user.token)})
    size = log_size()
    assert user.authenticate("wrong password")[0] == 409  # Authenticated, no IDENTIFY since: refused, not logged
    assert log_size() == size

    size = log_size()
    assert user.send("logout")[0] == 200
    logged_out = only_entry(size, "user_logged_out", user.username, user.token)
    assert (logged_out["actor"], logged_out["objects"]) == (
        logged_in["actor"], {"endpoint": "message", "token_jti": _jti(user.token)})
    size = log_size()
    assert user.send("logout")[0] == 401  # the token is revoked: nothing to decide
    assert log_size() == size


def test_with_the_log_down_a_gatherer_login_issues_nothing_and_a_logout_revokes_nothing(audit_outage):
    user = Gatherer()
    assert user.identify()[0] == 201
    audit_outage.down()
    status, body = user.authenticate()
    assert status == 503 and "token" not in body
    assert cosmos.read_item(cosmos.GATHERER_USERS, user.username, user.username)["state"] == protocol.IDENTIFIED
    audit_outage.up()
    assert user.authenticate()[0] == 200
    audit_outage.down()
    assert user.send("logout")[0] == 503
    audit_outage.up()
    assert user.send("still logged in")[0] == 201
