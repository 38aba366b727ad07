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
``deviceIntegrity``, ``accountDetails`` ...), checked by :mod:`shared_code.integrity_policy`.

Failure mapping (fail closed: nothing here ever yields a payload it could not verify):
- the token is garbage, tampered, or uses other algorithms / keys → :class:`InvalidIntegrityToken`
  (400 ``invalid_integrity_token``); in google mode when Google answers 400 (INVALID_ARGUMENT);
- Google unreachable, timing out, or answering 401/403/429/5xx, or the token endpoint refusing
  the assertion → :class:`~shared_code.errors.ServiceUnavailable` ``integrity_unavailable`` (503);
- missing or unusable keys/credentials → :class:`~shared_code.config.ConfigError` naming the setting.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import logging
import re
from pathlib import Path
from typing import Any

import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account
from joserfc import jwe, jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OctKey

from shared_code.config import ConfigError, Settings, get_settings
from shared_code.errors import BadRequest, ServiceUnavailable

log = logging.getLogger("trustgate.integrity")

SCOPE = "https://www.googleapis.com/auth/playintegrity"
JWE_ALGORITHMS = ("A256KW", "A256GCM")
JWS_ALGORITHMS = ("ES256",)
MAX_TOKEN_CHARS = 16 * 1024
#: A compact JWE: five base64url segments (RFC 7516 §7.1), the shape of every integrity token.
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*){4}")


class InvalidIntegrityToken(BadRequest):
    """The integrity token cannot be decoded or verified (400 ``invalid_integrity_token``)."""

    default_message = "invalid_integrity_token"


def _unavailable(detail: str) -> ServiceUnavailable:
    return ServiceUnavailable("integrity_unavailable", detail)


def decode_token(token: str) -> dict[str, Any]:
    """The verdict payload of ``token`` (the compact JWE text the app got from Play).

    Dispatches on ``PLAY_INTEGRITY_MODE``. Raises :class:`InvalidIntegrityToken`,
    :class:`~shared_code.errors.ServiceUnavailable` or :class:`~shared_code.config.ConfigError`
    as the module docstring describes.
    """
    settings = get_settings()
    if not settings.play_integrity_package_name:
        raise ConfigError("PLAY_INTEGRITY_PACKAGE_NAME", "is required for /verify")
    if settings.play_integrity_mode == "local":
        return decode_locally(token, *_local_keys(settings.play_integrity_decryption_key,
                                                  settings.play_integrity_verification_key))
    return decode_with_google(token, settings)


# -- local ----------------------------------------------------------------------------------

@functools.lru_cache(maxsize=4)
def _local_keys(decryption_b64: str, verification_b64: str) -> tuple[OctKey, ECKey]:
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


# -- google ---------------------------------------------------------------------------------

def _service_account_info(text: str) -> dict[str, Any]:
    name = "PLAY_INTEGRITY_CREDENTIALS"
    if not text:
        raise ConfigError(name, "is required in google mode")
    try:
        raw = text if text.lstrip().startswith("{") else Path(text).read_text(encoding="utf-8")
        info = json.loads(raw)
    except OSError:
        raise ConfigError(name, "is neither service-account JSON nor a readable file") from None
    except ValueError:
        raise ConfigError(name, "is not valid JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise ConfigError(name, "must be a service-account key (type service_account)")
    return info


@functools.lru_cache(maxsize=4)
def _session(credentials_text: str, timeout: int) -> AuthorizedSession:
    """One authorised session per credentials: google-auth caches and refreshes the access token."""
    try:
        credentials = service_account.Credentials.from_service_account_info(
            _service_account_info(credentials_text), scopes=[SCOPE])
    except ValueError:
        raise ConfigError("PLAY_INTEGRITY_CREDENTIALS", "the service-account key cannot be loaded") from None
    return AuthorizedSession(credentials, refresh_timeout=timeout)


def decode_with_google(token: str, settings: Settings) -> dict[str, Any]:
    """Ask Google's ``decodeIntegrityToken`` for the payload of ``token``.

    Timeouts: ``PLAY_INTEGRITY_TIMEOUT_SECONDS`` for connect and for read, on both the token
    endpoint and the decode call; google-auth retries a failing token endpoint (5xx) up to three
    times with a short backoff, so the worst case is about 4 x the timeout plus 3 s. The access
    token is cached by google-auth and refreshed before it expires. Raises :class:`InvalidIntegrityToken` when Google answers 400,
    :class:`ServiceUnavailable` for every other failure (see module docstring).
    """
    timeout = settings.play_integrity_timeout_seconds
    session = _session(settings.play_integrity_credentials, timeout)
    url = f"{settings.play_integrity_api_base}/v1/{settings.play_integrity_package_name}:decodeIntegrityToken"
    try:
        response = session.post(url, json={"integrity_token": token}, timeout=(timeout, timeout))
    except google.auth.exceptions.GoogleAuthError as exc:
        log.warning("Play Integrity access token refused or unavailable: %s", exc.__class__.__name__)
        raise _unavailable("Google did not grant an access token for Play Integrity") from None
    except requests.RequestException as exc:
        log.warning("Play Integrity API unreachable: %s", exc.__class__.__name__)
        raise _unavailable("Google Play Integrity could not be reached in time") from None
    if response.status_code == 400:
        raise InvalidIntegrityToken(detail="Google could not decode the integrity token")
    if response.status_code != 200:
        log.warning("Play Integrity API answered %s", response.status_code)
        raise _unavailable(f"Google Play Integrity answered {response.status_code}")
    try:
        payload = response.json()["tokenPayloadExternal"]
    except (ValueError, KeyError, TypeError):
        raise _unavailable("Google Play Integrity answered without a token payload") from None
    if not isinstance(payload, dict):
        raise _unavailable("Google Play Integrity answered without a token payload")
    return payload
