"""Device and account lifecycle end to end: the client CLI (``device rotate-key``, ``device
rotate-token``, ``user delete``, ``operator …``) against devhost over HTTP."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from client.device_api import ClientError, DeviceClient
from client.keys import generate_private_key
from client.operator_api import OperatorClient
from client.session_store import save_session, session_path
from client.state import load_private_key, load_state
from client.user_api import UserClient
from shared_code.accounts import otp
from tests.conftest import ROOT
from tests.support.accounts import new_email, strong_password
from tests.support.mail import latest_otp, otp_count

pytestmark = pytest.mark.e2e


def _cli(home, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "client", "--home", str(home), *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def _device(live_app, home) -> None:
    for step in (("device", "init", "--server", live_app.base_url), ("device", "register"), ("device", "attest")):
        result = _cli(home, *step)
        assert result.returncode == 0, result.stderr


def test_device_rotate_key_and_token_over_the_cli(live_app, tmp_path):
    home = tmp_path / "device"
    _device(live_app, home)
    before = load_state(home)
    old_key = load_private_key(before.key_path)
    result = _cli(home, "device", "rotate-key", "--key-type", "ed25519")
    assert result.returncode == 0 and "the old key is refused from now on" in result.stdout, result.stderr
    after = load_state(home)
    assert after.key_type == "ed25519" and not os.path.exists(after.key_path + ".next")
    (tmp_path / "a.txt").write_text("signed by the new key")
    assert _cli(home, "upload", str(tmp_path / "a.txt")).returncode == 0
    stale = DeviceClient(live_app.base_url, before.deviceid, before.device_token, old_key)
    with pytest.raises(ClientError) as refused:
        stale.upload(tmp_path / "a.txt")
    # the client names its key: the retired one is no longer the device's (without it: 401 invalid_signature)
    assert (refused.value.status, refused.value.message) == (403, "public_key_mismatch")

    result = _cli(home, "device", "rotate-token")
    assert result.returncode == 0 and "rotated the token" in result.stdout, result.stderr
    rotated = load_state(home)
    assert rotated.device_token != before.device_token and rotated.pending_device_token is None
    assert rotated.device_token not in result.stdout + result.stderr
    with pytest.raises(ClientError) as dead:
        stale.challenge()
    assert (dead.value.status, dead.value.message) == (403, "invalid_credentials")
    assert _cli(home, "device", "status").returncode == 0


def test_operator_cli_suspends_lists_dry_runs_and_revokes(live_app, tmp_path):
    home = tmp_path / "device"
    _device(live_app, home)
    deviceid = load_state(home).deviceid
    operator = ["--server", live_app.base_url]
    result = _cli(home, "operator", "devices", "suspend", deviceid, "--reason", "lost", *operator)
    assert result.returncode == 0 and json.loads(result.stdout)["device"]["status"] == "suspended", result.stderr
    refused = _cli(home, "device", "status")
    assert refused.returncode == 1 and "device_suspended (403)" in refused.stderr
    listed = _cli(home, "operator", "devices", "list", "--status", "suspended", *operator)
    assert listed.returncode == 0 and deviceid in listed.stdout
    assert _cli(home, "operator", "devices", "resume", deviceid, *operator).returncode == 0
    assert _cli(home, "device", "status").returncode == 0
    dry = _cli(home, "operator", "devices", "revoke", deviceid, "--reason", "stolen", "--dry-run", *operator)
    assert dry.returncode == 0 and json.loads(dry.stdout)["message"] == "revocation_dry_run", dry.stderr
    assert _cli(home, "device", "status").returncode == 0  # the dry run changed nothing
    result = _cli(home, "operator", "devices", "revoke", deviceid, "--reason", "stolen", *operator)
    assert result.returncode == 0 and json.loads(result.stdout)["device"]["status"] == "revoked", result.stderr
    refused = _cli(home, "device", "status")
    assert refused.returncode == 1 and "device_revoked (403)" in refused.stderr
    again = _cli(home, "operator", "devices", "suspend", deviceid, "--reason", "x", *operator)
    assert again.returncode == 1 and "device_revoked (409)" in again.stderr
    serial = _cli(home, "operator", "attestation", "revoke-intermediate", "0a:1b", "--dry-run", *operator)
    assert serial.returncode == 0 and json.loads(serial.stdout)["serial"] == "a1b", serial.stderr


def test_user_delete_over_the_cli_and_the_address_registers_again(live_app, mail_server, tmp_path):
    users, email, password = UserClient(live_app.base_url), new_email("leaving"), strong_password()
    users.register(email, password)
    users.verify_register(email, latest_otp(mail_server, email, otp.REGISTER))
    before = otp_count(mail_server, email, otp.LOGIN)
    users.login(email, password)
    sid = users.verify_login(email, latest_otp(mail_server, email, otp.LOGIN, after=before))["sid"]
    home = tmp_path / "user"
    save_session(live_app.base_url, email, sid, home)
    before = otp_count(mail_server, email, otp.DELETE)
    result = _cli(home, "user", "delete", "--yes", "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0 and "a deletion code was mailed" in result.stdout, result.stderr
    code = latest_otp(mail_server, email, otp.DELETE, after=before)
    result = _cli(home, "user", "delete", "--yes", "--password-stdin", "--otp", code, stdin=password + "\n")
    assert result.returncode == 0 and f"deleted the account {email}" in result.stdout, result.stderr
    assert not session_path(home).exists() and password not in result.stdout + result.stderr
    with pytest.raises(ClientError) as dead:
        users.request_deletion(sid, password)
    assert (dead.value.status, dead.value.message) == (403, "invalid_session")
    assert users.register(email, strong_password())["message"] == "registration_pending"  # free again
    refused = _cli(home, "user", "delete", "--yes", "--password-stdin", stdin=password + "\n")
    assert refused.returncode == 1


def test_operator_client_suspends_and_resumes_a_user(live_app, mail_server):
    users, email, password = UserClient(live_app.base_url), new_email("held"), strong_password()
    users.register(email, password)
    users.verify_register(email, latest_otp(mail_server, email, otp.REGISTER))
    operator = OperatorClient(live_app.base_url)
    assert operator.suspend_user(email, "review")["changed"] is True
    with pytest.raises(ClientError) as held:
        users.login(email, password)
    assert (held.value.status, held.value.message) == (403, "user_suspended")
    assert operator.resume_user(email)["changed"] is True
    assert users.login(email, password)["message"] == "login_otp_sent"
    client = DeviceClient(live_app.base_url, "e2e-" + os.urandom(6).hex(), base64.urlsafe_b64encode(os.urandom(32)).decode(),
                          generate_private_key())
    client.register()
    assert any(d["deviceid"] == client.deviceid for d in operator.iter_devices(trust_level="none"))
