"""KMS file-name rules: 1-255 characters, no path separators or control characters, NFC."""

from __future__ import annotations

import pytest

from shared_code.filestore.kms import key_id, validate_file_name
from shared_code.platform.errors import BadRequest


@pytest.mark.parametrize("name", ["a", "report.pdf", "x" * 255, "résumé ✓.pdf", "with space", "q?#%.txt", "...", ".hidden"])
def test_accepted(name):
    assert validate_file_name(name) == name


@pytest.mark.parametrize("name", ["x" * 256, "a/b", "a\\b", "\x00", "a\x1fb", "a\x7fb", "a\x85b", ".", "..", 1, b"a", ["a"]])
def test_refused(name):
    with pytest.raises(BadRequest) as caught:
        validate_file_name(name)
    assert caught.value.message == "invalid_file_name"


@pytest.mark.parametrize("name", [None, ""])
def test_missing(name):
    with pytest.raises(BadRequest) as caught:
        validate_file_name(name)
    assert caught.value.message == "missing_fields"


def test_nfc_normalisation_gives_one_key_id():
    assert validate_file_name("cafe\u0301") == "caf\u00e9"
    assert key_id(validate_file_name("cafe\u0301")) == key_id("caf\u00e9") != key_id("cafe")
    assert len(key_id("a")) == 64
