"""docs/openapi.yaml is a valid OpenAPI 3.1 document and matches the HTTP functions the app registers.

The expected operations are derived from ``function_app.app`` (and the route prefix from
``host.json``), so a new HTTP function fails these tests until it is documented, and a documented
operation fails them once its function is gone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Iterator

import openapi_spec_validator
import pytest
import yaml
from openapi_schema_validator import OAS31Validator, oas31_format_checker

import function_app

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "docs" / "openapi.yaml"
HOST_JSON = ROOT / "host.json"

OPENAPI_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# What an Azure Functions HTTP trigger accepts when it declares no methods.
ALL_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
ERROR_SCHEMA_REF = "#/components/schemas/Error"
EXEMPT_KEY = "x-error-schema-exempt"

Operation = tuple[str, str]  # (path, upper-case method)


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    with SPEC_PATH.open(encoding="utf-8") as handle:
        return yaml.safe_load(handle)


# --- helpers --------------------------------------------------------------------------------

def route_prefix() -> str:
    """``extensions.http.routePrefix`` of host.json (the Functions host's default is ``api``)."""
    host = json.loads(HOST_JSON.read_text(encoding="utf-8"))
    return host.get("extensions", {}).get("http", {}).get("routePrefix", "api").strip("/")


def openapi_path(route: str, prefix: str) -> str:
    """An Azure Functions route template as an OpenAPI path: ``files/{id:guid}`` → ``/files/{id}``."""
    path = "/".join(part for part in (prefix, route.strip("/")) if part)
    return "/" + re.sub(r"\{\*?([A-Za-z_][A-Za-z0-9_]*)[^}]*\}", r"{\1}", path)


def indexed_functions() -> list:
    """The app's functions, indexed once per process by devhost (get_functions() may run only once)."""
    from devhost.server import indexed_functions as index

    return index(function_app.app)


def app_http_functions() -> dict[Operation, list[str]]:
    """(path, METHOD) → names of the HTTP-triggered functions registered for it."""
    prefix = route_prefix()
    registered: dict[Operation, list[str]] = {}
    for function in indexed_functions():
        trigger = function.get_trigger()
        if trigger is None or trigger.get_binding_name() != "httpTrigger":
            continue
        name = function.get_function_name()
        path = openapi_path(trigger.route or name, prefix)
        methods = [str(getattr(m, "value", m)).upper() for m in (trigger.methods or ALL_HTTP_METHODS)]
        for method in methods:
            registered.setdefault((path, method), []).append(name)
    return registered


def spec_operations(spec: dict[str, Any]) -> dict[Operation, dict[str, Any]]:
    """(path, METHOD) → the operation object, for every operation in the spec."""
    return {
        (path, method.upper()): item[method]
        for path, item in (spec.get("paths") or {}).items()
        for method in OPENAPI_METHODS
        if method in item
    }


def resolve(spec: dict[str, Any], node: Any) -> Any:
    """Follow local ``$ref``s (``#/...``) until a non-reference node."""
    seen = set()
    while isinstance(node, dict) and "$ref" in node and str(node["$ref"]).startswith("#/"):
        ref = node["$ref"]
        assert ref not in seen, f"reference cycle at {ref}"
        seen.add(ref)
        node = spec
        for token in ref[2:].split("/"):
            node = node[token.replace("~1", "/").replace("~0", "~")]
    return node


def uses_error_schema(spec: dict[str, Any], schema: Any, depth: int = 0) -> bool:
    """The schema is the Error schema, a reference to one built on it, or an ``allOf`` including it."""
    if not isinstance(schema, dict) or depth > 20:
        return False
    if schema.get("$ref") == ERROR_SCHEMA_REF:
        return True
    if "$ref" in schema:
        return uses_error_schema(spec, resolve(spec, schema), depth + 1)
    return any(uses_error_schema(spec, part, depth + 1) for part in schema.get("allOf", []))


def is_error_status(status: str) -> bool:
    return status == "default" or status[:1] in ("4", "5")


def described(pairs: set[Operation], registered: dict[Operation, list[str]] | None = None) -> str:
    lines = []
    for path, method in sorted(pairs):
        names = f"  (function {', '.join(registered[(path, method)])})" if registered and (path, method) in registered else ""
        lines.append(f"  {method} {path}{names}")
    return "\n".join(lines)


def media_examples(spec: dict[str, Any]) -> Iterator[tuple[str, Any, Any, str | None]]:
    """(where, schema, example value, response status or None) for every example in a media type."""
    for (path, method), operation in spec_operations(spec).items():
        bodies: list[tuple[str, Any, str | None]] = []
        if "requestBody" in operation:
            bodies.append(("requestBody", resolve(spec, operation["requestBody"]), None))
        for status, response in (operation.get("responses") or {}).items():
            bodies.append((f"responses.{status}", resolve(spec, response), str(status)))
        for label, body, status in bodies:
            for media_type, media in (body.get("content") or {}).items():
                where = f"{method} {path} {label} {media_type}"
                if "example" in media:
                    yield where, media.get("schema"), media["example"], status
                for name, example in (media.get("examples") or {}).items():
                    example = resolve(spec, example)
                    if "value" in example:
                        yield f"{where} examples.{name}", media.get("schema"), example["value"], status


# --- tests ----------------------------------------------------------------------------------

def test_spec_is_valid_openapi_3_1(spec):
    assert str(spec.get("openapi", "")).startswith("3.1"), f"openapi is {spec.get('openapi')!r}, expected 3.1.x"
    openapi_spec_validator.validate(spec)


def test_each_http_route_is_registered_once():
    duplicates = {op: names for op, names in app_http_functions().items() if len(names) > 1}
    assert not duplicates, "several functions share one route and method:\n" + "\n".join(
        f"  {method} {path}: {', '.join(names)}" for (path, method), names in sorted(duplicates.items())
    )


def test_spec_documents_exactly_the_app_http_functions(spec):
    registered = app_http_functions()
    expected, documented = set(registered), set(spec_operations(spec))
    assert expected, "function_app registers no HTTP functions: the app failed to load its blueprints?"
    problems = []
    if missing := expected - documented:
        problems.append("registered in function_app but missing from docs/openapi.yaml:\n" + described(missing, registered))
    if extra := documented - expected:
        problems.append("documented in docs/openapi.yaml but not registered in function_app:\n" + described(extra))
    assert not problems, "\n".join(problems)


def test_operation_ids_are_the_registered_function_names(spec):
    registered = app_http_functions()
    operations = spec_operations(spec)
    wrong = [
        f"  {method} {path}: operationId {operations[(path, method)].get('operationId')!r}, "
        f"function {registered[(path, method)][0]!r}"
        for path, method in sorted(set(registered) & set(operations))
        if operations[(path, method)].get("operationId") != registered[(path, method)][0]
    ]
    assert not wrong, "operationId must equal the Azure function name:\n" + "\n".join(wrong)


def test_every_operation_has_a_success_and_json_error_responses(spec):
    problems = []
    for (path, method), operation in sorted(spec_operations(spec).items()):
        responses = operation.get("responses") or {}
        where = f"{method} {path}"
        if not any(str(status).startswith("2") for status in responses):
            problems.append(f"{where}: documents no 2xx response")
        for status, response in responses.items():
            status = str(status)
            if not is_error_status(status):
                continue
            if EXEMPT_KEY in response:
                if not str(response[EXEMPT_KEY]).strip():
                    problems.append(f"{where} {status}: {EXEMPT_KEY} needs a reason")
                continue
            media = (resolve(spec, response).get("content") or {}).get("application/json")
            if media is None:
                problems.append(f"{where} {status}: no application/json content")
            elif not uses_error_schema(spec, media.get("schema")):
                problems.append(f"{where} {status}: schema is not {ERROR_SCHEMA_REF} (or an allOf including it)")
    assert not problems, "\n".join(problems)


def test_examples_match_their_schemas_and_status(spec):
    problems = []
    count = 0
    for where, schema, value, status in media_examples(spec):
        count += 1
        if schema is None:
            problems.append(f"{where}: example without a schema")
            continue
        root = {**schema, "components": spec.get("components", {})}
        errors = sorted(OAS31Validator(root, format_checker=oas31_format_checker).iter_errors(value), key=str)
        problems += [f"{where}: {error.message} at {list(error.absolute_path)}" for error in errors]
        if status and status.isdigit() and isinstance(value, dict) and "code" in value and value["code"] != int(status):
            problems.append(f"{where}: example code {value['code']} under status {status}")
    assert count, "the spec has no examples"
    assert not problems, "\n".join(problems)


def test_openapi_path_conversion():
    assert openapi_path("api/files", "") == "/api/files"
    assert openapi_path("files/{id:guid}", "api") == "/api/files/{id}"
    assert openapi_path("blobs/{*rest}", "") == "/blobs/{rest}"
    assert openapi_path("items/{id?}", "") == "/items/{id}"
