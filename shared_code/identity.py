"""The one Microsoft Entra ID credential of the process, for keyless access in Azure."""

from __future__ import annotations

import functools

from azure.identity import DefaultAzureCredential

from shared_code.config import get_settings


@functools.lru_cache(maxsize=1)
def get_credential() -> DefaultAzureCredential:
    """A cached :class:`DefaultAzureCredential`.

    In Azure it resolves to the app's user-assigned managed identity when ``AZURE_CLIENT_ID`` is
    set; on a developer machine to the Azure CLI / azd login.
    """
    client_id = get_settings().azure_client_id or None
    return DefaultAzureCredential(managed_identity_client_id=client_id)
