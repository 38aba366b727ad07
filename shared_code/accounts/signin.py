"""Login and logout of secure-file-store accounts (seed 002): password, then an emailed code,
then a session.

``login`` answers ``login_failed`` for an unknown email and for a wrong password alike, after the
same work (one point read and one bcrypt check, against a dummy hash when there is no user), so
neither the answer nor the time says whether an account exists (OWASP Authentication Cheat
Sheet). ``verify_login`` turns a good login code into a session id
(:mod:`shared_code.accounts.sessions`).

Throttling: ``login`` counts an attempt on the email, known or not, before the password is
checked (:mod:`shared_code.platform.login_throttle`), and refuses an address whose OTP mail limit
is spent before the check too (:mod:`shared_code.accounts.throttle`), so a 429 says nothing about
the password or the account.

Audit log (:mod:`shared_code.audit.trail`, before each takes effect; a failed log write is 503):
``user_logged_in`` (the session's ``session_ref``) before the session is created, ``user_logged_out``
before it is ended, ``login_locked_out`` once per window when the account throttle refuses.
"""

from __future__ import annotations

from shared_code.accounts import otp, sessions, throttle, users
from shared_code.accounts.users import get_user, normalize_email
from shared_code.audit import trail
from shared_code.platform import login_throttle
from shared_code.platform.errors import Forbidden, Unauthorized
from shared_code.platform.passwords import verify_password


def login(email: str, password: str) -> str:
    """Check ``email`` and ``password``, then mail a login code; returns the normalised email.

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``login_failed`` for an unknown email and a
    wrong password alike, :class:`~shared_code.platform.errors.BadRequest` ``invalid_email`` for an address
    that is not one, :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (429, before
    the password is checked) over ``LOGIN_RATE_LIMIT_PER_MINUTE`` attempts on the email or when
    its mail limit is spent, :class:`~shared_code.platform.errors.ServiceUnavailable` on an outage.
    """
    address = normalize_email(email)
    login_throttle.admit_attempt("login", address, on_lockout=trail.record_lockout)
    throttle.check_mail(address)
    user = get_user(address)
    if not verify_password(password, user.get("password_hash") if user else None):
        raise Unauthorized("login_failed", "wrong email or password")
    _require_active(user)
    otp.send_code(address, otp.LOGIN)
    return address


def _require_active(user: dict) -> None:
    """After the password matched: a suspended account is told so (403 ``user_suspended``); one
    being deleted answers like an unknown email (401 ``login_failed``)."""
    if users.status(user) == users.SUSPENDED:
        raise Forbidden("user_suspended", "this account is suspended by an operator")
    if users.status(user) != users.ACTIVE:
        raise Unauthorized("login_failed", "wrong email or password")


def verify_login(email: str, code: str) -> str:
    """Exchange a login ``code`` of ``email`` for a new session id (returned, 43 chars).

    Steps (:func:`shared_code.accounts.otp.verify`), and what a caller sees if the process dies
    or a storage call times out right after each: (1) a try counted; (2) the session created:
    the caller got 503 and never the session id, so the session is unusable (it expires after
    the idle timeout) and the code still works: the retry gets a new session; (3) the code
    marked used: a retry with the same code answers ``otp_used`` (the session id of the failed
    request is lost; log in again). Before (3) lands, a retry always succeeds. An account being
    deleted answers ``otp_failed``, a suspended one ``user_suspended``, and the code stays usable.

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``otp_failed`` / ``otp_used``,
    :class:`~shared_code.platform.errors.Forbidden` ``user_suspended``,
    :class:`~shared_code.platform.errors.ServiceUnavailable` when the audit log or Cosmos DB is
    down (then no session exists and the code still works).
    """
    address = normalize_email(email)
    started: list[str] = []

    def start_session(_payload: dict) -> None:
        user = get_user(address)
        if user is None or users.status(user) == users.DELETING:
            raise Unauthorized("otp_failed", "the code is wrong, expired or already used")
        _require_active(user)
        sid = sessions.new_session_id()
        trail.record("user_logged_in", actor=trail.user_actor(address), objects={"session_ref": sessions.session_ref(sid)})
        started.append(sessions.create_session(address, user, sid=sid))

    try:
        otp.verify(address, otp.LOGIN, code, complete=start_session)
    except Unauthorized:
        for sid in started:  # a concurrent try used the code first: this session was never handed out
            sessions.end_session(sid)
        raise
    return started[0]


def logout(sid: str | None) -> None:
    """End the session ``sid`` at once, after recording ``user_logged_out``.

    Raises :class:`~shared_code.platform.errors.Forbidden` ``invalid_session`` when there is no such
    session, :class:`~shared_code.platform.errors.ServiceUnavailable` when the audit log or Cosmos
    DB is down (then the session stays live; a retry ends it).
    """
    def audited(email: str) -> None:
        trail.record("user_logged_out", actor=trail.user_actor(email), objects={"session_ref": sessions.session_ref(sid)})

    if not sessions.end_session(sid, before=audited):
        raise Forbidden("invalid_session", "a live session id is required in the sid header")
