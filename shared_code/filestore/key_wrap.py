"""Key wrapping for the KMS: file private keys are stored only encrypted under a KEK, and the KEK
has versions so it can be rotated.

Wrapping is AES-256-GCM (NIST SP 800-38D) with a fresh random 96-bit nonce per wrap (§8.2.2) and
the file key's id as associated data, so a wrapped key moved to another record fails to unwrap.
A wrapped key is stored as::

    {"alg": "A256GCM", "kid": <KEK id>, "nonce": <base64, 12 bytes>, "ciphertext": <base64>}

The keyring (:func:`keyring`): the KEKs the app holds, by ``kid``, and the active one.

- ``KMS_MASTER_KEY``: one KEK, base64 of 32 random bytes (a Key Vault reference in Azure, generated
  at provisioning). Its ``kid`` is derived: the first 16 hex characters of SHA-256 over a label and
  the key (it reveals nothing about a 256-bit key). With nothing else configured it is the
  active KEK, as before KEK versions existed.
- ``KMS_MASTER_KEYS``: a JSON object of ``kid`` (1-64 of ``A-Z a-z 0-9 . _ -``) → base64 KEK, one
  Key Vault secret in Azure. ``KMS_MASTER_KEY``, when set and resolved, joins it under its derived
  kid, so records wrapped before the map existed stay readable until they are rewrapped.
- ``KMS_ACTIVE_KEK``: the kid new wraps use; required when more than one KEK is configured.

Rotation, the Vault/Key Vault way: add a new KEK to the map and make it active; every new wrap uses
it at once, and the rewrap timer (:mod:`shared_code.filestore.kek_rotation`) moves existing records
over in bounded batches. When ``GET /kms/status`` shows no key left under an old kid, remove it from
the map (for ``KMS_MASTER_KEY``: disable its Key Vault secret; an unresolved reference reads as
unset). A record under a kid the keyring lacks, or whose tag does not verify (wrong key under a
reused kid, tampered record), raises :class:`KeyUnwrapFailed`; neither error carries key material.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from typing import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.crypto import b64encode_text
from shared_code.platform.errors import AppError

ALGORITHM = "A256GCM"
KEK_BYTES = 32
NONCE_BYTES = 12
SETTING = "KMS_MASTER_KEY"
KEYS_SETTING = "KMS_MASTER_KEYS"
ACTIVE_SETTING = "KMS_ACTIVE_KEK"
KID_PATTERN = re.compile(r"[A-Za-z0-9._-]{1,64}")
_KID_LABEL = b"trustgate-kms-kek-id:"


class KeyUnwrapFailed(AppError):
    """The KMS cannot unwrap a stored file key: its KEK is not configured (retired too early,
    wrong map), or the KEK under that kid is another key, or the record was altered.
    500 ``kms_unwrap_failed``; never carries key material."""

    status, default_message = 500, "kms_unwrap_failed"


@dataclass(frozen=True)
class Kek:
    """One key-encryption key and its id. ``key`` is secret: never log it."""

    kid: str
    key: bytes

    def __repr__(self) -> str:
        return f"Kek(kid={self.kid!r})"


@dataclass(frozen=True)
class Keyring:
    """The configured KEKs by kid and the ``active`` one (which new wraps use)."""

    active: Kek
    keks: Mapping[str, Kek]

    def __repr__(self) -> str:
        return f"Keyring(active={self.active.kid!r}, kids={sorted(self.keks)!r})"

    @property
    def kids(self) -> list[str]:
        """Every configured kid, sorted."""
        return sorted(self.keks)

    @property
    def retired_kids(self) -> list[str]:
        """The configured kids other than the active one (readable, never used for new wraps)."""
        return [kid for kid in self.kids if kid != self.active.kid]


def derived_kid(key: bytes) -> str:
    """The kid of a KEK given without one (``KMS_MASTER_KEY``): 16 hex of SHA-256(label || key)."""
    return hashlib.sha256(_KID_LABEL + key).hexdigest()[:16]


def keyring() -> Keyring:
    """The keyring from ``KMS_MASTER_KEYS``, ``KMS_MASTER_KEY`` and ``KMS_ACTIVE_KEK``.

    Raises :class:`ConfigError` naming the setting (never a value) when no KEK is configured, a
    KEK is not base64 of exactly 32 bytes, the map is not a JSON object of valid kids, one key is
    listed under two kids (or ``KMS_MASTER_KEY``'s derived kid names another key), the map is an
    unresolved Key Vault reference while ``KMS_ACTIVE_KEK`` needs it, or ``KMS_ACTIVE_KEK`` is
    missing (with several KEKs) or names no configured KEK.
    """
    settings = get_settings()
    return _keyring(settings.kms_master_keys, settings.kms_master_key, settings.kms_active_kek,
                    settings.unresolved_references & {SETTING, KEYS_SETTING})


@functools.lru_cache(maxsize=4)
def _keyring(raw_map: str, raw_legacy: str, active: str, unresolved: frozenset[str]) -> Keyring:
    keks = {kid: Kek(kid, key) for kid, key in _parse_map(raw_map).items()}
    if raw_legacy:
        legacy = Kek(derived_kid(_decode_kek(SETTING, raw_legacy)), _decode_kek(SETTING, raw_legacy))
        if keks.setdefault(legacy.kid, legacy).key != legacy.key:
            raise ConfigError(KEYS_SETTING, f"kid {legacy.kid} (derived from {SETTING}) names another key")
    if len({kek.key for kek in keks.values()}) != len(keks):
        raise ConfigError(KEYS_SETTING, "lists one key under two kids")
    if not keks:
        if unresolved:
            raise ConfigError(min(unresolved), "the Key Vault reference was not resolved (check the app identity's access to the secret)")
        raise ConfigError(SETTING, f"is required by the KMS but not set (or set {KEYS_SETTING} and {ACTIVE_SETTING})")
    if not active:
        if len(keks) > 1:
            raise ConfigError(ACTIVE_SETTING, f"is required when {len(keks)} KEKs are configured")
        active = next(iter(keks))
    if active not in keks:
        why = f" ({KEYS_SETTING} is an unresolved Key Vault reference)" if KEYS_SETTING in unresolved else ""
        raise ConfigError(ACTIVE_SETTING, f"names no configured KEK{why}")
    return Keyring(keks[active], dict(sorted(keks.items())))


def _parse_map(raw: str) -> dict[str, bytes]:
    if not raw:
        return {}
    try:
        document = json.loads(raw)
    except ValueError:
        raise ConfigError(KEYS_SETTING, "must be a JSON object of kid -> base64 key") from None
    if not isinstance(document, dict) or not all(isinstance(v, str) for v in document.values()):
        raise ConfigError(KEYS_SETTING, "must be a JSON object of kid -> base64 key")
    if not all(KID_PATTERN.fullmatch(kid) for kid in document):
        raise ConfigError(KEYS_SETTING, "kids must be 1-64 of A-Z a-z 0-9 . _ -")
    return {kid: _decode_kek(KEYS_SETTING, value) for kid, value in document.items()}


def _decode_kek(setting: str, text: str) -> bytes:
    try:
        key = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError(setting, "must be base64") from None
    if len(key) != KEK_BYTES:
        raise ConfigError(setting, f"keys must decode to exactly {KEK_BYTES} bytes (AES-256)")
    return key


def current_kek() -> Kek:
    """The active KEK (:func:`keyring`); raises :class:`ConfigError` like it."""
    return keyring().active


def wrap(plaintext: bytes, key_id: str, kek: Kek | None = None) -> dict[str, str]:
    """AES-256-GCM-encrypt ``plaintext`` (a PKCS#8 PEM private key) under ``kek`` (default: the
    active KEK), bound to ``key_id`` as associated data. Returns the stored form given in the
    module docstring.

    Raises :class:`ConfigError` when the keyring is not usable.
    """
    kek = kek or current_kek()
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = AESGCM(kek.key).encrypt(nonce, plaintext, key_id.encode("utf-8"))
    return {"alg": ALGORITHM, "kid": kek.kid,
            "nonce": b64encode_text(nonce), "ciphertext": b64encode_text(ciphertext)}


def unwrap(wrapped: Mapping[str, str], key_id: str, ring: Keyring | None = None) -> bytes:
    """The plaintext that :func:`wrap` sealed for ``key_id``, under whichever configured KEK its
    ``kid`` names.

    Raises :class:`ConfigError` when the keyring is not usable and :class:`KeyUnwrapFailed` when
    the record's kid is not configured, or it was wrapped for another key id, or was altered.
    """
    ring = ring or keyring()
    kek = ring.keks.get(str(wrapped.get("kid"))) if wrapped.get("alg") == ALGORITHM else None
    if kek is None:
        raise KeyUnwrapFailed(detail=f"the file key was wrapped under a KEK that is not configured in {KEYS_SETTING} "
                                     f"or {SETTING} (retired too early, or wrong master key)")
    try:
        nonce = base64.b64decode(wrapped["nonce"], validate=True)
        ciphertext = base64.b64decode(wrapped["ciphertext"], validate=True)
        return AESGCM(kek.key).decrypt(nonce, ciphertext, key_id.encode("utf-8"))
    except (InvalidTag, KeyError, ValueError, binascii.Error):
        raise KeyUnwrapFailed(detail=f"the KMS could not unwrap the file key with its KEK ({SETTING} / {KEYS_SETTING}: "
                                     "another key under that kid, or an altered record)") from None


def needs_rewrap(wrapped: Mapping[str, str], ring: Keyring) -> bool:
    """Whether ``wrapped`` is under a configured KEK other than the active one."""
    return wrapped.get("kid") != ring.active.kid and wrapped.get("kid") in ring.keks


def rewrap(wrapped: Mapping[str, str], key_id: str, ring: Keyring | None = None) -> dict[str, str]:
    """``wrapped`` unwrapped with its own KEK and wrapped again under the active one (fresh nonce).

    Raises like :func:`unwrap`. The plaintext exists only in this call's memory.
    """
    ring = ring or keyring()
    return wrap(unwrap(wrapped, key_id, ring), key_id, ring.active)
