"""Reading an ``Authorization: Bearer <token>`` header (RFC 6750 §2.1)."""

from __future__ import annotations

import re

from shared_code.platform.errors import BadRequest, Unauthorized

# RFC 6750 §2.1: credentials = "Bearer" 1*SP b64token; b64token = 1*( ALPHA / DIGIT / "-" / "." /
# "_" / "~" / "+" / "/" ) *"=". The scheme is case-insensitive (RFC 7235 §2.1).
_BEARER = re.compile(r"Bearer +([A-Za-z0-9\-._~+/]+=*)", re.IGNORECASE | re.ASCII)
MAX_HEADER_CHARS = 1024
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="trustgate", error="invalid_request"'}
#: RFC 6750 §3: a request without any credentials gets the bare challenge, no error code.
MISSING_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="trustgate"'}


def bearer_token(header: str | None) -> str:
    """The token of an ``Authorization`` header value.

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``missing_token`` (401 with
    ``WWW-Authenticate: Bearer realm="trustgate"``, RFC 6750 §3) when the header is missing or
    empty, and :class:`~shared_code.platform.errors.BadRequest` ``invalid_authorization`` (400
    with ``error="invalid_request"``, RFC 6750 §3.1) when it uses another scheme, carries no
    token, is longer than ``MAX_HEADER_CHARS``, or the token is not RFC 6750 ``b64token`` syntax
    (e.g. non-ASCII).
    """
    if not header or not header.strip():
        raise Unauthorized("missing_token", "an 'Authorization: Bearer <token>' header is required", headers=MISSING_CHALLENGE)
    if len(header) > MAX_HEADER_CHARS:
        raise BadRequest("invalid_authorization", f"the Authorization header exceeds {MAX_HEADER_CHARS} characters",
                         headers=CHALLENGE)
    match = _BEARER.fullmatch(header.strip())
    if match is None:
        raise BadRequest("invalid_authorization", "the Authorization header must be 'Bearer <token>'", headers=CHALLENGE)
    return match.group(1)
