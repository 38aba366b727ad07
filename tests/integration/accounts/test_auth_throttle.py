"""Throttling of password guessing and OTP mail-bombing through the handlers, on cosmosdb-server and
the test SMTP server: per-account and per-client limits on /login and /authenticate, per-address
mail limits on /register and /login, Retry-After, no oracle, no enumeration, windows that pass."""

from __future__ import annotations

import json
import logging
import os
import secrets
from datetime import datetime, timezone
from typing import Iterator

import pytest

from shared_code.accounts import otp
from shared_code.platform import config, cosmos
from shared_code.platform.security_log import subject_ref
from tests.support.accounts import new_email, register_user, strong_password
from tests.support.devices import json_body, respond
from tests.support.gatherer import Gatherer
from tests.support.mail import latest_otp, otp_count
from tests.support.throttle import own_client_address, stop_rate_limit_clock

pytestmark = pytest.mark.integration

# 40 s before the one-minute window ends; far from the hour boundary too.
START = datetime(2033, 3, 3, 3, 3, 20, tzinfo=timezone.utc)


@pytest.fixture(autouse=True)
def _stack(emulators, mail_server):
    """Every test here runs against the emulators and the test mailbox."""


@pytest.fixture
def limits() -> Iterator[callable]:
    """Set throttling settings for one test: ``limits(LOGIN_RATE_LIMIT_PER_MINUTE="3")``."""
    saved = dict(os.environ)

    def apply(**values: str) -> None:
        os.environ.update(values)
        config.reset_settings()
    yield apply
    os.environ.clear()
    os.environ.update(saved)
    config.reset_settings()


@pytest.fixture
def clock(monkeypatch) -> callable:
    """The rate limiter's clock, stopped at START; ``clock(seconds)`` moves it forward."""
    return stop_rate_limit_clock(monkeypatch, START)


@pytest.fixture
def client() -> str:
    """A client address of its own."""
    return own_client_address("198.18.0.0/16")


def post(name: str, document: dict, client: str) -> tuple[int, dict, str | None]:
    """POST to handler ``name``; returns (status, JSON body, Retry-After header or None)."""
    headers, body = json_body(document)
    response = respond(name, "POST", name, headers={**headers, "X-Forwarded-For": client}, body=body)
    return response.status_code, json.loads(response.get_body()), response.headers.get("Retry-After")


def login_mails(mail_server, email: str) -> int:
    return otp_count(mail_server, email, otp.LOGIN)


# --- /login per account ---------------------------------------------------------------------------

def test_wrong_passwords_beyond_the_limit_get_429_and_so_does_the_right_one_until_the_window_passes(
        mail_server, limits, clock, client):
    limits(LOGIN_RATE_LIMIT_PER_MINUTE="3")
    user = register_user(mail_server)
    wrong = {"email": user.email, "password": "not-the-password-1"}
    assert [post("login", wrong, client)[0] for _ in range(3)] == [401, 401, 401]

    status, body, retry_after = post("login", wrong, client)
    assert (status, body["message"], retry_after) == (429, "rate_limited", "40")
    # the right password is refused the same way while the window lasts (no oracle), and no mail goes out
    mails = login_mails(mail_server, user.email)
    assert post("login", {"email": user.email, "password": user.password}, client) == (429, body, "40")
    clock(30)
    assert post("login", {"email": user.email, "password": user.password}, client)[2] == "10"
    assert login_mails(mail_server, user.email) == mails

    clock(10)  # the window is over: no lasting lockout
    status, body, _ = post("login", {"email": user.email, "password": user.password}, client)
    assert (status, body["message"]) == (200, "login_otp_sent")
    assert latest_otp(mail_server, user.email, otp.LOGIN, after=mails)


def test_unknown_email_is_throttled_exactly_like_a_known_one(mail_server, limits, clock, client):
    limits(LOGIN_RATE_LIMIT_PER_MINUTE="2")
    known = register_user(mail_server).email
    answers = {}
    for email in (known, new_email("nobody")):
        answers[email] = [post("login", {"email": email, "password": "Guess-" + secrets.token_hex(4)}, client)
                          for _ in range(4)]
    assert answers[known] == list(answers.values())[1]
    assert [status for status, _, _ in answers[known]] == [401, 401, 429, 429]


def test_the_account_limit_holds_across_client_addresses_and_other_accounts_are_untouched(
        mail_server, limits, clock):
    limits(LOGIN_RATE_LIMIT_PER_MINUTE="2")
    victim, bystander = register_user(mail_server), register_user(mail_server)
    guesses = [post("login", {"email": victim.email, "password": f"guess-{i}"}, f"198.19.0.{i + 1}")[0] for i in range(3)]
    assert guesses == [401, 401, 429]
    assert post("login", {"email": bystander.email, "password": bystander.password}, "198.19.0.9")[0] == 200


# --- per client address ------------------------------------------------------------------------------

def test_one_client_address_is_limited_across_accounts_per_endpoint(mail_server, limits, clock, client):
    limits(LOGIN_CLIENT_RATE_LIMIT_PER_MINUTE="3")
    statuses = [post("login", {"email": new_email(), "password": "whatever-it-is"}, client)[0] for _ in range(4)]
    assert statuses == [401, 401, 401, 429]
    # a malformed request counts too: the address is checked before the body is read
    assert post("login", {"email": "not an email"}, client)[0] == 429
    assert post("login", {"email": new_email(), "password": "whatever-it-is"}, "198.19.1.1")[0] == 401
    # /register has its own counter for the address; it is limited the same way
    email = new_email()
    statuses = [post("register", {"email": email, "password": strong_password()}, client)[0] for _ in range(4)]
    assert statuses == [200, 200, 200, 429]


# --- OTP mails per email address ----------------------------------------------------------------------

def test_repeated_registrations_stop_mailing_at_the_limit_and_change_nothing(mail_server, limits, clock, client):
    limits(MAIL_RATE_LIMIT_PER_HOUR="2")
    email, password = new_email(), strong_password()
    for expected_mails in (1, 2):
        assert post("register", {"email": email, "password": password}, client)[0] == 200
        assert otp_count(mail_server, email, otp.REGISTER) == expected_mails
    pending = otp.pending(email, otp.REGISTER)

    status, body, retry_after = post("register", {"email": email, "password": strong_password()}, client)
    assert (status, body["message"], retry_after) == (429, "rate_limited", str(3600 - 3 * 60 - 20))
    assert otp_count(mail_server, email, otp.REGISTER) == 2  # no third mail
    assert otp.pending(email, otp.REGISTER)["code_hash"] == pending["code_hash"]  # the last code stands

    clock(3600)  # a new hour: mails flow again
    assert post("register", {"email": email, "password": password}, client)[0] == 200
    assert otp_count(mail_server, email, otp.REGISTER) == 3
    assert otp.pending(email, otp.REGISTER)["code_hash"] != pending["code_hash"]


def test_login_mail_limit_refuses_right_and_wrong_passwords_alike_without_mailing(mail_server, limits, clock, client):
    limits(MAIL_RATE_LIMIT_PER_HOUR="2")
    user = register_user(mail_server)  # the registration code is mail 1
    assert post("login", {"email": user.email, "password": user.password}, client)[0] == 200  # mail 2
    mails = login_mails(mail_server, user.email)
    right = post("login", {"email": user.email, "password": user.password}, client)
    wrong = post("login", {"email": user.email, "password": "not-the-password"}, client)
    assert right == wrong and right[0] == 429 and right[1]["message"] == "rate_limited"
    assert login_mails(mail_server, user.email) == mails


# --- gatherer /authenticate per username ---------------------------------------------------------------

def test_gatherer_authenticate_is_limited_per_username(limits, clock, client):
    limits(LOGIN_RATE_LIMIT_PER_MINUTE="3")
    user = Gatherer().login()  # attempt 1 sets the password
    assert user.identify()[0] == 200

    def authenticate(password: str, username: str = user.username) -> tuple[int, dict, str | None]:
        return post("gather_authenticate", {"message_type": "AUTHENTICATE", "username": username, "password": password},
                    client)
    assert [authenticate("wrong password")[0] for _ in range(2)] == [401, 401]
    status, body, retry_after = authenticate(user.password)
    assert (status, body["message"], retry_after) == (429, "rate_limited", "40")
    # unchanged: a re-IDENTIFY keeps the live authentication (its token stays valid)
    assert cosmos.read_item(cosmos.GATHERER_USERS, user.username, user.username)["state"] == "authenticated"

    stranger = Gatherer().username  # never identified: 409 until the limit, then the same 429
    assert [authenticate("x", stranger)[0] for _ in range(4)] == [409, 409, 409, 429]

    clock(40)
    assert authenticate(user.password)[0] == 200


# --- security log --------------------------------------------------------------------------------------

def test_refusals_are_logged_as_security_events_without_email_or_password(mail_server, limits, clock, client, caplog):
    limits(LOGIN_RATE_LIMIT_PER_MINUTE="1")
    email, password = new_email("logged"), "Secret-" + secrets.token_hex(8)
    with caplog.at_level(logging.INFO, logger="trustgate.security"):
        post("login", {"email": email, "password": password}, client)
        post("login", {"email": email, "password": password}, client)
    events = [r.security_event for r in caplog.records if getattr(r, "security_event", {}).get("event") == "rate_limited"]
    assert events == [{"event": "rate_limited", "limit_kind": "account", "endpoint": "login",
                       "account_ref": subject_ref(email), "limit": 1, "retry_after": 40}]
    assert email not in caplog.text and password not in caplog.text
