"""Operators suspend and resume user accounts (``POST /operator/users/{email}/suspend`` / ``resume``).

A suspended account keeps everything it owns; its sessions are refused (``403 user_suspended``)
from the next request on, on every instance (:func:`shared_code.accounts.sessions.require_session`
reads the account each time), and sign-in answers ``403 user_suspended`` once the password
matched. Grants it holds stay but cannot be used without a session. Resuming makes the account
and its unexpired sessions work again.

Each change is recorded in the audit log (``user_suspended``, ``user_resumed``; the user only as
the salted digest, the reason only as its SHA-256) before it is written, and is one etag-guarded
replace of the user record: a retry after a 503 finds the state reached and answers 200.
"""

from __future__ import annotations

from typing import Any

from shared_code.accounts import users
from shared_code.audit import trail
from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import Conflict, NotFound, ServiceUnavailable
from shared_code.platform.security_log import security_event, subject_ref
from shared_code.platform.timeutil import to_iso, utc_now

MAX_WRITE_RACES = 8


def _user(raw_email: str) -> tuple[str, dict[str, Any]]:
    email = users.normalize_email(raw_email)
    user = users.get_user(email)
    if user is None:
        raise NotFound("user_not_found", "no registered user has that email")
    if users.status(user) == users.DELETING:
        raise Conflict("account_deleting", "this account is being deleted")
    return email, user


def _change(raw_email: str, reason: str, before: str, after: str, event: str) -> tuple[str, bool]:
    email, user = _user(raw_email)
    if users.status(user) == after:
        return email, False
    trail.record(event, actor=trail.OPERATOR, objects={"user": trail.user_actor(email), "reason_sha256": sha256_hex(reason)})
    for _ in range(MAX_WRITE_RACES):
        body = {k: v for k, v in user.items() if not k.startswith("_")}
        body.update(status=after, status_reason=reason, status_changed_at=to_iso(utc_now()))
        try:
            cosmos.replace_item(cosmos.USERS, body, user["_etag"])
            security_event(event, user_ref=subject_ref(email))
            return email, True
        except cosmos.EtagMismatch:
            email, user = _user(email)
            if users.status(user) == after:
                return email, False
            if users.status(user) != before:
                raise Conflict("account_deleting", "this account is being deleted") from None
    raise ServiceUnavailable(detail="the account kept changing, try again")


def suspend_user(raw_email: str, reason: str) -> tuple[str, bool]:
    """Suspend the account of ``raw_email``; returns ``(normalised email, changed)``. Raises
    :class:`~shared_code.platform.errors.BadRequest` ``invalid_email``, :class:`NotFound`
    ``user_not_found``, :class:`Conflict` ``account_deleting``, ServiceUnavailable."""
    return _change(raw_email, reason, users.ACTIVE, users.SUSPENDED, "user_suspended")


def resume_user(raw_email: str, reason: str) -> tuple[str, bool]:
    """Resume a suspended account; returns ``(normalised email, changed)``. Raises like :func:`suspend_user`."""
    return _change(raw_email, reason, users.SUSPENDED, users.ACTIVE, "user_resumed")
