"""The upload blob trigger against real Azurite + Cosmos: digest recomputed, record upserted."""

import pytest

from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from tests.support.devices import DeviceActor, run_blob_trigger

pytestmark = pytest.mark.integration


@pytest.fixture
def uploaded(emulators):
    actor = DeviceActor()
    actor.register()
    actor.attest()
    status, body = actor.upload(b"trigger me " * 100, filename="t.txt")
    assert status == 200
    return actor, body


def test_trigger_marks_intact_upload_verified_and_is_idempotent(uploaded):
    actor, body = uploaded
    run_blob_trigger(body["blob_name"])
    run_blob_trigger(body["blob_name"])
    record = cosmos.read_item(cosmos.FILES, body["file_id"], actor.deviceid)
    assert record["status"] == "verified" and record["sha256"] == body["sha256"]
    assert record["name"] == "t.txt" and record["content_type"] == "text/plain" and record["verified_at"]
    listed = cosmos.query_page(cosmos.FILES, "SELECT * FROM c WHERE c.deviceid = @d AND c.blob_name = @b",
                               [{"name": "@d", "value": actor.deviceid}, {"name": "@b", "value": body["blob_name"]}],
                               partition_key=actor.deviceid,
                               page_size=10, continuation=None)[0]
    assert len(listed) == 1


def test_trigger_flags_a_blob_changed_after_upload(uploaded):
    actor, body = uploaded
    client = blobs.container_client(get_settings().uploads_container).get_blob_client(body["blob_name"])
    metadata = client.get_blob_properties().metadata
    client.upload_blob(b"tampered", overwrite=True, metadata=metadata)
    run_blob_trigger(body["blob_name"])
    record = cosmos.read_item(cosmos.FILES, body["file_id"], actor.deviceid)
    assert record["status"] == "digest_mismatch" and record["declared_sha256"] == body["sha256"]


def test_trigger_records_a_blob_that_arrived_before_its_record(emulators):
    container = blobs.container_client(get_settings().uploads_container)
    container.upload_blob("early-device/0123abcd", b"abc", metadata={"sha256": "0" * 64, "original_name": "a%20b.bin"})
    run_blob_trigger("early-device/0123abcd")
    record = cosmos.read_item(cosmos.FILES, "0123abcd", "early-device")
    assert record["name"] == "a b.bin" and record["status"] == "digest_mismatch" and record["size"] == 3
