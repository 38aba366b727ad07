"""The message gatherer's users and their states (seed 003): Grounded → Identified → Authenticated.

A user is one item in container ``gatherer_users`` (partition ``/id``)::

    {"id": username, "state": "grounded" | "identified" | "authenticated",
     "password_hash": bcrypt text | None, "token_jti": jti of the one live token | None,
     "reidentified": bool (an IDENTIFY came while Authenticated), "created_at": iso, "updated_at": iso}

Transitions (anything else is refused with 409):

- IDENTIFY: a new user, Grounded or Identified → Identified. IDENTIFY needs no credentials, so it
  never takes away a live authentication: on an Authenticated user it only sets ``reidentified``
  (the user stays Authenticated and its token keeps working), which lets an AUTHENTICATE follow.
- AUTHENTICATE: Identified, or Authenticated with ``reidentified`` → Authenticated; the first one
  sets the password (the seed's behaviour), later ones must match it. Records the new token's
  ``jti``, which revokes any earlier token, and clears ``reidentified``.
- MESSAGE ``logout``: Authenticated → Grounded; clears ``token_jti``, revoking the token.

Every transition is a conditional replace on the item's etag, so of two racing requests on one
user at most one moves its state; the loser gets :class:`~shared_code.platform.errors.Conflict`
``state_conflict`` and nothing changes.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from shared_code.gatherer import access_tokens
from shared_code.platform import cosmos, login_throttle
from shared_code.platform.errors import BadRequest, Conflict, PayloadTooLarge, Unauthorized
from shared_code.platform.passwords import hash_password, verify_password
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.gatherer")

GROUNDED, IDENTIFIED, AUTHENTICATED = "grounded", "identified", "authenticated"
# The seed's schema (String(32)); not only dots, so the name is safe in Cosmos ids and blob paths.
USERNAME_PATTERN = re.compile(r"(?!\.+\Z)[A-Za-z0-9._-]{1,32}")
MAX_PASSWORD_CHARS = 1024


def _read(username: str) -> dict[str, Any] | None:
    return cosmos.read_item(cosmos.GATHERER_USERS, username, username)


def _move(user: dict[str, Any], **changes: Any) -> dict[str, Any]:
    updated = {key: value for key, value in user.items() if not key.startswith("_")}
    updated.update(changes, updated_at=to_iso(utc_now()))
    try:
        return cosmos.replace_item(cosmos.GATHERER_USERS, updated, user["_etag"])
    except cosmos.EtagMismatch:
        raise Conflict("state_conflict", "the user's state changed concurrently; retry") from None


def identify(username: str) -> bool:
    """IDENTIFY ``username``: create it in state Identified, or move a known user there; an
    Authenticated user stays Authenticated (its token stays live) and may AUTHENTICATE again.

    Returns ``True`` when the user was created (HTTP 201), ``False`` when it existed (200). Raises
    :class:`~shared_code.platform.errors.Conflict` ``state_conflict`` when a concurrent request changed
    the user first, :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    now = to_iso(utc_now())
    record = {"id": username, "state": IDENTIFIED, "password_hash": None, "token_jti": None,
              "created_at": now, "updated_at": now}
    try:
        cosmos.create_item(cosmos.GATHERER_USERS, record)
        log.info("gatherer user created: %s", username)
        return True
    except cosmos.AlreadyExists:
        pass
    user = _read(username)
    if user is None:  # deleted in between: report the race rather than loop
        raise Conflict("state_conflict", "the user's state changed concurrently; retry")
    if user.get("state") != AUTHENTICATED:
        _move(user, state=IDENTIFIED)
    elif not user.get("reidentified"):
        _move(user, reidentified=True)
    return False


def _may_authenticate(user: dict[str, Any] | None) -> bool:
    """AUTHENTICATE follows an IDENTIFY: state Identified, or Authenticated and identified since."""
    if user is None:
        return False
    return user.get("state") == IDENTIFIED or (user.get("state") == AUTHENTICATED and bool(user.get("reidentified")))


def authenticate(username: str, password: str) -> access_tokens.IssuedToken:
    """AUTHENTICATE ``username`` (after an IDENTIFY) with ``password``; returns its new access token.

    The first authentication of a user sets its password (bcrypt over a peppered pre-hash,
    :mod:`shared_code.platform.passwords`). Raises :class:`~shared_code.platform.errors.Conflict`
    ``not_identified`` (409) when the user is unknown or no IDENTIFY preceded,
    :class:`~shared_code.platform.errors.Unauthorized` ``invalid_credentials`` (401) for a wrong password
    (the state stays Identified), ``state_conflict`` (409) when a racing request won, and
    :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (429, before the user is read,
    so known and unknown names and right and wrong passwords are alike) over
    ``LOGIN_RATE_LIMIT_PER_MINUTE`` attempts on ``username`` (:mod:`shared_code.platform.login_throttle`).
    """
    login_throttle.admit_attempt("authenticate", username)
    user = _read(username)
    if not _may_authenticate(user):
        raise Conflict("not_identified", "send IDENTIFY for this user first")
    password_hash = user.get("password_hash")
    if password_hash is None:
        password_hash = hash_password(password)
    elif not verify_password(password, password_hash):
        log.info("gatherer authentication failed: %s", username)
        raise Unauthorized("invalid_credentials", "wrong username or password")
    issued = access_tokens.issue_token(username)
    _move(user, state=AUTHENTICATED, password_hash=password_hash, token_jti=issued.jti, reidentified=False)
    return issued


def authorize(token: str | None) -> dict[str, Any]:
    """The user a bearer ``token`` speaks for, if it is valid, live and the user is Authenticated.

    Raises :class:`~shared_code.platform.errors.Unauthorized` (401) ``missing_token`` / ``invalid_token``
    (see :func:`shared_code.gatherer.access_tokens.verify_token`) or ``token_revoked`` (logged out, or
    replaced by a later AUTHENTICATE), and :class:`~shared_code.platform.errors.Conflict`
    ``not_authenticated`` (409) when the user's state is not Authenticated.
    """
    claims = access_tokens.verify_token(token)
    username = claims["sub"]
    user = _read(username) if USERNAME_PATTERN.fullmatch(username) else None
    if user is None or user.get("token_jti") != claims["jti"]:
        raise access_tokens.invalid_token("token_revoked", "the access token is no longer valid: authenticate again")
    if user.get("state") != AUTHENTICATED:
        raise Conflict("not_authenticated", "send IDENTIFY and AUTHENTICATE again before messages")
    return user


def logout(user: dict[str, Any]) -> None:
    """Move an authorized ``user`` (from :func:`authorize`) back to Grounded and revoke its token.

    Raises :class:`~shared_code.platform.errors.Conflict` ``state_conflict`` when a racing request won.
    """
    _move(user, state=GROUNDED, token_jti=None, reidentified=False)
    log.info("gatherer user logged out: %s", user["id"])


def validate_message(message: object, max_bytes: int) -> str:
    """``message`` if it is non-empty text of at most ``max_bytes`` UTF-8 bytes.

    Raises :class:`~shared_code.platform.errors.BadRequest` ``missing_fields`` (absent or empty),
    ``invalid_message`` (not a string) and :class:`~shared_code.platform.errors.PayloadTooLarge`
    ``message_too_large``. (A lone surrogate never gets here: bodies are refused when parsed,
    :func:`shared_code.platform.http.read_json_object`.)
    """
    if message is None or message == "":
        raise BadRequest("missing_fields", "'message' is required")
    if not isinstance(message, str):
        raise BadRequest("invalid_message", "'message' must be a string")
    if len(message.encode("utf-8")) > max_bytes:
        raise PayloadTooLarge("message_too_large", f"messages may be at most {max_bytes} UTF-8 bytes")
    return message
