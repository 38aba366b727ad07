"""Blob triggers against Azurite: once per blob version, receipts that survive restarts, retries."""

from __future__ import annotations

import logging
import time
import uuid

import azure.functions as func
import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.blob import BlobServiceClient

from devhost.blobwatch import MAX_ATTEMPTS, RECEIPTS_CONTAINER, default_host_id
from devhost.server import serving
from tests.fixtures import sample_app

from .conftest import wait_until

pytestmark = pytest.mark.integration

POLL = 0.1


@pytest.fixture
def storage(emulators) -> BlobServiceClient:
    client = BlobServiceClient.from_connection_string(emulators.blob_connection_string)
    try:
        client.create_container("samples")
    except ResourceExistsError:
        pass
    return client


def calls_for(sample, name: str) -> list[dict]:
    return [c for c in sample.calls["on_sample_blob"] if c["name"] == f"samples/{name}"]


def quiet_polls() -> None:
    """Long enough for several polls to have happened."""
    time.sleep(POLL * 6)


def test_new_blob_fires_once_and_again_only_when_overwritten(sample, storage):
    name = f"docs/{uuid.uuid4().hex}.txt"
    blob = storage.get_blob_client("samples", name)
    with serving(sample_app.app, timers=False, blob_poll_seconds=POLL) as host:
        blob.upload_blob(b"first", metadata={"device": "d-1"})
        wait_until(lambda: len(calls_for(sample, name)) == 1)
        quiet_polls()
        assert len(calls_for(sample, name)) == 1
        blob.upload_blob(b"second!", overwrite=True)
        wait_until(lambda: len(calls_for(sample, name)) == 2)
        quiet_polls()
    first, second = calls_for(sample, name)
    assert (first["data"], first["length"], first["metadata"]) == (b"first", 5, {"device": "d-1"})
    assert first["uri"] == blob.url
    assert first["properties"]["Length"] == 5 and first["properties"]["ETag"]
    assert (second["data"], second["length"]) == (b"second!", 7)
    records = [r for r in host.invocations if r.function == "on_sample_blob" and r.details["blob"] == f"samples/{name}"]
    assert [(r.trigger, r.status, r.details["attempt"]) for r in records] == [("blob", "succeeded", 1)] * 2
    assert records[0].details["etag"] != records[1].details["etag"]


def test_sdk_type_binding_gets_a_blob_client_and_no_download(sample, storage, monkeypatch):
    from azure.storage.blob import BlobClient

    from devhost.blobwatch import BlobWatcher

    try:
        storage.create_container("sdk-samples")
    except ResourceExistsError:
        pass
    name = f"{uuid.uuid4().hex}.bin"
    storage.get_blob_client("sdk-samples", name).upload_blob(b"big blob, streamed by the function")
    downloads = []
    real_download = BlobWatcher._download
    monkeypatch.setattr(BlobWatcher, "_download", lambda self, props: downloads.append(props.name) or real_download(self, props))
    with serving(sample_app.app, timers=False, blob_poll_seconds=POLL):
        wait_until(lambda: any(c["name"] == name for c in sample.calls["on_sdk_blob"]))
    call = next(c for c in sample.calls["on_sdk_blob"] if c["name"] == name)
    assert issubclass(call["type"], BlobClient) and call["container"] == "sdk-samples" and call["head"] == b"big "
    assert name not in downloads


def test_receipt_is_written_like_the_host_and_survives_a_restart(sample, storage):
    name = f"{uuid.uuid4().hex}.bin"
    storage.get_blob_client("samples", name).upload_blob(b"data")
    with serving(sample_app.app, timers=False, blob_poll_seconds=POLL) as host:
        record = host.wait_for_invocation("on_sample_blob", lambda r: r.details["blob"] == f"samples/{name}")
        wait_until(lambda: any(storage.get_container_client(RECEIPTS_CONTAINER).list_blobs(
            name_starts_with=f"blobreceipts/{default_host_id()}/on_sample_blob/{record.details['etag']}/samples/{name}")))
    with serving(sample_app.app, timers=False, blob_poll_seconds=POLL) as restarted:
        quiet_polls()
        assert [r for r in restarted.invocations if r.details.get("blob") == f"samples/{name}"] == []
    assert len(calls_for(sample, name)) == 1


def test_failing_invocation_is_retried_then_given_up(sample, storage, caplog):
    caplog.set_level(logging.INFO, logger="devhost")
    flaky, broken = f"flaky-{uuid.uuid4().hex}", f"broken-{uuid.uuid4().hex}"
    sample.behaviour["blob_failures"] = {f"samples/{flaky}": 2, f"samples/{broken}": 99}
    storage.get_blob_client("samples", flaky).upload_blob(b"x")
    storage.get_blob_client("samples", broken).upload_blob(b"y")
    with serving(sample_app.app, timers=False, blob_poll_seconds=POLL) as host:
        host.wait_for_invocation("on_sample_blob", lambda r: r.details["blob"] == f"samples/{flaky}" and r.status == "succeeded")
        host.wait_for_invocation("on_sample_blob", lambda r: r.details["blob"] == f"samples/{broken}" and r.details["attempt"] == MAX_ATTEMPTS)
        quiet_polls()
    def outcomes(name):
        return [(r.status, r.details["attempt"]) for r in host.invocations if r.details.get("blob") == f"samples/{name}"]
    assert outcomes(flaky) == [("failed", 1), ("failed", 2), ("succeeded", 3)]
    assert outcomes(broken) == [("failed", attempt) for attempt in range(1, MAX_ATTEMPTS + 1)]
    assert any(f"gave up on samples/{broken}" in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)


def test_missing_container_is_not_an_error_and_is_picked_up_once_created(storage, monkeypatch, caplog):
    container = f"later-{uuid.uuid4().hex[:12]}"
    monkeypatch.setenv("LATER_CONTAINER", container)
    seen: list[str] = []
    app = func.FunctionApp()

    @app.blob_trigger(arg_name="incoming", path="%LATER_CONTAINER%/in/{name}.txt", connection="STORAGE")
    def on_later(incoming: bytes, context: func.Context) -> None:
        seen.append(incoming.decode())

    caplog.set_level(logging.WARNING, logger="devhost")
    with serving(app, timers=False, blob_poll_seconds=POLL) as host:
        quiet_polls()
        assert host.invocations == []
        storage.create_container(container)
        storage.get_blob_client(container, "in/skip.json").upload_blob(b"not matched")
        storage.get_blob_client(container, "in/hello.txt").upload_blob(b"hello")
        host.wait_for_invocation("on_later")
        quiet_polls()
    assert seen == ["hello"]
    assert [r for r in caplog.records if r.name == "devhost"] == []
