"""POST /verify and GET /api/device against real Cosmos DB, in both decoding modes.

``local``: tokens sealed with the test app's own response keys. ``google``: a fake Google over
real HTTP (token endpoint checking the service account's signed assertion, decode endpoint).
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

import pytest

from shared_code.devices.integrity import verdicts
from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.timeutil import utc_now
from tests.support.devices import DeviceActor, call, json_body
from tests.support.play_integrity import (  # noqa: F401 - configure is a fixture
    FakeGoogle,
    LocalKeys,
    configure,
    fake_google,
    free_port,
    payload,
    policy_settings,
    service_account,
)

pytestmark = pytest.mark.integration


class Mode:
    """Makes tokens the way the configured decoding mode will accept them."""

    def __init__(self, name: str, keys: LocalKeys | None = None, fake: FakeGoogle | None = None):
        self.name, self.keys, self.fake = name, keys, fake

    def token(self, document: dict) -> str:
        return self.keys.seal(document) if self.keys else self.fake.issue(document)


@pytest.fixture(params=["local", "google"])
def mode(request, configure, emulators):
    if request.param == "local":
        keys = LocalKeys()
        configure({**policy_settings(), **keys.settings()})
        yield Mode("local", keys=keys)
        return
    with fake_google() as (fake, settings):
        configure({**policy_settings(), **settings})
        yield Mode("google", fake=fake)


@pytest.fixture
def google(configure, emulators):
    with fake_google() as (fake, settings):
        configure({**policy_settings(), **settings})
        yield fake


@pytest.fixture
def device(emulators) -> DeviceActor:
    actor = DeviceActor()
    assert actor.register()[0] == 201
    return actor


def verify(actor: DeviceActor, token: str, challenge: str | None = None) -> tuple[int, dict]:
    document = {"token": token} if challenge is None else {"token": token, "challenge": challenge}
    headers, body = json_body(document)
    return call("verify_integrity", "POST", "verify", headers={**actor.headers, **headers}, body=body)


def shown(actor: DeviceActor) -> dict:
    status, body = call("get_device", "GET", "api/device", headers=actor.headers)
    assert status == 200 and body["message"] == "device"
    return body["device"]


# --- passing verdicts -----------------------------------------------------------------------

def test_a_classic_request_passes_and_is_stored_on_the_device(mode, device):
    token = mode.token(payload(nonce=device.challenge()))
    status, body = verify(device, token)
    assert (status, body["message"], body["valid"], body["failed_checks"]) == (200, "integrity_verified", True, [])
    assert body["verdict"]["request_type"] == "classic" and body["verdict"]["app_recognition"] == "PLAY_RECOGNIZED"
    view = shown(device)
    assert view["integrity"] == {k: body[k] for k in ("valid", "verdict", "failed_checks", "checked_at")}
    assert "token_hash" not in json.dumps(view) and token not in json.dumps(view)
    used = cosmos.read_item(cosmos.INTEGRITY_TOKENS, sha256_hex(token), sha256_hex(token))
    assert used["deviceid"] == device.deviceid and used["ttl"] > 0 and token not in json.dumps(used)


def standard(mode: Mode, actor: DeviceActor, **fields) -> tuple[str, str]:
    """A live challenge of ``actor`` and a standard-request token whose requestHash binds both."""
    challenge = actor.challenge()
    return challenge, mode.token(payload(request_hash=verdicts.standard_request_hash(actor.deviceid, challenge), **fields))


def test_a_standard_request_passes_with_the_hash_the_server_derives(mode, device):
    challenge, token = standard(mode, device)
    assert verdicts.standard_request_hash("dev-1", "abc") == "ZiEXcyai_aJSYyPxhoDm-cNlBw7Sv8swI4Ku31R95_E"  # unpadded base64url
    status, body = verify(device, token, challenge)
    assert (status, body["valid"], body["failed_checks"], body["verdict"]["request_type"]) == (200, True, [], "standard")
    assert verify(device, mode.token(payload(request_hash=verdicts.standard_request_hash(device.deviceid, challenge))),
                  challenge)[1]["failed_checks"] == ["request_hash"]  # the challenge was consumed


def test_a_genuine_devices_standard_token_does_not_verify_for_another_device(mode, device):
    challenge, token = standard(mode, device)
    thief = DeviceActor()
    thief.register()
    assert verify(thief, token, thief.challenge())[1]["failed_checks"] == ["request_hash"]
    other_token = mode.token(payload(request_hash=verdicts.standard_request_hash(device.deviceid, challenge)))
    assert verify(thief, other_token, challenge)[1]["failed_checks"] == ["request_hash"]  # not its challenge either
    fresh = mode.token(payload(request_hash=verdicts.standard_request_hash(device.deviceid, challenge)))
    assert verify(device, fresh, challenge)[1]["valid"] is True  # the thief could not use up the challenge


# --- each check failing alone -------------------------------------------------------------

@pytest.mark.parametrize("broken, check", [
    (dict(request_package="com.other.app"), "package_name"),
    (dict(timestamp_ms=0), "timestamp"),
    (dict(app_verdict="UNRECOGNIZED_VERSION"), "app_recognized"),
    (dict(cert="bm90LXRoZS1hcHAtc2lnbmluZy1jZXJ0aWZpY2F0ZQ"), "certificate_digest"),
    (dict(device=("MEETS_BASIC_INTEGRITY",)), "device_integrity"),
    (dict(licensing="UNLICENSED"), "app_licensed"),
])
def test_each_check_fails_alone(mode, device, broken, check):
    status, body = verify(device, mode.token(payload(nonce=device.challenge(), **broken)))
    assert (status, body["message"], body["valid"], body["failed_checks"]) == (200, "integrity_failed", False, [check])
    assert shown(device)["integrity"]["failed_checks"] == [check]


def test_a_nonce_that_is_not_this_devices_challenge_fails_alone(mode, device):
    other = DeviceActor()
    other.register()
    for nonce in (other.challenge(), "A" * 43, None):
        status, body = verify(device, mode.token(payload(nonce=nonce)))
        assert (status, body["failed_checks"]) == (200, ["nonce"])


def test_a_wrong_request_hash_fails_alone(mode, device):
    status, body = verify(device, mode.token(payload(request_hash="hash-the-app-used")), device.challenge())
    assert (status, body["failed_checks"]) == (200, ["request_hash"])


# --- replay ---------------------------------------------------------------------------------

def test_a_token_verifies_once(mode, device):
    challenge, token = standard(mode, device)
    assert verify(device, token, challenge)[1]["valid"] is True
    status, body = verify(device, token, challenge)
    assert (status, body["valid"], body["failed_checks"]) == (200, False, ["request_hash", "token_unused"])
    classic = mode.token(payload(nonce=device.challenge()))
    assert verify(device, classic)[1]["valid"] is True
    assert verify(device, classic)[1]["failed_checks"] == ["nonce", "token_unused"]
    other = DeviceActor()
    other.register()
    other_challenge = other.challenge()
    copied = mode.token(payload(request_hash=verdicts.standard_request_hash(other.deviceid, other_challenge)))
    assert verify(other, copied, other_challenge)[1]["valid"] is True
    assert verify(device, copied, device.challenge())[1]["failed_checks"] == ["request_hash", "token_unused"]


def test_a_nonce_verifies_once_even_in_a_new_token(mode, device):
    challenge = device.challenge()
    assert verify(device, mode.token(payload(nonce=challenge)))[1]["valid"] is True
    status, body = verify(device, mode.token(payload(nonce=challenge)))
    assert (status, body["failed_checks"]) == (200, ["nonce"])


def test_the_latest_verdict_replaces_the_previous_one(mode, device):
    assert verify(device, mode.token(payload(nonce=device.challenge())))[1]["valid"] is True
    verify(device, mode.token(payload(nonce=device.challenge(), device=())))
    assert shown(device)["integrity"]["valid"] is False


# --- bad requests ---------------------------------------------------------------------------

def test_tampered_tokens_are_400_and_change_nothing(configure, device):
    keys = LocalKeys()
    configure({**policy_settings(), **keys.settings()})
    token = keys.seal(payload(nonce=device.challenge()))
    head, key, iv, ciphertext, tag = token.split(".")
    forged = ".".join([head, key, iv, ("A" if ciphertext[0] != "A" else "B") + ciphertext[1:], tag])
    status, body = verify(device, forged)
    assert (status, body["message"]) == (400, "invalid_integrity_token")
    assert shown(device)["integrity"] is None
    assert cosmos.read_item(cosmos.INTEGRITY_TOKENS, sha256_hex(forged), sha256_hex(forged)) is None
    assert verify(device, token)[1]["valid"] is True  # the challenge was not used up


def test_google_refusing_a_token_is_400(google, device):
    status, body = verify(device, "a.b.c.d.e")
    assert (status, body["message"]) == (400, "invalid_integrity_token")


@pytest.mark.parametrize("document, expected", [
    ({}, (400, "missing_fields")),
    ({"token": ""}, (400, "missing_fields")),
    ({"token": 42}, (400, "invalid_integrity_token")),
    ({"token": "not-a-jwe"}, (400, "invalid_integrity_token")),
    ({"token": "a.b.c.d.e.f"}, (400, "invalid_integrity_token")),
    ({"token": "a" * 16385 + ".b.c.d.e"}, (400, "invalid_integrity_token")),
    ({"token": "a.b.c.d.e", "challenge": 7}, (400, "invalid_field")),
    ({"token": "a.b.c.d.e", "request_hash": "declared-by-the-client"}, (400, "invalid_field")),
])
def test_malformed_requests_are_400(mode, device, document, expected):
    headers, body = json_body(document)
    status, answer = call("verify_integrity", "POST", "verify", headers={**device.headers, **headers}, body=body)
    assert (status, answer["message"]) == expected


@pytest.mark.parametrize("headers, expected", [
    ({}, (401, "missing_credentials")),
    ({"deviceid": "nobody-here", "deviceToken": "x" * 40}, (403, "invalid_credentials")),
])
@pytest.mark.parametrize("name, method, path", [("verify_integrity", "POST", "verify"), ("get_device", "GET", "api/device")])
def test_device_credentials_are_required(emulators, headers, expected, name, method, path):
    h, b = json_body({"token": "a.b.c.d.e"})
    status, body = call(name, method, path, headers={**headers, **h}, body=b)
    assert (status, body["message"]) == expected


# --- fail closed ----------------------------------------------------------------------------

def _assert_unavailable(device: DeviceActor, token: str) -> None:
    status, body = verify(device, token)
    assert (status, body["message"]) == (503, "integrity_unavailable") and body["detail"]
    assert shown(device)["integrity"] is None
    assert cosmos.read_item(cosmos.INTEGRITY_TOKENS, sha256_hex(token), sha256_hex(token)) is None


@pytest.mark.parametrize("behaviour", ["decode_401", "decode_500", "hang"])
def test_google_failing_is_503_and_the_token_stays_usable(google, device, behaviour):
    token = google.issue(payload(nonce=device.challenge()))
    google.behaviour = behaviour
    _assert_unavailable(device, token)
    google.behaviour = "ok"
    assert verify(device, token)[1]["valid"] is True


def test_google_token_endpoint_failing_is_503(google, device):
    google.behaviour = "token_500"  # google-auth retries 5xx from the token endpoint, then gives up
    _assert_unavailable(device, google.issue(payload(nonce=device.challenge())))
    assert google.token_requests >= 2 and google.decode_calls == 0


def test_google_refusing_the_service_account_assertion_is_503(google, configure, device):
    info, _other_key = service_account(google.token_uri)  # same account name, key Google does not know
    info["client_email"] = "verifier@trustgate-test.iam.gserviceaccount.com"
    configure({"PLAY_INTEGRITY_CREDENTIALS": json.dumps(info)})
    _assert_unavailable(device, google.issue(payload(nonce=device.challenge())))
    assert google.token_requests >= 1 and google.decode_calls == 0


def test_google_not_listening_is_503(google, configure, device):
    configure({"PLAY_INTEGRITY_API_BASE": f"http://127.0.0.1:{free_port()}"})
    _assert_unavailable(device, google.issue(payload(nonce=device.challenge())))


def test_unusable_keys_are_a_configuration_error_naming_the_setting(configure, device):
    keys = LocalKeys()
    configure({**policy_settings(), **keys.settings(), "PLAY_INTEGRITY_VERIFICATION_KEY": keys.settings()["PLAY_INTEGRITY_DECRYPTION_KEY"]})
    status, body = verify(device, keys.seal(payload(nonce=device.challenge())))
    assert (status, body["message"]) == (500, "configuration_error") and "PLAY_INTEGRITY_VERIFICATION_KEY" in body["detail"]


# --- upload gate ----------------------------------------------------------------------------

def test_uploads_need_a_recent_passing_verdict_when_required(configure, device, monkeypatch):
    keys = LocalKeys()
    configure({**policy_settings(), **keys.settings(), "REQUIRE_INTEGRITY_FOR_UPLOAD": "true"})
    assert device.attest()[0] == 200
    assert device.upload(b"no verdict yet")[1]["message"] == "integrity_required"
    assert verify(device, keys.seal(payload(nonce=device.challenge())))[1]["valid"] is True
    status, body = device.upload(b"verified device")
    assert (status, body["message"]) == (200, "file_uploaded")
    later = utc_now() + timedelta(seconds=301)
    monkeypatch.setattr(verdicts, "utc_now", lambda: later)
    status, body = device.upload(b"verdict too old")
    assert (status, body["message"]) == (403, "integrity_required")
    monkeypatch.undo()
    configure({**policy_settings(), **keys.settings(), "REQUIRE_INTEGRITY_FOR_UPLOAD": "true"})
    verify(device, keys.seal(payload(nonce=device.challenge(), app_verdict="UNEVALUATED")))
    assert device.upload(b"latest verdict failed")[0] == 403


def test_uploads_do_not_need_a_verdict_by_default(device):
    assert device.attest()[0] == 200
    assert device.upload(b"no integrity needed")[0] == 200


def test_credentials_may_be_a_path_to_the_service_account_file(google, configure, device, tmp_path):
    account = tmp_path / "play-integrity-sa.json"
    account.write_text(os.environ["PLAY_INTEGRITY_CREDENTIALS"])
    configure({"PLAY_INTEGRITY_CREDENTIALS": str(account)})
    assert verify(device, google.issue(payload(nonce=device.challenge())))[1]["valid"] is True


@pytest.mark.parametrize("value, reason", [
    ("", "required"), ("/no/such/file.json", "readable"), ('{"type": "authorized_user"}', "service_account"),
    ("{broken", "JSON"),
])
def test_unusable_credentials_are_a_configuration_error(google, configure, monkeypatch, device, value, reason):
    monkeypatch.setenv("PLAY_INTEGRITY_CREDENTIALS", value)
    configure({})
    status, body = verify(device, google.issue(payload(nonce=device.challenge())))
    assert (status, body["message"]) == (500, "configuration_error")
    assert "PLAY_INTEGRITY_CREDENTIALS" in body["detail"] and reason in body["detail"]
