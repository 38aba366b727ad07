"""Credential selection: keys/connection strings only when given, Microsoft Entra ID otherwise.

No network: the Blob SDK builds clients offline, so those are real; the Cosmos SDK contacts the
account in its constructor, so ``CosmosClient`` is replaced by a recorder of its arguments, and
``DefaultAzureCredential`` likewise (its constructor's arguments are the observable choice).
"""

from __future__ import annotations

import pytest
from azure.storage.blob import BlobServiceClient

from shared_code.platform import blobs, config, cosmos, identity
from shared_code.platform.config import ConfigError
from tests.support import keyless
from tests.support.keyless import AZURITE, BLOB_URL, COSMOS_URL
from tests.support.settings import required_settings

settings_env = keyless.settings_env  # shared fixtures (tests/support/keyless.py)
credential = keyless.credential


def test_blob_connection_string_means_shared_key(settings_env, credential):
    settings_env(STORAGE=AZURITE, STORAGE__blobServiceUri=BLOB_URL)
    client = blobs.get_service_client()
    assert client.account_name == "devstoreaccount1" and client.url.startswith("http://127.0.0.1:10000/")
    assert client.credential is not credential and client.credential.account_key


def test_blob_service_uri_alone_means_entra_id(settings_env, credential):
    settings_env(STORAGE="", STORAGE__blobServiceUri=BLOB_URL)
    client = blobs.get_service_client()
    assert isinstance(client, BlobServiceClient)
    assert client.url == BLOB_URL and client.credential is credential


def test_no_blob_setting_is_a_config_error(settings_env):
    settings_env(STORAGE="", STORAGE__blobServiceUri="")
    with pytest.raises(ConfigError, match="STORAGE"):
        blobs.get_service_client()


class RecordingCosmosClient:
    """Stands in for azure.cosmos.CosmosClient, whose constructor calls the account."""

    def __init__(self, url, credential, **options):
        self.url, self.credential, self.options = url, credential, options


@pytest.mark.parametrize("key, expect_key", [("c2VjcmV0LWtleQ==", True), ("", False)])
def test_cosmos_uses_the_key_only_when_given(settings_env, credential, monkeypatch, key, expect_key):
    monkeypatch.setattr(cosmos, "CosmosClient", RecordingCosmosClient)
    settings_env(COSMOS_ENDPOINT=COSMOS_URL, COSMOS_KEY=key)
    client = cosmos.get_client()
    assert client.url == COSMOS_URL
    assert client.credential == (key if expect_key else credential)


@pytest.mark.parametrize("client_id, expected", [("0b4f3c1e-0000-4000-8000-00000000abcd", "0b4f3c1e-0000-4000-8000-00000000abcd"),
                                                 ("", None)])
def test_credential_is_pinned_to_the_user_assigned_identity(settings_env, monkeypatch, client_id, expected):
    import azure.identity

    calls = []
    monkeypatch.setattr(azure.identity, "DefaultAzureCredential", lambda **kw: calls.append(kw) or object())
    settings_env(AZURE_CLIENT_ID=client_id)
    first = identity.get_credential()
    assert identity.get_credential() is first, "one credential per process (token cache reuse)"
    assert calls == [{"managed_identity_client_id": expected}]


def test_settings_declare_both_storage_modes():
    names = {spec.name for spec in config.SETTINGS}
    assert {"STORAGE", "STORAGE__blobServiceUri", "COSMOS_ENDPOINT", "COSMOS_KEY", "AZURE_CLIENT_ID"} <= names


def test_unresolved_key_vault_reference_is_unset_not_a_value(tmp_path, monkeypatch):
    """Azure leaves "@Microsoft.KeyVault(...)" in place when a reference cannot resolve."""
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    reference = "@Microsoft.KeyVault(SecretUri=https://kv-x.vault.azure.net/secrets/device-token-pepper)"
    base = {**required_settings(), "COSMOS_ENDPOINT": COSMOS_URL}
    with pytest.raises(ConfigError, match="Key Vault reference that did not resolve") as raised:
        config.load_settings({**base, "DEVICE_TOKEN_PEPPER": reference})
    assert raised.value.setting == "DEVICE_TOKEN_PEPPER"
    assert config.load_settings({**base, "COSMOS_KEY": reference.replace("device-token-pepper", "x")}).cosmos_key == ""
