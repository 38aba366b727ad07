"""Account lifecycle against the real emulators and a real SMTP server: operators suspend and
resume users; a user deletes their account (session, password, emailed ``delete`` code): keys
destroyed, files deleted, grants revoked and removed, and the address free again (under storage
timeouts: test_deletion_crash_safety.py)."""

from __future__ import annotations

import base64
import json

import pytest

from client.envelope import seal
from shared_code.accounts import otp, signin, users
from shared_code.audit.entries import salted_digest
from shared_code.audit.sequencer import synced_state
from shared_code.filestore import kms
from shared_code.platform import cosmos
from shared_code.platform.errors import Forbidden, Unauthorized
from tests.support.accounts import new_user
from tests.support.audit import entries_since
from tests.support.deletion import delete, encrypted_blob_exists, request_code, sharing_pair, store_user
from tests.support.files import b64, unique_name
from tests.support.lifecycle import operator_user
from tests.support.mail import latest_otp, otp_count

pytestmark = pytest.mark.integration


# --- operator suspension --------------------------------------------------------------------------

def test_a_suspended_user_is_refused_at_once_and_resumes_with_everything(emulators, mail_server):
    account = new_user(mail_server)
    alice = store_user(account)
    name = unique_name("suspended")
    wrapped = b64(alice.put(name, b"kept while suspended").encrypted_aes_key)
    before = synced_state().size
    status, body = operator_user("suspend", account.email.upper(), {"reason": "chargeback fraud review"})
    assert (status, body["message"], body["email"], body["changed"]) == (200, "user_suspended", account.email, True)
    assert alice.private_key(name)[1]["message"] == "user_suspended"
    status, answer = alice.unwrap(name, wrapped)
    assert (status, answer["message"]) == (403, "user_suspended")
    with pytest.raises(Forbidden) as refused:
        signin.login(account.email, account.password)
    assert refused.value.message == "user_suspended"
    with pytest.raises(Unauthorized) as wrong:
        signin.login(account.email, "not the password at all")
    assert wrong.value.message == "login_failed"  # the status is told only to whoever knows the password
    assert operator_user("suspend", account.email, {"reason": "again"})[1]["changed"] is False
    status, body = operator_user("resume", account.email)
    assert (status, body["changed"]) == (200, True)
    assert alice.private_key(name)[0] == 200 and alice.unwrap(name, wrapped)[0] == 200  # the unexpired session works again
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
    return sharing_pair(mail_server)


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


def test_deletion_shreds_every_version_of_a_key_and_no_one_unwraps_under_it_again(pair, mail_server):
    """With the key service: every version of a destroyed key is gone, /unwrap_key
    refuses the former grantee for each of them, and the grant the account received is withdrawn."""
    account, bob_account, hers, his = pair
    alice, bob = store_user(account), store_user(bob_account)
    wrapped_v1 = alice.download(hers)[1]["encrypted_aes_key"]
    status, rotated = alice.rotate(hers, from_version=1)
    assert (status, rotated["key_version"]) == (200, 2)
    wrapped_v2 = b64(seal(b"under version 2", hers, base64.b64decode(rotated["kms_public_key"])).encrypted_aes_key)
    assert bob.unwrap(hers, wrapped_v1, 1)[0] == 200 and bob.unwrap(hers, wrapped_v2, 2)[0] == 200
    his_wrapped = bob.download(his)[1]["encrypted_aes_key"]
    assert alice.unwrap(his, his_wrapped)[0] == 200
    _, _, code = request_code(mail_server, account)
    status, body = delete(account, code)
    assert (status, body["summary"]["keys_destroyed"], body["summary"]["grants_removed"]) == (200, 1, 1)
    for wrapped, version in ((wrapped_v1, 1), (wrapped_v2, 2), (wrapped_v2, None)):
        status, answer = bob.unwrap(hers, wrapped, version)
        assert (status, answer["message"]) == (400, "access_denied")
    assert alice.unwrap(hers, wrapped_v1, 1)[1]["message"] == "invalid_session"  # the deleted owner, as owner
    assert alice.unwrap(his, his_wrapped)[1]["message"] == "invalid_session"  # and as grantee
    assert kms.key_for(bob_account.email, his)["grantees"] == []
    again = store_user(new_user(mail_server, email=account.email))  # the address again: a new account, no grant
    status, answer = again.unwrap(his, his_wrapped)
    assert (status, answer["message"]) == (400, "access_denied")


def test_a_suspended_account_cannot_be_deleted(pair, mail_server):
    account, _, _, _ = pair
    _, _, code = request_code(mail_server, account)
    operator_user("suspend", account.email, {"reason": "legal hold"})
    assert delete(account, code)[1]["message"] == "user_suspended"
    operator_user("resume", account.email)
    assert delete(account, code)[0] == 200
