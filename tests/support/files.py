"""Users, sessions and requests for the KMS and encrypted-store handlers (integration tests).

Users are written straight into the ``users`` container and sessions made with
:func:`shared_code.accounts.sessions.create_session`: the accounts endpoints are another area's.
"""

from __future__ import annotations

import base64
import json
import secrets
from dataclasses import dataclass
from typing import Any

from client.envelope import Sealed, seal
from shared_code.accounts import sessions
from shared_code.accounts.users import user_key
from shared_code.platform import cosmos
from shared_code.platform.timeutil import to_iso, utc_now
from tests.support.devices import call


def register_user(email: str) -> None:
    cosmos.create_item(cosmos.USERS, {"id": user_key(email), "email": email, "password_hash": "x", "created_at": to_iso(utc_now())})


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unique_name(prefix: str = "file") -> str:
    return f"{prefix}-{secrets.token_hex(6)}.bin"


@dataclass
class User:
    """A registered user with a live session, driving the handlers."""

    email: str
    sid: str

    @classmethod
    def new(cls, prefix: str = "user") -> "User":
        email = f"{prefix}-{secrets.token_hex(5)}@example.org"
        register_user(email)
        return cls(email, sessions.create_session(email))

    def post(self, name: str, document: Any, *, raw: bytes | None = None) -> tuple[int, dict]:
        body = raw if raw is not None else json.dumps(document).encode()
        return call(name, "POST", name, headers={"sid": self.sid, "content-type": "application/json"}, body=body)

    def public_key(self, file_name: str) -> tuple[int, dict]:
        return self.post("get_public_key", {"file_name": file_name})

    def private_key(self, file_name: str) -> tuple[int, dict]:
        return self.post("get_private_key", {"file_name": file_name})

    def grant(self, file_name: str, friend: str) -> tuple[int, dict]:
        return self.post("grant_access", {"file_name": file_name, "friend_email": friend})

    def revoke(self, file_name: str, friend: str) -> tuple[int, dict]:
        return self.post("revoke_access", {"file_name": file_name, "friend_email": friend})

    def upload(self, file_name: str, sealed: Sealed, *, if_match: str | None = None, **overrides: Any) -> tuple[int, dict]:
        document = {"file_name": file_name, "encrypted_data": b64(sealed.encrypted_data),
                    "encrypted_aes_key": b64(sealed.encrypted_aes_key),
                    "encrypted_aes_initial_vector": b64(sealed.encrypted_aes_initial_vector), **overrides}
        headers = {"sid": self.sid, "content-type": "application/json", **({"if-match": if_match} if if_match else {})}
        body = json.dumps({k: v for k, v in document.items() if v is not None}).encode()
        return call("upload", "POST", "upload", headers=headers, body=body)

    # -- the key service --

    def unwrap(self, file_name: str, encrypted_aes_key: object, key_version: int | None = None) -> tuple[int, dict]:
        document = {"file_name": file_name, "encrypted_aes_key": encrypted_aes_key, "key_version": key_version}
        return self.post("unwrap_key", {k: v for k, v in document.items() if v is not None})

    def rotate(self, file_name: str, from_version: int | None = None) -> tuple[int, dict]:
        document = {"file_name": file_name, "from_version": from_version}
        return self.post("rotate_file_key", {k: v for k, v in document.items() if v is not None})

    def retire(self, file_name: str, min_version: int) -> tuple[int, dict]:
        return self.post("retire_file_key", {"file_name": file_name, "min_version": min_version})

    def download(self, file_name: str) -> tuple[int, dict]:
        return call("download", "GET", "download", headers={"sid": self.sid}, params={"file_name": file_name})

    def list_files(self) -> tuple[int, dict]:
        return call("list_files_of_user", "GET", "list_files", headers={"sid": self.sid})

    def put(self, file_name: str, plaintext: bytes) -> Sealed:
        """Reserve ``file_name``, seal ``plaintext`` under its KMS key, upload; returns the envelope."""
        status, body = self.public_key(file_name)
        assert status == 200, body
        sealed = seal(plaintext, file_name, base64.b64decode(body["kms_public_key"]))
        status, body = self.upload(file_name, sealed)
        assert (status, body["message"]) == (200, "upload_success"), body
        return sealed
