"""GET /messages continuations are sealed tokens: only what the API returned to this user reads on.

Before, a continuation was plain base64 JSON ``{"b": blob, "o": offset}``: one naming the caller's
own blob at offset 3 was honoured and the read started inside a JSON line (500).
"""

from __future__ import annotations

import base64
import json

import pytest

from shared_code.gatherer import message_log
from tests.support.gatherer import Gatherer

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(emulators):
    """Every test here runs against the emulators."""


def _made_up(name: str, offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"b": name, "o": offset}).encode()).decode().rstrip("=")


def test_a_client_made_position_in_the_callers_own_blob_is_400_not_500():
    user = Gatherer().login()
    stored = [user.send(f"line {index}")[1] for index in range(3)]
    blob = message_log._user_blobs(user.username)[0][0]
    for offset in (0, 3, 10_000):
        status, body = user.read(continuation=_made_up(blob, offset))
        assert (status, body["message"]) == (400, "invalid_continuation"), offset
    assert [item["id"] for item in user.read_all(page_size=2)] == [item["id"] for item in stored]


def test_an_altered_continuation_is_refused():
    user = Gatherer().login()
    for index in range(3):
        user.send(f"line {index}")
    status, body = user.read(page_size=1)
    token = body["continuation"]
    payload, _, mac = token.partition(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps({"b": json.loads(base64.urlsafe_b64decode(payload + "==")) ["b"], "o": 0}).encode()).decode().rstrip("=")
    for forged in (f"{forged_payload}.{mac}", f"{payload}.{'0' * 64}", payload, token + "0", token[:-1]):
        status, answer = user.read(continuation=forged)
        assert (status, answer["message"]) == (400, "invalid_continuation"), forged
    status, page = user.read(page_size=1, continuation=token)
    assert status == 200 and page["messages"][0]["message"] == "line 1"
