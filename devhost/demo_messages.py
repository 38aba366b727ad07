"""``make demo`` step for the message gatherer: send the lines of a real file, read them back.

Runs the non-interactive client exactly as a user would (``python -m client gather SERVER --user
NAME --password-stdin --file README.md``), then reads the messages back with ``--read --json``
and checks they are the file's non-empty lines, in order, each once; finally shows that the
token of a logged-out session is refused.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Callable

from devhost.__main__ import ROOT

DEMO_FILE = ROOT / "README.md"


def _gather(server: str, *args: str, password: str) -> str:
    command = [sys.executable, "-m", "client", "gather", server, *args]
    print(f"\n$ python -m client gather {server} {' '.join(args)}  (password on stdin)", flush=True)
    result = subprocess.run(command, cwd=ROOT, input=password + "\n", capture_output=True, text=True,
                            encoding="utf-8", timeout=300)
    print(result.stderr.rstrip(), flush=True)
    if result.returncode != 0:
        raise SystemExit(f"demo step failed: python -m client gather {' '.join(args)}")
    return result.stdout


def message_demo(server: str, check: Callable[[str, bool], None], source: Path = DEMO_FILE) -> None:
    """Send ``source``'s lines as messages through the CLI against ``server`` and verify the read-back.

    ``check(label, ok)`` records each result (the demo's report). Raises :class:`SystemExit`
    when a client command fails.
    """
    from client.device_api import ClientError
    from client.gather_api import GatherClient

    user, password = f"demo-{secrets.token_hex(4)}", secrets.token_urlsafe(16)
    expected = [line for line in source.read_text(encoding="utf-8").splitlines() if line]
    _gather(server, "--user", user, "--password-stdin", "--file", str(source), password=password)
    output = _gather(server, "--user", user, "--password-stdin", "--read", "--json", password=password)
    stored = [json.loads(line) for line in output.splitlines()]
    print(f"  read back {len(stored)} message(s); first: {stored[0]['message'] if stored else '-'!r}", flush=True)
    check(f"{source.name}: {len(expected)} lines sent and read back in order, each once",
          [item["message"] for item in stored] == expected and len({item["id"] for item in stored}) == len(stored))
    client = GatherClient(server)
    client.login(user, password)
    token = client._token
    client.logout()
    client._token = token
    try:
        client.send("after logout")
        check("a logged-out token is refused", False)
    except ClientError as error:
        check(f"a logged-out token is refused ({error.status} {error.message})", error.status == 401)
