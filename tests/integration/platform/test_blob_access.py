"""Blob read URLs against real Azurite (key connection → blob-scoped service SAS)."""

from __future__ import annotations

import urllib.error
import urllib.request
import uuid
from datetime import timedelta

import pytest

from shared_code.platform import blob_access, blobs
from shared_code.platform.config import get_settings

pytestmark = pytest.mark.integration


def fetch(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, b""


@pytest.fixture
def stored_blob(emulators):
    container = get_settings().uploads_container
    name = f"sas-test/{uuid.uuid4()}.bin"
    blobs.container_client(container).upload_blob(name, b"readable through the SAS only")
    return container, name


def test_read_url_reads_that_blob_and_nothing_else(stored_blob):
    container, name = stored_blob
    url = blob_access.read_url(container, name, 300)
    assert fetch(url) == (200, b"readable through the SAS only")
    other = url.replace(name, name + "-other", 1)
    assert fetch(other)[0] == 403, "the signature covers one blob"
    unsigned = url.split("?", 1)[0]
    assert fetch(unsigned)[0] in (401, 403, 404), "no anonymous access without the SAS"


def test_expired_read_url_is_refused(stored_blob, monkeypatch):
    container, name = stored_blob
    real_now = blob_access.utc_now()
    monkeypatch.setattr(blob_access, "utc_now", lambda: real_now - timedelta(hours=1))
    url = blob_access.read_url(container, name, 60)
    assert fetch(url)[0] == 403
