"""Play Integrity verification under storage timeouts (the fault harness, :mod:`tests.support.faults`).

The verdict's write to the device record stalls and lands after the caller got 503. The retry
with the same token is a replay: it says exactly that (``token_unused``) and must not replace the
verdict that landed with its own failed one.
"""

from __future__ import annotations

import pytest

from shared_code.devices.integrity import verdicts
from shared_code.platform import cosmos
from tests.integration.devices.test_integrity_flow import shown, verify
from tests.support.devices import DeviceActor
from tests.support.faults import cosmos_op
from tests.support.play_integrity import LocalKeys, configure, payload, policy_settings  # noqa: F401 - configure is a fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def keys(faults, configure) -> LocalKeys:
    local = LocalKeys()
    configure({**policy_settings(), **local.settings()})
    return local


@pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
@pytest.mark.parametrize("kind", ["classic", "standard"])
def test_a_retried_verify_after_a_stalled_verdict_write_says_why_and_keeps_the_landed_verdict(faults, keys, kind, after_response):
    device = DeviceActor()
    device.register()
    challenge = device.challenge()
    if kind == "classic":
        token, sent = keys.seal(payload(nonce=challenge)), None
    else:
        token, sent = keys.seal(payload(request_hash=verdicts.standard_request_hash(device.deviceid, challenge))), challenge
    with faults.cosmos.freeze(cosmos_op("replace", cosmos.DEVICES.name), after_response=after_response):
        assert verify(device, token, sent)[0] == 503
    status, body = verify(device, token, sent)
    # the first try used the challenge up, and the token
    expected = ["nonce", "token_unused"] if kind == "classic" else ["request_hash", "token_unused"]
    assert (status, body["message"], body["failed_checks"]) == (200, "integrity_failed", expected)
    landed = shown(device)["integrity"]
    assert (landed["valid"], landed["failed_checks"]) == (True, [])  # the verdict of the 503'd request stands
