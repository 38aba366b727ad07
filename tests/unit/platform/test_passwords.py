"""Password hashing: bcrypt over a peppered pre-hash; nothing truncated, nothing stored in clear."""

from __future__ import annotations

import base64
import os

import pytest

from shared_code.platform import config
from shared_code.platform.passwords import hash_password, verify_password

pytestmark = pytest.mark.usefixtures("offline_settings")


def test_hash_is_bcrypt_at_cost_12_and_holds_no_password() -> None:
    stored = hash_password("correct horse battery staple")
    assert stored.startswith("$2b$12$") and len(stored) == 60
    assert "correct" not in stored
    assert verify_password("correct horse battery staple", stored)
    assert not verify_password("correct horse battery stapler", stored)


def test_passwords_longer_than_72_bytes_are_not_truncated() -> None:
    base = "x" * 100
    stored = hash_password(base + "A")
    assert verify_password(base + "A", stored)
    assert not verify_password(base + "B", stored)


def test_64_non_ascii_characters_differing_only_at_the_end() -> None:
    password = "ж" * 63 + "ю"  # 128 UTF-8 bytes
    stored = hash_password(password)
    assert verify_password(password, stored)
    assert not verify_password("ж" * 64, stored)


def test_unicode_is_normalised_before_hashing() -> None:
    composed, decomposed = "caf\u00e9-pass-phrase", "cafe\u0301-pass-phrase"
    assert verify_password(decomposed, hash_password(composed))


def test_unknown_user_and_malformed_hash_never_match() -> None:
    assert verify_password("anything", None) is False
    assert verify_password("anything", "not-a-bcrypt-hash") is False


def test_a_different_pepper_invalidates_every_hash(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = hash_password("pepper-bound-password")
    monkeypatch.setenv("PASSWORD_PEPPER", base64.b64encode(os.urandom(32)).decode())
    config.reset_settings()
    assert not verify_password("pepper-bound-password", stored)


@pytest.mark.parametrize("cost", ["12", "13"])
def test_an_unknown_user_costs_the_same_bcrypt_work_as_a_wrong_password(monkeypatch, cost) -> None:
    # CPU time of this thread, not wall time: bcrypt's work is the observable, other load is not.
    import time

    monkeypatch.setenv("BCRYPT_COST", cost)
    config.reset_settings()
    stored = hash_password("the real password")

    def cpu_seconds(stored_hash) -> float:
        started = time.thread_time()
        assert not verify_password("a wrong password", stored_hash)
        return time.thread_time() - started

    unknown, wrong = cpu_seconds(None), cpu_seconds(stored)
    assert 0.7 < unknown / wrong < 1.4, f"unknown user {unknown:.3f} s, wrong password {wrong:.3f} s at cost {cost}"
