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

import logging
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from shared_code.platform import cosmos
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import TooManyRequests
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

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


def _current(bucket: str, key: str, window_seconds: int) -> tuple[str, datetime, int]:
    """The counter id of ``key`` in ``bucket`` for the current window, its end and the whole
    seconds until then (>= 1)."""
    now = utc_now()
    index, ends_at = _window(now, window_seconds)
    retry_after = max(1, math.ceil((ends_at - now).total_seconds()))
    return f"{bucket}-{index}-{sha256_hex(key)[:32]}", ends_at, retry_after


def hit(bucket: str, key: str, limit: int, window_seconds: int = 60) -> Decision:
    """Count one request of ``key`` in ``bucket`` unless ``limit`` requests were already counted in
    the current window of ``window_seconds`` (windows are aligned to the Unix epoch).

    Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    item_id, ends_at, retry_after = _current(bucket, key, window_seconds)
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



def peek(bucket: str, key: str, limit: int, window_seconds: int = 60) -> Decision:
    """Whether one more request of ``key`` in ``bucket`` would be allowed now, without counting it.

    One point read: a concurrent :func:`hit` may still take the last slot, so callers that must
    not exceed ``limit`` count with :func:`hit` afterwards. Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    item_id, _, retry_after = _current(bucket, key, window_seconds)
    item = cosmos.read_item(cosmos.RATE_LIMITS, item_id, item_id)
    count = int(item["count"]) if item is not None else 0
    return Decision(count < limit, count, retry_after)


def refuse(decision: Decision, limit: int, detail: str, **log_fields: Any) -> None:
    """When ``decision`` (from :func:`hit` or :func:`peek`) is not allowed: log a ``rate_limited``
    security event with ``limit``, ``retry_after`` and ``log_fields`` (no secrets), and raise
    :class:`~shared_code.platform.errors.TooManyRequests` ``rate_limited`` (429) with ``Retry-After`` in
    seconds (RFC 9110 §10.2.3) and ``detail`` as its explanation. Does nothing when allowed.
    """
    if decision.allowed:
        return
    security_event("rate_limited", level=logging.WARNING, limit=limit, retry_after=decision.retry_after, **log_fields)
    raise TooManyRequests("rate_limited", detail, headers={"Retry-After": str(decision.retry_after)})


def enforce(bucket: str, key: str, limit: int, window_seconds: int, detail: str, **log_fields: Any) -> Decision:
    """:func:`hit`, then :func:`refuse` when over ``limit``: counts the request or raises
    :class:`~shared_code.platform.errors.TooManyRequests` (429 with ``Retry-After``), logging the refusal."""
    decision = hit(bucket, key, limit, window_seconds)
    refuse(decision, limit, detail, **log_fields)
    return decision
