"""HTTP helpers: JSON responses, request parsing, and the one error → status mapping.

Every JSON body carries ``code`` (the HTTP status) and ``message`` (a snake_case identifier);
errors add ``detail`` (human text, no secrets, no stack traces).
"""

from __future__ import annotations

import functools
import json
import logging
import re
import urllib.parse
from typing import Any, Callable, Collection, Mapping

import azure.functions as func

from shared_code.platform.config import ConfigError
from shared_code.platform.errors import AppError, BadRequest, PayloadTooLarge, UnsupportedMediaType
from shared_code.platform.request_context import REQUEST_ID_HEADER, request_scope

log = logging.getLogger("trustgate.http")

JSON_HEADERS = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def json_response(status: int, message: str, headers: Mapping[str, str] | None = None, **fields: Any) -> func.HttpResponse:
    """A JSON response ``{"code": status, "message": message, **fields}``."""
    return json_document(status, {"code": status, "message": message, **fields}, headers)


def json_document(status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None) -> func.HttpResponse:
    """A JSON response whose body is exactly ``body``, for the few answers a standard shapes
    (RFC 7662 introspection); everything else uses :func:`json_response`."""
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={**JSON_HEADERS, **(headers or {})},
    )


def error_response(error: AppError) -> func.HttpResponse:
    """The JSON response for a domain error: ``{code, message, detail, **fields}`` plus its headers."""
    return json_response(error.status, error.message, headers=error.headers, detail=error.detail, **error.fields)


Handler = Callable[[func.HttpRequest], func.HttpResponse]


def handle_errors(handler: Handler) -> Handler:
    """Decorate an HTTP handler so domain errors become JSON error responses.

    :class:`AppError` → its status; :class:`ConfigError` → 500 ``configuration_error`` naming
    the setting; anything else is logged with its traceback and answered 500 ``internal_error``
    without internals. Each call runs in a request scope (:mod:`shared_code.platform.request_context`)
    and its response carries the ``X-Request-Id`` header.
    """

    @functools.wraps(handler)
    def wrapper(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        with request_scope() as request_id:
            response = _handle(req, *args, **kwargs)
            response.headers[REQUEST_ID_HEADER] = request_id
            return response

    def _handle(req: func.HttpRequest, *args: Any, **kwargs: Any) -> func.HttpResponse:
        try:
            return handler(req, *args, **kwargs)
        except AppError as error:
            if error.status >= 500:
                log.warning("%s %s -> %s %s", req.method, _path(req), error.status, error.message)
            return error_response(error)
        except ConfigError as error:
            log.error("configuration error: %s", error)
            return json_response(500, "configuration_error", detail=str(error))
        except Exception:  # noqa: BLE001 - logged with traceback, answered without internals
            log.exception("unhandled error in %s %s", req.method, _path(req))
            return json_response(500, "internal_error", detail="unexpected server error")

    return wrapper


def _path(req: func.HttpRequest) -> str:
    return req.url.split("?", 1)[0]


#: Deepest nesting of arrays and objects a JSON body may have (the API's bodies are flat objects).
MAX_JSON_DEPTH = 32


def _check_json_values(document: Any) -> None:
    """Raise ``invalid_json`` when ``document`` nests deeper than :data:`MAX_JSON_DEPTH` or holds
    a string (key or value) that is not a sequence of Unicode scalar values: JSON's ``\\uXXXX``
    escapes can spell a lone surrogate (RFC 8259 §8.2), which is no character and cannot be encoded
    as UTF-8. Iterative, so no input can exhaust the stack."""
    pending: list[tuple[Any, int]] = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if isinstance(value, str):
            strings: Any = (value,)
        elif isinstance(value, (dict, list)):
            if depth > MAX_JSON_DEPTH:
                raise BadRequest("invalid_json", f"JSON bodies may nest at most {MAX_JSON_DEPTH} levels")
            children = list(value.values()) if isinstance(value, dict) else value
            pending.extend((child, depth + 1) for child in children)
            strings = value.keys() if isinstance(value, dict) else ()
        else:
            continue
        for text in strings:
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise BadRequest("invalid_json", "JSON strings must be valid Unicode (no lone surrogate escapes)") from None


def read_json_object(req: func.HttpRequest, max_bytes: int = 64 * 1024) -> dict[str, Any]:
    """Parse the request body as one JSON object (RFC 8259) whose strings are all valid Unicode.

    Raises :class:`UnsupportedMediaType` (415) when a Content-Type other than JSON is declared,
    :class:`PayloadTooLarge` ``body_too_large`` (413) over ``max_bytes``, and :class:`BadRequest`
    ``invalid_json`` (400) for an empty, non-UTF-8 or malformed body, one that is not an object,
    nests deeper than :data:`MAX_JSON_DEPTH`, or holds a lone surrogate escape (``"\\ud800"``).
    Every handler parses its body here, so no string that cannot be encoded reaches domain code.
    """
    content_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        raise UnsupportedMediaType(detail="send the body as application/json")
    body = req.get_body()
    if not body:
        raise BadRequest("invalid_json", "request body must be a JSON object")
    if len(body) > max_bytes:
        raise PayloadTooLarge("body_too_large", f"JSON bodies may be at most {max_bytes} bytes")
    try:
        document = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadRequest("invalid_json", "request body is not valid UTF-8 JSON") from None
    except RecursionError:  # the C scanner recurses once per nested array or object
        raise BadRequest("invalid_json", f"JSON bodies may nest at most {MAX_JSON_DEPTH} levels") from None
    if not isinstance(document, dict):
        raise BadRequest("invalid_json", "request body must be a JSON object")
    _check_json_values(document)
    return document


def require_string(
    source: Mapping[str, Any],
    name: str,
    *,
    pattern: re.Pattern[str] | None = None,
    min_length: int = 1,
    max_length: int = 4096,
    error: str = "invalid_field",
) -> str:
    """Return ``source[name]`` as a string meeting the constraints, else raise :class:`BadRequest`.

    A missing/empty value raises ``missing_fields``; a wrong type, length or pattern raises
    ``error`` with a detail naming the field.
    """
    value = source.get(name)
    if value is None or value == "":
        raise BadRequest("missing_fields", f"'{name}' is required")
    if not isinstance(value, str):
        raise BadRequest(error, f"'{name}' must be a string")
    if not min_length <= len(value) <= max_length:
        raise BadRequest(error, f"'{name}' must be {min_length}-{max_length} characters")
    if pattern is not None and not pattern.fullmatch(value):
        raise BadRequest(error, f"'{name}' has characters or a shape that is not allowed")
    return value


MULTIPART_OVERHEAD_BYTES = 1024 * 1024
_DIGITS = re.compile(r"[0-9]{1,15}")


def parse_int_param(raw: str | None, name: str, default: int, minimum: int, maximum: int) -> int:
    """An integer query parameter in ``[minimum, maximum]`` (ASCII digits only), ``default`` when
    absent; raises :class:`BadRequest` ``invalid_{name}`` otherwise (an empty value included: it is
    no integer, and a repeated parameter arrives joined with ``,``)."""
    if raw is None:
        return default
    if not _DIGITS.fullmatch(raw) or not minimum <= int(raw) <= maximum:
        raise BadRequest(f"invalid_{name}", f"{name} must be an integer from {minimum} to {maximum}")
    return int(raw)


def read_multipart(req: func.HttpRequest, max_file_bytes: int) -> tuple[Mapping[str, str], Mapping[str, Any]]:
    """Parse a ``multipart/form-data`` body into ``(fields, files)`` (werkzeug, via azure-functions).

    Raises :class:`UnsupportedMediaType` (415) for another content type and
    :class:`PayloadTooLarge` (413) when the declared or actual body exceeds ``max_file_bytes``
    plus a small allowance for the multipart framing and the other fields.
    """
    content_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "multipart/form-data":
        raise UnsupportedMediaType(detail="send the upload as multipart/form-data")
    limit = max_file_bytes + MULTIPART_OVERHEAD_BYTES
    declared = req.headers.get("content-length", "")
    if (_DIGITS.fullmatch(declared) and int(declared) > limit) or len(req.get_body()) > limit:
        raise PayloadTooLarge("file_too_large", f"files may be at most {max_file_bytes} bytes")
    return req.form, req.files


FORM_URLENCODED = "application/x-www-form-urlencoded"


def read_form_or_json(req: func.HttpRequest, fields: Collection[str], max_bytes: int = 64 * 1024,
                      max_fields: int = 16) -> dict[str, Any]:
    """The body's parameters from ``application/x-www-form-urlencoded`` (the OAuth endpoints'
    encoding, RFC 6749 Appendix B: UTF-8, percent-encoded) or, for any other declared type, one
    JSON object (:func:`read_json_object`).

    Of a form only the parameters named in ``fields`` are returned (as strings): RFC 6749 §3.1
    says a server MUST ignore unrecognised parameters and that a parameter MUST NOT be included
    more than once, so a repeated one of ``fields`` is refused. Raises :class:`BadRequest`
    ``invalid_request`` for a form that is not ASCII, not valid percent-encoded UTF-8, has more
    than ``max_fields`` fields or repeats one of ``fields``, :class:`PayloadTooLarge` over
    ``max_bytes``, and what :func:`read_json_object` raises for JSON.
    """
    content_type = req.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_URLENCODED:
        return read_json_object(req, max_bytes)
    body = req.get_body()
    if len(body) > max_bytes:
        raise PayloadTooLarge("body_too_large", f"bodies may be at most {max_bytes} bytes")
    try:
        pairs = urllib.parse.parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=bool(body),
                                       encoding="utf-8", errors="strict", max_num_fields=max_fields)
    except (UnicodeError, ValueError):
        raise BadRequest("invalid_request", f"the body is not a form of at most {max_fields} UTF-8 fields") from None
    known = [(name, value) for name, value in pairs if name in fields]
    params = dict(known)
    if len(params) != len(known):
        raise BadRequest("invalid_request", "a form parameter is repeated")
    return params
