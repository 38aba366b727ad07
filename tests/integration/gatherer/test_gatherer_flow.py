"""Message gatherer through the handlers on the real emulators: states, tokens, messages."""

from __future__ import annotations

import json
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from shared_code.gatherer import access_tokens
from shared_code.platform import cosmos
from tests.support.gatherer import JSON, Gatherer, post

pytestmark = pytest.mark.usefixtures("emulators")


def _state(user: Gatherer) -> str:
    return cosmos.read_item(cosmos.GATHERER_USERS, user.username, user.username)["state"]


def test_seed_sequence_identify_authenticate_message_logout():
    user = Gatherer()
    assert user.identify() == (201, {"code": 201, "message": "identified", "username": user.username,
                                     "state": "identified"})
    status, body = user.authenticate()
    assert status == 200 and body["message"] == "authenticated" and body["token_type"] == "Bearer"
    assert access_tokens.verify_token(body["token"])["sub"] == user.username
    status, body = user.send("Hail Dale!")
    assert status == 201 and body["message"] == "stored" and len(body["id"]) == 32
    assert [m["message"] for m in user.read_all()] == ["Hail Dale!"]
    assert user.send("logout")[0:2][0] == 200 and _state(user) == "grounded"
    # a known user identifies again (200), and the password set by the first AUTHENTICATE holds
    assert user.identify()[0] == 200 and _state(user) == "identified"
    assert user.authenticate("wrong password")[0] == 401 and _state(user) == "identified"
    assert user.authenticate()[0] == 200 and _state(user) == "authenticated"


def test_password_is_stored_only_as_a_bcrypt_hash():
    user = Gatherer().login()
    record = cosmos.read_item(cosmos.GATHERER_USERS, user.username, user.username)
    assert record["password_hash"].startswith("$2b$12$") and user.password not in json.dumps(record)


def test_authenticate_before_identify_is_not_identified():
    user = Gatherer()
    status, body = user.authenticate()
    assert (status, body["message"]) == (409, "not_identified")


def test_authenticate_twice_is_not_identified_the_second_time():
    user = Gatherer().login()
    status, body = user.authenticate()
    assert (status, body["message"]) == (409, "not_identified")


def test_message_without_token_or_after_identify_only():
    user = Gatherer()
    user.identify()
    status, body = user.send("early")
    assert (status, body["message"]) == (401, "missing_token")
    assert body["code"] == 401


def test_identifying_again_keeps_the_live_token_until_authenticate_replaces_it():
    user = Gatherer().login()
    old_token = user.token
    assert user.identify()[0] == 200
    assert user.send("after re-identify")[0] == 201 and _state(user) == "authenticated"
    assert user.authenticate()[0] == 200 and user.token != old_token
    status, body = user.send("with the old token", token=old_token)
    assert (status, body["message"]) == (401, "token_revoked")
    assert [item["message"] for item in user.read_all()] == ["after re-identify"]


def test_authenticate_after_logout_needs_identify_again():
    user = Gatherer().login()
    user.send("logout")
    status, body = user.authenticate()
    assert (status, body["message"]) == (409, "not_identified") and _state(user) == "grounded"


def test_reading_while_only_identified_is_not_authenticated():
    user = Gatherer().login()
    user.send("kept")
    user.send("logout")
    user.identify()
    status, body = user.read()
    assert (status, body["message"]) == (401, "token_revoked") and _state(user) == "identified"


def test_message_after_logout_and_with_a_replaced_token_is_revoked():
    user = Gatherer().login()
    old = user.token
    assert user.send("logout")[0] == 200
    status, body = user.send("still there?", token=old)
    assert (status, body["message"]) == (401, "token_revoked")
    assert user.read(token=old)[0] == 401
    user.login()  # a new token revokes nothing else but the old one stays dead
    assert user.send("x", token=old)[1]["message"] == "token_revoked"
    assert user.send("x")[0] == 201


def test_bearer_header_is_accepted_for_messages():
    user = Gatherer().login()
    status, _ = post("gather_message", "message", {"message_type": "MESSAGE", "message": "via header"},
                     headers={"Authorization": f"Bearer {user.token}"})
    assert status == 201 and [m["message"] for m in user.read_all()] == ["via header"]


def test_forged_token_for_another_user_is_rejected():
    victim, attacker = Gatherer().login(), Gatherer().login()
    header, _payload, signature = attacker.token.split(".")
    _h, payload, _s = victim.token.split(".")
    status, body = attacker.send("impersonation", token=f"{header}.{payload}.{signature}")
    assert (status, body["message"]) == (401, "invalid_token")
    assert victim.read_all() == []


@pytest.mark.parametrize("path, name, document", [
    ("identify", "gather_identify", {"message_type": "AUTHENTICATE", "username": "dale"}),
    ("identify", "gather_identify", {"username": "dale"}),
    ("authenticate", "gather_authenticate", {"message_type": "IDENTIFY", "username": "dale", "password": "p"}),
    ("message", "gather_message", {"message_type": "IDENTIFY", "token": "x", "message": "m"}),
])
def test_wrong_message_type_is_400(path, name, document):
    status, body = post(name, path, document)
    assert (status, body["message"]) == (400, "invalid_message_type")


@pytest.mark.parametrize("username, message", [
    (None, "missing_fields"), ("", "missing_fields"), ("x" * 33, "invalid_username"),
    ("dale smith", "invalid_username"), ("..", "invalid_username"), ("d/ale", "invalid_username"),
    (42, "invalid_username"),
])
def test_invalid_usernames_are_400(username, message):
    status, body = post("gather_identify", "identify", {"message_type": "IDENTIFY", "username": username})
    assert (status, body["message"]) == (400, message)


def test_messages_with_newlines_quotes_emoji_and_json_are_stored_verbatim():
    user = Gatherer().login()
    messages = ['line one\nline two\r\nthree', 'she said "hi", then \'bye\'', "emoji 🎉🧪 and ümlaut",
                '{"message": "nested", "id": "fake"}', "tab\tnull\u0000end", "back\\slash", " ", "logout "]
    for message in messages:
        assert user.send(message)[0] == 201
    assert [m["message"] for m in user.read_all(page_size=3)] == messages


def test_invalid_utf8_body_is_400_and_stores_nothing():
    user = Gatherer().login()
    raw = b'{"message_type": "MESSAGE", "token": "' + user.token.encode() + b'", "message": "bad \xff\xfe bytes"}'
    status, body = post("gather_message", "message", raw)
    assert (status, body["message"]) == (400, "invalid_json") and body["code"] == 400
    status, body = user.send("\ud800 lone surrogate")  # refused where the body is parsed
    assert (status, body["message"]) == (400, "invalid_json")
    assert user.read_all() == []


def test_message_size_limit_is_in_utf8_bytes():
    user = Gatherer().login()
    assert user.send("é" * 32768)[0] == 201  # 65536 bytes
    status, body = user.send("é" * 32768 + "x")
    assert (status, body["message"]) == (413, "message_too_large")
    assert user.send("")[1]["message"] == "missing_fields"
    assert user.send(["not", "text"])[1]["message"] == "invalid_message"
    assert len(user.read_all()) == 1


def test_racing_authentications_move_the_state_once():
    user = Gatherer()
    user.identify()
    barrier = threading.Barrier(4)

    def attempt(index: int) -> tuple[int, dict]:
        barrier.wait()
        return Gatherer(user.username, password=f"password-{index}").authenticate()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    winners = [body for status, body in results if status == 200]
    assert len(winners) == 1
    assert all(status == 409 and body["message"] in ("state_conflict", "not_identified")
               for status, body in results if status != 200)
    assert access_tokens.verify_token(winners[0]["token"])["sub"] == user.username
    record = cosmos.read_item(cosmos.GATHERER_USERS, user.username, user.username)
    assert record["token_jti"] == access_tokens.verify_token(winners[0]["token"])["jti"]


def test_racing_identifies_of_a_new_user_create_it_once():
    username = Gatherer().username
    barrier = threading.Barrier(4)

    def attempt(_):
        barrier.wait()
        return Gatherer(username).identify()

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(attempt, range(4)))
    statuses = [status for status, _ in results]
    assert statuses.count(201) == 1 and set(statuses) <= {200, 201, 409}
    assert all(body["message"] == "state_conflict" for status, body in results if status == 409)
    assert _state(Gatherer(username)) == "identified"


def test_racing_logouts_one_wins():
    user = Gatherer().login()
    barrier = threading.Barrier(3)

    def attempt(_):
        barrier.wait()
        return user.send("logout")

    with ThreadPoolExecutor(3) as pool:
        statuses = sorted(status for status, _ in pool.map(attempt, range(3)))
    assert statuses.count(200) == 1 and set(statuses) <= {200, 401, 409}
    assert _state(user) == "grounded"


def test_reading_needs_a_bearer_token_and_rejects_foreign_continuations():
    owner, other = Gatherer().login(), Gatherer().login()
    for index in range(3):
        owner.send(f"secret {index}")
    status, body = owner.read(page_size=1)
    assert status == 200 and body["continuation"]
    status, body = other.read(continuation=body["continuation"])
    assert (status, body["message"]) == (400, "invalid_continuation")
    assert other.read(continuation="garbage!")[1]["message"] == "invalid_continuation"
    status, body = post("gather_message", "message", b"{}", headers=JSON)
    assert status == 400


def test_expired_token_is_rejected_for_messages(monkeypatch):
    from datetime import timedelta

    from shared_code.platform.timeutil import utc_now

    user = Gatherer().login()
    monkeypatch.setattr(access_tokens, "utc_now", lambda: utc_now() - timedelta(seconds=3600))
    user.identify()
    user.authenticate()  # a token issued an hour ago: already expired
    monkeypatch.undo()
    status, body = user.send("too late")
    assert (status, body["message"]) == (401, "invalid_token") and "expired" in body["detail"]
