"""Message gatherer API (seed 003): IDENTIFY → AUTHENTICATE → MESSAGE, and reading messages back.

Handlers only parse, call :mod:`shared_code` and map the result to a JSON response.
"""

import azure.functions as func

from shared_code.audit import trail
from shared_code.gatherer import access_tokens, message_log, protocol
from shared_code.gatherer.access_tokens import bearer_token
from shared_code.platform import login_throttle
from shared_code.platform.config import get_settings
from shared_code.platform.errors import BadRequest
from shared_code.platform.http import handle_errors, json_response, parse_int_param, read_json_object, require_string
from shared_code.platform.timeutil import to_iso

messages_bp = func.Blueprint()

LOGOUT = "logout"
# A JSON string escape takes at most 6 bytes per message byte (\u00XX); plus the other fields.
JSON_OVERHEAD_BYTES = 8 * 1024


def _request(req: func.HttpRequest, message_type: str, max_bytes: int = 64 * 1024) -> dict:
    body = read_json_object(req, max_bytes=max_bytes)
    if body.get("message_type") != message_type:
        raise BadRequest("invalid_message_type", f"message_type must be {message_type!r} on this endpoint")
    return body


def _username(body: dict) -> str:
    return require_string(body, "username", pattern=protocol.USERNAME_PATTERN, max_length=32, error="invalid_username")


@messages_bp.route(route="identify", methods=["POST"])
@handle_errors
def gather_identify(req: func.HttpRequest) -> func.HttpResponse:
    """POST /identify {message_type: IDENTIFY, username} → 201 new / 200 known user, now Identified / 429."""
    login_throttle.admit_client(req.headers, "identify")
    username = _username(_request(req, "IDENTIFY"))
    created = protocol.identify(username)
    return json_response(201 if created else 200, "identified", username=username, state=protocol.IDENTIFIED)


@messages_bp.route(route="authenticate", methods=["POST"])
@handle_errors
def gather_authenticate(req: func.HttpRequest) -> func.HttpResponse:
    """POST /authenticate {message_type: AUTHENTICATE, username, password} → 200 {token} / 401 / 409 / 429."""
    login_throttle.admit_client(req.headers, "authenticate", on_lockout=trail.record_lockout)
    body = _request(req, "AUTHENTICATE")
    username = _username(body)
    password = require_string(body, "password", max_length=protocol.MAX_PASSWORD_CHARS)
    issued = protocol.authenticate(username, password)
    return json_response(200, "authenticated", username=username, token=issued.token,
                         token_type="Bearer", expires_at=to_iso(issued.expires_at))


@messages_bp.route(route="message", methods=["POST"])
@handle_errors
def gather_message(req: func.HttpRequest) -> func.HttpResponse:
    """POST /message {message_type: MESSAGE, token?, message} (or Bearer) → 201 stored / 200 logged_out."""
    max_bytes = get_settings().max_message_bytes
    body = _request(req, "MESSAGE", max_bytes=6 * max_bytes + JSON_OVERHEAD_BYTES)
    if body.get("token") is not None:  # the body's token, when sent (not null), is the credential
        token = require_string(body, "token", max_length=access_tokens.MAX_TOKEN_CHARS, error="invalid_field")
    else:
        token = bearer_token(req.headers.get("authorization"))
    holder = protocol.sender(token)  # signature and claims; the stream's seal decides revocation
    message = protocol.validate_message(body.get("message"), max_bytes)
    if message == LOGOUT:
        user = protocol.authorize(token)
        protocol.logout(user)
        return json_response(200, "logged_out", username=user["id"], state=protocol.GROUNDED)
    stored = protocol.store_message(holder, message)
    return json_response(201, "stored", id=stored.id, ts=stored.ts)


@messages_bp.route(route="messages", methods=["GET"])
@handle_errors
def gather_messages(req: func.HttpRequest) -> func.HttpResponse:
    """GET /messages?page_size&continuation (Bearer) → 200 the caller's messages, oldest first."""
    user = protocol.authorize(bearer_token(req.headers.get("authorization")))
    page_size = parse_int_param(req.params.get("page_size"), "page_size", get_settings().messages_page_size, 1, 1000)
    items, continuation = message_log.read_messages(user["id"], page_size, req.params.get("continuation"))
    return json_response(200, "messages_listed", messages=items, continuation=continuation)
