"""Token introspection (RFC 7662): what a protected resource learns about a bearer token.

The request (§2.1) carries ``token`` and optionally ``token_type_hint``; the answer (§2.2) is a
JSON object whose one required member is ``active``. An active token is described with
``scope`` (when it has one), ``client_id`` (when it was issued for one), ``exp`` and ``iat``
(NumericDate: whole seconds since the epoch, RFC 7519 §2) and ``token_type`` ``Bearer``
(RFC 6750), plus this service's extension member ``one_time`` (§2.2 allows top-level
extensions). Anything else, unknown, malformed, expired, revoked or used up, is exactly
``{"active": false}``: §2.2 says an inactive token SHOULD get no further information, so the
reason is never disclosed.

One-time tokens: introspecting one does **not** use it up (a resource server may look before it
acts), unless the request says ``consume=true``; then exactly one of any number of concurrent
consuming introspections (and ``/verify_token`` calls) sees it active, as with ``/verify_token``.
A resource server that enforces single use must therefore introspect with ``consume=true``.

``token_type_hint`` is accepted and ignored: this server has one kind of token, and §2.1 lets the
server ignore the hint (an unknown hint never makes a known token inactive).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from shared_code.platform.errors import BadRequest
from shared_code.tokens import bearer_tokens

MAX_TOKEN_CHARS = 1024
MAX_HINT_CHARS = 64
TOKEN_TYPE = "Bearer"
INACTIVE: dict[str, Any] = {"active": False}
PARAMETERS = ("token", "token_type_hint", "consume")


@dataclass(frozen=True)
class IntrospectionRequest:
    """A parsed §2.1 request: the ``token`` (secret: never log it), the ``token_type_hint``
    (``None`` when absent) and whether a one-time token is to be used up (``consume``)."""

    token: str
    token_type_hint: str | None
    consume: bool

    def __repr__(self) -> str:
        return f"IntrospectionRequest(token_type_hint={self.token_type_hint!r}, consume={self.consume})"


def parse_request(params: Mapping[str, Any]) -> IntrospectionRequest:
    """Validate the parameters of an introspection request, from a form (strings) or a JSON
    object: ``token`` (required, 1-1024 characters), ``token_type_hint`` (optional, at most 64
    characters, e.g. ``access_token``), ``consume`` (optional: JSON ``true``/``false`` or form
    ``"true"``/``"false"``, default false).

    Raises :class:`BadRequest` ``invalid_request`` (the RFC 6749 §5.2 error code RFC 7662 §2.3
    refers to) naming the parameter.
    """
    token = params.get("token")
    if not isinstance(token, str) or not 1 <= len(token) <= MAX_TOKEN_CHARS:
        raise BadRequest("invalid_request", f"'token' is required: a string of 1-{MAX_TOKEN_CHARS} characters")
    hint = params.get("token_type_hint")
    if hint is not None and (not isinstance(hint, str) or len(hint) > MAX_HINT_CHARS):
        raise BadRequest("invalid_request", f"'token_type_hint' must be a string of at most {MAX_HINT_CHARS} characters")
    consume = params.get("consume", False)
    consume = {"true": True, "false": False}.get(consume, consume) if isinstance(consume, str) else consume
    if not isinstance(consume, bool):
        raise BadRequest("invalid_request", "'consume' must be true or false")
    return IntrospectionRequest(token, hint or None, consume)


def introspect(request: IntrospectionRequest) -> dict[str, Any]:
    """The RFC 7662 §2.2 response for ``request``: ``{"active": false}`` or ``{"active": true,
    "token_type", "exp", "iat", "one_time", "scope"?, "client_id"?}``.

    A one-time token is used up only when ``request.consume`` (see
    :func:`~shared_code.tokens.bearer_tokens.inspect_token` for what a crash then leaves). Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable` when Cosmos DB is down.
    """
    info = bearer_tokens.inspect_token(request.token, consume=request.consume)
    if info is None:
        return dict(INACTIVE)
    answer: dict[str, Any] = {"active": True, "token_type": TOKEN_TYPE, "exp": int(info.expires_at.timestamp()),
                              "iat": int(info.issued_at.timestamp()), "one_time": info.one_time}
    if info.scope:
        answer["scope"] = info.scope
    if info.client_id:
        answer["client_id"] = info.client_id
    return answer
