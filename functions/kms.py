"""KMS API (seed 002 "KMS server"): per-file RSA key pairs, grants and revocation.

Every call needs a live session in the ``sid`` header (403 ``invalid_session``). Handlers only
parse, call :mod:`shared_code.filestore.kms`, and map the result to a JSON response.
"""

import base64

import azure.functions as func

from shared_code.accounts.sessions import session_email
from shared_code.filestore import kms, quota
from shared_code.platform.http import handle_errors, json_response, read_json_object, require_string

kms_bp = func.Blueprint()


def _file_name(body: dict) -> str:
    return kms.validate_file_name(body.get("file_name"))


def _access_change(req: func.HttpRequest) -> tuple[str, str, str]:
    """(caller email, file name, friend email as sent) of a grant or revoke request."""
    email = session_email(req)
    body = read_json_object(req)
    return email, _file_name(body), require_string(body, "friend_email", max_length=320, error="invalid_email")


@kms_bp.route(route="get_public_key", methods=["POST"])
@handle_errors
def get_public_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /get_public_key {file_name} → 200 {kms_public_key} / 400 file_exists / 403 / 429 (KMS_KEYS_PER_HOUR)."""
    email = session_email(req)
    file_name = _file_name(read_json_object(req))
    quota.admit_key_creation(email)
    public_pem = kms.create_key(email, file_name)
    return json_response(200, "public_key_saved", kms_public_key=base64.b64encode(public_pem.encode("ascii")).decode("ascii"))


@kms_bp.route(route="get_private_key", methods=["POST"])
@handle_errors
def get_private_key(req: func.HttpRequest) -> func.HttpResponse:
    """POST /get_private_key {file_name} → 200 {kms_private_key} / 400 access_denied / 403."""
    email = session_email(req)
    pkcs8_pem = kms.private_key_pem(email, _file_name(read_json_object(req)))
    return json_response(200, "private_key_retrieved", kms_private_key=base64.b64encode(pkcs8_pem).decode("ascii"))


@kms_bp.route(route="grant_access", methods=["POST"])
@handle_errors
def grant_access(req: func.HttpRequest) -> func.HttpResponse:
    """POST /grant_access {file_name, friend_email} → 200 / 400 permission_denied / 403 / 404 user_not_found."""
    kms.grant(*_access_change(req))
    return json_response(200, "grant_success")


@kms_bp.route(route="revoke_access", methods=["POST"])
@handle_errors
def revoke_access(req: func.HttpRequest) -> func.HttpResponse:
    """POST /revoke_access {file_name, friend_email} → 200 (effective at once) / 400 permission_denied / 403."""
    kms.revoke(*_access_change(req))
    return json_response(200, "revoke_success")
