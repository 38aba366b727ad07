"""The ``python -m client`` command line: parsing, device commands and error reporting."""

from __future__ import annotations

import base64
import os
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from client.cli import main
from client.state import load_state

from .conftest import Device, FakeServer

ROOT = Path(__file__).resolve().parents[3]


def run(home: Path, *argv: str) -> int:
    return main(["--home", str(home), *argv])


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# -- parsing ----------------------------------------------------------------------------------

def test_help_lists_every_command() -> None:
    result = subprocess.run([sys.executable, "-m", "client", "--help"], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 0
    assert result.stdout.startswith("usage: python -m client")
    for command in ("device", "upload", "files", "--home", "TRUSTGATE_HOME"):
        assert command in result.stdout


@pytest.mark.parametrize("argv, complaint", [
    ([], "required"),
    (["device", "init"], "--server"),
    (["device", "init", "--server", "ftp://example.com"], "http"),
    (["device", "init", "--server", "http://x", "--key-type", "dsa"], "invalid choice"),
    (["device", "init", "--server", "http://x", "--device-id", "..."], "only dots"),
    (["device", "init", "--server", "http://x", "--device-id", "bad id"], "--device-id"),
    (["files", "--page-size", "0"], "at least 1"),
    (["upload"], "FILE"),
])
def test_usage_errors_exit_2_with_a_message(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            argv: list[str], complaint: str) -> None:
    with pytest.raises(SystemExit) as exited:
        run(tmp_path, *argv)

    assert exited.value.code == 2
    assert complaint in capsys.readouterr().err
    assert not (tmp_path / "device.json").exists()


def test_home_is_accepted_after_the_subcommand_too(tmp_path: Path) -> None:
    assert main(["device", "init", "--server", "http://127.0.0.1:1", "--home", str(tmp_path)]) == 0

    assert load_state(tmp_path).server == "http://127.0.0.1:1"


def test_home_comes_from_trustgate_home_when_not_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTGATE_HOME", str(tmp_path / "env-home"))

    assert main(["device", "init", "--server", "http://127.0.0.1:1"]) == 0

    assert (tmp_path / "env-home" / "device.json").exists()


# -- device init / show -----------------------------------------------------------------------

@pytest.mark.parametrize("key_type", ["p256", "p384", "ed25519", "rsa2048"])
def test_init_saves_a_private_key_and_state_readable_only_by_the_owner(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], key_type: str) -> None:
    assert run(tmp_path, "device", "init", "--server", "http://127.0.0.1:7071/", "--key-type", key_type) == 0

    state = load_state(tmp_path)
    key_path = Path(state.key_path)
    output = capsys.readouterr()
    assert state.server == "http://127.0.0.1:7071"
    assert state.deviceid.startswith("dev-")
    assert state.key_type == key_type
    assert len(state.device_token) >= 32
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")
    assert mode(key_path) == 0o600
    assert mode(tmp_path / "device.json") == 0o600
    assert state.device_token not in output.out + output.err
    assert "PRIVATE KEY" not in output.out + output.err


def test_default_key_is_p256(tmp_path: Path) -> None:
    run(tmp_path, "device", "init", "--server", "http://x")

    key = serialization.load_pem_private_key(Path(load_state(tmp_path).key_path).read_bytes(), None)

    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"


def test_init_refuses_to_overwrite_a_device_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run(tmp_path, "device", "init", "--server", "http://x", "--device-id", "first")
    key_before = Path(load_state(tmp_path).key_path).read_bytes()
    capsys.readouterr()

    status = run(tmp_path, "device", "init", "--server", "http://x", "--device-id", "second")

    assert status == 1
    assert "--force" in capsys.readouterr().err
    assert load_state(tmp_path).deviceid == "first"
    assert Path(load_state(tmp_path).key_path).read_bytes() == key_before


def test_init_with_force_replaces_the_device(tmp_path: Path) -> None:
    run(tmp_path, "device", "init", "--server", "http://x", "--device-id", "first")
    old = load_state(tmp_path)
    key_before = Path(old.key_path).read_bytes()

    assert run(tmp_path, "device", "init", "--server", "http://x", "--device-id", "second", "--force") == 0

    new = load_state(tmp_path)
    assert new.deviceid == "second"
    assert new.device_token != old.device_token
    assert Path(new.key_path).read_bytes() != key_before


def test_show_prints_the_device_but_never_its_secrets(device: Device, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()

    assert run(device.home, "device", "show", "--public-key") == 0

    out = capsys.readouterr().out
    assert "dev-test" in out
    assert "p256" in out
    assert "SHA256:" in out
    assert "-----BEGIN PUBLIC KEY-----" in out
    assert device.state.device_token not in out
    assert "PRIVATE KEY" not in out


def test_commands_without_a_device_explain_how_to_create_one(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert run(tmp_path, "device", "register") == 1

    err = capsys.readouterr().err
    assert err.startswith("error: no device in")
    assert "device init" in err


# -- register / attest against the fake server -------------------------------------------------

def test_register_posts_id_and_token_and_records_it(device: Device, fake_server: FakeServer,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.routes[("POST", "/register-device")] = lambda r: (
        201, {"code": 201, "message": "device_registered", "deviceid": r.json()["deviceid"]})
    capsys.readouterr()

    assert run(device.home, "device", "register") == 0

    [request] = fake_server.received("POST", "/register-device")
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {"deviceid": "dev-test", "deviceToken": device.state.device_token}
    out = capsys.readouterr().out
    assert "registered device dev-test" in out
    assert device.state.device_token not in out
    assert load_state(device.home).registered_at is not None


def test_attest_signs_the_challenge_with_the_device_key(device: Device, fake_server: FakeServer) -> None:
    issued = fake_server.serve_challenges()
    fake_server.routes[("POST", "/attest-device")] = lambda r: (
        200, {"code": 200, "message": "device_attested", "key_type": "ec-p256"})

    assert run(device.home, "device", "attest") == 0

    [challenge_request] = fake_server.received("GET", "/api/challenge")
    [attest] = fake_server.received("POST", "/attest-device")
    body = attest.json()
    for request in (challenge_request, attest):
        assert request.headers["deviceid"] == "dev-test"
        assert request.headers["devicetoken"] == device.state.device_token
    assert body["challenge"] == issued[0]
    public_key = serialization.load_pem_public_key(body["public_key"].encode())
    public_key.verify(base64.b64decode(body["signature"], validate=True), f"attest:{issued[0]}".encode(),
                      ec.ECDSA(hashes.SHA256()))
    assert load_state(device.home).attested_at is not None


# -- error reporting --------------------------------------------------------------------------

def test_server_errors_print_message_status_and_detail(device: Device, fake_server: FakeServer,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.routes[("POST", "/register-device")] = lambda r: (
        409, {"code": 409, "message": "device_exists", "detail": "deviceid is already registered"})
    capsys.readouterr()

    status = run(device.home, "device", "register")

    assert status == 1
    assert capsys.readouterr().err == "error: device_exists (409): deviceid is already registered\n"
    assert load_state(device.home).registered_at is None


def test_error_without_detail_omits_the_colon(device: Device, fake_server: FakeServer,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.routes[("GET", "/api/challenge")] = lambda r: (403, {"code": 403, "message": "forbidden"})
    capsys.readouterr()

    assert run(device.home, "device", "attest") == 1

    assert capsys.readouterr().err == "error: forbidden (403)\n"


def test_non_json_error_bodies_are_reported_by_status(device: Device, fake_server: FakeServer,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.routes[("POST", "/register-device")] = lambda r: (502, b"<html>bad gateway</html>")
    capsys.readouterr()

    assert run(device.home, "device", "register") == 1

    assert capsys.readouterr().err.startswith("error: http_error (502)")


def test_control_characters_from_the_server_are_not_echoed(device: Device, fake_server: FakeServer,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    fake_server.routes[("POST", "/register-device")] = lambda r: (
        400, {"code": 400, "message": "bad\x1b[2J", "detail": "line\nbreak"})
    capsys.readouterr()

    run(device.home, "device", "register")

    err = capsys.readouterr().err
    assert "\x1b" not in err
    assert err == "error: bad?[2J (400): line?break\n"


def test_unreachable_server_gives_a_clear_message_not_a_traceback(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    run(tmp_path, "device", "init", "--server", f"http://127.0.0.1:{port}")
    capsys.readouterr()

    status = run(tmp_path, "device", "register")

    err = capsys.readouterr().err
    assert status == 1
    assert err.startswith(f"error: connection to http://127.0.0.1:{port} failed:")
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1


def test_module_entry_point_exits_1_on_errors(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "client", "--home", str(tmp_path), "files"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})

    assert result.returncode == 1
    assert result.stderr.startswith("error: no device in")
