"""The dev stack's test authority adds only the settings that are not given, and serves a status list."""

from __future__ import annotations

import json

import requests

from client import attestation_sim as sim
from devhost.test_authority import dev_settings, local_test_authority


def test_missing_settings_are_filled_and_given_ones_kept(tmp_path, monkeypatch):
    for name in ("ATTESTATION_TEST_ROOTS", "ANDROID_ATTESTATION_PACKAGES", "APP_ATTEST_APP_IDS",
                 "PLAY_INTEGRITY_CREDENTIALS", "PLAY_INTEGRITY_DECRYPTION_KEY", "PLAY_INTEGRITY_PACKAGE_NAME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ANDROID_ATTESTATION_SIGNATURE_DIGESTS", "ab" * 32)
    added = dev_settings(tmp_path)
    authority = sim.TestAuthority.load(tmp_path)
    assert added["ATTESTATION_TEST_ROOTS"] == authority.roots_pem()
    assert added["ANDROID_ATTESTATION_PACKAGES"] == sim.DEV_PACKAGE and "ANDROID_ATTESTATION_SIGNATURE_DIGESTS" not in added
    assert (added["APP_ATTEST_APP_IDS"], added["APP_ATTEST_ENVIRONMENT"]) == (sim.DEV_APP_ID, "development")
    assert added["PLAY_INTEGRITY_MODE"] == "local" and added["PLAY_INTEGRITY_PACKAGE_NAME"] == sim.DEV_PACKAGE
    assert dev_settings(tmp_path)["ATTESTATION_TEST_ROOTS"] == added["ATTESTATION_TEST_ROOTS"]  # same authority next time
    assert {p.name: oct(p.stat().st_mode & 0o777) for p in tmp_path.iterdir() if "key" in p.name or p.suffix == ".json"} == {
        "android-root-key.pem": "0o600", "apple-root-key.pem": "0o600", "play-integrity.json": "0o600"}


def test_configured_play_integrity_credentials_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.setenv("PLAY_INTEGRITY_CREDENTIALS", "/etc/service-account.json")
    assert not {"PLAY_INTEGRITY_MODE", "PLAY_INTEGRITY_DECRYPTION_KEY"} & set(dev_settings(tmp_path))


def test_a_local_status_list_is_served_and_can_be_edited(tmp_path, monkeypatch):
    monkeypatch.delenv("ANDROID_ATTESTATION_STATUS_URL", raising=False)
    monkeypatch.delenv("DEVHOST_TEST_AUTHORITY", raising=False)
    with local_test_authority(tmp_path) as folder:
        import os

        url = os.environ["ANDROID_ATTESTATION_STATUS_URL"]
        assert url.startswith("http://127.0.0.1:") and requests.get(url, timeout=5).json() == {"entries": {}}
        (folder / "status.json").write_text(json.dumps({"entries": {"abc": {"status": "REVOKED"}}}))
        assert requests.get(url, timeout=5).json()["entries"] == {"abc": {"status": "REVOKED"}}


def test_it_can_be_switched_off(tmp_path, monkeypatch):
    monkeypatch.setenv("DEVHOST_TEST_AUTHORITY", "0")
    with local_test_authority(tmp_path) as folder:
        assert folder is None and not (tmp_path / ".devhost").exists()
