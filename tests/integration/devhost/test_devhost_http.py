"""HTTP triggers over real HTTP: routing, request building, responses, limits and failures."""

from __future__ import annotations

import logging
import re
import socket

import pytest
import requests

from devhost.routing import read_route_prefix
from devhost.server import ROOT, serving
from tests.fixtures import sample_app

pytestmark = pytest.mark.integration


def test_unknown_path_is_a_json_404(http_host):
    response = requests.get(f"{http_host.base_url}/api/nothing-here", timeout=5)
    assert response.status_code == 404
    assert response.json() == {"code": 404, "message": "not_found", "detail": "no function serves /api/nothing-here"}


def test_known_path_with_wrong_method_is_a_405_with_allow(http_host):
    response = requests.put(f"{http_host.base_url}/api/items/pen", timeout=5)
    assert response.status_code == 405
    assert response.headers["Allow"] == "DELETE, GET"
    body = response.json()
    assert (body["code"], body["message"]) == (405, "method_not_allowed")
    assert "DELETE, GET" in body["detail"]


def test_request_reaches_the_function_as_the_host_builds_it(http_host):
    url = f"{http_host.base_url}/api/echo/a/b%20c?x=1&x=2&empty="
    response = requests.post(url, data=b"raw body", headers={"X-Device": "d-1"}, timeout=5)
    assert response.status_code == 200
    seen = response.json()
    assert seen["method"] == "POST"
    assert seen["url"] == url
    assert seen["params"] == {"x": "1,2", "empty": ""}  # a repeated key: its values joined, as the host does
    assert seen["route_params"] == {"rest": "a/b c"}
    assert seen["headers"]["x-device"] == "d-1"
    assert seen["body"] == "raw body"
    assert seen["function_name"] == "echo"
    record = http_host.wait_for_invocation("echo", lambda r: r.invocation_id == seen["invocation_id"])
    assert (record.trigger, record.status, record.http_status, record.details["method"]) == ("http", "succeeded", 200, "POST")
    assert record.duration_ms > 0


def test_constraints_and_precedence_pick_the_right_function(http_host):
    base = f"{http_host.base_url}/api/items"
    assert requests.get(f"{base}/latest", timeout=5).json() == {"handler": "latest_item"}
    assert requests.get(f"{base}/42", timeout=5).json() == {"handler": "item_by_id", "item_id": "42"}
    assert requests.get(f"{base}/pen", timeout=5).json() == {"handler": "item_by_name", "name": "pen", "method": "GET"}
    assert requests.get(f"{base}/LATEST", timeout=5).json() == {"handler": "latest_item"}
    created = requests.post(base, json={"name": "pen"}, timeout=5)
    assert (created.status_code, created.json()) == (201, {"handler": "create_item", "item": {"name": "pen"}})


def test_optional_parameter(http_host):
    assert requests.get(f"{http_host.base_url}/api/pages", timeout=5).json() == {"page": None}
    assert requests.get(f"{http_host.base_url}/api/pages/3", timeout=5).json() == {"page": "3"}


def test_multipart_body_reaches_the_function_untouched(http_host):
    files = {"first": ("a.bin", b"\x00" * 70_000, "application/octet-stream"), "second": ("b.txt", b"hello", "text/plain")}
    response = requests.post(f"{http_host.base_url}/api/multipart", files=files, data={"note": "x"}, timeout=5)
    assert response.status_code == 200
    assert response.json() == {"files": {"first": 70_000, "second": 5}, "form": {"note": "x"}}


def test_repeated_response_headers_are_all_sent(http_host):
    response = requests.get(f"{http_host.base_url}/api/cookies", timeout=5)
    assert response.raw.headers.getlist("Set-Cookie") == ["a=1; Path=/", "b=2; Path=/; HttpOnly"]
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.text == "two cookies"


def test_exception_is_a_json_500_and_logged_with_traceback(http_host, caplog):
    caplog.set_level(logging.INFO, logger="devhost")
    response = requests.get(f"{http_host.base_url}/api/boom", timeout=5)
    assert response.status_code == 500
    assert response.json()["message"] == "internal_error"
    assert "sample failure" not in response.text
    record = http_host.wait_for_invocation("boom")
    assert (record.status, record.http_status, record.error) == ("failed", 500, "RuntimeError: sample failure")
    failures = [r for r in caplog.records if r.name == "devhost" and r.levelno == logging.ERROR]
    assert failures and failures[-1].exc_info[0] is RuntimeError


def test_async_handler_runs_on_the_event_loop(http_host):
    response = requests.get(f"{http_host.base_url}/api/slow-async", timeout=5)
    assert response.json() == {"handler": "slow_async", "thread": "devhost"}


def test_body_over_the_limit_is_refused_with_413(monkeypatch):
    monkeypatch.setenv("DEVHOST_MAX_REQUEST_BYTES", "1000")
    with serving(sample_app.app, timers=False, blob_triggers=False, route_prefix="api") as host:
        url = f"{host.base_url}/api/echo/x"
        declared = requests.post(url, data=b"x" * 1001, timeout=5)
        chunked = requests.post(url, data=iter([b"x" * 600, b"x" * 600]), timeout=5)
        within = requests.post(url, data=b"x" * 1000, timeout=5)
    for refused in (declared, chunked):
        assert refused.status_code == 413
        assert refused.json() == {"code": 413, "message": "payload_too_large",
                                  "detail": "the request body exceeds 1000 bytes"}
    assert within.status_code == 200
    assert [r.function for r in host.invocations] == ["echo"]


def test_route_prefix_comes_from_host_json_and_port_zero_picks_a_free_port():
    prefix = read_route_prefix(ROOT / "host.json")
    with serving(sample_app.app, timers=False, blob_triggers=False) as host:
        assert host.port > 0 and host.base_url == f"http://127.0.0.1:{host.port}"
        path = "/".join(p for p in (prefix, "pages/7") if p)
        assert requests.get(f"{host.base_url}/{path}", timeout=5).json() == {"page": "7"}
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", host.port), timeout=1)


def test_peer_is_appended_to_x_forwarded_for_as_azures_front_end_does(http_host):
    seen = requests.get(f"{http_host.base_url}/api/echo/xff", timeout=5).json()
    assert re.fullmatch(r"127\.0\.0\.1:\d+", seen["headers"]["x-forwarded-for"])
    sent = {"X-Forwarded-For": "203.0.113.7, 10.0.0.1:80"}
    seen = requests.get(f"{http_host.base_url}/api/echo/xff", headers=sent, timeout=5).json()
    assert re.fullmatch(r"203\.0\.113\.7, 10\.0\.0\.1:80, 127\.0\.0\.1:\d+", seen["headers"]["x-forwarded-for"])
