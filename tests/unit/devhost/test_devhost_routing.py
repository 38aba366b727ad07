"""Route templates → matching, as the Functions host (ASP.NET Core routing) does it."""

from __future__ import annotations

import json

import pytest

from devhost.routing import (
    MethodNotAllowed,
    Route,
    RouteMatch,
    RouteTable,
    RouteTemplateError,
    compile_template,
    normalise_methods,
    read_route_prefix,
)


def table(*specs: tuple[str, list[str] | None]) -> RouteTable:
    return RouteTable(Route(compile_template(route), normalise_methods(methods), route) for route, methods in specs)


def test_plain_parameter_takes_one_segment():
    template = compile_template("items/{name}")
    assert template.match("/items/pen") == {"name": "pen"}
    assert template.match("/items/pen/cap") is None
    assert template.match("/items") is None


def test_int_constraint_accepts_digits_and_rejects_letters():
    template = compile_template("items/{id:int}")
    assert template.match("/items/42") == {"id": "42"}
    assert template.match("/items/-7") == {"id": "-7"}
    assert template.match("/items/abc") is None
    assert template.match("/items/4a") is None


@pytest.mark.parametrize(("constraint", "good", "bad"), [
    ("guid", "3f2504e0-4f89-11d3-9a0c-0305e82c3301", "3f2504e0"),
    ("alpha", "Pen", "pen1"),
    ("bool", "TRUE", "yes"),
    ("long", "12345678901234", "1.5"),
    ("double", "1.5e3", "1.5.2"),
])
def test_other_constraints(constraint, good, bad):
    template = compile_template(f"v/{{x:{constraint}}}")
    assert template.match(f"/v/{good}") == {"x": good}
    assert template.match(f"/v/{bad}") is None


def test_optional_parameter_may_be_absent():
    template = compile_template("pages/{page?}")
    assert template.match("/pages") == {}
    assert template.match("/pages/3") == {"page": "3"}
    assert template.match("/pages/3/4") is None


def test_default_value_fills_an_absent_parameter():
    template = compile_template("pages/{page=1}")
    assert template.match("/pages") == {"page": "1"}
    assert template.match("/pages/9") == {"page": "9"}


def test_catch_all_spans_slashes_and_may_be_empty():
    template = compile_template("files/{*path}")
    assert template.match("/files/a/b/c.txt") == {"path": "a/b/c.txt"}
    assert template.match("/files") == {}
    assert compile_template("files/{**path}").match("/files/x/y") == {"path": "x/y"}


def test_mixed_segment_splits_at_the_last_literal():
    template = compile_template("download/{name}.{ext}")
    assert template.match("/download/report.v2.pdf") == {"name": "report.v2", "ext": "pdf"}


def test_literals_match_case_insensitively_and_trailing_slash_is_ignored():
    template = compile_template("Items/Latest")
    assert template.match("/items/LATEST") == {}
    assert template.match("/items/latest/") == {}


def test_prefix_is_prepended():
    template = compile_template("health", prefix="api")
    assert template.match("/api/health") == {}
    assert template.match("/health") is None
    assert compile_template("", prefix="").match("/") == {}


def test_literal_route_wins_over_parameterised_ones_whatever_the_order():
    routes = table(("items/{name}", None), ("items/{id:int}", None), ("items/{*rest}", None), ("items/latest", None))
    assert routes.resolve("GET", "/items/latest").route.target == "items/latest"
    assert routes.resolve("GET", "/items/7").route.target == "items/{id:int}"
    assert routes.resolve("GET", "/items/pen").route.target == "items/{name}"
    assert routes.resolve("GET", "/items/a/b").route.target == "items/{*rest}"


def test_method_mismatch_reports_the_allowed_methods():
    routes = table(("items/{id}", ["GET", "DELETE"]), ("items/{name:alpha}", ["PUT"]))
    result = routes.resolve("POST", "/items/abc")
    assert isinstance(result, MethodNotAllowed)
    assert result.allowed == ["DELETE", "GET", "PUT"]
    assert isinstance(routes.resolve("delete", "/items/abc"), RouteMatch)


def test_no_route_gives_none_and_no_methods_means_all():
    routes = table(("echo", None))
    assert routes.resolve("PATCH", "/echo").route.target == "echo"
    assert routes.resolve("GET", "/other") is None


@pytest.mark.parametrize("bad", ["items/{id", "items/id}", "items/{id:nope}", "{*rest}/tail", "a/{x}/{x}", "a//b", "x/{}"])
def test_malformed_templates_are_rejected_with_the_template_named(bad):
    with pytest.raises(RouteTemplateError, match="route"):
        compile_template(bad)


def test_route_prefix_comes_from_host_json_with_api_as_default(tmp_path):
    host_json = tmp_path / "host.json"
    assert read_route_prefix(host_json) == "api"
    host_json.write_text(json.dumps({"version": "2.0"}))
    assert read_route_prefix(host_json) == "api"
    host_json.write_text(json.dumps({"extensions": {"http": {"routePrefix": ""}}}))
    assert read_route_prefix(host_json) == ""
    host_json.write_text(json.dumps({"extensions": {"http": {"routePrefix": "/v1/"}}}))
    assert read_route_prefix(host_json) == "v1"
