"""Direct-to-blob uploads: grant, state, renew, and the staging blob trigger that
verifies what the device sent before anyone sees it.

Handlers only parse, call :mod:`shared_code.devices.direct_uploads` /
:mod:`shared_code.devices.upload_verifier`, and map the result to a JSON response.
"""

import logging

import azure.functions as func
import azurefunctions.extensions.bindings.blob as blob_types

from shared_code.devices import direct_uploads, registry, upload_verifier
from shared_code.platform.errors import BadRequest
from shared_code.platform.http import handle_errors, json_response, read_json_object, require_string
from shared_code.platform.timeutil import to_iso

direct_uploads_bp = func.Blueprint()
log = logging.getLogger("trustgate.direct_uploads")


def _device(req: func.HttpRequest) -> dict:
    return registry.authenticate(req.headers.get("deviceid"), req.headers.get("deviceToken"))


def _grant_request(body: dict) -> direct_uploads.GrantRequest:
    size = body.get("size")
    if size is None:
        raise BadRequest("missing_fields", "'size' is required")
    if isinstance(size, float) and size.is_integer():
        size = int(size)  # JSON has one number type: 1024.0 is the integer 1024 (RFC 8259 §6)
    if not isinstance(size, int) or isinstance(size, bool):
        raise BadRequest("invalid_field", "'size' must be an integer number of bytes")
    return direct_uploads.GrantRequest(
        file_name=require_string(body, "file_name", max_length=1024),
        size=size,
        sha256=require_string(body, "sha256", min_length=64, max_length=64),
        content_type=require_string(body, "content_type", max_length=255),
        challenge=require_string(body, "challenge", max_length=256, error="invalid_field"),
        signature=require_string(body, "signature", max_length=8192),
    )


@direct_uploads_bp.route(route="api/uploads", methods=["POST"])
@handle_errors
def create_upload(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/uploads {file_name, size, sha256, content_type, challenge, signature} → 201 /
    400 / 401 / 403 / 409 / 413 / 429 / 503."""
    device = _device(req)
    record, url, expiry = direct_uploads.create_grant(device, _grant_request(read_json_object(req)))
    view = direct_uploads.view(record)
    return json_response(201, "upload_granted", upload_url=url, expires_at=to_iso(expiry),
                         blob_name=record["blob_name"], **view)


@direct_uploads_bp.route(route="api/uploads/{upload_id}", methods=["GET"])
@handle_errors
def get_upload(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/uploads/{upload_id} (device headers) → 200 the grant's state / 401 / 403 / 404."""
    device = _device(req)
    return json_response(200, "upload", **direct_uploads.get_grant(device, req.route_params.get("upload_id", "")))


@direct_uploads_bp.route(route="api/uploads/{upload_id}/renew", methods=["POST"])
@handle_errors
def renew_upload(req: func.HttpRequest) -> func.HttpResponse:
    """POST /api/uploads/{upload_id}/renew (device headers) → 200 a new upload_url and the staged
    blocks / 401 / 403 / 404 / 409."""
    device = _device(req)
    upload_id = req.route_params.get("upload_id", "")
    return json_response(200, "upload_renewed", upload_id=upload_id, **direct_uploads.renew_grant(device, upload_id))


@direct_uploads_bp.blob_trigger(
    arg_name="client",
    path="%UPLOAD_STAGING_CONTAINER%/{name}",
    connection="STORAGE",
    source=func.BlobSource.EVENT_GRID,
)
def verify_staged_upload(client: blob_types.BlobClient) -> None:
    """For each committed staged blob: verify size and SHA-256 against its grant and, if both
    match, copy it into the uploads container and record the file ``verified``. Bound as an SDK
    BlobClient so neither the host nor this function ever holds the blob (up to
    MAX_DIRECT_UPLOAD_BYTES) in memory."""
    outcome = upload_verifier.verify_staged_blob(client.blob_name)
    log.info("staged upload %s: %s", client.blob_name, outcome)
