"""Typed domain errors. Each carries its HTTP status and a snake_case ``message`` identifier.

Domain code raises these; :mod:`shared_code.platform.http` is the one place that maps them to
responses. ``detail`` is human text shown to the caller: never put secrets in it.
"""

from __future__ import annotations


class AppError(Exception):
    """Base of all errors the API reports to callers."""

    status = 500
    default_message = "internal_error"

    def __init__(self, message: str | None = None, detail: str = "", *, headers: dict[str, str] | None = None,
                 fields: dict[str, object] | None = None):
        self.message = message or self.default_message
        self.detail = detail
        self.headers = headers or {}
        # extra JSON fields of the error body (e.g. ``failed_checks``); never secrets
        self.fields = fields or {}
        super().__init__(f"{self.message}: {detail}" if detail else self.message)


class BadRequest(AppError):
    status, default_message = 400, "bad_request"


class Unauthorized(AppError):
    status, default_message = 401, "unauthorized"


class Forbidden(AppError):
    status, default_message = 403, "forbidden"


class NotFound(AppError):
    status, default_message = 404, "not_found"


class Conflict(AppError):
    status, default_message = 409, "conflict"


class PreconditionFailed(AppError):
    """A conditional request's precondition (``If-Match``) did not hold (RFC 9110 §13.1.1, §15.5.13)."""

    status, default_message = 412, "precondition_failed"


class PayloadTooLarge(AppError):
    status, default_message = 413, "payload_too_large"


class UnsupportedMediaType(AppError):
    status, default_message = 415, "unsupported_media_type"


class TooManyRequests(AppError):
    status, default_message = 429, "too_many_requests"


class ServiceUnavailable(AppError):
    """A backing store (Cosmos DB, Blob Storage, an upstream API) failed or timed out."""

    status, default_message = 503, "service_unavailable"
