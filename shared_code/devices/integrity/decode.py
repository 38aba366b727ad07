"""Decoding Play Integrity tokens into verdict payloads, two ways (setting ``PLAY_INTEGRITY_MODE``).

Google's server-side guidance (developer.android.com/google/play/integrity/classic and
/standard, "Decrypt and verify the integrity verdict"):

- ``google``: ``POST {PLAY_INTEGRITY_API_BASE}/v1/{packageName}:decodeIntegrityToken`` with body
  ``{"integrity_token": token}`` and an OAuth 2.0 access token for scope
  ``https://www.googleapis.com/auth/playintegrity`` from a service account
  (``PLAY_INTEGRITY_CREDENTIALS``). The answer is ``{"tokenPayloadExternal": payload}``.
  The access token comes from the ``token_uri`` in the service-account JSON (google-auth signs
  the RFC 7523 JWT-bearer assertion with the account's RSA key).
- ``local``: the token is a compact JWE (RFC 7516; ``alg`` A256KW, ``enc`` A256GCM) under the
  app's AES-256 response decryption key, around a compact JWS (RFC 7515; ``alg`` ES256) signed
  with the key whose public half is the response verification key (EC P-256, DER
  SubjectPublicKeyInfo). Both from the Play Console; handled with joserfc.

Either way the result is the verdict payload (a dict with ``requestDetails``, ``appIntegrity``,
``deviceIntegrity``, ``accountDetails`` ...), checked by :mod:`shared_code.devices.integrity.policy`.

Failure mapping (fail closed: nothing here ever yields a payload it could not verify):
- the token is garbage, tampered, or uses other algorithms / keys → :class:`InvalidIntegrityToken`
  (400 ``invalid_integrity_token``); in google mode when Google answers 400 (INVALID_ARGUMENT);
- Google unreachable, timing out, or answering 401/403/429/5xx, or the token endpoint refusing
  the assertion → :class:`~shared_code.platform.errors.ServiceUnavailable` ``integrity_unavailable`` (503);
- missing or unusable keys/credentials → :class:`~shared_code.platform.config.ConfigError` naming the setting.
"""

from __future__ import annotations

import re
from typing import Any

from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.errors import BadRequest, ServiceUnavailable

SCOPE = "https://www.googleapis.com/auth/playintegrity"
JWE_ALGORITHMS = ("A256KW", "A256GCM")
JWS_ALGORITHMS = ("ES256",)
MAX_TOKEN_CHARS = 16 * 1024
#: A compact JWE: five base64url segments (RFC 7516 §7.1), the shape of every integrity token.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}")


class InvalidIntegrityToken(BadRequest):
    """The integrity token cannot be decoded or verified (400 ``invalid_integrity_token``)."""

    default_message = "invalid_integrity_token"


def unavailable(detail: str) -> ServiceUnavailable:
    """The 503 ``integrity_unavailable`` for a Google outage (fail closed)."""
    return ServiceUnavailable("integrity_unavailable", detail)


def decode_token(token: str) -> dict[str, Any]:
    """The verdict payload of ``token`` (the compact JWE text the app got from Play).

    Dispatches on ``PLAY_INTEGRITY_MODE``. Raises :class:`InvalidIntegrityToken`,
    :class:`~shared_code.platform.errors.ServiceUnavailable` or :class:`~shared_code.platform.config.ConfigError`
    as the module docstring describes.
    """
    settings = get_settings()
    if not settings.play_integrity_package_name:
        raise ConfigError("PLAY_INTEGRITY_PACKAGE_NAME", "is required for /verify")
    # The decoders are imported on first use: joserfc and google-auth then stay out of the cold
    # start of every other endpoint (about 50 ms of imports).
    if settings.play_integrity_mode == "local":
        from shared_code.devices.integrity import local_decoder

        return local_decoder.decode_locally(token, *local_decoder.response_keys(
            settings.play_integrity_decryption_key, settings.play_integrity_verification_key))
    from shared_code.devices.integrity import google_decoder

    return google_decoder.decode_with_google(token, settings)
