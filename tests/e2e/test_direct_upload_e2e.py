"""Direct uploads end to end: the CLI sends a 200 MB file straight to Azurite through devhost's
grant, is interrupted once, resumes, and devhost's staging trigger verifies it."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError

from shared_code.platform import blobs
from shared_code.platform.config import get_settings
from tests.conftest import ROOT

pytestmark = pytest.mark.e2e

SIZE = 200 * 1000 * 1000


def _write_random(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for offset in range(0, size, 4 * 1024 * 1024):
            chunk = os.urandom(min(4 * 1024 * 1024, size - offset))
            digest.update(chunk)
            handle.write(chunk)
    return digest.hexdigest()


def _staged_block_count(home: Path, deviceid: str) -> int:
    pending = list((home / "uploads").glob("*.json"))
    if not pending:
        return 0
    upload_id = json.loads(pending[0].read_text())["upload_id"]
    client = blobs.container_client(get_settings().upload_staging_container).get_blob_client(f"{deviceid}/{upload_id}")
    try:
        return len(client.get_block_list("uncommitted")[1])
    except ResourceNotFoundError:
        return 0


def test_cli_direct_upload_interrupted_once_then_resumed(live_app, tmp_path):
    home = tmp_path / "home"

    def cli(*args: str, **kwargs) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "client", "--home", str(home), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=600, **kwargs)

    for args in (("device", "init", "--server", live_app.base_url), ("device", "register"), ("device", "attest")):
        assert cli(*args).returncode == 0
    deviceid = json.loads((home / "device.json").read_text())["deviceid"]
    capture = tmp_path / "capture.bin"
    sha256 = _write_random(capture, SIZE)

    # First attempt: interrupted (SIGINT, as Ctrl-C) once a few blocks are staged.
    first = subprocess.Popen([sys.executable, "-m", "client", "--home", str(home), "upload", "--no-progress",
                              "--concurrency", "2", str(capture)], cwd=ROOT, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 180
    while _staged_block_count(home, deviceid) < 3:
        assert first.poll() is None, first.communicate()
        assert time.monotonic() < deadline, "no blocks staged in time"
        time.sleep(0.05)
    first.send_signal(signal.SIGINT)
    _, err = first.communicate(timeout=120)
    assert first.returncode == 130, err
    staged_before = _staged_block_count(home, deviceid)
    total_blocks = -(-SIZE // (8 * 1024 * 1024))
    assert 3 <= staged_before < total_blocks

    # Second attempt: resumes the same grant, sends only the rest, waits for the verdict.
    second = cli("upload", "--no-progress", "--resume", str(capture))
    assert second.returncode == 0, second.stderr
    assert "verified" in second.stdout and sha256 in second.stdout
    skipped = int(second.stdout.split("already staged ")[1].split(";")[0])
    sent = int(second.stdout.split("blocks sent ")[1].split(",")[0])
    assert skipped >= staged_before and sent + skipped == total_blocks
    assert not list((home / "uploads").glob("*.json"))  # nothing left to resume

    listing = json.loads(cli("files", "--json").stdout)["files"]
    entry = next(f for f in listing if f["name"] == "capture.bin")
    assert entry["status"] == "verified" and entry["size"] == SIZE and entry["sha256"] == sha256
    copy = blobs.container_client(get_settings().uploads_container).get_blob_client(f"{deviceid}/{entry['file_id']}")
    digest = hashlib.sha256()
    for chunk in copy.download_blob().chunks():
        digest.update(chunk)
    assert digest.hexdigest() == sha256
    copy.delete_blob()  # keep the session's in-memory Azurite small


def test_an_upload_url_expiring_mid_transfer_is_renewed_and_the_upload_goes_on(live_app, tmp_path, monkeypatch):
    import base64
    from datetime import timedelta

    from client.device_api import DeviceClient
    from client.direct_upload import direct_upload
    from client.keys import generate_private_key
    from shared_code.platform import blob_access
    from shared_code.platform.timeutil import utc_now

    device = DeviceClient(live_app.base_url, "e2e-" + os.urandom(6).hex(), base64.urlsafe_b64encode(os.urandom(32)).decode(),
                          generate_private_key("p256"))
    device.register()
    device.attest()
    real_upload_url = blob_access.upload_url
    issued = []

    def first_url_short_lived(container, blob_name, expires_at):
        issued.append(expires_at)
        if len(issued) == 1:
            expires_at = utc_now() + timedelta(seconds=2)
        return real_upload_url(container, blob_name, expires_at)

    monkeypatch.setattr(blob_access, "upload_url", first_url_short_lived)
    path = tmp_path / "slow-link.bin"
    sha256 = _write_random(path, 5 * 8 * 1024 * 1024)
    result = direct_upload(device, path, home=tmp_path / "home", concurrency=1,
                           progress=lambda done, total: time.sleep(0.7))  # a slow link: the first URL expires
    assert result.state["state"] == "verified" and result.state["sha256"] == sha256
    assert len(issued) >= 2 and (result.blocks_sent, result.blocks_skipped) == (5, 0)
