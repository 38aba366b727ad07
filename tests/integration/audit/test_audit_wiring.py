"""The first audited decisions (bearer tokens issued and revoked, devices registered) end to end
through their handlers: each is logged before it takes effect, and a failing log write fails the
request with 503 and leaves nothing applied."""

from __future__ import annotations

import base64
import json

import pytest

from client.audit_merkle import leaf_hash, verify_inclusion
from client.audit_note import VerifierKey, verify_checkpoint
from shared_code.audit import checkpoints, sequencer, storage
from shared_code.audit.entries import salted_digest
from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import ServiceUnavailable
from shared_code.tokens import bearer_tokens
from tests.support.audit import HandlerSource
from tests.support.devices import DeviceActor, call, json_body

pytestmark = pytest.mark.integration


@pytest.fixture
def log_down(emulators, monkeypatch):
    """The audit log's blob writes fail (storage outage) while everything else works."""
    def down(*args, **kwargs):
        raise ServiceUnavailable(detail="file storage is unavailable, try again later")

    monkeypatch.setattr(storage, "append_at", down)


def _last_entry() -> dict:
    size = sequencer.synced_state().size
    return json.loads(next(HandlerSource().entries(size - 1, size))[1])


def _issue(**body) -> tuple[int, dict]:
    headers, data = json_body(body)
    return call("generate_token", "POST", "generate_token", headers={**headers, "X-Forwarded-For": "203.0.113.7"},
                body=data)


def test_issued_and_revoked_tokens_are_logged_with_a_token_ref_and_a_salted_client(emulators):
    status, issued = _issue(ttl_seconds=60, scope="files:read")
    assert status == 200
    token_hash = sha256_hex(issued["token"])
    entry = _last_entry()
    assert entry["event"] == "token_issued" and entry["actor"] == "operator" and entry["outcome"] == "granted"
    assert entry["objects"]["token_ref"] == token_hash[:12] and entry["objects"]["scope"] == "files:read"
    assert entry["client"] == salted_digest("203.0.113.7") and "203.0.113.7" not in json.dumps(entry)
    assert issued["token"] not in json.dumps(entry) and len(entry["request_id"]) == 32

    headers, data = json_body({"token": issued["token"]})
    assert call("revoke_token", "POST", "revoke_token", headers=headers, body=data)[0] == 200
    entry = _last_entry()
    assert (entry["event"], entry["objects"]) == ("token_revoked", {"token_ref": token_hash[:12]})
    size = sequencer.synced_state().size
    headers, data = json_body({"token": issued["token"]})
    assert call("revoke_token", "POST", "revoke_token", headers=headers, body=data)[0] == 200
    assert sequencer.synced_state().size == size  # nothing left to revoke: no decision, no entry


def test_a_failing_log_write_refuses_the_token_and_stores_nothing(log_down):
    before = cosmos.query_first(cosmos.TOKENS, "SELECT VALUE COUNT(1) FROM c", [], 1)
    size = sequencer.synced_state().size
    status, body = _issue(ttl_seconds=60)
    assert (status, body["message"]) == (503, "service_unavailable") and "token" not in body
    assert cosmos.query_first(cosmos.TOKENS, "SELECT VALUE COUNT(1) FROM c", [], 1) == before
    assert sequencer.synced_state().size == size


def test_a_failing_log_write_leaves_a_token_unrevoked(emulators, monkeypatch):
    issued = bearer_tokens.issue_token(60)
    monkeypatch.setattr(storage, "append_at", lambda *a, **k: (_ for _ in ()).throw(ServiceUnavailable()))
    headers, data = json_body({"token": issued.token})
    assert call("revoke_token", "POST", "revoke_token", headers=headers, body=data)[0] == 503
    assert bearer_tokens.verify_token(issued.token) is not None  # the revocation did not take effect


def test_a_failing_log_write_refuses_the_registration_and_creates_no_device(log_down):
    device = DeviceActor()
    headers, data = json_body({"deviceid": device.deviceid, "deviceToken": device.token})
    status, body = call("register_device", "POST", "register-device", headers=headers, body=data)
    assert status == 503
    assert cosmos.read_item(cosmos.DEVICES, device.deviceid, device.deviceid) is None


def test_a_device_reads_its_own_entries_with_inclusion_proofs_for_the_signed_checkpoint(emulators):
    device = DeviceActor()
    headers, data = json_body({"deviceid": device.deviceid, "deviceToken": device.token})
    assert call("register_device", "POST", "register-device", headers=headers, body=data)[0] == 201
    size = sequencer.load_state().size
    assert call("register_device", "POST", "register-device", headers=headers, body=data)[0] == 201  # a repeat
    other_headers, other = json_body({"deviceid": device.deviceid, "deviceToken": DeviceActor().token})
    assert call("register_device", "POST", "register-device", headers=other_headers, body=other)[0] == 409
    assert sequencer.load_state().size == size  # neither wrote an entry
    entry = _last_entry()
    assert (entry["event"], entry["actor"], entry["objects"]) == (
        "device_registered", f"device:{device.deviceid}", {"device": device.deviceid})
    checkpoints.publish()

    status, body = call("device_audit", "GET", "api/device/audit",
                        headers={"deviceid": device.deviceid, "deviceToken": device.token})
    assert status == 200 and len(body["entries"]) == 1  # the refused duplicate was not logged
    cp = verify_checkpoint(body["checkpoint"], VerifierKey.parse(body["verifier_key"]))
    item = body["entries"][0]
    verify_inclusion(item["index"], cp.size, leaf_hash(item["entry"].encode()),
                     [base64.b64decode(p) for p in item["proof"]], cp.root)
    other = DeviceActor()
    headers, data = json_body({"deviceid": other.deviceid, "deviceToken": other.token})
    call("register_device", "POST", "register-device", headers=headers, body=data)
    status, body = call("device_audit", "GET", "api/device/audit",
                        headers={"deviceid": other.deviceid, "deviceToken": other.token})
    assert status == 200 and body["entries"] == []  # not yet in a checkpoint; never another device's
    assert call("device_audit", "GET", "api/device/audit", headers={"deviceid": other.deviceid,
                                                                   "deviceToken": "wrong" * 8})[0] == 403


def test_operator_endpoints_refuse_bad_parameters(emulators):
    checkpoints.publish()
    size = sequencer.synced_state().size
    assert call("audit_inclusion_proof", "GET", "audit/proof/inclusion",
                params={"index": str(size), "size": str(size)})[1]["message"] == "invalid_index"
    assert call("audit_inclusion_proof", "GET", "audit/proof/inclusion",
                params={"index": "0", "size": str(size + 1)})[1]["message"] == "invalid_size"
    assert call("audit_consistency_proof", "GET", "audit/proof/consistency",
                params={"from": "2", "to": "1"})[0] == 400
    assert call("audit_entries", "GET", "audit/entries", params={"start": "x"})[0] == 400
