"""Blob trigger paths, connections and receipt names (no storage needed)."""

from __future__ import annotations

import pytest

from devhost import blobwatch
from devhost.blobwatch import BlobPathError, blob_service_client, parse_blob_path
from devhost.settings import SettingError


def test_name_parameter_matches_every_blob_of_the_container_including_folders():
    path = parse_blob_path("samples/{name}")
    assert (path.container, path.prefix) == ("samples", "")
    assert path.match("a.txt") == {"name": "a.txt"}
    assert path.match("dir/a.txt") == {"name": "dir/a.txt"}


def test_prefix_and_extension_restrict_the_blobs():
    path = parse_blob_path("uploads/in/{name}.json")
    assert path.prefix == "in/"
    assert path.match("in/report.json") == {"name": "report"}
    assert path.match("in/report.txt") is None
    assert path.match("out/report.json") is None


def test_container_comes_from_a_setting(monkeypatch):
    monkeypatch.setenv("UPLOADS_CONTAINER", "uploads-test")
    assert parse_blob_path("%UPLOADS_CONTAINER%/{name}").container == "uploads-test"


def test_container_alone_matches_every_blob():
    assert parse_blob_path("samples").match("x/y") == {}


@pytest.mark.parametrize("bad", ["{name}", "/{name}", "samples/{name", "samples/{}", "samples/{a}/{a}"])
def test_bad_paths_are_rejected(bad):
    with pytest.raises(BlobPathError, match="blob path"):
        parse_blob_path(bad)


def test_connection_setting_is_a_connection_string(monkeypatch):
    monkeypatch.setenv("SOMESTORE", "DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5;EndpointSuffix=core.windows.net")
    assert blob_service_client("SOMESTORE").account_name == "acct"


def test_development_storage_means_local_azurite(monkeypatch):
    monkeypatch.setenv("SOMESTORE", "UseDevelopmentStorage=true")
    assert blob_service_client("SOMESTORE").url.startswith("http://127.0.0.1:10000/devstoreaccount1")


def test_service_uri_means_identity_based_access(monkeypatch):
    monkeypatch.delenv("SOMESTORE", raising=False)
    monkeypatch.setenv("SOMESTORE__blobServiceUri", "https://acct.blob.core.windows.net")
    client = blob_service_client("SOMESTORE")
    assert client.url.startswith("https://acct.blob.core.windows.net")
    assert type(client.credential).__name__ == "DefaultAzureCredential"


def test_missing_connection_names_the_setting(monkeypatch):
    monkeypatch.delenv("NOSTORE", raising=False)
    with pytest.raises(SettingError, match="NOSTORE__blobServiceUri"):
        blob_service_client("NOSTORE")


def test_host_id_is_configurable_and_safe(monkeypatch):
    monkeypatch.setenv("AzureFunctionsWebHost__hostid", "My_Host.Name")
    assert blobwatch.default_host_id() == "my-host-name"
