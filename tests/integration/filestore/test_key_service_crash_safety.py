"""The KMS key service under real storage timeouts (the fault harness, :mod:`tests.support.faults`):
a rotation, a retirement, an envelope replace and a KEK rewrap whose write lands after the app
answered 503 (or whose answer is lost), and what the retry does."""

from __future__ import annotations

import base64
import json
import os
import threading

import pytest

from client.envelope import seal
from shared_code.filestore import kek_rotation, key_wrap, kms
from shared_code.platform import cosmos
from shared_code.platform.errors import ServiceUnavailable
from tests.support.faults import blob_op, cosmos_op
from tests.support.files import User, unique_name
from tests.support.settings import apply_settings

pytestmark = pytest.mark.integration

KEYS = cosmos.KMS_KEYS.name


@pytest.fixture
def alice(faults) -> User:
    return User.new("alice")


def _item(name: str) -> dict:
    return cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))


@pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
def test_a_stalled_rotation_lands_once_and_the_retry_returns_that_version(faults, alice, after_response):
    name = unique_name("rotate")
    alice.put(name, b"r")
    with faults.cosmos.freeze(cosmos_op("replace", KEYS), after_response=after_response):
        status, body = alice.rotate(name, from_version=1)
    assert (status, body["message"]) == (503, "service_unavailable")
    landed = _item(name)
    assert landed["key_version"] == 2 and [v["version"] for v in landed["previous_versions"]] == [1]

    status, retried = alice.rotate(name, from_version=1)
    assert (status, retried["key_version"]) == (200, 2)  # the landed version, not a third
    assert base64.b64decode(retried["kms_public_key"]).decode() == landed["public_key"]
    assert _item(name)["key_version"] == 2


def test_a_stalled_retirement_lands_and_the_retry_answers_nothing_left(faults, alice):
    name = unique_name("retire")
    alice.put(name, b"r")
    status, body = alice.download(name)
    _, rotated = alice.rotate(name, from_version=1)
    resealed = seal(b"r", name, base64.b64decode(rotated["kms_public_key"]))
    assert alice.upload(name, resealed, key_version=2, if_match=body["etag"])[0] == 200
    with faults.cosmos.freeze(cosmos_op("replace", KEYS)):
        status, body = alice.retire(name, 2)
    assert (status, body["message"]) == (503, "service_unavailable")
    assert _item(name)["previous_versions"] == []  # landed
    assert alice.retire(name, 2)[1]["retired"] == []


def test_a_stalled_envelope_replace_lands_and_its_retry_is_412_with_the_new_file_in_place(faults, alice):
    name = unique_name("replace")
    alice.put(name, b"old content")
    _, stored = alice.download(name)
    _, rotated = alice.rotate(name, from_version=1)
    resealed = seal(b"new content", name, base64.b64decode(rotated["kms_public_key"]))
    with faults.blob.freeze(blob_op("put_blob", "encrypted-files")):
        status, body = alice.upload(name, resealed, key_version=2, if_match=stored["etag"])
    assert (status, body["message"]) == (503, "service_unavailable")
    status, body = alice.upload(name, resealed, key_version=2, if_match=stored["etag"])
    assert (status, body["message"]) == (412, "precondition_failed")
    status, now = alice.download(name)
    assert now["key_version"] == 2 and base64.b64decode(now["encrypted_data"]) == resealed.encrypted_data


def test_a_rewrap_write_that_lands_after_a_grant_is_refused_and_the_next_run_rewraps(faults, alice, monkeypatch):
    bob = User.new("bob")
    name = unique_name("rewrap")
    alice.put(name, b"r")
    apply_settings(monkeypatch, KMS_MASTER_KEYS=json.dumps({"2026-01": base64.b64encode(os.urandom(32)).decode()}),
                   KMS_ACTIVE_KEK="2026-01")
    legacy = [kid for kid in key_wrap.keyring().kids if kid != "2026-01"][0]
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["report"] = kek_rotation.rewrap_run()
        except ServiceUnavailable as error:
            outcome["error"] = error

    with faults.cosmos.hold(cosmos_op("replace", KEYS)) as held:  # only the rewrap's write is stuck
        worker = threading.Thread(target=run)
        worker.start()
        held.wait_fired()
        assert alice.grant(name, bob.email)[0] == 200  # a newer write to the same key item
        worker.join(timeout=30)
    assert "error" in outcome  # the rewrap timed out; its write reached the store only now, and lost
    item = _item(name)
    assert item["grantees"] == [bob.email] and item["wrapped_private_key"]["kid"] == legacy
    assert kek_rotation.rewrap_run().failed == []  # this module's emulators hold the other tests' keys too
    item = _item(name)
    assert item["grantees"] == [bob.email] and item["wrapped_private_key"]["kid"] == "2026-01"
    assert bob.private_key(name)[0] == 200
    # Back to the test KEK, so this module's other tests (same emulators) read their keys unchanged.
    apply_settings(monkeypatch, KMS_ACTIVE_KEK=legacy)
    kek_rotation.rewrap_run()
    assert _item(name)["wrapped_private_key"]["kid"] == legacy
