"""Create the Cosmos database, its containers and the blob containers, idempotently.

Only the dev stack and the tests call this; in Azure the same resources come from Bicep and the
app never creates them at run time.
"""

from __future__ import annotations

from azure.core.exceptions import ResourceExistsError
from azure.cosmos import CosmosClient, PartitionKey

from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings


def blob_container_names() -> list[str]:
    """Every blob container the app uses, by its configured name."""
    settings = get_settings()
    return [settings.uploads_container, settings.encrypted_files_container, settings.messages_container,
            settings.audit_container, settings.upload_staging_container]


def provision() -> None:
    """Create what is missing of the database, the containers in :data:`shared_code.platform.cosmos.CONTAINERS`
    and the blob containers. Safe to run any number of times."""
    settings = get_settings()
    client: CosmosClient = cosmos.get_client()
    database = client.create_database_if_not_exists(settings.cosmos_database)
    for spec in cosmos.CONTAINERS:
        options = {"default_ttl": spec.default_ttl} if spec.default_ttl is not None else {}
        database.create_container_if_not_exists(spec.name, PartitionKey(path=spec.partition_key), **options)
    for name in blob_container_names():
        try:
            blobs.container_client(name).create_container()
        except ResourceExistsError:
            pass
