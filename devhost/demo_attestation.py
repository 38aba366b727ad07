"""``make demo`` step for hardware attestation, with ``MIN_DEVICE_TRUST=hardware``.

Drives the client as a user would, under the dev stack's test authority (:mod:`devhost.test_authority`):
a simulated Android (TEE) device and an Apple App Attest device attest and upload; a software
key is refused (``403 attestation_required``); a chain extended with a forged attestation
certificate is refused with its ``failed_checks``; a replayed App Attest assertion is refused;
a minted Play Integrity verdict passes and a weak one fails; and the offline operator tool
inspects a real Pixel chain from the test fixtures.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Callable, Iterator

from devhost.__main__ import ROOT

PIXEL_CHAIN = ROOT / "tests" / "fixtures" / "attestation" / "android" / "caiman" / "sdk36" / "TEE_EC_RKP.pem"
PIXEL_ARGS = ("--at", "2025-09-26T15:31:20Z", "--challenge", b"d688d763-6118-4ca6-94b2-e6cd9ed7e4e4".hex(),
              "--package", "com.google.android.attestation", "--signer-digest", "EDk47kU35Z6O55L2VFBPuDRvxrNG0LvEQV/DOfz8jsE=",
              "--strict-boot")


def _run(label: str, *command: str) -> subprocess.CompletedProcess[str]:
    print(f"\n$ {label}", flush=True)
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    print((result.stdout + result.stderr).rstrip(), flush=True)
    return result


def _client(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(f"python -m client {' '.join(args)}", sys.executable, "-m", "client", "--home", str(home), *args)


@contextlib.contextmanager
def _setting(name: str, value: str) -> Iterator[None]:
    from shared_code.platform.config import reset_settings

    saved = os.environ.get(name)
    os.environ[name] = value
    reset_settings()
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = saved
        reset_settings()


def _device(home: Path, server: str, *attest: str) -> bool:
    return all(_client(home, *step).returncode == 0 for step in
               (("device", "init", "--server", server), ("device", "register"), ("device", "attest", *attest)))


def attestation_demo(server: str, workdir: Path, check: Callable[[str, bool], None]) -> None:
    """Run the step against ``server``; reports each outcome through ``check(label, ok)``."""
    print("\n== hardware attestation (MIN_DEVICE_TRUST=hardware, dev test authority) ==", flush=True)
    with _setting("MIN_DEVICE_TRUST", "hardware"):
        android, apple, laptop = workdir / "android", workdir / "iphone", workdir / "laptop"
        ok = _device(android, server, "--format", "android-key", "--simulate")
        check("a simulated Android TEE device attests (trust level hardware) and uploads",
              ok and _client(android, "upload", "README.md", "--no-progress").returncode == 0)
        ok = _device(apple, server, "--format", "apple-appattest", "--simulate")
        check("a simulated App Attest device attests and uploads with assertions",
              ok and _client(apple, "upload", "host.json", "README.md", "--no-progress").returncode == 0)
        _device(laptop, server)
        refused = _client(laptop, "upload", "README.md", "--no-progress")
        check("a software-key device is refused (403 attestation_required)",
              refused.returncode == 1 and "attestation_required (403)" in refused.stderr)
        check("a chain extended with a forged attestation certificate is refused", _forged_chain(android))
        check("a replayed App Attest assertion is refused (401 assertion_replayed)", _replayed_assertion(apple, workdir))
        _integrity(android, check)
    inspected = _run("python -m shared_code.devices.attestation inspect tests/fixtures/.../caiman/sdk36/TEE_EC_RKP.pem ...",
                     sys.executable, "-m", "shared_code.devices.attestation", "inspect", str(PIXEL_CHAIN), *PIXEL_ARGS)
    check("inspect verifies a real Pixel 9 Pro chain offline at its time",
          inspected.returncode == 0 and "trust level: hardware" in inspected.stdout)


def _forged_chain(home: Path) -> bool:
    from client import attestation_sim as sim
    from client.device_api import ClientError, DeviceClient, b64
    from client.state import load_state

    client = DeviceClient.from_state(load_state(home))
    challenge = client.challenge()["challenge"]
    raw = base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))
    authority = sim.TestAuthority.load(sim.default_authority_dir())
    genuine = sim.android_chain(authority, client.private_key, raw, package=sim.DEV_PACKAGE, signature_digest=sim.DEV_SIGNER_DIGEST)
    forged = sim.extended_chain(genuine, client.private_key, raw, package=sim.DEV_PACKAGE, signature_digest=sim.DEV_SIGNER_DIGEST)
    print("\n$ POST /attest-device (a genuine chain extended with a forged attestation certificate)", flush=True)
    try:
        client.attest_evidence({"format": "android-key", "challenge": challenge, "certificate_chain": [b64(c) for c in forged]})
    except ClientError as error:
        print(f"refused: {error.status} {error.message}: {error.detail}", flush=True)
        return error.status == 401 and error.message == "attestation_failed" and "extension_misplaced" in error.detail
    return False


def _replayed_assertion(home: Path, workdir: Path) -> bool:
    from client.device_api import ClientError, DeviceClient
    from client.state import load_state

    client = DeviceClient.from_state(load_state(home))
    probe = workdir / "probe.txt"
    probe.write_text("replay probe\n")
    client.app_attest.counter -= 1  # reuse the counter of the last accepted assertion
    print(f"\n$ upload with an assertion reusing counter {client.app_attest.counter + 1}", flush=True)
    try:
        client.upload(probe)
    except ClientError as error:
        print(f"refused: {error.status} {error.message}: {error.detail}", flush=True)
        return error.status == 401 and error.message == "assertion_replayed"
    return False


def _integrity(home: Path, check: Callable[[str, bool], None]) -> None:
    nonce = _client(home, "integrity", "nonce").stdout.strip()
    token = _client(home, "integrity", "mint", f"--nonce={nonce}").stdout.strip()  # a challenge may start with "-"
    token_file = home / "token.txt"
    token_file.write_text(token)
    check("a minted Play Integrity verdict passes /verify",
          _client(home, "integrity", "verify", "--token-file", str(token_file)).returncode == 0)
    nonce = _client(home, "integrity", "nonce").stdout.strip()
    token_file.write_text(_client(home, "integrity", "mint", f"--nonce={nonce}", "--device-verdict", "BASIC").stdout.strip())
    weak = _client(home, "integrity", "verify", "--token-file", str(token_file))
    check("a verdict below PLAY_INTEGRITY_MIN_DEVICE fails with device_integrity",
          weak.returncode == 1 and "device_integrity" in weak.stdout)
