"""The message gatherer end to end: the client (library and CLI) against devhost over real HTTP."""

from __future__ import annotations

import io
import json
import secrets
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from client import cli, gather_cli
from client.device_api import ClientError
from client.gather_api import GatherClient

pytestmark = pytest.mark.e2e
PASSWORD = "e2e password, not a secret"


def _name() -> str:
    return "e2e-" + secrets.token_hex(5)


def _logged_in(live_app) -> GatherClient:
    client = GatherClient(live_app.base_url)
    client.login(_name(), PASSWORD)
    return client


def test_seed_sequence_over_http(live_app):
    client = GatherClient(live_app.base_url)
    name = _name()
    assert client.identify(name)["code"] == 201
    assert client.authenticate(name, PASSWORD)["message"] == "authenticated"
    assert client.send("Hail Dale!")["code"] == 201
    assert [m["message"] for m in client.iter_messages()] == ["Hail Dale!"]
    token = client._token
    assert client.logout()["message"] == "logged_out"
    reuse = requests.post(f"{live_app.base_url}/message", timeout=10,
                          json={"message_type": "MESSAGE", "token": token, "message": "after logout"})
    assert reuse.status_code == 401 and reuse.json()["message"] == "token_revoked"
    assert reuse.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.identify(name)["code"] == 200
    with pytest.raises(ClientError) as refused:
        client.authenticate(name, "another password")
    assert refused.value.status == 401


def test_out_of_order_messages_over_http(live_app):
    client = GatherClient(live_app.base_url)
    name = _name()
    with pytest.raises(ClientError) as refused:
        client.authenticate(name, PASSWORD)
    assert (refused.value.status, refused.value.message) == (409, "not_identified")
    client.login(name, PASSWORD)
    client.identify(name)  # a repeated IDENTIFY keeps the live authentication
    assert client.send("still authenticated")["message"] == "stored"
    token = client._token
    client.logout()
    client.identify(name)  # Identified now, but the logged-out token stays dead
    client._token = token
    with pytest.raises(ClientError) as refused:
        client.send("not now")
    assert (refused.value.status, refused.value.message) == (401, "token_revoked")


def test_invalid_utf8_over_http_is_the_apps_json_400(live_app):
    client = _logged_in(live_app)
    body = b'{"message_type":"MESSAGE","message":"\xc3\x28 broken"}'
    answer = requests.post(f"{live_app.base_url}/message", data=body, timeout=10,
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {client._token}"})
    assert answer.status_code == 400 and answer.json() == {
        "code": 400, "message": "invalid_json", "detail": "request body is not valid UTF-8 JSON"}
    assert list(client.iter_messages()) == []


def test_100_concurrent_messages_from_one_user_over_http_are_each_stored_once(live_app):
    client = _logged_in(live_app)
    texts = [f"concurrent {i} \"quoted\"\nsecond line 🎉" for i in range(100)]
    with ThreadPoolExecutor(16) as pool:
        ids = list(pool.map(lambda text: client.send(text)["id"], texts))
    stored = list(client.iter_messages(page_size=30))
    assert len(stored) == 100
    assert sorted(m["id"] for m in stored) == sorted(ids)
    assert sorted(m["message"] for m in stored) == sorted(texts)


def test_cli_sends_a_file_and_reads_it_back(live_app, tmp_path, monkeypatch, capsys):
    source = tmp_path / "notes.txt"
    lines = ["first line", 'with "quotes", commas, and emoji 🎉', "", "  indented", "last"]
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    name = _name()
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main(["gather", live_app.base_url, "--user", name, "--password-stdin", "--file", str(source)]) == 0
    assert "sent 4 message(s)" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO(PASSWORD + "\n"))
    out = io.StringIO()
    assert cli.main(["gather", live_app.base_url, "--user", name, "--password-stdin", "--read", "--json"], out=out) == 0
    assert [json.loads(line)["message"] for line in out.getvalue().splitlines()] == [line for line in lines if line]


def test_cli_reads_messages_from_stdin_and_a_wrong_password_fails(live_app, monkeypatch, capsys):
    name = _name()
    monkeypatch.setattr(sys, "stdin", io.StringIO(f"{PASSWORD}\none\ntwo\n"))
    assert cli.main(["gather", live_app.base_url, "--user", name, "--password-stdin"]) == 0
    monkeypatch.setattr(sys, "stdin", io.StringIO("wrong\n"))
    assert cli.main(["gather", live_app.base_url, "--user", name, "--password-stdin", "--read"]) == 1
    assert "invalid_credentials (401)" in capsys.readouterr().err


def test_interactive_session_with_user_switch_and_exit(live_app, monkeypatch):
    first, second = _name(), _name()
    typed = iter([first, "hello from first", "/read", "help", f"/user {second}", "hello from second",
                  "logout", second, "/server not-a-url", "exit"])
    monkeypatch.setattr(gather_cli, "prompt_line", lambda prompt="": next(typed))
    monkeypatch.setattr(gather_cli, "prompt_password", lambda prompt="": PASSWORD)
    out = io.StringIO()
    assert cli.main(["gather", live_app.base_url], out=out) == 0
    text = out.getvalue()
    assert "hello from first" in text and "/user NAME" in text and "logged out" in text
    check = GatherClient(live_app.base_url)
    check.login(second, PASSWORD)
    assert [m["message"] for m in check.iter_messages()] == ["hello from second"]
    check.login(first, PASSWORD)
    assert [m["message"] for m in check.iter_messages()] == ["hello from first"]
