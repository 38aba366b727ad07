"""Structured security events (OWASP Logging Cheat Sheet): one record per event on logger
``trustgate.security``.

Each record is a flat JSON object ``{"event": <name>, **fields}``, written as the log message
and also passed as ``extra={"security_event": record}`` so a structured handler (Application
Insights custom dimensions) gets the fields without parsing. Callers pass only non-secret
fields: a token appears only as :func:`token_ref`, never itself.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from shared_code.platform.crypto import sha256_hex

log = logging.getLogger("trustgate.security")

TOKEN_REF_CHARS = 12


def token_ref(token_hash: str) -> str:
    """A short reference to a stored token: the first 12 hex digits of its SHA-256 (the stored id).

    Lets the events of one token be correlated without the token itself, which cannot be
    recovered from it.
    """
    return token_hash[:TOKEN_REF_CHARS]


def security_event(event: str, *, level: int = logging.INFO, **fields: Any) -> dict[str, Any]:
    """Log security event ``event`` (snake_case) with ``fields`` (JSON-serialisable, no secrets).

    Returns the record that was logged.
    """
    record = {"event": event, **fields}
    log.log(level, "security_event %s", json.dumps(record, separators=(",", ":"), sort_keys=True, default=str),
            extra={"security_event": record})
    return record


def subject_ref(subject: str) -> str:
    """A short reference to an account name or email address in a security event: the first 12
    hex digits of its SHA-256, so one subject's events correlate without writing it in clear."""
    return sha256_hex(subject)[:TOKEN_REF_CHARS]
