"""Device challenges: single-use nonces bound to one device, with a TTL.

A challenge is at least 128 random bits (here 256), base64url, stored in the ``challenges``
container under the device's partition, so a challenge issued to one device can never be found
for another. Consumption deletes the item: of several concurrent consumers exactly one wins.
Items carry a Cosmos ``ttl`` so Azure expires them natively; the purge timer is the backstop.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import random_token
from shared_code.platform.errors import Unauthorized
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

CHALLENGE_BYTES = 32
CHALLENGE_PATTERN = re.compile(r"[A-Za-z0-9_-]{22,128}")


def issue_challenge(deviceid: str) -> tuple[str, datetime]:
    """Create a challenge for ``deviceid``; returns ``(challenge, expires_at)``.

    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    ttl = get_settings().challenge_ttl_seconds
    challenge = random_token(CHALLENGE_BYTES)
    expires_at = utc_now() + timedelta(seconds=ttl)
    cosmos.create_item(
        cosmos.CHALLENGES,
        {"id": challenge, "deviceid": deviceid, "expires_at": to_iso(expires_at), "ttl": ttl},
    )
    return challenge, expires_at


def consume_challenge(deviceid: str, challenge: str) -> None:
    """Use up ``challenge`` for ``deviceid``, exactly once.

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``invalid_challenge`` when it is malformed,
    unknown, issued to another device, expired, or already used (including by a concurrent
    request that won the race).
    """
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        raise Unauthorized("invalid_challenge", "the challenge is malformed")
    item = cosmos.read_item(cosmos.CHALLENGES, challenge, deviceid)
    if item is None:
        raise Unauthorized("invalid_challenge", "the challenge is unknown or already used")
    won = cosmos.delete_item(cosmos.CHALLENGES, challenge, deviceid)
    if from_iso(item["expires_at"]) <= utc_now():
        raise Unauthorized("invalid_challenge", "the challenge has expired")
    if not won:
        raise Unauthorized("invalid_challenge", "the challenge is unknown or already used")


def require_live_challenge(deviceid: str, challenge: str) -> None:
    """Check, without using it up, that ``challenge`` is a live challenge issued to ``deviceid``.

    For operations that make their result visible first and consume the challenge last (so a
    retry after a timeout finds the challenge still live), e.g. direct-upload grants. Raises
    :class:`~shared_code.platform.errors.Unauthorized` ``invalid_challenge`` like
    :func:`consume_challenge`, :class:`~shared_code.platform.errors.ServiceUnavailable` when
    Cosmos DB is down.
    """
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        raise Unauthorized("invalid_challenge", "the challenge is malformed")
    item = cosmos.read_item(cosmos.CHALLENGES, challenge, deviceid)
    if item is None:
        raise Unauthorized("invalid_challenge", "the challenge is unknown or already used")
    if from_iso(item["expires_at"]) <= utc_now():
        raise Unauthorized("invalid_challenge", "the challenge has expired")
