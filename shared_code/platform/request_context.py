"""The id of the HTTP request being handled, for records that must name it (audit entries).

:func:`shared_code.platform.http.handle_errors` starts a request context around every handler:
a fresh 128-bit id (hex), returned to the caller in the ``X-Request-Id`` response header, so an
operator can find the audit entries of a request from its response. Outside a handler (timers,
scripts) there is none.
"""

from __future__ import annotations

import contextlib
import secrets
from contextvars import ContextVar
from typing import Iterator

REQUEST_ID_HEADER = "X-Request-Id"
_request_id: ContextVar[str | None] = ContextVar("trustgate_request_id", default=None)


@contextlib.contextmanager
def request_scope() -> Iterator[str]:
    """Set a new request id (32 lowercase hex) for the duration of the block; yields it."""
    token = _request_id.set(secrets.token_hex(16))
    try:
        yield _request_id.get()
    finally:
        _request_id.reset(token)


def current_request_id() -> str | None:
    """The id of the request being handled in this context, or None outside a handler."""
    return _request_id.get()
