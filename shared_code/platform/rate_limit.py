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

**Once per window** (:func:`once_per_window`): an action run at most once per key and window
across instances (an audit entry for a refused burst, not one per refused request). A marker
item ``<bucket>_once-<window index>-<sha256(key)[:32]>`` is created *after* the action succeeded,
so a failed action is tried again by the next caller; each process also remembers the windows it
saw marked, so the refusals after the first cost no storage call at all.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import sha256_hex
from shared_code.platform.errors import ServiceUnavailable, TooManyRequests
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

MAX_ATTEMPTS = 3
# Leases of windows that have ended are dropped once the table holds this many entries.
MAX_LEASES = 10_000

log = logging.getLogger("trustgate.rate_limit")


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
    """Forget this process's leases and the windows :func:`once_per_window` saw marked (tests)."""
    with _leases_lock:
        _leases.clear()
        _marked.clear()


_marked: dict[str, datetime] = {}  # once_per_window marker ids this process saw -> their window end


def _seen_marked(item_id: str) -> bool:
    with _leases_lock:
        return item_id in _marked


def _remember_marked(item_id: str, ends_at: datetime) -> None:
    with _leases_lock:
        if len(_marked) >= MAX_LEASES:
            now = utc_now()
            for stale in [name for name, end in _marked.items() if end <= now]:
                del _marked[stale]
        _marked[item_id] = ends_at


def once_per_window(bucket: str, key: str, window_seconds: int, action: Callable[[], None]) -> bool:
    """Run ``action`` unless it already ran for ``key`` in ``bucket`` in the current window of
    ``window_seconds`` (on any instance); returns whether it ran here.

    Costs no storage call once this process saw the window marked; otherwise one point read of
    the marker, and after the action one create of it (expiring with the window). An exception
    of ``action`` propagates and leaves the window unmarked, so the next caller runs it again: at
    least once per window, and once unless two instances (or threads) reach the first at the same
    moment. A marker create that fails is only logged: the action's effect stands, and another
    instance may repeat it. Raises :class:`~shared_code.platform.errors.ServiceUnavailable` when
    the marker cannot be read.
    """
    item_id, ends_at, retry_after = _current(f"{bucket}_once", key, window_seconds)
    if _seen_marked(item_id):
        return False
    if cosmos.read_item(cosmos.RATE_LIMITS, item_id, item_id) is not None:
        _remember_marked(item_id, ends_at)
        return False
    action()
    try:
        cosmos.create_item(cosmos.RATE_LIMITS, {"id": item_id, "bucket": f"{bucket}_once", "count": 1,
                                                "expires_at": to_iso(ends_at), "ttl": retry_after + 1})
    except cosmos.AlreadyExists:
        pass  # another instance ran it at the same moment
    except ServiceUnavailable as error:
        log.warning("once-per-window marker %s not stored (%s); the action may run again", item_id, error.detail)
    _remember_marked(item_id, ends_at)
    return True


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
            on_refusal: Callable[[], None] | None = None, **log_fields: Any) -> Decision:
    """:func:`hit` (``lease`` as there), then :func:`refuse` when over ``limit``: counts the request
    or raises :class:`~shared_code.platform.errors.TooManyRequests` (429 with ``Retry-After``),
    logging the refusal. ``on_refusal`` (e.g. an audit entry) runs before the 429, once per key
    and window (:func:`once_per_window`); its exception (a 503) replaces the 429."""
    decision = hit(bucket, key, limit, window_seconds, lease=lease)
    if not decision.allowed and on_refusal is not None:
        once_per_window(bucket, key, window_seconds, on_refusal)
    refuse(decision, limit, detail, **log_fields)
    return decision
