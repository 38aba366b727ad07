"""Cryptographic building blocks, all on top of pyca/cryptography and the ``secrets`` CSPRNG.

- random tokens and challenges (base64url, RFC 4648 §5, no padding);
- keyed hashes (HMAC-SHA256, RFC 2104) for storing bearer secrets such as device tokens;
- device public keys: parsing and the signature schemes a device may attest with;
- streaming SHA-256 of file contents.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import secrets
from dataclasses import dataclass
from typing import BinaryIO

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

CHUNK_BYTES = 1024 * 1024
MIN_RSA_BITS = 2048


class UnusableKey(ValueError):
    """The public key cannot be parsed or is of a type/size the service does not accept."""


def random_token(num_bytes: int = 32) -> str:
    """``num_bytes`` random bytes from the OS CSPRNG as unpadded base64url text."""
    return secrets.token_urlsafe(num_bytes)


def sha256_hex(value: str) -> str:
    """SHA-256 (FIPS 180-4) of the UTF-8 ``value`` as lowercase hex (64 chars).

    For storing high-entropy bearer secrets (session ids, API tokens of >= 128 random bits):
    a fast unkeyed hash is enough there, as the input cannot be guessed (NIST SP 800-63B §5.1.1.2
    asks for slow salted hashing only for low-entropy memorised secrets).
    """
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def keyed_hash(key: bytes, value: str) -> str:
    """HMAC-SHA256 (RFC 2104) of the UTF-8 ``value`` under ``key``, as lowercase hex (64 chars)."""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(value.encode("utf-8"))
    return mac.finalize().hex()


def keyed_hash_matches(key: bytes, value: str, expected_hex: str) -> bool:
    """Whether HMAC-SHA256(key, value) equals ``expected_hex``, compared in constant time."""
    try:
        expected = bytes.fromhex(expected_hex)
    except ValueError:
        expected = b""
    mac = hmac.HMAC(key, hashes.SHA256())
    mac.update(value.encode("utf-8"))
    try:
        mac.verify(expected)
        return True
    except InvalidSignature:
        return False


def b64encode_text(data: bytes) -> str:
    """``data`` as standard base64 text with padding (RFC 4648 §4)."""
    return base64.b64encode(data).decode("ascii")


def b64url_encode(data: bytes) -> str:
    """``data`` as unpadded base64url text (RFC 4648 §5), for opaque tokens; :func:`b64decode_strict` reads it."""
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def b64decode_strict(text: str) -> bytes:
    """Decode standard or URL-safe base64 (RFC 4648 §4 and §5, padding optional, nothing else: no
    whitespace, no characters outside the alphabets); raises ``ValueError`` on bad input."""
    cleaned = text.replace("-", "+").replace("_", "/")
    cleaned += "=" * (-len(cleaned) % 4)
    try:
        return base64.b64decode(cleaned, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("not base64") from None


@dataclass(frozen=True)
class DevicePublicKey:
    """A parsed device key: the key object, a type label and its canonical SPKI PEM."""

    key: ec.EllipticCurvePublicKey | rsa.RSAPublicKey | ed25519.Ed25519PublicKey
    key_type: str  # "ec-p256" | "ec-p384" | "rsa-<bits>" | "ed25519"
    pem: str

    def verify(self, signature: bytes, message: bytes) -> bool:
        """Whether ``signature`` is valid over ``message`` for this key.

        Schemes: ECDSA with SHA-256 (P-256) or SHA-384 (P-384), DER-encoded signature
        (SEC 1 / RFC 3279); RSA with SHA-256 as PKCS#1 v1.5 (Android Keystore
        ``SHA256withRSA``) or PSS with MGF1-SHA-256 and any salt length (RFC 8017 §8);
        Ed25519 (RFC 8032).
        """
        try:
            if isinstance(self.key, ec.EllipticCurvePublicKey):
                digest = hashes.SHA384() if self.key.curve.name == "secp384r1" else hashes.SHA256()
                self.key.verify(signature, message, ec.ECDSA(digest))
            elif isinstance(self.key, rsa.RSAPublicKey):
                return _verify_rsa(self.key, signature, message)
            else:
                self.key.verify(signature, message)
            return True
        except (InvalidSignature, ValueError):
            return False

    def spki_sha256(self) -> str:
        """Lowercase hex SHA-256 of the key's DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): the
        key's fingerprint, as in RFC 7469 pins (there base64)."""
        der = self.key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return hashlib.sha256(der).hexdigest()


def _verify_rsa(key: rsa.RSAPublicKey, signature: bytes, message: bytes) -> bool:
    schemes = (
        padding.PKCS1v15(),
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
    )
    for scheme in schemes:
        try:
            key.verify(signature, message, scheme, hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def load_device_public_key(pem_text: str) -> DevicePublicKey:
    """Parse a PEM SubjectPublicKeyInfo (RFC 5280 §4.1.2.7) device key.

    Accepts EC P-256 / P-384, RSA of at least 2048 bits, and Ed25519. Raises
    :class:`UnusableKey` for anything else (garbage, private keys, other curves, short RSA).
    """
    try:
        key = serialization.load_pem_public_key(pem_text.encode("utf-8"))
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise UnusableKey("public_key is not a PEM SubjectPublicKeyInfo") from None
    if isinstance(key, ec.EllipticCurvePublicKey):
        curves = {"secp256r1": "ec-p256", "secp384r1": "ec-p384"}
        if key.curve.name not in curves:
            raise UnusableKey(f"EC curve {key.curve.name} is not accepted (use P-256 or P-384)")
        key_type = curves[key.curve.name]
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < MIN_RSA_BITS:
            raise UnusableKey(f"RSA keys must have at least {MIN_RSA_BITS} bits")
        key_type = f"rsa-{key.key_size}"
    elif isinstance(key, ed25519.Ed25519PublicKey):
        key_type = "ed25519"
    else:
        raise UnusableKey("key type is not accepted (use EC P-256/P-384, RSA >= 2048 or Ed25519)")
    canonical = key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    return DevicePublicKey(key, key_type, canonical.decode("ascii"))


def sha256_stream(stream: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> tuple[str, int]:
    """SHA-256 of everything ``stream`` yields from its current position, read in chunks.

    Returns ``(lowercase hex digest, number of bytes read)``.
    """
    digest = hashlib.sha256()
    size = 0
    while chunk := stream.read(chunk_bytes):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size
