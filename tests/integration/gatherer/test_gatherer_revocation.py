"""Revocation of gatherer tokens by sealing their message stream, through the handlers on the
emulators: a MESSAGE reads no user state, yet nothing a revoked token sends is ever stored, at
once, whatever the order of racing requests, and a revocation stopped part-way is completed by
the next request."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest

from shared_code.gatherer import message_log, protocol
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from tests.support.gatherer import Gatherer

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("emulators")]


def _stream_blobs(username: str) -> list:
    container = blobs.container_client(get_settings().messages_container)
    return sorted(container.list_blobs(name_starts_with=f"{username}/"), key=lambda b: b.name)


def _reads(user: Gatherer) -> list[str]:
    return [item["message"] for item in user.read_all()]


def test_a_message_costs_one_storage_call_and_no_state_read(monkeypatch):
    user = Gatherer().login()
    assert user.send("opens the day's blob")[0] == 201
    reads = []
    real = cosmos.read_item
    monkeypatch.setattr(cosmos, "read_item", lambda *a, **k: reads.append(a) or real(*a, **k))
    assert [user.send(f"m{i}")[0] for i in range(5)] == [201] * 5
    assert reads == []


def test_logout_seals_the_stream_and_the_old_token_is_refused_on_every_path():
    user = Gatherer().login()
    old = user.token
    assert user.send("before")[0] == 201
    assert user.send("logout")[0] == 200
    assert all(blob.get("is_append_blob_sealed") for blob in _stream_blobs(user.username))
    status, body = user.send("after", token=old)
    assert (status, body["message"]) == (401, "token_revoked")
    user.login()
    assert _reads(user) == ["before"]


def test_a_revoked_token_cannot_open_a_new_days_blob(monkeypatch):
    user = Gatherer().login()
    old = user.token
    assert user.send("today")[0] == 201
    assert user.send("logout")[0] == 200
    tomorrow = datetime.now(timezone.utc) + timedelta(days=1)
    monkeypatch.setattr(message_log, "utc_now", lambda: tomorrow)
    status, body = user.send("tomorrow", token=old)
    assert (status, body["message"]) == (401, "token_revoked")
    created = [b for b in _stream_blobs(user.username) if tomorrow.strftime("%Y-%m-%d") in b.name]
    assert [(b.size, bool(b.get("is_append_blob_sealed"))) for b in created] == [(0, True)]


def test_authenticating_again_seals_the_previous_tokens_stream():
    user = Gatherer().login()
    first = user.token
    assert user.send("first token")[0] == 201
    assert user.identify()[0] == 200
    assert user.authenticate()[0] == 200
    assert user.send("first token again", token=first)[1]["message"] == "token_revoked"
    assert user.send("second token")[0] == 201
    assert _reads(user) == ["first token", "second token"]


def test_messages_racing_a_logout_are_stored_once_or_refused():
    user = Gatherer().login()
    assert user.send("opening")[0] == 201
    acknowledged: list[str] = []
    refused: list[int] = []
    logged_out = threading.Event()
    after_logout: list[int] = []

    def sender(index: int) -> None:
        for n in range(40):
            started_after = logged_out.is_set()
            status, _ = user.send(f"{index}-{n}")
            if status == 201:
                acknowledged.append(f"{index}-{n}")
                if started_after:
                    after_logout.append(n)
            else:
                refused.append(status)
    threads = [threading.Thread(target=sender, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    token = user.token
    assert user.send("logout")[0] == 200
    logged_out.set()
    for thread in threads:
        thread.join()
    assert after_logout == []  # nothing that started after the logout answered was stored
    assert set(refused) <= {401}
    user.login()
    assert sorted(_reads(user)) == sorted(["opening", *acknowledged])  # every acknowledged message, once
    assert user.send("old token", token=token)[0] == 401


def test_a_logout_stopped_after_the_first_seal_leaves_the_token_unable_to_write(monkeypatch):
    user = Gatherer().login()
    assert user.send("before")[0] == 201
    real_move = protocol._move

    def cosmos_down(*args, **kwargs):
        raise ServiceUnavailable(detail="the database is unavailable, try again later")
    monkeypatch.setattr(protocol, "_move", cosmos_down)
    assert user.send("logout")[0] == 503
    monkeypatch.setattr(protocol, "_move", real_move)
    assert user.send("still logged in but sealed")[1]["message"] == "token_revoked"
    assert user.send("logout")[0] == 200  # the retry completes the logout
    user.login()
    assert _reads(user) == ["before"]


def test_a_logout_stopped_before_the_second_seal_is_completed_by_the_next_request(monkeypatch):
    user = Gatherer().login()
    old = user.token
    assert user.send("before")[0] == 201
    real_seal = message_log.seal_generation
    calls = {"n": 0}

    def second_seal_fails(username: str, generation: int) -> int:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ServiceUnavailable(detail="file storage is unavailable, try again later")
        return real_seal(username, generation)
    monkeypatch.setattr(message_log, "seal_generation", second_seal_fails)
    # Between the first seal and the recorded revocation, the token opened a new blob.
    real_move = protocol._move

    def move_after_a_straggler(user_record, **changes):
        container = blobs.container_client(get_settings().messages_container)
        container.get_blob_client(message_log.blob_name(user.username, 1, "2099-01-01", 0)).create_append_blob()
        return real_move(user_record, **changes)
    monkeypatch.setattr(protocol, "_move", move_after_a_straggler)
    assert user.send("logout")[0] == 503
    monkeypatch.setattr(protocol, "_move", real_move)
    status, body = user.send("logout", token=old)  # the retry: the token is revoked, the seal completes
    assert (status, body["message"]) == (401, "token_revoked")
    assert all(blob.get("is_append_blob_sealed") for blob in _stream_blobs(user.username))
