"""The local stack the benchmarks run against, started and stopped by the benchmark itself.

- :func:`emulators`: Azurite + cosmosdb-server on free ports (``devhost.emulators``), their
  endpoints put into ``os.environ`` and the database/containers provisioned, as ``make demo`` does.
- :func:`in_process_devhost`: ``devhost.server.serving(function_app.app)`` on a free port in this
  process (the latency benchmark).
- :func:`devhost_subprocess`: ``python -m devhost run`` as a separate process with
  ``DEVHOST_EMULATORS=0`` and the emulators' settings in its environment, so its RSS can be
  measured alone (the upload benchmark). Ready once ``GET /health`` answers 200.

Blob-trigger polling is set to :data:`BLOB_POLL_SECONDS` (10 min) in both hosts: the watcher
scans once at start-up, then not again during the run, so the trigger re-reading uploads does
not mix into the request latencies or the RSS peaks measured.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import psutil
import requests

from devhost.__main__ import ROOT, use_example_settings_if_needed

BLOB_POLL_SECONDS = 600.0


@dataclass(frozen=True)
class StackSettings:
    """Where the emulators listen (also exported to ``os.environ``)."""

    env: dict[str, str]
    pids: dict[str, int] = field(default_factory=dict)  # "azurite" / "cosmos" -> emulator process id

    @property
    def storage_connection_string(self) -> str:
        return self.env["STORAGE"]


@contextlib.contextmanager
def emulators() -> Iterator[StackSettings]:
    """Start Azurite and cosmosdb-server, export their settings, provision, yield, stop them."""
    use_example_settings_if_needed()
    from devhost.emulators import running_emulators
    from devhost.provision import provision

    with running_emulators(quiet=True) as running:
        settings = running.settings()
        os.environ.update(settings)
        _forget_clients()
        provision()
        yield StackSettings(dict(settings), {"azurite": running.processes[0].pid, "cosmos": running.processes[1].pid})
    _forget_clients()


def _forget_clients() -> None:
    """Drop the app's cached settings, clients and audit state: a section may start a new emulator pair."""
    from shared_code.audit import sequencer
    from shared_code.platform import blobs, cosmos
    from shared_code.platform.config import reset_settings

    reset_settings()
    cosmos.reset_client()
    blobs.reset_client()
    sequencer.reset_cache()


@contextlib.contextmanager
def environment(overrides: dict[str, str]) -> Iterator[None]:
    """Set ``overrides`` in ``os.environ`` (a devhost subprocess inherits them) and restore the
    previous values afterwards; the app's cached settings are dropped on the way in and out."""
    from shared_code.platform.config import reset_settings

    saved = {name: os.environ.get(name) for name in overrides}
    os.environ.update(overrides)
    reset_settings()
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        reset_settings()


@contextlib.contextmanager
def in_process_devhost() -> Iterator[str]:
    """Serve ``function_app.app`` in this process on a free port; yields the base URL."""
    import function_app
    from devhost.emulators import free_port
    from devhost.server import serving

    with serving(function_app.app, port=free_port(), blob_poll_seconds=BLOB_POLL_SECONDS) as host:
        yield host.base_url


@dataclass(frozen=True)
class DevhostProcess:
    base_url: str
    process: psutil.Process


@contextlib.contextmanager
def devhost_subprocess(stack: StackSettings, log_path: Path, timeout: float = 60,
                       blob_poll_seconds: float = BLOB_POLL_SECONDS) -> Iterator[DevhostProcess]:
    """Run ``python -m devhost run`` against the already running emulators; yields once healthy.
    ``blob_poll_seconds`` defaults to :data:`BLOB_POLL_SECONDS` (triggers quiet); the direct-upload
    benchmark polls often, since its verification runs in the staging trigger.

    Its output goes to ``log_path`` (shown if it fails to start). Stopped with SIGTERM, which
    ``devhost run`` handles by shutting down cleanly.
    """
    from devhost.emulators import free_port

    port = free_port()
    env = {
        **os.environ, **stack.env,
        "DEVHOST_EMULATORS": "0", "PORT": str(port), "DEVHOST_HOST": "127.0.0.1",
        "DEVHOST_BLOB_POLL_SECONDS": str(blob_poll_seconds),
    }
    base_url = f"http://127.0.0.1:{port}"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen([sys.executable, "-m", "devhost", "run"], cwd=ROOT, env=env,
                                 stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(base_url, popen, log_path, timeout)
        yield DevhostProcess(base_url, psutil.Process(popen.pid))
    finally:
        if popen.poll() is None:
            popen.send_signal(signal.SIGTERM)
            try:
                popen.wait(timeout=20)
            except subprocess.TimeoutExpired:
                popen.kill()
                popen.wait()


def _wait_healthy(base_url: str, popen: subprocess.Popen, log_path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if popen.poll() is not None:
            raise RuntimeError(f"devhost exited with {popen.returncode} while starting:\n{_tail(log_path)}")
        try:
            if requests.get(base_url + "/health", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"devhost at {base_url} was not healthy within {timeout:.0f} s:\n{_tail(log_path)}")


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
