"""``make demo``: the device flow end to end on a fresh local stack, on real files.

Starts Azurite and cosmosdb-server, serves the app on a free port, then drives the device CLI
(``python -m client``) exactly as a user would: create a device key, register, attest, upload
files of the repository plus a generated multi-megabyte capture through ``/upload-file``, and a
larger recording straight to Blob Storage (a direct upload: grant, block upload to a
create+write SAS, verification by the staging trigger), and list them. It waits for the blob
triggers to verify every upload's digest, shows that a replayed upload is answered with the same
file (crash-safe retries) while its challenge serves no other upload, that a wrong device token
is refused, runs the message gatherer (:mod:`devhost.demo_messages`) and the encrypted
file store (:mod:`devhost.demo_files`: two users, a shared file, a revoked grant), hardware
attestation (:mod:`devhost.demo_attestation`), the token service with the purge timer
(:mod:`devhost.demo_tokens`) and the device and account lifecycle (:mod:`devhost.demo_lifecycle`),
prints a summary and stops everything. Exit code 0 only if every check held.
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
from devhost.demo_lifecycle import lifecycle_demo
from devhost.demo_messages import message_demo
from devhost.demo_tokens import DEMO_PURGE_SCHEDULE, token_demo

DEMO_FILES = ("README.md", "host.json", "local.settings.example.json")
CAPTURE_BYTES = 8 * 1024 * 1024  # the client's direct-upload threshold: still /upload-file
RECORDING_BYTES = 48 * 1024 * 1024  # above it: a direct upload
SETTLED = {"verified", "digest_mismatch", "size_mismatch", "expired"}


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
        if len(files) >= expected and all(f["status"] in SETTLED for f in files):
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

    headers = {"deviceid": client.deviceid, "deviceToken": device_token}

    def upload(data: bytes, challenge: str, signed_for: bytes) -> tuple[int, str | None]:
        signature = base64.b64encode(sign(client.private_key, upload_message(challenge, hashlib.sha256(signed_for).hexdigest())))
        response = client.session.post(f"{client.server_url}/upload-file", headers=headers, timeout=30,
                                       data={"challenge": challenge, "signed_challenge": signature.decode()},
                                       files={"file": ("probe.txt", data, "text/plain")})
        return response.status_code, (response.json().get("file_id") if response.status_code == 200 else None)

    challenge = client.challenge()["challenge"]
    first, replay = upload(b"replay probe", challenge, b"replay probe"), upload(b"replay probe", challenge, b"replay probe")
    _check(f"a replayed signed upload is the same upload, not a second file (first {first[0]}, replay {replay[0]}, "
           "same file id)", first[0] == replay[0] == 200 and first[1] == replay[1], results)
    other = upload(b"other bytes", challenge, b"other bytes")
    _check(f"the used challenge is refused for any other upload ({other[0]})", other[0] == 401, results)
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
        recording = Path(tmp) / "field-recording.bin"
        with recording.open("wb") as out:
            for _ in range(RECORDING_BYTES // (1 << 20)):
                out.write(os.urandom(1 << 20))
        paths = [ROOT / name for name in DEMO_FILES] + [capture, recording]
        with serving(function_app.app, port=free_port(), blob_poll_seconds=0.5) as host:
            print(f"TrustGate devhost on {host.base_url}", flush=True)
            _cli(home, "device", "init", "--server", host.base_url)
            _cli(home, "device", "register")
            _cli(home, "device", "attest")
            uploaded = _cli(home, "upload", *map(str, paths))  # the recording goes direct (above --direct-threshold)
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
            went_direct = any(line.startswith(f"uploaded {recording}: verified upload_id=") for line in uploaded.splitlines())
            _check(f"{recording.name} ({RECORDING_BYTES >> 20} MiB) went straight to Blob Storage through a create+write "
                   "SAS and was verified by the staging trigger", went_direct, results)
            _security_checks(client, state.device_token, results)
            message_demo(host.base_url, lambda label, ok: _check(label, ok, results))
            file_store_demo(host.base_url, mailbox, Path(tmp) / "users", lambda label, ok: _check(label, ok, results))
            # devices: hardware attestation (simulated devices under the dev test authority)
            attestation_demo(host.base_url, Path(tmp) / "attestation", lambda label, ok: _check(label, ok, results))
            token_demo(host, lambda label, ok: _check(label, ok, results))
            # device and account lifecycle
            lifecycle_demo(host.base_url, mailbox, Path(tmp) / "lifecycle", lambda label, ok: _check(label, ok, results))
    passed = sum(results)
    print(f"\ndemo: {passed} passed, {len(results) - passed} failed", flush=True)
    return 0 if results and all(results) else 1
