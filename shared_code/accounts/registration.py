"""Registration of secure-file-store accounts (seed 002), confirmed by an emailed one-time code.

``register`` checks the password policy, hashes the password (bcrypt over a peppered pre-hash,
:mod:`shared_code.platform.passwords`) and mails a code (:mod:`shared_code.accounts.otp`); the
pending registration is the ``register`` OTP item, which carries the hash until the code is
verified. ``verify_register`` creates the user with a create-on-id in ``users`` (id = the user key of the
email), so of any number of concurrent registrations of one address exactly one account is
created. Every code mail counts against the address's mail limit
(:mod:`shared_code.accounts.throttle`).
"""

from __future__ import annotations

from typing import Any

from shared_code.accounts import otp, throttle
from shared_code.accounts.password_policy import check_password
from shared_code.accounts.users import get_user, normalize_email, user_key
from shared_code.audit import trail
from shared_code.platform import cosmos
from shared_code.platform.crypto import random_token
from shared_code.platform.errors import BadRequest, Unauthorized
from shared_code.platform.passwords import hash_password
from shared_code.platform.timeutil import to_iso, utc_now

REGISTRATION_ID_BYTES = 16


def register(email: str, password: str) -> str:
    """Start registering ``email`` (raw input) with ``password``; mails a registration code.

    Returns the normalised email. Raises :class:`~shared_code.platform.errors.BadRequest`
    ``invalid_email`` / ``weak_password`` / ``user_exists``,
    :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` when the address's OTP mail
    limit is spent, and :class:`~shared_code.platform.errors.ServiceUnavailable` when mail or Cosmos DB is
    down. A repeated call replaces the pending registration and its code. The pending
    registration carries a random ``registration_id`` that the account will name, so a retried
    verify can recognise the account its own earlier try created.

    Steps (:func:`shared_code.accounts.otp.send_code`): the mail, then the code's store. If the
    store times out, the caller got 503 after the mail went out: the mailed code works once the
    store landed; a retry mails a new code that replaces it.
    """
    address = normalize_email(email)
    check_password(password, address)
    if get_user(address) is not None:
        raise BadRequest("user_exists", "an account with this email already exists")
    throttle.check_mail(address)  # before the costly hash; send_code counts the mail
    payload = {"password_hash": hash_password(password), "registration_id": random_token(REGISTRATION_ID_BYTES)}
    otp.send_code(address, otp.REGISTER, payload)
    return address


def verify_register(email: str, code: str) -> str:
    """Finish the pending registration of ``email`` with its emailed ``code``; returns the email.

    Steps (:func:`shared_code.accounts.otp.verify`), and what a caller sees if the process dies
    or a storage call times out right after each: (1) a try counted; (2) the account created on
    its id, naming the registration: the code still works, and the retry, finding the account of
    *this* registration, succeeds; (3) the code marked used: a retry with the same code still
    succeeds (the account of this registration exists). A retried verify with the same code
    after a 503 therefore always answers 200 once the storage is back.

    Raises :class:`~shared_code.platform.errors.BadRequest` ``no_pending_registration`` (none, expired or
    cut off after too many wrong codes) / ``user_exists`` (another registration of the address
    won), :class:`~shared_code.platform.errors.Unauthorized` ``otp_failed``,
    :class:`~shared_code.platform.errors.ServiceUnavailable` when the audit log (``user_registered``
    is recorded before the account is created; a retry records it again) or Cosmos DB is down.
    """
    address = normalize_email(email)
    item = otp.pending(address, otp.REGISTER, include_used=True)
    if item is None:
        raise _no_pending()

    def created_by(payload: dict[str, Any]) -> bool:
        user = get_user(address)
        return user is not None and user.get("registration_id") == payload.get("registration_id")

    def create_user(payload: dict[str, Any]) -> None:
        user = {"id": user_key(address), "email": address, "password_hash": payload["password_hash"],
                "registration_id": payload.get("registration_id"), "created_at": to_iso(utc_now())}
        trail.record("user_registered", actor=trail.user_actor(address), objects={})
        try:
            cosmos.create_item(cosmos.USERS, user)
        except cosmos.AlreadyExists:
            if not created_by(payload):
                raise BadRequest("user_exists", "an account with this email already exists") from None

    # The account is created before the code is used up: a database fault leaves the pending
    # registration usable, and create-on-id lets one of concurrent right answers win.
    try:
        otp.verify(address, otp.REGISTER, code, complete=create_user, completed=created_by)
    except Unauthorized as error:
        if item.get("used_at") is not None and error.message == "otp_failed":
            raise _no_pending() from None  # the registration is complete; this is not its code
        raise
    return address


def _no_pending() -> BadRequest:
    return BadRequest("no_pending_registration", "no registration is waiting for this email")
