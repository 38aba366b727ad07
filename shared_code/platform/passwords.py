"""Password hashing: bcrypt over a peppered pre-hash, so no password is ever truncated.

bcrypt reads at most 72 bytes of its input, so a long passphrase (or 64 non-ASCII characters,
up to 256 UTF-8 bytes) would be silently cut. Each password is therefore:

1. normalised to Unicode NFKC (NIST SP 800-63B §5.1.1.2: normalise before hashing, so the same
   characters typed on different keyboards match);
2. pre-hashed with HMAC-SHA256 (RFC 2104) under ``PASSWORD_PEPPER``, a server-side secret kept
   out of the database (in Key Vault in Azure), and base64-encoded: 44 ASCII bytes, no NUL bytes,
   always under bcrypt's limit;
3. hashed with bcrypt (random 128-bit salt, cost ``BCRYPT_COST`` >= 12; OWASP Password Storage
   Cheat Sheet).

A stolen database alone is useless without the pepper, and the pepper alone reveals nothing.
"""

from __future__ import annotations

import base64
import unicodedata

import bcrypt
from cryptography.hazmat.primitives import hashes, hmac

from shared_code.platform.config import get_settings

# Salt and digest (22 + 31 characters of bcrypt's base64) of a bcrypt hash of a random value. An
# unknown user's login is checked against them at the configured cost (:func:`_dummy_hash`), so it
# costs the same bcrypt work as a wrong password at any BCRYPT_COST: bcrypt reads its cost from
# the hash, so a fixed "$2b$12$" dummy answered an unknown email 4x faster at cost 14.
_DUMMY_SALT_AND_DIGEST = "C6UzMDM.H6dfI/f/IKxGhuP0p5o8hQWfmvS1tnQnJ1P8w5s9r1mGy"


def _dummy_hash() -> bytes:
    """A well-formed bcrypt hash at cost ``BCRYPT_COST`` that no password matches in practice."""
    return f"$2b${get_settings().bcrypt_cost:02d}${_DUMMY_SALT_AND_DIGEST}".encode("ascii")


def _prehash(password: str) -> bytes:
    normalised = unicodedata.normalize("NFKC", password).encode("utf-8")
    mac = hmac.HMAC(get_settings().password_pepper, hashes.SHA256())
    mac.update(normalised)
    return base64.b64encode(mac.finalize())


def hash_password(password: str) -> str:
    """The bcrypt hash (``$2b$<cost>$…``, 60 ASCII chars) of ``password`` (any length, any Unicode).

    Takes about 0.3 s at cost 12 by design. Raises
    :class:`~shared_code.platform.config.ConfigError` when ``PASSWORD_PEPPER`` is missing or malformed.
    """
    return bcrypt.hashpw(_prehash(password), bcrypt.gensalt(get_settings().bcrypt_cost)).decode("ascii")


def verify_password(password: str, stored_hash: str | None) -> bool:
    """Whether ``password`` matches ``stored_hash`` (constant-time inside bcrypt).

    With ``stored_hash=None`` (unknown user) the same bcrypt work is done against a dummy hash at
    cost ``BCRYPT_COST`` and ``False`` returned, so timing does not reveal whether an account
    exists (stored hashes made at an older cost still cost what they were made with). A malformed
    stored hash counts as a mismatch.
    """
    candidate = _prehash(password)
    if stored_hash is None:
        bcrypt.checkpw(candidate, _dummy_hash())
        return False
    try:
        return bcrypt.checkpw(candidate, stored_hash.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
