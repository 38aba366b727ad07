"""Play Integrity settings: defaults, normalisation and clear errors naming the setting."""

from __future__ import annotations

import pytest

from shared_code.platform import config
from tests.conftest import TEST_SETTINGS

BASE = {**TEST_SETTINGS, "COSMOS_ENDPOINT": "http://127.0.0.1:9/"}


def test_defaults_are_fail_safe():
    settings = config.load_settings(BASE)
    assert settings.play_integrity_mode == "google"
    assert settings.play_integrity_api_base == "https://playintegrity.googleapis.com"
    assert (settings.play_integrity_max_age_seconds, settings.play_integrity_min_device) == (300, "DEVICE")
    assert settings.play_integrity_cert_digests == frozenset() and settings.require_integrity_for_upload is False


def test_values_are_normalised():
    settings = config.load_settings({**BASE, "PLAY_INTEGRITY_MODE": "Local", "PLAY_INTEGRITY_MIN_DEVICE": "strong",
                                     "PLAY_INTEGRITY_CERT_DIGESTS": " abc= , def ", "PLAY_INTEGRITY_API_BASE": "http://x/"})
    assert (settings.play_integrity_mode, settings.play_integrity_min_device) == ("local", "STRONG")
    assert settings.play_integrity_cert_digests == frozenset({"abc", "def"})
    assert settings.play_integrity_api_base == "http://x"


@pytest.mark.parametrize("name, value", [
    ("PLAY_INTEGRITY_MODE", "both"), ("PLAY_INTEGRITY_MIN_DEVICE", "VIRTUAL"),
    ("PLAY_INTEGRITY_MAX_AGE_SECONDS", "5"), ("PLAY_INTEGRITY_TIMEOUT_SECONDS", "600"),
    ("REQUIRE_INTEGRITY_FOR_UPLOAD", "maybe"),
])
def test_bad_values_name_the_setting(name, value):
    with pytest.raises(config.ConfigError) as error:
        config.load_settings({**BASE, name: value})
    assert error.value.setting == name and f"{value!r}" not in str(error.value)
