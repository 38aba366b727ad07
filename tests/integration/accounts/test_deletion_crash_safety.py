"""Account deletion under storage timeouts (the fault harness, :mod:`tests.support.faults`).

Once the deletion is decided (the account marked ``deleting``) nothing of the account works; a
step that stalls answers 503 and the retry of the same request (session and password) completes
the deletion, or the purge timer does when nobody retries.
"""

from __future__ import annotations

import pytest
from azure.functions.timer import TimerRequest

from shared_code.accounts import deletion, users
from shared_code.filestore import kms
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from tests.support.deletion import delete, encrypted_blob_exists, request_code, sharing_pair, store_user
from tests.support.devices import HANDLERS
from tests.support.faults import blob_op, cosmos_op

pytestmark = pytest.mark.integration

LANDINGS = pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])


@pytest.fixture
def pair(faults, mail_server):
    return sharing_pair(mail_server)


def erased(account, hers: str) -> bool:
    return users.get_user(account.email) is None and not encrypted_blob_exists(hers) and \
        cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(hers), kms.key_id(hers)) is None


def test_a_deletion_stalled_at_the_stored_file_answers_503_and_the_retry_completes_it(faults, pair, mail_server):
    account, bob_account, hers, his = pair
    bob = store_user(bob_account)
    _, _, code = request_code(mail_server, account)
    with faults.blob.freeze(blob_op("delete", get_settings().encrypted_files_container)):
        status, body = delete(account, code)
    assert (status, body["message"]) == (503, "service_unavailable")
    assert bob.private_key(hers)[1]["message"] == "access_denied"  # destroyed first: shredded from that moment
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
