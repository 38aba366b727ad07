"""The message log on real Azurite: concurrent appends, rollover between blobs, paged reads, and
revocation by sealing a generation's stream."""

from __future__ import annotations

import json
import secrets
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest

from shared_code.gatherer import message_log
from shared_code.platform import blobs
from shared_code.platform.config import get_settings

pytestmark = pytest.mark.usefixtures("emulators")


def _user() -> str:
    return "log-" + secrets.token_hex(5)


def _live() -> None:
    """A confirm_live that finds the token live."""


def _append(user: str, message: str, generation: int = 1, **kwargs):
    return message_log.append_message(user, generation, message, _live, **kwargs)


def _lines(user: str) -> list[dict]:
    container = blobs.container_client(get_settings().messages_container)
    lines = []
    for blob in sorted(container.list_blobs(name_starts_with=f"{user}/"), key=lambda b: b.name):
        data = container.get_blob_client(blob.name).download_blob().readall()
        assert data.endswith(b"\n")
        lines += [json.loads(line) for line in data.split(b"\n")[:-1]]
    return lines


def _read_all(user: str, page_size: int) -> list[dict]:
    items, continuation = [], None
    while True:
        page, continuation = message_log.read_messages(user, page_size, continuation)
        items += page
        if continuation is None:
            return items


def test_100_concurrent_appends_from_one_user_give_100_lines_each_once():
    user = _user()
    barrier = threading.Barrier(20)

    def send(index: int) -> str:
        if index < 20:
            barrier.wait()  # the first 20 also race to create the day's blob
        return _append(user, f"message {index}").id

    with ThreadPoolExecutor(20) as pool:
        ids = list(pool.map(send, range(100)))
    lines = _lines(user)
    assert len(lines) == 100
    assert sorted(line["id"] for line in lines) == sorted(ids)
    assert sorted(line["message"] for line in lines) == sorted(f"message {i}" for i in range(100))
    assert {line["user"] for line in lines} == {user}
    assert [m["id"] for m in _read_all(user, 7)] == [line["id"] for line in lines]


def test_a_line_is_json_with_ts_user_message_id():
    line = message_log.encode_line("2026-01-01T00:00:00.000000Z", "dale", 'a\n"b"\u2028🎉', "abc")
    assert line.count(b"\n") == 1 and line.endswith(b"\n")
    assert json.loads(line) == {"ts": "2026-01-01T00:00:00.000000Z", "user": "dale", "message": 'a\n"b"\u2028🎉', "id": "abc"}


def test_rollover_starts_the_next_blob_and_readers_see_one_ordered_stream(monkeypatch):
    monkeypatch.setattr(message_log, "ROLLOVER_BLOCKS", 3)
    user = _user()
    moment = datetime(2026, 3, 4, 12, 0, tzinfo=timezone.utc)
    for index in range(8):
        _append(user, f"m{index}", now=moment)
    container = blobs.container_client(get_settings().messages_container)
    names = sorted(b.name for b in container.list_blobs(name_starts_with=f"{user}/"))
    assert names == [f"{user}/00000001/2026-03-04/00000{i}.jsonl" for i in range(3)]
    assert [m["message"] for m in _read_all(user, 2)] == [f"m{i}" for i in range(8)]
    assert [m["message"] for m in _read_all(user, 100)] == [f"m{i}" for i in range(8)]


def test_a_new_process_continues_in_the_latest_blob(monkeypatch):
    monkeypatch.setattr(message_log, "ROLLOVER_BLOCKS", 2)
    user = _user()
    moment = datetime(2026, 3, 5, 8, 0, tzinfo=timezone.utc)
    for index in range(3):
        _append(user, f"m{index}", now=moment)
    message_log._current_seq.clear()  # what a fresh instance knows
    stored = _append(user, "m3", now=moment)
    assert stored.blob_name == f"{user}/00000001/2026-03-05/000001.jsonl"


def test_days_are_separate_blobs_in_order():
    user = _user()
    for day in (1, 2, 3):
        _append(user, f"day {day}", now=datetime(2026, 1, day, 23, 59, tzinfo=timezone.utc))
    assert [m["message"] for m in _read_all(user, 1)] == ["day 1", "day 2", "day 3"]


def test_generations_follow_one_another_in_the_stream():
    user = _user()
    _append(user, "first token", generation=1, now=datetime(2026, 1, 2, tzinfo=timezone.utc))
    _append(user, "second token", generation=2, now=datetime(2026, 1, 1, tzinfo=timezone.utc))
    assert [m["message"] for m in _read_all(user, 1)] == ["first token", "second token"]


def test_a_sealed_generation_refuses_every_append_and_other_generations_go_on():
    user = _user()
    for day in (1, 2):
        _append(user, f"day {day}", now=datetime(2026, 2, day, tzinfo=timezone.utc))
    assert message_log.seal_generation(user, 1) == 2
    assert message_log.seal_generation(user, 1) == 0  # idempotent
    for day in (1, 2):
        with pytest.raises(message_log.StreamSealed):
            _append(user, "after the seal", now=datetime(2026, 2, day, tzinfo=timezone.utc))
    _append(user, "a new token", generation=2, now=datetime(2026, 2, 2, tzinfo=timezone.utc))
    assert [m["message"] for m in _read_all(user, 10)] == ["day 1", "day 2", "a new token"]


def test_a_new_blob_of_a_revoked_token_is_sealed_and_nothing_is_written():
    user = _user()
    _append(user, "before", now=datetime(2026, 3, 1, tzinfo=timezone.utc))

    def revoked() -> None:
        raise RuntimeError("token revoked")
    with pytest.raises(RuntimeError):
        message_log.append_message(user, 1, "next day", revoked, now=datetime(2026, 3, 2, tzinfo=timezone.utc))
    container = blobs.container_client(get_settings().messages_container)
    created = container.get_blob_client(message_log.blob_name(user, 1, "2026-03-02", 0)).get_blob_properties()
    assert created.size == 0 and created.is_append_blob_sealed
    with pytest.raises(message_log.StreamSealed):  # a later append with the same token too
        _append(user, "next day", now=datetime(2026, 3, 2, tzinfo=timezone.utc))
    assert [m["message"] for m in _read_all(user, 10)] == ["before"]


def test_appends_racing_a_seal_land_before_it_or_are_refused():
    user = _user()
    _append(user, "opening")
    stop = threading.Event()
    outcomes: list[str] = []

    def writer() -> None:
        while not stop.is_set():
            try:
                outcomes.append(_append(user, "racing").id)
            except message_log.StreamSealed:
                outcomes.append("sealed")
                return
    threads = [threading.Thread(target=writer) for _ in range(6)]
    for thread in threads:
        thread.start()
    message_log.seal_generation(user, 1)
    stop.set()
    for thread in threads:
        thread.join()
    stored = [outcome for outcome in outcomes if outcome != "sealed"]
    assert len(_lines(user)) == 1 + len(stored)  # every acknowledged append is in the log, once
    with pytest.raises(message_log.StreamSealed):
        _append(user, "after")
