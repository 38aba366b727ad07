"""The gather client against a recording fake server: the seed's request bodies, bearer use, modes."""

from __future__ import annotations

import io
import sys

import pytest

from client import gather_cli
from client.cli import main

from .conftest import FakeServer, Recorded

TOKEN = "aaa.bbb.ccc"
PASSWORD = "s3cret pass"


def serve_gatherer(server: FakeServer) -> list[str]:
    """A gatherer that accepts everything; returns the list of stored messages."""
    stored: list[str] = []

    def message(request: Recorded):
        text = request.json()["message"]
        if text == "logout":
            return 200, {"code": 200, "message": "logged_out"}
        stored.append(text)
        return 201, {"code": 201, "message": "stored", "id": f"{len(stored):032x}", "ts": "2026-01-01T00:00:00Z"}

    server.routes[("POST", "/identify")] = lambda r: (201, {"code": 201, "message": "identified"})
    server.routes[("POST", "/authenticate")] = lambda r: (200, {"code": 200, "message": "authenticated", "token": TOKEN})
    server.routes[("POST", "/message")] = message
    server.routes[("GET", "/messages")] = lambda r: (200, {"code": 200, "message": "messages_listed", "continuation": None,
                                                           "messages": [{"id": "1", "ts": "t", "message": m} for m in stored]})
    return stored


def test_non_interactive_sends_the_seed_bodies_with_a_bearer_token(fake_server, tmp_path, monkeypatch, capsys):
    stored = serve_gatherer(fake_server)
    source = tmp_path / "in.txt"
    source.write_text("one\n\ntwo \"quoted\"\r\n", encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert main(["gather", fake_server.url, "--user", "dale", "--password-stdin", "--file", str(source)]) == 0
    assert fake_server.received("POST", "/identify")[0].json() == {"message_type": "IDENTIFY", "username": "dale"}
    assert fake_server.received("POST", "/authenticate")[0].json() == {
        "message_type": "AUTHENTICATE", "username": "dale", "password": PASSWORD}
    sends = fake_server.received("POST", "/message")
    assert [r.json()["message"] for r in sends] == ["one", 'two "quoted"', "logout"]
    assert all(r.json()["message_type"] == "MESSAGE" and r.headers["authorization"] == f"Bearer {TOKEN}" for r in sends)
    assert stored == ["one", 'two "quoted"']
    captured = capsys.readouterr()
    assert PASSWORD not in captured.out + captured.err and TOKEN not in captured.out + captured.err


def test_read_prints_messages_safely_for_a_terminal(fake_server, monkeypatch):
    stored = serve_gatherer(fake_server)
    stored.append("evil \x1b[2J text\nnext")
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    assert main(["gather", fake_server.url, "--user", "dale", "--password-stdin", "--read"], out=out) == 0
    assert out.getvalue() == "t  evil ?[2J text?next\n"
    assert not fake_server.received("POST", "/message")[:-1]  # --read alone sends nothing but the logout


@pytest.mark.parametrize("args", [["--read"], ["--file", "x.txt"], ["--password-stdin"]])
def test_non_interactive_options_need_a_user(fake_server, args, capsys):
    assert main(["gather", fake_server.url, *args]) == 1
    assert "need --user" in capsys.readouterr().err and not fake_server.requests


def test_interactive_prompts_and_exits_on_eof(fake_server, monkeypatch):
    stored = serve_gatherer(fake_server)
    typed = iter(["dale", "hello", "/help"])

    def next_line(prompt=""):
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(gather_cli, "prompt_line", next_line)
    monkeypatch.setattr(gather_cli, "prompt_password", lambda prompt="": PASSWORD)
    out = io.StringIO()
    assert main(["gather", fake_server.url], out=out) == 0
    assert stored == ["hello"] and "/server URL" in out.getvalue()
    assert fake_server.received("POST", "/message")[-1].json()["message"] == "logout"
