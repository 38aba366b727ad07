"""Google's Android attestation status list (revocation), cached with a staleness budget.

``GET {ANDROID_ATTESTATION_STATUS_URL}`` (default ``https://android.googleapis.com/attestation/status``,
developer.android.com/privacy-and-security/security-key-attestation#certificate_status) answers::

    {"entries": {"<serial, lower-case hex>": {"status": "REVOKED" | "SUSPENDED", "reason": "..."}, ...}}

Both statuses refuse a chain. Each process keeps the last list it fetched: it is used as is for
:data:`REFRESH_SECONDS` (at most half the budget), then refetched on the next use; if the refetch
fails the old list still serves until it is ``ANDROID_ATTESTATION_STATUS_MAX_AGE_SECONDS`` old
(default 86400). Beyond that, fail closed: :class:`~shared_code.platform.errors.ServiceUnavailable`
``revocation_status_unavailable`` (503), never a verdict without a list. A list that does not
parse is treated as unavailable. The timer in :mod:`~shared_code.devices.attestation.sweep`
refreshes it and re-checks stored chains.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import requests

from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.timeutil import utc_now

log = logging.getLogger("trustgate.attestation")

REFRESH_SECONDS = 3600
REFUSED_STATUSES = frozenset({"REVOKED", "SUSPENDED"})
MAX_LIST_BYTES = 32 * 1024 * 1024


class StatusListUnavailable(Exception):
    """The status list could not be fetched or parsed (the message says why)."""


@dataclass(frozen=True)
class StatusList:
    """The refused serials (lower-case hex) and when the list was fetched (aware UTC)."""

    refused: frozenset[str]
    fetched_at: datetime


def parse_status_list(body: bytes) -> frozenset[str]:
    """The serials of ``body`` (the JSON document above) whose status is REVOKED or SUSPENDED.

    Raises :class:`StatusListUnavailable` for anything that is not that document (fail closed).
    """
    try:
        entries = json.loads(body)["entries"]
        if not isinstance(entries, dict):
            raise TypeError("entries is not an object")
        return frozenset(serial.lower() for serial, entry in entries.items()
                         if not isinstance(entry, dict) or entry.get("status") in REFUSED_STATUSES)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise StatusListUnavailable(f"the status list does not parse ({exc.__class__.__name__})") from None


def fetch_status_list(url: str, timeout: float) -> frozenset[str]:
    """GET and parse the list at ``url``; raises :class:`StatusListUnavailable` on any failure."""
    try:
        response = requests.get(url, timeout=(timeout, timeout), headers={"Accept": "application/json"})
    except requests.RequestException as exc:
        raise StatusListUnavailable(f"{url} unreachable ({exc.__class__.__name__})") from None
    if response.status_code != 200:
        raise StatusListUnavailable(f"{url} answered {response.status_code}")
    if len(response.content) > MAX_LIST_BYTES:
        raise StatusListUnavailable(f"{url} answered more than {MAX_LIST_BYTES} bytes")
    return parse_status_list(response.content)


class StatusCache:
    """One process's copy of the list. ``fetch()`` returns the refused serials or raises
    :class:`StatusListUnavailable`; ``max_age_seconds`` is the staleness budget."""

    def __init__(self, fetch: Callable[[], frozenset[str]], max_age_seconds: int) -> None:
        self._fetch = fetch
        self.max_age = timedelta(seconds=max_age_seconds)
        self.refresh_after = timedelta(seconds=min(REFRESH_SECONDS, max_age_seconds // 2))
        self._lock = threading.Lock()
        self._list: StatusList | None = None

    def current(self, now: datetime) -> StatusList:
        """The list to verify with at ``now`` (refetched when due). Raises
        :class:`~shared_code.platform.errors.ServiceUnavailable` ``revocation_status_unavailable``
        when no list younger than the budget can be had."""
        with self._lock:
            cached = self._list
            if cached is not None and now - cached.fetched_at <= self.refresh_after:
                return cached
            try:
                return self._refresh(now)
            except StatusListUnavailable as exc:
                if cached is not None and now - cached.fetched_at <= self.max_age:
                    log.warning("attestation status list refresh failed, using the copy of %s: %s", cached.fetched_at, exc)
                    return cached
                log.error("attestation status list unavailable: %s", exc)
                raise ServiceUnavailable("revocation_status_unavailable",
                                         "the attestation revocation list cannot be fetched; try again later") from None

    def refresh(self, now: datetime) -> StatusList:
        """Fetch now, whatever the age of the copy; raises :class:`StatusListUnavailable`."""
        with self._lock:
            return self._refresh(now)

    def _refresh(self, now: datetime) -> StatusList:
        fresh = StatusList(self._fetch(), now)
        self._list = fresh
        log.info("attestation status list fetched: %d refused serial(s)", len(fresh.refused))
        return fresh


_caches: dict[tuple[str, int, int], StatusCache] = {}
_caches_lock = threading.Lock()


def default_cache() -> StatusCache:
    """The process-wide cache for the configured URL, budget and timeout."""
    settings = get_settings()
    key = (settings.android_attestation_status_url, settings.android_attestation_status_max_age_seconds,
           settings.android_attestation_status_timeout_seconds)
    with _caches_lock:
        if key not in _caches:
            url, max_age, timeout = key
            _caches[key] = StatusCache(lambda: fetch_status_list(url, timeout), max_age)
        return _caches[key]


def current_refused(now: datetime | None = None) -> frozenset[str]:
    """The refused serials to verify with now (see :meth:`StatusCache.current` for the 503)."""
    return default_cache().current(now or utc_now()).refused


def reset() -> None:
    """Forget every cached list (tests)."""
    with _caches_lock:
        _caches.clear()
