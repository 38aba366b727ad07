"""Account deletion under storage timeouts (the fault harness, :mod:`tests.support.faults`).

Once the deletion is decided (the account marked ``deleting``) nothing of the account works; a
step that stalls answers 503 and the retry of the same request (session and password) completes
the deletion, or the purge timer does when nobody retries. A write still in flight when the
account is deleted lands on nothing: a rotation or KEK rewrap of its key (etag-guarded), or an
upload (a ciphertext under a destroyed key, which the name's next owner replaces).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os

import pytest
from azure.functions.timer import TimerRequest

from client.envelope import seal
from shared_code.accounts import deletion, users
from shared_code.filestore import kek_rotation, key_wrap, kms
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.errors import ServiceUnavailable
from tests.support.deletion import delete, encrypted_blob_exists, request_code, sharing_pair, store_user
from tests.support.devices import HANDLERS
from tests.support.faults import blob_op, cosmos_op
from tests.support.files import User, b64, unique_name
from tests.support.settings import apply_settings

pytestmark = pytest.mark.integration

LANDINGS = pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
NEW_KEK = "2026-12"
KEY_MATERIAL = {"public_key", "wrapped_private_key", "previous_versions", "key_version", "key_bits"}


@pytest.fixture
def pair(faults, mail_server):
    return sharing_pair(mail_server)


def key_item(file_name: str) -> dict | None:
    return cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(file_name), kms.key_id(file_name))


def erased(account, hers: str) -> bool:
    return users.get_user(account.email) is None and not encrypted_blob_exists(hers) and key_item(hers) is None


def test_a_deletion_stalled_at_the_stored_file_answers_503_and_the_retry_completes_it(faults, pair, mail_server):
    account, bob_account, hers, his = pair
    bob = store_user(bob_account)
    wrapped = bob.download(hers)[1]["encrypted_aes_key"]
    assert store_user(account).rotate(hers, from_version=1)[0] == 200  # two versions to shred
    _, _, code = request_code(mail_server, account)
    with faults.blob.freeze(blob_op("delete", get_settings().encrypted_files_container)):
        status, body = delete(account, code)
    assert (status, body["message"]) == (503, "service_unavailable")
    assert bob.private_key(hers)[1]["message"] == "access_denied"  # destroyed first: shredded from that moment
    assert bob.unwrap(hers, wrapped)[1]["message"] == "access_denied"
    assert KEY_MATERIAL.isdisjoint(key_item(hers))  # a tombstone: no version of the key is left
    assert store_user(account).list_files()[1]["message"] == "invalid_session"  # every session is refused
    assert users.get_user(account.email)["status"] == "deleting"
    status, body = bob.grant(his, account.email)
    assert (status, body["message"]) == (404, "user_not_found")  # nothing is granted to it any more
    status, body = delete(account, "000000")  # the retry: the code is not asked again once the deletion is decided
    assert status == 200, body
    assert erased(account, hers)


@LANDINGS
def test_a_decision_that_lands_after_its_timeout_is_completed_by_the_retry(faults, pair, mail_server, after_response):
    account, _, hers, _ = pair
    _, _, code = request_code(mail_server, account)
    with faults.cosmos.freeze(cosmos_op("replace", cosmos.USERS.name), after_response=after_response):
        assert delete(account, code)[0] == 503
    assert users.get_user(account.email)["status"] == "deleting"  # the decision landed
    status, body = delete(account, code)
    assert (status, body["summary"]["keys_destroyed"]) == (200, 1)
    assert erased(account, hers)


def test_the_purge_timer_completes_a_deletion_nobody_retried(faults, pair, mail_server, monkeypatch):
    account, _, hers, _ = pair
    _, _, code = request_code(mail_server, account)
    with faults.cosmos.freeze(cosmos_op("query", cosmos.SESSIONS.name)):
        assert delete(account, code)[0] == 503
    assert users.get_user(account.email)["status"] == "deleting"
    monkeypatch.setattr(deletion, "GRACE_SECONDS", 0)
    HANDLERS["purge_expired_items"](timer=TimerRequest(past_due=False))
    assert erased(account, hers)


def test_a_kek_rewrap_that_lands_after_the_deletion_brings_no_key_back(faults, pair, mail_server, monkeypatch):
    """The rewrap timer's write of the owner's key, stuck while the account is deleted, lands on
    nothing (etag-guarded, like a rotation's)."""
    account, _, hers, _ = pair
    kid = kms.key_id(hers)
    _, _, code = request_code(mail_server, account)
    apply_settings(monkeypatch, KMS_MASTER_KEYS=json.dumps({NEW_KEK: b64(os.urandom(32))}), KMS_ACTIVE_KEK=NEW_KEK)
    legacy = next(k for k in key_wrap.keyring().kids if k != NEW_KEK)
    with faults.cosmos.hold(lambda head: head.cosmos == ("replace", cosmos.KMS_KEYS.name, kid)):
        with pytest.raises(ServiceUnavailable):
            kek_rotation.rewrap_run()
        assert delete(account, code)[0] == 200
    assert erased(account, hers)
    apply_settings(monkeypatch, KMS_ACTIVE_KEK=legacy)
    assert kek_rotation.rewrap_run().failed == []  # this module's other keys back under the test KEK


def test_a_key_rotation_that_lands_after_the_deletion_brings_no_key_back(faults, pair, mail_server):
    """A rotation of the owner's key stuck on its way to Cosmos DB while the account is deleted
    lands afterwards on an item that changed (its replace is etag-guarded): nothing is written."""
    account, bob_account, hers, _ = pair
    wrapped = store_user(bob_account).download(hers)[1]["encrypted_aes_key"]
    _, _, code = request_code(mail_server, account)
    with faults.cosmos.hold(cosmos_op("replace", cosmos.KMS_KEYS.name)) as stuck:
        assert store_user(account).rotate(hers, from_version=1)[0] == 503
        stuck.wait_fired()
        status, body = delete(account, code)
        assert (status, body["summary"]["keys_destroyed"]) == (200, 1)
    assert erased(account, hers)  # the rotation landed on nothing
    assert store_user(bob_account).unwrap(hers, wrapped)[1]["message"] == "access_denied"


def test_an_upload_that_lands_after_the_deletion_never_blocks_the_file_name(faults, pair, mail_server):
    """An upload stuck on its way to Blob Storage (every try of the SDK) while its owner's account
    is deleted lands afterwards: a ciphertext under a destroyed key, unreadable, which the name's
    next owner's upload replaces (instead of answering file_exists for ever)."""
    account, _, _, _ = pair
    owner, name = store_user(account), unique_name("late")
    sealed = seal(b"sealed before the deletion", name, base64.b64decode(owner.public_key(name)[1]["kms_public_key"]))
    put = blob_op("put_blob", get_settings().encrypted_files_container)
    _, _, code = request_code(mail_server, account)
    with contextlib.ExitStack() as stack:
        stuck = [stack.enter_context(faults.blob.hold(put, nth=n)) for n in (1, 2, 3)]  # the SDK tries three times
        assert owner.upload(name, sealed)[0] == 503
        assert delete(account, code)[0] == 200
        for held in stuck:
            held.released.set()
    assert encrypted_blob_exists(name)  # it landed, under a key that no longer exists
    carol = User.new("carol")
    mine = carol.put(name, b"the name's next owner")
    assert carol.download(name)[1]["encrypted_data"] == b64(mine.encrypted_data)
