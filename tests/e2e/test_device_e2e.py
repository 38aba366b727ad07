"""The device flow end to end: the client (library and CLI) against devhost over real HTTP."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from client.device_api import ClientError, DeviceClient
from client.keys import generate_private_key, sign, upload_message
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e


def _new_device(live_app, key_type: str = "p256") -> DeviceClient:
    client = DeviceClient(live_app.base_url, "e2e-" + os.urandom(6).hex(), base64.urlsafe_b64encode(os.urandom(32)).decode(),
                          generate_private_key(key_type))
    client.register()
    client.attest()
    return client


def _wait_for_status(client: DeviceClient, count: int, timeout: float = 20) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        files = list(client.iter_files(page_size=2))
        if len(files) == count and all(f["status"] == "verified" for f in files):
            return files
        time.sleep(0.2)
    raise AssertionError(f"uploads not verified in time: {files}")


@pytest.mark.parametrize("key_type", ["p256", "p384", "ed25519", "rsa2048"])
def test_register_attest_upload_list_over_http(live_app, tmp_path, key_type):
    client = _new_device(live_app, key_type)
    small, big = tmp_path / "notes.md", tmp_path / "capture.bin"
    small.write_text("# field notes\n" * 50)
    big.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    results = [client.upload(path) for path in (small, big)]
    assert [r["sha256"] for r in results] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (small, big)]
    files = _wait_for_status(client, 2)
    assert [f["name"] for f in files] == ["capture.bin", "notes.md"]  # newest first, across pages
    assert files[0]["size"] == big.stat().st_size and files[1]["content_type"] == "text/markdown"


def test_one_challenge_used_concurrently_over_http_has_one_winner(live_app):
    client = _new_device(live_app)
    challenge = client.challenge()["challenge"]
    headers = {"deviceid": client.deviceid, "deviceToken": client._device_token}

    def attempt(i: int) -> int:
        data = b"concurrent %d" % i
        signature = base64.b64encode(sign(client.private_key, upload_message(challenge, hashlib.sha256(data).hexdigest())))
        return requests.post(f"{live_app.base_url}/upload-file", headers=headers, timeout=30,
                             data={"challenge": challenge, "signed_challenge": signature.decode()},
                             files={"file": ("c.txt", data, "text/plain")}).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(attempt, range(8)))
    assert sorted(statuses) == [200] + [401] * 7


def test_errors_are_json_with_code_and_message(live_app):
    response = requests.post(f"{live_app.base_url}/register-device", data=b"{broken", timeout=10,
                             headers={"content-type": "application/json"})
    assert response.status_code == 400 and response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == 400 and response.json()["message"] == "invalid_json"
    response = requests.get(f"{live_app.base_url}/register-device", timeout=10)
    assert response.status_code == 405 and "POST" in response.headers["allow"]
    assert requests.get(f"{live_app.base_url}/no/such/route", timeout=10).status_code == 404


def test_wrong_token_is_refused_and_health_reports_stores(live_app):
    client = _new_device(live_app)
    intruder = DeviceClient(live_app.base_url, client.deviceid, "x" * 40, client.private_key)
    with pytest.raises(ClientError) as refused:
        intruder.list_files()
    assert (refused.value.status, refused.value.message) == (403, "invalid_credentials")
    health = requests.get(f"{live_app.base_url}/health", timeout=10).json()
    assert (health["cosmos"]["status"], health["blob"]["status"]) == ("up", "up")


def test_cli_device_flow(live_app, tmp_path):
    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "client", "--home", str(tmp_path / "home"), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    upload = tmp_path / "readme-copy.md"
    upload.write_bytes((ROOT / "README.md").read_bytes())
    for args in (("device", "init", "--server", live_app.base_url), ("device", "register"), ("device", "attest"),
                 ("upload", "--no-progress", str(upload))):
        result = cli(*args)
        assert result.returncode == 0, result.stderr
    listing = cli("files", "--json")
    assert listing.returncode == 0 and "readme-copy.md" in listing.stdout
    again = cli("device", "register")  # the same credentials again, as after a lost answer: idempotent
    assert again.returncode == 0, again.stderr
    assert "deviceToken" not in again.stdout + again.stderr
