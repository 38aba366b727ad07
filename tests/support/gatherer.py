"""Message-gatherer helpers for tests: the seed's requests, sent straight to the handlers."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from tests.support.devices import call

JSON = {"content-type": "application/json"}


def new_username() -> str:
    return "u-" + secrets.token_hex(6)


def post(name: str, path: str, document: Any, headers: dict | None = None) -> tuple[int, dict]:
    body = document if isinstance(document, bytes) else json.dumps(document).encode()
    return call(name, "POST", path, headers={**JSON, **(headers or {})}, body=body)


@dataclass
class Gatherer:
    """One user of the message gatherer, driven through the handlers."""

    username: str = field(default_factory=new_username)
    password: str = "correct horse battery staple"
    token: str | None = None

    def identify(self) -> tuple[int, dict]:
        return post("gather_identify", "identify", {"message_type": "IDENTIFY", "username": self.username})

    def authenticate(self, password: str | None = None) -> tuple[int, dict]:
        status, body = post("gather_authenticate", "authenticate", {
            "message_type": "AUTHENTICATE", "username": self.username, "password": password or self.password})
        if status == 200:
            self.token = body["token"]
        return status, body

    def login(self) -> "Gatherer":
        assert self.identify()[0] in (200, 201)
        status, body = self.authenticate()
        assert status == 200, body
        return self

    def send(self, message: Any, token: str | None = None) -> tuple[int, dict]:
        return post("gather_message", "message",
                    {"message_type": "MESSAGE", "token": token or self.token, "message": message})

    def read(self, page_size: int | None = None, continuation: str | None = None,
             token: str | None = None) -> tuple[int, dict]:
        params = {k: str(v) for k, v in (("page_size", page_size), ("continuation", continuation)) if v}
        return call("gather_messages", "GET", "messages", params=params,
                    headers={"Authorization": f"Bearer {token or self.token}"})

    def read_all(self, page_size: int = 50) -> list[dict]:
        items, continuation = [], None
        while True:
            status, body = self.read(page_size, continuation)
            assert status == 200, body
            items += body["messages"]
            continuation = body["continuation"]
            if not continuation:
                return items
