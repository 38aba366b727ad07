"""``python -m devhost run`` as a developer runs it, against the session's emulators."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from devhost.emulators import free_port
from devhost.server import ROOT

pytestmark = pytest.mark.integration


def test_run_serves_the_app_lists_its_functions_and_stops_on_ctrl_c(emulators):
    port = free_port()
    env = {**os.environ, "DEVHOST_EMULATORS": "0", "PORT": str(port), "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "devhost", "run"], cwd=ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                break
            lines.append(line)
            if line.strip().startswith("health"):
                break
        assert any(f"devhost on http://127.0.0.1:{port}" in line for line in lines), "".join(lines)
        assert any(line.split()[:3] == ["health", "http", "GET"] for line in lines), "".join(lines)
        response = requests.get(f"http://127.0.0.1:{port}/health", timeout=10)
        assert response.status_code == 200 and response.json()["message"] == "healthy"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
