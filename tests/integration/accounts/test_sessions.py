"""Sessions against cosmosdb-server: hash-only storage, idle and absolute timeouts, logout."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from shared_code.accounts import sessions
from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import Forbidden
from tests.support.accounts import new_email
from tests.support.files import register_user

pytestmark = pytest.mark.integration


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch, emulators):
    """A controllable clock for the sessions module."""
    now = {"t": datetime.now(timezone.utc)}
    monkeypatch.setattr(sessions, "utc_now", lambda: now["t"])
    return now


def _registered(name: str) -> str:
    """A registered address (sessions belong to an account)."""
    email = new_email(name)
    register_user(email)
    return email


def test_session_is_stored_only_as_a_hash_and_resolves_to_its_owner(clock) -> None:
    sid = sessions.create_session(email := _registered("alice"))

    stored = cosmos.read_item(cosmos.SESSIONS, sha256_hex(sid), sha256_hex(sid))
    assert stored is not None and sid not in str(stored)
    assert sessions.require_session(sid).email == email


def test_idle_session_dies_and_use_extends_it(clock) -> None:
    sid = sessions.create_session(email := _registered("bob"))
    clock["t"] += timedelta(minutes=29)
    sessions.require_session(sid)  # use keeps it alive
    clock["t"] += timedelta(minutes=29)
    assert sessions.require_session(sid).email == email
    clock["t"] += timedelta(minutes=31)
    with pytest.raises(Forbidden) as caught:
        sessions.require_session(sid)
    assert caught.value.message == "invalid_session"


def test_absolute_timeout_ends_even_a_busy_session(clock) -> None:
    sid = sessions.create_session(email := _registered("carol"))
    for _ in range(47):  # used every 15 minutes for 11 h 45 min: still alive
        clock["t"] += timedelta(minutes=15)
        sessions.require_session(sid)
    clock["t"] += timedelta(minutes=15)  # 12 h after login
    with pytest.raises(Forbidden):
        sessions.require_session(sid)


def test_logout_kills_the_session_at_once(clock) -> None:
    sid = sessions.create_session(email := _registered("dave"))
    assert sessions.end_session(sid) is True
    with pytest.raises(Forbidden):
        sessions.require_session(sid)
    assert sessions.end_session(sid) is False


@pytest.mark.parametrize("sid", [None, "", "short", "x" * 43 + "y", "é" * 43])
def test_missing_or_malformed_sid_is_invalid_session(sid, emulators) -> None:
    with pytest.raises(Forbidden) as caught:
        sessions.require_session(sid)
    assert caught.value.message == "invalid_session"
