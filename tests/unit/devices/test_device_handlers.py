"""Device handlers called directly with func.HttpRequest: input validation that must answer
before any storage call (no emulators here: a storage call would fail the test with a 5xx)."""

import json

import pytest

from tests.support.devices import call

GOOD_TOKEN = "t" * 32


def _register(body: bytes, content_type: str = "application/json"):
    return call("register_device", "POST", "register-device", headers={"content-type": content_type}, body=body)


@pytest.mark.parametrize("body, message", [
    (b"", "invalid_json"),
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "invalid_json"),
    (b"\xff\xfe", "invalid_json"),
    (b"{}", "missing_fields"),
    (json.dumps({"deviceid": "d1"}).encode(), "missing_fields"),
    (json.dumps({"deviceid": 5, "deviceToken": GOOD_TOKEN}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d1", "deviceToken": ["x"] * 40}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d1", "deviceToken": "short"}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "../etc", "deviceToken": GOOD_TOKEN}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "..", "deviceToken": GOOD_TOKEN}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "dévice", "deviceToken": GOOD_TOKEN}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d" * 129, "deviceToken": GOOD_TOKEN}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d1", "deviceToken": "t" * 513}).encode(), "invalid_field"),
    # The token travels in an HTTP header: printable ASCII without spaces, or it could never authenticate.
    (json.dumps({"deviceid": "d1", "deviceToken": "t" * 20 + " " + "t" * 20}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d1", "deviceToken": "t" * 40 + "\U0001f511"}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d1", "deviceToken": "t" * 40 + "\u00e9"}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d1", "deviceToken": "t" * 40 + "\t"}).encode(), "invalid_field"),
    (json.dumps({"deviceid": "d1", "deviceToken": "t" * 40 + "\x7f"}).encode(), "invalid_field"),
])
def test_register_rejects_bad_input_with_400(body, message):
    status, result = _register(body)
    assert (status, result["code"], result["message"]) == (400, 400, message)
    assert result["detail"] and "Traceback" not in result["detail"]


def test_register_rejects_non_json_media_type():
    status, result = _register(b"deviceid=x", "application/x-www-form-urlencoded")
    assert (status, result["message"]) == (415, "unsupported_media_type")


@pytest.mark.parametrize("name, method, path", [
    ("get_challenge", "GET", "api/challenge"), ("attest_device", "POST", "attest-device"),
    ("upload_file", "POST", "upload-file"), ("list_files", "GET", "api/files"),
])
def test_device_endpoints_need_credentials(name, method, path):
    status, result = call(name, method, path, headers={"deviceid": "d1"})
    assert (status, result["message"]) == (401, "missing_credentials")


def test_missing_required_setting_is_a_clear_500(monkeypatch):
    from tests.conftest import reset_app_state

    monkeypatch.delenv("COSMOS_ENDPOINT", raising=False)
    reset_app_state()
    try:
        status, result = call("get_challenge", "GET", "api/challenge", headers={"deviceid": "d1", "deviceToken": GOOD_TOKEN})
        assert (status, result["message"]) == (500, "configuration_error")
        assert "COSMOS_ENDPOINT" in result["detail"]
    finally:
        monkeypatch.undo()
        reset_app_state()


def test_register_rejects_oversized_json_with_413():
    status, result = _register(b'{"deviceid": "' + b"a" * 70000 + b'"}')
    assert (status, result["message"]) == (413, "body_too_large")


@pytest.mark.parametrize("page_size", ["\u00b2", "\u0661\u0662", "-1", "1e3", "201"])
def test_page_size_must_be_ascii_digits_in_range(page_size):
    from shared_code.platform.errors import BadRequest
    from shared_code.platform.http import parse_int_param

    with pytest.raises(BadRequest) as raised:
        parse_int_param(page_size, "page_size", 50, 1, 200)
    assert raised.value.message == "invalid_page_size"


def test_missing_credentials_carry_www_authenticate():
    import azure.functions as func

    from tests.support.devices import HANDLERS

    resp = HANDLERS["get_challenge"](func.HttpRequest("GET", "http://localhost/api/challenge", body=b""))
    assert resp.status_code == 401 and resp.headers["WWW-Authenticate"].startswith("DeviceToken")
