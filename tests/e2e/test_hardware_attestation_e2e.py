"""The whole hardware path over HTTP: the client CLI simulates devices under a test authority
(as ``make run`` sets it up), devhost serves the app, the verifier decides."""

from __future__ import annotations

import json

import pytest

from client import attestation_sim as sim
from client.cli import main
from client.integrity_mint import PlayIntegrityDevKeys
from shared_code.devices.attestation import status_list
from tests.support.attestation import FakeStatusList
from tests.support.play_integrity import configure  # noqa: F401 - fixture

pytestmark = pytest.mark.e2e


@pytest.fixture
def authority(tmp_path, configure, live_app):
    folder = tmp_path / "test-authority"
    authority = sim.TestAuthority.load_or_create(folder)
    keys = PlayIntegrityDevKeys.load_or_create(folder)
    with FakeStatusList() as status:
        configure({"ATTESTATION_TEST_ROOTS": authority.roots_pem(), "ANDROID_ATTESTATION_PACKAGES": sim.DEV_PACKAGE,
                   "ANDROID_ATTESTATION_SIGNATURE_DIGESTS": sim.DEV_SIGNER_DIGEST.hex(),
                   "APP_ATTEST_APP_IDS": sim.DEV_APP_ID, "APP_ATTEST_ENVIRONMENT": "development",
                   "ANDROID_ATTESTATION_STATUS_URL": status.url, "MIN_DEVICE_TRUST": "hardware",
                   "PLAY_INTEGRITY_MAX_AGE_SECONDS": "300", **keys.settings()})
        status_list.reset()
        yield folder
    status_list.reset()


def cli(home, *args: str) -> int:
    return main(["--home", str(home), *args])


def new_device(home, server: str) -> None:
    assert cli(home, "device", "init", "--server", server) == 0
    assert cli(home, "device", "register") == 0


@pytest.mark.parametrize("attest_args, trust", [
    (("--format", "android-key"), "hardware"),
    (("--format", "android-key", "--security-level", "strongbox", "--provisioning", "remote"), "strongbox"),
    (("--format", "apple-appattest"), "hardware"),
])
def test_simulated_hardware_devices_attest_and_upload_over_http(authority, live_app, tmp_path, capsys, attest_args, trust):
    home = tmp_path / "device"
    new_device(home, live_app.base_url)
    assert cli(home, "device", "attest", *attest_args, "--simulate", "--test-authority", str(authority)) == 0
    assert f"trust level {trust}" in capsys.readouterr().out
    report = tmp_path / "report.txt"
    report.write_text("field report\n")
    assert cli(home, "upload", str(report), str(report), "--no-progress") == 0
    capsys.readouterr()
    assert cli(home, "device", "status", "--json") == 0
    assert json.loads(capsys.readouterr().out)["device"]["trust_level"] == trust
    state = json.loads((home / "device.json").read_text())
    assert state["attestation_format"] == attest_args[1]
    if attest_args[1] == "apple-appattest":
        assert state["assertion_counter"] == 2


def test_a_software_key_is_refused_when_hardware_is_required(authority, live_app, tmp_path, capsys):
    home = tmp_path / "laptop"
    new_device(home, live_app.base_url)
    assert cli(home, "device", "attest") == 0
    report = tmp_path / "report.txt"
    report.write_text("from a script\n")
    capsys.readouterr()
    assert cli(home, "upload", str(report), "--no-progress") == 1
    assert "attestation_required (403)" in capsys.readouterr().err


def test_hardware_formats_need_simulate_on_a_computer(authority, live_app, tmp_path, capsys):
    home = tmp_path / "device"
    new_device(home, live_app.base_url)
    assert cli(home, "device", "attest", "--format", "android-key") == 1
    assert "--simulate" in capsys.readouterr().err
    assert cli(home, "device", "attest", "--format", "android-key", "--simulate", "--test-authority", str(tmp_path / "none")) == 1
    assert "no test attestation authority" in capsys.readouterr().err


def test_a_minted_local_mode_token_verifies_for_an_attested_device(authority, live_app, tmp_path, capsys):
    home = tmp_path / "device"
    new_device(home, live_app.base_url)
    assert cli(home, "device", "attest", "--format", "android-key", "--simulate", "--test-authority", str(authority)) == 0
    capsys.readouterr()
    assert cli(home, "integrity", "nonce") == 0
    nonce = capsys.readouterr().out.strip()
    assert cli(home, "integrity", "mint", f"--nonce={nonce}", "--test-authority", str(authority)) == 0  # may start with "-"
    token = tmp_path / "token.txt"
    token.write_text(capsys.readouterr().out)
    assert cli(home, "integrity", "verify", "--token-file", str(token)) == 0
    assert "integrity:   valid" in capsys.readouterr().out
    assert cli(home, "integrity", "request-hash") == 0
    lines = dict(line.split(":", 1) for line in capsys.readouterr().out.splitlines())
    assert cli(home, "integrity", "mint", f"--request-hash={lines['requestHash'].strip()}", "--device-verdict", "BASIC",
               "--test-authority", str(authority)) == 0
    token.write_text(capsys.readouterr().out)
    assert cli(home, "integrity", "verify", "--token-file", str(token), f"--challenge={lines['challenge'].strip()}", "--json") == 1
    answer = json.loads(capsys.readouterr().out)
    assert (answer["failed_checks"], answer["trust_level"]) == (["device_integrity"], "hardware")
