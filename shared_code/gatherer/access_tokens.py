"""Access tokens of the message gatherer: short-lived JWTs (RFC 7519) signed with HS256 (pyjwt).

A token's claims::

    {"sub": username, "iat": issued (s since epoch), "exp": iat + JWT_TTL_SECONDS,
     "iss": JWT_ISSUER, "aud": JWT_AUDIENCE, "jti": 128 random bits (base64url),
     "gen": the user's authentication generation (int >= 1; names the token's message stream)}

The key is ``JWT_SECRET``: at least 256 bits, as RFC 7518 §3.2 requires for HS256 (a Key Vault
reference in Azure). Verification pins the algorithm to HS256, so ``alg: none`` and any other
algorithm are refused (RFC 8725 §3.1), and requires every claim above, checking ``exp`` (no
leeway), ``iss`` and ``aud``. Revocation (logout, re-authentication) is not here: the caller
compares ``jti`` with the one live token recorded on the user (:mod:`shared_code.gatherer.protocol`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import jwt

from shared_code.platform.config import get_settings
from shared_code.platform.crypto import random_token
from shared_code.platform.errors import Unauthorized
from shared_code.platform.timeutil import utc_now

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("sub", "iat", "exp", "iss", "aud", "jti", "gen")
MAX_TOKEN_CHARS = 4096
JTI_BYTES = 16
_CHALLENGE = 'Bearer realm="trustgate"'


@dataclass(frozen=True)
class IssuedToken:
    """A freshly signed token (compact JWS text), its ``jti`` and when it expires (aware UTC)."""

    token: str
    jti: str
    expires_at: datetime


def invalid_token(message: str, detail: str) -> Unauthorized:
    """The 401 for a missing, malformed, expired, forged or revoked bearer token (RFC 6750 §3)."""
    error = "" if message == "missing_token" else ', error="invalid_token"'
    return Unauthorized(message, detail, headers={"WWW-Authenticate": _CHALLENGE + error})


def issue_token(username: str, generation: int) -> IssuedToken:
    """Sign a new access token for ``username``'s authentication ``generation`` (>= 1), valid for
    ``JWT_TTL_SECONDS`` from now.

    Raises :class:`~shared_code.platform.config.ConfigError` when ``JWT_SECRET`` is missing or short.
    """
    settings = get_settings()
    now = utc_now().replace(microsecond=0)
    expires_at = now + timedelta(seconds=settings.jwt_ttl_seconds)
    jti = random_token(JTI_BYTES)
    claims = {
        "sub": username,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "jti": jti,
        "gen": generation,
    }
    token = jwt.encode(claims, settings.jwt_secret, algorithm=ALGORITHM, headers={"typ": "JWT"})
    return IssuedToken(token=token, jti=jti, expires_at=expires_at)


def verify_token(token: str | None) -> dict:
    """The claims of a valid ``token`` (signature, ``exp``, ``iss``, ``aud``, all claims present).

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``missing_token`` when there is none and
    ``invalid_token`` when it is malformed, expired, signed with another key or algorithm, or
    issued for another issuer or audience (the detail says which, never echoing the token).
    """
    if not token:
        raise invalid_token("missing_token", "send the access token (token field or Authorization: Bearer)")
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS:
        raise invalid_token("invalid_token", "the access token is malformed")
    settings = get_settings()
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret,
            algorithms=[ALGORITHM],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={"require": list(REQUIRED_CLAIMS), "verify_signature": True},
        )
    except jwt.ExpiredSignatureError:
        raise invalid_token("invalid_token", "the access token has expired: authenticate again") from None
    except jwt.InvalidTokenError as exc:
        raise invalid_token("invalid_token", f"the access token is not valid ({exc.__class__.__name__})") from None
    generation = claims.get("gen")
    if (not isinstance(claims.get("sub"), str) or not isinstance(claims.get("jti"), str)
            or isinstance(generation, bool) or not isinstance(generation, int) or generation < 1):
        raise invalid_token("invalid_token", "the access token is not valid (claims)")
    return claims


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1), else ``None``."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()
