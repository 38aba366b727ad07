"""Key wrapping under the KMS master key: AES-256-GCM, key id bound, clear errors, no key material."""

from __future__ import annotations

import base64
import json
import os

import pytest

from shared_code.filestore import key_wrap
from shared_code.filestore.key_wrap import KeyUnwrapFailed
from shared_code.platform import config
from shared_code.platform.config import ConfigError
from tests.support.settings import apply_settings

PKCS8 = b"-----BEGIN PRIVATE KEY-----\nMIIE...fake...\n-----END PRIVATE KEY-----\n"


@pytest.fixture(autouse=True)
def _settings(monkeypatch):
    """Unit tests run without emulators: give the one other required setting a dummy value."""
    if not os.environ.get("COSMOS_ENDPOINT"):
        monkeypatch.setenv("COSMOS_ENDPOINT", "https://unit-test.invalid:443/")
    config.reset_settings()
    yield
    monkeypatch.undo()
    config.reset_settings()


@pytest.fixture
def kms_key(monkeypatch):
    def set_key(value: str | None) -> None:
        if value is None:
            monkeypatch.delenv("KMS_MASTER_KEY", raising=False)
        else:
            monkeypatch.setenv("KMS_MASTER_KEY", value)
        config.reset_settings()
    yield set_key
    monkeypatch.undo()
    config.reset_settings()


def test_wrap_round_trips_and_hides_the_plaintext():
    wrapped = key_wrap.wrap(PKCS8, "kid-1")
    assert set(wrapped) == {"alg", "kid", "nonce", "ciphertext"} and wrapped["alg"] == "A256GCM"
    assert b"PRIVATE" not in base64.b64decode(wrapped["ciphertext"]) and "PRIVATE" not in str(wrapped)
    assert key_wrap.unwrap(wrapped, "kid-1") == PKCS8


def test_each_wrap_uses_a_fresh_96_bit_nonce():
    nonces = {key_wrap.wrap(PKCS8, "k")["nonce"] for _ in range(50)}
    assert len(nonces) == 50 and all(len(base64.b64decode(n)) == 12 for n in nonces)


def test_key_id_is_bound_as_associated_data():
    with pytest.raises(KeyUnwrapFailed) as caught:
        key_wrap.unwrap(key_wrap.wrap(PKCS8, "file-a"), "file-b")
    assert caught.value.status == 500 and caught.value.message == "kms_unwrap_failed"


@pytest.mark.parametrize("field", ["nonce", "ciphertext"])
def test_tampering_is_detected(field):
    wrapped = key_wrap.wrap(PKCS8, "k")
    raw = bytearray(base64.b64decode(wrapped[field]))
    raw[0] ^= 1
    with pytest.raises(KeyUnwrapFailed):
        key_wrap.unwrap({**wrapped, field: base64.b64encode(bytes(raw)).decode()}, "k")


def test_a_wrong_master_key_is_refused_by_kid_and_by_tag(kms_key):
    wrapped = key_wrap.wrap(PKCS8, "k")
    kms_key(base64.b64encode(os.urandom(32)).decode())
    with pytest.raises(KeyUnwrapFailed) as caught:
        key_wrap.unwrap(wrapped, "k")
    assert "KMS_MASTER_KEY" in caught.value.detail
    with pytest.raises(KeyUnwrapFailed):  # even when the kid is forged to match
        key_wrap.unwrap({**wrapped, "kid": key_wrap.current_kek().kid}, "k")


def test_kid_identifies_the_kek_without_revealing_it():
    kek = key_wrap.current_kek()
    assert len(kek.kid) == 16 and kek.kid not in base64.b64encode(kek.key).decode()
    assert repr(kek) == f"Kek(kid={kek.kid!r})"


@pytest.mark.parametrize("value, reason", [
    (None, "not set"),
    ("%%%", "base64"),
    (base64.b64encode(b"k" * 16).decode(), "exactly 32 bytes"),
    (base64.b64encode(b"k" * 64).decode(), "exactly 32 bytes"),
    ("@Microsoft.KeyVault(VaultName=kv;SecretName=kms)", "Key Vault reference was not resolved"),
])
def test_unusable_master_key_is_a_config_error_naming_the_setting_not_the_value(kms_key, value, reason):
    kms_key(value)
    with pytest.raises(ConfigError) as caught:
        key_wrap.wrap(PKCS8, "k")
    assert caught.value.setting == "KMS_MASTER_KEY" and reason in str(caught.value)
    assert value is None or value not in str(caught.value)


# --- KEK versions -----------------------------------------------------------------

def _kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def kek_settings(monkeypatch):
    yield lambda **values: apply_settings(monkeypatch, **values)
    monkeypatch.undo()
    config.reset_settings()


def test_a_map_of_keks_wraps_under_the_active_one_and_unwraps_under_any(kek_settings):
    legacy = key_wrap.current_kek()
    old_wrap = key_wrap.wrap(PKCS8, "k")
    kek_settings(KMS_MASTER_KEYS=json.dumps({"2025-01": _kek(), "2026-01": _kek()}), KMS_ACTIVE_KEK="2026-01")
    ring = key_wrap.keyring()
    assert ring.kids == sorted(["2025-01", "2026-01", legacy.kid]) and ring.active.kid == "2026-01"
    assert ring.retired_kids == sorted(["2025-01", legacy.kid])
    assert key_wrap.unwrap(old_wrap, "k") == PKCS8  # KMS_MASTER_KEY joined under its derived kid
    new_wrap = key_wrap.wrap(PKCS8, "k")
    assert new_wrap["kid"] == "2026-01" and key_wrap.unwrap(new_wrap, "k") == PKCS8
    assert key_wrap.needs_rewrap(old_wrap, ring) and not key_wrap.needs_rewrap(new_wrap, ring)
    rewrapped = key_wrap.rewrap(old_wrap, "k")
    assert rewrapped["kid"] == "2026-01" and rewrapped["nonce"] != old_wrap["nonce"]
    assert key_wrap.unwrap(rewrapped, "k") == PKCS8
    assert "2026-01" in repr(ring) and base64.b64encode(ring.active.key).decode() not in repr(ring)


def test_a_retired_kek_no_longer_unwraps_and_says_so_without_key_material(kek_settings):
    first, second = _kek(), _kek()
    kek_settings(KMS_MASTER_KEY=None, KMS_MASTER_KEYS=json.dumps({"a": first, "b": second}), KMS_ACTIVE_KEK="a")
    wrapped = key_wrap.wrap(PKCS8, "k")
    kek_settings(KMS_MASTER_KEYS=json.dumps({"b": second}), KMS_ACTIVE_KEK="b")
    with pytest.raises(KeyUnwrapFailed) as caught:
        key_wrap.unwrap(wrapped, "k")
    assert "not configured" in caught.value.detail and first not in caught.value.detail
    assert not key_wrap.needs_rewrap(wrapped, key_wrap.keyring())  # the timer cannot move it: it skips it


def test_a_reused_kid_with_another_key_fails_by_tag(kek_settings):
    kek_settings(KMS_MASTER_KEY=None, KMS_MASTER_KEYS=json.dumps({"a": _kek()}))
    wrapped = key_wrap.wrap(PKCS8, "k")
    kek_settings(KMS_MASTER_KEYS=json.dumps({"a": _kek()}))
    with pytest.raises(KeyUnwrapFailed):
        key_wrap.unwrap(wrapped, "k")


def test_one_kek_in_the_map_is_active_without_naming_it(kek_settings):
    kek_settings(KMS_MASTER_KEY=None, KMS_MASTER_KEYS=json.dumps({"only": _kek()}), KMS_ACTIVE_KEK=None)
    assert key_wrap.current_kek().kid == "only"


@pytest.mark.parametrize("values, setting, reason", [
    ({"KMS_MASTER_KEYS": "not json"}, "KMS_MASTER_KEYS", "JSON object"),
    ({"KMS_MASTER_KEYS": "[1, 2]"}, "KMS_MASTER_KEYS", "JSON object"),
    ({"KMS_MASTER_KEYS": json.dumps({"bad kid!": "AAAA"})}, "KMS_MASTER_KEYS", "kids must be"),
    ({"KMS_MASTER_KEYS": json.dumps({"a": base64.b64encode(b"short").decode()})}, "KMS_MASTER_KEYS", "exactly 32 bytes"),
    ({"KMS_MASTER_KEYS": json.dumps({"a": "%%%"}), "KMS_ACTIVE_KEK": "a"}, "KMS_MASTER_KEYS", "base64"),
    ({"KMS_MASTER_KEYS": json.dumps({"a": "S2" * 21 + "s="}), "KMS_ACTIVE_KEK": None}, "KMS_ACTIVE_KEK", "required when 2"),
    ({"KMS_MASTER_KEYS": json.dumps({"a": "S2" * 21 + "s="}), "KMS_ACTIVE_KEK": "z"}, "KMS_ACTIVE_KEK", "names no configured KEK"),
    ({"KMS_MASTER_KEYS": "@Microsoft.KeyVault(SecretUri=https://v/secrets/kms-master-keys)", "KMS_ACTIVE_KEK": "2026"},
     "KMS_ACTIVE_KEK", "unresolved Key Vault reference"),
])
def test_unusable_keyrings_are_config_errors_naming_the_setting(kek_settings, values, setting, reason):
    kek_settings(**values)
    with pytest.raises(ConfigError) as caught:
        key_wrap.keyring()
    assert caught.value.setting == setting and reason in str(caught.value)


def test_one_key_under_two_kids_is_refused(kek_settings):
    same = _kek()
    kek_settings(KMS_MASTER_KEYS=json.dumps({"a": same, "b": same}), KMS_ACTIVE_KEK="a")
    with pytest.raises(ConfigError, match="two kids"):
        key_wrap.keyring()


def test_the_legacy_key_under_its_derived_kid_in_the_map_is_the_same_key_or_refused(kek_settings):
    legacy = key_wrap.current_kek()
    kek_settings(KMS_MASTER_KEYS=json.dumps({legacy.kid: _kek()}))
    with pytest.raises(ConfigError, match="names another key"):
        key_wrap.keyring()
    kek_settings(KMS_MASTER_KEYS=json.dumps({legacy.kid: base64.b64encode(legacy.key).decode()}))
    assert key_wrap.keyring().kids == [legacy.kid]


def test_a_disabled_legacy_secret_leaves_the_map(kek_settings):
    kek_settings(KMS_MASTER_KEY="@Microsoft.KeyVault(SecretUri=https://v/secrets/kms-master-key)",
                 KMS_MASTER_KEYS=json.dumps({"2026": _kek()}), KMS_ACTIVE_KEK="2026")
    assert key_wrap.keyring().kids == ["2026"]
