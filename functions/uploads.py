"""Blob trigger: record each device upload's metadata and verify its digest.

Event Grid source, as Flex Consumption requires (the devhost polls Azurite instead). Bound as an
SDK ``BlobClient`` (azurefunctions-extensions-bindings-blob), so the host never buffers a blob:
the function streams it, and skips direct uploads, which the staging verifier already checked
and recorded before copying them here (their metadata carries ``upload_id``).
"""

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob_types
from azure.core import MatchConditions
from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

from shared_code.devices.files import record_uploaded_blob
from shared_code.platform import blobs

uploads_bp = func.Blueprint()
log = logging.getLogger("trustgate.uploads")


@uploads_bp.blob_trigger(
    arg_name="client",
    path="%UPLOADS_CONTAINER%/{name}",
    connection="STORAGE",
    source=func.BlobSource.EVENT_GRID,
)
def record_upload(client: blob_types.BlobClient) -> None:
    """For a new or changed upload blob: stream it, recompute SHA-256, upsert its file record
    with status ``verified`` or ``digest_mismatch`` (idempotent on the blob name)."""
    name = client.blob_name
    with blobs.storage_errors("uploaded blob"):
        try:
            properties = client.get_blob_properties()
            metadata = dict(properties.metadata or {})
            if "upload_id" in metadata:
                log.info("upload %s came through the direct path, verified before the copy", name)
                return
            stream = client.download_blob(etag=properties.etag, match_condition=MatchConditions.IfNotModified)
            record = record_uploaded_blob(name, stream, metadata, properties.content_settings.content_type)
        except (ResourceNotFoundError, ResourceModifiedError):
            log.info("upload %s was deleted or replaced before it was read; its new state has its own event", name)
            return
    log.info("upload recorded: %s status=%s", name, record["status"])
