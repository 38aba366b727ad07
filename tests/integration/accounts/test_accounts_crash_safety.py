"""Registration, login and code mails under storage timeouts (the fault harness, :mod:`tests.support.faults`).

A stalled write answers 503 and lands afterwards. After recovery: a retried verify with the same
code succeeds (or, when the code itself was used up, says exactly that), a mailed code is the one
stored, and a late write never replaces a code that a later, acknowledged request mailed.
"""

from __future__ import annotations

import pytest

from shared_code.accounts import otp, sessions
from shared_code.platform import cosmos
from tests.support.accounts import api_login as login
from tests.support.accounts import post
from tests.support.accounts import api_register as register
from tests.support.accounts import new_email, strong_password
from tests.support.faults import COSMOS_WRITES, cosmos_op
from tests.support.mail import latest_otp, otp_count

pytestmark = pytest.mark.integration

OTP_WRITE = cosmos_op(COSMOS_WRITES, cosmos.OTPS.name)
LANDINGS = pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])


@pytest.fixture
def pending(faults, mail_server) -> tuple[str, str, str]:
    """A pending registration on the fault stack: ``(email, password, mailed code)``."""
    email, password = new_email("reg"), strong_password()
    (status, _), code = register(mail_server, email, password)
    assert status == 200
    return email, password, code


@pytest.fixture
def login_code(pending, mail_server) -> tuple[str, str]:
    """A registered user with a mailed login code: ``(email, code)``."""
    email, password, code = pending
    assert post("verify_register", {"email": email, "otp": code})[0] == 200
    (status, _), login_otp = login(mail_server, email, password)
    assert status == 200
    return email, login_otp


def _verify_register(email: str, code: str) -> tuple[int, dict]:
    return post("verify_register", {"email": email, "otp": code})


# --- verify_register --------------------------------------------------------------------------

@LANDINGS
def test_a_stalled_account_creation_is_completed_by_the_retried_verify(faults, pending, mail_server, after_response):
    email, password, code = pending
    with faults.cosmos.freeze(cosmos_op("create", cosmos.USERS.name), after_response=after_response):
        assert _verify_register(email, code)[0] == 503
    assert _verify_register(email, code) == (200, {"code": 200, "message": "registration_success"})
    assert login(mail_server, email, password)[0][0] == 200  # the account is the one registered


@LANDINGS
def test_a_stalled_code_consumption_still_lets_the_retried_verify_succeed(faults, pending, after_response):
    email, _, code = pending
    with faults.cosmos.freeze(OTP_WRITE, nth=2, after_response=after_response):  # 1: the try, 2: the consumption
        assert _verify_register(email, code)[0] == 503
    assert _verify_register(email, code) == (200, {"code": 200, "message": "registration_success"})
    assert _verify_register(email, code) == (200, {"code": 200, "message": "registration_success"})
    assert post("register", {"email": email, "password": strong_password()})[1]["message"] == "user_exists"


# --- verify_login -----------------------------------------------------------------------------

@LANDINGS
def test_a_stalled_session_write_leaves_the_code_for_the_retried_verify(faults, login_code, after_response):
    email, code = login_code
    with faults.cosmos.freeze(cosmos_op("create", cosmos.SESSIONS.name), after_response=after_response):
        assert post("verify_login", {"email": email, "otp": code})[0] == 503
    status, body = post("verify_login", {"email": email, "otp": code})
    assert (status, body["message"]) == (200, "login_success")
    assert sessions.require_session(body["sid"]).email == email
    assert post("verify_login", {"email": email, "otp": code})[1]["message"] == "otp_used"  # used once, now


@LANDINGS
def test_a_stalled_code_consumption_answers_the_retry_exactly_why_not(faults, login_code, mail_server, after_response):
    email, code = login_code
    with faults.cosmos.freeze(OTP_WRITE, nth=2, after_response=after_response):
        assert post("verify_login", {"email": email, "otp": code})[0] == 503
    # The code was used up by the request that timed out, whose session id never reached anyone.
    status, body = post("verify_login", {"email": email, "otp": code})
    assert (status, body["message"]) == (401, "otp_used")
    assert "log in again" in body["detail"]


# --- code mails -------------------------------------------------------------------------------

def test_a_stalled_code_store_lands_and_the_mailed_code_works(faults, mail_server):
    email, password = new_email("mail"), strong_password()
    before = otp_count(mail_server, email, otp.REGISTER)
    with faults.cosmos.freeze(OTP_WRITE):
        assert post("register", {"email": email, "password": password})[0] == 503
    code = latest_otp(mail_server, email, otp.REGISTER, after=before)  # the mail went out before the store
    assert _verify_register(email, code)[0] == 200


def test_a_code_store_landing_late_never_replaces_the_code_of_a_later_acknowledged_mail(faults, mail_server):
    email, password = new_email("mail"), strong_password()
    with faults.cosmos.hold(OTP_WRITE):  # the first request's store is stuck on its way
        first = otp_count(mail_server, email, otp.REGISTER)
        assert post("register", {"email": email, "password": password})[0] == 503
        stale = latest_otp(mail_server, email, otp.REGISTER, after=first)
        (status, _), code = register(mail_server, email, password)  # the user asks again: acknowledged
        assert status == 200
    assert _verify_register(email, stale)[1]["message"] == "otp_failed"
    assert _verify_register(email, code)[0] == 200
