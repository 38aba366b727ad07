"""KMS and encrypted store against real Cosmos (cosmosdb-server) and Blob Storage (Azurite), through the handlers."""

from __future__ import annotations

import base64
import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization

from client.envelope import Sealed, open_sealed, seal
from shared_code.accounts import sessions
from shared_code.filestore import kms
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.timeutil import utc_now
from tests.support.files import User, b64, unique_name

pytestmark = pytest.mark.integration


def _envelope(user_body: dict) -> Sealed:
    return Sealed(*(base64.b64decode(user_body[k]) for k in
                    ("encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector")))


# --- the seed flow ----------------------------------------------------------------------------

def test_owner_uploads_grants_friend_decrypts_then_revoke_cuts_friend_off_at_once(alice, bob):
    name, plaintext = unique_name("report"), os.urandom(200_000) + b"the real content"
    alice.put(name, plaintext)

    assert bob.private_key(name)[1]["message"] == "access_denied"
    assert bob.download(name)[0] == 404
    assert alice.grant(name, bob.email) == (200, {"code": 200, "message": "grant_success"})

    status, listed = bob.list_files()
    assert (status, listed["message"], listed["files"]) == (200, "list_files_success", [name])
    assert listed["entries"] == [{"file_name": name, "role": "grantee", "owner": alice.email}]
    status, downloaded = bob.download(name)
    assert (status, downloaded["message"], downloaded["file_name"]) == (200, "download_success", name)
    status, key_body = bob.private_key(name)
    assert (status, key_body["message"]) == (200, "private_key_retrieved")
    private_pem = base64.b64decode(key_body["kms_private_key"])
    assert private_pem.startswith(b"-----BEGIN PRIVATE KEY-----")  # PKCS#8
    assert open_sealed(_envelope(downloaded), name, private_pem) == plaintext

    assert alice.revoke(name, bob.email) == (200, {"code": 200, "message": "revoke_success"})
    assert bob.private_key(name)[:1] == (400,) and bob.private_key(name)[1]["message"] == "access_denied"
    assert bob.download(name)[1]["message"] == "file_not_found"
    assert bob.list_files()[1]["files"] == []
    assert alice.private_key(name)[0] == 200 and alice.download(name)[0] == 200  # the owner keeps access


def test_list_files_shows_owned_and_granted_files_only(alice, bob):
    mine, theirs, private = unique_name("a"), unique_name("b"), unique_name("c")
    alice.put(mine, b"a")
    bob.put(theirs, b"b")
    bob.put(private, b"c")
    bob.grant(theirs, alice.email)
    entries = alice.list_files()[1]["entries"]
    assert entries == sorted([{"file_name": mine, "role": "owner", "owner": alice.email},
                              {"file_name": theirs, "role": "grantee", "owner": bob.email}], key=lambda e: e["file_name"])


def test_public_key_is_base64_pem_spki_of_the_configured_size(alice):
    status, body = alice.public_key(unique_name())
    assert (status, body["message"]) == (200, "public_key_saved")
    key = serialization.load_pem_public_key(base64.b64decode(body["kms_public_key"]))
    assert key.key_size == get_settings().kms_rsa_key_bits == 2048


def test_default_key_size_is_3072(alice, monkeypatch):
    monkeypatch.delenv("KMS_RSA_KEY_BITS")
    _reload_settings()
    try:
        body = alice.public_key(unique_name())[1]
    finally:
        monkeypatch.undo()
        _reload_settings()
    assert serialization.load_pem_public_key(base64.b64decode(body["kms_public_key"])).key_size == 3072


def test_unicode_names_are_one_file_whatever_their_normal_form(alice):
    composed = "résumé-" + os.urandom(3).hex() + " ✓.pdf"
    decomposed = composed.replace("é", "e\u0301")
    status, body = alice.public_key(composed)
    assert status == 200
    assert alice.public_key(decomposed) == (200, body)  # the same name, so the same key
    assert alice.list_files()[1]["files"] == [composed]


# --- ownership and access ---------------------------------------------------------------------

def test_non_owner_cannot_grant_revoke_read_the_key_or_upload(alice, bob):
    name = unique_name()
    sealed = alice.put(name, b"secret")
    assert bob.grant(name, bob.email)[1]["message"] == "permission_denied"
    assert bob.grant(name, alice.email)[:1] == (400,)
    assert bob.revoke(name, alice.email)[1]["message"] == "permission_denied"
    assert bob.private_key(name)[1]["message"] == "access_denied"
    other = unique_name()
    alice.public_key(other)
    assert bob.upload(other, sealed)[:1] == (403,)
    assert bob.upload(other, sealed)[1]["message"] == "permission_denied"
    assert alice.download(other)[1]["message"] == "file_not_found"  # nothing was stored


def test_a_grantee_cannot_upload_or_grant(alice, bob, emulators):
    carol = User.new("carol")
    name = unique_name()
    alice.public_key(name)
    alice.grant(name, bob.email)
    status, _ = bob.upload(name, seal(b"x", name, base64.b64decode(alice.public_key(unique_name())[1]["kms_public_key"])))
    assert status == 403
    assert bob.grant(name, carol.email)[1]["message"] == "permission_denied"


def test_unknown_file_answers_like_a_forbidden_one(alice):
    name = unique_name()
    assert alice.private_key(name)[1]["message"] == "access_denied"
    assert alice.grant(name, "someone@example.org")[1]["message"] == "permission_denied"
    assert alice.download(name) == (404, {"code": 404, "message": "file_not_found", "detail": "no such file is available to you"})


def test_grant_to_unregistered_user_is_404_and_bad_friends_400(alice, bob):
    name = unique_name()
    alice.public_key(name)
    assert alice.grant(name, "nobody-" + os.urandom(4).hex() + "@example.org")[:1] == (404,)
    assert alice.grant(name, "nobody@example.org")[1]["message"] == "user_not_found"
    assert alice.grant(name, "not an email")[1]["message"] == "invalid_email"
    assert alice.grant(name, alice.email.upper())[1]["message"] == "invalid_friend"
    assert alice.post("grant_access", {"file_name": name})[1]["message"] == "missing_fields"
    assert alice.grant(name, "  " + bob.email.upper() + " ")[0] == 200  # normalised
    assert bob.private_key(name)[0] == 200


def test_grant_is_idempotent_and_revoke_of_a_stranger_succeeds(alice, bob):
    name = unique_name()
    alice.public_key(name)
    assert alice.grant(name, bob.email)[0] == alice.grant(name, bob.email)[0] == 200
    assert alice.revoke(name, bob.email)[0] == alice.revoke(name, bob.email)[0] == 200
    assert bob.private_key(name)[1]["message"] == "access_denied"


# --- creation races and no overwrite ----------------------------------------------------------

def test_another_users_public_key_for_a_name_is_file_exists_and_the_owners_is_the_same_key(alice, bob):
    name = unique_name()
    first = alice.public_key(name)[1]["kms_public_key"]
    assert bob.public_key(name) == (400, {"code": 400, "message": "file_exists", "detail": "a key for this file name already exists"})
    assert alice.public_key(name) == (200, {"code": 200, "message": "public_key_saved", "kms_public_key": first})
    assert cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))["public_key"] == base64.b64decode(first).decode()


def test_concurrent_public_key_requests_for_one_name_have_one_winner(emulators):
    name = unique_name("race")
    users = [User.new(f"racer{i}") for i in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda user: user.public_key(name), users))
    winners = [user for user, (status, _) in zip(users, results) if status == 200]
    assert len(winners) == 1
    assert sorted(body["message"] for status, body in results if status != 200) == ["file_exists"] * 7
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))
    assert item["owner"] == winners[0].email
    assert [u for u in users if u.list_files()[1]["files"] == [name]] == winners


def test_second_upload_is_409_and_never_overwrites(alice):
    name = unique_name()
    first = alice.put(name, b"first version")
    public_pem = serialization.load_pem_public_key(
        cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))["public_key"].encode())
    second = seal(b"second version", name, public_pem.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert alice.upload(name, second) == (409, {"code": 409, "message": "file_exists",
                                                "detail": "this file was uploaded before; it cannot be overwritten"})
    assert _envelope(alice.download(name)[1]) == first


# --- input validation -------------------------------------------------------------------------

@pytest.fixture
def reserved(alice) -> tuple[str, Sealed]:
    name = unique_name()
    public_pem = base64.b64decode(alice.public_key(name)[1]["kms_public_key"])
    return name, seal(b"payload", name, public_pem)


@pytest.mark.parametrize("field", ["file_name", "encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector"])
@pytest.mark.parametrize("value", [None, ""])
def test_upload_missing_field_is_400_missing_fields(alice, reserved, field, value):
    name, sealed = reserved
    document = {"file_name": name, **sealed_fields(sealed), field: value}
    status, body = alice.post("upload", {k: v for k, v in document.items() if v is not None})
    assert (status, body["message"]) == (400, "missing_fields")


def sealed_fields(sealed: Sealed) -> dict[str, str]:
    return {"encrypted_data": b64(sealed.encrypted_data), "encrypted_aes_key": b64(sealed.encrypted_aes_key),
            "encrypted_aes_initial_vector": b64(sealed.encrypted_aes_initial_vector)}


@pytest.mark.parametrize("field", ["encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector"])
@pytest.mark.parametrize("value", ["not base64!", "QUJD*", 12345, ["QUJD"]])
def test_upload_bad_base64_is_400_and_stores_nothing(alice, reserved, field, value):
    name, sealed = reserved
    status, body = alice.upload(name, sealed, **{field: value})
    assert (status, body["message"]) == (400, "invalid_base64") and field in body["detail"]
    assert alice.download(name)[0] == 404


def test_upload_checks_envelope_shapes(alice, reserved):
    name, sealed = reserved
    assert alice.upload(name, sealed, encrypted_aes_initial_vector=b64(os.urandom(16)))[1]["message"] == "invalid_field"
    assert alice.upload(name, sealed, encrypted_aes_key=b64(os.urandom(128)))[1]["message"] == "invalid_field"
    assert alice.upload(name, sealed, encrypted_data=b64(b"short"))[1]["message"] == "invalid_field"
    assert alice.upload(name, sealed)[0] == 200


def test_upload_over_the_size_limit_is_413(alice, reserved):
    name, sealed = reserved
    limit = get_settings().datastore_max_file_bytes
    status, body = alice.upload(name, sealed, encrypted_data=b64(os.urandom(limit + 1)))
    assert (status, body["message"]) == (413, "file_too_large")
    huge = json.dumps({"file_name": name, "encrypted_data": "A" * (2 * limit)}).encode()
    assert alice.post("upload", None, raw=huge)[1]["message"] == "body_too_large"
    assert alice.upload(name, sealed, encrypted_data=b64(os.urandom(limit)))[0] == 200  # exactly the limit


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "/", "x" * 256, "nul\x00byte", "tab\there", "line\nfeed", "del\x7f",
                                 "..", ".", 42, ["a"]])
def test_bad_file_names_are_refused_everywhere(alice, bad):
    for status, body in (alice.public_key(bad), alice.private_key(bad), alice.grant(bad, "x@example.org"),
                         alice.revoke(bad, "x@example.org"), alice.post("upload", {"file_name": bad})):
        assert (status, body["message"]) == (400, "invalid_file_name"), body
    if isinstance(bad, str):
        assert alice.download(bad)[1]["message"] == "invalid_file_name"


def test_longest_file_name_is_accepted(alice):
    assert alice.public_key("n" * 243 + os.urandom(6).hex())[0] == 200


def test_missing_file_name_is_missing_fields(alice):
    assert alice.post("get_public_key", {})[1]["message"] == "missing_fields"
    assert alice.download("")[1]["message"] == "missing_fields"


# --- sessions ---------------------------------------------------------------------------------

def _every_endpoint(user: User) -> list[tuple[int, dict]]:
    name = unique_name()
    sealed = Sealed(b"x" * 32, b"k" * 256, b"n" * 12)
    return [user.public_key(name), user.private_key(name), user.grant(name, "x@example.org"),
            user.revoke(name, "x@example.org"), user.upload(name, sealed), user.download(name), user.list_files()]


@pytest.mark.parametrize("sid", ["", "garbage", "A" * 43])
def test_every_endpoint_needs_a_live_session(emulators, sid):
    for status, body in _every_endpoint(User("x@example.org", sid)):
        assert (status, body["message"]) == (403, "invalid_session")


def test_ended_and_expired_sessions_are_refused(alice, monkeypatch):
    name = unique_name()
    alice.put(name, b"data")
    sessions.end_session(alice.sid)
    assert {r[0] for r in _every_endpoint(alice)} == {403}
    bob = User.new("bob")
    monkeypatch.setattr(sessions, "utc_now", lambda: utc_now() + timedelta(hours=13))
    assert {body["message"] for _, body in _every_endpoint(bob)} == {"invalid_session"}


# --- master key -------------------------------------------------------------------------------

def _reload_settings() -> None:
    from shared_code.platform import config

    config.reset_settings()


@pytest.fixture
def master_key(monkeypatch):
    """Set KMS_MASTER_KEY for the test (None: unset); the test settings come back afterwards."""
    def set_key(value: str | None) -> None:
        monkeypatch.setenv("KMS_MASTER_KEY", value) if value is not None else monkeypatch.delenv("KMS_MASTER_KEY")
        _reload_settings()
    yield set_key
    monkeypatch.undo()
    _reload_settings()


@pytest.mark.parametrize("value, reason", [
    (None, "not set"),
    ("not base64 at all", "base64"),
    (base64.b64encode(b"short").decode(), "32 bytes"),
    ("@Microsoft.KeyVault(SecretUri=https://kv.vault.azure.net/secrets/kms-master-key/)", "Key Vault reference"),
])
def test_unusable_master_key_is_a_configuration_error_and_creates_nothing(alice, master_key, value, reason):
    name = unique_name()
    master_key(value)
    status, body = alice.public_key(name)
    assert (status, body["message"]) == (500, "configuration_error")
    assert "KMS_MASTER_KEY" in body["detail"] and reason in body["detail"]
    assert value is None or value not in body["detail"]
    assert cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name)) is None


def test_missing_master_key_fails_key_retrieval_clearly(alice, master_key):
    name = unique_name()
    alice.put(name, b"data")
    master_key(None)
    status, body = alice.private_key(name)
    assert (status, body["message"]) == (500, "configuration_error") and "KMS_MASTER_KEY" in body["detail"]
    assert "kms_private_key" not in body


def test_wrong_master_key_fails_clearly_and_never_returns_key_material(alice, master_key):
    name = unique_name()
    alice.put(name, b"data")
    master_key(base64.b64encode(os.urandom(32)).decode())
    status, body = alice.private_key(name)
    assert (status, body["message"]) == (500, "kms_unwrap_failed")
    assert "KMS_MASTER_KEY" in body["detail"] and set(body) == {"code", "message", "detail"}


def test_a_wrapped_key_moved_to_another_file_does_not_unwrap(alice):
    donor, victim = unique_name(), unique_name()
    alice.public_key(donor)
    alice.public_key(victim)
    donor_item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(donor), kms.key_id(donor))
    victim_item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(victim), kms.key_id(victim))
    cosmos.upsert_item(cosmos.KMS_KEYS, {**victim_item, "wrapped_private_key": donor_item["wrapped_private_key"]})
    assert alice.private_key(victim)[1]["message"] == "kms_unwrap_failed"


def test_stored_state_holds_no_plaintext_private_key(alice, bob):
    name = unique_name()
    alice.put(name, b"data")
    alice.grant(name, bob.email)
    pem = base64.b64decode(alice.private_key(name)[1]["kms_private_key"])
    der = serialization.load_pem_private_key(pem, None).private_bytes(
        serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))
    access = [cosmos.read_item(cosmos.FILE_ACCESS, kms.key_id(name), u.email) for u in (alice, bob)]
    properties = blobs.container_client(get_settings().encrypted_files_container).get_blob_client(kms.key_id(name)).get_blob_properties()
    stored = json.dumps([item, access, properties.metadata])
    for secret in (pem.decode(), base64.b64encode(pem).decode(), base64.b64encode(der).decode(), "PRIVATE KEY"):
        assert secret not in stored
    assert item["wrapped_private_key"]["alg"] == "A256GCM" and len(base64.b64decode(item["wrapped_private_key"]["nonce"])) == 12


# --- storage faults ---------------------------------------------------------------------------

def test_failed_index_entry_leaves_no_key_behind(alice, monkeypatch):
    from shared_code.platform.errors import ServiceUnavailable

    original = cosmos.upsert_item

    def failing_upsert(spec, body):
        if spec is cosmos.FILE_ACCESS:
            raise ServiceUnavailable(detail="injected")
        return original(spec, body)

    name = unique_name()
    monkeypatch.setattr(cosmos, "upsert_item", failing_upsert)
    assert alice.public_key(name)[1]["message"] == "service_unavailable"
    monkeypatch.setattr(cosmos, "upsert_item", original)
    assert cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name)) is None
    assert alice.public_key(name)[0] == 200  # the retry creates it
    assert alice.list_files()[1]["files"] == [name]


def test_items_stored_before_key_generations_keep_working_for_their_owner(alice, bob):
    name = unique_name("legacy")
    alice.put(name, b"older data")
    kid = kms.key_id(name)
    key = cosmos.read_item(cosmos.KMS_KEYS, kid, kid)
    cosmos.upsert_item(cosmos.KMS_KEYS, {k: v for k, v in key.items() if k not in ("generation", "grantees", "access_changed_at")})
    entry = cosmos.read_item(cosmos.FILE_ACCESS, kid, alice.email)
    cosmos.upsert_item(cosmos.FILE_ACCESS, {k: v for k, v in entry.items() if k != "generation"})
    blob = blobs.container_client(get_settings().encrypted_files_container).get_blob_client(kid)
    metadata = blob.get_blob_properties().metadata
    blob.set_blob_metadata({k: v for k, v in metadata.items() if k not in ("key_generation", "upload_id")})

    assert alice.list_files()[1]["files"] == [name]
    assert alice.download(name)[0] == alice.private_key(name)[0] == 200
    assert alice.grant(name, bob.email)[0] == 200
    assert bob.download(name)[0] == bob.private_key(name)[0] == 200
