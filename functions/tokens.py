"""Token service (seed 004): issue, verify, introspect (RFC 7662) and revoke bearer tokens.

Handlers only admit the caller (IP lists, rate limit), parse, call :mod:`shared_code.tokens.bearer_tokens`
or :mod:`shared_code.tokens.introspection`, log the security event and respond. ``generate_token``
and ``introspect`` need a function key in Azure (``AuthLevel.FUNCTION``; RFC 7662 §2.1 requires the
introspection endpoint to be authorised); locally neither Core Tools nor devhost enforces keys.
"""

import azure.functions as func

from shared_code.platform.bearer import bearer_token
from shared_code.platform.http import (
    handle_errors,
    json_document,
    json_response,
    read_form_or_json,
    read_json_object,
    require_string,
)
from shared_code.platform.security_log import security_event, token_ref
from shared_code.platform.timeutil import to_iso
from shared_code.tokens import access, bearer_tokens, introspection

tokens_bp = func.Blueprint()


@tokens_bp.route(route="generate_token", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handle_errors
def generate_token(req: func.HttpRequest) -> func.HttpResponse:
    """POST /generate_token {ttl_seconds?, one_time?, scope?, client_id?} → 200 {token, expires_at} / 400 / 403 / 429."""
    client = access.admit(req.headers, "generate_token")
    body = read_json_object(req) if req.get_body() else {}
    ttl, one_time, scope = bearer_tokens.validate_request(body.get("ttl_seconds"), body.get("one_time"), body.get("scope"))
    client_id = bearer_tokens.validate_client_id(body.get("client_id"))
    issued = bearer_tokens.issue_token(ttl, one_time, scope, client_address=client, client_id=client_id)
    expires_at = to_iso(issued.expires_at)
    security_event("token_issued", client=client, token_ref=token_ref(issued.token_hash), one_time=one_time,
                   scope=scope, expires_at=expires_at)
    return json_response(200, "token_issued", token=issued.token, expires_at=expires_at)


@tokens_bp.route(route="verify_token", methods=["GET"])
@handle_errors
def verify_token(req: func.HttpRequest) -> func.HttpResponse:
    """GET /verify_token (Authorization: Bearer) → 200 {valid, expires_at?, scope?} / 400 / 403 / 429."""
    client = access.admit(req.headers, "verify_token")
    info = bearer_tokens.verify_token(bearer_token(req.headers.get("authorization")))
    if info is None:
        access.record_failed_verification(client, "verify_token")
        return json_response(200, "token_checked", valid=False)
    return json_response(200, "token_checked", valid=True, expires_at=to_iso(info.expires_at), scope=info.scope)


@tokens_bp.route(route="introspect", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@handle_errors
def introspect(req: func.HttpRequest) -> func.HttpResponse:
    """POST /introspect (form or JSON: token, token_type_hint?, consume?) → 200 RFC 7662 §2.2
    {active, scope?, client_id?, exp, iat, token_type, one_time} or {active: false} / 400 / 403 / 429."""
    client = access.admit(req.headers, "introspect")
    answer = introspection.introspect(introspection.parse_request(read_form_or_json(req, introspection.PARAMETERS)))
    if not answer["active"]:
        access.record_failed_verification(client, "introspect")
    return json_document(200, answer)


@tokens_bp.route(route="revoke_token", methods=["POST"])
@handle_errors
def revoke_token(req: func.HttpRequest) -> func.HttpResponse:
    """POST /revoke_token {token} → 200 whether or not the token existed (RFC 7009) / 400 / 403."""
    client = access.admit(req.headers, "revoke_token", rate_limited=False)
    body = read_json_object(req)
    token = require_string(body, "token", max_length=1024)
    if "token_type_hint" in body:  # RFC 7009 §2.1: optional; any value is accepted and ignored
        require_string(body, "token_type_hint", max_length=64)
    token_hash, removed = bearer_tokens.revoke_token(token, client_address=client)
    security_event("token_revoked", client=client, token_ref=token_ref(token_hash), removed=removed)
    return json_response(200, "token_revoked")
