"""Device challenges: single-use nonces bound to one device, with a TTL.

A challenge is at least 128 random bits (here 256), base64url, stored in the ``challenges``
container under the device's partition, so a challenge issued to one device can never be found
for another. Items carry a Cosmos ``ttl`` so Azure expires them natively; the purge timer is the
backstop::

    {"id": challenge, "deviceid", "expires_at": iso, "ttl": seconds, "claim": purpose | absent}

A challenge serves one action, once, in one of two ways:

- :func:`consume_challenge` deletes it on the etag read (an action whose effect needs nothing
  more): of several concurrent consumers exactly one wins.
- :func:`claim_challenge` binds it to one action of several steps, named by ``purpose`` (e.g.
  ``upload:{sha256}``), with a replace on its etag; :func:`finish` deletes it once the action's
  effect is stored. Until then the same action may claim it again, so a retry of a request that
  got 503 half-way continues, while any other use is refused. Nothing is ever given back: a
  timed-out step may still land, so the challenge stays bound to what was already signed.
"""

from __future__ import annotations

import logging
import re
from datetime import datetime, timedelta
from typing import Any

from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import random_token
from shared_code.platform.errors import ServiceUnavailable, Unauthorized
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

log = logging.getLogger("trustgate.challenges")

CHALLENGE_BYTES = 32
# Concurrent claims of one challenge re-read it at most this often (each race has a winner).
MAX_CLAIM_RACES = 4
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
    """Use up ``challenge`` for ``deviceid``, exactly once (one delete on the etag read).

    Raises :class:`~shared_code.platform.errors.Unauthorized` ``invalid_challenge`` when it is malformed,
    unknown, issued to another device, expired, claimed by an action, or already used (including
    by a concurrent request that won the race). If the delete times out and lands later, the
    caller got 503 and the challenge is used up: ask for a new one.
    """
    item = _live(deviceid, challenge)
    if item.get("claim") is not None or not cosmos.delete_item(cosmos.CHALLENGES, challenge, deviceid, etag=item["_etag"]):
        raise _used()


def require_live_challenge(deviceid: str, challenge: str) -> None:
    """Check, without using it up, that ``challenge`` is a live challenge issued to ``deviceid``
    and not claimed by an action (:func:`claim_challenge`).

    For operations that make their result visible first and consume the challenge last (so a
    retry after a timeout finds the challenge still live), e.g. direct-upload grants. Raises
    :class:`~shared_code.platform.errors.Unauthorized` ``invalid_challenge`` like
    :func:`consume_challenge`, :class:`~shared_code.platform.errors.ServiceUnavailable` when
    Cosmos DB is down.
    """
    if _live(deviceid, challenge).get("claim") is not None:
        raise _used()


def claim_challenge(deviceid: str, challenge: str, purpose: str) -> dict[str, Any]:
    """Bind the live ``challenge`` of ``deviceid`` to the action ``purpose``; returns the claimed
    item (pass it to :func:`finish`). Claiming again for the same ``purpose`` succeeds.

    One replace on the challenge's etag: if it times out and lands later, the caller got 503 and
    the challenge is bound to ``purpose``, which a retry of the same action may still use.
    Raises :class:`~shared_code.platform.errors.Unauthorized` ``invalid_challenge`` like
    :func:`consume_challenge`, and when it is claimed for another purpose.
    """
    for _ in range(MAX_CLAIM_RACES):
        item = _live(deviceid, challenge)
        if item.get("claim") == purpose:
            return item
        if item.get("claim") is not None:
            raise _used()
        claimed = {key: value for key, value in item.items() if not key.startswith("_")}
        remaining = (from_iso(item["expires_at"]) - utc_now()).total_seconds()
        claimed.update(claim=purpose, ttl=max(1, int(remaining) + 1))  # Cosmos TTL counts from the last write
        try:
            return cosmos.replace_item(cosmos.CHALLENGES, claimed, item["_etag"])
        except cosmos.EtagMismatch:
            continue  # consumed or claimed meanwhile: look again
    raise _used()


def finish(claimed: dict[str, Any]) -> None:
    """Delete a claimed challenge once its action is complete. Best effort: when the delete fails
    the challenge stays bound to its action (useless for any other) until it expires."""
    try:
        cosmos.delete_item(cosmos.CHALLENGES, claimed["id"], claimed["deviceid"], etag=claimed["_etag"])
    except ServiceUnavailable:
        log.warning("claimed challenge of device %s not deleted; it expires on its own", claimed["deviceid"])


def _live(deviceid: str, challenge: str) -> dict[str, Any]:
    if not CHALLENGE_PATTERN.fullmatch(challenge):
        raise Unauthorized("invalid_challenge", "the challenge is malformed")
    item = cosmos.read_item(cosmos.CHALLENGES, challenge, deviceid)
    if item is None:
        raise _used()
    if from_iso(item["expires_at"]) <= utc_now():
        raise Unauthorized("invalid_challenge", "the challenge has expired")
    return item


def _used() -> Unauthorized:
    return Unauthorized("invalid_challenge", "the challenge is unknown or already used")
