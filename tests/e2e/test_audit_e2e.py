"""The audit verifier CLI against devhost over HTTP: a device registers and gets a token issued,
the operator verifies the whole log (``python -m client audit verify --server``), exports it and
verifies the files, and the device lists its own entries with their proofs."""

from __future__ import annotations

import requests
import pytest

from client.cli import main
from shared_code.audit import checkpoints

pytestmark = pytest.mark.e2e


def test_operator_and_device_verify_the_log_over_http(live_app, tmp_path, capsys):
    home = str(tmp_path / "home")
    server = live_app.base_url
    assert main(["device", "init", "--server", server, "--home", home]) == 0
    assert main(["device", "register", "--home", home]) == 0
    assert requests.post(f"{server}/generate_token", json={"ttl_seconds": 60}, timeout=30).status_code == 200
    checkpoints.publish()  # what the timer does every minute
    info = requests.get(f"{server}/audit/checkpoint", timeout=30).json()
    key = info["verifier_key"]  # in production: pinned from a trusted channel, not from the server
    capsys.readouterr()

    assert main(["audit", "verify", "--server", server, "--key", key, "--home", home]) == 0
    assert "first use" in capsys.readouterr().out
    assert requests.post(f"{server}/generate_token", json={"ttl_seconds": 60}, timeout=30).status_code == 200
    checkpoints.publish()
    assert main(["audit", "verify", "--server", server, "--key", key, "--home", home]) == 0
    assert f"consistent with the trusted size {info['size']}" in capsys.readouterr().out

    exported = tmp_path / "export"
    assert main(["audit", "export", "--server", server, "--out", str(exported)]) == 0
    assert main(["audit", "verify", "--from", str(exported), "--key", key, "--home", str(tmp_path / "offline")]) == 0
    capsys.readouterr()

    assert main(["audit", "device", "--key", key, "--home", home]) == 0
    out = capsys.readouterr().out
    assert "device_registered  granted" in out and "1 entries, each proven" in out
