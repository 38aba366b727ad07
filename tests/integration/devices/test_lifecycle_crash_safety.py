"""Device lifecycle under storage timeouts (the fault harness, :mod:`tests.support.faults`).

A timeout is not a rollback: a stalled write answers 503 and lands afterwards, or lands and its
answer is lost. A revocation stalled at its mark, or part-way through its cascade, leaves the device
revoked (nothing it holds works) and a retry completes the cascade; a rotation that lands after its
timeout is recognised by the retry.
"""

from __future__ import annotations

import hashlib
import os
import secrets

import pytest
from azure.functions.timer import TimerRequest
from cryptography.hazmat.primitives import serialization

from shared_code.devices import lifecycle, registry
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.timeutil import to_iso, utc_now
from tests.support.devices import HANDLERS, DeviceActor, call, json_body, new_key, public_pem, sign
from tests.support.direct_uploads import grant, stage_and_commit
from tests.support.faults import blob_op, cosmos_op
from tests.support.lifecycle import device_calls, device_state, revoke

pytestmark = pytest.mark.integration

LANDINGS = pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
DEVICE_WRITE = cosmos_op("replace", cosmos.DEVICES.name)


@pytest.fixture
def device(faults) -> DeviceActor:
    """An attested device with two stored files, a pending direct upload with staged bytes, two live
    challenges and a Play Integrity verdict, on the fault stack."""
    actor = DeviceActor()
    assert actor.register()[0] == 201 and actor.attest()[0] == 200
    for data in (b"first", b"second"):
        assert actor.upload(data)[0] == 200
    data = os.urandom(1024)
    pending = grant(actor, data)
    stage_and_commit(pending["upload_url"], data, pending["block_size"])
    actor.challenge(), actor.challenge()
    registry.record_integrity(actor.record(), {"valid": True, "verdict": {}, "failed_checks": [], "checked_at": to_iso(utc_now())})
    return actor


def refused_everywhere(actor: DeviceActor) -> bool:
    return set(device_calls(actor)) == {(403, "device_revoked")}


def cascaded(actor: DeviceActor) -> bool:
    state = device_state(actor.deviceid)
    return (state["challenges"] == [] and state["staged"] == [] and state["slots"] == []
            and sorted(f["status"] for f in state["files"]) == ["cancelled", "device_revoked", "device_revoked"]
            and lifecycle.revocation_complete(actor.record()) and "integrity" not in actor.record())


@LANDINGS
def test_a_revocation_whose_mark_lands_after_its_timeout_revokes_and_the_retry_completes(faults, device, after_response):
    with faults.cosmos.freeze(DEVICE_WRITE, after_response=after_response):
        status, body = revoke(device.deviceid)
    assert (status, body["message"]) == (503, "service_unavailable")
    assert refused_everywhere(device)  # the mark landed: nothing the device holds works
    status, body = revoke(device.deviceid)
    assert (status, body["already_revoked"]) == (200, True)
    assert cascaded(device)


def test_a_revocation_stalled_in_its_cascade_answers_503_and_the_retry_completes_it(faults, device):
    with faults.cosmos.freeze(cosmos_op("delete", cosmos.CHALLENGES.name)):
        assert revoke(device.deviceid)[0] == 503
    assert refused_everywhere(device) and not lifecycle.revocation_complete(device.record())
    status, body = revoke(device.deviceid)
    assert (status, body["already_revoked"], body["summary"]["files_marked"]) == (200, True, 2)
    assert cascaded(device)


def test_the_purge_timer_completes_a_revocation_nobody_retried(faults, device, monkeypatch):
    with faults.cosmos.freeze(cosmos_op("delete", cosmos.CHALLENGES.name)):
        assert revoke(device.deviceid)[0] == 503
    original = lifecycle.complete_interrupted
    monkeypatch.setattr(lifecycle, "complete_interrupted", lambda: original(limit=100, grace_seconds=0))
    HANDLERS["purge_expired_items"](timer=TimerRequest(past_due=False))
    assert cascaded(device)


def test_a_staged_blob_that_cannot_be_deleted_leaves_the_grant_for_the_retry(faults, device):
    with faults.blob.freeze(blob_op("delete", get_settings().upload_staging_container)):
        assert revoke(device.deviceid)[0] == 503
    assert refused_everywhere(device)
    assert revoke(device.deviceid)[0] == 200
    assert cascaded(device)


# --- rotation -----------------------------------------------------------------------------------

def rotation_body(actor: DeviceActor, new) -> dict:
    challenge = actor.challenge()
    spki = new.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    message = f"rotate:{challenge}:{hashlib.sha256(spki).hexdigest()}".encode()
    return {"challenge": challenge, "new_public_key": public_pem(new), "signature_by_old_key": sign(actor.key, message),
            "signature_by_new_key": sign(new, message)}


def post(actor: DeviceActor, name: str, route: str, document: dict) -> tuple[int, dict]:
    headers, body = json_body(document)
    return call(name, "POST", route, headers={**actor.headers, **headers}, body=body)


@LANDINGS
def test_a_key_rotation_that_lands_after_its_timeout_is_recognised_by_the_retry(faults, device, after_response):
    new = new_key()
    with faults.cosmos.freeze(DEVICE_WRITE, after_response=after_response):
        assert post(device, "rotate_device_key", "rotate-device-key", rotation_body(device, new))[0] == 503
    status, body = post(device, "rotate_device_key", "rotate-device-key", rotation_body(device, new))
    assert (status, body["message"]) == (409, "key_already_current")
    assert device.record()["public_key"] == public_pem(new)


@LANDINGS
def test_a_token_rotation_that_lands_after_its_timeout_leaves_the_new_token_in_force(faults, device, after_response):
    new = secrets.token_urlsafe(32)
    challenge = device.challenge()
    document = {"new_device_token": new, "challenge": challenge,
                "signature": sign(device.key, f"rotate-token:{challenge}:{hashlib.sha256(new.encode()).hexdigest()}".encode())}
    with faults.cosmos.freeze(DEVICE_WRITE, after_response=after_response):
        assert post(device, "rotate_device_token", "rotate-device-token", document)[0] == 503
    assert call("get_device", "GET", "api/device", headers=device.headers)[1]["message"] == "invalid_credentials"
    device.token = new
    assert call("get_device", "GET", "api/device", headers=device.headers)[0] == 200
