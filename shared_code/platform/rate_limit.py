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

**Leased counting** (``lease > 1``, for high-rate limits such as the token endpoints): an
instance takes a block of ``lease`` units from the shared counter in one Patch (``incr`` by
``lease`` if ``count <= limit - lease``) and hands them out locally, so a busy client costs one
write per ``lease`` requests instead of one per request. Every unit handed out was counted in the
shared counter first, so across all instances a client never gets more than ``limit`` requests
in a window. The price is the other way round: up to ``lease - 1`` units an instance leased but
did not hand out are lost when the window ends, so a client whose requests spread over ``I``
instances is refused after at least ``limit - I × (lease - 1)`` requests. When fewer than
``lease`` units are left, the instance counts one by one (exact again near the limit), and once
the shared counter is full it refuses the rest of the window without asking again (a full
counter never empties within its window). The login and OTP throttles keep exact counting.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import TooManyRequests
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

MAX_ATTEMPTS = 3
# Leases of windows that have ended are dropped once the table holds this many entries.
MAX_LEASES = 10_000


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


def hit(bucket: str, key: str, limit: int, window_seconds: int = 60, *, lease: int = 1) -> Decision:
    """Count one request of ``key`` in ``bucket`` unless ``limit`` requests were already counted in
    the current window of ``window_seconds`` (windows are aligned to the Unix epoch).

    ``lease`` > 1 counts through a block of that many units leased from the shared counter (see
    the module docstring for the bound); with a lease, ``Decision.count`` is the shared counter
    at the last lease, an upper bound of the requests admitted so far. Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    item_id, ends_at, retry_after = _current(bucket, key, window_seconds)
    if lease <= 1 or limit <= 1:
        counted = _take(item_id, bucket, ends_at, retry_after, limit, 1)
        return Decision(counted is not None, limit if counted is None else counted, retry_after)
    return _leased(item_id, bucket, ends_at, retry_after, limit, min(lease, limit))


def _take(item_id: str, bucket: str, ends_at: datetime, retry_after: int, limit: int, units: int) -> int | None:
    """Add ``units`` to the shared counter if it stays within ``limit``; returns the new count, or
    ``None`` when that would exceed the limit. One Patch; the first request of a window creates
    the item (a lost create race just patches the winner's item)."""
    for _ in range(MAX_ATTEMPTS):
        try:
            item = cosmos.increment_if(cosmos.RATE_LIMITS, item_id, item_id, "count",
                                       f"from c where c.count <= {int(limit - units)}", amount=units)
        except cosmos.ConditionFailed:
            return None
        if item is not None:
            return int(item["count"])
        try:
            cosmos.create_item(cosmos.RATE_LIMITS, {
                "id": item_id, "bucket": bucket, "count": units,
                "expires_at": to_iso(ends_at), "ttl": retry_after + 1,
            })
            return units
        except cosmos.AlreadyExists:
            continue  # a concurrent request created it first: count on its item
    # Unreachable unless the item is deleted between our create and patch attempts repeatedly.
    return None


@dataclass
class _Lease:
    """This process's share of one shared counter (one key, one window)."""

    ends_at: datetime
    lock: threading.Lock = field(default_factory=threading.Lock)
    remaining: int = 0  # units taken from the shared counter and not yet handed out
    counted: int = 0  # the shared counter after the last take
    exact: bool = False  # fewer than a block was left: take one unit per request
    full: bool = False  # the shared counter reached the limit: refuse until the window ends


_leases: dict[str, _Lease] = {}
_leases_lock = threading.Lock()


def _lease_for(item_id: str, limit: int, ends_at: datetime) -> _Lease:
    name = f"{item_id}/{limit}"  # a changed limit starts a fresh lease
    with _leases_lock:
        current = _leases.get(name)
        if current is None:
            if len(_leases) >= MAX_LEASES:
                now = utc_now()
                for stale in [held_name for held_name, held in _leases.items() if held.ends_at <= now]:
                    del _leases[stale]
            current = _leases[name] = _Lease(ends_at)
        return current


def _leased(item_id: str, bucket: str, ends_at: datetime, retry_after: int, limit: int, units: int) -> Decision:
    held = _lease_for(item_id, limit, ends_at)
    with held.lock:  # one refill at a time per counter; the others wait and draw from it
        if held.remaining == 0 and not held.full:
            block = 1 if held.exact else units
            counted = _take(item_id, bucket, ends_at, retry_after, limit, block)
            if counted is None and block > 1:
                held.exact = True
                block, counted = 1, _take(item_id, bucket, ends_at, retry_after, limit, 1)
            if counted is None:
                held.full = True
            else:
                held.remaining, held.counted = block, counted
        if held.remaining == 0:
            return Decision(False, limit, retry_after)
        held.remaining -= 1
        return Decision(True, held.counted, retry_after)


def lease_units(limit: int) -> int:
    """The block size for a leased counter of ``limit`` per window: ``RATE_LIMIT_LEASE_UNITS``,
    but at most an eighth of the limit, so the units an instance can strand stay small against it."""
    return max(1, min(get_settings().rate_limit_lease_units, limit // 8))


def reset_leases() -> None:
    """Forget this process's leases (tests)."""
    with _leases_lock:
        _leases.clear()


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


def enforce(bucket: str, key: str, limit: int, window_seconds: int, detail: str, *, lease: int = 1,
            **log_fields: Any) -> Decision:
    """:func:`hit` (``lease`` as there), then :func:`refuse` when over ``limit``: counts the request
    or raises :class:`~shared_code.platform.errors.TooManyRequests` (429 with ``Retry-After``),
    logging the refusal."""
    decision = hit(bucket, key, limit, window_seconds, lease=lease)
    refuse(decision, limit, detail, **log_fields)
    return decision
