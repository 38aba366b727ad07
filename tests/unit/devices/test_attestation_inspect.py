"""The offline operator tool verifies saved evidence at a given time and prints every check."""

from __future__ import annotations

import base64
import io

from shared_code.devices.attestation.__main__ import main
from tests.support.attestation import FIXTURES, apple_vectors

CAIMAN = FIXTURES / "android" / "caiman" / "sdk36" / "SB_EC_RKP.pem"
CAIMAN_APP = ["--package", "com.google.android.attestation", "--signer-digest", "EDk47kU35Z6O55L2VFBPuDRvxrNG0LvEQV/DOfz8jsE="]


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(argv), out), out.getvalue()


def test_a_real_pixel_chain_passes_at_its_time_and_names_each_check():
    code, text = run("inspect", str(CAIMAN), "--at", "2025-09-26T15:30:46Z", "--challenge",
                     b"7ccac1ea-4845-482e-858d-f6fa9aa8c295".hex(), "--strict-boot", *CAIMAN_APP)
    assert code == 0 and "trust level: strongbox" in text
    assert "challenge_mismatch     PASS" in text and "revoked                not checked" in text
    assert '"verifiedBootState": "VERIFIED"' in text and '"os_patch_level": "202511"' in text


def test_the_same_chain_later_fails_on_its_expired_rkp_intermediate():
    code, text = run("inspect", str(CAIMAN), "--at", "2030-01-01T00:00:00Z", *CAIMAN_APP)
    assert code == 1 and "certificate_expired    FAIL" in text and "trust level: none" in text


def test_a_status_list_and_a_wrong_challenge_are_reported(tmp_path):
    status = tmp_path / "status.json"
    status.write_text('{"entries": {"65d2949536924da695f5ae1eb290cd4d": {"status": "REVOKED"}}}')
    code, text = run("inspect", str(CAIMAN), "--at", "2025-09-26T15:30:46Z", "--challenge", "00", "--status-list", str(status))
    assert code == 1 and "revoked                FAIL" in text and "challenge_mismatch     FAIL" in text


def test_software_rooted_and_tampered_chains_are_refused():
    code, text = run("inspect", str(FIXTURES / "android" / "marlin" / "sdk29" / "TEE_EC_NONE.pem"), "--at", "2019-10-29T00:00:00Z")
    assert code == 1 and "untrusted_root         FAIL  the chain ends at an AOSP software attestation root" in text
    code, text = run("inspect", str(FIXTURES / "android" / "invalid" / "tags_not_in_ascending_order.pem"), "--at", "2023-01-01T00:00:00Z")
    assert code == 1 and "chain_signature        FAIL" in text


def test_an_apple_attestation_object_verifies(tmp_path):
    vector = apple_vectors()[0]["attestation"]
    blob = tmp_path / "attestation.b64"
    blob.write_text(vector["attestationBase64"])
    code, text = run("inspect", str(blob), "--format", "apple-appattest", "--key-id", vector["keyIdBase64"],
                     "--challenge", base64.b64decode(vector["clientDataBase64"]).hex(), "--environment", "development",
                     "--app-id", f"{vector['teamIdentifier']}.{vector['bundleIdentifier']}", "--at", vector["timestamp"])
    assert code == 0 and "trust level: hardware" in text and "environment            PASS" in text


def test_unreadable_input_is_a_usage_error(tmp_path):
    assert run("inspect", str(tmp_path / "missing.pem"))[0] == 2
