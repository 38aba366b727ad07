"""Blob trigger: record each device upload's metadata and verify its digest.

Event Grid source, as Flex Consumption requires (the devhost polls Azurite instead).
"""

import logging

import azure.functions as func

from shared_code.devices.files import record_uploaded_blob

uploads_bp = func.Blueprint()
log = logging.getLogger("trustgate.uploads")


@uploads_bp.blob_trigger(
    arg_name="blob",
    path="%UPLOADS_CONTAINER%/{name}",
    connection="STORAGE",
    source=func.BlobSource.EVENT_GRID,
)
def record_upload(blob: func.InputStream) -> None:
    """For a new or changed upload blob: stream it, recompute SHA-256, upsert its file record
    with status ``verified`` or ``digest_mismatch`` (idempotent on the blob name)."""
    _, _, name = (blob.name or "").partition("/")
    properties = blob.blob_properties or {}
    content_type = properties.get("ContentType") or properties.get("content_type")
    record = record_uploaded_blob(name, blob, dict(blob.metadata or {}), content_type)
    log.info("upload recorded: %s status=%s", name, record["status"])
