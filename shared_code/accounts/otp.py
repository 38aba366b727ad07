"""Emailed one-time codes (OTP), following NIST SP 800-63B §5.1.3.2 (out-of-band authenticators).

- A code is 6 decimal digits from the OS CSPRNG (:mod:`secrets`).
- It is stored only as HMAC-SHA256 (RFC 2104) under ``OTP_PEPPER`` over ``purpose``, ``email``
  and the code: 10^6 codes are trivially enumerable, so an unkeyed or even bcrypt hash would not
  protect a leaked database; a key kept out of the database does.
- One item per (purpose, email) in the ``otps`` container, id ``<purpose>:<user_key(email)>``
  (:func:`~shared_code.accounts.users.user_key`: any address makes a legal id): a code is
  bound to one address and one purpose (a registration code never logs anyone in), and issuing a
  new code replaces the previous one.
- It is valid ``OTP_TTL_SECONDS`` (default 600) and accepted once.
- Every try first takes one of :data:`MAX_ATTEMPTS` tries with an etag-guarded write, and only
  then is the code compared, so concurrent guesses cannot share a try; after the last wrong try
  the code is deleted. The matching try consumes the code with an etag-guarded delete: of
  several concurrent right answers exactly one wins.
- Codes are never logged. The mail goes out before anything is stored (see :func:`send_code`).
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timedelta
from typing import Any, Callable

from shared_code.accounts import mail, throttle
from shared_code.accounts.users import user_key
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import keyed_hash, keyed_hash_matches
from shared_code.platform.errors import Unauthorized
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

REGISTER = "register"
LOGIN = "login"
PURPOSES = (REGISTER, LOGIN)
CODE_DIGITS = 6
CODE_PATTERN = re.compile(r"[0-9]{6}")
MAX_ATTEMPTS = 5
# Concurrent tries on one code retry their etag-guarded counter write at most this often.
MAX_WRITE_RACES = 64


def _failed(detail: str = "the code is wrong, expired or already used") -> Unauthorized:
    return Unauthorized("otp_failed", detail)


def new_code() -> str:
    """A fresh code: :data:`CODE_DIGITS` decimal digits, uniformly random from the OS CSPRNG."""
    return f"{secrets.randbelow(10 ** CODE_DIGITS):0{CODE_DIGITS}d}"


def _item_id(email: str, purpose: str) -> str:
    if purpose not in PURPOSES:
        raise ValueError(f"unknown OTP purpose {purpose!r}")
    return f"{purpose}:{user_key(email)}"


def _code_message(email: str, purpose: str, code: str) -> str:
    return f"{purpose}\n{email}\n{code}"


def _item(email: str, purpose: str, code_hash: str, attempts: int, expires_at: datetime,
          payload: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": _item_id(email, purpose),
        "email": email,
        "purpose": purpose,
        "code_hash": code_hash,
        "attempts": attempts,
        "payload": payload,
        "expires_at": to_iso(expires_at),
        "ttl": max(1, int((expires_at - utc_now()).total_seconds()) + 1),
    }


def store(email: str, purpose: str, code: str, payload: dict[str, Any] | None = None) -> datetime:
    """Store the hash of ``code`` for (``email``, ``purpose``), replacing any previous code, with
    ``payload`` (a JSON object kept until the code is used, e.g. a pending registration's
    password hash). Returns the expiry (aware UTC).

    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    expires_at = utc_now() + timedelta(seconds=get_settings().otp_ttl_seconds)
    code_hash = keyed_hash(get_settings().otp_pepper, _code_message(email, purpose, code))
    cosmos.upsert_item(cosmos.OTPS, _item(email, purpose, code_hash, 0, expires_at, payload or {}))
    return expires_at


def send_code(email: str, purpose: str, payload: dict[str, Any] | None = None) -> datetime:
    """Mail a new code to ``email`` for ``purpose``, then store it (replacing the previous code).

    The mail is sent first: when SMTP fails nothing is stored and the previous code stays as it
    was. Returns the expiry. Raises :class:`~shared_code.platform.errors.TooManyRequests`
    ``rate_limited`` when ``email`` already had ``MAIL_RATE_LIMIT_PER_HOUR`` mails this hour
    (:mod:`shared_code.accounts.throttle`; nothing is mailed or stored), and
    :class:`~shared_code.platform.errors.ServiceUnavailable` (``mail_unavailable`` or the database's) on
    an outage.
    """
    throttle.admit_mail(email)
    code = new_code()
    mail.send(mail.otp_message(email, code, purpose, get_settings().otp_ttl_seconds))
    return store(email, purpose, code, payload)


def pending(email: str, purpose: str) -> dict[str, Any] | None:
    """The stored code item for (``email``, ``purpose``) if one is live (not expired), else ``None``."""
    item = cosmos.read_item(cosmos.OTPS, _item_id(email, purpose), _item_id(email, purpose))
    if item is None or from_iso(item["expires_at"]) <= utc_now():
        return None
    return item


def _take_try(email: str, purpose: str) -> tuple[dict[str, Any], str]:
    """Count one try against the live code; returns (the item as counted, its new etag)."""
    item_id = _item_id(email, purpose)
    for _ in range(MAX_WRITE_RACES):
        item = cosmos.read_item(cosmos.OTPS, item_id, item_id)
        if item is None:
            raise _failed()
        if from_iso(item["expires_at"]) <= utc_now():
            cosmos.delete_item(cosmos.OTPS, item_id, item_id, etag=item["_etag"])
            raise _failed("the code has expired")
        if item["attempts"] >= MAX_ATTEMPTS:
            cosmos.delete_item(cosmos.OTPS, item_id, item_id, etag=item["_etag"])
            raise _failed("too many wrong codes: ask for a new one")
        counted = _item(email, purpose, item["code_hash"], item["attempts"] + 1,
                        from_iso(item["expires_at"]), item.get("payload") or {})
        try:
            written = cosmos.replace_item(cosmos.OTPS, counted, item["_etag"])
        except cosmos.EtagMismatch:
            continue  # another try (or a resend) changed it first: read again
        return counted, written["_etag"]
    raise _failed("too many concurrent tries, try again")


def verify(email: str, purpose: str, code: str,
           before_consume: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Use the code for (``email``, ``purpose``) once; returns the payload stored with it.

    ``before_consume(payload)``, when given, runs after the code matched and before it is
    deleted: if it raises, the code stays usable (its try is counted) and the error propagates,
    so a failed follow-up write (e.g. creating the account) loses nothing. Without it the code is
    consumed first, so of concurrent right answers exactly one gets through.

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``otp_failed`` when ``code`` is not 6 digits,
    there is no live code, it is wrong (the 5th wrong try deletes it), expired, already used, or a
    concurrent try consumed it first. Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when
    Cosmos DB is down.
    """
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        raise _failed("the code must be 6 digits")
    item, etag = _take_try(email, purpose)
    item_id = item["id"]
    if not keyed_hash_matches(get_settings().otp_pepper, _code_message(email, purpose, code), item["code_hash"]):
        if item["attempts"] >= MAX_ATTEMPTS:
            cosmos.delete_item(cosmos.OTPS, item_id, item_id, etag=etag)
        raise _failed()
    if before_consume is not None:
        before_consume(item["payload"])
        cosmos.delete_item(cosmos.OTPS, item_id, item_id)
    elif not cosmos.delete_item(cosmos.OTPS, item_id, item_id, etag=etag):
        raise _failed()  # used (or replaced by a resend) at the same moment
    return item["payload"]
