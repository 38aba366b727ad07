"""Reading an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""

from __future__ import annotations

import re

from shared_code.platform.errors import BadRequest

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; b64token = 1*( ALPHA / DIGIT / "-" / "." /
# "_" / "~" / "+" / "/" ) *"=". The scheme is case-insensitive (RFC 7235 §2.1).
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE | re.ASCII)
MAX_HEADER_CHARS = 1024
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="trustgate", error="invalid_request"'}


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization`` header value.

    Raises :class:`~shared_code.platform.errors.BadRequest` ``invalid_authorization`` (with a
    ``WWW-Authenticate: Bearer`` challenge header) when the header is missing or empty, uses
    another scheme, carries no token, is longer than ``MAX_HEADER_CHARS``, or the token is not
    RFC 6750 ``b64token`` syntax (e.g. non-ASCII).
    """
    if not header or not header.strip():
        raise BadRequest("invalid_authorization", "an 'Authorization: Bearer <token>' header is required", headers=CHALLENGE)
    if len(header) > MAX_HEADER_CHARS:
        raise BadRequest("invalid_authorization", f"the Authorization header exceeds {MAX_HEADER_CHARS} characters",
                         headers=CHALLENGE)
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        raise BadRequest("invalid_authorization", "the Authorization header must be 'Bearer <token>'", headers=CHALLENGE)
    return match.group(1)
