"""``make demo`` step for the device and account lifecycle, through the CLI.

A device uploads, rotates its key (the old key is refused afterwards) and its token (the old token
is refused at once). The operator suspends it (its calls answer 403 ``device_suspended``),
resumes it, dry-runs a revocation (nothing changes), revokes it (403 ``device_revoked``, and the id
cannot be registered again). A user with a stored file deletes the account with the mailed code;
the file's key is destroyed and the address can register again.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Callable

from devhost.__main__ import ROOT
from devhost.demo_files import _client, _sign_in
from devhost.mailbox import Mailbox

Check = Callable[[str, bool], None]


def lifecycle_demo(server: str, mailbox: Mailbox, workdir: Path, check: Check) -> None:
    """Run the lifecycle step against ``server``; ``check(label, ok)`` records each result."""
    print("\n== device and account lifecycle ==", flush=True)
    home = workdir / "device"
    operator = ["--server", server]
    for step in (("device", "init", "--server", server), ("device", "register"), ("device", "attest"),
                 ("upload", str(ROOT / "host.json"))):
        _client(home, *step)
    from client.device_api import DeviceClient
    from client.state import load_state

    before = DeviceClient.from_state(load_state(home))
    _client(home, "device", "rotate-key", "--key-type", "ed25519")
    refused = _refusal(lambda: before.upload(ROOT / "host.json"))
    check(f"after the key rotation the old key is refused ({refused})", refused.startswith("403") or refused.startswith("401"))
    check("the new key uploads", _client(home, "upload", str(ROOT / "host.json"), expect_ok=False).returncode == 0)
    _client(home, "device", "rotate-token")
    refused = _refusal(before.challenge)
    check(f"after the token rotation the old token is refused ({refused})", refused == "403 invalid_credentials")
    deviceid = load_state(home).deviceid
    _client(home, "operator", "devices", "suspend", deviceid, "--reason", "reported lost", *operator)
    status = _client(home, "device", "status", expect_ok=False)
    check("a suspended device is refused (403 device_suspended)", "device_suspended (403)" in status.stderr)
    _client(home, "operator", "devices", "resume", deviceid, *operator)
    dry = json.loads(_client(home, "operator", "devices", "revoke", deviceid, "--reason", "stolen", "--dry-run",
                             *operator).stdout)
    still = _client(home, "device", "status", expect_ok=False)
    check(f"a revocation dry run reports {dry['summary']} and changes nothing", still.returncode == 0)
    _client(home, "operator", "devices", "revoke", deviceid, "--reason", "stolen", *operator)
    status = _client(home, "device", "status", expect_ok=False)
    again = _client(home, "device", "register", expect_ok=False)
    check("a revoked device is refused (403 device_revoked) and its id cannot be registered again",
          "device_revoked (403)" in status.stderr and "device_exists (409)" in again.stderr)

    user_home, email = workdir / "leaving", f"leaving-{secrets.token_hex(4)}@example.org"
    password = _sign_in(server, mailbox, user_home, email)
    _client(user_home, "files", "put", str(ROOT / "host.json"))
    before = mailbox.otp_count(email, "delete")
    _client(user_home, "user", "delete", "--yes", "--password-stdin", stdin=password + "\n")
    code = mailbox.latest_otp(email, "delete", after=before)
    deleted = _client(user_home, "user", "delete", "--yes", "--password-stdin", "--otp", code, stdin=password + "\n")
    check("the account is deleted with its key and file", "keys_destroyed\": 1" in deleted.stdout)
    again = _client(user_home, "user", "register", "--server", server, "--email", email, "--password-stdin",
                    stdin=secrets.token_urlsafe(18) + "\n", expect_ok=False)
    check("the address can register again", again.returncode == 0)


def _refusal(call: Callable[[], object]) -> str:
    from client.device_api import ClientError

    try:
        call()
    except ClientError as error:
        return f"{error.status} {error.message}"
    return "accepted"
