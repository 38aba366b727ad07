"""Time-limited URLs for single blobs (SAS): read URLs, and create+write URLs for direct uploads,
signed the way the connection allows.

- Connected with Microsoft Entra ID (Azure: the storage account has no shared keys): a **user
  delegation SAS**, signed with a user delegation key the app's identity obtains from the Blob
  service (needs ``generateUserDelegationKey``, included in Storage Blob Data Owner/Contributor).
  It can be revoked by revoking the key, and it is audited as the identity.
- Connected with an account key (Azurite, key-auth accounts): a **service SAS** for that one blob,
  signed with the key. Never an account-wide SAS.

Reference: https://learn.microsoft.com/rest/api/storageservices/create-user-delegation-sas
"""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

from azure.storage.blob import (
    BlobSasPermissions,
    BlobServiceClient,
    UserDelegationKey,
    generate_blob_sas,
)

from shared_code.platform import blobs
from shared_code.platform.timeutil import utc_now

MAX_TTL_SECONDS = 7 * 24 * 3600  # a user delegation key (and so its SAS) lives at most 7 days
_KEY_LIFETIME = timedelta(hours=6)
_CLOCK_SKEW = timedelta(minutes=5)

_lock = threading.Lock()
_delegation_key: UserDelegationKey | None = None
_delegation_key_expiry: datetime | None = None


def read_url(container: str, blob_name: str, ttl_seconds: int) -> str:
    """An HTTPS (Azurite: HTTP) URL that lets its holder read ``container/blob_name`` for
    ``ttl_seconds`` seconds (1..7 days), and nothing else.

    Raises ``ValueError`` for a TTL out of range and
    :class:`~shared_code.platform.errors.ServiceUnavailable` when the delegation key cannot be obtained.
    """
    if not 0 < ttl_seconds <= MAX_TTL_SECONDS:
        raise ValueError(f"ttl_seconds must be in 1..{MAX_TTL_SECONDS}")
    return _blob_sas_url(container, blob_name, BlobSasPermissions(read=True), utc_now() + timedelta(seconds=ttl_seconds))


def upload_url(container: str, blob_name: str, expires_at: datetime) -> str:
    """A URL that lets its holder create and write ``container/blob_name`` (Put Blob, Put Block,
    Put Block List) until ``expires_at`` (aware UTC, at most 7 days ahead), and nothing else: no
    read, list, delete or other blob name (``sr=b``, ``sp=cw``; HTTPS only when the service URL
    is HTTPS, i.e. in Azure). Signed as :func:`read_url` is: a user delegation SAS under Entra ID,
    a blob-scoped service SAS with an account key (Azurite). Never an account SAS.

    Permissions per the "Create a service SAS" / "Create a user delegation SAS" tables: ``c``
    writes a new blob, ``w`` writes content and the block list; reading the block list needs ``r``,
    so the app lists staged blocks for the device instead (see
    :mod:`shared_code.devices.direct_uploads`). Raises ``ValueError`` for an expiry in the past or
    beyond 7 days, :class:`~shared_code.platform.errors.ServiceUnavailable` when the delegation
    key cannot be obtained.
    """
    if not utc_now() < expires_at <= utc_now() + timedelta(seconds=MAX_TTL_SECONDS):
        raise ValueError("expires_at must be in the future and at most 7 days ahead")
    return _blob_sas_url(container, blob_name, BlobSasPermissions(create=True, write=True), expires_at)


def _blob_sas_url(container: str, blob_name: str, permission: BlobSasPermissions, expiry: datetime) -> str:
    """``container/blob_name``'s URL with a blob-scoped SAS for ``permission`` until ``expiry``."""
    client = blobs.get_service_client()
    signing: dict[str, object]
    account_key = getattr(client.credential, "account_key", None)
    if account_key:
        signing = {"account_key": account_key}
    else:
        signing = {"user_delegation_key": user_delegation_key(client, expiry)}
    token = generate_blob_sas(
        account_name=client.account_name,
        container_name=container,
        blob_name=blob_name,
        permission=permission,
        start=utc_now() - _CLOCK_SKEW,
        expiry=expiry,
        protocol="https" if client.url.startswith("https://") else None,
        **signing,
    )
    return f"{client.get_blob_client(container, blob_name).url}?{token}"


def user_delegation_key(client: BlobServiceClient, valid_until: datetime) -> UserDelegationKey:
    """A cached user delegation key valid at least until ``valid_until``; a new one (one call to
    the Blob service, lifetime ``max(6 h, needed)``, at most 7 days) when the cached one is not."""
    global _delegation_key, _delegation_key_expiry
    with _lock:
        if _delegation_key is None or _delegation_key_expiry is None or _delegation_key_expiry < valid_until:
            now = utc_now()
            expiry = min(max(now + _KEY_LIFETIME, valid_until), now + timedelta(seconds=MAX_TTL_SECONDS))
            with blobs.storage_errors("user delegation key"):
                _delegation_key = client.get_user_delegation_key(now - _CLOCK_SKEW, expiry)
            _delegation_key_expiry = expiry
        return _delegation_key


def reset() -> None:
    """Forget the cached delegation key (tests)."""
    global _delegation_key, _delegation_key_expiry
    with _lock:
        _delegation_key = _delegation_key_expiry = None
