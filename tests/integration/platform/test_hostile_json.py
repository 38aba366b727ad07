"""Hostile JSON bodies on every JSON endpoint, with valid credentials: a clear 400, never a 500.

Each endpoint gets (a) a body nested tens of thousands of levels deep, which made the stdlib
parser raise ``RecursionError``, and (b) its usual fields with one of them holding a lone
surrogate escape (``"\\ud800"``: valid JSON, but no Unicode character, so UTF-8 encoding failed
deep inside the domain code). Both must be refused where bodies are parsed, before any work.
"""

from __future__ import annotations

import json

import pytest

from tests.support.accounts import new_user
from tests.support.devices import DeviceActor, call
from tests.support.gatherer import Gatherer

pytestmark = pytest.mark.integration

LONE_SURROGATE = "\ud800"
DEEP_ARRAY = b"[" * 30_000 + b"]" * 30_000  # 60 KB, under the 64 KiB body limit
DEEP_OBJECT = b'{"a":' * 10_000 + b"1" + b"}" * 10_000


@pytest.fixture(scope="module")
def actors(emulators, mail_server) -> dict:
    device = DeviceActor()
    assert device.register()[0] == 201
    assert device.attest()[0] == 200
    gatherer = Gatherer().login()
    return {"device": device.headers, "sid": {"sid": new_user(mail_server).sid}, "gatherer": gatherer}


def endpoints(actors: dict) -> list[tuple[str, str, dict, dict]]:
    """(function name, route, auth headers, a well-formed body) for each of the 17 JSON endpoints."""
    device, sid, gatherer = actors["device"], actors["sid"], actors["gatherer"]
    email = {"email": "alice@example.org"}
    return [
        ("register_device", "register-device", {}, {"deviceid": "dev-x", "deviceToken": "t" * 40}),
        ("attest_device", "attest-device", device, {"public_key": "k", "challenge": "c" * 43, "signature": "AAAA"}),
        ("verify_integrity", "verify", device, {"token": "a.b.c.d.e", "request_hash": "h"}),
        ("gather_identify", "identify", {}, {"message_type": "IDENTIFY", "username": "bob"}),
        ("gather_authenticate", "authenticate", {}, {"message_type": "AUTHENTICATE", "username": gatherer.username,
                                                     "password": "p"}),
        ("gather_message", "message", {}, {"message_type": "MESSAGE", "token": gatherer.token, "message": "hi"}),
        ("register", "register", {}, {**email, "password": "p" * 12}),
        ("verify_register", "verify_register", {}, {**email, "otp": "123456"}),
        ("login", "login", {}, {**email, "password": "p" * 12}),
        ("verify_login", "verify_login", {}, {**email, "otp": "123456"}),
        ("generate_token", "generate_token", {}, {"ttl_seconds": 60, "scope": "s"}),
        ("revoke_token", "revoke_token", {}, {"token": "t" * 43}),
        ("get_public_key", "get_public_key", sid, {"file_name": "f.txt"}),
        ("get_private_key", "get_private_key", sid, {"file_name": "f.txt"}),
        ("grant_access", "grant_access", sid, {"file_name": "f.txt", "friend_email": "bob@example.org"}),
        ("revoke_access", "revoke_access", sid, {"file_name": "f.txt", "friend_email": "bob@example.org"}),
        ("upload", "upload", sid, {"file_name": "f.txt", "encrypted_data": "AAAA", "encrypted_aes_key": "AAAA",
                                   "encrypted_aes_initial_vector": "AAAA"}),
    ]


def _post(name: str, route: str, headers: dict, body: bytes) -> tuple[int, dict]:
    return call(name, "POST", route, headers={"content-type": "application/json", **headers}, body=body)


def test_deeply_nested_bodies_are_400_invalid_json_on_every_json_endpoint(actors):
    answers = {}
    for name, route, headers, _ in endpoints(actors):
        for label, body in (("array", DEEP_ARRAY), ("object", DEEP_OBJECT)):
            status, document = _post(name, route, headers, body)
            answers[f"{name} {label}"] = (status, document["message"])
    assert answers == {key: (400, "invalid_json") for key in answers}


def test_a_lone_surrogate_in_any_field_is_400_invalid_json_on_every_json_endpoint(actors):
    answers = {}
    for name, route, headers, fields in endpoints(actors):
        for field in fields:
            hostile = {**fields, field: fields[field] + LONE_SURROGATE if isinstance(fields[field], str) else LONE_SURROGATE}
            status, document = _post(name, route, headers, json.dumps(hostile).encode())
            answers[f"{name}.{field}"] = (status, document["message"])
        status, document = _post(name, route, headers, json.dumps({**fields, LONE_SURROGATE: 1}).encode())
        answers[f"{name} key"] = (status, document["message"])
    assert answers == {key: (400, "invalid_json") for key in answers}
