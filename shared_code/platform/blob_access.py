"""Time-limited read URLs for single blobs (SAS), signed the way the connection allows.

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
    client = blobs.get_service_client()
    now = utc_now()
    expiry = now + timedelta(seconds=ttl_seconds)
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
        permission=BlobSasPermissions(read=True),
        start=now - _CLOCK_SKEW,
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
