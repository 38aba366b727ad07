"""Play Integrity ``local`` mode: decrypt and verify a token with the app's own response keys.

The token is a compact JWE (RFC 7516; ``alg`` A256KW, ``enc`` A256GCM) under the Play Console's
AES-256 response decryption key, around a compact JWS (RFC 7515; ``alg`` ES256) verifiable with
the response verification key (EC P-256, DER SubjectPublicKeyInfo); handled with joserfc
(developer.android.com/google/play/integrity/classic, "Decrypt and verify the integrity verdict").
See :mod:`shared_code.devices.integrity.decode` for the failure mapping.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
from typing import Any

from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey

from shared_code.devices.integrity.decode import (
    JWE_ALGORITHMS,
    JWS_ALGORITHMS,
    InvalidIntegrityToken,
)
from shared_code.platform.config import ConfigError

log = logging.getLogger("trustgate.integrity")


@functools.lru_cache(maxsize=4)
def response_keys(decryption_b64: str, verification_b64: str) -> tuple[OctKey, ECKey]:
    """Parse the Play Console response keys; raises :class:`ConfigError` naming a bad one."""
    try:
        aes = base64.b64decode(decryption_b64, validate=True)
    except (binascii.Error, ValueError):
        raise ConfigError("PLAY_INTEGRITY_DECRYPTION_KEY", "must be base64") from None
    if len(aes) != 32:
        raise ConfigError("PLAY_INTEGRITY_DECRYPTION_KEY", "must be an AES-256 key (32 bytes)")
    try:
        verification = ECKey.import_key(base64.b64decode(verification_b64, validate=True))
    except (binascii.Error, ValueError, JoseError):
        raise ConfigError("PLAY_INTEGRITY_VERIFICATION_KEY", "must be a base64 DER EC public key") from None
    if verification.curve_name != "P-256" or verification.is_private:
        raise ConfigError("PLAY_INTEGRITY_VERIFICATION_KEY", "must be an EC P-256 public key (ES256)")
    return OctKey.import_key(aes), verification


def decode_locally(token: str, decryption_key: OctKey, verification_key: ECKey) -> dict[str, Any]:
    """Decrypt (JWE A256KW + A256GCM) then verify (JWS ES256) ``token``; returns the JSON payload.

    Only those algorithms are accepted: a token naming ``dir``, A128KW, RS256, ``none`` ... is
    refused before any key is used. Raises :class:`InvalidIntegrityToken`.
    """
    try:
        inner = jwe.decrypt_compact(token, decryption_key, algorithms=JWE_ALGORITHMS).plaintext
        if inner is None:
            raise InvalidIntegrityToken(detail="the token has no content")
        signed = jws.deserialize_compact(inner, verification_key, algorithms=JWS_ALGORITHMS)
        payload = json.loads(signed.payload)
    except JoseError as exc:
        log.info("integrity token refused: %s", exc.error)
        raise InvalidIntegrityToken(detail="the token does not decrypt and verify with the app's keys") from None
    except (UnicodeDecodeError, ValueError):
        raise InvalidIntegrityToken(detail="the token payload is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidIntegrityToken(detail="the token payload is not a JSON object")
    return payload
