"""Test users for the secure file store: registered and logged in through the real code path
(password policy, bcrypt, OTP mailed over SMTP to the `mail_server` fixture, sessions).

Needs the `emulators` and `mail_server` fixtures. Example::

    def test_x(emulators, mail_server):
        alice = new_user(mail_server)            # registered, logged in
        require_session(alice.sid).email == alice.email
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

from devhost.mailbox import Mailbox
from shared_code.accounts import otp, registration, signin
from shared_code.accounts.users import user_key
from shared_code.platform import cosmos
from tests.support.devices import call, json_body
from tests.support.mail import latest_otp, otp_count


def new_email(prefix: str = "user") -> str:
    """A fresh, unused address (normalised form)."""
    return f"{prefix}-{secrets.token_hex(6)}@example.org"


def strong_password() -> str:
    """A random password zxcvbn scores 4."""
    return "Tg-" + secrets.token_urlsafe(18)


@dataclass
class TestUser:
    """A registered user; ``sid`` is set once logged in."""

    __test__ = False  # not a test class for pytest
    email: str
    password: str
    sid: str | None = None


def register_user(mailbox: Mailbox, email: str | None = None, password: str | None = None) -> TestUser:
    """Register (register + verify_register with the mailed code) and return the user."""
    user = TestUser(email or new_email(), password or strong_password())
    before = otp_count(mailbox, user.email, otp.REGISTER)
    registration.register(user.email, user.password)
    registration.verify_register(user.email, latest_otp(mailbox, user.email, otp.REGISTER, after=before))
    return user


def login_user(mailbox: Mailbox, user: TestUser) -> str:
    """Log ``user`` in (login + verify_login with the mailed code); sets and returns ``user.sid``."""
    before = otp_count(mailbox, user.email, otp.LOGIN)
    signin.login(user.email, user.password)
    user.sid = signin.verify_login(user.email, latest_otp(mailbox, user.email, otp.LOGIN, after=before))
    return user.sid


def new_user(mailbox: Mailbox, email: str | None = None, password: str | None = None) -> TestUser:
    """A registered, logged-in user."""
    user = register_user(mailbox, email, password)
    login_user(mailbox, user)
    return user


def stored_user(email: str) -> dict | None:
    """The ``users`` item of the normalised ``email`` as stored (or ``None``)."""
    return cosmos.read_item(cosmos.USERS, user_key(email), user_key(email))


def otp_item(email: str, purpose: str) -> dict | None:
    """The stored ``otps`` item of (``email``, ``purpose``), expired or not (or ``None``)."""
    item_id = otp._item_id(email, purpose)
    return cosmos.read_item(cosmos.OTPS, item_id, item_id)


def post(name: str, document: dict, headers: dict | None = None) -> tuple[int, dict]:
    """POST ``document`` as JSON to the handler ``name`` (route = name); returns (status, JSON body)."""
    h, b = json_body(document)
    return call(name, "POST", name, headers={**h, **(headers or {})}, body=b)


def api_register(mailbox: Mailbox, email: str, password: str,
                 purpose_email: str | None = None) -> tuple[tuple[int, dict], str | None]:
    """POST /register; returns (status, body) and the mailed code (None when no mail was sent)."""
    address = (purpose_email or email).strip().lower()
    before = otp_count(mailbox, address, otp.REGISTER)
    result = post("register", {"email": email, "password": password})
    code = latest_otp(mailbox, address, otp.REGISTER, after=before) if result[0] == 200 else None
    return result, code


def api_login(mailbox: Mailbox, email: str, password: str) -> tuple[tuple[int, dict], str | None]:
    """POST /login; returns (status, body) and the mailed code (None when no mail was sent)."""
    address = email.strip().lower()
    before = otp_count(mailbox, address, otp.LOGIN)
    result = post("login", {"email": email, "password": password})
    code = latest_otp(mailbox, address, otp.LOGIN, after=before) if result[0] == 200 else None
    return result, code
