"""The message gatherer's users and their states (seed 003): Grounded → Identified → Authenticated.

A user is one item in container ``gatherer_users`` (partition ``/id``)::

    {"id": username, "state": "grounded" | "identified" | "authenticated",
     "password_hash": bcrypt text | None, "token_jti": jti of the one live token | None,
     "generation": authentications so far (the live token's ``gen``), "sealed_through": every
     generation up to this one has its message stream sealed,
     "reidentified": bool (an IDENTIFY came while Authenticated), "created_at": iso, "updated_at": iso}

Transitions (anything else is refused with 409):

- IDENTIFY: a new user, Grounded or Identified → Identified. IDENTIFY needs no credentials, so it
  never takes away a live authentication: on an Authenticated user it only sets ``reidentified``
  (the user stays Authenticated and its token keeps working), which lets an AUTHENTICATE follow.
- AUTHENTICATE: Identified, or Authenticated with ``reidentified`` → Authenticated; the first one
  sets the password (the seed's behaviour), later ones must match it. Records the new token's
  ``jti``, which revokes any earlier token, and clears ``reidentified``.
- MESSAGE ``logout``: Authenticated → Grounded; clears ``token_jti``, revoking the token.

Audit log (:mod:`shared_code.audit.trail`; actor: the salted digest of the username): a successful
AUTHENTICATE records ``user_logged_in`` and a logout ``user_logged_out`` (objects: ``endpoint``,
the token's ``jti``) before the first write (revocation step 1); a failed log write is 503 and
nothing moves. Lockouts of AUTHENTICATE are ``login_locked_out`` (the login throttle).

Every transition is a conditional replace on the item's etag, so of two racing requests on one
user at most one moves its state; the loser gets :class:`~shared_code.platform.errors.Conflict`
``state_conflict`` and nothing changes. Each is one write: if it times out and lands later the
caller got 503 and the state moved (a late write decided on an older etag fails instead). A
retried IDENTIFY answers 200; a retried AUTHENTICATE finds the user Authenticated under a token
nobody received and answers ``not_identified``, so the client sends IDENTIFY and AUTHENTICATE
again, which revokes that token.

**Revocation.** Each AUTHENTICATE starts a new generation; its token writes only to that
generation's message stream (:mod:`shared_code.gatherer.message_log`), so a MESSAGE needs no read
of this item: the token's signature and claims are checked, and the append itself is refused by
the storage service once the stream is sealed. Revoking a token (logout, a newer AUTHENTICATE) is
three steps, each safe to stop after:

1. seal the old generation's blobs: from here its token can no longer write to them (it could
   still create a new day's blob, which checks this item first and finds the token live);
2. the conditional replace that records the revocation (``token_jti`` changes): from here a new
   blob of the old token is sealed by its creator, and every other request is refused;
3. seal the old generation again: blobs its token created between 1 and 2 are sealed too.

A crash or storage fault after step 1 answers 503 and leaves the token live but unable to write to
its existing blobs; a retry completes the revocation. After step 2 the token is revoked and a
retry of the logout answers ``token_revoked`` after sealing the generation once more (any request
with a revoked token does), so step 3 is completed by whoever comes next. ``sealed_through`` is
set at step 2 to the generation before the revoked one, so the next AUTHENTICATE seals the
revoked one once more as well.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from shared_code.audit import trail
from shared_code.gatherer import access_tokens, message_log
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
              "generation": 0, "sealed_through": 0, "created_at": now, "updated_at": now}
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
    ``LOGIN_RATE_LIMIT_PER_MINUTE`` attempts on ``username`` (:mod:`shared_code.platform.login_throttle`;
    the first refusal of a window is recorded as ``login_locked_out`` in the audit log, 503 when
    that fails), :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB, Blob
    Storage or the audit log (``user_logged_in``, recorded before anything moves) is down.
    """
    login_throttle.admit_attempt("authenticate", username, on_lockout=trail.record_lockout)
    user = _read(username)
    if not _may_authenticate(user):
        raise Conflict("not_identified", "send IDENTIFY for this user first")
    password_hash = user.get("password_hash")
    if password_hash is None:
        password_hash = hash_password(password)
    elif not verify_password(password, password_hash):
        log.info("gatherer authentication failed: %s", username)
        raise Unauthorized("invalid_credentials", "wrong username or password")
    generation = int(user.get("generation") or 0)
    issued = access_tokens.issue_token(username, generation + 1)  # signed here, handed out only at the end
    _record_session("user_logged_in", username, issued.jti, "authenticate")
    _seal_since(user)  # revocation step 1 for the previous token (see the module docstring)
    _move(user, state=AUTHENTICATED, password_hash=password_hash, token_jti=issued.jti, reidentified=False,
          generation=generation + 1, sealed_through=max(0, generation - 1))
    if generation:
        message_log.seal_generation(username, generation)  # step 3
    return issued


def authorize(token: str | None) -> dict[str, Any]:
    """The user a bearer ``token`` speaks for, if it is valid, live and the user is Authenticated.

    Raises :class:`~shared_code.platform.errors.Unauthorized` (401) ``missing_token`` / ``invalid_token``
    (see :func:`shared_code.gatherer.access_tokens.verify_token`) or ``token_revoked`` (logged out, or
    replaced by a later AUTHENTICATE), and :class:`~shared_code.platform.errors.Conflict`
    ``not_authenticated`` (409) when the user's state is not Authenticated.
    """
    holder = sender(token)
    user = _read(holder.username)
    if user is None or user.get("token_jti") != holder.jti:
        if user is not None:  # finish the revocation of this token's stream (step 3), idempotently
            message_log.seal_generation(holder.username, holder.generation)
        raise _revoked()
    if user.get("state") != AUTHENTICATED:
        raise Conflict("not_authenticated", "send IDENTIFY and AUTHENTICATE again before messages")
    return user


@dataclass(frozen=True)
class Sender:
    """Whom a MESSAGE's token speaks for: ``username``, authentication ``generation`` and ``jti``."""

    username: str
    generation: int
    jti: str


def sender(token: str | None) -> Sender:
    """The holder of a bearer ``token`` whose signature and claims are valid (no storage read).

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``missing_token`` / ``invalid_token``
    (:func:`shared_code.gatherer.access_tokens.verify_token`), also for a ``sub`` that is no username.
    """
    claims = access_tokens.verify_token(token)
    if not USERNAME_PATTERN.fullmatch(claims["sub"]):
        raise access_tokens.invalid_token("invalid_token", "the access token is not valid (claims)")
    return Sender(claims["sub"], claims["gen"], claims["jti"])


def store_message(holder: Sender, message: str) -> message_log.StoredMessage:
    """Append ``message`` for the token's ``holder``: one Append Block to its generation's stream.

    Raises ``token_revoked`` (401) when the stream is sealed, or when the token turns out revoked
    as it opens a new blob (the blob is then sealed, nothing is written),
    :class:`~shared_code.platform.errors.ServiceUnavailable` when a store fails.
    """
    def confirm_live() -> None:
        user = _read(holder.username)
        if user is None or user.get("token_jti") != holder.jti or user.get("state") != AUTHENTICATED:
            raise _revoked()
    try:
        return message_log.append_message(holder.username, holder.generation, message, confirm_live)
    except message_log.StreamSealed:
        raise _revoked() from None


def _revoked() -> Exception:
    return access_tokens.invalid_token("token_revoked", "the access token is no longer valid: authenticate again")


def _seal_since(user: dict[str, Any]) -> None:
    """Seal every generation of ``user`` after ``sealed_through`` up to the current one."""
    for generation in range(int(user.get("sealed_through") or 0) + 1, int(user.get("generation") or 0) + 1):
        message_log.seal_generation(user["id"], generation)


def logout(user: dict[str, Any]) -> None:
    """Move an authorized ``user`` (from :func:`authorize`) back to Grounded and revoke its token,
    in the three steps of the module docstring (seal, record, seal).

    Raises :class:`~shared_code.platform.errors.Conflict` ``state_conflict`` when a racing request
    won, :class:`~shared_code.platform.errors.ServiceUnavailable` when a store fails (see the module
    docstring for what each prefix leaves and what a retry does; ``user_logged_out`` is recorded
    first, so with the audit log down nothing moves).
    """
    generation = int(user.get("generation") or 0)
    _record_session("user_logged_out", user["id"], user.get("token_jti"), "message")
    _seal_since(user)
    _move(user, state=GROUNDED, token_jti=None, reidentified=False, sealed_through=max(0, generation - 1))
    if generation:
        message_log.seal_generation(user["id"], generation)
    log.info("gatherer user logged out: %s", user["id"])


def _record_session(event: str, username: str, jti: str | None, endpoint: str) -> None:
    """The audit entry of a gatherer login or logout (raises ServiceUnavailable when the log is down)."""
    trail.record(event, actor=trail.user_actor(username), objects={"endpoint": endpoint, "token_jti": jti})


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
