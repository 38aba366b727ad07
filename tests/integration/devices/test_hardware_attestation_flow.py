"""The hardware attestation flow against real Cosmos DB: attest, gates, assertions, revocation.

Evidence comes from the fake PKI (tests/support/attestation.py, the client simulator's
authority) trusted through ``ATTESTATION_TEST_ROOTS``; the status list from a local fake.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from urllib3 import encode_multipart_formdata

from client import attestation_sim as sim
from shared_code.devices.attestation import status_list, sweep
from shared_code.platform import cosmos
from shared_code.platform.timeutil import utc_now
from tests.support.attestation import (
    APP_ID,
    PACKAGE,
    SIGNER,
    FakePki,
    android_body,
    apple_body,
    attest,
    extend_chain_as_device,
    raw,
)
from tests.support.devices import DeviceActor, call, json_body

pytestmark = pytest.mark.integration


@pytest.fixture
def settings(attestation_settings):
    return attestation_settings


@pytest.fixture
def device(emulators) -> DeviceActor:
    actor = DeviceActor()
    assert actor.register()[0] == 201
    return actor


def stored(actor: DeviceActor) -> dict:
    return cosmos.read_item(cosmos.DEVICES, actor.deviceid, actor.deviceid)


def upload(actor: DeviceActor, data: bytes, proof: str, challenge: str) -> tuple[int, dict]:
    body, ctype = encode_multipart_formdata({"challenge": challenge, "signed_challenge": proof,
                                             "file": ("report.txt", data, "text/plain")})
    return call("upload_file", "POST", "upload-file", headers={**actor.headers, "content-type": ctype}, body=body)


def assertion(key, challenge: str, data: bytes, counter: int) -> str:
    client_data = f"upload:{challenge}:{hashlib.sha256(data).hexdigest()}".encode()
    return base64.b64encode(sim.apple_assertion(key, client_data, APP_ID, counter)).decode()


# --- Android ------------------------------------------------------------------------------------

def test_an_android_tee_key_attests_as_hardware_and_keeps_its_evidence(settings, pki, device):
    pki_key = pki.key
    status, body = attest(device, android_body(pki, device.challenge()))
    assert (status, body["message"], body["trust_level"], body["key_type"]) == (200, "device_attested", "hardware", "ec-p256")
    assert body["attestation"]["format"] == "android-key" and body["attestation"]["device_locked"] is True
    record = stored(device)
    assert record["trust_level"] == "hardware" and len(record["evidence"]["certificate_chain"]) == 4
    assert record["attestation"]["package_names"] == [PACKAGE] and record["attestation"]["signer_digests"] == [SIGNER.hex()]
    view = call("get_device", "GET", "api/device", headers=device.headers)[1]["device"]
    assert view["trust_level"] == "hardware" and view["attestation"]["os_patch_level"] == "202601"
    assert "evidence" not in view and "token_hash" not in json.dumps(view)
    device.key = pki_key
    assert device.upload(b"signed by the attested TEE key")[0] == 200


def test_hardware_evidence_upgrades_a_key_first_proved_by_possession(settings, pki, device):
    assert device.attest(key=pki.key)[1]["trust_level"] == "software"
    status, body = attest(device, android_body(pki, device.challenge()))
    assert (status, body["trust_level"]) == (200, "hardware") and stored(device)["trust_level"] == "hardware"
    other = FakePki()
    assert attest(device, android_body(other, device.challenge()))[0] == 401  # another authority: untrusted


def test_a_strongbox_key_attests_as_strongbox(settings, pki, device):
    status, body = attest(device, android_body(pki, device.challenge(), security_level="strongbox", provisioning="remote"))
    assert (status, body["trust_level"], body["attestation"]["provisioning"]) == (200, "strongbox", "remote")


def test_a_forged_chain_is_refused_with_every_failed_check_and_changes_nothing(settings, pki, device):
    challenge = device.challenge()
    forged = extend_chain_as_device(sim.android_chain(pki.authority, pki.key, raw(challenge), package=PACKAGE,
                                                      signature_digest=SIGNER), pki.key, raw(challenge))
    status, body = attest(device, android_body(pki, challenge, forged))
    assert (status, body["message"], body["failed_checks"]) == (401, "attestation_failed", ["extension_misplaced"])
    assert "extension_misplaced" in body["detail"]
    status, body = attest(device, android_body(pki, challenge, locked=False, package="com.evil.clone"))
    assert (status, body["failed_checks"]) == (401, ["root_of_trust", "app_identity"])
    assert stored(device)["public_key"] is None
    assert attest(device, android_body(pki, challenge))[0] == 200  # the challenge was left usable


@pytest.mark.parametrize("document, expected", [
    ({"format": "android-key", "challenge": "x" * 43}, (400, "missing_fields")),
    ({"format": "android-key", "challenge": "x" * 43, "certificate_chain": "abc"}, (400, "invalid_field")),
    ({"format": "android-key", "challenge": "x" * 43, "certificate_chain": ["not base64!"]}, (400, "invalid_evidence_encoding")),
    ({"format": "apple-appattest", "challenge": "x" * 43, "key_id": "AAAA"}, (400, "missing_fields")),
    ({"format": "tpm", "challenge": "x" * 43}, (400, "unsupported_format")),
    ({"format": "android-key", "certificate_chain": ["AAAA"]}, (400, "missing_fields")),
])
def test_undecodable_requests_are_400(settings, device, document, expected):
    status, body = attest(device, document)
    assert (status, body["message"]) == expected


def test_android_key_needs_its_settings(settings, pki, device):
    settings({"ANDROID_ATTESTATION_PACKAGES": ""})
    status, body = attest(device, android_body(pki, device.challenge()))
    assert (status, body["message"]) == (500, "configuration_error") and "ANDROID_ATTESTATION_PACKAGES" in body["detail"]


def test_without_a_fresh_status_list_android_attestation_fails_closed(settings, pki, device, status):
    status.behaviour = "down"
    code, body = attest(device, android_body(pki, device.challenge()))
    assert (code, body["message"]) == (503, "revocation_status_unavailable")
    assert stored(device)["public_key"] is None


def test_a_chain_with_a_revoked_serial_is_refused(settings, pki, device, status):
    challenge = device.challenge()
    chain = sim.android_chain(pki.authority, pki.key, raw(challenge), package=PACKAGE, signature_digest=SIGNER)
    status.suspend(format(x509.load_der_x509_certificate(chain[2]).serial_number, "x"))
    code, body = attest(device, android_body(pki, challenge, chain))
    assert (code, body["failed_checks"]) == (401, ["revoked"])


def test_the_sweep_revokes_devices_whose_stored_chain_is_now_listed(settings, pki, emulators, status, caplog):
    actors = [DeviceActor(), DeviceActor()]
    chains = []
    for actor in actors:
        actor.register()
        challenge = actor.challenge()
        chains.append(sim.android_chain(pki.authority, pki.key, raw(challenge), package=PACKAGE, signature_digest=SIGNER))
        assert attest(actor, android_body(pki, challenge, chains[-1]))[0] == 200
    revoked_serial = format(x509.load_der_x509_certificate(chains[0][1]).serial_number, "x")
    status.revoke(revoked_serial)
    with caplog.at_level(logging.INFO, logger="trustgate.security"):
        report = sweep.refresh_and_recheck()
    assert actors[0].deviceid in report.revoked and actors[1].deviceid not in report.revoked
    assert stored(actors[0])["trust_level"] == "revoked" and stored(actors[0])["revoked"]["serials"] == [revoked_serial]
    assert stored(actors[1])["trust_level"] == "hardware"
    assert any("attestation_revoked" in r.getMessage() and actors[0].deviceid in r.getMessage() for r in caplog.records)
    actors[0].key = pki.key
    status_code, body = actors[0].upload(b"after revocation")
    assert (status_code, body["message"]) == (403, "attestation_required")
    headers, document = json_body({"token": "a.b.c.d.e"})
    code, answer = call("verify_integrity", "POST", "verify", headers={**actors[0].headers, **headers}, body=document)
    assert (code, answer["message"]) == (403, "attestation_required")
    assert sweep.refresh_and_recheck().revoked == []  # idempotent
    revocations = [e for e in device_entries(actors[0]) if e["event"] == "device_trust_revoked"]
    assert [(e["actor"], e["outcome"], e["objects"]["serials"]) for e in revocations] == [("operator", "refused", revoked_serial)]


def test_the_sweep_changes_nothing_without_a_list(settings, status):
    status.behaviour = "down"
    with pytest.raises(status_list.StatusListUnavailable):
        sweep.refresh_and_recheck()


def test_the_timer_runs_the_sweep_and_fails_the_run_without_a_list(settings, pki, device, status, caplog):
    from azure.functions.timer import TimerRequest

    from tests.support.devices import HANDLERS

    assert attest(device, android_body(pki, device.challenge()))[0] == 200
    status.revoke(stored(device)["attestation"]["serials"][1])
    with caplog.at_level(logging.INFO, logger="trustgate.devices"):
        HANDLERS["refresh_attestation_status"](timer=TimerRequest(past_due=False))
    assert stored(device)["trust_level"] == "revoked" and "revoked=1" in caplog.text
    status.behaviour = "down"
    with pytest.raises(status_list.StatusListUnavailable):
        HANDLERS["refresh_attestation_status"](timer=TimerRequest(past_due=False))


# --- MIN_DEVICE_TRUST -----------------------------------------------------------------------------

def test_min_device_trust_refuses_software_keys_on_upload_and_verify(settings, pki, device):
    settings({"MIN_DEVICE_TRUST": "hardware"})
    software = DeviceActor()
    software.register()
    assert software.attest()[0] == 200
    status, body = software.upload(b"from a laptop")
    assert (status, body["message"]) == (403, "attestation_required")
    headers, document = json_body({"token": "a.b.c.d.e"})
    code, answer = call("verify_integrity", "POST", "verify", headers={**software.headers, **headers}, body=document)
    assert (code, answer["message"]) == (403, "attestation_required")
    assert attest(device, android_body(pki, device.challenge()))[1]["trust_level"] == "hardware"
    device.key = pki.key
    assert device.upload(b"from a phone")[0] == 200
    settings({"MIN_DEVICE_TRUST": "strongbox"})
    assert device.upload(b"from a phone without StrongBox")[1]["message"] == "attestation_required"


# --- Apple ----------------------------------------------------------------------------------------

@pytest.fixture
def apple_device(settings, pki, device):
    key = ec.generate_private_key(ec.SECP256R1())
    status, body = attest(device, apple_body(pki, key, device.challenge()))
    assert (status, body["trust_level"], body["attestation"]["app_id"]) == (200, "hardware", APP_ID), body
    return device, key


def test_app_attest_devices_upload_with_assertions_and_replays_are_refused(apple_device):
    device, key = apple_device
    assert stored(device)["assertion_counter"] == 0
    challenge = device.challenge()
    assert upload(device, b"one", assertion(key, challenge, b"one", 1), challenge)[0] == 200
    assert stored(device)["assertion_counter"] == 1
    challenge = device.challenge()
    status, body = upload(device, b"two", assertion(key, challenge, b"two", 1), challenge)
    assert (status, body["message"]) == (401, "assertion_replayed")
    status, body = upload(device, b"two", assertion(key, challenge, b"other bytes", 2), challenge)
    assert (status, body["message"]) == (401, "invalid_signature")
    assert upload(device, b"two", assertion(key, challenge, b"two", 7), challenge)[0] == 200  # challenge was left usable
    assert stored(device)["assertion_counter"] == 7


def test_re_attesting_an_app_attest_key_never_resets_its_counter(apple_device, pki):
    device, key = apple_device
    challenge = device.challenge()
    assert upload(device, b"one", assertion(key, challenge, b"one", 4), challenge)[0] == 200
    assert attest(device, apple_body(pki, key, device.challenge()))[0] == 200
    assert stored(device)["assertion_counter"] == 4
    challenge = device.challenge()
    assert upload(device, b"old", assertion(key, challenge, b"old", 2), challenge)[1]["message"] == "assertion_replayed"


def test_two_racing_assertions_with_one_counter_one_wins(apple_device):
    device, key = apple_device
    challenges = [device.challenge(), device.challenge()]
    results: list[tuple[int, dict]] = []
    barrier = threading.Barrier(2)

    def send(challenge: str) -> None:
        proof = assertion(key, challenge, b"race", 5)
        barrier.wait()
        results.append(upload(device, b"race", proof, challenge))

    threads = [threading.Thread(target=send, args=(c,)) for c in challenges]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(status for status, _ in results) == [200, 401]
    assert [body["message"] for status, body in results if status == 401] == ["assertion_replayed"]
    assert stored(device)["assertion_counter"] == 5


def test_an_app_attest_object_for_another_app_is_refused(settings, pki, device):
    challenge = device.challenge()
    key_id, document = sim.apple_attestation(pki.authority, ec.generate_private_key(ec.SECP256R1()), raw(challenge),
                                             "TEAMID1234.com.evil.clone")
    status, body = attest(device, {"format": "apple-appattest", "challenge": challenge,
                                   "key_id": base64.b64encode(key_id).decode(),
                                   "attestation_object": base64.b64encode(document).decode()})
    assert (status, body["failed_checks"]) == (401, ["app_id_mismatch"])
    settings({"APP_ATTEST_ENVIRONMENT": "production"})
    status, body = attest(device, apple_body(pki, ec.generate_private_key(ec.SECP256R1()), challenge))
    assert (status, body["failed_checks"]) == (401, ["environment"])


def test_an_expired_challenge_is_refused_after_verification(settings, pki, device, monkeypatch):
    challenge = device.challenge()
    import shared_code.devices.challenges as challenges_module

    monkeypatch.setattr(challenges_module, "utc_now", lambda: utc_now() + timedelta(hours=1))
    status, body = attest(device, android_body(pki, challenge))
    assert (status, body["message"]) == (401, "invalid_challenge")


# --- audit log ------------------------------------------------------------------------------------

def device_entries(actor: DeviceActor) -> list[dict]:
    from shared_code.audit import proofs, sequencer

    page = proofs.subject_entries(f"device:{actor.deviceid}", 100, None, sequencer.synced_state().size)
    return [json.loads(entry) for _, entry in page.entries]


def test_attestation_decisions_are_in_the_audit_log_with_an_evidence_digest(settings, pki, device):
    challenge = device.challenge()
    body = android_body(pki, challenge, locked=False)
    assert attest(device, body)[0] == 401
    good = android_body(pki, challenge)
    assert attest(device, good)[0] == 200
    refused, granted = [e for e in device_entries(device) if e["event"] == "device_attested"]
    assert (refused["outcome"], refused["failed_checks"], refused["objects"]["format"]) == ("refused", ["root_of_trust"], "android-key")
    assert (granted["outcome"], granted["objects"]["trust_level"]) == ("granted", "hardware")
    chain = b"".join(base64.b64decode(c) for c in good["certificate_chain"])
    assert granted["evidence"]["sha256"] == hashlib.sha256(chain).hexdigest()
    assert granted["evidence"]["verifier"] == "trustgate-attestation/1" and granted["evidence"]["policy"] == refused["evidence"]["policy"]


def test_a_failing_log_write_binds_nothing(settings, pki, device, monkeypatch):
    from shared_code.audit import trail
    from shared_code.platform.errors import ServiceUnavailable

    def down(*args, **kwargs):
        raise ServiceUnavailable(detail="the audit log is unavailable")

    monkeypatch.setattr(trail, "record", down)
    status, body = attest(device, android_body(pki, device.challenge()))
    assert (status, stored(device)["public_key"]) == (503, None)
