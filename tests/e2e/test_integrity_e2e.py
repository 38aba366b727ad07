"""Play Integrity end to end: the client (library and CLI) against devhost over HTTP, both modes.

The CLI runs in-process (``client.cli.main``) because the fake Google and the app's settings
live in this process; the HTTP path client → devhost → app → fake Google is real.
"""

from __future__ import annotations

import base64
import json
import os

import pytest

from client.cli import main
from client.device_api import ClientError, DeviceClient, standard_request_hash
from client.keys import generate_private_key
from tests.support.play_integrity import (  # noqa: F401 - configure is a fixture
    LocalKeys,
    configure,
    fake_google,
    free_port,
    payload,
    policy_settings,
)

pytestmark = pytest.mark.e2e


def _new_device(live_app) -> DeviceClient:
    client = DeviceClient(live_app.base_url, "e2e-pi-" + os.urandom(6).hex(),
                          base64.urlsafe_b64encode(os.urandom(32)).decode(), generate_private_key("p256"), timeout=30)
    client.register()
    client.attest()
    return client


@pytest.fixture
def local(configure, live_app) -> LocalKeys:
    keys = LocalKeys()
    configure({**policy_settings(), **keys.settings()})
    return keys


@pytest.fixture
def google(configure, live_app):
    with fake_google() as (fake, settings):
        configure({**policy_settings(), **settings})
        yield fake


def test_local_mode_verdicts_over_http(local, live_app):
    client = _new_device(live_app)
    token = local.seal(payload(nonce=client.challenge()["challenge"]))
    result = client.verify_integrity(token)
    assert (result["message"], result["valid"], result["failed_checks"]) == ("integrity_verified", True, [])
    again = client.verify_integrity(token)
    assert (again["valid"], again["failed_checks"]) == (False, ["nonce", "token_unused"])
    challenge = client.challenge()["challenge"]
    weak = client.verify_integrity(local.seal(payload(request_hash=standard_request_hash(client.deviceid, challenge),
                                                      device=("MEETS_BASIC_INTEGRITY",))), challenge)
    assert weak["failed_checks"] == ["device_integrity"]
    device = client.device_info()["device"]
    assert device["integrity"]["failed_checks"] == ["device_integrity"] and "token_hash" not in device
    with pytest.raises(ClientError) as tampered:
        client.verify_integrity(local.seal(payload(), aes=os.urandom(32)))
    assert (tampered.value.status, tampered.value.message) == (400, "invalid_integrity_token")


def test_local_mode_with_a_key_of_the_wrong_type_fails_closed(local, configure, live_app):
    client = _new_device(live_app)
    configure({"PLAY_INTEGRITY_DECRYPTION_KEY": base64.b64encode(os.urandom(16)).decode()})
    with pytest.raises(ClientError) as refused:
        client.verify_integrity(local.seal(payload(nonce=client.challenge()["challenge"])))
    assert (refused.value.status, refused.value.message) == (500, "configuration_error")
    assert "PLAY_INTEGRITY_DECRYPTION_KEY" in refused.value.detail


def test_google_mode_verdicts_and_outages_over_http(google, configure, live_app):
    client = _new_device(live_app)
    token = google.issue(payload(nonce=client.challenge()["challenge"]))
    for behaviour in ("decode_401", "decode_500", "hang"):
        google.behaviour = behaviour
        with pytest.raises(ClientError) as unavailable:
            client.verify_integrity(token)
        assert (unavailable.value.status, unavailable.value.message) == (503, "integrity_unavailable")
    google.behaviour = "ok"
    assert client.verify_integrity(token)["valid"] is True
    assert client.verify_integrity(token)["failed_checks"] == ["nonce", "token_unused"]
    configure({"PLAY_INTEGRITY_API_BASE": f"http://127.0.0.1:{free_port()}"})
    with pytest.raises(ClientError) as closed:
        client.verify_integrity(google.issue(payload(request_hash="h")), client.challenge()["challenge"])
    assert (closed.value.status, closed.value.message) == (503, "integrity_unavailable")


def test_upload_requires_integrity_when_configured(local, configure, live_app, tmp_path):
    configure({"REQUIRE_INTEGRITY_FOR_UPLOAD": "true"})
    client = _new_device(live_app)
    report = tmp_path / "report.txt"
    report.write_text("field report\n")
    with pytest.raises(ClientError) as refused:
        client.upload(report)
    assert (refused.value.status, refused.value.message) == (403, "integrity_required")
    assert client.verify_integrity(local.seal(payload(nonce=client.challenge()["challenge"])))["valid"] is True
    assert client.upload(report)["size"] == report.stat().st_size


def test_cli_integrity_verify_and_device_status(local, live_app, tmp_path, capsys):
    home = str(tmp_path / "home")
    for args in (("device", "init", "--server", live_app.base_url), ("device", "register"), ("device", "attest")):
        assert main(["--home", home, *args]) == 0
    capsys.readouterr()
    assert main(["--home", home, "integrity", "nonce"]) == 0
    nonce = capsys.readouterr().out.strip()
    token_file = tmp_path / "token.txt"
    token_file.write_text(local.seal(payload(nonce=nonce)) + "\n")
    assert main(["--home", home, "integrity", "verify", "--token-file", str(token_file)]) == 0
    assert "integrity:   valid" in capsys.readouterr().out
    assert main(["--home", home, "integrity", "verify", "--token-file", str(token_file), "--json"]) == 1
    assert json.loads(capsys.readouterr().out)["failed_checks"] == ["nonce", "token_unused"]
    assert main(["--home", home, "integrity", "request-hash"]) == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    challenge, request_hash = lines["challenge"].strip(), lines["requestHash"].strip()
    token_file.write_text(local.seal(payload(request_hash=request_hash)))
    assert main(["--home", home, "integrity", "verify", "--token-file", str(token_file), f"--challenge={challenge}"]) == 0
    capsys.readouterr()
    assert main(["--home", home, "device", "status"]) == 0
    shown = capsys.readouterr().out
    assert "integrity:   valid" in shown and "request:     standard" in shown
    token_file.write_text("")
    assert main(["--home", home, "integrity", "verify", "--token-file", str(token_file)]) == 1
    assert "expected one integrity token" in capsys.readouterr().err
