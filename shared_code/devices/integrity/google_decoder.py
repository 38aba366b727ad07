"""Play Integrity ``google`` mode: Google's ``decodeIntegrityToken`` with a service account.

``POST {PLAY_INTEGRITY_API_BASE}/v1/{packageName}:decodeIntegrityToken`` with body
``{"integrity_token": token}`` and an OAuth 2.0 access token for scope
``https://www.googleapis.com/auth/playintegrity`` (google-auth signs the RFC 7523 JWT-bearer
assertion with the service account's RSA key and sends it to the key's ``token_uri``); the answer
is ``{"tokenPayloadExternal": payload}`` (developer.android.com/google/play/integrity/classic,
"Decrypt and verify the integrity verdict"). See :mod:`shared_code.devices.integrity.decode` for the
failure mapping.
"""

from __future__ import annotations

import functools
import json
import logging
from pathlib import Path
from typing import Any

import google.auth.exceptions
import requests
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account

from shared_code.devices.integrity.decode import SCOPE, InvalidIntegrityToken, unavailable
from shared_code.platform.config import ConfigError, Settings

log = logging.getLogger("trustgate.integrity")


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
        raise unavailable("Google did not grant an access token for Play Integrity") from None
    except requests.RequestException as exc:
        log.warning("Play Integrity API unreachable: %s", exc.__class__.__name__)
        raise unavailable("Google Play Integrity could not be reached in time") from None
    if response.status_code == 400:
        raise InvalidIntegrityToken(detail="Google could not decode the integrity token")
    if response.status_code != 200:
        log.warning("Play Integrity API answered %s", response.status_code)
        raise unavailable(f"Google Play Integrity answered {response.status_code}")
    try:
        payload = response.json()["tokenPayloadExternal"]
    except (ValueError, KeyError, TypeError):
        raise unavailable("Google Play Integrity answered without a token payload") from None
    if not isinstance(payload, dict):
        raise unavailable("Google Play Integrity answered without a token payload")
    return payload
