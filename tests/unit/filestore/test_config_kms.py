"""KMS and encrypted-store settings: defaults and validation."""

import pytest

from shared_code.platform.config import ConfigError, load_settings
from tests.unit.platform.test_config import BASE


def test_kms_defaults(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    settings = load_settings(BASE)
    assert settings.kms_rsa_key_bits == 3072 and settings.kms_master_key == ""
    assert settings.encrypted_files_container == "encrypted-files" and settings.datastore_max_file_bytes == 16 * 1024 * 1024


@pytest.mark.parametrize("bits", ["2048", "3072", "4096"])
def test_allowed_rsa_sizes(tmp_path, monkeypatch, bits):
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    assert load_settings({**BASE, "KMS_RSA_KEY_BITS": bits}).kms_rsa_key_bits == int(bits)


@pytest.mark.parametrize("bits", ["1024", "2047", "3000", "8192", "big"])
def test_other_rsa_sizes_are_refused(tmp_path, monkeypatch, bits):
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    with pytest.raises(ConfigError) as caught:
        load_settings({**BASE, "KMS_RSA_KEY_BITS": bits})
    assert caught.value.setting == "KMS_RSA_KEY_BITS"
