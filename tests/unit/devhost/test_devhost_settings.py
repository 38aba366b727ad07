"""Setting lookup (environment over local.settings.json) and %SETTING% placeholders."""

from __future__ import annotations

import json

import pytest

from devhost.settings import SettingError, get_number, get_setting, resolve_placeholders


@pytest.fixture
def local_settings(tmp_path, monkeypatch):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"IsEncrypted": False, "Values": {"CONTAINER": "from-file", "SHARED": "file", "EMPTY": ""}}))
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(path))
    monkeypatch.delenv("CONTAINER", raising=False)
    monkeypatch.delenv("EMPTY", raising=False)
    return path


def test_environment_wins_over_local_settings(local_settings, monkeypatch):
    monkeypatch.setenv("SHARED", "env")
    assert get_setting("SHARED") == "env"
    assert get_setting("CONTAINER") == "from-file"


def test_empty_or_missing_values_fall_back_to_the_default(local_settings):
    assert get_setting("EMPTY", "fallback") == "fallback"
    assert get_setting("NOT_THERE") is None


def test_placeholders_are_replaced(local_settings, monkeypatch):
    monkeypatch.setenv("SUFFIX", "v2")
    assert resolve_placeholders("%CONTAINER%/in-%SUFFIX%/{name}") == "from-file/in-v2/{name}"
    assert resolve_placeholders("no placeholders") == "no placeholders"


def test_unset_placeholder_raises_naming_it(local_settings):
    with pytest.raises(SettingError) as caught:
        resolve_placeholders("%MISSING_THING%/{name}")
    assert caught.value.setting == "MISSING_THING"


def test_numbers_are_validated(monkeypatch):
    monkeypatch.setenv("DEVHOST_BLOB_POLL_SECONDS", "0.5")
    assert get_number("DEVHOST_BLOB_POLL_SECONDS", 2.0) == 0.5
    monkeypatch.setenv("DEVHOST_BLOB_POLL_SECONDS", "soon")
    with pytest.raises(SettingError, match="DEVHOST_BLOB_POLL_SECONDS"):
        get_number("DEVHOST_BLOB_POLL_SECONDS", 2.0)
    monkeypatch.delenv("DEVHOST_BLOB_POLL_SECONDS")
    assert get_number("DEVHOST_BLOB_POLL_SECONDS", 2.0) == 2.0
