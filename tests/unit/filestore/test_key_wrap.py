"""Key wrapping under the KMS master key: AES-256-GCM, key id bound, clear errors, no key material."""

from __future__ import annotations

import base64
import os

import pytest

from shared_code.filestore import key_wrap
from shared_code.filestore.key_wrap import KeyUnwrapFailed
from shared_code.platform import config
from shared_code.platform.config import ConfigError

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
