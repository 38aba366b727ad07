"""``make demo``: the device flow end to end on a fresh local stack, on real files.

Starts Azurite and cosmosdb-server, serves the app on a free port, then drives the device CLI
(``python -m client``) exactly as a user would: create a device key, register, attest, upload
files of the repository plus a generated multi-megabyte capture, and list them. It waits for the
blob trigger to verify every upload's digest, shows that a replayed challenge and a wrong device
token are refused, runs the message gatherer (:mod:`devhost.demo_messages`) and the encrypted
file store (:mod:`devhost.demo_files`: two users, a shared file, a revoked grant), hardware
attestation (:mod:`devhost.demo_attestation`) and the token service with the purge timer
(:mod:`devhost.demo_tokens`), prints a summary and stops everything. Exit code 0 only if every check held.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from devhost.__main__ import ROOT, local_emulators, use_example_settings_if_needed
from devhost.demo_attestation import attestation_demo
from devhost.demo_files import file_store_demo
from devhost.demo_messages import message_demo
from devhost.demo_tokens import DEMO_PURGE_SCHEDULE, token_demo

DEMO_FILES = ("README.md", "host.json", "local.settings.example.json")
CAPTURE_BYTES = 8 * 1024 * 1024


def _cli(home: Path, *args: str) -> str:
    command = [sys.executable, "-m", "client", "--home", str(home), *args]
    print(f"\n$ python -m client {' '.join(args)}", flush=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    print(result.stdout.rstrip(), flush=True)
    if result.returncode != 0:
        print(result.stderr.rstrip(), file=sys.stderr, flush=True)
        raise SystemExit(f"demo step failed: python -m client {' '.join(args)}")
    return result.stdout


def _wait_verified(client, expected: int, timeout: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout
    files: list[dict] = []
    while time.monotonic() < deadline:
        files = list(client.iter_files())
        if len(files) >= expected and all(f["status"] != "uploaded" for f in files):
            break
        time.sleep(0.5)
    return files


def _check(label: str, ok: bool, results: list[bool]) -> None:
    results.append(ok)
    print(f"  [{'ok' if ok else 'FAIL'}] {label}", flush=True)


def _security_checks(client, device_token: str, results: list[bool]) -> None:
    import base64

    from client.device_api import ClientError, DeviceClient
    from client.keys import sign, upload_message

    data = b"replay probe"
    challenge = client.challenge()["challenge"]
    signature = base64.b64encode(sign(client.private_key, upload_message(challenge, hashlib.sha256(data).hexdigest())))
    headers = {"deviceid": client.deviceid, "deviceToken": device_token}
    form = {"challenge": challenge, "signed_challenge": signature.decode()}
    statuses = [
        client.session.post(f"{client.server_url}/upload-file", headers=headers, data=form,
                            files={"file": ("probe.txt", data, "text/plain")}, timeout=30).status_code
        for _ in range(2)
    ]
    _check(f"a replayed challenge is refused (first use {statuses[0]}, replay {statuses[1]})", statuses == [200, 401], results)
    intruder = DeviceClient(client.server_url, client.deviceid, "wrong-token-" + "x" * 32, client.private_key)
    try:
        intruder.list_files()
        _check("a wrong device token is refused", False, results)
    except ClientError as error:
        _check(f"a wrong device token is refused ({error.status} {error.message})", error.status == 403, results)


def main() -> int:
    """Run the demo; returns the process exit code."""
    use_example_settings_if_needed()
    results: list[bool] = []
    with tempfile.TemporaryDirectory(prefix="trustgate-demo-") as tmp, local_emulators(mailbox_required=True) as mailbox:
        from devhost.emulators import free_port
        from devhost.provision import provision
        from devhost.server import serving
        from shared_code.platform.config import reset_settings

        os.environ["PURGE_SCHEDULE"] = DEMO_PURGE_SCHEDULE  # the token step shows the purge timer at work
        reset_settings()
        provision()
        import function_app

        home, capture = Path(tmp) / "device", Path(tmp) / "sensor-capture.bin"
        capture.write_bytes(os.urandom(CAPTURE_BYTES))
        paths = [ROOT / name for name in DEMO_FILES] + [capture]
        with serving(function_app.app, port=free_port(), blob_poll_seconds=0.5) as host:
            print(f"TrustGate devhost on {host.base_url}", flush=True)
            _cli(home, "device", "init", "--server", host.base_url)
            _cli(home, "device", "register")
            _cli(home, "device", "attest")
            _cli(home, "upload", *map(str, paths))
            from client.device_api import DeviceClient
            from client.state import load_state

            state = load_state(home)
            client = DeviceClient.from_state(state)
            print("\nwaiting for the blob trigger to verify every upload ...", flush=True)
            files = _wait_verified(client, len(paths))
            _cli(home, "files")
            print("\nchecks:", flush=True)
            local = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}
            by_name = {f["name"]: f for f in files}
            for name, digest in local.items():
                entry = by_name.get(name, {})
                _check(f"{name}: stored digest matches the local file, status {entry.get('status')}",
                       entry.get("sha256") == digest and entry.get("status") == "verified", results)
            _security_checks(client, state.device_token, results)
            message_demo(host.base_url, lambda label, ok: _check(label, ok, results))
            file_store_demo(host.base_url, mailbox, Path(tmp) / "users", lambda label, ok: _check(label, ok, results))
            # devices: hardware attestation (simulated devices under the dev test authority)
            attestation_demo(host.base_url, Path(tmp) / "attestation", lambda label, ok: _check(label, ok, results))
            token_demo(host, lambda label, ok: _check(label, ok, results))
    passed = sum(results)
    print(f"\ndemo: {passed} passed, {len(results) - passed} failed", flush=True)
    return 0 if results and all(results) else 1
