"""User sessions of the secure file store (OWASP Session Management Cheat Sheet).

A session id is 256 random bits (base64url), handed to the client once at login and sent back
only in the ``sid`` header. The server stores only its SHA-256, with the owner's email, so a
database leak yields no usable session. A session dies after ``SESSION_IDLE_TIMEOUT_SECONDS``
without use or ``SESSION_ABSOLUTE_TIMEOUT_SECONDS`` after login, whichever comes first, and at
once on logout. Items carry ``expires_at`` and a Cosmos ``ttl``; the purge timer is the backstop.

A session also names its user's :func:`~shared_code.accounts.users.incarnation`, and every check
reads the user (no cache): a session lives only while that very account exists and is active, so
suspending or deleting the account ends its sessions at once on every instance, and an address
registered again never inherits an earlier account's sessions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable, Mapping, Protocol

from shared_code.accounts import users
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import random_token, sha256_hex
from shared_code.platform.errors import Forbidden
from shared_code.platform.security_log import token_ref
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

SESSION_BYTES = 32
SID_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# Refresh the idle deadline at most this often, so a busy session costs one write a minute.
TOUCH_INTERVAL = timedelta(seconds=60)


class HttpRequestLike(Protocol):
    """What :func:`session_email` reads of a request: its headers."""

    headers: Mapping[str, str]


@dataclass(frozen=True)
class Session:
    """A live session: the owner's normalised ``email`` and when it ends (aware UTC)."""

    email: str
    expires_at: datetime


def _deadline(created_at: datetime, last_seen_at: datetime) -> datetime:
    settings = get_settings()
    return min(
        last_seen_at + timedelta(seconds=settings.session_idle_timeout_seconds),
        created_at + timedelta(seconds=settings.session_absolute_timeout_seconds),
    )


def _item(sid_hash: str, email: str, user: str, created_at: datetime, last_seen_at: datetime) -> dict:
    expires_at = _deadline(created_at, last_seen_at)
    return {
        "id": sid_hash,
        "email": email,
        "user": user,
        "created_at": to_iso(created_at),
        "last_seen_at": to_iso(last_seen_at),
        "expires_at": to_iso(expires_at),
        "ttl": max(1, int((expires_at - utc_now()).total_seconds()) + 1),
    }


def new_session_id() -> str:
    """A fresh raw session id (256 random bits, base64url, 43 chars), for :func:`create_session`."""
    return random_token(SESSION_BYTES)


def session_ref(sid: str) -> str:
    """A reference to the session ``sid`` for the audit log and security events: the first 12 hex
    of its stored SHA-256, so a login and its logout correlate; the id cannot be recovered from it."""
    return token_ref(sha256_hex(sid))


def create_session(email: str, user: dict | None = None, *, sid: str | None = None) -> str:
    """Start a session for the normalised ``email`` (its user record ``user``, read when not
    given); returns the raw session id (43 chars), ``sid`` if given (from :func:`new_session_id`,
    so the caller can name the session before it exists).

    One create. If it times out and lands later, the session exists but its id never reached
    anyone: it is unusable and dies after the idle timeout. Raises
    :class:`~shared_code.platform.errors.Forbidden` ``invalid_session`` when there is no such user,
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    user = user if user is not None else users.get_user(email)
    if user is None:
        raise Forbidden("invalid_session", "no account for this session")
    sid = sid or new_session_id()
    now = utc_now()
    cosmos.create_item(cosmos.SESSIONS, _item(sha256_hex(sid), email, users.incarnation(user), now, now))
    return sid


def require_session(sid: str | None) -> Session:
    """The live session for the ``sid`` header value, extending its idle deadline.

    Raises :class:`~shared_code.platform.errors.Forbidden` ``invalid_session`` when ``sid`` is missing,
    malformed, unknown, logged out or expired (idle or absolute timeout), or its account is gone or
    being deleted, ``user_suspended`` (403) while an operator suspends the account, and
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    session, user = session_owner(sid)
    if users.status(user) == users.SUSPENDED:
        raise Forbidden("user_suspended", "this account is suspended by an operator")
    if users.status(user) != users.ACTIVE:
        raise Forbidden("invalid_session", "the session is unknown or has expired")
    return session


def session_owner(sid: str | None) -> tuple[Session, dict]:
    """The live session for ``sid`` and its account, whatever the account's status (account
    deletion finishes a deletion already decided with it). Extends the idle deadline.

    Raises :class:`~shared_code.platform.errors.Forbidden` ``invalid_session`` like
    :func:`require_session`, also when the account is gone or is a later registration of the address.
    """
    if not sid or not SID_PATTERN.fullmatch(sid):
        raise Forbidden("invalid_session", "a live session id is required in the sid header")
    sid_hash = sha256_hex(sid)
    item = cosmos.read_item(cosmos.SESSIONS, sid_hash, sid_hash)
    now = utc_now()
    if item is None or from_iso(item["expires_at"]) <= now:
        raise Forbidden("invalid_session", "the session is unknown or has expired")
    user = users.get_user(item["email"])
    if user is None or item.get("user") != users.incarnation(user):
        raise Forbidden("invalid_session", "the session is unknown or has expired")
    last_seen_at = from_iso(item["last_seen_at"])
    expires_at = from_iso(item["expires_at"])
    if now - last_seen_at >= TOUCH_INTERVAL:
        touched = _item(sid_hash, item["email"], item["user"], from_iso(item["created_at"]), now)
        try:
            cosmos.replace_item(cosmos.SESSIONS, touched, item["_etag"])
            expires_at = from_iso(touched["expires_at"])
        except cosmos.EtagMismatch:
            pass  # a concurrent request touched it (or logout deleted it: the next call fails)
    return Session(email=item["email"], expires_at=expires_at), user


def end_session(sid: str | None, before: Callable[[str], None] | None = None) -> bool:
    """Delete the session for ``sid`` at once; ``True`` if a session was ended.

    ``before(email)``, when given, runs first with the owner of a live session (one point read
    more), e.g. to record the logout; an exception of it propagates and the session stays. An
    unknown session runs nothing and returns ``False``; an expired one (dead already) is deleted
    without it. Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    if not sid or not SID_PATTERN.fullmatch(sid):
        return False
    sid_hash = sha256_hex(sid)
    if before is not None:
        item = cosmos.read_item(cosmos.SESSIONS, sid_hash, sid_hash)
        if item is None:
            return False
        if from_iso(item["expires_at"]) > utc_now():
            before(item["email"])
    return cosmos.delete_item(cosmos.SESSIONS, sid_hash, sid_hash)


def session_email(req: "HttpRequestLike") -> str:
    """The normalised email of the live session named by the request's ``sid`` header.

    ``req`` is anything with ``headers`` (a ``func.HttpRequest``). Raises
    :class:`~shared_code.platform.errors.Forbidden` ``invalid_session`` (see :func:`require_session`).
    """
    return require_session(req.headers.get("sid")).email


def end_sessions_of(email: str) -> int:
    """Delete every session of ``email`` (a cross-partition query: sessions are partitioned by
    their hash); returns how many this call deleted. For account deletion, whose sessions are
    already refused (:func:`require_session` reads the account). Raises ServiceUnavailable."""
    ended = 0
    while True:
        batch = cosmos.query_first(cosmos.SESSIONS, "SELECT c.id FROM c WHERE c.email = @email",
                                   [{"name": "@email", "value": email}], 100)
        ended += sum(cosmos.delete_item(cosmos.SESSIONS, item["id"], item["id"]) for item in batch)
        if len(batch) < 100:
            return ended
