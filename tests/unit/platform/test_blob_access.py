"""Blob read URLs: user delegation SAS under Entra ID, a blob-scoped key SAS only with a key.

Offline: the Blob SDK signs locally; only the user delegation key request would reach the
service, and it is answered by a stand-in on the client instance (counting requests).
"""

from __future__ import annotations

import base64
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.storage.blob import UserDelegationKey

from shared_code.platform import blob_access, blobs
from shared_code.platform.timeutil import utc_now
from tests.support import keyless
from tests.support.keyless import AZURITE, BLOB_URL

settings_env = keyless.settings_env  # shared fixtures (tests/support/keyless.py)
credential = keyless.credential
OID = "11111111-2222-4333-8444-555555555555"


@pytest.fixture(autouse=True)
def _fresh_key_cache():
    blob_access.reset()
    yield
    blob_access.reset()


def query(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def _delegation_key_stand_in(monkeypatch, requested: list) -> None:
    def delegation_key(start, expiry):
        requested.append((start, expiry))
        key = UserDelegationKey()
        key.signed_oid, key.signed_tid = OID, "tenant-id"
        key.signed_start, key.signed_expiry = start.strftime("%Y-%m-%dT%H:%M:%SZ"), expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
        key.signed_service, key.signed_version = "b", "2025-01-05"
        key.value = base64.b64encode(b"k" * 32).decode()
        return key

    monkeypatch.setattr(blobs.get_service_client(), "get_user_delegation_key", delegation_key)


def test_key_connection_signs_a_read_only_sas_for_one_blob(settings_env):
    settings_env(STORAGE=AZURITE)
    url = blob_access.read_url("uploads", "dev-1/file.bin", 600)
    params = query(url)
    assert urlsplit(url).path == "/devstoreaccount1/uploads/dev-1/file.bin"
    assert params["sp"] == "r" and params["sr"] == "b" and params["sig"]
    assert "skoid" not in params, "no delegation key with an account key"


def test_entra_connection_signs_a_user_delegation_sas(settings_env, credential, monkeypatch):
    settings_env(STORAGE="", STORAGE__blobServiceUri=BLOB_URL)
    requested: list = []
    _delegation_key_stand_in(monkeypatch, requested)
    first = blob_access.read_url("uploads", "a.bin", 600)
    second = blob_access.read_url("uploads", "b.bin", 3600)
    params = query(first)
    assert first.startswith(f"{BLOB_URL}uploads/a.bin?")
    assert params["skoid"] == OID and params["sp"] == "r" and params["sr"] == "b" and params["spr"] == "https"
    assert len(requested) == 1 and query(second)["skoid"] == OID, "the delegation key is cached"
    blob_access.read_url("uploads", "c.bin", 2 * 24 * 3600)
    assert len(requested) == 2 and requested[1][1] - requested[1][0] >= timedelta(days=2)


def test_upload_url_under_entra_is_a_create_write_user_delegation_sas_over_https(settings_env, credential, monkeypatch):
    settings_env(STORAGE="", STORAGE__blobServiceUri=BLOB_URL)
    requested: list = []
    _delegation_key_stand_in(monkeypatch, requested)
    expiry = utc_now() + timedelta(seconds=900)
    url = blob_access.upload_url("upload-staging", "dev-1/abc", expiry)
    params = query(url)
    assert url.startswith(f"{BLOB_URL}upload-staging/dev-1/abc?")
    assert params["sp"] == "cw" and params["sr"] == "b" and params["spr"] == "https" and params["skoid"] == OID
    assert params["se"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "ss" not in params and "srt" not in params, "never an account SAS"
    assert len(requested) == 1


def test_upload_url_with_a_key_is_a_blob_scoped_service_sas(settings_env):
    settings_env(STORAGE=AZURITE)
    params = query(blob_access.upload_url("upload-staging", "dev-1/abc", utc_now() + timedelta(seconds=60)))
    assert params["sp"] == "cw" and params["sr"] == "b" and "skoid" not in params and "srt" not in params


@pytest.mark.parametrize("seconds", [-1, 7 * 24 * 3600 + 60])
def test_upload_url_expiry_out_of_range_is_refused(seconds):
    with pytest.raises(ValueError):
        blob_access.upload_url("upload-staging", "x", utc_now() + timedelta(seconds=seconds))


@pytest.mark.parametrize("ttl", [0, -1, 7 * 24 * 3600 + 1])
def test_ttl_out_of_range_is_refused(ttl):
    with pytest.raises(ValueError):
        blob_access.read_url("uploads", "x", ttl)
