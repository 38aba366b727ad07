"""Continuation tokens for paged listings: opaque to clients, tamper-evident, bound to the caller.

A token is ``base64url(payload) "." hex(HMAC-SHA256(key, purpose ":" subject ":" payload))``
(RFC 2104; :func:`shared_code.platform.crypto.keyed_hash`). ``payload`` is whatever the listing needs
to resume (a Cosmos continuation, a blob name and offset); ``purpose`` separates the listings
that share a key; ``subject`` is the caller (a device id, a username), so a token handed to one
caller is refused for every other. A token is only ever parsed after its MAC verified, so no
client-made position reaches the code that resumes the listing.
"""

from __future__ import annotations

from shared_code.platform.crypto import b64decode_strict, b64url_encode, keyed_hash, keyed_hash_matches
from shared_code.platform.errors import BadRequest

#: Longest token accepted (a Cosmos continuation plus the MAC fits with a wide margin).
MAX_TOKEN_CHARS = 4096


def _message(purpose: str, subject: str, payload: str) -> str:
    return f"{purpose}:{subject}:{payload}"


def seal(key: bytes, purpose: str, subject: str, payload: str) -> str:
    """The token carrying ``payload`` (text) for ``subject`` under ``key`` and ``purpose``."""
    return f"{b64url_encode(payload.encode('utf-8'))}.{keyed_hash(key, _message(purpose, subject, payload))}"


def unseal(key: bytes, purpose: str, subject: str, token: str) -> str:
    """The payload of a token made by :func:`seal` with the same ``key``, ``purpose`` and ``subject``.

    Raises :class:`~shared_code.platform.errors.BadRequest` ``invalid_continuation`` for anything
    else: altered, truncated, longer than :data:`MAX_TOKEN_CHARS`, made for another caller or
    listing, or not from this API.
    """
    encoded, _, mac = token.partition(".")
    payload = ""
    if len(token) <= MAX_TOKEN_CHARS:
        try:
            payload = b64decode_strict(encoded).decode("utf-8")
        except ValueError:  # includes UnicodeDecodeError
            payload = ""
    if not payload or not keyed_hash_matches(key, _message(purpose, subject, payload), mac):
        raise BadRequest("invalid_continuation", "continuation is not a token this API returned to you")
    return payload
