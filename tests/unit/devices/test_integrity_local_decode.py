"""Local decoding: JWE (A256KW + A256GCM) around JWS (ES256) with the app's own keys, nothing else."""

from __future__ import annotations

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc.jwk import RSAKey

from shared_code.devices.integrity.decode import InvalidIntegrityToken, decode_token
from shared_code.platform.config import ConfigError
from tests.support.play_integrity import LocalKeys, configure, payload, policy_settings  # noqa: F401


@pytest.fixture
def keys(configure) -> LocalKeys:
    keys = LocalKeys()
    # No store is touched here; an endpoint is set only so the settings parse without emulators.
    configure({"COSMOS_ENDPOINT": os.environ.get("COSMOS_ENDPOINT") or "http://127.0.0.1:9/",
               **policy_settings(), **keys.settings()})
    return keys


def _flip(segment: str) -> str:
    return ("B" if segment[0] != "B" else "C") + segment[1:]


def test_a_sealed_token_decodes_to_its_payload(keys):
    document = payload(nonce="abc")
    assert decode_token(keys.seal(document)) == document


@pytest.mark.parametrize("part", [0, 1, 2, 3, 4])
def test_a_tampered_jwe_is_refused(keys, part):
    segments = keys.seal(payload()).split(".")
    segments[part] = _flip(segments[part]) if segments[part] else "AAAA"
    with pytest.raises(InvalidIntegrityToken):
        decode_token(".".join(segments))


def test_a_tampered_jws_inside_a_valid_jwe_is_refused(keys, monkeypatch):
    from joserfc import jwe, jws
    from joserfc.jwk import ECKey, OctKey

    inner = jws.serialize_compact({"alg": "ES256"}, '{"requestDetails": {}}', ECKey.import_key(keys.signer))
    header, body, signature = inner.split(".")
    forged_body = base64.urlsafe_b64encode(b'{"requestDetails": {"x": 1}}').decode().rstrip("=")
    token = jwe.encrypt_compact({"alg": "A256KW", "enc": "A256GCM"}, f"{header}.{forged_body}.{signature}",
                                OctKey.import_key(keys.aes))
    with pytest.raises(InvalidIntegrityToken):
        decode_token(token)


def test_tokens_sealed_with_other_keys_are_refused(keys):
    with pytest.raises(InvalidIntegrityToken):
        decode_token(keys.seal(payload(), aes=os.urandom(32)))
    with pytest.raises(InvalidIntegrityToken):
        decode_token(keys.seal(payload(), signer=ec.generate_private_key(ec.SECP256R1())))


@pytest.mark.parametrize("jws_alg, signer", [
    ("ES384", lambda: ec.generate_private_key(ec.SECP384R1())),
    ("RS256", lambda: RSAKey.import_key(rsa.generate_private_key(public_exponent=65537, key_size=2048))),
])
def test_other_signature_algorithms_and_key_types_are_refused(keys, jws_alg, signer):
    with pytest.raises(InvalidIntegrityToken):
        decode_token(keys.seal(payload(), jws_alg=jws_alg, signer=signer()))


@pytest.mark.parametrize("jwe_alg, key_bytes", [("A128KW", 16), ("dir", 32)])
def test_other_key_wrapping_is_refused(keys, jwe_alg, key_bytes):
    with pytest.raises(InvalidIntegrityToken):
        decode_token(keys.seal(payload(), jwe_alg=jwe_alg, aes=keys.aes[:key_bytes]))


def _der(public_key) -> str:
    return base64.b64encode(public_key.public_bytes(serialization.Encoding.DER,
                                                    serialization.PublicFormat.SubjectPublicKeyInfo)).decode()


@pytest.mark.parametrize("setting, value", [
    ("PLAY_INTEGRITY_DECRYPTION_KEY", base64.b64encode(os.urandom(16)).decode()),   # AES-128, not AES-256
    ("PLAY_INTEGRITY_DECRYPTION_KEY", "not base64!"),
    ("PLAY_INTEGRITY_VERIFICATION_KEY", _der(rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key())),
    ("PLAY_INTEGRITY_VERIFICATION_KEY", _der(ec.generate_private_key(ec.SECP384R1()).public_key())),
    ("PLAY_INTEGRITY_VERIFICATION_KEY", base64.b64encode(os.urandom(32)).decode()),
    ("PLAY_INTEGRITY_VERIFICATION_KEY", ""),
])
def test_configured_keys_of_the_wrong_type_fail_closed_naming_the_setting(keys, configure, monkeypatch, setting, value):
    monkeypatch.delenv(setting, raising=False)
    configure({setting: value} if value else {})
    with pytest.raises(ConfigError) as error:
        decode_token(keys.seal(payload()))
    assert error.value.setting == setting
