"""Accounts end to end: UserClient and the ``user`` CLI against devhost over HTTP, codes read from
the mail the app sent to a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest
import requests

from client.device_api import ClientError
from client.session_store import load_session, session_path
from client.user_api import UserClient
from shared_code.accounts import otp
from tests.conftest import ROOT
from tests.support.accounts import new_email, strong_password
from tests.support.mail import latest_otp, otp_count

pytestmark = pytest.mark.e2e


def test_user_client_seed_flow_over_http(live_app, mail_server):
    users = UserClient(live_app.base_url)
    email, password = new_email("e2e"), strong_password()
    assert users.register(email, password)["message"] == "registration_pending"
    assert users.verify_register(email, latest_otp(mail_server, email, otp.REGISTER))["message"] == "registration_success"

    with pytest.raises(ClientError) as refused:
        users.login(email, password + "x")
    with pytest.raises(ClientError) as unknown:
        users.login(new_email("nobody"), password)
    assert (refused.value.status, refused.value.message, refused.value.detail) == \
        (unknown.value.status, unknown.value.message, unknown.value.detail) == (401, "login_failed", "wrong email or password")

    assert users.login(email, password)["message"] == "login_otp_sent"
    sid = users.verify_login(email, latest_otp(mail_server, email, otp.LOGIN))["sid"]
    assert users.logout(sid)["message"] == "logout_success"
    with pytest.raises(ClientError) as dead:
        users.logout(sid)
    assert (dead.value.status, dead.value.message) == (403, "invalid_session")


def test_sid_is_never_accepted_or_echoed_in_the_url(live_app, mail_server):
    response = requests.post(f"{live_app.base_url}/logout?sid={'a' * 43}", timeout=10)
    assert response.status_code == 403 and response.json()["message"] == "invalid_session"


def _cli(home, *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "client", "--home", str(home), *args], cwd=ROOT, input=stdin,
                          capture_output=True, text=True, timeout=120)


def test_user_cli_register_verify_login_verify_logout(live_app, mail_server, tmp_path):
    home, email, password = tmp_path / "home", new_email("cli"), strong_password()
    server = ["--server", live_app.base_url, "--email", email]

    result = _cli(home, "user", "register", *server, "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    assert "next: python -m client user verify" in result.stdout
    result = _cli(home, "user", "verify", "--otp", latest_otp(mail_server, email, otp.REGISTER))
    assert result.returncode == 0 and f"registered {email}" in result.stdout, result.stderr

    before = otp_count(mail_server, email, otp.LOGIN)
    result = _cli(home, "user", "login", *server, "--password-stdin", stdin=password + "\n")
    assert result.returncode == 0, result.stderr
    result = _cli(home, "user", "verify", "--otp", latest_otp(mail_server, email, otp.LOGIN, after=before))
    assert result.returncode == 0, result.stderr
    saved = load_session(home)
    assert (saved.server, saved.email, len(saved.sid)) == (live_app.base_url, email, 43)
    assert stat.S_IMODE(os.stat(session_path(home)).st_mode) == 0o600
    assert saved.sid not in result.stdout + result.stderr and password not in result.stdout + result.stderr

    result = _cli(home, "user", "logout")
    assert result.returncode == 0 and "logged out" in result.stdout, result.stderr
    assert not session_path(home).exists()
    assert UserClient(live_app.base_url).session.post(f"{live_app.base_url}/logout", headers={"sid": saved.sid},
                                                     timeout=10).status_code == 403


def test_user_cli_reports_refusals(live_app, mail_server, tmp_path):
    home = tmp_path / "home"
    weak = _cli(home, "user", "register", "--server", live_app.base_url, "--email", new_email(),
                "--password-stdin", stdin="password123\n")
    assert weak.returncode == 1 and "weak_password (400)" in weak.stderr
    wrong = _cli(home, "user", "login", "--server", live_app.base_url, "--email", new_email(),
                 "--password-stdin", stdin=strong_password() + "\n")
    assert wrong.returncode == 1 and "login_failed (401)" in wrong.stderr
    nothing = _cli(home, "user", "verify", "--otp", "123456")
    assert nothing.returncode == 1 and "nothing waits for a code" in nothing.stderr
    logged_out = _cli(home, "user", "logout")
    assert logged_out.returncode == 1 and "not logged in" in logged_out.stderr
