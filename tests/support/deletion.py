"""Account deletion through the handlers, for the integration tests: users who own and share
stored files, the deletion code mailed to the ``mail_server`` fixture, the two deletion calls."""

from __future__ import annotations

import json
import os

from devhost.mailbox import Mailbox
from shared_code.accounts import otp
from shared_code.filestore import kms
from shared_code.platform import blobs
from shared_code.platform.config import get_settings
from tests.support.accounts import TestUser, new_user
from tests.support.devices import call
from tests.support.files import User, unique_name
from tests.support.mail import latest_otp, otp_count


def store_user(user: TestUser) -> User:
    """The same account driving the KMS and store handlers."""
    return User(user.email, user.sid)


def sharing_pair(mailbox: Mailbox) -> tuple[TestUser, TestUser, str, str]:
    """Alice owns a stored file she granted to Bob; Bob owns one he granted to Alice:
    ``(alice, bob, her file name, his file name)``."""
    alice_account, bob_account = new_user(mailbox), new_user(mailbox)
    alice, bob = store_user(alice_account), store_user(bob_account)
    hers, his = unique_name("hers"), unique_name("his")
    alice.put(hers, os.urandom(4096))
    bob.put(his, os.urandom(4096))
    assert alice.grant(hers, bob.email)[0] == 200 and bob.grant(his, alice.email)[0] == 200
    return alice_account, bob_account, hers, his


def post(name: str, route: str, sid: str | None, document: dict) -> tuple[int, dict]:
    headers = {"content-type": "application/json", **({"sid": sid} if sid else {})}
    return call(name, "POST", route, headers=headers, body=json.dumps(document).encode())


def request_code(mailbox: Mailbox, user: TestUser, password: str | None = None) -> tuple[int, dict, str | None]:
    """POST /delete_account/otp; ``(status, body, the mailed code or None)``."""
    before = otp_count(mailbox, user.email, otp.DELETE)
    status, body = post("delete_account_otp", "delete_account/otp", user.sid, {"password": password or user.password})
    code = latest_otp(mailbox, user.email, otp.DELETE, after=before) if status == 200 else None
    return status, body, code


def delete(user: TestUser, code: str, password: str | None = None) -> tuple[int, dict]:
    """POST /delete_account."""
    return post("delete_account", "delete_account", user.sid, {"password": password or user.password, "otp": code})


def encrypted_blob_exists(file_name: str) -> bool:
    return blobs.container_client(get_settings().encrypted_files_container).get_blob_client(kms.key_id(file_name)).exists()
