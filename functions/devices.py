"""Device API (seed 000): register, challenge, attest, upload, list files, Play Integrity verify, show.

Handlers only parse, call :mod:`shared_code`, and map the result to a JSON response.
"""

import azure.functions as func

from shared_code.devices import challenges, files, registry
from shared_code.devices.integrity import decode, verdicts
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import DevicePublicKey, UnusableKey, b64decode_strict, load_device_public_key
from shared_code.platform.errors import BadRequest
from shared_code.platform.http import (
    handle_errors,
    json_response,
    parse_int_param,
    read_json_object,
    read_multipart,
    require_string,
)
from shared_code.platform.timeutil import to_iso

devices_bp = func.Blueprint()

MAX_KEY_PEM_CHARS = 16 * 1024


def _device(req: func.HttpRequest) -> dict:
    return registry.authenticate(req.headers.get("deviceid"), req.headers.get("deviceToken"))


def _public_key(pem: str) -> DevicePublicKey:
    try:
        return load_device_public_key(pem)
    except UnusableKey as exc:
        raise BadRequest("unusable_key", str(exc)) from None


@devices_bp.route(route="register-device", methods=["POST"])
@handle_errors
def register_device(req: func.HttpRequest) -> func.HttpResponse:
    """POST /register-device {deviceid, deviceToken} → 201 / 400 / 409."""
    body = read_json_object(req)
    deviceid = require_string(body, "deviceid", pattern=registry.DEVICE_ID_PATTERN, max_length=128)
    token = require_string(body, "deviceToken", pattern=registry.DEVICE_TOKEN_PATTERN,
                           min_length=registry.MIN_TOKEN_LENGTH, max_length=registry.MAX_TOKEN_LENGTH)
    registry.register_device(deviceid, token)
    return json_response(201, "device_registered", deviceid=deviceid)


@devices_bp.route(route="api/challenge", methods=["GET"])
@handle_errors
def get_challenge(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/challenge (device headers) → 200 {challenge, expires_at} / 401 / 403."""
    device = _device(req)
    challenge, expires_at = challenges.issue_challenge(device["id"])
    return json_response(200, "challenge_issued", challenge=challenge, expires_at=to_iso(expires_at))


@devices_bp.route(route="attest-device", methods=["POST"])
@handle_errors
def attest_device(req: func.HttpRequest) -> func.HttpResponse:
    """POST /attest-device {public_key, challenge, signature} → 200 / 400 / 401 / 403 / 409."""
    device = _device(req)
    body = read_json_object(req)
    key = _public_key(require_string(body, "public_key", max_length=MAX_KEY_PEM_CHARS, error="unusable_key"))
    challenge = require_string(body, "challenge", max_length=256, error="invalid_field")
    try:
        signature = b64decode_strict(require_string(body, "signature", max_length=4096))
    except ValueError:
        raise BadRequest("invalid_signature_encoding", "signature must be base64") from None
    attested = registry.attest_device(device, key, challenge, signature)
    return json_response(200, "device_attested", deviceid=attested["id"], key_type=attested["key_type"])


@devices_bp.route(route="upload-file", methods=["POST"])
@handle_errors
def upload_file(req: func.HttpRequest) -> func.HttpResponse:
    """POST /upload-file multipart {challenge, signed_challenge, public_key?, file} → 200 / 400 / 401 / 403 / 413."""
    device = _device(req)
    fields, parts = read_multipart(req, get_settings().max_upload_bytes)
    part = parts.get("file")
    if part is None:
        raise BadRequest("missing_fields", "'file' part is required")
    challenge = require_string(fields, "challenge", max_length=256, error="invalid_field")
    signature = require_string(fields, "signed_challenge", max_length=8192)
    incoming = files.IncomingFile(part.stream, part.filename or "", part.mimetype)
    record = files.store_upload(device, incoming, challenge, signature, fields.get("public_key") or None)
    return json_response(
        200, "file_uploaded",
        file_id=record["id"], blob_name=record["blob_name"], sha256=record["sha256"], size=record["size"],
    )


@devices_bp.route(route="api/files", methods=["GET"])
@handle_errors
def list_files(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/files?page_size&continuation (device headers) → 200 the device's files, newest first."""
    device = _device(req)
    page_size = parse_int_param(req.params.get("page_size"), "page_size", get_settings().files_page_size, 1, 200)
    page, continuation = files.list_files(device["id"], page_size, req.params.get("continuation"))
    return json_response(200, "files_listed", files=page, continuation=continuation)


@devices_bp.route(route="verify", methods=["POST"])
@handle_errors
def verify_integrity(req: func.HttpRequest) -> func.HttpResponse:
    """POST /verify {token, request_hash?} (device headers) → 200 {valid, verdict, failed_checks} / 400 / 401 / 403 / 503."""
    device = _device(req)
    body = read_json_object(req)
    token = require_string(body, "token", pattern=decode.TOKEN_PATTERN,
                           max_length=decode.MAX_TOKEN_CHARS, error="invalid_integrity_token")
    request_hash = None
    if body.get("request_hash") is not None:
        request_hash = require_string(body, "request_hash", max_length=512)
    result = verdicts.verify_token(device, token, request_hash)
    return json_response(200, "integrity_verified" if result["valid"] else "integrity_failed", **result)


@devices_bp.route(route="api/device", methods=["GET"])
@handle_errors
def get_device(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/device (device headers) → 200 the device's own record (never its token hash) / 401 / 403."""
    return json_response(200, "device", device=registry.public_view(_device(req)))
