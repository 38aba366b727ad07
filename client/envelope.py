"""Client-side envelope encryption of files for the encrypted store (pyca/cryptography only).

``seal``: a fresh random 256-bit data key (DEK) encrypts the file with AES-256-GCM
(NIST SP 800-38D) under a random 96-bit nonce, with the UTF-8 file name as associated data (so
a ciphertext served under another name fails to decrypt); the DEK is wrapped with RSA-OAEP
(RFC 8017 §7.1) with SHA-256 and MGF1-SHA-256 under the file's KMS public key.

``open_with_data_key``: decrypts with the DEK the KMS unwrapped (``POST /unwrap_key``: the private
key never leaves the KMS), verifying the GCM tag. ``open_sealed``: the seed's way, unwrapping the DEK
here with the exported KMS private key (``POST /get_private_key``). Any failure (wrong key, tampered
ciphertext, nonce or wrapped key) raises :class:`EnvelopeError` and yields no plaintext.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

DEK_BITS = 256
NONCE_BYTES = 12


class EnvelopeError(Exception):
    """The envelope cannot be sealed or opened (bad key, or the data or envelope was altered)."""


@dataclass(frozen=True)
class Sealed:
    """The three stored parts, raw bytes: GCM ciphertext with its 16-byte tag appended, the
    RSA-OAEP-wrapped DEK, and the GCM nonce (the API's ``encrypted_aes_initial_vector``)."""

    encrypted_data: bytes
    encrypted_aes_key: bytes
    encrypted_aes_initial_vector: bytes


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(algorithm=hashes.SHA256()), algorithm=hashes.SHA256(), label=None)


def seal(plaintext: bytes, file_name: str, public_key_pem: bytes) -> Sealed:
    """Encrypt ``plaintext`` for the holder of ``public_key_pem`` (PEM SubjectPublicKeyInfo, RSA).

    Raises :class:`EnvelopeError` when the key is not an RSA public key of at least 2048 bits.
    """
    try:
        public_key = serialization.load_pem_public_key(public_key_pem)
    except (ValueError, UnsupportedAlgorithm):
        raise EnvelopeError("the KMS public key is not a PEM public key") from None
    if not isinstance(public_key, rsa.RSAPublicKey) or public_key.key_size < 2048:
        raise EnvelopeError("the KMS public key is not an RSA key of at least 2048 bits")
    dek = AESGCM.generate_key(bit_length=DEK_BITS)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(dek).encrypt(nonce, plaintext, file_name.encode("utf-8"))
    return Sealed(ciphertext, public_key.encrypt(dek, _oaep()), nonce)


def open_sealed(sealed: Sealed, file_name: str, private_key_pem: bytes) -> bytes:
    """Decrypt ``sealed`` with the KMS private key (PEM PKCS#8) and verify its GCM tag.

    Raises :class:`EnvelopeError` when the key is unusable, the DEK does not unwrap, or the
    tag does not verify (wrong file name, altered ciphertext or nonce).
    """
    try:
        private_key = serialization.load_pem_private_key(private_key_pem, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise EnvelopeError("the KMS private key is not an unencrypted PEM private key") from None
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise EnvelopeError("the KMS private key is not an RSA key")
    try:
        dek = private_key.decrypt(sealed.encrypted_aes_key, _oaep())
    except ValueError:
        raise _failed() from None
    return open_with_data_key(sealed, file_name, dek)


def open_with_data_key(sealed: Sealed, file_name: str, data_key: bytes) -> bytes:
    """Decrypt ``sealed`` with its unwrapped AES ``data_key`` and verify its GCM tag.

    Raises :class:`EnvelopeError` when the key is not an AES key or the tag does not verify
    (wrong key, wrong file name, altered ciphertext or nonce).
    """
    try:
        return AESGCM(data_key).decrypt(sealed.encrypted_aes_initial_vector, sealed.encrypted_data, file_name.encode("utf-8"))
    except (ValueError, InvalidTag):
        raise _failed() from None


def _failed() -> EnvelopeError:
    return EnvelopeError("the file failed authentication: wrong key, or the data or its envelope was altered")
