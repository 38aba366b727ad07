"""The KMS key service on cosmosdb-server and Azurite, through the handlers: /unwrap_key (owner,
grantee, revoked grantee, stranger; one answer for every decryption failure; rate limit; audit),
KMS_EXPORT_PRIVATE_KEYS, key versions, /rotate_file_key, conditional envelope replace, /retire_file_key."""

from __future__ import annotations

import base64
import json
import os

import pytest

from client.envelope import Sealed, open_with_data_key, seal
from shared_code.filestore import kms
from shared_code.platform import cosmos
from shared_code.platform.config import reset_settings
from shared_code.platform.security_log import subject_ref
from tests.support.audit import audit_events
from tests.support.devices import respond
from tests.support.files import User, b64, unique_name
from tests.support.settings import apply_settings

pytestmark = pytest.mark.integration


@pytest.fixture
def setting(monkeypatch):
    yield lambda name, value: apply_settings(monkeypatch, **{name: value})
    monkeypatch.undo()
    reset_settings()


def _stored(user: User, name: str) -> tuple[Sealed, dict]:
    status, body = user.download(name)
    assert status == 200, body
    return Sealed(*(base64.b64decode(body[k]) for k in ("encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector"))), body


def _open(user: User, name: str) -> bytes:
    sealed, body = _stored(user, name)
    status, answer = user.unwrap(name, b64(sealed.encrypted_aes_key), body["key_version"])
    assert (status, answer["message"]) == (200, "key_unwrapped"), answer
    return open_with_data_key(sealed, name, base64.b64decode(answer["aes_key"]))


# --- unwrap ------------------------------------------------------------------------------------

def test_owner_and_grantee_unwrap_a_revoked_grantee_and_a_stranger_are_refused_alike(alice, bob, emulators):
    name, plaintext = unique_name("unwrap"), os.urandom(5000)
    sealed = alice.put(name, plaintext)
    assert _open(alice, name) == plaintext
    stranger = User.new("eve")
    refused = stranger.unwrap(name, b64(sealed.encrypted_aes_key))
    assert refused == (400, {"code": 400, "message": "access_denied", "detail": "no key for this file name is available to you"})
    assert stranger.unwrap(unique_name("nothing"), b64(sealed.encrypted_aes_key)) == refused  # unknown name: same answer

    assert alice.grant(name, bob.email)[0] == 200
    assert _open(bob, name) == plaintext
    assert alice.revoke(name, bob.email)[0] == 200
    assert bob.unwrap(name, b64(sealed.encrypted_aes_key)) == refused  # at once: nothing was handed out
    assert _open(alice, name) == plaintext


def test_every_decryption_failure_gets_the_one_same_answer(alice, emulators):
    name = unique_name("oracle")
    sealed = alice.put(name, b"x")
    other = alice.put(unique_name("other"), b"y").encrypted_aes_key  # a data key wrapped under another file's key
    good = sealed.encrypted_aes_key
    flipped = bytearray(good)
    flipped[100] ^= 1
    failures = {
        "another file's key": b64(other), "bad padding": b64(bytes(flipped)), "one byte short": b64(good[:-1]),
        "one byte long": b64(good + b"\0"), "all zero": b64(bytes(len(good))), "above the modulus": b64(b"\xff" * len(good)),
        "not base64": "***", "a number": 7, "absent": None,
    }
    answers = {}
    for case, wrapped in failures.items():
        response = respond("unwrap_key", "POST", "unwrap_key", headers={"sid": alice.sid, "content-type": "application/json"},
                           body=json.dumps({"file_name": name, **({"encrypted_aes_key": wrapped} if wrapped is not None else {})}).encode())
        answers[case] = (response.status_code, response.get_body(), response.headers.get("Content-Type"))
    assert len(set(answers.values())) == 1, answers
    status, body, _ = next(iter(answers.values()))
    assert status == 400 and json.loads(body) == {"code": 400, "message": "invalid_wrapped_key",
                                                  "detail": "the wrapped key does not unwrap under this file's key"}
    assert _open(alice, name) == b"x"


def test_unwraps_are_rate_limited_per_user(alice, bob, setting):
    setting("KMS_UNWRAP_RATE_LIMIT_PER_MINUTE", "3")
    name = unique_name("limit")
    wrapped = b64(alice.put(name, b"z").encrypted_aes_key)
    statuses = [alice.unwrap(name, wrapped)[0] for _ in range(3)]
    response = respond("unwrap_key", "POST", "unwrap_key", headers={"sid": alice.sid, "content-type": "application/json"},
                       body=json.dumps({"file_name": name, "encrypted_aes_key": wrapped}).encode())
    assert statuses == [200, 200, 200]
    if response.status_code == 200:  # the minute turned between the calls: the fourth of the next window is refused
        response = respond("unwrap_key", "POST", "unwrap_key", headers={"sid": alice.sid, "content-type": "application/json"},
                           body=json.dumps({"file_name": name, "encrypted_aes_key": wrapped}).encode())
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
    assert json.loads(response.get_body())["message"] == "rate_limited"
    assert bob.unwrap(name, wrapped)[1]["message"] == "access_denied"  # bob has his own counter


def test_each_unwrap_is_audited_without_the_key_or_the_email(alice, bob, emulators):
    name = unique_name("audited")
    sealed = alice.put(name, b"audited")
    assert alice.grant(name, bob.email)[0] == 200
    status, answer = bob.unwrap(name, b64(sealed.encrypted_aes_key))
    assert status == 200
    mine = [e for e in audit_events("kms_key_unwrapped") if e["objects"]["file_key"] == kms.key_id(name)]
    assert [(e["objects"]["role"], e["objects"]["key_version"], e["outcome"]) for e in mine] == [("grantee", 1, "granted")]
    text = json.dumps(mine)
    assert bob.email not in text and answer["aes_key"] not in text and subject_ref(bob.email) not in text


# --- export switch -----------------------------------------------------------------------------

def test_with_export_disabled_get_private_key_is_403_for_everyone_and_unwrap_still_works(alice, setting):
    name = unique_name("noexport")
    alice.put(name, b"stays inside")
    setting("KMS_EXPORT_PRIVATE_KEYS", "false")
    refusal = {"code": 403, "message": "export_disabled", "detail": "this KMS does not export private keys: use POST /unwrap_key"}
    assert alice.private_key(name) == (403, refusal)
    assert User.new("eve").private_key(name) == (403, refusal)
    assert _open(alice, name) == b"stays inside"


def test_an_export_is_audited(alice, emulators):
    name = unique_name("export")
    alice.put(name, b"e")
    status, body = alice.private_key(name)
    assert (status, body["key_version"]) == (200, 1)
    assert [e["objects"]["role"] for e in audit_events("kms_private_key_exported") if e["objects"]["file_key"] == kms.key_id(name)] == ["owner"]


# --- versions and rotation ---------------------------------------------------------------------

def test_rotation_re_encryption_with_a_conditional_replace_and_retirement(alice, bob, emulators):
    name, plaintext = unique_name("rotate"), os.urandom(3000)
    alice.put(name, plaintext)
    assert alice.grant(name, bob.email)[0] == 200
    old_sealed, old_body = _stored(alice, name)
    assert old_body["key_version"] == 1 and old_body["etag"]

    status, rotated = alice.rotate(name, from_version=1)
    assert (status, rotated["message"], rotated["key_version"]) == (200, "file_key_rotated", 2)
    assert alice.rotate(name, from_version=1)[1]["key_version"] == 2  # a retry: nothing new is made
    assert alice.public_key(name)[1]["kms_public_key"] == rotated["kms_public_key"]  # the owner's repeat: the current key
    # the old version still decrypts the stored file (decrypt-only), for the grantee too
    assert _open(bob, name) == plaintext
    new_public = base64.b64decode(rotated["kms_public_key"])
    resealed = seal(plaintext, name, new_public)

    assert alice.upload(name, resealed, key_version=1, if_match=old_body["etag"])[1]["message"] == "key_version_not_current"
    assert alice.upload(name, resealed)[1]["message"] == "file_exists"  # no If-Match: never overwrites
    assert alice.upload(name, resealed, if_match='"0x8DEADBEEF"')[:1] == (412,)
    assert alice.retire(name, 2) == (409, {"code": 409, "message": "envelope_uses_older_version", "detail":
                                           "the stored file is encrypted under version 1: re-encrypt it (client: files rotate) "
                                           "before retiring that version"})
    status, replaced = alice.upload(name, resealed, key_version=2, if_match=old_body["etag"])
    assert (status, replaced["key_version"]) == (200, 2) and replaced["etag"] != old_body["etag"]
    assert alice.upload(name, resealed, key_version=2, if_match=old_body["etag"])[0] == 412  # the etag is spent
    assert _stored(alice, name)[1]["key_version"] == 2 and _open(bob, name) == plaintext

    assert alice.retire(name, 2) == (200, {"code": 200, "message": "file_key_versions_retired", "retired": [1], "min_version": 2})
    assert alice.retire(name, 2)[1]["retired"] == []  # a retry
    # version 1 is gone: nothing decrypts under it, not even the owner with the old envelope
    assert alice.unwrap(name, b64(old_sealed.encrypted_aes_key), 1)[1]["message"] == "key_version_retired"
    assert alice.private_key(name)[1]["key_version"] == 2
    assert bob.post("get_private_key", {"file_name": name, "key_version": 1})[1]["message"] == "key_version_retired"
    assert alice.unwrap(name, b64(old_sealed.encrypted_aes_key), 7)[1]["message"] == "key_version_unknown"
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))
    assert item["key_version"] == 2 and item["previous_versions"] == []
    assert [e["objects"]["retired"] for e in audit_events("kms_file_key_versions_retired") if e["objects"]["file_key"] == item["id"]] == [[1]]


def test_only_the_owner_rotates_or_retires_and_live_versions_are_bounded(alice, bob, setting):
    name = unique_name("bounded")
    alice.put(name, b"b")
    assert alice.grant(name, bob.email)[0] == 200
    assert bob.rotate(name)[1]["message"] == "permission_denied"
    assert bob.retire(name, 1)[1]["message"] == "permission_denied"
    setting("KMS_MAX_KEY_VERSIONS", "3")
    assert [alice.rotate(name)[1]["key_version"] for _ in range(2)] == [2, 3]
    assert alice.rotate(name)[:1] == (409,) and alice.rotate(name)[1]["message"] == "too_many_key_versions"
    assert alice.retire(name, 4)[1]["message"] == "invalid_field"
    assert alice.retire(name, 1)[1]["retired"] == []


def test_a_wrapped_private_key_moved_to_another_version_does_not_unwrap(alice, emulators):
    name = unique_name("moved")
    alice.put(name, b"m")
    alice.rotate(name)
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))
    item["previous_versions"][0]["wrapped_private_key"] = item["wrapped_private_key"]  # v2's key in v1's slot
    cosmos.upsert_item(cosmos.KMS_KEYS, item)
    assert alice.private_key(name)[0] == 200
    assert alice.post("get_private_key", {"file_name": name, "key_version": 1})[1]["message"] == "kms_unwrap_failed"


def test_a_replace_whose_answer_was_lost_and_retried_by_the_sdk_still_succeeds(alice, monkeypatch):
    from azure.core.exceptions import ResourceModifiedError
    from azure.storage.blob import BlobClient

    name = unique_name("sdk-retry")
    alice.put(name, b"first")
    _, body = _stored(alice, name)
    status, rotated = alice.rotate(name)
    resealed = seal(b"second", name, base64.b64decode(rotated["kms_public_key"]))
    original = BlobClient.upload_blob

    def lands_then_412(self, *args, **kwargs):  # the first try lands, the SDK's retry meets its own blob
        original(self, *args, **kwargs)
        raise ResourceModifiedError("the condition specified using HTTP conditional header(s) is not met")

    monkeypatch.setattr(BlobClient, "upload_blob", lands_then_412)
    status, replaced = alice.upload(name, resealed, key_version=2, if_match=body["etag"])
    assert (status, replaced["key_version"]) == (200, 2)
    monkeypatch.setattr(BlobClient, "upload_blob", original)
    assert replaced["etag"] == _stored(alice, name)[1]["etag"] and _open(alice, name) == b"second"


def test_concurrent_rotations_from_one_version_make_exactly_one_new_version(alice):
    from concurrent.futures import ThreadPoolExecutor

    name = unique_name("racing")
    alice.put(name, b"r")
    with ThreadPoolExecutor(max_workers=5) as pool:
        answers = list(pool.map(lambda _: alice.rotate(name, from_version=1), range(5)))
    assert {(status, body["key_version"]) for status, body in answers} == {(200, 2)}
    assert len({body["kms_public_key"] for _, body in answers}) == 1
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))
    assert item["key_version"] == 2 and [v["version"] for v in item["previous_versions"]] == [1]
