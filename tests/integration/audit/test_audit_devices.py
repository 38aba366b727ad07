"""Device decisions in the audit log, through their handlers and triggers: devices registered (and
the entries a device reads about itself, with inclusion proofs), uploads authorised
(``/upload-file``, direct grants and renewals) or refused at the gates, their verification
verdicts (blob trigger, direct-upload verifier), and Play Integrity verdicts. Each entry is checked
for its actor, objects, outcome and failed checks and for what must not be in it; each kind of
decision, with the log down, answers 503 (or fails the trigger) and leaves nothing applied."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from client.audit_merkle import leaf_hash, verify_inclusion
from client.audit_note import VerifierKey, verify_checkpoint
from shared_code.audit import checkpoints
from shared_code.devices import direct_uploads
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from tests.support.audit import entries_since, log_size, only_entry
from tests.support.devices import DeviceActor, call, json_body, new_key, run_blob_trigger
from tests.support.direct_uploads import (
    grant_body,
    renew,
    request_grant,
    run_verifier,
    stage_and_commit,
    staged_client,
    uploaded_client,
)
from tests.support.play_integrity import LocalKeys, configure, payload, policy_settings  # noqa: F401 - configure is a fixture

pytestmark = pytest.mark.integration


@pytest.fixture
def device(emulators) -> DeviceActor:
    actor = DeviceActor()
    assert actor.register()[0] == 201
    assert actor.attest()[0] == 200
    return actor


def _uploads_blob(blob_name: str):
    return blobs.container_client(get_settings().uploads_container).get_blob_client(blob_name)


def _file(actor: DeviceActor, file_id: str) -> dict | None:
    return cosmos.read_item(cosmos.FILES, file_id, actor.deviceid)


def _register(actor: DeviceActor, token: str | None = None) -> int:
    headers, body = json_body({"deviceid": actor.deviceid, "deviceToken": token or actor.token})
    return call("register_device", "POST", "register-device", headers=headers, body=body)[0]


def _own_entries(actor: DeviceActor, token: str | None = None) -> tuple[int, dict]:
    return call("device_audit", "GET", "api/device/audit", headers={"deviceid": actor.deviceid,
                                                                    "deviceToken": token or actor.token})


# --- registration, and what a device reads about itself ---------------------------------------------

def test_with_the_log_down_a_registration_is_503_and_creates_no_device(emulators, log_down):
    actor = DeviceActor()
    assert _register(actor) == 503
    assert cosmos.read_item(cosmos.DEVICES, actor.deviceid, actor.deviceid) is None


def test_a_device_reads_its_own_entries_with_inclusion_proofs_for_the_signed_checkpoint(emulators):
    actor = DeviceActor()
    size = log_size()
    assert _register(actor) == 201
    entry = only_entry(size, "device_registered", actor.token)
    assert (entry["actor"], entry["objects"]) == (f"device:{actor.deviceid}", {"device": actor.deviceid})
    size = log_size()
    assert _register(actor) == 201  # a repeat
    assert _register(actor, DeviceActor().token) == 409  # another token for the id
    assert log_size() == size  # neither decided anything: no entry
    checkpoints.publish()

    status, body = _own_entries(actor)
    assert status == 200 and len(body["entries"]) == 1
    cp = verify_checkpoint(body["checkpoint"], VerifierKey.parse(body["verifier_key"]))
    item = body["entries"][0]
    verify_inclusion(item["index"], cp.size, leaf_hash(item["entry"].encode()),
                     [base64.b64decode(p) for p in item["proof"]], cp.root)
    other = DeviceActor()
    assert _register(other) == 201
    status, body = _own_entries(other)
    assert status == 200 and body["entries"] == []  # not yet in a checkpoint; never another device's
    assert _own_entries(other, "wrong" * 8)[0] == 403


# --- /upload-file and its blob trigger -------------------------------------------------------------

def test_an_upload_is_logged_with_its_digest_and_its_trigger_verdict_too(device):
    data = b"audited upload " * 64
    size = log_size()
    status, body = device.upload(data, filename="holiday-plans.txt")
    assert status == 200, body
    entry = only_entry(size, "upload_authorized", "holiday-plans")
    assert (entry["actor"], entry["outcome"], entry["failed_checks"]) == (f"device:{device.deviceid}", "granted", [])
    assert entry["objects"] == {"device": device.deviceid, "file": body["file_id"], "sha256": body["sha256"],
                                "size": len(data), "content_type": "text/plain", "path": "upload-file"}

    size = log_size()
    run_blob_trigger(body["blob_name"])
    verdict = only_entry(size, "upload_verified", "holiday-plans")
    assert (verdict["actor"], verdict["outcome"], verdict["failed_checks"]) == ("operator", "granted", [])
    assert verdict["objects"]["file"] == body["file_id"] and verdict["objects"]["sha256"] == body["sha256"]
    assert verdict["request_id"] is None  # a trigger, not a request


def test_a_blob_changed_after_the_upload_is_logged_as_a_digest_mismatch(device):
    status, body = device.upload(b"the signed bytes " * 10)
    assert status == 200
    blob = _uploads_blob(body["blob_name"])
    blob.upload_blob(b"other bytes", overwrite=True, metadata=blob.get_blob_properties().metadata)
    size = log_size()
    run_blob_trigger(body["blob_name"])
    verdict = only_entry(size, "upload_verified")
    assert (verdict["outcome"], verdict["failed_checks"]) == ("refused", ["digest_mismatch"])
    assert verdict["objects"]["sha256"] == body["sha256"]  # what the device signed
    assert verdict["objects"]["observed_sha256"] == hashlib.sha256(b"other bytes").hexdigest()


def test_with_the_log_down_an_upload_is_503_stores_nothing_and_its_retry_completes(device, audit_outage):
    data = b"not before the log " * 20
    headers, request = device.upload_request(data)
    audit_outage.down()
    status, body = call("upload_file", "POST", "upload-file", headers=headers, body=request)
    assert (status, body["message"]) == (503, "service_unavailable")
    listed = call("list_files", "GET", "api/files", headers=device.headers)[1]["files"]
    assert listed == []
    blobs_of_device = list(blobs.container_client(get_settings().uploads_container).list_blobs(
        name_starts_with=f"{device.deviceid}/"))
    assert blobs_of_device == []

    audit_outage.up()
    size = log_size()
    status, body = call("upload_file", "POST", "upload-file", headers=headers, body=request)
    assert status == 200 and _file(device, body["file_id"])["sha256"] == hashlib.sha256(data).hexdigest()
    assert only_entry(size, "upload_authorized")["objects"]["file"] == body["file_id"]


def test_with_the_log_down_the_trigger_fails_and_records_no_verdict(device, audit_outage):
    status, body = device.upload(b"verify me later " * 8)
    assert status == 200
    audit_outage.down()
    with pytest.raises(ServiceUnavailable):
        run_blob_trigger(body["blob_name"])
    assert _file(device, body["file_id"])["status"] == "uploaded"  # the host retries the trigger
    audit_outage.up()
    run_blob_trigger(body["blob_name"])
    assert _file(device, body["file_id"])["status"] == "verified"


# --- the upload gates ------------------------------------------------------------------------------

def test_a_refusal_at_the_gates_is_logged_with_the_gate_that_refused(emulators, app_settings):
    unattested = DeviceActor()
    assert unattested.register()[0] == 201
    unattested.key = new_key()  # signs, but was never attested
    size = log_size()
    status, body = unattested.upload(b"x" * 10)
    assert (status, body["message"]) == (403, "device_not_attested")
    entry = only_entry(size, "upload_authorized")
    assert (entry["actor"], entry["outcome"], entry["failed_checks"]) == (
        f"device:{unattested.deviceid}", "refused", ["device_not_attested"])
    assert entry["objects"] == {"device": unattested.deviceid}

    attested = DeviceActor()
    attested.register()
    attested.attest()
    app_settings(REQUIRE_INTEGRITY_FOR_UPLOAD="true")
    size = log_size()
    status, body = request_grant(attested, grant_body(attested, b"direct bytes"))
    assert (status, body["message"]) == (403, "integrity_required")
    assert only_entry(size, "upload_authorized")["failed_checks"] == ["integrity_required"]


def test_with_the_log_down_a_gate_refusal_is_503(emulators, audit_outage):
    unattested = DeviceActor()
    assert unattested.register()[0] == 201
    unattested.key = new_key()
    audit_outage.down()
    assert unattested.upload(b"x" * 10)[0] == 503


# --- direct uploads ---------------------------------------------------------------------------------

def test_a_direct_grant_its_renewal_and_its_verdicts_are_logged(device):
    data = os.urandom(5000)
    size = log_size()
    status, granted = request_grant(device, grant_body(device, data, file_name="private-name.bin"))
    assert status == 201, granted
    entry = only_entry(size, "upload_authorized", "private-name", granted["upload_url"].split("?", 1)[1])
    assert (entry["actor"], entry["outcome"]) == (f"device:{device.deviceid}", "granted")
    assert entry["objects"] == {"device": device.deviceid, "file": granted["upload_id"], "sha256": granted["sha256"],
                                "size": 5000, "content_type": "application/octet-stream", "path": "direct"}
    size = log_size()
    status, renewed = renew(device, granted["upload_id"])
    assert status == 200
    entry = only_entry(size, "upload_authorized", renewed["upload_url"].split("?", 1)[1])
    assert entry["objects"]["path"] == "direct-renewal" and entry["objects"]["file"] == granted["upload_id"]

    stage_and_commit(granted["upload_url"], data, granted["block_size"])
    size = log_size()
    run_verifier(direct_uploads.staging_blob_name(device.deviceid, granted["upload_id"]))
    verdict = only_entry(size, "upload_verified")
    assert (verdict["actor"], verdict["outcome"], verdict["objects"]["path"]) == ("operator", "granted", "direct")

    short = grant_body(device, data)
    status, other = request_grant(device, short)
    stage_and_commit(other["upload_url"], data[:-1], other["block_size"])
    size = log_size()
    run_verifier(direct_uploads.staging_blob_name(device.deviceid, other["upload_id"]))
    verdict = only_entry(size, "upload_verified")
    assert (verdict["outcome"], verdict["failed_checks"]) == ("refused", ["size_mismatch"])
    assert verdict["objects"]["observed_size"] == 4999 and verdict["objects"]["size"] == 5000


def test_with_the_log_down_a_direct_grant_is_503_and_nothing_is_granted(device, audit_outage):
    body = grant_body(device, b"direct " * 100)
    upload_id = direct_uploads.upload_id_for(device.deviceid, body["challenge"])
    audit_outage.down()
    assert request_grant(device, body)[0] == 503
    assert cosmos.read_item(cosmos.FILES, upload_id, device.deviceid) is None
    audit_outage.up()
    status, granted = request_grant(device, body)  # the same signed request: its slot is taken over
    assert (status, granted["upload_id"]) == (201, upload_id)


def test_with_the_log_down_the_verifier_decides_nothing(device, audit_outage):
    data = os.urandom(3000)
    status, granted = request_grant(device, grant_body(device, data))
    stage_and_commit(granted["upload_url"], data, granted["block_size"])
    staged = direct_uploads.staging_blob_name(device.deviceid, granted["upload_id"])
    audit_outage.down()
    with pytest.raises(ServiceUnavailable):
        run_verifier(staged)
    assert _file(device, granted["upload_id"])["status"] == "pending" and staged_client(staged).exists()
    audit_outage.up()
    run_verifier(staged)
    assert _file(device, granted["upload_id"])["status"] == "verified" and uploaded_client(granted["blob_name"]).exists()


# --- Play Integrity verdicts ------------------------------------------------------------------------

@pytest.fixture
def integrity(configure, emulators) -> LocalKeys:
    keys = LocalKeys()
    configure({**policy_settings(), **keys.settings()})
    return keys


def _verify(actor: DeviceActor, token: str) -> tuple[int, dict]:
    headers, body = json_body({"token": token})
    return call("verify_integrity", "POST", "verify", headers={**actor.headers, **headers}, body=body)


def test_integrity_verdicts_are_logged_with_the_token_digest_verifier_and_policy(device, integrity, configure):
    token = integrity.seal(payload(nonce=device.challenge()))
    size = log_size()
    status, body = _verify(device, token)
    assert (status, body["valid"]) == (200, True)
    entry = only_entry(size, "integrity_verdict", token)
    assert (entry["actor"], entry["outcome"], entry["failed_checks"]) == (f"device:{device.deviceid}", "granted", [])
    assert entry["objects"] == {"device": device.deviceid, "request_type": "classic"}
    assert (entry["evidence"]["sha256"], entry["evidence"]["verifier"]) == (
        hashlib.sha256(token.encode()).hexdigest(), "play-integrity-local/1")
    assert len(entry["evidence"]["policy"]) == 64

    weak = integrity.seal(payload(nonce=device.challenge(), device=("MEETS_BASIC_INTEGRITY",)))
    size = log_size()
    assert _verify(device, weak)[1]["failed_checks"] == ["device_integrity"]
    refused = only_entry(size, "integrity_verdict", weak)
    assert (refused["outcome"], refused["failed_checks"]) == ("refused", ["device_integrity"])
    assert refused["evidence"]["policy"] == entry["evidence"]["policy"]

    size = log_size()
    assert _verify(device, token)[1]["failed_checks"] == ["nonce", "token_unused"]  # a replay: answered, logged
    assert only_entry(size, "integrity_verdict")["failed_checks"] == ["nonce", "token_unused"]

    configure({"PLAY_INTEGRITY_MIN_DEVICE": "STRONG"})  # another policy in force: another hash
    size = log_size()
    assert _verify(device, integrity.seal(payload(nonce=device.challenge())))[1]["failed_checks"] == ["device_integrity"]
    assert only_entry(size, "integrity_verdict")["evidence"]["policy"] != entry["evidence"]["policy"]


def test_with_the_log_down_an_integrity_verdict_is_503_and_not_stored(device, integrity, audit_outage):
    token = integrity.seal(payload(nonce=device.challenge()))
    audit_outage.down()
    assert _verify(device, token)[0] == 503
    assert cosmos.read_item(cosmos.DEVICES, device.deviceid, device.deviceid).get("integrity") is None


def test_one_upload_writes_one_entry_per_decision(device):
    """The grant and the verdict, once each; reads such as the listing write nothing."""
    size = log_size()
    status, body = device.upload(b"once " * 30)
    call("list_files", "GET", "api/files", headers=device.headers)
    run_blob_trigger(body["blob_name"])
    assert [entry["event"] for entry in entries_since(size)] == ["upload_authorized", "upload_verified"]
