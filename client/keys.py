"""Device keys: generation, PEM encoding and signing, all through ``cryptography``.

The server accepts four key families (see the API doc for ``POST /attest-device``):

- ``p256``: ECDSA over NIST P-256 with SHA-256 (FIPS 186-5), DER ``Ecdsa-Sig-Value``.
- ``p384``: ECDSA over NIST P-384 with SHA-384 (FIPS 186-5), DER ``Ecdsa-Sig-Value``.
- ``rsa2048`` / ``rsa3072`` (any RSA ≥ 2048 bits): RSASSA-PKCS1-v1_5 with SHA-256 (RFC 8017 §8.2).
- ``ed25519``: pure Ed25519 (RFC 8032 §5.1), 64 bytes.

:func:`sign` returns raw signature *bytes*; callers base64-encode them (standard alphabet,
padded) for the API. Private keys are stored as unencrypted PKCS#8 PEM in a 0600 file.
"""

from __future__ import annotations

import hashlib
from typing import Union

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

PrivateKey = Union[ec.EllipticCurvePrivateKey, rsa.RSAPrivateKey, ed25519.Ed25519PrivateKey]

#: Key types ``device init --key-type`` can generate; ``p256`` is the default.
KEY_TYPES = ("p256", "p384", "ed25519", "rsa2048", "rsa3072")
DEFAULT_KEY_TYPE = "p256"

MIN_RSA_BITS = 2048


class UnsupportedKeyError(ValueError):
    """The key is of a type or size the TrustGate server does not accept."""


def generate_private_key(key_type: str = DEFAULT_KEY_TYPE) -> PrivateKey:
    """Generate a new device private key of ``key_type`` (one of :data:`KEY_TYPES`).

    RSA keys use public exponent 65537. Raises :class:`UnsupportedKeyError` for an unknown type.
    """
    if key_type == "p256":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "p384":
        return ec.generate_private_key(ec.SECP384R1())
    if key_type == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    if key_type in ("rsa2048", "rsa3072"):
        return rsa.generate_private_key(public_exponent=65537, key_size=int(key_type[3:]))
    raise UnsupportedKeyError(f"unknown key type {key_type!r}; choose one of {', '.join(KEY_TYPES)}")


def key_type_of(private_key: object) -> str:
    """The key type name of ``private_key`` (``p256``, ``p384``, ``ed25519`` or ``rsa<bits>``).

    Raises :class:`UnsupportedKeyError` for keys the server would refuse (other curves, Ed448,
    DSA, RSA below 2048 bits).
    """
    if isinstance(private_key, ec.EllipticCurvePrivateKey):
        if isinstance(private_key.curve, ec.SECP256R1):
            return "p256"
        if isinstance(private_key.curve, ec.SECP384R1):
            return "p384"
        raise UnsupportedKeyError(f"EC curve {private_key.curve.name} is not supported; use P-256 or P-384")
    if isinstance(private_key, rsa.RSAPrivateKey):
        if private_key.key_size < MIN_RSA_BITS:
            raise UnsupportedKeyError(
                f"RSA key of {private_key.key_size} bits is too small; use at least {MIN_RSA_BITS}")
        return f"rsa{private_key.key_size}"
    if isinstance(private_key, ed25519.Ed25519PrivateKey):
        return "ed25519"
    raise UnsupportedKeyError(f"{type(private_key).__name__} keys are not supported")


def sign(private_key: PrivateKey, message: bytes) -> bytes:
    """Sign ``message`` (the exact bytes, not a digest) with the algorithm for the key's type.

    P-256 → ECDSA/SHA-256, P-384 → ECDSA/SHA-384 (both DER-encoded), RSA → PKCS#1 v1.5 with
    SHA-256, Ed25519 → pure Ed25519. Returns the raw signature bytes (not base64).
    Raises :class:`UnsupportedKeyError` for a key the server does not accept.
    """
    key_type = key_type_of(private_key)
    if key_type == "p256":
        return private_key.sign(message, ec.ECDSA(hashes.SHA256()))  # type: ignore[union-attr,call-arg]
    if key_type == "p384":
        return private_key.sign(message, ec.ECDSA(hashes.SHA384()))  # type: ignore[union-attr,call-arg]
    if key_type == "ed25519":
        return private_key.sign(message)  # type: ignore[call-arg]
    return private_key.sign(message, padding.PKCS1v15(), hashes.SHA256())  # type: ignore[call-arg]


def private_key_to_pem(private_key: PrivateKey) -> bytes:
    """``private_key`` as unencrypted PKCS#8 PEM bytes (``-----BEGIN PRIVATE KEY-----``)."""
    return private_key.private_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PrivateFormat.PKCS8,
        encryption_algorithm=serialization.NoEncryption(),
    )


def load_private_key_pem(data: bytes) -> PrivateKey:
    """Parse an unencrypted PEM private key (PKCS#8 or traditional) and check it is supported.

    Raises :class:`ValueError` for unparsable or encrypted PEM, :class:`UnsupportedKeyError`
    for a key type the server does not accept.
    """
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except TypeError:
        raise ValueError("the private key is encrypted; TrustGate device keys are stored unencrypted") from None
    key_type_of(key)
    return key  # type: ignore[return-value]


def public_key_pem(private_key: PrivateKey) -> str:
    """The public half of ``private_key`` as PEM SubjectPublicKeyInfo text (RFC 5280 §4.1.2.7)."""
    return private_key.public_key().public_bytes(
        encoding=serialization.Encoding.PEM,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    ).decode("ascii")


def spki_sha256(private_key: PrivateKey) -> str:
    """Lowercase hex SHA-256 of the public key's DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7)."""
    der = private_key.public_key().public_bytes(
        encoding=serialization.Encoding.DER,
        format=serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    return hashlib.sha256(der).hexdigest()


def public_key_fingerprint(private_key: PrivateKey) -> str:
    """``SHA256:`` + lowercase hex SHA-256 of the DER SubjectPublicKeyInfo: safe to print."""
    return "SHA256:" + spki_sha256(private_key)


def attest_message(challenge: str) -> bytes:
    """The bytes signed to attest a key: UTF-8 of ``attest:{challenge}``."""
    return f"attest:{challenge}".encode("utf-8")


def upload_message(challenge: str, sha256_hex: str) -> bytes:
    """The bytes signed for an upload: UTF-8 of ``upload:{challenge}:{sha256 hex, lowercase}``."""
    return f"upload:{challenge}:{sha256_hex.lower()}".encode("utf-8")


def direct_upload_message(challenge: str, sha256_hex: str, size: int, content_type: str) -> bytes:
    """What the device signs to ask for a direct upload: ``direct-upload:{challenge}:{sha256}:{size}:{content_type}``."""
    return f"direct-upload:{challenge}:{sha256_hex}:{size}:{content_type}".encode("utf-8")


def rotation_message(challenge: str, new_key: PrivateKey) -> bytes:
    """What the current and the new key sign to rotate: ``rotate:{challenge}:{SHA-256 hex of the new key's DER SPKI}``."""
    return f"rotate:{challenge}:{spki_sha256(new_key)}".encode("utf-8")


def token_rotation_message(challenge: str, new_token: str) -> bytes:
    """What the device key signs to rotate the token: ``rotate-token:{challenge}:{SHA-256 hex of the new token}``."""
    return f"rotate-token:{challenge}:{hashlib.sha256(new_token.encode('utf-8')).hexdigest()}".encode("utf-8")
