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
  the code is deleted. The matching try consumes the code with an etag-guarded replace that
  marks it used (``used_at``): of several concurrent right answers exactly one wins, and until
  the code expires the same code answers ``otp_used``, so a retry learns exactly why it failed
  (and registration, whose effect needs no secret, completes; see :func:`verify`).
- Codes are never logged. The mail goes out before anything is stored (see :func:`send_code`).
- Writes are conditional on what was read (create, or replace on the etag): a write that timed
  out and lands later fails instead of replacing the code of a later, acknowledged request.
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
from shared_code.platform.errors import ServiceUnavailable, Unauthorized
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

REGISTER = "register"
LOGIN = "login"
DELETE = "delete"  # account deletion
PURPOSES = (REGISTER, LOGIN, DELETE)
CODE_DIGITS = 6
CODE_PATTERN = re.compile(r"[0-9]{6}")
MAX_ATTEMPTS = 5
# Concurrent tries on one code retry their etag-guarded counter write at most this often.
MAX_WRITE_RACES = 64


def _failed(detail: str = "the code is wrong, expired or already used") -> Unauthorized:
    return Unauthorized("otp_failed", detail)


def _used() -> Unauthorized:
    return Unauthorized("otp_used", "this code was used already (also when the request that used it failed): "
                                    "log in again for a new code")


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
          payload: dict[str, Any], used_at: str | None = None) -> dict[str, Any]:
    return {
        "id": _item_id(email, purpose),
        "email": email,
        "purpose": purpose,
        "code_hash": code_hash,
        "attempts": attempts,
        "payload": payload,
        "used_at": used_at,
        "expires_at": to_iso(expires_at),
        "ttl": max(1, int((expires_at - utc_now()).total_seconds()) + 1),
    }


def store(email: str, purpose: str, code: str, payload: dict[str, Any] | None = None) -> datetime:
    """Store the hash of ``code`` for (``email``, ``purpose``), replacing any previous code, with
    ``payload`` (a JSON object kept until the code expires, e.g. a pending registration's
    password hash). Returns the expiry (aware UTC).

    One write, conditional on the item read just before (create, or replace on its etag; a lost
    race reads again): if it times out and lands later the caller got 503 and the code is
    stored, unless a later request stored another one first, which then stays.
    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    expires_at = utc_now() + timedelta(seconds=get_settings().otp_ttl_seconds)
    code_hash = keyed_hash(get_settings().otp_pepper, _code_message(email, purpose, code))
    item = _item(email, purpose, code_hash, 0, expires_at, payload or {})
    for _ in range(MAX_WRITE_RACES):
        current = cosmos.read_item(cosmos.OTPS, item["id"], item["id"])
        try:
            if current is None:
                cosmos.create_item(cosmos.OTPS, item)
            else:
                cosmos.replace_item(cosmos.OTPS, item, current["_etag"])
            return expires_at
        except (cosmos.AlreadyExists, cosmos.EtagMismatch):
            continue  # another request wrote it meanwhile: this later one replaces it
    raise ServiceUnavailable(detail="the code is being replaced concurrently, try again")


def send_code(email: str, purpose: str, payload: dict[str, Any] | None = None) -> datetime:
    """Mail a new code to ``email`` for ``purpose``, then store it (replacing the previous code).

    The mail is sent first: when SMTP fails nothing is stored and the previous code stays as it
    was. If the store then times out, the caller got 503 after the mail went out; the mailed code
    works once the store lands, and a retry mails a new code that replaces it. Returns the expiry. Raises :class:`~shared_code.platform.errors.TooManyRequests`
    ``rate_limited`` when ``email`` already had ``MAIL_RATE_LIMIT_PER_HOUR`` mails this hour
    (:mod:`shared_code.accounts.throttle`; nothing is mailed or stored), and
    :class:`~shared_code.platform.errors.ServiceUnavailable` (``mail_unavailable`` or the database's) on
    an outage.
    """
    throttle.admit_mail(email)
    code = new_code()
    mail.send(mail.otp_message(email, code, purpose, get_settings().otp_ttl_seconds))
    return store(email, purpose, code, payload)


def pending(email: str, purpose: str, *, include_used: bool = False) -> dict[str, Any] | None:
    """The stored code item for (``email``, ``purpose``) if one is live (not expired) and, unless
    ``include_used``, not used yet; else ``None``."""
    item = cosmos.read_item(cosmos.OTPS, _item_id(email, purpose), _item_id(email, purpose))
    if item is None or from_iso(item["expires_at"]) <= utc_now():
        return None
    return item if include_used or item.get("used_at") is None else None


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
                        from_iso(item["expires_at"]), item.get("payload") or {}, item.get("used_at"))
        try:
            written = cosmos.replace_item(cosmos.OTPS, counted, item["_etag"])
        except cosmos.EtagMismatch:
            continue  # another try (or a resend) changed it first: read again
        return counted, written["_etag"]
    raise _failed("too many concurrent tries, try again")


def verify(email: str, purpose: str, code: str,
           complete: Callable[[dict[str, Any]], None] | None = None,
           completed: Callable[[dict[str, Any]], bool] | None = None) -> dict[str, Any]:
    """Use the code for (``email``, ``purpose``) once; returns the payload stored with it.

    ``complete(payload)``, when given, is the write the code authorises (an account, a session).
    Steps, and what a caller sees if the process dies or a storage call times out right after
    each: (1) a try is counted: nothing else changed, a retry takes another try; (2)
    ``complete`` ran: its effect exists but the code is still usable, so a retry runs it again
    (it must be idempotent or harmless to repeat); (3) the code is marked used (the commit, an
    etag-guarded replace). After (3), the same code answers ``otp_used``, unless
    ``completed(payload)`` says the earlier try's effect is in place, in which case the retry
    succeeds with the payload (for effects that need no secret handed back, like an account).

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``otp_failed`` when ``code`` is not 6 digits,
    there is no live code, it is wrong (the 5th wrong try deletes it), expired, or a concurrent
    try or a resend took it first; ``otp_used`` for the right code once used. Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    if not isinstance(code, str) or not CODE_PATTERN.fullmatch(code):
        raise _failed("the code must be 6 digits")
    item, etag = _take_try(email, purpose)
    item_id = item["id"]
    if not keyed_hash_matches(get_settings().otp_pepper, _code_message(email, purpose, code), item["code_hash"]):
        if item["attempts"] >= MAX_ATTEMPTS:
            cosmos.delete_item(cosmos.OTPS, item_id, item_id, etag=etag)
        raise _failed()
    if item.get("used_at") is not None:
        if completed is not None and completed(item["payload"]):
            return item["payload"]
        raise _used()
    if complete is not None:
        complete(item["payload"])
    if not _mark_used(item, etag):  # a concurrent right answer used it first
        if completed is not None and completed(item["payload"]):
            return item["payload"]
        raise _failed()
    return item["payload"]


def _mark_used(item: dict[str, Any], etag: str) -> bool:
    """Mark the code of ``item`` used with a replace on ``etag``; ``False`` when a concurrent try
    used it first. A concurrent try that only counted itself is retried over; a code deleted or
    replaced by a resend meanwhile is ``otp_failed``."""
    for _ in range(MAX_WRITE_RACES):
        used = {**item, "used_at": to_iso(utc_now())}
        used["ttl"] = max(1, int((from_iso(item["expires_at"]) - utc_now()).total_seconds()) + 1)
        try:
            cosmos.replace_item(cosmos.OTPS, used, etag)
            return True
        except cosmos.EtagMismatch:
            current = cosmos.read_item(cosmos.OTPS, item["id"], item["id"])
            if current is None or current["code_hash"] != item["code_hash"]:
                raise _failed() from None
            if current.get("used_at") is not None:
                return False
            item, etag = {k: v for k, v in current.items() if not k.startswith("_")}, current["_etag"]
    raise _failed("too many concurrent tries, try again")


def discard_all(email: str) -> int:
    """Delete every code of ``email``, whatever its purpose (account deletion); returns how many
    existed. Raises :class:`~shared_code.platform.errors.ServiceUnavailable`."""
    return sum(cosmos.delete_item(cosmos.OTPS, _item_id(email, purpose), _item_id(email, purpose)) for purpose in PURPOSES)
