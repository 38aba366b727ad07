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
