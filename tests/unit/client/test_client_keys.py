"""Device keys: each key type signs with the algorithm the server verifies with."""

from __future__ import annotations

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from client.keys import (
    KEY_TYPES,
    UnsupportedKeyError,
    attest_message,
    generate_private_key,
    key_type_of,
    load_private_key_pem,
    private_key_to_pem,
    public_key_pem,
    sign,
    upload_message,
)

MESSAGE = b"upload:c2FtcGxlLWNoYWxsZW5nZQ:" + b"ab" * 32


def verify_as_server(public_pem: str, signature: bytes, message: bytes) -> None:
    """Verify the way the API doc says the server does; raises InvalidSignature on mismatch."""
    public_key = serialization.load_pem_public_key(public_pem.encode())
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        digest = {"secp256r1": hashes.SHA256(), "secp384r1": hashes.SHA384()}[public_key.curve.name]
        public_key.verify(signature, message, ec.ECDSA(digest))
    elif isinstance(public_key, rsa.RSAPublicKey):
        public_key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    elif isinstance(public_key, ed25519.Ed25519PublicKey):
        public_key.verify(signature, message)
    else:
        raise AssertionError(f"unexpected key {public_key!r}")


@pytest.fixture(scope="module", params=KEY_TYPES)
def key(request: pytest.FixtureRequest):
    return request.param, generate_private_key(request.param)


def test_signature_verifies_with_the_public_key_for_every_key_type(key) -> None:
    key_type, private_key = key

    signature = sign(private_key, MESSAGE)

    assert key_type_of(private_key) == key_type
    verify_as_server(public_key_pem(private_key), signature, MESSAGE)


def test_signature_does_not_verify_for_another_message(key) -> None:
    _key_type, private_key = key

    signature = sign(private_key, MESSAGE)

    with pytest.raises(InvalidSignature):
        verify_as_server(public_key_pem(private_key), signature, MESSAGE + b"x")


def test_p384_signs_with_sha384_not_sha256() -> None:
    private_key = generate_private_key("p384")

    signature = sign(private_key, MESSAGE)

    private_key.public_key().verify(signature, MESSAGE, ec.ECDSA(hashes.SHA384()))
    with pytest.raises(InvalidSignature):
        private_key.public_key().verify(signature, MESSAGE, ec.ECDSA(hashes.SHA256()))


def test_generated_sizes_match_the_key_type() -> None:
    assert generate_private_key("rsa2048").key_size == 2048
    assert generate_private_key("rsa3072").key_size == 3072
    assert generate_private_key("p256").curve.name == "secp256r1"
    assert generate_private_key("p384").curve.name == "secp384r1"


def test_private_key_pem_is_pkcs8_and_round_trips(key) -> None:
    _key_type, private_key = key

    pem = private_key_to_pem(private_key)
    loaded = load_private_key_pem(pem)

    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    assert public_key_pem(loaded) == public_key_pem(private_key)


def test_public_key_pem_is_subject_public_key_info(key) -> None:
    _key_type, private_key = key

    pem = public_key_pem(private_key)

    assert pem.startswith("-----BEGIN PUBLIC KEY-----\n")
    assert "PRIVATE" not in pem


@pytest.mark.parametrize("make_key", [
    lambda: ec.generate_private_key(ec.SECP256K1()),
    lambda: rsa.generate_private_key(public_exponent=65537, key_size=1024),
])
def test_keys_the_server_refuses_are_rejected_before_signing(make_key) -> None:
    with pytest.raises(UnsupportedKeyError):
        sign(make_key(), MESSAGE)


def test_unknown_key_type_is_rejected() -> None:
    with pytest.raises(UnsupportedKeyError, match="p256"):
        generate_private_key("dsa1024")


def test_encrypted_pem_is_refused_with_a_clear_error() -> None:
    pem = generate_private_key("p256").private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"))

    with pytest.raises(ValueError, match="encrypted"):
        load_private_key_pem(pem)


def test_signed_messages_follow_the_api_formats() -> None:
    assert attest_message("abc_-") == b"attest:abc_-"
    assert upload_message("abc", "AB" * 32) == b"upload:abc:" + b"ab" * 32
