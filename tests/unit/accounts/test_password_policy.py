"""Password policy: length bounds, zxcvbn score threshold (a setting), email parts as user inputs."""

import pytest

from shared_code.accounts.password_policy import MAX_LENGTH, check_password
from shared_code.platform import config
from shared_code.platform.errors import BadRequest

pytestmark = pytest.mark.usefixtures("offline_settings")


def refused(password: str, email: str = "alice@example.org") -> str:
    with pytest.raises(BadRequest) as raised:
        check_password(password, email)
    assert raised.value.message == "weak_password"
    return raised.value.detail


@pytest.mark.parametrize("password", ["password", "12345678", "iloveyou1", "qwertyuiop", "aaaaaaaaaaaa", "P@ssw0rd"])
def test_common_and_guessable_passwords_are_refused(password):
    assert "harder password" in refused(password)


def test_length_bounds():
    assert "at least 8" in refused("Zq9!xR")
    assert "at most 1024" in refused("Zq9!xR-" * 200)
    check_password("Zq9!xR-" * 146, "alice@example.org")  # 1022 characters: fine
    assert MAX_LENGTH >= 256


def test_email_parts_count_as_known_words():
    for password in ("wintergreenosterbrook", "osterbrook2024"):
        check_password(password, "alice@example.org")
        refused(password, "wintergreen.osterbrook@example.org")


def test_non_ascii_and_long_passphrases_are_accepted():
    check_password("Ünïcødé-パスワード-ελληνικά-кириллица", "bob@example.org")
    check_password("correct horse battery staple " * 8, "bob@example.org")


def test_score_threshold_is_a_setting(monkeypatch):
    refused("iloveyou1")
    monkeypatch.setenv("PASSWORD_MIN_SCORE", "1")
    config.reset_settings()
    check_password("iloveyou1", "alice@example.org")
