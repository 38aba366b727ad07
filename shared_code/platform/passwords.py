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

# A valid bcrypt hash of a random value: checked against when a user is unknown, so that a login
# for an unknown account costs the same bcrypt work as one with a wrong password.
_DUMMY_HASH = b"$2b$12$C6UzMDM.H6dfI/f/IKxGhuP0p5o8hQWfmvS1tnQnJ1P8w5s9r1mGy"


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

    With ``stored_hash=None`` (unknown user) the same bcrypt work is done against a dummy hash
    and ``False`` returned, so timing does not reveal whether an account exists. A malformed
    stored hash counts as a mismatch.
    """
    candidate = _prehash(password)
    if stored_hash is None:
        bcrypt.checkpw(candidate, _DUMMY_HASH)
        return False
    try:
        return bcrypt.checkpw(candidate, stored_hash.encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
