"""KMS API (seed 002 "KMS server"): per-file RSA key pairs, grants and revocation; KEK rotation:
the rewrap timer and the operators' status.

Every user call needs a live session in the ``sid`` header (403 ``invalid_session``); the status
needs a function key in Azure. Handlers only parse, call :mod:`shared_code.filestore.kms` /
:mod:`shared_code.filestore.kek_rotation`, and map the result to a JSON response.
"""

import base64
import logging

import azure.functions as func

from shared_code.accounts.sessions import session_email
from shared_code.filestore import kek_rotation, key_service, kms, quota
from shared_code.filestore.key_versions import parse_version
from shared_code.platform.client_address import caller_label
from shared_code.platform.errors import ServiceUnavailable
from shared_code.platform.http import handle_errors, json_response, read_json_object, require_string

kms_bp = func.Blueprint()
log = logging.getLogger("trustgate.kms")


def _file_name(body: dict) -> str:
    return kms.validate_file_name(body.get("file_name"))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _access_change(req: func.HttpRequest) -> dict:
    """The arguments of :func:`kms.grant` / :func:`kms.revoke` from a grant or revoke request: the
    caller's email, the file name, the friend's email as sent, the caller's address label."""
    email = session_email(req)
    body = read_json_object(req)
    return {"owner": email, "file_name": _file_name(body), "client_address": caller_label(req.headers),
            "friend_email": require_string(body, "friend_email", max_length=320, error="invalid_email")}


@kms_bp.route(route="get_public_key", methods=["POST"])
@handle_errors
def get_public_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /get_public_key {file_name} → 200 {kms_public_key} / 400 file_exists / 403 / 429 (KMS_KEYS_PER_HOUR)."""
    email = session_email(req)
    file_name = _file_name(read_json_object(req))
    quota.admit_key_creation(email)
    public_pem = kms.create_key(email, file_name, client_address=caller_label(req.headers))
    return json_response(200, "public_key_saved", kms_public_key=_b64(public_pem.encode("ascii")))


@kms_bp.route(route="get_private_key", methods=["POST"])
@handle_errors
def get_private_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /get_private_key {file_name, key_version?} → 200 {kms_private_key, key_version} / 400 access_denied /
    403 invalid_session / export_disabled (KMS_EXPORT_PRIVATE_KEYS=false)."""
    email = session_email(req)
    body = read_json_object(req)
    pkcs8_pem, version = key_service.export_private_key(email, _file_name(body), parse_version(body.get("key_version")),
                                                        client_address=caller_label(req.headers))
    return json_response(200, "private_key_retrieved", kms_private_key=_b64(pkcs8_pem), key_version=version)


@kms_bp.route(route="unwrap_key", methods=["POST"])
@handle_errors
def unwrap_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /unwrap_key {file_name, encrypted_aes_key, key_version?} → 200 {aes_key, key_version} /
    400 access_denied / invalid_wrapped_key / 403 / 429."""
    email = session_email(req)
    body = read_json_object(req)
    data_key, version = key_service.unwrap(email, _file_name(body), body.get("encrypted_aes_key"),
                                           parse_version(body.get("key_version")), client_address=caller_label(req.headers))
    return json_response(200, "key_unwrapped", aes_key=_b64(data_key), key_version=version)


@kms_bp.route(route="rotate_file_key", methods=["POST"])
@handle_errors
def rotate_file_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /rotate_file_key {file_name, from_version?} → 200 {key_version, kms_public_key} / 400 / 403 / 409."""
    email = session_email(req)
    body = read_json_object(req)
    version, public_pem = key_service.rotate(email, _file_name(body), parse_version(body.get("from_version"), "from_version"),
                                             client_address=caller_label(req.headers))
    return json_response(200, "file_key_rotated", key_version=version, kms_public_key=_b64(public_pem.encode("ascii")))


@kms_bp.route(route="retire_file_key", methods=["POST"])
@handle_errors
def retire_file_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /retire_file_key {file_name, min_version} → 200 {retired} / 400 / 403 / 409 envelope_uses_older_version."""
    email = session_email(req)
    body = read_json_object(req)
    min_version = parse_version(body.get("min_version"), "min_version", required=True)
    retired = key_service.retire(email, _file_name(body), min_version, client_address=caller_label(req.headers))
    return json_response(200, "file_key_versions_retired", retired=retired, min_version=min_version)


@kms_bp.route(route="grant_access", methods=["POST"])
@handle_errors
def grant_access(req: func.HttpRequest) -> func.HttpResponse:
    """POST /grant_access {file_name, friend_email} → 200 / 400 permission_denied / 403 / 404 user_not_found."""
    kms.grant(**_access_change(req))
    return json_response(200, "grant_success")


@kms_bp.route(route="revoke_access", methods=["POST"])
@handle_errors
def revoke_access(req: func.HttpRequest) -> func.HttpResponse:
    """POST /revoke_access {file_name, friend_email} → 200 (effective at once) / 400 permission_denied / 403."""
    kms.revoke(**_access_change(req))
    return json_response(200, "revoke_success")


# Not "admin/kms/status": the Functions host reserves routes starting with "admin" for its own
# admin API and refuses to load a function that claims one (routePrefix is "" here).
@kms_bp.route(route="kms/status", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
@handle_errors
def kms_status(req: func.HttpRequest) -> func.HttpResponse:
    """GET /kms/status → 200 {active_kek, keks: [{kid, active, keys, retirable}], unknown_kek_keys, unknown_keks}."""
    return json_response(200, "kms_status", **kek_rotation.status())


@kms_bp.timer_trigger(arg_name="timer", schedule="%KMS_REWRAP_SCHEDULE%", run_on_startup=False)
def kms_rewrap_timer(timer: func.TimerRequest) -> None:
    """Rewrap file keys under retired KEKs in bounded batches (:func:`kek_rotation.rewrap_run`).

    Raises ``RuntimeError`` when storage failed mid-run or keys did not unwrap, so the host
    records the run as failed; the next run continues where this one stopped.
    """
    try:
        report = kek_rotation.rewrap_run()
    except ServiceUnavailable as error:
        raise RuntimeError(f"kek rewrap stopped by a storage outage ({error.detail}); the next run continues") from error
    log.info("kek rewrap: %d rewrapped, %d raced, %d failed in %d batch(es)%s", report.rewrapped, report.raced,
             len(report.failed), report.batches, " (more remain)" if report.more else "")
    if report.failed:
        raise RuntimeError(f"kek rewrap: {len(report.failed)} key(s) do not unwrap under their KEK: {', '.join(report.failed[:10])}")
