"""Blob Storage access: one lazily created service client and error translation.

Connects with the ``STORAGE`` connection string when set (Azurite, key auth) and otherwise with
``STORAGE__blobServiceUri`` and the process credential (managed identity in Azure).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Iterator

from azure.core.exceptions import AzureError
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry

from shared_code.platform.config import ConfigError, get_settings
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.identity import get_credential

log = logging.getLogger("trustgate.blobs")

_lock = threading.Lock()
_client: BlobServiceClient | None = None


def get_service_client() -> BlobServiceClient:
    """The process-wide :class:`BlobServiceClient`, created on first use.

    Raises :class:`ConfigError` when neither ``STORAGE`` nor ``STORAGE__blobServiceUri`` is set.
    """
    global _client
    with _lock:
        if _client is None:
            settings = get_settings()
            options = {
                # Per socket operation: STORAGE_TIMEOUT_SECONDS without a byte from the service is
                # a fault, as for Cosmos, so a stalled service answers 503 within seconds.
                "connection_timeout": settings.storage_timeout_seconds,
                "read_timeout": settings.storage_timeout_seconds,
                # The SDK default backs off 15 s, then 60 s: far longer than an HTTP caller waits.
                # Two retries after ~2 s and ~4 s (initial_backoff + increment_base ** n for the
                # n-th retry, ±1 s) let a blip pass and an outage surface as a 503.
                "retry_policy": ExponentialRetry(initial_backoff=0, increment_base=2, retry_total=2, random_jitter_range=1),
                "max_single_put_size": 8 * 1024 * 1024,
                "max_block_size": 8 * 1024 * 1024,
            }
            if settings.storage_connection_string:
                _client = BlobServiceClient.from_connection_string(settings.storage_connection_string, **options)
            elif settings.storage_blob_url:
                _client = BlobServiceClient(settings.storage_blob_url, credential=get_credential(), **options)
            else:
                raise ConfigError("STORAGE", "set a connection string or STORAGE__blobServiceUri")
        return _client


def reset_client() -> None:
    """Drop the cached client (tests, after changing settings)."""
    global _client
    with _lock:
        _client = None


def container_client(name: str) -> ContainerClient:
    """A client for container ``name`` (no network call)."""
    return get_service_client().get_container_client(name)


@contextlib.contextmanager
def storage_errors(operation: str = "blob") -> Iterator[None]:
    """Translate any SDK failure inside the block into :class:`ServiceUnavailable` (HTTP 503)."""
    try:
        yield
    except AzureError as exc:
        log.warning("%s failed: %s", operation, exc.__class__.__name__)
        raise ServiceUnavailable(detail="file storage is unavailable, try again later") from exc
