"""The one Microsoft Entra ID credential of the process, for keyless access in Azure."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

from shared_code.platform.config import get_settings

if TYPE_CHECKING:
    from azure.identity import DefaultAzureCredential


@functools.lru_cache(maxsize=1)
def get_credential() -> "DefaultAzureCredential":
    """A cached :class:`DefaultAzureCredential`.

    In Azure it resolves to the app's user-assigned managed identity when ``AZURE_CLIENT_ID`` is
    set; on a developer machine to the Azure CLI / azd login. ``azure.identity`` is imported here,
    on first use, because it costs ~70 ms of cold start and key-based (emulator) runs never need it.
    """
    from azure.identity import DefaultAzureCredential

    client_id = get_settings().azure_client_id or None
    return DefaultAzureCredential(managed_identity_client_id=client_id)
