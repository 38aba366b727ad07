"""Account lifecycle against the real emulators and a real SMTP server: operators suspend and
resume users; a user deletes their account (session, password, emailed ``delete`` code): keys
destroyed, files deleted, grants revoked and removed, crash-safe, and the address free again."""

from __future__ import annotations

import json
import os

import pytest

from shared_code.accounts import deletion, otp, signin, users
from shared_code.audit.entries import salted_digest
from shared_code.audit.sequencer import synced_state
from shared_code.filestore import datastore, erasure, kms
from shared_code.platform import blobs, cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import Forbidden, ServiceUnavailable, Unauthorized
from tests.support.accounts import TestUser, new_user
from tests.support.audit import entries_since
from tests.support.devices import call
from tests.support.files import User, unique_name
from tests.support.lifecycle import operator_user
from tests.support.mail import latest_otp, otp_count
from tests.support.outages import cosmos_outage

pytestmark = pytest.mark.integration


def store_user(user: TestUser) -> User:
    """The same account driving the KMS and store handlers."""
    return User(user.email, user.sid)


def post(name: str, route: str, sid: str | None, document: dict) -> tuple[int, dict]:
    headers = {"content-type": "application/json", **({"sid": sid} if sid else {})}
    return call(name, "POST", route, headers=headers, body=json.dumps(document).encode())


def request_code(mail_server, user: TestUser, password: str | None = None) -> tuple[int, dict, str | None]:
    before = otp_count(mail_server, user.email, otp.DELETE)
    status, body = post("delete_account_otp", "delete_account/otp", user.sid, {"password": password or user.password})
    code = latest_otp(mail_server, user.email, otp.DELETE, after=before) if status == 200 else None
    return status, body, code


def delete(user: TestUser, code: str, password: str | None = None) -> tuple[int, dict]:
    return post("delete_account", "delete_account", user.sid, {"password": password or user.password, "otp": code})


def blob_outage(kid: str) -> bool:
    """``datastore.delete_stored`` while Blob Storage is down."""
    raise ServiceUnavailable(detail="injected outage")


def encrypted_blob_exists(file_name: str) -> bool:
    return blobs.container_client(get_settings().encrypted_files_container).get_blob_client(kms.key_id(file_name)).exists()


# --- operator suspension --------------------------------------------------------------------------

def test_a_suspended_user_is_refused_at_once_and_resumes_with_everything(emulators, mail_server):
    account = new_user(mail_server)
    alice = store_user(account)
    name = unique_name("suspended")
    alice.put(name, b"kept while suspended")
    before = synced_state().size
    status, body = operator_user("suspend", account.email.upper(), {"reason": "chargeback fraud review"})
    assert (status, body["message"], body["email"], body["changed"]) == (200, "user_suspended", account.email, True)
    assert alice.private_key(name)[1]["message"] == "user_suspended"
    with pytest.raises(Forbidden) as refused:
        signin.login(account.email, account.password)
    assert refused.value.message == "user_suspended"
    with pytest.raises(Unauthorized) as wrong:
        signin.login(account.email, "not the password at all")
    assert wrong.value.message == "login_failed"  # the status is told only to whoever knows the password
    assert operator_user("suspend", account.email, {"reason": "again"})[1]["changed"] is False
    status, body = operator_user("resume", account.email)
    assert (status, body["changed"]) == (200, True)
    assert alice.private_key(name)[0] == 200  # the unexpired session works again
    entries = [e for e in entries_since(before) if e["event"] in ("user_suspended", "user_resumed")]
    assert [(e["event"], e["objects"]["user"]) for e in entries] == [
        ("user_suspended", f"user:{salted_digest(account.email)}"), ("user_resumed", f"user:{salted_digest(account.email)}")]
    assert account.email not in json.dumps(entries)


def test_operator_user_requests_are_checked(emulators):
    assert operator_user("suspend", "nobody-here@example.org", {"reason": "x"})[:1] == (404,)
    assert operator_user("suspend", "not an address", {"reason": "x"})[1]["message"] == "invalid_email"
    assert operator_user("suspend", "nobody-here@example.org", {})[1]["message"] == "missing_fields"


# --- account deletion -------------------------------------------------------------------------------

@pytest.fixture
def pair(emulators, mail_server):
    """Alice owns a stored file she granted to Bob; Bob owns one he granted to Alice."""
    alice_account, bob_account = new_user(mail_server), new_user(mail_server)
    alice, bob = store_user(alice_account), store_user(bob_account)
    hers, his = unique_name("hers"), unique_name("his")
    alice.put(hers, os.urandom(4096))
    bob.put(his, os.urandom(4096))
    assert alice.grant(hers, bob.email)[0] == 200 and bob.grant(his, alice.email)[0] == 200
    return alice_account, bob_account, hers, his


def test_deleting_an_account_shreds_its_keys_and_frees_the_address(pair, mail_server):
    account, bob_account, hers, his = pair
    alice, bob = store_user(account), store_user(bob_account)
    assert bob.private_key(hers)[0] == 200
    status, body, _ = request_code(mail_server, account, password="not the password")
    assert (status, body["message"]) == (401, "invalid_password")
    status, body, code = request_code(mail_server, account)
    assert (status, body["message"]) == (200, "delete_otp_sent")
    login_code_before = otp_count(mail_server, account.email, otp.LOGIN)
    signin.login(account.email, account.password)  # a login code is no deletion code
    assert delete(account, latest_otp(mail_server, account.email, otp.LOGIN, after=login_code_before))[1]["message"] == "otp_failed"
    before = synced_state().size
    status, body = delete(account, code)
    assert (status, body["message"]) == (200, "account_deleted")
    summary = body["summary"]
    assert {k: summary[k] for k in ("keys_destroyed", "files_deleted", "grants_revoked", "grants_removed")} == {
        "keys_destroyed": 1, "files_deleted": 1, "grants_revoked": 1, "grants_removed": 1}
    assert summary["sessions_ended"] >= 1
    # The former grantee can't get the key; the stored ciphertext is gone; the session is dead.
    assert bob.private_key(hers)[1]["message"] == "access_denied"
    assert bob.download(hers)[0] == 404 and not encrypted_blob_exists(hers)
    assert cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(hers), kms.key_id(hers)) is None
    assert alice.list_files()[1]["message"] == "invalid_session"
    assert users.get_user(account.email) is None
    assert bob.private_key(his)[0] == 200 and bob.list_files()[1]["files"] == [his]
    events = [e["event"] for e in entries_since(before)]
    assert events[0] == "account_deleted" and "account_erasure_completed" in events
    # The address registers again as a new user, with nothing of the old account.
    again = new_user(mail_server, email=account.email)
    assert store_user(again).list_files()[1]["files"] == [] and store_user(again).private_key(his)[1]["message"] == "access_denied"
    assert alice.list_files()[1]["message"] == "invalid_session"  # the old session never works for the new account


def test_a_deletion_that_fails_half_way_answers_503_and_a_retry_completes_it(pair, mail_server, monkeypatch):
    account, bob_account, hers, _ = pair
    bob = store_user(bob_account)
    _, _, code = request_code(mail_server, account)
    monkeypatch.setattr(datastore, "delete_stored", blob_outage)
    status, body = delete(account, code)
    assert (status, body["message"]) == (503, "service_unavailable")
    assert bob.private_key(hers)[1]["message"] == "access_denied"  # destroyed first: shredded from that moment
    assert store_user(account).list_files()[1]["message"] == "invalid_session"  # the account's sessions are refused
    assert users.get_user(account.email)["status"] == "deleting"
    monkeypatch.undo()
    status, body = delete(account, "000000")  # the retry: the code is not asked again once the deletion is decided
    assert (status, body["summary"]["files_deleted"]) == (200, 1)
    assert not encrypted_blob_exists(hers) and users.get_user(account.email) is None


def test_the_purge_timer_completes_a_deletion_nobody_retried(pair, mail_server, monkeypatch):
    account, _, hers, _ = pair
    _, _, code = request_code(mail_server, account)
    with cosmos_outage("delete_item", cosmos.USERS):
        assert delete(account, code)[0] == 503
    monkeypatch.setattr(deletion, "GRACE_SECONDS", 0)
    assert deletion.finish_interrupted(erasure.erase_user) >= 1
    assert users.get_user(account.email) is None and not encrypted_blob_exists(hers)


def test_a_suspended_account_cannot_be_deleted_and_nothing_is_granted_to_one_being_deleted(pair, mail_server, monkeypatch):
    account, bob_account, _, his = pair
    _, _, code = request_code(mail_server, account)
    operator_user("suspend", account.email, {"reason": "legal hold"})
    assert delete(account, code)[1]["message"] == "user_suspended"
    operator_user("resume", account.email)
    monkeypatch.setattr(datastore, "delete_stored", blob_outage)
    assert delete(account, code)[0] == 503  # decided, not finished
    status, body = store_user(bob_account).grant(his, account.email)
    assert (status, body["message"]) == (404, "user_not_found")
