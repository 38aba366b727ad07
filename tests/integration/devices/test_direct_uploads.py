"""Direct-to-blob uploads against real Azurite + cosmosdb-server: grant, SAS scope, staging,
verification (tampering, rewrites, retries), resume, concurrency, expiry."""

from __future__ import annotations

import hashlib
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.storage.blob import BlobBlock, BlobClient, ContainerClient

from client.direct_upload import send_blocks
from shared_code.devices import direct_uploads, upload_slots, upload_verifier
from shared_code.platform import blob_access, blob_copy, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.timeutil import to_iso, utc_now
from tests.support.devices import DeviceActor, new_key
from tests.support.direct_uploads import (
    grant,
    grant_body,
    renew,
    request_grant,
    run_verifier,
    stage_and_commit,
    staged_client,
    upload_state,
    uploaded_client,
)

pytestmark = pytest.mark.integration

BLOCK = direct_uploads.BLOCK_BYTES


@pytest.fixture
def actor(attested_device) -> DeviceActor:
    return attested_device


def _staged_name(body: dict) -> str:
    return direct_uploads.staging_blob_name(_deviceid(body), body["upload_id"])


def _deviceid(body: dict) -> str:
    return body["blob_name"].split("/", 1)[0]


def _verified(actor: DeviceActor, data: bytes) -> dict:
    """A grant for ``data``, staged, committed and verified; returns the grant."""
    body = grant(actor, data)
    stage_and_commit(body["upload_url"], data, BLOCK)
    run_verifier(_staged_name(body))
    return body


def _record(actor: DeviceActor, upload_id: str) -> dict:
    return cosmos.read_item(cosmos.FILES, upload_id, actor.deviceid)


def _listed_status(actor: DeviceActor, file_id: str) -> str:
    from tests.support.devices import call

    status, body = call("list_files", "GET", "api/files", headers=actor.headers)
    assert status == 200
    return next(f["status"] for f in body["files"] if f["file_id"] == file_id)


def test_whole_flow_grant_stage_verify_copy(actor):
    data = os.urandom(2 * BLOCK + 12345)
    body = grant(actor, data, content_type="application/zip", file_name="dir/../capture.zip")
    assert body["state"] == "pending" and body["block_size"] == BLOCK and body["size"] == len(data)
    assert body["blob_name"] == f"{actor.deviceid}/{body['upload_id']}" and body["name"] == "capture.zip"
    assert _listed_status(actor, body["file_id"]) == "pending"

    stage_and_commit(body["upload_url"], data, body["block_size"])
    run_verifier(_staged_name(body))

    status, state = upload_state(actor, body["upload_id"])
    assert status == 200 and state["state"] == "verified" and state["verified_at"]
    copy = uploaded_client(body["blob_name"])
    assert copy.download_blob().readall() == data
    properties = copy.get_blob_properties()
    assert properties.content_settings.content_type == "application/zip"
    assert properties.metadata["upload_id"] == body["upload_id"] and properties.metadata["sha256"] == body["sha256"]
    assert not staged_client(_staged_name(body)).exists()
    record = _record(actor, body["upload_id"])
    assert "ttl" not in record and "expires_at" not in record  # a verified file never expires
    assert _listed_status(actor, body["file_id"]) == "verified"
    assert cosmos.read_item(cosmos.UPLOAD_SLOTS, str(record["upload"]["slot"]), actor.deviceid) is None


def test_uploads_trigger_leaves_the_verified_copy_alone(actor):
    from tests.support.devices import HANDLERS

    body = _verified(actor, os.urandom(1000))
    before = _record(actor, body["upload_id"])
    HANDLERS["record_upload"](uploaded_client(body["blob_name"]))
    assert _record(actor, body["upload_id"])["_etag"] == before["_etag"]


@pytest.mark.parametrize("tamper, expected", [
    ("other_bytes", "digest_mismatch"),
    ("other_size", "size_mismatch"),
    ("appended_block", "size_mismatch"),
])
def test_a_tampered_staged_blob_never_becomes_verified(actor, tamper, expected):
    data = os.urandom(BLOCK + 100)
    body = grant(actor, data)
    staged = BlobClient.from_blob_url(body["upload_url"])
    if tamper == "other_bytes":
        stage_and_commit(body["upload_url"], os.urandom(len(data)), BLOCK)
    elif tamper == "other_size":
        stage_and_commit(body["upload_url"], data[:-1], BLOCK)
    else:  # the right bytes, committed; then one more block appended and committed again
        stage_and_commit(body["upload_url"], data, BLOCK)
        staged.stage_block("000009", b"extra")
        staged.commit_block_list([BlobBlock("000000"), BlobBlock("000001"), BlobBlock("000009")])
    run_verifier(_staged_name(body))
    run_verifier(_staged_name(body))  # a retry changes nothing
    status, state = upload_state(actor, body["upload_id"])
    assert status == 200 and state["state"] == expected
    assert not uploaded_client(body["blob_name"]).exists()
    assert not staged_client(_staged_name(body)).exists()
    assert _listed_status(actor, body["file_id"]) == expected
    assert renew(actor, body["upload_id"])[0] == 409


def test_a_blob_rewritten_after_hashing_never_reaches_uploads(actor, monkeypatch):
    data = os.urandom(BLOCK + 10)
    body = grant(actor, data)
    stage_and_commit(body["upload_url"], data, BLOCK)
    original = blob_copy.sha256_of_version

    def hash_then_rewrite(client, etag, size, *args, **kwargs):
        digest = original(client, etag, size, *args, **kwargs)
        stage_and_commit(body["upload_url"], os.urandom(len(data)), BLOCK)  # same size, other bytes
        return digest

    monkeypatch.setattr(blob_copy, "sha256_of_version", hash_then_rewrite)
    assert upload_verifier.verify_staged_blob(_staged_name(body)) == "changed"
    assert not uploaded_client(body["blob_name"]).exists()
    assert upload_state(actor, body["upload_id"])[1]["state"] == "pending"
    monkeypatch.setattr(blob_copy, "sha256_of_version", original)
    assert upload_verifier.verify_staged_blob(_staged_name(body)) == "digest_mismatch"  # the rewrite's own event
    assert not uploaded_client(body["blob_name"]).exists()


def test_a_blob_rewritten_during_the_read_is_not_judged(actor):
    data = os.urandom(3 * 1024 * 1024)
    body = grant(actor, data)
    stage_and_commit(body["upload_url"], data, BLOCK)
    client = staged_client(_staged_name(body))
    etag = client.get_blob_properties().etag
    stage_and_commit(body["upload_url"], os.urandom(len(data)), BLOCK)
    with pytest.raises(blob_copy.SourceChanged):
        blob_copy.sha256_of_version(client, etag, len(data), chunk_bytes=1024 * 1024)


def test_copy_refuses_a_source_that_changed(actor):
    data = os.urandom(1000)
    body = grant(actor, data)
    stage_and_commit(body["upload_url"], data, BLOCK)
    source = staged_client(_staged_name(body))
    etag = source.get_blob_properties().etag
    stage_and_commit(body["upload_url"], data[::-1], BLOCK)
    url = blob_access.read_url(get_settings().upload_staging_container, source.blob_name, 60)
    with pytest.raises(blob_copy.SourceChanged):
        blob_copy.copy_version(source, url, etag, len(data), uploaded_client(body["blob_name"]),
                               metadata={}, content_type="application/octet-stream")
    assert not uploaded_client(body["blob_name"]).exists()


def test_the_upload_url_can_only_create_and_write_its_one_blob(actor):
    data = os.urandom(2000)
    body = grant(actor, data)
    url = body["upload_url"]
    assert "sp=cw" in url and "sr=b" in url
    staged = BlobClient.from_blob_url(url)
    staged.upload_blob(data, overwrite=True)  # create + write: allowed
    for refused in (
        lambda: staged.download_blob().readall(),
        lambda: staged.get_blob_properties(),
        lambda: staged.get_block_list("all"),
        lambda: staged.delete_blob(),
        lambda: list(ContainerClient.from_container_url(url.replace(f"/{_deviceid(body)}/{body['upload_id']}", "")
                                                        ).list_blobs()),
        lambda: BlobClient.from_blob_url(url.replace(body["upload_id"], "0" * 32)).upload_blob(b"x", overwrite=True),
        lambda: BlobClient.from_blob_url(url.replace(get_settings().upload_staging_container,
                                                     get_settings().uploads_container)).upload_blob(b"x", overwrite=True),
    ):
        with pytest.raises(HttpResponseError) as caught:
            refused()
        assert caught.value.status_code == 403


def test_an_expired_upload_url_is_refused(actor):
    body = grant(actor, b"late")
    short = blob_access.upload_url(get_settings().upload_staging_container, _staged_name(body),
                                   utc_now() + timedelta(seconds=2))
    time.sleep(3)
    with pytest.raises(HttpResponseError) as caught:
        BlobClient.from_blob_url(short).upload_blob(b"late", overwrite=True)
    assert caught.value.status_code == 403


def test_a_grant_is_its_devices_alone(actor):
    other = DeviceActor()
    other.register()
    other.attest()
    data = os.urandom(500)
    body = grant(actor, data)
    assert upload_state(other, body["upload_id"])[0] == 404
    assert renew(other, body["upload_id"])[0] == 404
    # Another device cannot use this device's challenge, even signing with its own key.
    challenge = actor.challenge()
    status, answer = request_grant(other, grant_body(other, data, challenge=challenge))
    assert status == 401 and answer["message"] == "invalid_challenge"
    # Nor this device's key: its signature does not verify for the other device.
    status, answer = request_grant(other, grant_body(other, data, signer=actor.key))
    assert status == 401 and answer["message"] == "invalid_signature"


def test_refusals_change_nothing(actor):
    data = os.urandom(100)
    cases = [
        (grant_body(actor, data, content_type="application/x-msdownload"), 400, "file_type_not_allowed"),
        (grant_body(actor, data, size=get_settings().max_direct_upload_bytes + 1), 413, "file_too_large"),
        (grant_body(actor, data, signer=new_key("p256")), 401, "invalid_signature"),
        ({**grant_body(actor, data), "sha256": "A" * 64}, 400, "invalid_field"),
        ({**grant_body(actor, data), "size": "100"}, 400, "invalid_field"),
    ]
    for body, status, message in cases:
        got, answer = request_grant(actor, body)
        assert (got, answer["message"]) == (status, message), answer
        assert direct_uploads.read_grant(actor.deviceid, direct_uploads.upload_id_for(actor.deviceid, body["challenge"])) is None
    assert direct_uploads.pending_grants(actor.deviceid) == []


def test_a_retried_grant_request_returns_the_same_grant_and_uses_the_challenge(actor):
    data = os.urandom(100)
    body = grant_body(actor, data)
    first = request_grant(actor, body)
    again = request_grant(actor, body)
    assert first[0] == again[0] == 201 and first[1]["upload_id"] == again[1]["upload_id"]
    assert len(direct_uploads.pending_grants(actor.deviceid)) == 1
    # The challenge is used up: not for another grant, not for /upload-file.
    status, answer = request_grant(actor, grant_body(actor, os.urandom(100), challenge=body["challenge"]))
    assert status == 401 and answer["message"] == "invalid_challenge"
    assert actor.upload(b"x", challenge=body["challenge"])[0] == 401


def test_a_retry_after_the_grant_write_timed_out_completes(actor, monkeypatch):
    """The grant lands but the caller saw a 503 before the challenge was consumed: the retry of
    the same signed request gets that grant and consumes the challenge."""
    data = os.urandom(100)
    body = grant_body(actor, data)
    real_create = cosmos.create_item

    def create_then_time_out(spec, item):
        real_create(spec, item)
        if spec is cosmos.FILES:
            raise ServiceUnavailable(detail="timed out")
        return item

    monkeypatch.setattr(cosmos, "create_item", create_then_time_out)
    assert request_grant(actor, body)[0] == 503
    monkeypatch.setattr(cosmos, "create_item", real_create)
    status, answer = request_grant(actor, body)
    assert status == 201 and answer["upload_id"] == direct_uploads.upload_id_for(actor.deviceid, body["challenge"])
    assert actor.upload(b"x", challenge=body["challenge"])[0] == 401


def test_resume_sends_only_the_missing_blocks(actor, tmp_path):
    data = os.urandom(3 * BLOCK + 7)
    path = tmp_path / "capture.bin"
    path.write_bytes(data)
    body = grant(actor, data)
    staged = BlobClient.from_blob_url(body["upload_url"])
    staged.stage_block("000000", data[:BLOCK])
    staged.stage_block("000002", data[2 * BLOCK:3 * BLOCK])  # an interrupted, unordered transfer
    status, renewed = renew(actor, body["upload_id"])
    assert status == 200 and renewed["committed"] is False and renewed["block_size"] == BLOCK
    assert sorted(b["id"] for b in renewed["staged_blocks"]) == ["000000", "000002"]
    sent, skipped = send_blocks(renewed["upload_url"], path, len(data), renewed["block_size"],
                                staged={b["id"]: b["size"] for b in renewed["staged_blocks"]})
    assert (sent, skipped) == (2, 2)
    run_verifier(_staged_name(body))
    assert upload_state(actor, body["upload_id"])[1]["state"] == "verified"
    assert uploaded_client(body["blob_name"]).download_blob().readall() == data


def test_pending_grants_per_device_are_limited_under_concurrency(actor):
    limit = get_settings().max_pending_uploads_per_device
    bodies = [grant_body(actor, os.urandom(64)) for _ in range(limit + 4)]
    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        results = list(pool.map(lambda b: request_grant(actor, b), bodies))
    statuses = sorted(status for status, _ in results)
    assert statuses == [201] * limit + [429] * 4, [r[1].get("message") for r in results]
    refused = next(answer for status, answer in results if status == 429)
    assert refused["message"] == "too_many_pending_uploads"
    assert len(direct_uploads.pending_grants(actor.deviceid)) == limit
    # One verified frees its slot; grants are independent of each other.
    granted = [(body, answer) for body, (status, answer) in zip(bodies, results) if status == 201]
    _, first = granted[0]
    data = os.urandom(64)
    assert hashlib.sha256(data).hexdigest() != first["sha256"]
    assert request_grant(actor, grant_body(actor, data))[0] == 429
    upload_verifier._conclude(_record(actor, first["upload_id"]), "digest_mismatch")
    assert request_grant(actor, grant_body(actor, data))[0] == 201


def test_a_slot_held_by_a_grant_that_never_landed_is_taken_over(actor, monkeypatch):
    limit = get_settings().max_pending_uploads_per_device
    for _ in range(limit - 1):
        grant(actor, os.urandom(10))
    real_create = cosmos.create_item

    def no_grant(spec, item):
        if spec is cosmos.FILES:
            raise ServiceUnavailable(detail="down")
        return real_create(spec, item)

    monkeypatch.setattr(cosmos, "create_item", no_grant)
    assert request_grant(actor, grant_body(actor, os.urandom(10)))[0] == 503  # slot taken, grant lost
    monkeypatch.setattr(cosmos, "create_item", real_create)
    # Its request may still be creating the grant: the slot counts for the grace period, then not.
    assert request_grant(actor, grant_body(actor, os.urandom(10)))[0] == 429
    later = utc_now() + timedelta(seconds=upload_slots.GRANT_CREATION_GRACE_SECONDS + 1)
    monkeypatch.setattr(upload_slots, "utc_now", lambda: later)
    assert request_grant(actor, grant_body(actor, os.urandom(10)))[0] == 201  # that slot is reclaimed


def test_verifier_retries_are_idempotent_also_after_a_crash_between_copy_and_record(actor, monkeypatch):
    data = os.urandom(BLOCK + 1)
    body = grant(actor, data)
    stage_and_commit(body["upload_url"], data, BLOCK)
    real_replace = cosmos.replace_item

    def crash(spec, item, etag):
        raise ServiceUnavailable(detail="died after the copy")

    monkeypatch.setattr(cosmos, "replace_item", crash)
    with pytest.raises(ServiceUnavailable):
        run_verifier(_staged_name(body))
    assert uploaded_client(body["blob_name"]).exists()  # the copy landed...
    assert upload_state(actor, body["upload_id"])[1]["state"] == "pending"  # ...but nobody sees it yet
    monkeypatch.setattr(cosmos, "replace_item", real_replace)
    assert upload_verifier.verify_staged_blob(_staged_name(body)) == "verified"
    assert upload_verifier.verify_staged_blob(_staged_name(body)) == "already_verified"
    assert upload_state(actor, body["upload_id"])[1]["state"] == "verified"
    assert uploaded_client(body["blob_name"]).download_blob().readall() == data


def test_the_first_verdict_stands(actor):
    data = os.urandom(100)
    body = grant(actor, data)
    record = _record(actor, body["upload_id"])
    assert upload_verifier._conclude(record, "digest_mismatch") == "digest_mismatch"
    assert upload_verifier._conclude(record, "verified") == "already_digest_mismatch"  # stale etag loses
    assert upload_state(actor, body["upload_id"])[1]["state"] == "digest_mismatch"


def test_a_staged_blob_without_grant_is_deleted(emulators):
    orphan = staged_client(f"dev-nobody/{'a' * 32}")
    orphan.upload_blob(b"who wrote this", overwrite=True)
    assert upload_verifier.verify_staged_blob(orphan.blob_name) == "orphan"
    assert not orphan.exists()


def test_sweep_retires_expired_grants_and_their_staged_blobs(actor):
    data = os.urandom(100)
    body = grant(actor, data)
    BlobClient.from_blob_url(body["upload_url"]).upload_blob(data[:10], overwrite=True)  # half an upload
    record = _record(actor, body["upload_id"])
    record["upload"]["deadline"] = to_iso(utc_now() - timedelta(hours=2))
    cosmos.replace_item(cosmos.FILES, record, record["_etag"])
    assert upload_state(actor, body["upload_id"])[1]["state"] == "expired"  # readers check the deadline
    assert renew(actor, body["upload_id"])[0] == 409
    assert upload_verifier.sweep_expired_grants() >= 1
    assert not staged_client(_staged_name(body)).exists()
    stored = _record(actor, body["upload_id"])
    assert stored["status"] == "expired" and stored["expires_at"] > to_iso(utc_now())
    assert cosmos.read_item(cosmos.UPLOAD_SLOTS, str(stored["upload"]["slot"]), actor.deviceid) is None


def test_the_purge_removes_retired_grants_and_never_files(actor):
    from shared_code.platform import purge

    verified = _verified(actor, os.urandom(100))
    refused = grant(actor, b"signed bytes")
    upload_verifier._conclude(_record(actor, refused["upload_id"]), "digest_mismatch")
    status, plain = actor.upload(b"through /upload-file")
    assert status == 200
    purge.purge_container(cosmos.FILES, utc_now() + direct_uploads.RETENTION + timedelta(days=1))
    assert _record(actor, verified["upload_id"])["status"] == "verified"
    assert cosmos.read_item(cosmos.FILES, plain["file_id"], actor.deviceid) is not None
    assert _record(actor, refused["upload_id"]) is None
    assert upload_state(actor, refused["upload_id"])[0] == 404
