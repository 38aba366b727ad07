"""Key wrapping for the KMS: file private keys are stored only encrypted under a KEK.

The key-encryption key (KEK) is ``KMS_MASTER_KEY``: base64 of 32 random bytes (an app setting
that is a Key Vault reference in Azure, so the value lives in Key Vault and the platform
resolves it). Wrapping is AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit nonce per
wrap (§8.2.2) and the file's key id as associated data, so a wrapped key moved to another
file's record fails to unwrap. A wrapped key is stored as::

    {"alg": "A256GCM", "kid": <KEK id>, "nonce": <base64, 12 bytes>, "ciphertext": <base64>}

``kid`` identifies the KEK (first 16 hex chars of SHA-256 over a label and the KEK: it reveals
nothing about a 256-bit key) so the KEK can be rotated later: a keyring maps kids to KEKs and
records are re-wrapped. Today exactly one KEK is configured; a record under another kid, or a
tag that does not verify (wrong master key, tampered record), raises :class:`KeyUnwrapFailed`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.crypto import b64encode_text
from shared_code.platform.errors import AppError

ALGORITHM = "A256GCM"
KEK_BYTES = 32
NONCE_BYTES = 12
SETTING = "KMS_MASTER_KEY"
_KID_LABEL = b"trustgate-kms-kek-id:"


class KeyUnwrapFailed(AppError):
    """The KMS cannot unwrap a stored file key: the master key is wrong or was rotated, or the
    record was altered. 500 ``kms_unwrap_failed``; never carries key material."""

    status, default_message = 500, "kms_unwrap_failed"


@dataclass(frozen=True)
class Kek:
    """The configured key-encryption key and its id. ``key`` is secret: never log it."""

    kid: str
    key: bytes

    def __repr__(self) -> str:
        return f"Kek(kid={self.kid!r})"


def current_kek() -> Kek:
    """The KEK from ``KMS_MASTER_KEY``.

    Raises :class:`ConfigError` naming ``KMS_MASTER_KEY`` when it is missing, is an unresolved
    Key Vault reference, is not base64, or does not decode to exactly 32 bytes.
    """
    settings = get_settings()
    raw = settings.kms_master_key
    if SETTING in settings.unresolved_references:
        raise ConfigError(SETTING, "the Key Vault reference was not resolved (check the app identity's access to the secret)")
    if not raw:
        raise ConfigError(SETTING, "is required by the KMS but not set")
    try:
        key = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(SETTING, "must be base64") from None
    if len(key) != KEK_BYTES:
        raise ConfigError(SETTING, f"must decode to exactly {KEK_BYTES} bytes (AES-256)")
    return Kek(hashlib.sha256(_KID_LABEL + key).hexdigest()[:16], key)


def wrap(plaintext: bytes, key_id: str, kek: Kek | None = None) -> dict[str, str]:
    """AES-256-GCM-encrypt ``plaintext`` (a PKCS#8 PEM private key) under the KEK, bound to
    ``key_id`` as associated data. Returns the stored form given in the module docstring.

    Raises :class:`ConfigError` when the master key is not usable.
    """
    kek = kek or current_kek()
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(kek.key).encrypt(nonce, plaintext, key_id.encode("utf-8"))
    return {"alg": ALGORITHM, "kid": kek.kid,
            "nonce": b64encode_text(nonce), "ciphertext": b64encode_text(ciphertext)}


def unwrap(wrapped: dict[str, str], key_id: str, kek: Kek | None = None) -> bytes:
    """The plaintext that :func:`wrap` sealed for ``key_id``.

    Raises :class:`ConfigError` when the master key is not usable and :class:`KeyUnwrapFailed`
    when the record was wrapped under another KEK, for another key id, or was altered.
    """
    kek = kek or current_kek()
    if wrapped.get("alg") != ALGORITHM or wrapped.get("kid") != kek.kid:
        raise KeyUnwrapFailed(detail=f"the file key was wrapped under another KMS master key than {SETTING} "
                                     "(wrong or rotated master key)")
    try:
        nonce = base64.b64decode(wrapped["nonce"], validate=True)
        ciphertext = base64.b64decode(wrapped["ciphertext"], validate=True)
        return AESGCM(kek.key).decrypt(nonce, ciphertext, key_id.encode("utf-8"))
    except (InvalidTag, KeyError, ValueError, binascii.Error):
        raise KeyUnwrapFailed(detail=f"the KMS could not unwrap the file key with {SETTING} "
                                     "(wrong master key or altered record)") from None
