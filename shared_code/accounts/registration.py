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

from shared_code.accounts import otp, throttle
from shared_code.accounts.password_policy import check_password
from shared_code.accounts.users import get_user, normalize_email, user_key
from shared_code.platform import cosmos
from shared_code.platform.errors import BadRequest
from shared_code.platform.passwords import hash_password
from shared_code.platform.timeutil import to_iso, utc_now


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
    throttle.check_mail(address)  # before the costly hash; send_code counts the mail
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
        user = {"id": user_key(address), "email": address, "password_hash": payload["password_hash"], "created_at": to_iso(utc_now())}
        try:
            cosmos.create_item(cosmos.USERS, user)
        except cosmos.AlreadyExists:
            raise BadRequest("user_exists", "an account with this email already exists") from None

    # The account is created before the code is consumed: a database fault leaves the pending
    # registration usable, and create-on-id lets one of concurrent right answers win.
    otp.verify(address, otp.REGISTER, code, before_consume=create_user)
    return address
