"""User identities of the secure file store: email normalisation and lookup.

A user is one item in the ``users`` container whose ``id`` is :func:`user_key` of the normalised
email (so a create-on-id makes exactly one of N concurrent registrations win) and whose ``email``
is the address itself. Registration, passwords and
OTPs live in :mod:`shared_code.accounts.registration` and :mod:`~shared_code.accounts.signin`; this module is the small shared contract other areas
(KMS grants, the data store) use to name users.

A user's ``status`` is ``active`` (also when absent), ``suspended`` (an operator's hold:
sessions and sign-in refused, :mod:`shared_code.accounts.suspension`) or ``deleting`` (the account
is being erased, :mod:`shared_code.accounts.deletion`: nothing works any more, the record goes
last). :func:`incarnation` names one registration of an address, so what was bound to an earlier
account of the same email (a session) never works for a later one.
"""

from __future__ import annotations

from typing import Any

from email_validator import EmailNotValidError, validate_email

from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import BadRequest

MAX_EMAIL_LENGTH = 254  # RFC 5321 §4.5.3.1.3 path limit minus the angle brackets
ACTIVE, SUSPENDED, DELETING = "active", "suspended", "deleting"


def normalize_email(raw: object) -> str:
    """The canonical form of an email address: trimmed, syntax-checked, lower-cased.

    Syntax follows RFC 5322/6531 as implemented by ``email-validator`` (no DNS lookups: the
    OTP mail proves deliverability). The whole address is lower-cased so ``Alice@X.org`` and
    ``alice@x.org`` are one user.

    Raises :class:`~shared_code.platform.errors.BadRequest` ``invalid_email``.
    """
    if not isinstance(raw, str) or not raw.strip() or len(raw.strip()) > MAX_EMAIL_LENGTH:
        raise BadRequest("invalid_email", "email must be a valid address")
    try:
        result = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError:
        raise BadRequest("invalid_email", "email must be a valid address") from None
    return result.normalized.lower()


def user_key(email: str) -> str:
    """The Cosmos DB id under which the normalised ``email`` is stored: SHA-256 hex of its UTF-8.

    A valid address may hold ``/``, ``?`` or ``#`` (RFC 5322 ``atext``), which Cosmos DB refuses
    in ids, and up to 254 characters of UTF-8; the digest is 64 legal characters for every address.
    """
    return sha256_hex(email)


def get_user(email: str) -> dict[str, Any] | None:
    """The registered user stored under the normalised ``email``, or ``None``.

    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    key = user_key(email)
    return cosmos.read_item(cosmos.USERS, key, key)


def status(user: dict[str, Any]) -> str:
    """The user's status: ``active`` (also for records that predate statuses), ``suspended`` or ``deleting``."""
    return user.get("status") or ACTIVE


def incarnation(user: dict[str, Any]) -> str:
    """What tells this account apart from any earlier or later one of the same address: its
    ``registration_id`` where the record has one, else its ``created_at`` (microseconds)."""
    return str(user.get("registration_id") or user["created_at"])


def active_user(email: str) -> dict[str, Any] | None:
    """The user stored under ``email`` if there is one and it is active, else ``None`` (one point read)."""
    user = get_user(email)
    return user if user is not None and status(user) == ACTIVE else None
