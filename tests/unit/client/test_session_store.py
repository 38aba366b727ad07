"""session.json: the contract with the files CLI ({server, email, sid}, mode 0600) and pending_otp.json."""

import json
import os
import stat

import pytest

from client.session_store import (
    PendingOtp,
    clear_pending,
    delete_session,
    load_pending,
    load_session,
    save_pending,
    save_session,
    session_path,
)
from client.state import StateError


def test_session_round_trip_is_private_and_has_exactly_the_contract_fields(tmp_path):
    home = tmp_path / "home"
    path = save_session("http://localhost:7071/", "alice@example.org", "s" * 43, home)
    assert path == session_path(home) == home / "session.json"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600 and stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert json.loads(path.read_text()) == {"server": "http://localhost:7071", "email": "alice@example.org", "sid": "s" * 43}
    saved = load_session(home)
    assert (saved.server, saved.email, saved.sid) == ("http://localhost:7071", "alice@example.org", "s" * 43)
    assert "s" * 43 not in repr(saved)
    assert delete_session(home) and not path.exists() and not delete_session(home)


def test_missing_or_malformed_session_is_a_clear_state_error(tmp_path):
    with pytest.raises(StateError, match="not logged in"):
        load_session(tmp_path)
    (tmp_path / "session.json").write_text('{"server": "http://x", "email": "a@b.c"}')
    with pytest.raises(StateError, match="sid"):
        load_session(tmp_path)
    (tmp_path / "session.json").write_text("{nope")
    with pytest.raises(StateError, match="not valid JSON"):
        load_session(tmp_path)


def test_pending_step_round_trip(tmp_path):
    with pytest.raises(StateError, match="nothing waits for a code"):
        load_pending(tmp_path)
    save_pending(PendingOtp("http://x", "bob@example.org", "login"), tmp_path)
    assert load_pending(tmp_path) == PendingOtp("http://x", "bob@example.org", "login")
    clear_pending(tmp_path)
    clear_pending(tmp_path)
    with pytest.raises(StateError):
        load_pending(tmp_path)
