"""Device flow against real Cosmos (cosmosdb-server) and Blob Storage (Azurite), through the handlers."""

from __future__ import annotations

import hashlib
import json
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared_code.devices import files
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.timeutil import from_iso, utc_now
from tests.support.devices import DeviceActor, call, json_body, new_key, public_pem, sign

pytestmark = pytest.mark.integration


@pytest.fixture
def device(emulators) -> DeviceActor:
    actor = DeviceActor()
    assert actor.register()[0] == 201
    return actor


@pytest.fixture
def attested(device) -> DeviceActor:
    assert device.attest("p256")[0] == 200
    return device


# --- registration -------------------------------------------------------------------------

def test_register_stores_only_a_keyed_hash_of_the_token(emulators):
    actor = DeviceActor()
    status, body = actor.register()
    assert (status, body["message"], body["deviceid"]) == (201, "device_registered", actor.deviceid)
    stored = cosmos.read_item(cosmos.DEVICES, actor.deviceid, actor.deviceid)
    assert actor.token not in json.dumps(stored)
    assert len(stored["token_hash"]) == 64 and stored["token_hash"] != hashlib.sha256(actor.token.encode()).hexdigest()


def test_register_again_with_the_same_token_is_idempotent_and_with_another_conflicts(device):
    assert device.register()[:1] == (201,)  # a retry after a 503 looks the same
    status, body = DeviceActor(deviceid=device.deviceid).register()
    assert (status, body["message"]) == (409, "device_exists")


def test_concurrent_registrations_of_one_id_have_exactly_one_winner(emulators):
    deviceid = "race-" + DeviceActor().deviceid
    contenders = [DeviceActor(deviceid=deviceid) for _ in range(20)]
    with ThreadPoolExecutor(20) as pool:
        statuses = sorted(pool.map(lambda a: a.register()[0], contenders))
    assert statuses.count(201) == 1 and statuses.count(409) == 19
    assert sum(1 for a in contenders if _challenge_status(a) == 200) == 1  # exactly one token works


def _challenge_status(actor: DeviceActor) -> int:
    return call("get_challenge", "GET", "api/challenge", headers=actor.headers)[0]


# --- challenges ---------------------------------------------------------------------------

def test_challenge_is_random_bound_and_expiring(device):
    status, body = call("get_challenge", "GET", "api/challenge", headers=device.headers)
    assert status == 200 and body["message"] == "challenge_issued"
    assert len(body["challenge"]) >= 22 and set(body["challenge"]) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    ttl = from_iso(body["expires_at"]) - utc_now()
    assert timedelta(seconds=get_settings().challenge_ttl_seconds - 5) < ttl <= timedelta(seconds=get_settings().challenge_ttl_seconds)
    assert device.challenge() != body["challenge"]


@pytest.mark.parametrize("headers, expected", [
    ({}, (401, "missing_credentials")),
    ({"deviceid": "nobody-here"}, (401, "missing_credentials")),
    ({"deviceid": "nobody-here", "deviceToken": "x" * 40}, (403, "invalid_credentials")),
])
def test_challenge_requires_valid_credentials(emulators, headers, expected):
    status, body = call("get_challenge", "GET", "api/challenge", headers=headers)
    assert (status, body["message"]) == expected


def test_challenge_with_wrong_token_is_forbidden(device):
    status, body = call("get_challenge", "GET", "api/challenge",
                        headers={"deviceid": device.deviceid, "deviceToken": device.token + "x"})
    assert (status, body["message"]) == (403, "invalid_credentials")


# --- attestation --------------------------------------------------------------------------

@pytest.mark.parametrize("kind, pss, key_type", [
    ("p256", False, "ec-p256"), ("p384", False, "ec-p384"), ("rsa2048", False, "rsa-2048"),
    ("rsa-pss", True, "rsa-2048"), ("ed25519", False, "ed25519"),
])
def test_attest_accepts_each_supported_key_type(device, kind, pss, key_type):
    status, body = device.attest(kind, pss=pss)
    assert (status, body["message"], body["key_type"]) == (200, "device_attested", key_type)
    stored = cosmos.read_item(cosmos.DEVICES, device.deviceid, device.deviceid)
    assert stored["public_key"] == public_pem(device.key) and stored["attested_at"]


@pytest.mark.parametrize("kind", ["p521", "k256", "rsa1024"])
def test_attest_rejects_unusable_keys(device, kind):
    status, body = device.attest(kind)
    assert (status, body["message"]) == (400, "unusable_key")


@pytest.mark.parametrize("public_key", ["not a key", "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", 42])
def test_attest_rejects_garbage_keys(device, public_key):
    h, b = json_body({"public_key": public_key, "challenge": device.challenge(), "signature": "AAAA"})
    status, body = call("attest_device", "POST", "attest-device", headers={**device.headers, **h}, body=b)
    assert (status, body["message"]) == (400, "unusable_key")


def test_attest_with_bad_signature_is_unauthorized_and_keeps_device_unattested(device):
    key, challenge = new_key(), device.challenge()
    h, b = json_body({"public_key": public_pem(key), "challenge": challenge,
                      "signature": sign(new_key(), f"attest:{challenge}".encode())})
    status, body = call("attest_device", "POST", "attest-device", headers={**device.headers, **h}, body=b)
    assert (status, body["message"]) == (401, "invalid_signature")
    assert cosmos.read_item(cosmos.DEVICES, device.deviceid, device.deviceid)["public_key"] is None


def test_an_attestation_challenge_serves_that_attestation_only(device):
    challenge = device.challenge()
    assert device.attest(challenge=challenge)[0] == 200
    again = DeviceActor(deviceid=device.deviceid, token=device.token)
    assert again.attest(key=device.key, challenge=challenge)[1]["message"] == "device_attested"  # a replay changes nothing
    assert again.attest(challenge=challenge)[1]["message"] == "already_attested"
    status, body = device.upload(b"data", challenge=challenge)
    assert (status, body["message"]) == (401, "invalid_challenge")


def test_attest_with_another_devices_challenge_fails(device):
    stranger = DeviceActor()
    stranger.register()
    status, body = device.attest(challenge=stranger.challenge())
    assert (status, body["message"]) == (401, "invalid_challenge")


def test_reattest_same_key_is_idempotent_other_key_conflicts(attested):
    assert attested.attest(key=attested.key)[0] == 200
    status, body = DeviceActor(deviceid=attested.deviceid, token=attested.token).attest("p256")
    assert (status, body["message"]) == (409, "already_attested")


def test_concurrent_attestations_with_different_keys_bind_exactly_one(device):
    actors = [DeviceActor(deviceid=device.deviceid, token=device.token) for _ in range(8)]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda a: a.attest("p256")[0], actors))
    assert results.count(200) == 1 and results.count(409) == 7
    winner = actors[results.index(200)]
    assert cosmos.read_item(cosmos.DEVICES, device.deviceid, device.deviceid)["public_key"] == public_pem(winner.key)


# --- uploads ------------------------------------------------------------------------------

def _blob_bytes(blob_name: str) -> bytes:
    return blobs.container_client(get_settings().uploads_container).download_blob(blob_name).readall()


def test_upload_stores_blob_and_record(attested):
    data = b"hello trustgate\n" * 1000
    status, body = attested.upload(data, filename="notes.txt")
    assert (status, body["message"]) == (200, "file_uploaded")
    assert body["sha256"] == hashlib.sha256(data).hexdigest() and body["size"] == len(data)
    assert body["blob_name"] == f"{attested.deviceid}/{body['file_id']}"
    assert _blob_bytes(body["blob_name"]) == data
    record = cosmos.read_item(cosmos.FILES, body["file_id"], attested.deviceid)
    assert record["name"] == "notes.txt" and record["status"] in {"uploaded", "verified"}


def test_a_replayed_upload_stores_nothing_new_and_its_challenge_nothing_else(attested):
    challenge = attested.challenge()
    status, first = attested.upload(b"first", challenge=challenge)
    assert status == 200
    assert attested.upload(b"first", challenge=challenge) == (200, first)  # the same signed request: the same file
    status, body = attested.upload(b"other bytes", challenge=challenge)
    assert (status, body["message"]) == (401, "invalid_challenge")
    assert [f["file_id"] for f in files.list_files(attested.deviceid, 10, None)[0]] == [first["file_id"]]


def test_upload_signature_is_bound_to_the_bytes(attested):
    status, body = attested.upload(b"real bytes", signed_data=b"other bytes")
    assert (status, body["message"]) == (401, "invalid_signature")


def test_concurrent_uses_of_one_challenge_have_exactly_one_winner(attested):
    challenge = attested.challenge()
    requests = [attested.upload_request(b"payload %d" % i, challenge=challenge) for i in range(10)]
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda r: call("upload_file", "POST", "upload-file", headers=r[0], body=r[1])[0], requests))
    assert statuses.count(200) == 1 and statuses.count(401) == 9


def test_upload_from_unattested_device_is_forbidden(device):
    device.key = new_key()
    status, body = device.upload(b"data")
    assert (status, body["message"]) == (403, "device_not_attested")


def test_upload_with_mismatching_public_key_is_forbidden(attested):
    status, body = attested.upload(b"data", extra={"public_key": public_pem(new_key())})
    assert (status, body["message"]) == (403, "public_key_mismatch")


def test_upload_with_matching_public_key_succeeds(attested):
    assert attested.upload(b"data", extra={"public_key": public_pem(attested.key)})[0] == 200


def test_upload_rejects_disallowed_content_type_without_using_the_challenge(attested):
    challenge = attested.challenge()
    status, body = attested.upload(b"MZ\x90\x00", content_type="application/x-msdownload", challenge=challenge)
    assert (status, body["message"]) == (400, "file_type_not_allowed")
    assert attested.upload(b"ok", challenge=challenge)[0] == 200


def test_path_like_and_unicode_names_stay_metadata(attested):
    status, body = attested.upload(b"x", filename="../../etc/pässwd\u202e.txt")
    assert status == 200 and body["blob_name"] == f"{attested.deviceid}/{body['file_id']}"
    record = cosmos.read_item(cosmos.FILES, body["file_id"], attested.deviceid)
    assert record["name"] == "pässwd.txt"


def test_missing_fields_and_wrong_media_type(attested):
    headers, body = attested.upload_request(b"x")
    broken = body.replace(b'name="file"', b'name="other"')
    status, result = call("upload_file", "POST", "upload-file", headers=headers, body=broken)
    assert (status, result["message"]) == (400, "missing_fields")
    status, result = call("upload_file", "POST", "upload-file",
                          headers={**attested.headers, "content-type": "application/json"}, body=b"{}")
    assert (status, result["message"]) == (415, "unsupported_media_type")


def test_oversized_upload_is_413_and_stores_nothing(attested, monkeypatch):
    from tests.conftest import reset_app_state

    monkeypatch.setenv("MAX_UPLOAD_BYTES", "1024")
    reset_app_state()
    try:
        status, body = attested.upload(b"x" * 2048)
        assert (status, body["message"]) == (413, "file_too_large")
        files, _ = _list(attested)
        assert files == []
    finally:
        monkeypatch.undo()
        reset_app_state()


# --- listing ------------------------------------------------------------------------------

def _list(actor: DeviceActor, **params) -> tuple[list[dict], str | None]:
    status, body = call("list_files", "GET", "api/files", headers=actor.headers, params=params)
    assert status == 200, body
    return body["files"], body["continuation"]


def test_list_files_pages_newest_first_and_only_own_files(attested):
    ids = [attested.upload(f"file {i}".encode(), filename=f"f{i}.txt")[1]["file_id"] for i in range(5)]
    stranger = DeviceActor()
    stranger.register()
    assert _list(stranger) == ([], None)
    seen, token = [], None
    while True:
        page, token = _list(attested, page_size="2", **({"continuation": token} if token else {}))
        assert len(page) <= 2
        seen += page
        if not token:
            break
    assert [f["file_id"] for f in seen] == list(reversed(ids))
    assert set(seen[0]) == {"file_id", "name", "size", "content_type", "sha256", "status", "uploaded_at"}


@pytest.mark.parametrize("params, message", [
    ({"page_size": "0"}, "invalid_page_size"), ({"page_size": "abc"}, "invalid_page_size"),
    ({"page_size": "\u00b2"}, "invalid_page_size"),
    ({"continuation": "%%%not-a-token"}, "invalid_continuation"),
    ({"continuation": "eyJ0b2tlbiI6ICJnYXJiYWdlIn0"}, "invalid_continuation"),
    ({"continuation": "Z2FyYmFnZQ"}, "invalid_continuation"),
])
def test_list_files_rejects_bad_paging(attested, params, message):
    status, body = call("list_files", "GET", "api/files", headers=attested.headers, params=params)
    assert (status, body["message"]) == (400, message)


def test_continuation_of_one_device_is_refused_for_another(attested):
    for i in range(3):
        attested.upload(b"%d" % i)
    _, token = _list(attested, page_size="1")
    stranger = DeviceActor()
    stranger.register()
    status, body = call("list_files", "GET", "api/files", headers=stranger.headers, params={"continuation": token})
    assert (status, body["message"]) == (400, "invalid_continuation")


def test_unparseable_claimed_key_is_400(attested):
    status, body = attested.upload(b"data", extra={"public_key": "garbage"})
    assert (status, body["message"]) == (400, "unusable_key")
