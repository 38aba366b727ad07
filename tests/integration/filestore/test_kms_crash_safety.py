"""KMS and encrypted store under storage timeouts (the fault harness, :mod:`tests.support.faults`).

Each test stalls Cosmos DB or Blob Storage at one step of a multi-step write so the app times out
and answers 503 while the write lands afterwards, then checks the invariants once the emulator
caught up: nothing granted that the owner did not ask for, nothing acknowledged that is lost,
nothing the user can see half made, and a retry that completes.
"""

from __future__ import annotations

import base64

import pytest

from client.envelope import seal
from shared_code.filestore import kms
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from tests.support.faults import COSMOS_WRITES, blob_op, cosmos_op
from tests.support.files import User, unique_name

pytestmark = pytest.mark.integration

KEYS, ACCESS = cosmos.KMS_KEYS.name, cosmos.FILE_ACCESS.name


@pytest.fixture
def users(faults):
    return User.new("alice"), User.new("bob")


def test_a_stalled_index_entry_grants_nothing_when_another_user_takes_the_name(faults, users):
    """The crash-safety exploit: a half-made creation must never hand its caller the key and
    ciphertext of whoever makes the name next."""
    alice, bob = users
    name = unique_name("stalled")
    with faults.cosmos.freeze(cosmos_op(COSMOS_WRITES, ACCESS)):
        status, body = alice.public_key(name)
    assert (status, body["message"]) == (503, "service_unavailable")

    # Alice's request never created the key, so the name is free: bob takes it and stores a file.
    bob.put(name, b"bob's secret")
    # Alice's entry, landed after her timeout, unlocks nothing of bob's.
    assert alice.private_key(name)[1]["message"] == "access_denied"
    assert alice.download(name)[1]["message"] == "file_not_found"
    assert alice.list_files()[1]["files"] == []
    assert alice.grant(name, alice.email)[1]["message"] == "permission_denied"
    # Her retry says exactly why not; bob's view is untouched.
    assert alice.public_key(name)[1]["message"] == "file_exists"
    assert bob.list_files()[1]["entries"] == [{"file_name": name, "role": "owner", "owner": bob.email}]


@pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
def test_a_stalled_key_creation_is_completed_by_the_owners_retry(faults, users, after_response):
    alice, bob = users
    name = unique_name("first")
    with faults.cosmos.freeze(cosmos_op("create", KEYS), after_response=after_response):
        status, body = alice.public_key(name)
    assert (status, body["message"]) == (503, "service_unavailable")

    # The key landed: it is alice's, and nobody else can take the name or use it.
    assert bob.public_key(name)[1]["message"] == "file_exists"
    assert bob.private_key(name)[1]["message"] == "access_denied"
    # Alice's retry returns that one key (not a new one, not file_exists) and she can use it.
    status, retried = alice.public_key(name)
    assert (status, retried["message"]) == (200, "public_key_saved")
    assert alice.public_key(name)[1]["kms_public_key"] == retried["kms_public_key"]
    sealed = seal(b"alice's secret", name, base64.b64decode(retried["kms_public_key"]))
    assert alice.upload(name, sealed)[0] == 200
    assert alice.list_files()[1]["entries"] == [{"file_name": name, "role": "owner", "owner": alice.email}]
    assert alice.private_key(name)[0] == alice.download(name)[0] == 200


def test_an_access_entry_of_an_earlier_key_never_unlocks_the_current_one(faults, users):
    """The reader side: whatever left it (a half-finished request of older code, a key made again
    under the name), an index entry counts only for the key generation it names."""
    alice, bob = users
    name = unique_name("reissued")
    bob.put(name, b"bob's secret")
    kid = kms.key_id(name)
    cosmos.upsert_item(cosmos.FILE_ACCESS, {"id": kid, "email": alice.email, "file_name": name, "role": "owner",
                                            "owner": alice.email, "generation": "an-earlier-key", "granted_at": "x"})
    assert alice.private_key(name)[1]["message"] == "access_denied"
    assert alice.download(name)[1]["message"] == "file_not_found"
    assert alice.list_files()[1]["files"] == []
    assert bob.list_files()[1]["entries"] == [{"file_name": name, "role": "owner", "owner": bob.email}]


# --- grants and revokes -----------------------------------------------------------------------

@pytest.fixture
def shared(users):
    """Alice's stored file, and bob, registered, not (yet) granted."""
    alice, bob = users
    name = unique_name("shared")
    alice.put(name, b"for bob, maybe")
    return alice, bob, name


def _bob_can_read(bob: User, name: str) -> bool:
    key_ok, download_ok = bob.private_key(name)[0] == 200, bob.download(name)[0] == 200
    listed = bob.list_files()[1]["files"] == [name]
    assert key_ok == download_ok == listed, "access and listing must agree"
    return key_ok


@pytest.mark.parametrize("step", ["index", "commit"])
def test_a_stalled_grant_takes_effect_whole_or_not_at_all_and_its_retry_completes(faults, shared, step):
    alice, bob, name = shared
    match = cosmos_op("upsert", ACCESS) if step == "index" else cosmos_op("replace", KEYS)
    with faults.cosmos.freeze(match):
        assert alice.grant(name, bob.email)[0] == 503
    assert _bob_can_read(bob, name) is (step == "commit")  # the commit landed late: granted, as asked
    assert alice.grant(name, bob.email)[0] == 200
    assert _bob_can_read(bob, name)


@pytest.mark.parametrize("after_response", [False, True], ids=["lands-late", "answer-lost"])
def test_a_stalled_revoke_takes_effect_and_its_retry_answers_200(faults, shared, after_response):
    alice, bob, name = shared
    alice.grant(name, bob.email)
    with faults.cosmos.freeze(cosmos_op(COSMOS_WRITES), after_response=after_response):
        assert alice.revoke(name, bob.email)[0] == 503
    assert not _bob_can_read(bob, name)
    assert alice.revoke(name, bob.email)[0] == 200
    assert not _bob_can_read(bob, name)


def test_a_revoke_landing_late_never_undoes_a_grant_acknowledged_after_it(faults, shared):
    alice, bob, name = shared
    alice.grant(name, bob.email)
    with faults.cosmos.hold(cosmos_op(COSMOS_WRITES)):   # the revoke's write is stuck on its way
        assert alice.revoke(name, bob.email)[0] == 503
        assert alice.grant(name, bob.email)[0] == 200     # the owner changes their mind: acknowledged
    assert _bob_can_read(bob, name)                       # the late revoke changed nothing


@pytest.mark.parametrize("nth", [1, 2], ids=["first-write", "second-write"])
def test_a_grant_landing_late_never_undoes_a_revoke_acknowledged_after_it(faults, shared, nth):
    alice, bob, name = shared
    with faults.cosmos.hold(cosmos_op(("upsert", "replace")), nth=nth):   # one of the grant's writes is stuck
        assert alice.grant(name, bob.email)[0] == 503
        assert alice.revoke(name, bob.email)[0] == 200
    assert not _bob_can_read(bob, name)


# --- encrypted uploads ------------------------------------------------------------------------

@pytest.fixture
def sealed_upload(users):
    alice, _ = users
    name = unique_name("upload")
    status, body = alice.public_key(name)
    assert status == 200
    return alice, name, seal(b"ciphertext, please", name, base64.b64decode(body["kms_public_key"]))


def test_the_sdks_retry_of_an_upload_whose_answer_was_lost_succeeds(faults, sealed_upload):
    alice, name, sealed = sealed_upload
    put = blob_op("put_blob", get_settings().encrypted_files_container)
    with faults.blob.hold(put, after_response=True):
        status, body = alice.upload(name, sealed)
    assert (status, body["message"]) == (200, "upload_success")
    assert faults.blob.count(put) == 2  # the first landed, its answer was lost; the retry met it
    assert alice.download(name)[1]["encrypted_data"] == base64.b64encode(sealed.encrypted_data).decode()


def test_a_stalled_upload_lands_and_its_retry_says_exactly_why_not(faults, sealed_upload):
    alice, name, sealed = sealed_upload
    with faults.blob.freeze(blob_op("put_blob", get_settings().encrypted_files_container)):
        assert alice.upload(name, sealed)[0] == 503
    assert alice.upload(name, sealed)[1]["message"] == "file_exists"
    assert alice.download(name)[1]["encrypted_data"] == base64.b64encode(sealed.encrypted_data).decode()
