"""Start the local emulators: Azurite (Blob Storage) and cosmosdb-server (Cosmos DB).

Both come from the project's ``package.json`` (``npm ci``). Both keep data in memory, so a
fresh start is a fresh, consistent stack. Used by ``make run``/``make demo`` and by the tests,
which start their own pair on free ports.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
NODE_BIN = ROOT / "node_modules" / ".bin"

# Well-known, public development credentials of Azurite and the Cosmos DB emulator (not secrets).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
COSMOS_EMULATOR_KEY = "C2y6yDjf5/R+ob0N8A7Cgv30VRDJIWEHLM+4QDU5DE2nQ9nDuVTqobD4b8mGGyPMbIZnqyMsEcaGQy67XIw/Jw=="


class EmulatorError(RuntimeError):
    """An emulator could not be started (not installed, or not ready in time)."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def azurite_connection_string(port: int, host: str = "127.0.0.1") -> str:
    """The Blob Storage connection string for an Azurite blob endpoint on ``host:port``."""
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{port}/{AZURITE_ACCOUNT};"
    )


@dataclass
class Emulators:
    """Running emulators; :meth:`settings` gives the app settings that point at them."""

    blob_port: int
    cosmos_port: int
    processes: list[subprocess.Popen] = field(default_factory=list)

    @property
    def blob_connection_string(self) -> str:
        return azurite_connection_string(self.blob_port)

    @property
    def cosmos_endpoint(self) -> str:
        return f"http://127.0.0.1:{self.cosmos_port}/"

    def settings(self) -> dict[str, str]:
        """Environment overrides for the app (``STORAGE``, ``COSMOS_*``)."""
        return {
            "STORAGE": self.blob_connection_string,
            "COSMOS_ENDPOINT": self.cosmos_endpoint,
            "COSMOS_KEY": COSMOS_EMULATOR_KEY,
            "COSMOS_VERIFY_TLS": "false",
        }

    def stop_blob(self) -> None:
        """Stop only Azurite (tests use this to simulate a Blob Storage outage)."""
        _stop(self.processes[0])

    def stop_cosmos(self) -> None:
        """Stop only cosmosdb-server (tests use this to simulate a Cosmos DB outage)."""
        _stop(self.processes[1])

    def stop(self) -> None:
        for process in self.processes:
            _stop(process)


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _node_tool(name: str) -> str:
    tool = NODE_BIN / name
    if not tool.exists():
        raise EmulatorError(f"{tool} is missing: run 'npm ci' in {ROOT} (make does this)")
    return str(tool)


def _wait_http(url: str, process: subprocess.Popen, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EmulatorError(f"{name} exited with code {process.returncode} while starting")
        try:
            urllib.request.urlopen(url, timeout=1).close()
            return
        except urllib.error.HTTPError:
            return  # it answered: it is up
        except OSError:
            time.sleep(0.1)
    raise EmulatorError(f"{name} did not answer at {url} within {timeout:.0f}s")


def start_azurite(port: int, workdir: Path, quiet: bool = True) -> subprocess.Popen:
    """Start Azurite's blob service in memory on ``port``; returns once it answers."""
    workdir.mkdir(parents=True, exist_ok=True)
    args = [
        _node_tool("azurite-blob"),
        "--blobHost", "127.0.0.1", "--blobPort", str(port),
        "--inMemoryPersistence", "--skipApiVersionCheck", "--disableTelemetry", "--loose",
    ]
    if quiet:
        args.append("--silent")
    out = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(args, cwd=workdir, stdout=out, stderr=out)
    _wait_http(f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}?comp=list", process, "Azurite", 30)
    return process


def start_cosmos(port: int, quiet: bool = True) -> subprocess.Popen:
    """Start cosmosdb-server through ``devhost/cosmos_launcher.js`` on ``port``."""
    node = shutil.which("node")
    if node is None:
        raise EmulatorError("node is not installed; the emulators need Node.js >= 18")
    _node_tool("cosmosdb-server")
    out = subprocess.DEVNULL if quiet else None
    process = subprocess.Popen(
        [node, str(ROOT / "devhost" / "cosmos_launcher.js"), "--port", str(port)],
        cwd=ROOT, stdout=out, stderr=out,
    )
    _wait_http(f"http://127.0.0.1:{port}/", process, "cosmosdb-server", 30)
    return process


@contextlib.contextmanager
def running_emulators(workdir: Path | None = None, blob_port: int = 0, cosmos_port: int = 0,
                      quiet: bool = True) -> Iterator[Emulators]:
    """Start Azurite and cosmosdb-server (free ports when 0), yield them, stop them on exit."""
    workdir = workdir or ROOT / ".devhost" / f"azurite-{os.getpid()}"
    emulators = Emulators(blob_port or free_port(), cosmos_port or free_port())
    try:
        emulators.processes.append(start_azurite(emulators.blob_port, workdir, quiet))
        emulators.processes.append(start_cosmos(emulators.cosmos_port, quiet))
        yield emulators
    finally:
        emulators.stop()
