"""Every named check fails alone on evidence broken in exactly one way (fake PKI, fixed clock).

Given evidence from the test authority that passes every check, when one thing is changed
(the challenge, the root, an extension on an intermediate, a revoked or suspended serial, the
clock past an RKP intermediate, the bootloader, the package or signer, the counter, the
environment, ...), then ``failed_checks`` names exactly the check that guards it.
"""

from __future__ import annotations

from datetime import timedelta

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from client import attestation_sim as sim
from shared_code.devices.attestation import results as r
from shared_code.devices.attestation.apple import AssertionRefused, verify_assertion
from shared_code.devices.attestation.verifier import AndroidEvidence, AppleEvidence, parse_digest, verify_evidence
from tests.support.attestation import APP_ID, CHALLENGE, NOW, SIGNER, FakePki, extend_chain_as_device, tampered_signature
from tests.support.play_integrity import configure  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def pki() -> FakePki:
    return FakePki()


def check(pki: FakePki, evidence, *, challenge: bytes = CHALLENGE, at=NOW, refused=frozenset(), **config):
    return verify_evidence(evidence, challenge, pki.config(**config), at, refused)


@pytest.mark.parametrize("provisioning", ["factory", "remote"])
@pytest.mark.parametrize("level, trust", [("tee", "hardware"), ("strongbox", "strongbox")])
def test_good_android_evidence_passes_every_check(pki, provisioning, level, trust):
    result = check(pki, pki.android(provisioning=provisioning, security_level=level))
    assert (result.failed_checks, result.trust_level) == ((), trust)
    assert result.claims["provisioning"] == provisioning and result.claims["root"] == "test"


def serial_of(chain: list[bytes], index: int) -> str:
    return format(x509.load_der_x509_certificate(chain[index]).serial_number, "x")


ANDROID_CASES = {
    "wrong challenge": (dict(), dict(challenge=b"another challenge"), r.CHALLENGE_MISMATCH),
    "attestation level below KeyMint": (dict(security_level="tee", keymint_level="strongbox"), {}, r.SECURITY_LEVEL),
    "software level": (dict(security_level="software"), {}, r.SECURITY_LEVEL),
    "imported key": (dict(origin=2), {}, r.KEY_ORIGIN),
    "verify-only key": (dict(purposes=(3,)), {}, r.KEY_PURPOSE),
    "unlocked bootloader": (dict(locked=False), {}, r.ROOT_OF_TRUST),
    "unverified boot": (dict(boot_state=2), {}, r.ROOT_OF_TRUST),
    "old patch level": (dict(os_patch_level=202301), dict(min_patch_level=202401), r.PATCH_LEVEL),
    "wrong package": (dict(package="com.evil.clone"), {}, r.APP_IDENTITY),
    "wrong signer": (dict(signature_digest=b"\x01" * 32), {}, r.APP_IDENTITY),
}


@pytest.mark.parametrize("build, verify, expected", ANDROID_CASES.values(), ids=ANDROID_CASES.keys())
def test_each_keydescription_check_fails_alone(pki, build, verify, expected):
    result = check(pki, pki.android(**build), **verify)
    assert result.failed_checks == (expected,), result.detail
    assert result.trust_level is None and result.reasons[expected]


def test_strongbox_claims_must_match_the_certificate(pki):
    chain = pki.android_chain(security_level="tee")  # TEE-titled certificates ...
    forged = pki.android_chain(security_level="strongbox")  # ... cannot carry a StrongBox leaf
    mixed = [forged[0], *chain[1:]]
    result = check(pki, AndroidEvidence(tuple(mixed)))
    assert r.SECURITY_LEVEL in result.failed_checks and r.CHAIN_SIGNATURE in result.failed_checks


def test_an_unlocked_device_passes_when_allowed(pki):
    assert check(pki, pki.android(locked=False, boot_state=2), allow_unlocked=True).failed_checks == ()


def test_a_chain_under_another_authority_fails_untrusted_root_alone(pki):
    stranger = FakePki(key=pki.key)
    assert check(pki, stranger.android()).failed_checks == (r.UNTRUSTED_ROOT,)


def test_a_tampered_certificate_fails_chain_signature_alone(pki):
    chain = pki.android_chain()
    for index in (0, 1, 2):
        broken = list(chain)
        broken[index] = tampered_signature(chain[index])
        assert check(pki, AndroidEvidence(tuple(broken))).failed_checks == (r.CHAIN_SIGNATURE,), index


def test_a_chain_extended_with_a_forged_attestation_certificate_fails_extension_misplaced(pki):
    extended = extend_chain_as_device(pki.android_chain(), pki.key)
    result = check(pki, AndroidEvidence(tuple(extended)))
    assert result.failed_checks == (r.EXTENSION_MISPLACED,), result.detail


@pytest.mark.parametrize("status_index", [0, 1, 2, -1])
def test_a_revoked_or_suspended_serial_anywhere_in_the_chain_fails_revoked_alone(pki, status_index):
    chain = pki.android_chain(provisioning="remote")
    result = check(pki, AndroidEvidence(tuple(chain)), refused=frozenset({serial_of(chain, status_index), "ffee"}))
    assert result.failed_checks == (r.REVOKED,)


def test_an_expired_rkp_intermediate_fails_but_an_expired_factory_one_does_not(pki):
    later = NOW + timedelta(days=90)  # Droid CA3 lives 60 days, the attestation certificate 30
    assert check(pki, pki.android(provisioning="remote"), at=later).failed_checks == (r.CERTIFICATE_EXPIRED,)
    assert check(pki, pki.android(provisioning="factory"), at=NOW + timedelta(days=3700)).failed_checks == ()
    assert check(pki, pki.android(provisioning="factory"), at=NOW - timedelta(days=3)).failed_checks == (r.CERTIFICATE_EXPIRED,)


@pytest.mark.parametrize("chain_length", [1, 2, 7])
def test_chains_of_the_wrong_length_or_garbage_fail_chain_malformed(pki, chain_length):
    chain = (pki.android_chain(provisioning="remote") * 2)[:chain_length]
    assert check(pki, AndroidEvidence(tuple(chain))).failed_checks == (r.CHAIN_MALFORMED,)
    assert check(pki, AndroidEvidence((b"not a certificate", *pki.android_chain()[1:]))).failed_checks == (r.CHAIN_MALFORMED,)


def test_a_leaf_without_a_keydescription_fails_extension_malformed(pki):
    chain = pki.android_chain()
    attestation = x509.load_der_x509_certificate(chain[1])
    plain = sim.issue(sim._name(cn="Android Keystore Key"), pki.key.public_key(), attestation.subject, pki.key,
                      not_before=NOW, not_after=NOW + timedelta(days=1), ca=None)
    result = check(pki, AndroidEvidence((plain.public_bytes(sim.serialization.Encoding.DER), *chain[1:])))
    assert r.EXTENSION_MALFORMED in result.failed_checks and result.trust_level is None


def test_several_failures_are_all_reported(pki):
    result = check(pki, pki.android(locked=False, package="com.evil.clone", origin=2), challenge=b"other", refused=frozenset())
    assert result.failed_checks == (r.CHALLENGE_MISMATCH, r.KEY_ORIGIN, r.ROOT_OF_TRUST, r.APP_IDENTITY)
    assert all(name in result.detail for name in result.failed_checks)


# --- Apple App Attest ---------------------------------------------------------------------------

def test_good_apple_evidence_passes_every_check(pki):
    result = check(pki, pki.apple())
    assert (result.failed_checks, result.trust_level, result.claims["app_id"]) == ((), "hardware", APP_ID)


APPLE_CASES = {
    "wrong challenge": (dict(), dict(challenge=b"another challenge"), r.NONCE_MISMATCH),
    "wrong key id": (dict(key_id=b"\x00" * 32), {}, r.KEY_ID_MISMATCH),
    "another app": (dict(app_id="TEAMID1234.com.evil.clone"), {}, r.APP_ID_MISMATCH),
    "counter not zero": (dict(counter=1), {}, r.COUNTER),
    "wrong environment": (dict(environment="development"), dict(environment="production"), r.ENVIRONMENT),
    "production key in development": (dict(environment="production"), dict(environment="development"), r.ENVIRONMENT),
    "expired credential": (dict(), dict(at=NOW + timedelta(days=4)), r.CERTIFICATE_EXPIRED),
}


@pytest.mark.parametrize("build, verify, expected", APPLE_CASES.values(), ids=APPLE_CASES.keys())
def test_each_app_attest_check_fails_alone(pki, build, verify, expected):
    result = check(pki, pki.apple(**build), **verify)
    assert result.failed_checks == (expected,), result.detail


def test_app_attest_chains_must_reach_the_pinned_root(pki):
    stranger = FakePki(key=pki.key)
    assert check(pki, stranger.apple()).failed_checks == (r.UNTRUSTED_ROOT,)
    document = cbor2.loads(pki.apple().attestation_object)
    document["attStmt"]["x5c"][1] = tampered_signature(document["attStmt"]["x5c"][1])
    assert check(pki, AppleEvidence(pki.apple().key_id, cbor2.dumps(document))).failed_checks == (r.CHAIN_SIGNATURE,)
    stranger_root = stranger.authority.apple_root.public_bytes(sim.serialization.Encoding.DER)
    with_root = cbor2.loads(stranger.apple().attestation_object)
    with_root["attStmt"]["x5c"].append(stranger_root)  # a root shipped in x5c is never trusted
    assert r.UNTRUSTED_ROOT in check(pki, AppleEvidence(pki.apple().key_id, cbor2.dumps(with_root))).failed_checks


@pytest.mark.parametrize("blob", [b"garbage", cbor2.dumps({"fmt": "packed"}), cbor2.dumps([1, 2]),
                                  cbor2.dumps({"fmt": "apple-appattest", "attStmt": {"x5c": []}, "authData": b"x"})])
def test_malformed_attestation_objects_fail_attestation_malformed(pki, blob):
    assert check(pki, AppleEvidence(b"\x00" * 32, blob)).failed_checks == (r.ATTESTATION_MALFORMED,)


def test_assertions_check_signature_app_id_and_a_strictly_growing_counter(pki):
    key = pki.key.public_key()
    apps = frozenset({APP_ID})
    assert verify_assertion(sim.apple_assertion(pki.key, b"upload:x", APP_ID, 3), b"upload:x", key, apps, 2) == 3
    cases = [
        (sim.apple_assertion(pki.key, b"upload:x", APP_ID, 2), "counter"),
        (sim.apple_assertion(pki.key, b"upload:other", APP_ID, 9), "signature"),
        (sim.apple_assertion(ec.generate_private_key(ec.SECP256R1()), b"upload:x", APP_ID, 9), "signature"),
        (sim.apple_assertion(pki.key, b"upload:x", "TEAMID1234.com.evil.clone", 9), "app_id"),
        (b"\xa0", "malformed"),
    ]
    for assertion, reason in cases:
        with pytest.raises(AssertionRefused) as refused:
            verify_assertion(assertion, b"upload:x", key, apps, 2)
        assert refused.value.reason == reason


@pytest.mark.parametrize("text", [SIGNER.hex(), SIGNER.hex().upper(), ":".join(f"{b:02X}" for b in SIGNER),
                                  __import__("base64").b64encode(SIGNER).decode(),
                                  __import__("base64").urlsafe_b64encode(SIGNER).decode().rstrip("=")])
def test_signature_digests_are_accepted_as_hex_or_base64(text):
    assert parse_digest(text) == SIGNER


@pytest.mark.parametrize("text", ["abc", "zz" * 32, __import__("base64").b64encode(b"short").decode()])
def test_other_digest_text_is_refused(text):
    with pytest.raises(ValueError):
        parse_digest(text)


def test_bad_test_roots_and_missing_format_settings_name_the_setting(offline_settings, configure):
    from shared_code.devices.attestation.verifier import config_from_settings
    from shared_code.platform.config import ConfigError, get_settings

    configure({"ATTESTATION_TEST_ROOTS": "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n"})
    with pytest.raises(ConfigError) as bad:
        config_from_settings(get_settings(), "android-key")
    assert bad.value.setting == "ATTESTATION_TEST_ROOTS"
    configure({"ATTESTATION_TEST_ROOTS": "", "APP_ATTEST_APP_IDS": ""})
    with pytest.raises(ConfigError) as missing:
        config_from_settings(get_settings(), "apple-appattest")
    assert missing.value.setting == "APP_ATTEST_APP_IDS"
    configure({"ANDROID_ATTESTATION_PACKAGES": "com.example.app", "ANDROID_ATTESTATION_SIGNATURE_DIGESTS": "not-a-digest"})
    with pytest.raises(ConfigError) as digests:
        config_from_settings(get_settings(), "android-key")
    assert digests.value.setting == "ANDROID_ATTESTATION_SIGNATURE_DIGESTS"
