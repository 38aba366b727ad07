"""Device lifecycle against the real emulators: suspend, resume, revoke with its cascade, the dry
run, a revocation with the audit log's store down, and revocation racing uploads and challenge
requests in flight (storage timeouts part-way: test_lifecycle_crash_safety.py)."""

from __future__ import annotations

import itertools
import json
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared_code.audit.sequencer import synced_state
from shared_code.devices import direct_uploads, registry
from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.timeutil import to_iso, utc_now
from tests.support.audit import entries_since
from tests.support.devices import HANDLERS, DeviceActor, call
from tests.support.direct_uploads import (
    grant,
    grant_body,
    request_grant,
    run_verifier,
    stage_and_commit,
    staged_client,
    upload_state,
    uploaded_client,
)
from tests.support.lifecycle import device_calls, device_state, operator_device, resume, revoke, suspend

pytestmark = pytest.mark.integration


@pytest.fixture
def device(attested_device) -> DeviceActor:
    return attested_device


def events(since: int, deviceid: str) -> list[dict]:
    return [e for e in entries_since(since) if e["objects"].get("device") == deviceid]


# --- suspend and resume -----------------------------------------------------------------------

def test_a_suspended_device_is_refused_everywhere_keeps_everything_and_resumes(device):
    assert device.upload(b"before the suspension")[0] == 200
    before = synced_state().size
    status, body = suspend(device.deviceid, "reported lost by its owner")
    assert (status, body["message"], body["changed"], body["device"]["status"]) == (200, "device_suspended", True, "suspended")
    assert body["device"]["status_reason"] == "reported lost by its owner"
    assert set(device_calls(device)) == {(403, "device_suspended")}
    wrong = DeviceActor(deviceid=device.deviceid)  # without the token nothing is disclosed
    assert call("get_challenge", "GET", "api/challenge", headers=wrong.headers)[1]["message"] == "invalid_credentials"
    assert [f["status"] for f in device_state(device.deviceid)["files"]] == ["uploaded"]
    assert suspend(device.deviceid)[1]["changed"] is False  # a retry changes nothing
    status, body = resume(device.deviceid)
    assert (status, body["message"], body["changed"], body["device"]["status"]) == (200, "device_resumed", True, "active")
    assert device.upload(b"after the resume")[0] == 200
    entries = events(before, device.deviceid)
    assert [e["event"] for e in entries] == ["device_suspended", "device_resumed", "upload_authorized"]
    assert entries[0]["objects"]["reason_sha256"] == sha256_hex("reported lost by its owner")
    assert entries[0]["actor"] == "operator"


def test_direct_uploads_of_a_suspended_device_are_held_until_it_is_resumed(device):
    data = os.urandom(4096)
    granted = grant(device, data)
    assert suspend(device.deviceid)[0] == 200
    stage_and_commit(granted["upload_url"], data, granted["block_size"])
    staged = direct_uploads.staging_blob_name(device.deviceid, granted["upload_id"])
    run_verifier(staged)
    assert direct_uploads.read_grant(device.deviceid, granted["upload_id"])["status"] == "pending"
    assert staged_client(staged).exists()
    etag = staged_client(staged).get_blob_properties().etag
    status, body = resume(device.deviceid)
    assert (status, body["uploads_requeued"]) == (200, 1)
    assert staged_client(staged).get_blob_properties().etag != etag  # a new version: its event fires the trigger
    run_verifier(staged)
    assert upload_state(device, granted["upload_id"])[1]["state"] == "verified"


# --- revoke: the cascade and the dry run --------------------------------------------------------

@pytest.fixture
def busy_device(device) -> tuple[DeviceActor, dict]:
    """A device with two stored files, a verified direct upload, a pending one with staged bytes,
    two live challenges and a Play Integrity verdict."""
    for data in (b"first file", b"second file"):
        assert device.upload(data)[0] == 200
    verified_bytes, pending_bytes = os.urandom(2048), os.urandom(2048)
    done = grant(device, verified_bytes)
    stage_and_commit(done["upload_url"], verified_bytes, done["block_size"])
    run_verifier(direct_uploads.staging_blob_name(device.deviceid, done["upload_id"]))
    pending = grant(device, pending_bytes)
    stage_and_commit(pending["upload_url"], pending_bytes, pending["block_size"])  # its event has not been handled yet
    device.challenge(), device.challenge()
    registry.record_integrity(device.record(), {"valid": True, "verdict": {}, "failed_checks": [], "checked_at": to_iso(utc_now())})
    return device, {"pending": pending, "pending_bytes": pending_bytes}


def test_a_dry_run_reports_the_cascade_and_changes_nothing(busy_device):
    device, _ = busy_device
    before = device_state(device.deviceid)
    status, body = revoke(device.deviceid, dry_run="true")
    assert (status, body["message"], body["dry_run"], body["already_revoked"]) == (200, "revocation_dry_run", True, False)
    assert body["summary"] == {"challenges_deleted": 2, "uploads_cancelled": 1, "integrity_dropped": 1, "files_marked": 3}
    assert device_state(device.deviceid) == before
    assert revoke(device.deviceid)[1]["summary"] == body["summary"]  # the real run touches exactly that


def test_revoke_ends_every_credential_and_cascades(busy_device):
    device, extra = busy_device
    pending = extra["pending"]
    staged_name = direct_uploads.staging_blob_name(device.deviceid, pending["upload_id"])
    before = synced_state().size
    status, body = revoke(device.deviceid, "stolen from the warehouse")
    assert (status, body["message"], body["already_revoked"], body["dry_run"]) == (200, "device_revoked", False, False)
    assert body["summary"] == {"challenges_deleted": 2, "uploads_cancelled": 1, "integrity_dropped": 1, "files_marked": 3}
    assert body["device"]["status"] == "revoked" and body["device"]["integrity"] is None
    assert set(device_calls(device)) == {(403, "device_revoked")}
    state = device_state(device.deviceid)
    assert state["challenges"] == [] and state["slots"] == [] and state["staged"] == []
    assert sorted((f["status"], f.get("status_before_revocation")) for f in state["files"]) == [
        ("cancelled", None), ("device_revoked", "uploaded"), ("device_revoked", "uploaded"), ("device_revoked", "verified")]
    assert len(state["uploads"]) == 3  # kept for the operator
    # The SAS URL still lets the device write: the verifier refuses whatever arrives.
    stage_and_commit(pending["upload_url"], extra["pending_bytes"], pending["block_size"])
    run_verifier(staged_name)
    assert direct_uploads.read_grant(device.deviceid, pending["upload_id"])["status"] == "cancelled"
    assert not staged_client(staged_name).exists() and not uploaded_client(f"{device.deviceid}/{pending['upload_id']}").exists()
    # The id can never be registered again.
    assert device.register()[0] == 409
    # A second revoke is a retry: nothing left to do.
    status, again = revoke(device.deviceid)
    assert (status, again["already_revoked"], set(again["summary"].values())) == (200, True, {0})
    assert operator_device("suspend", device.deviceid, {"reason": "x"})[:1] == (409,)
    assert resume(device.deviceid)[1]["message"] == "device_revoked"
    names = [e["event"] for e in events(before, device.deviceid)]
    assert names[:3] == ["device_revoked", "upload_verified", "device_revocation_cascaded"]  # the grant refused: cancelled
    cascaded = next(e for e in events(before, device.deviceid) if e["event"] == "device_revocation_cascaded")
    assert cascaded["objects"]["files_marked"] == 3 and cascaded["objects"]["uploads_cancelled"] == 1


def test_the_upload_trigger_never_undoes_a_revocation_mark(device):
    status, body = device.upload(b"recorded before the trigger ran")
    assert status == 200
    assert revoke(device.deviceid)[0] == 200
    HANDLERS["record_upload"](uploaded_client(body["blob_name"]))
    record = cosmos.read_item(cosmos.FILES, body["file_id"], device.deviceid)
    assert (record["status"], record["status_before_revocation"]) == ("device_revoked", "verified")


def test_operator_input_is_checked(device):
    assert revoke("no-such-device")[:1] == (404,)
    assert revoke("no-such-device")[1]["message"] == "device_not_found"
    assert operator_device("revoke", device.deviceid, {})[1]["message"] == "missing_fields"
    assert operator_device("revoke", device.deviceid, {"reason": "x" * 501})[1]["message"] == "invalid_field"
    assert revoke(device.deviceid, dry_run="yes")[1]["message"] == "invalid_dry_run"
    assert device.record().get("status") is None


# --- crash safety (more in test_lifecycle_crash_safety.py, with the fault harness) ---------------

def test_with_blob_storage_down_a_revocation_answers_503_and_decides_nothing(private_stack):
    """The audit log lives in Blob Storage: a decision that cannot be logged does not take effect."""
    device = DeviceActor()
    assert device.register()[0] == 201 and device.attest()[0] == 200
    before = device.record()
    private_stack.stop_blob()
    status, body = revoke(device.deviceid)
    assert (status, body["message"]) == (503, "service_unavailable")
    assert call("get_challenge", "GET", "api/challenge", headers=device.headers)[1]["message"] == "challenge_issued"
    assert {k: v for k, v in device.record().items() if k != "_ts"} == {k: v for k, v in before.items() if k != "_ts"}


# --- revocation racing requests in flight ------------------------------------------------------

def test_revoke_racing_50_uploads_and_challenge_requests_accepts_nothing_started_after_it(device):
    """50 workers upload (signed, through /upload-file, or direct: grant, stage, commit, verifier)
    and fetch challenges while the operator revokes. Whatever started after the revoke answered
    is refused; afterwards no file of the device has a live status, whenever it was committed."""
    answered, accepted = threading.Event(), threading.Event()
    answered_at: list[float] = []
    outcomes: list[tuple[float, str, int, str]] = []
    lock = threading.Lock()

    def record(started: float, kind: str, status: int, message: str) -> None:
        with lock:
            outcomes.append((started, kind, status, message))
        if status in (200, 201):
            accepted.set()

    def worker(index: int) -> None:
        after = 0
        deadline = time.monotonic() + 240  # however long the revocation takes under load
        for round_ in itertools.count():  # until two rounds have started after the revoke answered
            if time.monotonic() > deadline:
                return
            if answered.is_set():
                after += 1
                if after > 2:
                    return
            started = time.monotonic()
            if index % 5 == 0:  # a direct upload, committed and verified as the trigger would
                data = os.urandom(512)
                try:
                    body = grant_body(device, data)
                except AssertionError:  # the challenge itself was refused
                    record(started, "direct", 403, "device_revoked")
                    continue
                status, answer = request_grant(device, body)
                record(started, "grant", status, answer["message"])
                if status == 201:
                    stage_and_commit(answer["upload_url"], data, answer["block_size"])
                    run_verifier(direct_uploads.staging_blob_name(device.deviceid, answer["upload_id"]))
            elif index % 2 == 0:
                status, answer = call("get_challenge", "GET", "api/challenge", headers=device.headers)
                record(started, "challenge", status, answer["message"])
            else:
                status, answer = call("get_challenge", "GET", "api/challenge", headers=device.headers)
                if status != 200:
                    record(started, "upload", status, answer["message"])
                    continue
                headers, raw = device.upload_request(f"file {index}/{round_}".encode(), challenge=answer["challenge"])
                status, answer = call("upload_file", "POST", "upload-file", headers=headers, body=raw)
                record(started, "upload", status, answer["message"])

    def operator() -> None:
        assert accepted.wait(timeout=120), "no request of the race was accepted"  # revoke mid-race, whatever the load
        status, _ = revoke(device.deviceid, "compromised")
        answered_at.append(time.monotonic())
        answered.set()
        assert status == 200

    with ThreadPoolExecutor(max_workers=51) as pool:
        futures = [pool.submit(worker, i) for i in range(50)] + [pool.submit(operator)]
        for future in futures:
            future.result()
    cutoff = answered_at[0]
    late = [o for o in outcomes if o[0] > cutoff]
    early_accepted = [o for o in outcomes if o[0] < cutoff and o[2] in (200, 201)]
    assert late and early_accepted, "the race did not overlap the revocation"
    assert {(kind, status, message) for _, kind, status, message in late} <= {
        ("challenge", 403, "device_revoked"), ("upload", 403, "device_revoked"), ("grant", 403, "device_revoked"),
        ("direct", 403, "device_revoked")}
    files = device_state(device.deviceid)["files"]
    assert {f["status"] for f in files} <= {"device_revoked", "cancelled"}, json.dumps(files)
