"""Device API (seed 000): register, challenge, attest, upload, list files, Play Integrity verify, show;
key and token rotation; and the timer that refreshes the attestation status list and
re-checks stored chains.

Handlers only parse, call :mod:`shared_code`, and map the result to a JSON response.
"""

import logging

import azure.functions as func

from shared_code.devices import challenges, files, gates, registry
from shared_code.devices.attestation.results import ANDROID_KEY, APPLE_APPATTEST
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
log = logging.getLogger("trustgate.devices")

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
    """POST /attest-device {format?, challenge, ...evidence} → 200 / 400 / 401 / 403 / 409 / 503.

    ``format`` ``key`` (default): {public_key, signature}; ``android-key``: {certificate_chain};
    ``apple-appattest``: {key_id, attestation_object} (see shared_code.devices.attestation.enrollment).
    """
    device = _device(req)
    body = read_json_object(req)
    fmt = body.get("format", "key")
    if fmt in (ANDROID_KEY, APPLE_APPATTEST):
        # the verifier (cryptography.x509, asn1crypto, cbor2) is imported on first use, not at cold start
        from shared_code.devices.attestation import enrollment

        challenge = require_string(body, "challenge", max_length=256, error="invalid_field")
        attested, verification = enrollment.attest_hardware(device, enrollment.evidence_from_request(fmt, body), challenge)
        return json_response(200, "device_attested", deviceid=attested["id"], key_type=attested["key_type"],
                             trust_level=attested["trust_level"], attestation=attested["attestation"])
    if fmt != "key":
        raise BadRequest("unsupported_format", "format must be key, android-key or apple-appattest")
    key = _public_key(require_string(body, "public_key", max_length=MAX_KEY_PEM_CHARS, error="unusable_key"))
    challenge = require_string(body, "challenge", max_length=256, error="invalid_field")
    try:
        signature = b64decode_strict(require_string(body, "signature", max_length=4096))
    except ValueError:
        raise BadRequest("invalid_signature_encoding", "signature must be base64") from None
    attested = registry.attest_device(device, key, challenge, signature)
    return json_response(200, "device_attested", deviceid=attested["id"], key_type=attested["key_type"],
                         trust_level=registry.trust_level(attested), attestation=attested.get("attestation") or {"format": "key"})


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
    """POST /verify {token, challenge?} (device headers) → 200 {valid, verdict, failed_checks} / 400 / 401 / 403 / 503.

    ``challenge`` given: a standard request, whose requestHash the server derives from the device and
    the challenge; omitted: a classic request (nonce = a challenge).
    """
    device = _device(req)
    gates.require_device_trust(device)
    body = read_json_object(req)
    token = require_string(body, "token", pattern=decode.TOKEN_PATTERN,
                           max_length=decode.MAX_TOKEN_CHARS, error="invalid_integrity_token")
    if "request_hash" in body:
        raise BadRequest("invalid_field", "request_hash is not accepted: send the challenge; the server derives the requestHash")
    challenge = None
    if body.get("challenge") is not None:
        challenge = require_string(body, "challenge", max_length=256, error="invalid_field")
    result = verdicts.verify_token(device, token, challenge)
    return json_response(200, "integrity_verified" if result["valid"] else "integrity_failed", **result,
                         trust_level=registry.trust_level(device))


@devices_bp.route(route="api/device", methods=["GET"])
@handle_errors
def get_device(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/device (device headers) → 200 the device's own record (never its token hash) / 401 / 403."""
    return json_response(200, "device", device=registry.public_view(_device(req)))


@devices_bp.timer_trigger(arg_name="timer", schedule="%ANDROID_ATTESTATION_STATUS_SCHEDULE%", run_on_startup=False)
def refresh_attestation_status(timer: func.TimerRequest) -> None:
    """Fetch Google's attestation status list and re-check the stored chains of attested devices;
    a device whose chain now holds a REVOKED or SUSPENDED serial drops to ``trust_level: revoked``.

    Raises after logging when the list cannot be fetched or a device could not be updated, so the
    host records the run as failed (the next run tries again).
    """
    from shared_code.devices.attestation import status_list, sweep

    try:
        report = sweep.refresh_and_recheck()
    except status_list.StatusListUnavailable as exc:
        log.error("attestation status sweep: the status list could not be fetched (%s); nothing changed", exc)
        raise
    log.info("attestation status sweep: checked=%d revoked=%d", report.checked, len(report.revoked))
    if report.failed:
        raise RuntimeError(f"attestation status sweep incomplete: {report.failed}")


# device lifecycle: self-service key and token rotation ------------------------------

@devices_bp.route(route="rotate-device-key", methods=["POST"])
@handle_errors
def rotate_device_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /rotate-device-key {format?, challenge, signature_by_old_key, new_public_key +
    signature_by_new_key | hardware evidence} → 200 / 400 / 401 / 403 / 409 / 503."""
    from shared_code.devices import rotation  # brings the attestation verifier: imported on first use
    from shared_code.devices.attestation import enrollment

    device = _device(req)
    body = read_json_object(req)
    fmt = body.get("format", "key")
    challenge = require_string(body, "challenge", max_length=256, error="invalid_field")
    old_proof = require_string(body, "signature_by_old_key", max_length=8192)
    if fmt in (ANDROID_KEY, APPLE_APPATTEST):
        request = rotation.KeyRotation(challenge, old_proof, evidence=enrollment.evidence_from_request(fmt, body))
    elif fmt == "key":
        request = rotation.KeyRotation(
            challenge, old_proof,
            new_public_key=require_string(body, "new_public_key", max_length=MAX_KEY_PEM_CHARS, error="unusable_key"),
            signature_by_new_key=require_string(body, "signature_by_new_key", max_length=4096))
    else:
        raise BadRequest("unsupported_format", "format must be key, android-key or apple-appattest")
    stored = rotation.rotate_key(device, request)
    return json_response(200, "device_key_rotated", deviceid=stored["id"], key_type=stored["key_type"],
                         trust_level=stored["trust_level"], attestation=stored["attestation"],
                         key_rotations=len(stored.get("key_history") or ()))


@devices_bp.route(route="rotate-device-token", methods=["POST"])
@handle_errors
def rotate_device_token(req: func.HttpRequest) -> func.HttpResponse:
    """POST /rotate-device-token {new_device_token, challenge?, signature?} → 200 / 400 / 401 / 403 / 503."""
    from shared_code.devices import rotation

    device = _device(req)
    body = read_json_object(req)
    new_token = require_string(body, "new_device_token", pattern=registry.DEVICE_TOKEN_PATTERN,
                               min_length=registry.MIN_TOKEN_LENGTH, max_length=registry.MAX_TOKEN_LENGTH)
    challenge = signature = None
    if body.get("challenge") is not None or body.get("signature") is not None:
        challenge = require_string(body, "challenge", max_length=256, error="invalid_field")
        signature = require_string(body, "signature", max_length=8192)
    stored = rotation.rotate_token(device, new_token, challenge, signature)
    return json_response(200, "device_token_rotated", deviceid=stored["id"], token_rotated_at=stored["token_rotated_at"])
