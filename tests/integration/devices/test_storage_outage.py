"""Storage faults: 503, and no partial state the device can see (no record without its blob).

Uses its own emulators (function scope) so stopping them does not disturb other tests.
"""


import pytest

from shared_code.devices import files
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from tests.support.devices import DeviceActor, call

pytestmark = pytest.mark.integration


@pytest.fixture
def own_stack(private_stack):
    """The test's own emulators and a registered, attested device on them."""
    actor = DeviceActor()
    actor.register()
    actor.attest()
    return private_stack, actor


def _blob_names() -> list[str]:
    return [b.name for b in blobs.container_client(get_settings().uploads_container).list_blobs()]


def test_blob_outage_gives_503_and_no_record(own_stack):
    stack, actor = own_stack
    headers, body = actor.upload_request(b"data")
    stack.stop_blob()
    status, result = call("upload_file", "POST", "upload-file", headers=headers, body=body)
    assert (status, result["message"]) == (503, "service_unavailable")
    listed, _ = files.list_files(actor.deviceid, 10, None)
    assert listed == []


def test_a_failed_record_write_keeps_the_blob_for_the_retry(own_stack, monkeypatch):
    _, actor = own_stack

    def failing_create(spec, body):
        if spec is cosmos.FILES:
            raise ServiceUnavailable(detail="injected")
        return original(spec, body)

    original = cosmos.create_item
    headers, body = actor.upload_request(b"data")
    monkeypatch.setattr(cosmos, "create_item", failing_create)
    assert call("upload_file", "POST", "upload-file", headers=headers, body=body)[0] == 503
    assert files.list_files(actor.deviceid, 10, None) == ([], None)  # stored, not listed (the blob trigger lists it)
    monkeypatch.setattr(cosmos, "create_item", original)
    status, result = call("upload_file", "POST", "upload-file", headers=headers, body=body)
    assert status == 200
    assert _blob_names() == [result["blob_name"]]
    assert [f["file_id"] for f in files.list_files(actor.deviceid, 10, None)[0]] == [result["file_id"]]


def test_cosmos_outage_gives_503_on_every_device_call_and_health(own_stack):
    stack, actor = own_stack
    stack.stop_cosmos()
    assert call("get_challenge", "GET", "api/challenge", headers=actor.headers)[0] == 503
    assert actor.register()[0] == 503
    status, result = call("health", "GET", "health")
    assert (status, result["message"], result["cosmos"]["status"], result["blob"]["status"]) == (503, "unhealthy", "down", "up")


def test_health_is_200_when_both_stores_are_up(own_stack):
    status, result = call("health", "GET", "health")
    assert (status, result["cosmos"]["status"], result["blob"]["status"]) == (200, "up", "up")
