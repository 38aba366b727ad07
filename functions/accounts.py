"""Accounts API (seed 002): register and log in, each confirmed by an emailed one-time code.

Handlers only parse, call :mod:`shared_code.accounts` (``registration``, ``signin``, ``deletion``), and map the result to a
JSON response. Account deletion hands :func:`shared_code.filestore.erasure.erase_user` to the accounts area, which never
imports the file store.
"""

import azure.functions as func

from shared_code.accounts import deletion, registration, signin
from shared_code.audit import trail
from shared_code.filestore import erasure
from shared_code.platform import login_throttle
from shared_code.platform.http import handle_errors, json_response, read_json_object, require_string

accounts_bp = func.Blueprint()

MAX_EMAIL_CHARS = 320
# Longer passwords are answered by the policy (weak_password) or simply do not match (login_failed).
MAX_PASSWORD_CHARS = 4096
MAX_OTP_CHARS = 16


def _credentials(req: func.HttpRequest, secret_field: str, max_length: int) -> tuple[str, str]:
    body = read_json_object(req)
    email = require_string(body, "email", max_length=MAX_EMAIL_CHARS, error="invalid_email")
    return email, require_string(body, secret_field, max_length=max_length)


@accounts_bp.route(route="register", methods=["POST"])
@handle_errors
def register(req: func.HttpRequest) -> func.HttpResponse:
    """POST /register {email, password} → 200 registration_pending / 400 user_exists, weak_password / 429 / 503."""
    login_throttle.admit_client(req.headers, "register")
    email, password = _credentials(req, "password", MAX_PASSWORD_CHARS)
    registration.register(email, password)
    return json_response(200, "registration_pending")


@accounts_bp.route(route="verify_register", methods=["POST"])
@handle_errors
def verify_register(req: func.HttpRequest) -> func.HttpResponse:
    """POST /verify_register {email, otp} → 200 registration_success / 400 no_pending_registration / 401 otp_failed."""
    email, code = _credentials(req, "otp", MAX_OTP_CHARS)
    registration.verify_register(email, code)
    return json_response(200, "registration_success")


@accounts_bp.route(route="login", methods=["POST"])
@handle_errors
def login(req: func.HttpRequest) -> func.HttpResponse:
    """POST /login {email, password} → 200 login_otp_sent / 401 login_failed (unknown email or wrong password) / 429."""
    login_throttle.admit_client(req.headers, "login", on_lockout=trail.record_lockout)
    email, password = _credentials(req, "password", MAX_PASSWORD_CHARS)
    signin.login(email, password)
    return json_response(200, "login_otp_sent")


@accounts_bp.route(route="verify_login", methods=["POST"])
@handle_errors
def verify_login(req: func.HttpRequest) -> func.HttpResponse:
    """POST /verify_login {email, otp} → 200 login_success {sid} / 401 otp_failed."""
    email, code = _credentials(req, "otp", MAX_OTP_CHARS)
    sid = signin.verify_login(email, code)
    return json_response(200, "login_success", sid=sid)


@accounts_bp.route(route="logout", methods=["POST"])
@handle_errors
def logout(req: func.HttpRequest) -> func.HttpResponse:
    """POST /logout (header sid) → 200 logout_success / 403 invalid_session."""
    signin.logout(req.headers.get("sid"))
    return json_response(200, "logout_success")


# account deletion ------------------------------------------------------------------

@accounts_bp.route(route="delete_account/otp", methods=["POST"])
@handle_errors
def delete_account_otp(req: func.HttpRequest) -> func.HttpResponse:
    """POST /delete_account/otp {password} (header sid) → 200 delete_otp_sent / 401 invalid_password / 403 / 429 / 503."""
    password = require_string(read_json_object(req), "password", max_length=MAX_PASSWORD_CHARS)
    deletion.request_code(req.headers.get("sid"), password)
    return json_response(200, "delete_otp_sent")


@accounts_bp.route(route="delete_account", methods=["POST"])
@handle_errors
def delete_account(req: func.HttpRequest) -> func.HttpResponse:
    """POST /delete_account {password, otp} (header sid) → 200 account_deleted {summary} / 401 / 403 / 429 / 503."""
    body = read_json_object(req)
    password = require_string(body, "password", max_length=MAX_PASSWORD_CHARS)
    code = require_string(body, "otp", max_length=MAX_OTP_CHARS)
    summary = deletion.delete_account(req.headers.get("sid"), password, code, erase=erasure.erase_user)
    return json_response(200, "account_deleted", summary=summary)
