"""Settings: sources, precedence, validation, and one source of truth with the example file."""

import base64
import json

import pytest

from shared_code.platform import config
from shared_code.platform.config import ConfigError, load_settings
from tests.support.settings import required_settings

PEPPER = base64.b64encode(b"p" * 32).decode()
BASE = {**required_settings(), "COSMOS_ENDPOINT": "https://acct.documents.azure.com:443/",
        "DEVICE_TOKEN_PEPPER": PEPPER}


def test_defaults_apply_when_only_required_settings_are_given(tmp_path, monkeypatch):
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    settings = load_settings(BASE)
    assert settings.challenge_ttl_seconds == 300 and settings.cosmos_database == "trustgate"
    assert settings.device_token_pepper == b"p" * 32 and "image/png" in settings.allowed_content_types
    assert (settings.otp_ttl_seconds, settings.password_min_score, settings.smtp_port, settings.smtp_starttls) == (600, 3, 587, True)


def test_environment_wins_over_local_settings(tmp_path, monkeypatch):
    path = tmp_path / "local.settings.json"
    path.write_text(json.dumps({"Values": {**BASE, "CHALLENGE_TTL_SECONDS": "60", "UPLOADS_CONTAINER": "from-file"}}))
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(path))
    settings = load_settings({"CHALLENGE_TTL_SECONDS": "120"})
    assert settings.challenge_ttl_seconds == 120 and settings.uploads_container == "from-file"


@pytest.mark.parametrize("override, setting", [
    ({"COSMOS_ENDPOINT": ""}, "COSMOS_ENDPOINT"),
    ({"UPLOADS_CONTAINER": ""}, "UPLOADS_CONTAINER"),
    ({"DEVICE_TOKEN_PEPPER": "not base64!"}, "DEVICE_TOKEN_PEPPER"),
    ({"DEVICE_TOKEN_PEPPER": base64.b64encode(b"short").decode()}, "DEVICE_TOKEN_PEPPER"),
    ({"CHALLENGE_TTL_SECONDS": "soon"}, "CHALLENGE_TTL_SECONDS"),
    ({"CHALLENGE_TTL_SECONDS": "0"}, "CHALLENGE_TTL_SECONDS"),
    ({"COSMOS_VERIFY_TLS": "maybe"}, "COSMOS_VERIFY_TLS"),
    ({"OTP_PEPPER": base64.b64encode(b"short").decode()}, "OTP_PEPPER"),
    ({"SMTP_PORT": "70000"}, "SMTP_PORT"),
    ({"SMTP_STARTTLS": "perhaps"}, "SMTP_STARTTLS"),
    ({"PASSWORD_MIN_SCORE": "5"}, "PASSWORD_MIN_SCORE"),
])
def test_bad_settings_raise_naming_the_setting_but_not_its_value(tmp_path, monkeypatch, override, setting):
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(tmp_path / "absent.json"))
    with pytest.raises(ConfigError) as raised:
        load_settings({**BASE, **override})
    assert raised.value.setting == setting and setting in str(raised.value)
    if len(override[setting]) > 3:
        assert override[setting] not in str(raised.value)


def test_unreadable_local_settings_is_a_clear_error(tmp_path, monkeypatch):
    path = tmp_path / "local.settings.json"
    path.write_text("{not json")
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(path))
    with pytest.raises(ConfigError, match="local.settings.json"):
        load_settings(BASE)


def test_every_declared_setting_is_in_the_example_file():
    example = json.loads((config.PROJECT_ROOT / "local.settings.example.json").read_text())["Values"]
    missing = [spec.name for spec in config.SETTINGS if spec.name not in example]
    assert missing == []


def test_example_file_parses_into_settings(monkeypatch):
    monkeypatch.setenv("TRUSTGATE_LOCAL_SETTINGS", str(config.PROJECT_ROOT / "local.settings.example.json"))
    assert load_settings({}).cosmos_database == "trustgate"


def test_importing_the_app_needs_no_settings_and_does_no_io(tmp_path):
    import os
    import subprocess
    import sys

    env = {"PATH": os.environ["PATH"], "TRUSTGATE_LOCAL_SETTINGS": str(tmp_path / "absent.json")}
    code = "import function_app; print(len(function_app.app.get_functions()))"
    result = subprocess.run([sys.executable, "-c", code], cwd=config.PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 7
