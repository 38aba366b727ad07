"""Operator API: the lifecycle of devices and accounts.

Suspend, resume and revoke a device (with the revocation's cascade and its ``?dry_run=true``),
revoke every device whose stored attestation chain holds a certificate, list and filter devices,
suspend and resume users. Every route needs a function key in Azure (``AuthLevel.FUNCTION``:
``x-functions-key`` header or ``code`` parameter); devhost, like Core Tools, does not check keys.

The routes start with ``operator/``: the Functions host reserves ``admin/`` for its own admin API
and refuses a function route there ("The specified route conflicts with one or more built in
routes"). Handlers only parse, call :mod:`shared_code.devices.lifecycle` /
:mod:`shared_code.devices.inventory` / :mod:`shared_code.devices.attestation.sweep` /
:mod:`shared_code.accounts.suspension`, and map the result to a JSON response.
"""

import azure.functions as func

from shared_code.accounts import suspension
from shared_code.devices import inventory, lifecycle
from shared_code.platform.errors import BadRequest, ServiceUnavailable
from shared_code.platform.http import handle_errors, json_response, parse_int_param, read_json_object, require_string

operator_bp = func.Blueprint()

FUNCTION = func.AuthLevel.FUNCTION


def _reason(body: dict, required: bool = True) -> str | None:
    if not required and body.get("reason") in (None, ""):
        return None
    return require_string(body, "reason", max_length=lifecycle.MAX_REASON_CHARS)


def _optional_body(req: func.HttpRequest) -> dict:
    return read_json_object(req) if req.get_body() else {}


def _dry_run(req: func.HttpRequest) -> bool:
    value = req.params.get("dry_run")
    if value in (None, "false"):
        return False
    if value == "true":
        return True
    raise BadRequest("invalid_dry_run", "dry_run must be true or false")


def _deviceid(req: func.HttpRequest) -> str:
    return req.route_params.get("deviceid", "")


@operator_bp.route(route="operator/devices/{deviceid}/suspend", methods=["POST"], auth_level=FUNCTION)
@handle_errors
def operator_suspend_device(req: func.HttpRequest) -> func.HttpResponse:
    """POST /operator/devices/{deviceid}/suspend {reason} → 200 {device, changed} / 400 / 404 / 409 device_revoked."""
    device, changed = lifecycle.suspend_device(_deviceid(req), _reason(read_json_object(req)))
    return json_response(200, "device_suspended", device=lifecycle.operator_view(device), changed=changed)


@operator_bp.route(route="operator/devices/{deviceid}/resume", methods=["POST"], auth_level=FUNCTION)
@handle_errors
def operator_resume_device(req: func.HttpRequest) -> func.HttpResponse:
    """POST /operator/devices/{deviceid}/resume {reason?} → 200 {device, changed, uploads_requeued} / 404 / 409."""
    reason = _reason(_optional_body(req), required=False) or "resumed by an operator"
    device, changed, requeued = lifecycle.resume_device(_deviceid(req), reason)
    return json_response(200, "device_resumed", device=lifecycle.operator_view(device), changed=changed,
                         uploads_requeued=requeued)


@operator_bp.route(route="operator/devices/{deviceid}/revoke", methods=["POST"], auth_level=FUNCTION)
@handle_errors
def operator_revoke_device(req: func.HttpRequest) -> func.HttpResponse:
    """POST /operator/devices/{deviceid}/revoke?dry_run {reason} → 200 {device, summary, already_revoked, dry_run} / 400 / 404 / 503."""
    dry_run = _dry_run(req)
    outcome = lifecycle.revoke_device(_deviceid(req), _reason(read_json_object(req)), dry_run=dry_run)
    return json_response(200, "revocation_dry_run" if dry_run else "device_revoked",
                         device=lifecycle.operator_view(outcome.device), summary=outcome.summary,
                         already_revoked=outcome.already_revoked, dry_run=dry_run)


@operator_bp.route(route="operator/attestation/revoke-intermediate", methods=["POST"], auth_level=FUNCTION)
@handle_errors
def operator_revoke_intermediate(req: func.HttpRequest) -> func.HttpResponse:
    """POST /operator/attestation/revoke-intermediate?dry_run {serial, action?, reason?} → 200 {serial,
    action, summary, devices, failed} / 400 / 503 (some devices could not be updated: retry)."""
    from shared_code.devices.attestation import sweep  # cryptography.x509, only for this route

    dry_run = _dry_run(req)
    body = read_json_object(req)
    serial = require_string(body, "serial", max_length=128, error="invalid_serial")
    action = body.get("action")
    if action is not None and action not in sweep.ACTIONS:
        raise BadRequest("invalid_field", "action must be downgrade or revoke")
    report = sweep.revoke_certificate(serial, action, dry_run=dry_run, reason=_reason(body, required=False))
    fields = {"serial": sweep.normalize_serial(serial), "action": report.action, "dry_run": dry_run,
              "summary": report.summary(), "devices": report.matched[:sweep.MAX_LISTED],
              "devices_truncated": len(report.matched) > sweep.MAX_LISTED, "failed": report.failed[:sweep.MAX_LISTED]}
    if report.failed:
        raise ServiceUnavailable(detail=f"{len(report.failed)} device(s) could not be updated; retry to complete",
                                 fields=fields)
    return json_response(200, "revocation_dry_run" if dry_run else "certificate_revoked", **fields)


@operator_bp.route(route="operator/devices", methods=["GET"], auth_level=FUNCTION)
@handle_errors
def operator_list_devices(req: func.HttpRequest) -> func.HttpResponse:
    """GET /operator/devices?trust_level&status&page_size&continuation → 200 {devices, continuation} / 400."""
    page_size = parse_int_param(req.params.get("page_size"), "page_size", inventory.DEFAULT_PAGE_SIZE, 1,
                                inventory.MAX_PAGE_SIZE)
    devices, continuation = inventory.list_devices(req.params.get("trust_level"), req.params.get("status"), page_size,
                                                   req.params.get("continuation"))
    return json_response(200, "devices_listed", devices=devices, continuation=continuation)


@operator_bp.route(route="operator/users/{email}/suspend", methods=["POST"], auth_level=FUNCTION)
@handle_errors
def operator_suspend_user(req: func.HttpRequest) -> func.HttpResponse:
    """POST /operator/users/{email}/suspend {reason} → 200 {email, changed} / 400 / 404 user_not_found / 409."""
    email, changed = suspension.suspend_user(req.route_params.get("email", ""), _reason(read_json_object(req)))
    return json_response(200, "user_suspended", email=email, changed=changed)


@operator_bp.route(route="operator/users/{email}/resume", methods=["POST"], auth_level=FUNCTION)
@handle_errors
def operator_resume_user(req: func.HttpRequest) -> func.HttpResponse:
    """POST /operator/users/{email}/resume {reason?} → 200 {email, changed} / 400 / 404 / 409."""
    reason = _reason(_optional_body(req), required=False) or "resumed by an operator"
    email, changed = suspension.resume_user(req.route_params.get("email", ""), reason)
    return json_response(200, "user_resumed", email=email, changed=changed)
