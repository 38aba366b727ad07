"""The server-side copy under a slow storage: a Put Block From URL answers only once the service
has fetched its whole range, which takes longer than an ordinary call's timeout
(``STORAGE_TIMEOUT_SECONDS``, 1 s on the fault stack), so the copy waits for it instead of timing
out and sending the range again."""

from __future__ import annotations

import os
import threading
import time

import pytest

from shared_code.platform import blob_access, blob_copy, blobs
from shared_code.platform.config import get_settings
from tests.support.faults import FAULT_TIMEOUT_SECONDS, blob_op

pytestmark = pytest.mark.integration

BLOCK_BYTES = 64 * 1024


def test_a_range_copy_slower_than_the_storage_timeout_is_waited_for_not_resent(faults):
    settings = get_settings()
    data = os.urandom(3 * BLOCK_BYTES)
    name = f"copy-timeout/{os.urandom(6).hex()}"
    source = blobs.container_client(settings.upload_staging_container).get_blob_client(name)
    source.upload_blob(data)
    etag = source.get_blob_properties().etag
    url = blob_access.read_url(settings.upload_staging_container, name, 60)
    destination = blobs.container_client(settings.uploads_container).get_blob_client(name)
    stage_from_url = blob_op("put_block", settings.uploads_container)
    with faults.blob.hold(stage_from_url, after_response=True) as held:  # the first range's answer is slow
        result: list[bool] = []
        copy = threading.Thread(target=lambda: result.append(blob_copy.copy_version(
            source, url, etag, len(data), destination, metadata={}, content_type="application/octet-stream",
            block_bytes=BLOCK_BYTES)))
        copy.start()
        held.wait_fired()
        time.sleep(2 * FAULT_TIMEOUT_SECONDS)  # longer than an ordinary call may take
    copy.join(timeout=30)
    assert result == [True]
    assert faults.blob.count(stage_from_url) == 3  # one Put Block From URL per range: none sent twice
    assert destination.download_blob().readall() == data
