"""Accounts end to end through the handlers, real SMTP (aiosmtpd) and cosmosdb-server: the seed
flow, OTP lifetime, single use, purpose binding, brute-force cut-off, resend, enumeration,
logout, password edge cases, normalisation and a mail outage."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import bcrypt
import pytest

from shared_code.accounts import otp, registration, sessions, signin
from shared_code.platform import config, cosmos, passwords
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import keyed_hash
from shared_code.platform.errors import Forbidden
from shared_code.platform.passwords import verify_password
from shared_code.platform.timeutil import utc_now
from shared_code.accounts.users import user_key
from tests.support.accounts import api_login as login
from tests.support.accounts import api_register as register
from tests.support.accounts import new_email, new_user, otp_item, post, stored_user, strong_password
from tests.support.mail import latest_otp, otp_count, smtp_unreachable

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(emulators, mail_server):
    """Every test here runs against the emulators and the test mailbox."""


def registered(mail_server, email: str | None = None, password: str | None = None) -> tuple[str, str]:
    email, password = email or new_email(), password or strong_password()
    (status, _), code = register(mail_server, email, password)
    assert status == 200
    assert post("verify_register", {"email": email, "otp": code})[0] == 200
    return email, password


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


@pytest.fixture
def clock(monkeypatch):
    """Move the OTP module's clock forward: ``clock(seconds)``."""
    offset = {"s": 0}
    monkeypatch.setattr(otp, "utc_now", lambda: utc_now() + timedelta(seconds=offset["s"]))

    def advance(seconds: float) -> None:
        offset["s"] += seconds
    return advance


# --- the seed flow ------------------------------------------------------------------------------

def test_seed_flow_register_verify_login_verify_logout(mail_server):
    email, password = new_email("seed"), strong_password()

    (status, body), code = register(mail_server, email, password)
    assert (status, body["message"]) == (200, "registration_pending")
    assert post("register", {"email": email, "password": password})[1]["message"] == "registration_pending"  # resend
    code = latest_otp(mail_server, email, otp.REGISTER)
    assert post("verify_register", {"email": email, "otp": code}) == (200, {"code": 200, "message": "registration_success"})
    assert post("register", {"email": email, "password": strong_password()})[:1] == (400,)
    assert post("register", {"email": email, "password": strong_password()})[1]["message"] == "user_exists"

    (status, body), code = login(mail_server, email, password)
    assert (status, body["message"]) == (200, "login_otp_sent")
    status, body = post("verify_login", {"email": email, "otp": code})
    assert (status, body["message"]) == (200, "login_success")
    sid = body["sid"]
    assert sessions.require_session(sid).email == email

    assert post("logout", {}, headers={"sid": sid}) == (200, {"code": 200, "message": "logout_success"})
    with pytest.raises(Forbidden):
        sessions.require_session(sid)
    assert post("logout", {}, headers={"sid": sid})[1]["message"] == "invalid_session"


def test_user_is_stored_with_a_bcrypt_hash_and_no_code_is_stored_in_clear(mail_server):
    email, password = new_email(), strong_password()
    (_, _), code = register(mail_server, email, password)
    pending = otp_item(email, otp.REGISTER)
    assert code not in json.dumps(pending) and password not in json.dumps(pending)
    assert pending["ttl"] > 0 and pending["expires_at"]
    post("verify_register", {"email": email, "otp": code})
    user = stored_user(email)
    assert user["password_hash"].startswith("$2b$12$") and verify_password(password, user["password_hash"])
    used = otp_item(email, otp.REGISTER)
    assert used["used_at"] and code not in json.dumps(used)  # kept, marked used, until it expires


# --- one-time codes -------------------------------------------------------------------------------

def test_login_code_expires_after_the_ttl(mail_server, clock):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    clock(599)
    (_, _), code = login(mail_server, email, password)  # a fresh code, then let it age past 600 s
    clock(601)
    assert post("verify_login", {"email": email, "otp": code}) == (
        401, {"code": 401, "message": "otp_failed", "detail": "the code has expired"})


def test_registration_code_expires_and_the_registration_with_it(mail_server, clock):
    email = new_email()
    (_, _), code = register(mail_server, email, strong_password())
    clock(601)
    assert post("verify_register", {"email": email, "otp": code})[1]["message"] == "no_pending_registration"


def test_a_code_is_accepted_once(mail_server):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    assert post("verify_login", {"email": email, "otp": code})[0] == 200
    assert post("verify_login", {"email": email, "otp": code})[:1] == (401,)
    assert post("verify_login", {"email": email, "otp": code})[1]["message"] == "otp_used"


def test_a_registration_code_never_logs_in_and_a_login_code_never_registers(mail_server):
    email, password = registered(mail_server)
    other = new_email()
    (_, _), register_code = register(mail_server, other, strong_password())
    assert post("verify_login", {"email": other, "otp": register_code})[:2] == (401, {"code": 401, "message": "otp_failed", "detail": "the code is wrong, expired or already used"})
    assert post("verify_register", {"email": other, "otp": register_code})[0] == 200  # still good for its purpose

    (_, _), login_code = login(mail_server, email, password)
    assert post("verify_register", {"email": email, "otp": login_code})[1]["message"] == "no_pending_registration"
    # nor is a code bound to one address valid for another
    assert post("verify_login", {"email": other, "otp": login_code})[1]["message"] == "otp_failed"
    assert post("verify_login", {"email": email, "otp": login_code})[0] == 200


def test_brute_force_is_cut_off_after_five_wrong_codes(mail_server):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    for _ in range(5):
        assert post("verify_login", {"email": email, "otp": wrong(code)})[1]["message"] == "otp_failed"
    assert post("verify_login", {"email": email, "otp": code})[1]["message"] == "otp_failed"  # dead now
    assert otp_item(email, otp.LOGIN) is None


def test_four_wrong_codes_still_leave_the_right_one_usable(mail_server):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    for _ in range(4):
        post("verify_login", {"email": email, "otp": wrong(code)})
    assert post("verify_login", {"email": email, "otp": code})[0] == 200


def test_concurrent_wrong_guesses_cannot_share_tries(mail_server):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    guesses = [f"{(int(code) + i) % 1_000_000:06d}" for i in range(1, 21)]
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda g: post("verify_login", {"email": email, "otp": g})[0], guesses))
    assert statuses == [401] * 20
    assert post("verify_login", {"email": email, "otp": code})[1]["message"] == "otp_failed"


def test_registration_is_cut_off_after_five_wrong_codes(mail_server):
    email = new_email()
    (_, _), code = register(mail_server, email, strong_password())
    for _ in range(5):
        assert post("verify_register", {"email": email, "otp": wrong(code)})[:1] == (401,)
    assert post("verify_register", {"email": email, "otp": code})[1]["message"] == "no_pending_registration"


def test_a_resend_replaces_the_previous_code(mail_server):
    email, password = registered(mail_server)
    (_, _), first = login(mail_server, email, password)
    (_, _), second = login(mail_server, email, password)
    if first != second:  # 1 in 10^6 they coincide
        assert post("verify_login", {"email": email, "otp": first})[1]["message"] == "otp_failed"
    assert post("verify_login", {"email": email, "otp": second})[0] == 200


def test_malformed_codes_are_refused_without_a_storage_change(mail_server):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    for bad in ("12345", "1234567", "abcdef", " " + code):
        assert post("verify_login", {"email": email, "otp": bad})[1]["message"] == "otp_failed"
    assert otp_item(email, otp.LOGIN)["attempts"] == 0
    assert post("verify_login", {"email": email, "otp": 123456})[1]["message"] == "invalid_field"


# --- login ------------------------------------------------------------------------------------------

def test_unknown_email_and_wrong_password_get_the_same_answer(mail_server):
    email, _ = registered(mail_server)
    unknown = post("login", {"email": new_email("ghost"), "password": strong_password()})
    wrong_password = post("login", {"email": email, "password": strong_password()})
    assert unknown == wrong_password == (401, {"code": 401, "message": "login_failed", "detail": "wrong email or password"})
    assert otp_count(mail_server, email, otp.LOGIN) == 0


def test_login_code_of_a_user_deleted_meanwhile_gives_no_session(mail_server):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    cosmos.delete_item(cosmos.USERS, user_key(email), user_key(email))
    assert post("verify_login", {"email": email, "otp": code})[1]["message"] == "otp_failed"


def test_logout_without_or_with_an_unknown_sid_is_refused(mail_server):
    assert post("logout", {})[:1] == (403,)
    assert post("logout", {}, headers={"sid": "x" * 43})[1]["message"] == "invalid_session"


def test_logout_kills_only_that_session(mail_server):
    user = new_user(mail_server)
    (_, _), code = login(mail_server, user.email, user.password)
    other_sid = post("verify_login", {"email": user.email, "otp": code})[1]["sid"]
    assert post("logout", {}, headers={"sid": user.sid})[0] == 200
    with pytest.raises(Forbidden):
        sessions.require_session(user.sid)
    assert sessions.require_session(other_sid).email == user.email


# --- passwords and emails ---------------------------------------------------------------------------

@pytest.mark.parametrize("password", [
    "Äñÿđĸłŧ€¶ŋæßðđŋħĸłøþ→↓←ħµ”“»«¢Äñÿđĸłŧåøþœ€¶ŧ←↓→øþ¨~ŋđðßæ«»¢“”µ·ħ",  # 64 non-ASCII characters
    "Tg-" + "correct-horse-battery-staple-" * 3 + "x" * 10,                  # 100 bytes
])
def test_long_passwords_are_used_whole(mail_server, password):
    assert len(password) == 64 or len(password.encode()) == 100
    email, _ = registered(mail_server, password=password)
    near_miss = password[:-1] + ("y" if password[-1] != "y" else "z")  # differs only after byte 72
    assert post("login", {"email": email, "password": near_miss})[1]["message"] == "login_failed"
    (status, _), code = login(mail_server, email, password)
    assert status == 200 and post("verify_login", {"email": email, "otp": code})[0] == 200


@pytest.mark.parametrize("password, why", [
    ("short1!", "at least 8"),
    ("password123", "harder password"),
    ("qwertyuiop", "harder password"),
    ("x" * 1025, "at most 1024"),
])
def test_weak_passwords_are_refused_and_nothing_is_sent(mail_server, password, why):
    email = new_email()
    status, body = post("register", {"email": email, "password": password})
    assert (status, body["message"]) == (400, "weak_password") and why in body["detail"]
    assert otp_count(mail_server, email) == 0


def test_a_password_made_of_the_email_is_weak(mail_server):
    email = "margarethe.vonstrelitz@example.org"
    status, body = post("register", {"email": email, "password": "margarethevonstrelitz"})
    assert (status, body["message"]) == (400, "weak_password")


def test_emails_are_normalised_for_case_and_whitespace(mail_server):
    local = new_email("Case").split("@")[0]
    email, password = registered(mail_server, email=f"  {local.upper()}@Example.ORG ", password=strong_password())
    address = f"{local.lower()}@example.org"
    assert stored_user(address)["email"] == address
    assert post("register", {"email": address, "password": strong_password()})[1]["message"] == "user_exists"
    (status, _), code = login(mail_server, f"{local}@EXAMPLE.org", password)
    assert status == 200 and post("verify_login", {"email": address, "otp": code})[0] == 200


def test_invalid_emails_are_refused(mail_server):
    for email in ("not-an-email", "a@b", "a b@example.org", 42):
        assert post("register", {"email": email, "password": strong_password()})[1]["message"] == "invalid_email"


# --- outages and concurrency --------------------------------------------------------------------------

def test_smtp_down_gives_503_and_stores_nothing(smtp_down):
    email = new_email()
    status, body = post("register", {"email": email, "password": strong_password()})
    assert (status, body["message"]) == (503, "mail_unavailable")
    assert otp_item(email, otp.REGISTER) is None
    assert post("verify_register", {"email": email, "otp": "123456"})[1]["message"] == "no_pending_registration"


def test_mail_not_configured_is_a_configuration_error_and_stores_nothing(emulators, monkeypatch):
    monkeypatch.setenv("SMTP_HOST", "")
    config.reset_settings()
    email = new_email()
    status, body = post("register", {"email": email, "password": strong_password()})
    assert (status, body["message"]) == (500, "configuration_error")
    assert "SMTP_HOST" in body["detail"]
    assert otp_item(email, otp.REGISTER) is None
    monkeypatch.undo()
    config.reset_settings()


def test_smtp_down_at_login_leaves_the_previous_code_valid(mail_server):
    email, password = registered(mail_server)
    (_, _), code = login(mail_server, email, password)
    with smtp_unreachable():
        assert post("login", {"email": email, "password": password})[:1] == (503,)
    assert post("verify_login", {"email": email, "otp": code})[0] == 200


def test_fifty_concurrent_registrations_of_one_email_make_one_account(mail_server, monkeypatch):
    # bcrypt at cost 4 for this test only: the race is about storage, not hashing speed.
    monkeypatch.setattr(registration, "hash_password",
                        lambda pw: bcrypt.hashpw(passwords._prehash(pw), bcrypt.gensalt(4)).decode())
    # Each thread knows the code its own request mailed (the real generator, recorded per thread).
    real_new_code, local, issued = otp.new_code, threading.local(), {}
    monkeypatch.setattr(otp, "new_code", lambda: local.code)
    email = new_email("race")
    password = [strong_password() for _ in range(50)]

    def run(i: int) -> int:
        local.code = issued[i] = real_new_code()
        return post("register", {"email": email, "password": password[i]})[0]

    with ThreadPoolExecutor(25) as pool:
        statuses = list(pool.map(run, range(50)))
    assert statuses == [200] * 50
    # exactly one registration is pending: its code is the stored one, the 49 others were replaced
    item = otp_item(email, otp.REGISTER)
    pepper = get_settings().otp_pepper
    live = [i for i in range(50) if keyed_hash(pepper, f"register\n{email}\n{issued[i]}") == item["code_hash"]]
    assert len(live) == 1
    winner = live[0]
    # five concurrent submissions of the live code: exactly one creates the account
    # (the others find the account of this very registration: the same answer, as a retry gets)
    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(lambda _: post("verify_register", {"email": email, "otp": issued[winner]})[0], range(5)))
    assert answers == [200] * 5
    assert verify_password(password[winner], stored_user(email)["password_hash"])
    for i in range(50):
        assert post("verify_register", {"email": email, "otp": issued[i]})[0] in ((200, 400, 401) if i == winner else (400, 401))


def test_a_database_fault_while_creating_the_account_keeps_the_registration(mail_server, monkeypatch):
    from shared_code.platform.errors import ServiceUnavailable

    email = new_email()
    (_, _), code = register(mail_server, email, strong_password())
    real_create = cosmos.create_item

    def failing_create(spec, body):
        if spec is cosmos.USERS:
            raise ServiceUnavailable(detail="the database is unavailable, try again later")
        return real_create(spec, body)

    monkeypatch.setattr(cosmos, "create_item", failing_create)
    assert post("verify_register", {"email": email, "otp": code})[:1] == (503,)
    monkeypatch.setattr(cosmos, "create_item", real_create)
    assert post("verify_register", {"email": email, "otp": code})[0] == 200
    assert post("verify_register", {"email": email, "otp": code})[0] == 200  # a retry: this registration's account
