"""Client-side envelope encryption: AES-256-GCM data, RSA-OAEP-SHA256 wrapped key, tamper detection."""

from __future__ import annotations

import os

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from client.envelope import EnvelopeError, Sealed, open_sealed, seal


@pytest.fixture(scope="module")
def keys() -> tuple[bytes, bytes]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    public = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return public, private


def test_round_trip_and_shapes(keys):
    public, private = keys
    plaintext = os.urandom(10_000)
    sealed = seal(plaintext, "data.bin", public)
    assert len(sealed.encrypted_aes_initial_vector) == 12
    assert len(sealed.encrypted_data) == len(plaintext) + 16 and plaintext not in sealed.encrypted_data
    assert len(sealed.encrypted_aes_key) == 256
    dek = serialization.load_pem_private_key(private, None).decrypt(
        sealed.encrypted_aes_key, padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert len(dek) == 32  # AES-256
    assert open_sealed(sealed, "data.bin", private) == plaintext


def test_every_seal_uses_a_fresh_key_and_nonce(keys):
    first, second = seal(b"same", "f", keys[0]), seal(b"same", "f", keys[0])
    assert first.encrypted_aes_initial_vector != second.encrypted_aes_initial_vector
    assert first.encrypted_data != second.encrypted_data


def _flip(data: bytes, index: int = 0) -> bytes:
    return data[:index] + bytes([data[index] ^ 1]) + data[index + 1:]


@pytest.mark.parametrize("part", ["encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector", "tag"])
def test_tampering_fails_authentication(keys, part):
    public, private = keys
    sealed = seal(b"attack at dawn", "f", public)
    if part == "tag":
        tampered = Sealed(_flip(sealed.encrypted_data, -1), sealed.encrypted_aes_key, sealed.encrypted_aes_initial_vector)
    else:
        tampered = Sealed(**{**sealed.__dict__, part: _flip(getattr(sealed, part))})
    with pytest.raises(EnvelopeError):
        open_sealed(tampered, "f", private)


def test_a_ciphertext_served_under_another_name_fails(keys):
    sealed = seal(b"x", "invoice.pdf", keys[0])
    with pytest.raises(EnvelopeError):
        open_sealed(sealed, "other.pdf", keys[1])


def test_wrong_or_unusable_keys_are_refused(keys):
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    sealed = seal(b"x", "f", keys[0])
    with pytest.raises(EnvelopeError):
        open_sealed(sealed, "f", other)
    with pytest.raises(EnvelopeError):
        open_sealed(sealed, "f", b"not a key")
    ec_public = ec.generate_private_key(ec.SECP256R1()).public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    for bad in (ec_public, b"garbage"):
        with pytest.raises(EnvelopeError):
            seal(b"x", "f", bad)
