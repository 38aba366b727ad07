"""Local device state: round trip, file modes, where it lives."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from client.keys import generate_private_key, public_key_pem
from client.state import (
    DeviceState,
    StateError,
    load_private_key,
    load_state,
    resolve_home,
    save_private_key,
    save_state,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def make_state(home: Path) -> DeviceState:
    return DeviceState(server="http://127.0.0.1:7071", deviceid="dev-1", device_token="t" * 43,
                       key_path=str(home / "device_key.pem"), key_type="p256")


def test_state_round_trips_with_mode_0600(tmp_path: Path) -> None:
    home = tmp_path / "home"
    state = make_state(home)
    state.registered_at = "2025-01-01T00:00:00Z"

    path = save_state(state, home)
    loaded = load_state(home)

    assert loaded == state
    assert path == home / "device.json"
    assert mode(path) == 0o600
    assert mode(home) == 0o700


def test_state_json_uses_the_api_field_names(tmp_path: Path) -> None:
    save_state(make_state(tmp_path), tmp_path)

    document = json.loads((tmp_path / "device.json").read_text())

    assert document["deviceid"] == "dev-1"
    assert document["deviceToken"] == "t" * 43
    assert document["server"] == "http://127.0.0.1:7071"
    assert document["key_path"] == str(tmp_path / "device_key.pem")


def test_saving_again_replaces_the_state_and_keeps_mode_0600(tmp_path: Path) -> None:
    state = make_state(tmp_path)
    save_state(state, tmp_path)
    state.attested_at = "2025-01-02T00:00:00Z"

    save_state(state, tmp_path)

    assert load_state(tmp_path).attested_at == "2025-01-02T00:00:00Z"
    assert mode(tmp_path / "device.json") == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["device.json"]  # no temp files left


def test_private_key_round_trips_with_mode_0600(tmp_path: Path) -> None:
    key = generate_private_key("ed25519")

    path = save_private_key(key, tmp_path / "device_key.pem")

    assert mode(path) == 0o600
    assert public_key_pem(load_private_key(path)) == public_key_pem(key)


def test_repr_never_shows_the_token(tmp_path: Path) -> None:
    assert "t" * 43 not in repr(make_state(tmp_path))


def test_missing_state_says_how_to_create_a_device(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="device init"):
        load_state(tmp_path)


def test_malformed_state_names_the_problem(tmp_path: Path) -> None:
    (tmp_path / "device.json").write_text(json.dumps({"server": "http://x", "deviceid": "d"}))

    with pytest.raises(StateError, match="deviceToken"):
        load_state(tmp_path)


def test_missing_key_file_is_a_state_error(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="cannot read the device key"):
        load_private_key(tmp_path / "absent.pem")


def test_home_is_the_argument_then_env_then_dot_trustgate(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    monkeypatch.delenv("TRUSTGATE_HOME", raising=False)
    assert resolve_home(None) == tmp_path / "user" / ".trustgate"

    monkeypatch.setenv("TRUSTGATE_HOME", str(tmp_path / "env"))
    assert resolve_home(None) == tmp_path / "env"

    assert resolve_home(tmp_path / "arg") == tmp_path / "arg"


def test_app_attest_state_round_trips_and_bad_counters_read_as_zero():
    from client.state import DeviceState

    state = DeviceState("http://x", "dev-1", "t" * 40, "/k.pem", "p256", attestation_format="apple-appattest",
                        app_id="TEAM.app", assertion_counter=7)
    assert DeviceState.from_json(state.to_json()) == state
    assert DeviceState.from_json({**state.to_json(), "assertion_counter": True}).assertion_counter == 0
    assert DeviceState.from_json({**state.to_json(), "assertion_counter": -3}).assertion_counter == 0
