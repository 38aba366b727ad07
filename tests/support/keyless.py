"""Fixtures for credential-selection tests: app settings per test, and an offline credential."""

from __future__ import annotations

import pytest

from shared_code.platform import blobs, cosmos, identity
from tests.conftest import reset_app_state

AZURITE = ("DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey="
           "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==;"
           "BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;")
BLOB_URL = "https://stexample.blob.core.windows.net/"
COSMOS_URL = "https://cosmos-example.documents.azure.com:443/"


@pytest.fixture
def settings_env(monkeypatch):
    """Set app settings for one test; caches (settings, clients, credential) reset around it."""

    def apply(**values: str) -> None:
        for name, value in {"COSMOS_ENDPOINT": COSMOS_URL, **values}.items():
            monkeypatch.setenv(name, value)
        reset_app_state()
        identity.get_credential.cache_clear()

    yield apply
    monkeypatch.undo()
    reset_app_state()
    identity.get_credential.cache_clear()


class UnusedTokenCredential:
    """A TokenCredential (what DefaultAzureCredential is) for offline tests."""

    def get_token(self, *scopes, **kwargs):
        raise AssertionError("no token may be requested in a unit test")


@pytest.fixture
def credential(monkeypatch):
    """The process credential replaced by a token credential that must never be asked for a token."""
    marker = UnusedTokenCredential()
    monkeypatch.setattr(blobs, "get_credential", lambda: marker)
    monkeypatch.setattr(cosmos, "get_credential", lambda: marker)
    return marker
