"""Device uploads and attestation under storage timeouts (the fault harness, :mod:`tests.support.faults`).

A stalled step answers 503 while its write lands afterwards. After recovery (the blob trigger run
on every stored blob, as the host would) no listed file lacks its bytes, the same signed request
retried gets the same file, and a challenge never authorises a second action.
"""

from __future__ import annotations

import pytest

from shared_code.devices import challenges, files
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import Unauthorized
from tests.support.devices import DeviceActor, call, json_body, new_key, public_pem, run_blob_trigger, sign
from tests.support.faults import blob_op, cosmos_op

pytestmark = pytest.mark.integration

DATA = b"bytes that must not be orphaned " * 64


@pytest.fixture
def device(faults) -> DeviceActor:
    actor = DeviceActor()
    actor.register()
    actor.attest()
    return actor


def _upload(request: tuple[dict, bytes]) -> tuple[int, dict]:
    headers, body = request
    return call("upload_file", "POST", "upload-file", headers=headers, body=body)


def _recovered_listing(actor: DeviceActor) -> list[dict]:
    """The device's listing once the blob trigger saw every stored blob; asserts none is an orphan."""
    container = blobs.container_client(get_settings().uploads_container)
    stored = {blob.name for blob in container.list_blobs(name_starts_with=f"{actor.deviceid}/")}
    for name in stored:
        run_blob_trigger(name)
    listed, _ = files.list_files(actor.deviceid, 50, None)
    assert {f"{actor.deviceid}/{f['file_id']}" for f in listed} == stored, "a listed file without bytes, or bytes never listed"
    return listed


@pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
def test_a_stalled_file_record_leaves_no_orphan_and_the_retry_returns_the_same_file(faults, device, after_response):
    request = device.upload_request(DATA)
    with faults.cosmos.freeze(cosmos_op("create", cosmos.FILES.name), after_response=after_response):
        status, body = _upload(request)
    assert (status, body["message"]) == (503, "service_unavailable")

    status, body = _upload(request)  # the same signed request again
    assert (status, body["message"]) == (200, "file_uploaded")
    listed = _recovered_listing(device)
    assert [(f["file_id"], f["sha256"], f["status"]) for f in listed] == [(body["file_id"], body["sha256"], "verified")]
    assert _upload(request)[1]["file_id"] == body["file_id"]  # and again: still that one file


def test_a_stalled_blob_write_keeps_the_challenge_for_the_same_signed_request(faults, device):
    request = device.upload_request(DATA)
    with faults.blob.freeze(blob_op("put_blob", get_settings().uploads_container)):
        status, body = _upload(request)
    assert (status, body["message"]) == (503, "service_unavailable")

    status, body = _upload(request)
    assert (status, body["message"]) == (200, "file_uploaded")
    assert [f["file_id"] for f in _recovered_listing(device)] == [body["file_id"]]


def test_a_challenge_held_by_a_stalled_upload_authorises_nothing_else(faults, device):
    challenge = device.challenge()
    with faults.cosmos.freeze(cosmos_op("create", cosmos.FILES.name)):
        assert _upload(device.upload_request(DATA, challenge=challenge))[0] == 503
    other = device.upload_request(b"other bytes", challenge=challenge)
    assert _upload(other)[1]["message"] == "invalid_challenge"
    with pytest.raises(Unauthorized):  # as a Play Integrity nonce, or for anything else
        challenges.consume_challenge(device.deviceid, challenge)
    assert len(_recovered_listing(device)) == 1


@pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
def test_a_stalled_attestation_is_completed_by_the_same_request(faults, after_response):
    actor = DeviceActor()
    actor.register()
    key = new_key("p256")
    challenge = actor.challenge()
    h, b = json_body({"public_key": public_pem(key), "challenge": challenge,
                      "signature": sign(key, f"attest:{challenge}".encode())})
    attest = lambda: call("attest_device", "POST", "attest-device", headers={**actor.headers, **h}, body=b)  # noqa: E731
    with faults.cosmos.freeze(cosmos_op("replace", cosmos.DEVICES.name), after_response=after_response):
        assert attest()[0] == 503
    status, body = attest()
    assert (status, body["message"]) == (200, "device_attested")
    actor.key = key
    assert actor.upload(DATA)[0] == 200


@pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
def test_a_stalled_registration_is_completed_by_the_same_request_and_refused_to_others(faults, after_response):
    actor = DeviceActor()
    with faults.cosmos.freeze(cosmos_op("create", cosmos.DEVICES.name), after_response=after_response):
        assert actor.register()[0] == 503
    assert actor.register() == (201, {"code": 201, "message": "device_registered", "deviceid": actor.deviceid})
    stranger = DeviceActor(deviceid=actor.deviceid)  # same id, another token
    assert stranger.register()[1]["message"] == "device_exists"
    assert actor.challenge()
