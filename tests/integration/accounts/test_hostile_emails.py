"""Valid email addresses that are not valid Cosmos DB ids (RFC 5322 ``atext`` allows ``/ ? #``),
through the whole account life: register, verify, login, session, being granted a file, listing.

Before ids were derived by hashing, such an address answered 500 or 503 after its code had been
mailed and counted; now every valid address works, and an invalid one is refused before any
mail is sent or counted.
"""

from __future__ import annotations

import json
import secrets

import pytest

from shared_code.accounts import otp, throttle
from shared_code.accounts.users import user_key
from shared_code.platform import cosmos, rate_limit
from tests.support.accounts import otp_item, post, stored_user, strong_password
from tests.support.devices import call
from tests.support.mail import latest_otp, otp_count

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def _stack(emulators, mail_server):
    """Every test here runs against the emulators and the test mailbox."""


def _sign_up(mail_server, email: str, password: str) -> str:
    """Register and log in through the handlers; returns the session id."""
    for start, finish, purpose in (("register", "verify_register", otp.REGISTER), ("login", "verify_login", otp.LOGIN)):
        before = otp_count(mail_server, email, purpose)
        status, body = post(start, {"email": email, "password": password})
        assert status == 200, body
        status, body = post(finish, {"email": email, "otp": latest_otp(mail_server, email, purpose, after=before)})
        assert status == 200, body
    return body["sid"]


@pytest.mark.parametrize("local", ["a#b", "q?x", "s/l", "x#?/y", "%2f", "#", "!$&'*+=^`{|}~"])
def test_an_address_with_characters_cosmos_refuses_in_ids_works_end_to_end(mail_server, local):
    email = f"{local}-{secrets.token_hex(4)}@example.org"
    sid = _sign_up(mail_server, email, strong_password())
    assert stored_user(email)["email"] == email
    assert cosmos.require_legal_id(user_key(email)) and cosmos.require_legal_id(otp._item_id(email, otp.LOGIN))
    assert otp_item(email, otp.LOGIN)["used_at"]  # the login code was used up (kept, marked used, until it expires)
    # ...and it can be named as a friend: its grant lives in a partition keyed by the address itself.
    owner_sid = _sign_up(mail_server, f"owner-{secrets.token_hex(4)}@example.org", strong_password())
    file_name = f"shared-{secrets.token_hex(4)}.txt"
    assert post("get_public_key", {"file_name": file_name}, {"sid": owner_sid})[0] == 200
    status, body = post("grant_access", {"file_name": file_name, "friend_email": email}, {"sid": owner_sid})
    assert (status, body["message"]) == (200, "grant_success")
    status, body = call("list_files_of_user", "GET", "list_files", headers={"sid": sid})
    assert (status, body["files"]) == (200, [file_name])


def test_an_invalid_address_is_refused_before_any_mail_is_sent_or_counted(mail_server):
    email = f"no-at-sign-{secrets.token_hex(4)}.example.org"
    for name in ("register", "login"):
        status, body = post(name, {"email": email, "password": strong_password()})
        assert (status, body["message"]) == (400, "invalid_email")
    assert otp_count(mail_server, email) == 0
    assert rate_limit.peek(throttle.MAIL_BUCKET, email, 1, throttle.HOUR).count == 0


def test_every_id_the_accounts_area_derives_is_legal_for_any_valid_address():
    hostile = ["a/b@x.org", "a\\b@x.org", "a?b@x.org", "a#b@x.org", "é" * 60 + "@" + "ü" * 60 + ".org", "%@x.org"]
    for email in hostile:
        for item_id in (user_key(email), *(otp._item_id(email, purpose) for purpose in otp.PURPOSES)):
            assert cosmos.require_legal_id(item_id) == item_id, json.dumps(email)
