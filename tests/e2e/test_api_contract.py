"""The API contract, proven by a fuzzer: schemathesis against the app served by devhost.

``docs/openapi.yaml`` is the contract. Schemathesis (a property-based API tester) reads it,
generates requests that are valid by it (positive data) and invalid by it (negative data), and
runs every one of its checks on each response: no 5xx, every status, header and body as the spec
documents, valid requests not refused, invalid ones not accepted, missing required headers and
credentials refused, undeclared methods answered 405. Four phases: the spec's examples, the
coverage phase (boundary values of every constraint), random fuzzing, and the stateful phase
(sequences that feed one response into the next request through the spec's links).

The app runs on the test emulators with real credentials made by the fixtures below: an
attested device, a logged-in user session, a message-gatherer JWT and a token-service bearer
token; Play Integrity in local mode with the test's own response keys (``/verify`` needs them).
The run configuration, and the one reason for each check excluded on an operation, is
``tests/e2e/schemathesis.toml``. Any finding fails the test, and the report is printed.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest
import requests

import function_app
from client.device_api import DeviceClient
from client.gather_api import GatherClient
from client.keys import generate_private_key
from client.user_api import UserClient
from devhost.mailbox import Mailbox
from devhost.server import RunningHost, serving
from devhost.test_authority import local_test_authority
from shared_code.platform import config
from tests.support.accounts import new_email, strong_password
from tests.support.play_integrity import LocalKeys, policy_settings

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "docs" / "openapi.yaml"
CONFIG = Path(__file__).with_name("schemathesis.toml")
SCHEMATHESIS = Path(sys.executable).with_name("schemathesis")
# The run must stay "a couple of minutes" on a 2-core CI machine; schemathesis stops generating
# new cases when its own budget (schemathesis.toml max-time) is spent, this is the hard stop.
RUN_TIMEOUT_SECONDS = 420
SEED = 20261121


@pytest.fixture(scope="module")
def contract_app(emulators, mail_server, tmp_path_factory) -> Iterator[RunningHost]:
    """The app on a free port, configured as the dev stack is: Play Integrity in local mode (the
    test's own response keys) and the dev test attestation authority for the hardware formats."""
    saved = dict(os.environ)
    # The fuzzer creates far more file keys than a user would: the quota is tested elsewhere.
    os.environ.update({**LocalKeys().settings(), **policy_settings(), "KMS_KEYS_PER_HOUR": "1000000"})
    os.environ.pop("ANDROID_ATTESTATION_STATUS_URL", None)  # the test authority serves its own status list
    try:
        with local_test_authority(tmp_path_factory.mktemp("contract")):
            config.reset_settings()
            with serving(function_app.app, port=0, blob_poll_seconds=0.5) as host:
                yield host
    finally:
        os.environ.clear()
        os.environ.update(saved)
        config.reset_settings()


def _user_session(base_url: str, mailbox: Mailbox) -> str:
    """Register and log in a fresh user through the API; returns the session id."""
    client, email, password = UserClient(base_url), new_email("contract"), strong_password()
    for start, finish, purpose in ((client.register, client.verify_register, "register"),
                                   (client.login, client.verify_login, "login")):
        before = mailbox.otp_count(email, purpose)
        start(email, password)
        answer = finish(email, mailbox.latest_otp(email, purpose, after=before))
    return answer["sid"]


@pytest.fixture(scope="module")
def credentials(contract_app: RunningHost, mail_server: Mailbox) -> dict[str, str]:
    """Real credentials for every security scheme of the spec, made through the API itself,
    as environment variables named in schemathesis.toml."""
    base = contract_app.base_url
    device_token = secrets.token_urlsafe(32)
    device = DeviceClient(base, "contract-" + secrets.token_hex(6), device_token, generate_private_key("p256"))
    device.register()
    device.attest()
    gather_token = GatherClient(base).login("contract-" + secrets.token_hex(4), strong_password())["token"]
    bearer = requests.post(f"{base}/generate_token", json={"ttl_seconds": 3600}, timeout=30).json()["token"]
    return {
        "TG_DEVICE_ID": device.deviceid,
        "TG_DEVICE_TOKEN": device_token,
        "TG_SESSION_ID": _user_session(base, mail_server),
        # /logout ends the session it is given: it gets one of its own, so the other operations keep theirs.
        "TG_LOGOUT_SESSION_ID": _user_session(base, mail_server),
        "TG_GATHER_TOKEN": gather_token,
        "TG_BEARER_TOKEN": bearer,
    }


def test_the_app_keeps_the_openapi_contract(contract_app: RunningHost, credentials: dict[str, str], tmp_path: Path):
    report = tmp_path / "report"
    command = [str(SCHEMATHESIS), "--config-file", str(CONFIG), "run", str(SPEC), "--url", contract_app.base_url,
               "--report", "json,junit", "--report-dir", str(report)]
    command += ["--seed", os.environ.get("TG_SCHEMATHESIS_SEED", str(SEED))]
    started = time.monotonic()
    result = subprocess.run(command, cwd=ROOT, env={**os.environ, **credentials, "NO_COLOR": "1"},
                            capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    elapsed = time.monotonic() - started
    summary = _summary(report, elapsed)
    print(summary)
    assert result.returncode == 0, f"schemathesis found problems ({summary}):\n{_readable(result.stdout)}\n{result.stderr[-3000:]}"


def _readable(output: str, width: int = 400) -> str:
    """Schemathesis' report with each line cut to ``width`` characters (a reproducing curl line can
    carry megabytes of generated data)."""
    lines = [line if len(line) <= width else line[:width] + f" …[{len(line) - width} more]" for line in output.splitlines()]
    return "\n".join(lines)[-30000:]


def _summary(report: Path, elapsed: float) -> str:
    """Operations, test cases and findings from schemathesis' JSON report, plus the run time."""
    files = sorted(report.glob("json-*.json"))
    if not files:
        return f"no report, {elapsed:.0f} s"
    run = json.loads(files[0].read_text(encoding="utf-8"))
    cases, failures = run["test_cases"], run["failures"]
    found = ", ".join(f"{f['code']} {f['title']} on {', '.join(f['operations'])}" for f in failures) or "no findings"
    return (f"schemathesis {run['schemathesis_version']}, seed {run['seed']}: {run['operations']['tested']} operations, "
            f"{cases['generated']} test cases, {cases['unique_failures']} unique failures, {cases['errored']} errored "
            f"({found}); {run['running_time']:.0f} s of generation, {elapsed:.0f} s in all")
