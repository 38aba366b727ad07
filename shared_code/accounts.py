"""Accounts of the secure file store (seed 002): registration and login, each confirmed by an
emailed one-time code (:mod:`shared_code.otp`), ending in a session (:mod:`shared_code.sessions`).

Registration: ``register`` checks the password policy, hashes the password (bcrypt over a
peppered pre-hash, :mod:`shared_code.platform.passwords`) and mails a code; the pending registration is the
``register`` OTP item, which carries the hash until the code is verified. ``verify_register``
creates the user with a create-on-id in ``users`` (id = normalised email), so of any number of
concurrent registrations of one address exactly one account is created.

Login: ``login`` answers ``login_failed`` for an unknown email and for a wrong password alike,
after the same work (one point read and one bcrypt check, against a dummy hash when there is no
user), so neither the answer nor the time says whether an account exists (OWASP Authentication
Cheat Sheet). ``verify_login`` turns a good login code into a session id.

Throttling (:mod:`shared_code.auth_throttle`): ``login`` counts an attempt on the email, known or
not, before the password is checked, and refuses an address whose OTP mail limit is spent before
the check too, so a 429 says nothing about the password or the account. Every code mail counts
against the address's mail limit (:func:`shared_code.otp.send_code`).
"""

from __future__ import annotations

from shared_code import auth_throttle, otp, sessions
from shared_code.platform import cosmos
from shared_code.platform.errors import BadRequest, Forbidden, Unauthorized
from shared_code.password_policy import check_password
from shared_code.platform.passwords import hash_password, verify_password
from shared_code.platform.timeutil import to_iso, utc_now
from shared_code.users import get_user, normalize_email


def register(email: str, password: str) -> str:
    """Start registering ``email`` (raw input) with ``password``; mails a registration code.

    Returns the normalised email. Raises :class:`~shared_code.platform.errors.BadRequest`
    ``invalid_email`` / ``weak_password`` / ``user_exists``,
    :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` when the address's OTP mail
    limit is spent, and :class:`~shared_code.platform.errors.ServiceUnavailable` when mail or Cosmos DB is
    down (in both cases nothing new is stored or mailed). A repeated call replaces the pending
    registration and its code.
    """
    address = normalize_email(email)
    check_password(password, address)
    if get_user(address) is not None:
        raise BadRequest("user_exists", "an account with this email already exists")
    auth_throttle.check_mail(address)  # before the costly hash; send_code counts the mail
    otp.send_code(address, otp.REGISTER, {"password_hash": hash_password(password)})
    return address


def verify_register(email: str, code: str) -> str:
    """Finish the pending registration of ``email`` with its emailed ``code``; returns the email.

    Raises :class:`~shared_code.platform.errors.BadRequest` ``no_pending_registration`` (none, expired or
    cut off after too many wrong codes) / ``user_exists`` (another registration of the address
    won), :class:`~shared_code.platform.errors.Unauthorized` ``otp_failed``.
    """
    address = normalize_email(email)
    if otp.pending(address, otp.REGISTER) is None:
        raise BadRequest("no_pending_registration", "no registration is waiting for this email")

    def create_user(payload: dict) -> None:
        user = {"id": address, "email": address, "password_hash": payload["password_hash"], "created_at": to_iso(utc_now())}
        try:
            cosmos.create_item(cosmos.USERS, user)
        except cosmos.AlreadyExists:
            raise BadRequest("user_exists", "an account with this email already exists") from None

    # The account is created before the code is consumed: a database fault leaves the pending
    # registration usable, and create-on-id lets one of concurrent right answers win.
    otp.verify(address, otp.REGISTER, code, before_consume=create_user)
    return address


def login(email: str, password: str) -> str:
    """Check ``email`` and ``password``, then mail a login code; returns the normalised email.

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``login_failed`` for an unknown email and a
    wrong password alike, :class:`~shared_code.platform.errors.BadRequest` ``invalid_email`` for an address
    that is not one, :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (429, before
    the password is checked) over ``LOGIN_RATE_LIMIT_PER_MINUTE`` attempts on the email or when
    its mail limit is spent, :class:`~shared_code.platform.errors.ServiceUnavailable` on an outage.
    """
    address = normalize_email(email)
    auth_throttle.admit_attempt("login", address)
    auth_throttle.check_mail(address)
    user = get_user(address)
    if not verify_password(password, user.get("password_hash") if user else None):
        raise Unauthorized("login_failed", "wrong email or password")
    otp.send_code(address, otp.LOGIN)
    return address


def verify_login(email: str, code: str) -> str:
    """Exchange a login ``code`` of ``email`` for a new session id (returned, 43 chars).

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``otp_failed``.
    """
    address = normalize_email(email)
    otp.verify(address, otp.LOGIN, code)
    if get_user(address) is None:
        raise Unauthorized("otp_failed", "the code is wrong, expired or already used")
    return sessions.create_session(address)


def logout(sid: str | None) -> None:
    """End the session ``sid`` at once.

    Raises :class:`~shared_code.platform.errors.Forbidden` ``invalid_session`` when there is no such session.
    """
    if not sessions.end_session(sid):
        raise Forbidden("invalid_session", "a live session id is required in the sid header")
