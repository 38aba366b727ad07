"""Health probe of the backing stores."""

from __future__ import annotations

import time
from typing import Any, Callable

from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable


def _probe(check: Callable[[], object]) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        check()
        status = "up"
    except ServiceUnavailable:
        status = "down"
    return {"status": status, "latency_ms": round((time.perf_counter() - started) * 1000, 1)}


def _cosmos() -> None:
    with cosmos.storage_errors("health cosmos"):
        cosmos.get_client().get_database_client(get_settings().cosmos_database).read()


def _blob() -> None:
    with blobs.storage_errors("health blob"):
        blobs.container_client(get_settings().uploads_container).get_container_properties()


def check_health() -> dict[str, dict[str, Any]]:
    """Probe Cosmos DB (read the database) and Blob Storage (read the uploads container).

    Returns ``{"cosmos": {"status": "up"|"down", "latency_ms": float}, "blob": {...}}``.
    Raises :class:`~shared_code.platform.config.ConfigError` when the stores are not configured.
    """
    return {"cosmos": _probe(_cosmos), "blob": _probe(_blob)}
