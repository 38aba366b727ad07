"""The quota on KMS key creation: at most ``KMS_KEYS_PER_HOUR`` ``POST /get_public_key`` per user.

Each creation generates an RSA key pair (``KMS_RSA_KEY_BITS``, 3072 by default: tens to hundreds
of milliseconds of CPU), so without a quota one session can keep an instance busy (80 keys in
16 s slowed ``/health`` from 11 ms to 0.5-1 s). Attempts are counted per user (normalised email)
in fixed one-hour windows in Cosmos DB (:mod:`shared_code.platform.rate_limit`, shared by every
instance) before any key is generated; over the quota the answer is ``429 rate_limited`` with
``Retry-After`` and nothing is created. OWASP API Security Top 10 2023, API4 "Unrestricted
Resource Consumption".
"""

from __future__ import annotations

from shared_code.platform import rate_limit
from shared_code.platform.config import get_settings
from shared_code.platform.security_log import subject_ref

HOUR = 3600
BUCKET = "kms_key_creation"


def admit_key_creation(email: str) -> None:
    """Count one key creation by ``email``; raises
    :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (429, ``Retry-After`` in
    seconds) over ``KMS_KEYS_PER_HOUR`` this hour, and
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down."""
    limit = get_settings().kms_keys_per_hour
    rate_limit.enforce(BUCKET, email, limit, HOUR, f"at most {limit} file keys an hour may be created per user",
                       limit_kind="kms_keys", user_ref=subject_ref(email))
