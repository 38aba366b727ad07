"""Fixed-window request counters in Cosmos DB, shared by every instance of the app.

A counter is one item per (bucket, key, window) in the ``rate_limits`` container, id
``<bucket>-<window index>-<sha256(key)[:32]>`` (the key, e.g. an IP address, is hashed so any
text is a valid id). Counting is one conditional Patch (``incr`` if ``count < limit``): atomic on
the server, so N concurrent requests never lose an update or all retry on one etag. The first
request of a window creates the item; a lost create race just patches the winner's item.

Fixed windows let a client spend up to ``2 × limit`` across a window boundary; that is the
accepted price of one write per request (OWASP rate-limiting guidance). Items carry
``expires_at`` (window end) and a Cosmos ``ttl``, so Azure expires them and the purge timer is
the backstop.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timezone

from shared_code import cosmos
from shared_code.crypto import sha256_hex
from shared_code.timeutil import to_iso, utc_now

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Decision:
    """``allowed``: the request is counted and may proceed; ``count``: requests counted in the
    window so far; ``retry_after``: whole seconds until the window ends (>= 1)."""

    allowed: bool
    count: int
    retry_after: int


def _window(now: datetime, window_seconds: int) -> tuple[int, datetime]:
    index = int(now.timestamp()) // window_seconds
    return index, datetime.fromtimestamp((index + 1) * window_seconds, tz=timezone.utc)


def hit(bucket: str, key: str, limit: int, window_seconds: int = 60) -> Decision:
    """Count one request of ``key`` in ``bucket`` unless ``limit`` requests were already counted in
    the current window of ``window_seconds`` (windows are aligned to the Unix epoch).

    Raises :class:`~shared_code.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    now = utc_now()
    index, ends_at = _window(now, window_seconds)
    retry_after = max(1, math.ceil((ends_at - now).total_seconds()))
    item_id = f"{bucket}-{index}-{sha256_hex(key)[:32]}"
    for _ in range(MAX_ATTEMPTS):
        try:
            item = cosmos.increment_if(cosmos.RATE_LIMITS, item_id, item_id, "count", f"from c where c.count < {int(limit)}")
        except cosmos.ConditionFailed:
            return Decision(False, limit, retry_after)
        if item is not None:
            return Decision(True, int(item["count"]), retry_after)
        try:
            cosmos.create_item(cosmos.RATE_LIMITS, {
                "id": item_id, "bucket": bucket, "count": 1,
                "expires_at": to_iso(ends_at), "ttl": retry_after + 1,
            })
            return Decision(True, 1, retry_after)
        except cosmos.AlreadyExists:
            continue  # a concurrent request created it first: count on its item
    # Unreachable unless the item is deleted between our create and patch attempts repeatedly.
    return Decision(False, limit, retry_after)

