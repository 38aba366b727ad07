"""Account deletion (``POST /delete_account/otp``, then ``POST /delete_account``): the user erases
their account; the address can register again later, as a new user.

The request needs the session (``sid``), the password and a fresh emailed code of purpose
``delete`` (:mod:`shared_code.accounts.otp`; asked for with the session and the password). Then:

1. the decision is recorded in the audit log (``account_deleted``) and the account marked
   ``deleting`` (one etag-guarded replace, made before the code is used up, so a fault there
   leaves the code usable): from this moment every session of the account is refused and no one
   can sign in or be granted a file (:func:`shared_code.accounts.sessions.require_session` and
   the KMS read the account);
2. the other areas erase what the user holds (``erase``, passed in by the caller because the
   accounts area never imports them: :func:`shared_code.filestore.erasure.erase_user` destroys
   the keys the user owns, crypto-shredding their files, deletes the stored files, revokes the
   grants the user gave and removes those they received);
3. the sessions and codes of the address are deleted;
4. ``account_erasure_completed`` is recorded with the counts, and the user record is deleted
   last: only then can the address register again, so nothing of the old account is ever bound
   to a new one.

Crash safety: every step after (1) is idempotent. A failure part-way answers 503; a retry of the
same request (session and password; the code is not asked again once the deletion is decided)
continues where it stopped, and the purge timer completes deletions left unfinished for
:data:`GRACE_SECONDS` (:func:`finish_interrupted`), so an erasure once decided always completes.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any, Callable

from shared_code.accounts import otp, sessions, throttle, users
from shared_code.audit import trail
from shared_code.platform import cosmos, login_throttle
from shared_code.platform.errors import Forbidden, ServiceUnavailable, Unauthorized
from shared_code.platform.passwords import verify_password
from shared_code.platform.security_log import security_event, subject_ref
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.accounts")

#: ``erase(email) -> counts``: what another area deletes of a user's data; idempotent.
Eraser = Callable[[str], dict[str, int]]

GRACE_SECONDS = 300
MAX_WRITE_RACES = 8
THROTTLE_ENDPOINT = "delete_account"


def _check_password(email: str, user: dict[str, Any], password: str) -> None:
    """Count the attempt (``LOGIN_RATE_LIMIT_PER_MINUTE`` per account, like ``/login``), then check."""
    login_throttle.admit_attempt(THROTTLE_ENDPOINT, email)
    if not verify_password(password, user.get("password_hash")):
        raise Unauthorized("invalid_password", "the password is wrong")


def request_code(sid: str | None, password: str) -> str:
    """Mail a deletion code to the session's user after checking the password; returns the email.

    Raises :class:`Forbidden` ``invalid_session`` / ``user_suspended``, :class:`Unauthorized`
    ``invalid_password``, :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited``
    (password attempts or mails), ServiceUnavailable (``mail_unavailable``: nothing stored).
    """
    email = sessions.require_session(sid).email
    user = users.get_user(email)
    if user is None:
        raise Forbidden("invalid_session", "the session is unknown or has expired")
    _check_password(email, user, password)
    throttle.check_mail(email)
    otp.send_code(email, otp.DELETE)
    return email


def delete_account(sid: str | None, password: str, code: str, erase: Eraser) -> dict[str, int]:
    """Delete the session's account as the module docstring says; returns the counts
    (``erase``'s, plus ``sessions_ended`` and ``codes_deleted``).

    Raises :class:`Forbidden` ``invalid_session`` / ``user_suspended`` (a suspended account cannot
    be deleted by its user), :class:`Unauthorized` ``invalid_password`` / ``otp_failed``,
    :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited``, ServiceUnavailable
    (see the module docstring: a retry completes it).
    """
    session, user = sessions.session_owner(sid)
    email = session.email
    if users.status(user) == users.SUSPENDED:
        raise Forbidden("user_suspended", "this account is suspended by an operator")
    _check_password(email, user, password)
    if users.status(user) == users.ACTIVE:
        def decide(_payload: dict[str, Any]) -> None:
            trail.record("account_deleted", actor=trail.user_actor(email), objects={"user": trail.user_actor(email)})
            _mark_deleting(user)

        otp.verify(email, otp.DELETE, code, complete=decide)
        security_event("account_deleted", user_ref=subject_ref(email))
    return erase_account(email, erase)


def _mark_deleting(user: dict[str, Any]) -> None:
    current: dict[str, Any] | None = user
    for _ in range(MAX_WRITE_RACES):
        if current is None or users.status(current) == users.DELETING:
            return
        body = {k: v for k, v in current.items() if not k.startswith("_")}
        body.update(status=users.DELETING, deletion_requested_at=to_iso(utc_now()))
        try:
            cosmos.replace_item(cosmos.USERS, body, current["_etag"])
            return
        except cosmos.EtagMismatch:
            current = users.get_user(user["email"])
    raise ServiceUnavailable(detail="the account kept changing, try again")


def erase_account(email: str, erase: Eraser) -> dict[str, int]:
    """Steps 2-4 for an account marked ``deleting``; returns the counts (empty when the account is
    gone already). Idempotent; raises ServiceUnavailable (what was done stays done)."""
    user = users.get_user(email)
    if user is None or users.status(user) != users.DELETING:
        return {}
    summary = dict(erase(email))
    summary["sessions_ended"] = sessions.end_sessions_of(email)
    summary["codes_deleted"] = otp.discard_all(email)
    trail.record("account_erasure_completed", actor=trail.user_actor(email),
                 objects={"user": trail.user_actor(email), **summary})
    cosmos.delete_item(cosmos.USERS, user["id"], user["id"])
    log.info("account erased: %s", summary)
    return summary


DELETING_QUERY = "SELECT c.email FROM c WHERE c.status = @deleting AND c.deletion_requested_at < @before"


def finish_interrupted(erase: Eraser, limit: int = 10) -> int:
    """Complete the deletions decided at least :data:`GRACE_SECONDS` ago and not finished (the
    purge timer's backstop); returns how many. Raises ServiceUnavailable (the next run continues)."""
    before = to_iso(utc_now() - timedelta(seconds=GRACE_SECONDS))
    pending = cosmos.query_first(cosmos.USERS, DELETING_QUERY, [{"name": "@deleting", "value": users.DELETING},
                                                                {"name": "@before", "value": before}], limit)
    for item in pending:
        erase_account(item["email"], erase)
    return len(pending)
