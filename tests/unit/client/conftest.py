"""Fixtures for the device client tests: a tiny recording HTTP server on 127.0.0.1, no real network.

``fake_server`` answers each ``(method, path)`` from a route table the test fills in and keeps
every request (method, path, query, headers, body bytes) for assertions.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from client.cli import main
from client.state import DeviceState, load_state


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Reply = tuple[int, Any]  # (status, JSON-able body or raw bytes)
Route = Callable[[Recorded], Reply]


class FakeServer:
    """Routes are ``{(METHOD, path): handler(recorded) -> (status, body)}``; requests are recorded in order."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                parts = urlsplit(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                recorded = Recorded(self.command, parts.path, parse_qs(parts.query),
                                    {k.lower(): v for k, v in self.headers.items()}, body)
                with server._lock:
                    server.requests.append(recorded)
                route = server.routes.get((self.command, parts.path))
                status, reply = route(recorded) if route else (404, {"code": 404, "message": "not_found"})
                data = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(reply, bytes) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def received(self, method: str, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path == path]

    def serve_challenges(self) -> list[str]:
        """Answer ``GET /api/challenge`` with a new challenge each time; returns the list issued so far."""
        issued: list[str] = []

        def challenge(_request: Recorded) -> Reply:
            issued.append(f"Y2hhbGxlbmdl-{len(issued)}_x")  # base64url alphabet, like the server's
            return 200, {"code": 200, "message": "challenge_issued", "challenge": issued[-1],
                         "expires_at": "2030-01-01T00:00:00Z"}

        self.routes[("GET", "/api/challenge")] = challenge
        return issued


@pytest.fixture
def fake_server() -> Iterator[FakeServer]:
    server = FakeServer()
    server.start()
    yield server
    server.stop()


@dataclass
class Part:
    name: str
    filename: str | None
    content_type: str
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Parse a multipart/form-data body with the standard library (independent of the encoder)."""
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body)
    assert message.is_multipart(), content_type
    parts = []
    for part in message.iter_parts():
        parts.append(Part(
            name=part.get_param("name", header="content-disposition"),
            filename=part.get_filename(),
            content_type=part.get_content_type(),
            data=part.get_payload(decode=True),
        ))
    return parts


@dataclass
class Device:
    home: Path
    state: DeviceState


@pytest.fixture
def device(tmp_path: Path, fake_server: FakeServer) -> Device:
    """A device initialised with the CLI in a temporary home, pointing at ``fake_server``."""
    home = tmp_path / "home"
    assert main(["--home", str(home), "device", "init", "--server", fake_server.url, "--device-id", "dev-test"]) == 0
    return Device(home, load_state(home))
