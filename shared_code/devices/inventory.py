"""The operators' list of devices (``GET /operator/devices``): filter by trust level and status, page
through with a sealed continuation.

One cross-partition query over ``devices`` ordered by id, with the filters as parameters. The
continuation handed out is Cosmos DB's, sealed (:mod:`shared_code.platform.continuation`) for the
filters it was made with, so a token is refused with other filters or when altered.
"""

from __future__ import annotations

from typing import Any

from shared_code.devices import lifecycle, registry
from shared_code.platform import continuation as sealed
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import BadRequest

TRUST_FILTERS = ("software", "hardware", "strongbox", "revoked", "none")
STATUS_FILTERS = registry.STATUSES
PURPOSE = "operator-devices"
DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE = 50, 200

# Devices attested before trust levels existed have a key and no trust_level: they are software.
_TRUST_CLAUSES = {
    "software": "(c.trust_level = 'software' OR (NOT IS_DEFINED(c.trust_level) AND IS_STRING(c.public_key)))",
    "none": "(NOT IS_DEFINED(c.trust_level) AND NOT IS_STRING(c.public_key))",
}
_STATUS_CLAUSES = {registry.ACTIVE: "(NOT IS_DEFINED(c.status) OR c.status = 'active')"}


def _choice(value: str | None, allowed: tuple[str, ...], name: str) -> str | None:
    if value is None:
        return None
    if value not in allowed:
        raise BadRequest(f"invalid_{name}", f"{name} must be one of {', '.join(allowed)}")
    return value


def list_devices(trust_level: str | None, status: str | None, page_size: int,
                 continuation: str | None) -> tuple[list[dict[str, Any]], str | None]:
    """One page of devices (their :func:`shared_code.devices.lifecycle.operator_view`), by id:
    ``(devices, next continuation | None)``.

    ``trust_level`` one of :data:`TRUST_FILTERS` (``none``: no key attested), ``status`` one of
    ``active``, ``suspended``, ``revoked``; either may be ``None``. Raises :class:`BadRequest`
    ``invalid_trust_level`` / ``invalid_status`` / ``invalid_continuation``, ServiceUnavailable.
    """
    trust = _choice(trust_level, TRUST_FILTERS, "trust_level")
    state = _choice(status, STATUS_FILTERS, "status")
    clauses, parameters = [], []
    if trust is not None:
        clauses.append(_TRUST_CLAUSES.get(trust, "c.trust_level = @trust"))
        parameters += [] if trust in _TRUST_CLAUSES else [{"name": "@trust", "value": trust}]
    if state is not None:
        clauses.append(_STATUS_CLAUSES.get(state, "c.status = @status"))
        parameters += [] if state in _STATUS_CLAUSES else [{"name": "@status", "value": state}]
    query = "SELECT * FROM c" + (" WHERE " + " AND ".join(clauses) if clauses else "") + " ORDER BY c.id"
    key, subject = get_settings().device_token_pepper, f"{trust or '*'}:{state or '*'}"
    token = sealed.unseal(key, PURPOSE, subject, continuation) if continuation else None
    try:
        items, following = cosmos.query_page(cosmos.DEVICES, query, parameters, partition_key=None,
                                             page_size=page_size, continuation=token)
    except cosmos.InvalidContinuation:
        raise BadRequest("invalid_continuation", "continuation is not a token this API returned to you") from None
    views = [lifecycle.operator_view(item) for item in items]
    return views, sealed.seal(key, PURPOSE, subject, following) if following else None
