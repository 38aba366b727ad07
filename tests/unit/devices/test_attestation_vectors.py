"""Real device evidence (tests/fixtures/attestation, see its README) verifies at its own time.

Given each real Android chain, when it is verified at its key's creation time with a policy its
own app identity satisfies, then every check passes and the KeyDescription parses exactly as the
``.json`` beside it says (Google's verifier's expected parse). marlin's chains end at the AOSP
software root and never count as hardware; the tampered chain fails ``chain_signature``. Given
each Apple vector, its attestation and its assertion verify at their time.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from shared_code.devices.attestation import results as r
from shared_code.devices.attestation.apple import AppleExpectations, verify_assertion
from shared_code.devices.attestation.roots import spki_sha256, trust_store
from shared_code.devices.attestation.verifier import AndroidEvidence, AppleEvidence, VerifierConfig, verify_evidence
from tests.support.attestation import FIXTURES, android_vectors, apple_vectors, pem_chain

VECTORS = android_vectors()
HARDWARE = [v for v in VECTORS if not v.name.startswith("marlin/")]
SOFTWARE_ROOTED = [v for v in VECTORS if v.name.startswith("marlin/")]


def normalised(document):
    """Sets compare as sets; ``areTagsOrdered`` is Google's serialisation artefact, not the schema."""
    if isinstance(document, dict):
        return {k: normalised(v) for k, v in document.items() if k != "areTagsOrdered"}
    if isinstance(document, list):
        return sorted((normalised(item) for item in document), key=lambda item: json.dumps(item, sort_keys=True))
    return document


def verify_vector(vector, **policy):
    config = VerifierConfig(trust_store(""), android=vector.policy(**policy))
    return verify_evidence(AndroidEvidence(vector.chain), vector.challenge, config, vector.pinned_time)


def test_the_vectors_cover_factory_and_remote_provisioning_tee_and_strongbox():
    names = {v.name for v in VECTORS}
    assert len(VECTORS) == 15 and {"caiman/sdk36/SB_EC_RKP", "blueline/sdk28/TEE_EC_NONE",
                                   "sony-xperia10-iii/sdk33/TEE_EC", "marlin/sdk29/TEE_RSA_NONE"} <= names


@pytest.mark.parametrize("vector", HARDWARE, ids=lambda v: v.name)
def test_every_real_hardware_chain_verifies_at_its_pinned_time_with_the_expected_parse(vector):
    result = verify_vector(vector)
    assert result.failed_checks == (), result.detail
    assert normalised(result.parsed) == normalised(vector.expected)
    expected_level = "strongbox" if vector.expected["keyMintSecurityLevel"] == "STRONG_BOX" else "hardware"
    assert result.trust_level == expected_level
    assert result.claims["security_level"] == vector.expected["attestationSecurityLevel"]
    leaf_key = serialization.load_der_public_key(
        result.public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo))
    assert leaf_key.public_numbers() == result.public_key.public_numbers()
    assert result.claims["provisioning"] == ("remote" if vector.name.startswith(("akita", "caiman")) else "factory")


@pytest.mark.parametrize("vector", HARDWARE, ids=lambda v: v.name)
def test_real_chains_fail_closed_on_policy_they_do_not_meet(vector):
    result = verify_vector(vector, packages=frozenset({"com.other.app"}))
    assert result.failed_checks == (r.APP_IDENTITY,) and result.trust_level is None
    locked = vector.expected["hardwareEnforced"].get("rootOfTrust", {})
    strict = verify_vector(vector, allow_unlocked=False)
    expected = () if locked.get("deviceLocked") and locked.get("verifiedBootState") == "VERIFIED" else (r.ROOT_OF_TRUST,)
    assert strict.failed_checks == expected


@pytest.mark.parametrize("vector", SOFTWARE_ROOTED, ids=lambda v: v.name)
def test_a_chain_ending_at_the_aosp_software_root_never_counts_as_hardware(vector):
    result = verify_vector(vector)
    assert normalised(result.parsed) == normalised(vector.expected)
    assert r.UNTRUSTED_ROOT in result.failed_checks and result.trust_level is None
    assert "software attestation root" in result.reasons[r.UNTRUSTED_ROOT]
    root = pem_chain(FIXTURES / "android" / f"{vector.name}.pem")[-1]
    assert spki_sha256(x509.load_der_x509_certificate(root)) not in trust_store("").android_pins


def test_the_tampered_chain_fails_chain_signature():
    chain = pem_chain(FIXTURES / "android" / "invalid" / "tags_not_in_ascending_order.pem")
    at = x509.load_der_x509_certificate(chain[1]).not_valid_before_utc + timedelta(days=1)
    config = VerifierConfig(trust_store(""), android=VECTORS[0].policy(packages=frozenset({"com.example.attestationcollector"}),
                                                                      signature_digests=frozenset()))
    result = verify_evidence(AndroidEvidence(chain), b"challenge", config, at)
    assert r.CHAIN_SIGNATURE in result.failed_checks and result.trust_level is None
    assert "certificate 0" in result.reasons[r.CHAIN_SIGNATURE]


def test_a_ber_encoded_device_locked_still_parses_as_true():
    chain = pem_chain(FIXTURES / "android" / "invalid" / "malformed_rot_device_locked.pem")
    at = x509.load_der_x509_certificate(chain[1]).not_valid_before_utc + timedelta(days=1)
    result = verify_evidence(AndroidEvidence(chain), b"challenge", VerifierConfig(trust_store(""), android=VECTORS[0].policy()), at)
    assert result.parsed["hardwareEnforced"]["rootOfTrust"]["deviceLocked"] is True
    assert r.CHAIN_SIGNATURE not in result.failed_checks and r.EXTENSION_MALFORMED not in result.failed_checks


def test_a_chain_sent_without_its_root_is_completed_from_the_pinned_roots():
    vector = next(v for v in HARDWARE if v.name == "blueline/sdk28/TEE_EC_NONE")
    config = VerifierConfig(trust_store(""), android=vector.policy())
    result = verify_evidence(AndroidEvidence(vector.chain[:-1]), vector.challenge, config, vector.pinned_time)
    assert result.failed_checks == () and len(result.serials) == len(vector.chain)


def test_remote_provisioned_intermediates_expire_but_factory_ones_do_not():
    rkp = next(v for v in HARDWARE if v.name == "caiman/sdk36/TEE_EC_RKP")
    later = VerifierConfig(trust_store(""), android=rkp.policy())
    result = verify_evidence(AndroidEvidence(rkp.chain), rkp.challenge, later, datetime(2030, 1, 1, tzinfo=rkp.pinned_time.tzinfo))
    assert result.failed_checks == (r.CERTIFICATE_EXPIRED,)
    factory = next(v for v in HARDWARE if v.name == "sony-xperia10-iii/sdk33/TEE_EC")
    config = VerifierConfig(trust_store(""), android=factory.policy())
    assert verify_evidence(AndroidEvidence(factory.chain), factory.challenge, config,
                           datetime(2030, 1, 1, tzinfo=factory.pinned_time.tzinfo)).failed_checks == ()


@pytest.mark.parametrize("vector", apple_vectors(), ids=lambda v: v["name"])
def test_every_apple_vector_attestation_and_assertion_verify_at_their_time(vector):
    attestation, assertion = vector["attestation"], vector["assertion"]
    app_id = f"{attestation['teamIdentifier']}.{attestation['bundleIdentifier']}"
    at = datetime.fromisoformat(attestation["timestamp"].replace("Z", "+00:00"))
    config = VerifierConfig(trust_store(""), apple=AppleExpectations(frozenset({app_id}), attestation["environment"]))
    evidence = AppleEvidence(base64.b64decode(attestation["keyIdBase64"]), base64.b64decode(attestation["attestationBase64"]))
    result = verify_evidence(evidence, base64.b64decode(attestation["clientDataBase64"]), config, at)
    assert result.failed_checks == (), result.detail
    assert (result.trust_level, result.claims["app_id"], result.claims["environment"]) == ("hardware", app_id, "development")
    expected_key = serialization.load_pem_public_key(attestation["publicKey"].encode())
    assert result.public_key.public_numbers() == expected_key.public_numbers()
    counter = verify_assertion(base64.b64decode(assertion["assertionBase64"]), base64.b64decode(assertion["clientDataBase64"]),
                               result.public_key, frozenset({app_id}), stored_counter=0)
    assert counter == assertion["counter"]
    production = VerifierConfig(trust_store(""), apple=AppleExpectations(frozenset({app_id}), "production"))
    assert verify_evidence(evidence, base64.b64decode(attestation["clientDataBase64"]), production, at).failed_checks == (r.ENVIRONMENT,)


def test_the_pinned_roots_are_the_published_ones():
    published = [x509.load_pem_x509_certificate(pem.encode()) for pem in json.loads((FIXTURES / "android" / "roots.json").read_text())]
    store = trust_store("")
    assert {spki_sha256(c) for c in published} == {spki_sha256(c) for c in store.android_roots} == store.android_pins
    apple = x509.load_pem_x509_certificate((FIXTURES / "apple" / "Apple_App_Attestation_Root_CA.pem").read_bytes())
    assert store.apple_roots[0] == apple
