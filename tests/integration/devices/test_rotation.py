"""Device self-service rotation against the real emulators: the key (continuity by the old key,
possession by the new, fresh hardware evidence at the same or a higher trust level) and the token."""

from __future__ import annotations

import base64
import hashlib
import secrets

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3 import encode_multipart_formdata

from client import attestation_sim as sim
from shared_code.audit.sequencer import synced_state
from tests.support.attestation import APP_ID, android_body, apple_body, attest, chain_for
from tests.support.audit import entries_since
from tests.support.devices import DeviceActor, call, json_body, new_key, public_pem, sign

pytestmark = pytest.mark.integration


@pytest.fixture
def device(attested_device) -> DeviceActor:
    return attested_device


def spki_sha256(key) -> str:
    return hashlib.sha256(key.public_key().public_bytes(serialization.Encoding.DER,
                                                        serialization.PublicFormat.SubjectPublicKeyInfo)).hexdigest()


def message(challenge: str, new) -> bytes:
    return f"rotate:{challenge}:{spki_sha256(new)}".encode()


def rotate(actor: DeviceActor, document: dict) -> tuple[int, dict]:
    headers, body = json_body(document)
    return call("rotate_device_key", "POST", "rotate-device-key", headers={**actor.headers, **headers}, body=body)


def key_body(actor: DeviceActor, new, *, old=None, new_signer=None, challenge: str | None = None) -> dict:
    challenge = challenge or actor.challenge()
    return {"challenge": challenge, "new_public_key": public_pem(new),
            "signature_by_old_key": sign(old or actor.key, message(challenge, new)),
            "signature_by_new_key": sign(new_signer or new, message(challenge, new))}


def test_a_rotated_key_replaces_the_old_one_which_is_refused_from_then_on(device):
    old, new = device.key, new_key("ed25519")
    before = synced_state().size
    status, body = rotate(device, key_body(device, new))
    assert (status, body["message"], body["key_type"], body["trust_level"], body["key_rotations"]) == (
        200, "device_key_rotated", "ed25519", "software", 1)
    record = device.record()
    assert record["public_key"] == public_pem(new) and record["key_history"][0]["public_key"] == public_pem(old)
    assert record["key_history"][0]["spki_sha256"] == spki_sha256(old)
    status, answer = device.upload(b"signed by the retired key")
    assert (status, answer["message"]) == (401, "invalid_signature")
    device.key = new
    assert device.upload(b"signed by the new key")[0] == 200
    entry = next(e for e in entries_since(before) if e["event"] == "device_key_rotated")
    assert (entry["actor"], entry["objects"]["old_key_sha256"], entry["objects"]["new_key_sha256"]) == (
        f"device:{device.deviceid}", spki_sha256(old), spki_sha256(new))
    # Rotating back to a retired key is refused; so is "rotating" to the current one.
    assert rotate(device, key_body(device, old))[1]["message"] == "key_reused"
    assert rotate(device, key_body(device, new))[1]["message"] == "key_already_current"


def test_a_rotation_without_the_old_keys_signature_is_refused(device):
    thief, new = new_key("p256"), new_key("p256")
    status, body = rotate(device, key_body(device, new, old=thief))
    assert (status, body["message"]) == (401, "invalid_signature")
    status, body = rotate(device, key_body(device, new, new_signer=thief))
    assert (status, body["message"]) == (401, "invalid_signature")
    assert "key_history" not in device.record() and device.record()["public_key"] == public_pem(device.key)


def test_rotation_needs_an_attested_key_a_fresh_challenge_and_a_usable_new_key(device, emulators):
    unattested = DeviceActor()
    unattested.register()
    unattested.key = new_key()
    assert rotate(unattested, key_body(unattested, new_key()))[1]["message"] == "device_not_attested"
    first = new_key()
    used = key_body(device, first)
    assert rotate(device, used)[0] == 200
    second = new_key()
    status, body = rotate(device, key_body(device, second, old=first, challenge=used["challenge"]))
    assert (status, body["message"]) == (401, "invalid_challenge")
    weak = new_key("rsa1024")
    status, body = rotate(device, key_body(device, weak, old=first))
    assert (status, body["message"]) == (400, "unusable_key")


# --- hardware devices ----------------------------------------------------------------------------

def test_a_hardware_device_rotates_with_fresh_evidence_never_down_to_a_software_key(attestation_settings, pki, emulators):
    device = DeviceActor()
    device.register()
    first = ec.generate_private_key(ec.SECP256R1())
    challenge = device.challenge()
    assert attest(device, android_body(pki, challenge, chain_for(pki, first, challenge)))[1]["trust_level"] == "hardware"
    device.key = first
    status, body = rotate(device, key_body(device, new_key()))
    assert (status, body["message"]) == (403, "trust_downgrade")
    # fresh StrongBox evidence for a new key, vouched for by the old one: accepted (a higher level)
    second = ec.generate_private_key(ec.SECP256R1())
    challenge = device.challenge()
    document = android_body(pki, challenge, chain_for(pki, second, challenge, security_level="strongbox"))
    document["signature_by_old_key"] = sign(first, message(challenge, second))
    status, body = rotate(device, document)
    assert (status, body["trust_level"], body["attestation"]["format"]) == (200, "strongbox", "android-key"), body
    assert device.record()["key_history"][0]["trust_level"] == "hardware"
    assert len(device.record()["evidence"]["certificate_chain"]) == 4
    # evidence for a key the current key did not vouch for: refused
    third = ec.generate_private_key(ec.SECP256R1())
    challenge = device.challenge()
    document = android_body(pki, challenge, chain_for(pki, third, challenge, security_level="strongbox"))
    document["signature_by_old_key"] = sign(first, message(challenge, third))
    assert rotate(device, document)[1]["message"] == "invalid_signature"
    # evidence made for another challenge: refused with its failed check
    stale, challenge = device.challenge(), device.challenge()
    document = android_body(pki, challenge, chain_for(pki, third, stale, security_level="strongbox"))
    document["signature_by_old_key"] = sign(second, message(challenge, third))
    status, body = rotate(device, document)
    assert (status, body["message"], body["failed_checks"]) == (401, "attestation_failed", ["challenge_mismatch"])


def test_an_app_attest_device_proves_continuity_with_an_assertion(attestation_settings, pki, emulators):
    device = DeviceActor()
    device.register()
    first = ec.generate_private_key(ec.SECP256R1())
    assert attest(device, apple_body(pki, first, device.challenge()))[0] == 200
    second = ec.generate_private_key(ec.SECP256R1())
    challenge = device.challenge()
    document = apple_body(pki, second, challenge)
    document["signature_by_old_key"] = base64.b64encode(
        sim.apple_assertion(first, message(challenge, second), APP_ID, 1)).decode()
    status, body = rotate(device, document)
    assert (status, body["trust_level"]) == (200, "hardware"), body
    assert device.record()["assertion_counter"] == 0
    challenge = device.challenge()
    data = b"after the rotation"
    client_data = f"upload:{challenge}:{hashlib.sha256(data).hexdigest()}".encode()
    for key, expected in ((first, 401), (second, 200)):
        proof = base64.b64encode(sim.apple_assertion(key, client_data, APP_ID, 1)).decode()
        multipart, ctype = encode_multipart_formdata({"challenge": challenge, "signed_challenge": proof,
                                                      "file": ("a.txt", data, "text/plain")})
        assert call("upload_file", "POST", "upload-file", headers={**device.headers, "content-type": ctype},
                    body=multipart)[0] == expected


# --- the device token -------------------------------------------------------------------------------

def rotate_token(actor: DeviceActor, document: dict) -> tuple[int, dict]:
    headers, body = json_body(document)
    return call("rotate_device_token", "POST", "rotate-device-token", headers={**actor.headers, **headers}, body=body)


def token_body(actor: DeviceActor, new_token: str, signer=None) -> dict:
    challenge = actor.challenge()
    digest = hashlib.sha256(new_token.encode()).hexdigest()
    return {"new_device_token": new_token, "challenge": challenge,
            "signature": sign(signer or actor.key, f"rotate-token:{challenge}:{digest}".encode())}


def test_a_rotated_token_works_at_once_and_the_old_one_is_dead(device):
    old, new = device.token, secrets.token_urlsafe(32)
    status, body = rotate_token(device, token_body(device, new))
    assert (status, body["message"]) == (200, "device_token_rotated")
    assert call("get_challenge", "GET", "api/challenge", headers=device.headers)[1]["message"] == "invalid_credentials"
    device.token = new
    assert call("get_challenge", "GET", "api/challenge", headers=device.headers)[0] == 200
    assert "token_hash" not in body and new not in str(device.record()) and old not in str(device.record())


def test_a_leaked_token_alone_cannot_rotate_an_attested_devices_token(device):
    new = secrets.token_urlsafe(32)
    assert rotate_token(device, {"new_device_token": new})[1]["message"] == "missing_fields"
    status, body = rotate_token(device, token_body(device, new, signer=new_key()))
    assert (status, body["message"]) == (401, "invalid_signature")
    assert rotate_token(device, {**token_body(device, new), "new_device_token": device.token})[1]["message"] == "invalid_field"
    assert rotate_token(device, {"new_device_token": "short"})[1]["message"] == "invalid_field"


def test_a_device_without_a_key_rotates_its_token_with_the_token(emulators):
    device = DeviceActor()
    device.register()
    new = secrets.token_urlsafe(32)
    assert rotate_token(device, {"new_device_token": new})[0] == 200
    device.token = new
    assert call("get_device", "GET", "api/device", headers=device.headers)[0] == 200
