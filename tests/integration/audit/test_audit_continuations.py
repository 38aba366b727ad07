"""GET /api/device/audit continuations are sealed for the device (as the files' and messages' are):
a raw Cosmos continuation, an altered token or another device's is 400 invalid_continuation.

Before, the Cosmos continuation was handed out and taken back as it was, so a client could make
one up and have it parsed by the query.
"""

from __future__ import annotations

import pytest

from shared_code.audit import checkpoints, trail
from shared_code.platform.continuation import unseal
from shared_code.platform.config import get_settings
from tests.support.devices import DeviceActor, call

pytestmark = pytest.mark.integration


def _page(device: DeviceActor, continuation: str | None = None) -> tuple[int, dict]:
    params = {"page_size": "1", **({"continuation": continuation} if continuation else {})}
    return call("device_audit", "GET", "api/device/audit", headers=device.headers, params=params)


def test_device_audit_pages_follow_only_sealed_continuations(emulators):
    device, other = DeviceActor(), DeviceActor()
    for actor in (device, other):
        assert actor.register()[0] == 201
        trail.record("test_appended", actor=trail.device_actor(actor.deviceid), objects={"device": actor.deviceid})
    checkpoints.publish()
    status, first = _page(device)
    assert status == 200 and len(first["entries"]) == 1 and first["continuation"]
    status, second = _page(device, first["continuation"])
    assert status == 200 and second["entries"][0]["index"] > first["entries"][0]["index"]

    raw = unseal(get_settings().device_token_pepper, "audit-continuation", f"device:{device.deviceid}",
                 first["continuation"])
    payload, _, mac = first["continuation"].partition(".")
    for forged in (raw, f"{payload}.{'0' * 64}", first["continuation"][:-1]):
        status, body = _page(device, forged)
        assert (status, body["message"]) == (400, "invalid_continuation"), forged
    status, body = _page(other, first["continuation"])
    assert (status, body["message"]) == (400, "invalid_continuation")
