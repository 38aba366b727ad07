"""The Blob client honours STORAGE_TIMEOUT_SECONDS on both of its transports.

Against a local server that accepts connections and never answers (a stalled service): one
attempt (``retry_total=0``) must give up after about the configured timeout, for an in-memory call
(urllib3) and for a streamed download (requests). The SDK ignores client-level timeouts once
a transport is passed in, so the transports must carry them; without that an attempt waits 30 s
(urllib3's default here) or 300 s (azure-core's).
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Iterator

import pytest
from azure.core.exceptions import AzureError

from devhost.emulators import azurite_connection_string
from shared_code.platform import blobs, config

BOUND_SECONDS = 10  # the configured 1 s with a wide margin; far below the 30 s / 300 s defaults

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def silent_storage(monkeypatch) -> Iterator[None]:
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def accept() -> None:
        while True:
            try:
                accepted.append(listener.accept()[0])
            except OSError:
                return

    threading.Thread(target=accept, daemon=True).start()
    monkeypatch.setenv("COSMOS_ENDPOINT", "https://unused.documents.azure.com:443/")  # required, never called
    monkeypatch.setenv("STORAGE", azurite_connection_string(listener.getsockname()[1]))
    monkeypatch.setenv("STORAGE_TIMEOUT_SECONDS", "1")
    config.reset_settings()
    blobs.reset_client()
    yield
    listener.close()
    for sock in accepted:
        sock.close()
    monkeypatch.undo()
    config.reset_settings()
    blobs.reset_client()


def _seconds_until_failure(call) -> float:
    start = time.monotonic()
    with pytest.raises(AzureError):
        call()
    return time.monotonic() - start


def test_an_in_memory_call_gives_up_after_the_storage_timeout(silent_storage):
    blob = blobs.container_client("stalled").get_blob_client("b")
    assert _seconds_until_failure(lambda: blob.get_blob_properties(retry_total=0)) < BOUND_SECONDS


def test_a_streamed_download_gives_up_after_the_storage_timeout(silent_storage):
    blob = blobs.container_client("stalled").get_blob_client("b")
    assert _seconds_until_failure(lambda: blob.download_blob(retry_total=0).readall()) < BOUND_SECONDS
