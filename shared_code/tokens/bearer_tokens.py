"""Bearer tokens of the token service (seed 004): issue, verify, revoke.

A token is 256 random bits from the OS CSPRNG as unpadded base64url (43 characters). Only its
SHA-256 is stored (id and partition key of the ``tokens`` item), so a database leak yields no
usable token (:func:`shared_code.platform.crypto.sha256_hex` explains why an unkeyed hash is enough).
An item holds ``scope``, ``client_id``, ``one_time``, ``created_at``, ``expires_at`` and a Cosmos ``ttl``.

- Expiry is checked on every verification, so an expired token is never valid even before
  Cosmos TTL or the purge timer removes it.
- A one-time token is consumed by deleting its item: Cosmos lets exactly one of any number of
  concurrent deletes succeed, so exactly one concurrent verification sees it valid.
- Revocation (RFC 7009) deletes the item; a revoked token verifies ``False`` at once.
- Introspection (RFC 7662, :mod:`shared_code.tokens.introspection`) reads the same item through
  :func:`inspect_token` and does not consume a one-time token unless asked to.
- Issuing and revoking are trust decisions: each is recorded in the audit log
  (:mod:`shared_code.audit.trail`) before it takes effect, and not taken when that fails.

Each operation is one write (after its audit entry). After a timeout the write may land: an issued
token nobody received expires unused, a one-time token may be used up (a retried verification
answers ``False``), a revocation may be done (a retry answers the same).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared_code.audit import trail
from shared_code.platform import cosmos
from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.crypto import random_token, sha256_hex
from shared_code.platform.errors import BadRequest
from shared_code.platform.security_log import token_ref
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

TOKEN_BYTES = 32
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{43}")
# RFC 6749 §3.3: scope = scope-token *( SP scope-token ); scope-token = 1*NQCHAR.
SCOPE_PATTERN = re.compile(r"[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*")
MAX_SCOPE_CHARS = 256
# RFC 6749 Appendix A.1: client-id = *VSCHAR (%x20-7E); its length is left to the server (§2.2).
CLIENT_ID_PATTERN = re.compile(r"[\x20-\x7E]{1,128}")


@dataclass(frozen=True)
class IssuedToken:
    """A new token: the raw ``token`` (shown to the caller once), its stored ``token_hash``
    (SHA-256 hex) and ``expires_at`` (aware UTC)."""

    token: str
    token_hash: str
    expires_at: datetime


@dataclass(frozen=True)
class TokenInfo:
    """What a valid token carries: ``expires_at`` and ``issued_at`` (aware UTC), ``scope`` and
    ``client_id`` (or ``None``), ``one_time``."""

    expires_at: datetime
    scope: str | None
    one_time: bool
    issued_at: datetime
    client_id: str | None = None


def validate_request(ttl_seconds: object, one_time: object, scope: object) -> tuple[int, bool, str | None]:
    """Check the optional fields of a token request; returns ``(ttl_seconds, one_time, scope)``.

    ``ttl_seconds`` defaults to ``TOKEN_EXPIRATION_TIME`` and must be an integer from 1 to
    ``TOKEN_MAX_TTL_SECONDS``; ``one_time`` a boolean (default false); ``scope`` RFC 6749 §3.3
    scope syntax of at most 256 characters. Raises :class:`BadRequest` ``invalid_ttl``,
    ``invalid_field``, or :class:`ConfigError` if the default exceeds the maximum.
    """
    settings = get_settings()
    if settings.token_expiration_seconds > settings.token_max_ttl_seconds:
        raise ConfigError("TOKEN_EXPIRATION_TIME", "must not exceed TOKEN_MAX_TTL_SECONDS")
    if ttl_seconds is None:
        ttl_seconds = settings.token_expiration_seconds
    if isinstance(ttl_seconds, float) and ttl_seconds.is_integer():
        ttl_seconds = int(ttl_seconds)  # JSON has one number type: 600.0 is the integer 600 (RFC 8259 §6)
    if isinstance(ttl_seconds, bool) or not isinstance(ttl_seconds, int) or not 1 <= ttl_seconds <= settings.token_max_ttl_seconds:
        raise BadRequest("invalid_ttl", f"ttl_seconds must be an integer from 1 to {settings.token_max_ttl_seconds}")
    if one_time is None:
        one_time = False
    if not isinstance(one_time, bool):
        raise BadRequest("invalid_field", "'one_time' must be true or false")
    if scope is not None and (not isinstance(scope, str) or len(scope) > MAX_SCOPE_CHARS or not SCOPE_PATTERN.fullmatch(scope)):
        raise BadRequest("invalid_field", f"'scope' must be space-separated RFC 6749 scope tokens, at most {MAX_SCOPE_CHARS} characters")
    return ttl_seconds, one_time, scope


def validate_client_id(client_id: object) -> str | None:
    """The optional ``client_id`` of a token request (the OAuth client the token is for, returned
    by introspection): RFC 6749 Appendix A.1 ``*VSCHAR``, 1-128 characters, or ``None``.

    Raises :class:`BadRequest` ``invalid_field``.
    """
    if client_id is not None and (not isinstance(client_id, str) or not CLIENT_ID_PATTERN.fullmatch(client_id)):
        raise BadRequest("invalid_field", "'client_id' must be 1-128 printable ASCII characters (RFC 6749 VSCHAR)")
    return client_id


def issue_token(ttl_seconds: int, one_time: bool = False, scope: str | None = None,
                client_address: str | None = None, client_id: str | None = None) -> IssuedToken:
    """Create and store a token valid for ``ttl_seconds`` (already validated), for the caller at
    ``client_address`` (audited as a salted digest), naming the OAuth ``client_id`` it is for.

    The audit entry ``token_issued`` is written first; the token exists only after it. Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when the audit log or Cosmos DB is
    down: nothing usable is stored (after a Cosmos failure the log holds an entry for a token
    that never existed and was never returned).
    """
    token = random_token(TOKEN_BYTES)
    token_hash = sha256_hex(token)
    now = utc_now()
    expires_at = now + timedelta(seconds=ttl_seconds)
    trail.record("token_issued", actor=trail.OPERATOR, client_address=client_address, objects={"token_ref": token_ref(token_hash), "one_time": one_time, "scope": scope, "client_id": client_id, "expires_at": to_iso(expires_at)})
    cosmos.create_item(cosmos.TOKENS, {
        "id": token_hash, "scope": scope, "client_id": client_id, "one_time": one_time,
        "created_at": to_iso(now), "expires_at": to_iso(expires_at), "ttl": ttl_seconds + 1,
    })
    return IssuedToken(token, token_hash, expires_at)


def verify_token(token: str) -> TokenInfo | None:
    """The token's details if it is valid now, else ``None`` (unknown, malformed, expired,
    revoked, or a one-time token already used, including by a concurrent verification).

    A valid one-time token is used up by this call. Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    return inspect_token(token, consume=True)


def inspect_token(token: str, *, consume: bool) -> TokenInfo | None:
    """Like :func:`verify_token`, except that a valid one-time token is used up only when
    ``consume`` is true (then exactly one of any number of concurrent consuming calls gets it);
    with ``consume`` false it stays valid and is reported with ``one_time`` set.

    Consuming is one delete: if the process dies or the delete times out after it reached
    Cosmos DB, the token is used up although the caller saw no answer (a retry gets ``None``).
    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    if not TOKEN_PATTERN.fullmatch(token):
        return None
    token_hash = sha256_hex(token)
    item = cosmos.read_item(cosmos.TOKENS, token_hash, token_hash)
    if item is None:
        return None
    expires_at = from_iso(item["expires_at"])
    if expires_at <= utc_now():
        return None
    if consume and item.get("one_time") and not cosmos.delete_item(cosmos.TOKENS, token_hash, token_hash):
        return None
    return TokenInfo(expires_at, item.get("scope"), bool(item.get("one_time")), from_iso(item["created_at"]),
                     item.get("client_id"))


def revoke_token(token: str, client_address: str | None = None) -> tuple[str, bool]:
    """Revoke ``token`` (RFC 7009 §2.1): returns ``(token_hash, whether a stored token was removed)``.

    Unknown or malformed tokens are not an error (RFC 7009 §2.2) and are not audited; a stored
    token is audited as ``token_revoked`` before it is deleted. Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when the audit log or Cosmos DB is
    down (then the token stays valid; a retry revokes it).
    """
    token_hash = sha256_hex(token)
    if not TOKEN_PATTERN.fullmatch(token) or cosmos.read_item(cosmos.TOKENS, token_hash, token_hash) is None:
        return token_hash, False
    trail.record("token_revoked", actor=trail.OPERATOR, client_address=client_address, objects={"token_ref": token_ref(token_hash)})
    return token_hash, cosmos.delete_item(cosmos.TOKENS, token_hash, token_hash)
