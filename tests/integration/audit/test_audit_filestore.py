"""KMS and encrypted-store decisions in the audit log, through the handlers: key created, access
granted and revoked, private key exported, encrypted file stored (a replace after a rotation too)
and downloaded, each naming the file key version. Users and client addresses appear only as salted
digests, file names never, keys and ciphertext never; with the log down each answers 503 and
nothing is applied. (The key service's own events, unwrap, rotation and retirement, are tested
with it: tests/integration/filestore/test_key_service.py.)"""

from __future__ import annotations

import base64

import pytest

from client.envelope import seal
from shared_code.platform.client_address import UNKNOWN
from shared_code.audit.entries import salted_digest
from shared_code.filestore import kms
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from tests.support.audit import log_size, only_entry
from tests.support.files import User, unique_name

pytestmark = pytest.mark.integration


@pytest.fixture
def owner(emulators) -> User:
    return User.new("owner")


@pytest.fixture
def friend(emulators) -> User:
    return User.new("friend")


def _actor(user: User) -> str:
    return f"user:{salted_digest(user.email)}"


def _client_of_the_tests() -> str:
    """The salted client of these requests: they carry no X-Forwarded-For, so the address is unknown."""
    return salted_digest(UNKNOWN)


def test_the_key_and_its_grants_are_logged_with_salted_users_and_no_file_name(owner, friend):
    name = unique_name("tax-return")
    size = log_size()
    status, body = owner.public_key(name)
    assert status == 200
    created = only_entry(size, "kms_key_created", name, owner.email)
    assert (created["actor"], created["outcome"], created["client"]) == (_actor(owner), "granted", _client_of_the_tests())
    assert created["objects"] == {"file_key": kms.key_id(name), "key_version": 1, "key_bits": get_settings().kms_rsa_key_bits}
    size = log_size()
    assert owner.public_key(name)[0] == 200  # the owner's repeat: the same key, no new decision
    assert log_size() == size

    size = log_size()
    assert owner.grant(name, friend.email)[0] == 200
    granted = only_entry(size, "kms_access_granted", name, owner.email, friend.email)
    assert (granted["actor"], granted["client"], granted["objects"]) == (
        _actor(owner), _client_of_the_tests(), {"file_key": kms.key_id(name), "grantee": _actor(friend)})

    size = log_size()
    status, body = friend.private_key(name)
    assert status == 200
    pem = base64.b64decode(body["kms_private_key"]).decode()
    exported = only_entry(size, "kms_private_key_exported", name, friend.email, pem.splitlines()[1])
    assert (exported["actor"], exported["objects"]) == (
        _actor(friend), {"file_key": kms.key_id(name), "key_version": 1, "role": "grantee"})

    size = log_size()
    assert owner.revoke(name, friend.email)[0] == 200
    revoked = only_entry(size, "kms_access_revoked", name, friend.email)
    assert (revoked["objects"], revoked["client"]) == (granted["objects"], _client_of_the_tests())
    size = log_size()
    assert friend.private_key(name)[0] == 400  # refused: not a release, not logged
    assert log_size() == size


def test_stored_and_downloaded_files_are_logged(owner, friend):
    name = unique_name("scan")
    owner.public_key(name)
    owner.grant(name, friend.email)
    size = log_size()
    sealed = owner.put(name, b"plaintext the server never sees")
    stored = only_entry(size, "encrypted_file_stored", name, base64.b64encode(sealed.encrypted_aes_key).decode())
    assert (stored["actor"], stored["client"], stored["objects"]) == (_actor(owner), _client_of_the_tests(), {
        "file_key": kms.key_id(name), "key_version": 1, "size": len(sealed.encrypted_data), "replace": False})
    for user, role in ((owner, "owner"), (friend, "grantee")):
        size = log_size()
        assert user.download(name)[0] == 200
        downloaded = only_entry(size, "encrypted_file_downloaded", name, user.email)
        assert (downloaded["actor"], downloaded["client"], downloaded["objects"]) == (
            _actor(user), _client_of_the_tests(), {"file_key": kms.key_id(name), "key_version": 1, "role": role})


def test_a_replace_after_a_rotation_is_logged_under_the_new_key_version(owner):
    name = unique_name()
    owner.put(name, b"sealed under version 1")
    etag = owner.download(name)[1]["etag"]
    status, rotated = owner.rotate(name, from_version=1)
    assert (status, rotated["key_version"]) == (200, 2)
    resealed = seal(b"sealed under version 2", name, base64.b64decode(rotated["kms_public_key"]))
    size = log_size()
    assert owner.upload(name, resealed, key_version=2, if_match=etag)[0] == 200
    stored = only_entry(size, "encrypted_file_stored", name)
    assert stored["objects"] == {"file_key": kms.key_id(name), "key_version": 2,
                                 "size": len(resealed.encrypted_data), "replace": True}
    size = log_size()
    assert owner.download(name)[1]["key_version"] == 2
    assert only_entry(size, "encrypted_file_downloaded")["objects"]["key_version"] == 2


# --- the log is down --------------------------------------------------------------------------------

def test_with_the_log_down_no_key_is_created(owner, audit_outage):
    name = unique_name()
    audit_outage.down()
    assert owner.public_key(name)[0] == 503
    assert cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name)) is None
    assert cosmos.read_item(cosmos.FILE_ACCESS, kms.key_id(name), owner.email) is None
    audit_outage.up()
    assert owner.public_key(name)[0] == 200


def test_with_the_log_down_grants_and_revocations_change_nothing(owner, friend, audit_outage):
    name = unique_name()
    owner.public_key(name)
    audit_outage.down()
    assert owner.grant(name, friend.email)[0] == 503
    audit_outage.up()
    assert friend.private_key(name)[0] == 400  # not granted
    assert owner.grant(name, friend.email)[0] == 200
    audit_outage.down()
    assert owner.revoke(name, friend.email)[0] == 503
    audit_outage.up()
    assert friend.private_key(name)[0] == 200  # not revoked


def test_with_the_log_down_no_private_key_is_handed_out(owner, audit_outage):
    name = unique_name()
    owner.public_key(name)
    audit_outage.down()
    status, body = owner.private_key(name)
    assert status == 503 and "kms_private_key" not in body


def test_with_the_log_down_nothing_is_stored_or_downloaded(owner, audit_outage):
    stored_name, other = unique_name(), unique_name()
    owner.put(stored_name, b"stored before the outage")
    status, body = owner.public_key(other)
    sealed = seal(b"not stored", other, base64.b64decode(body["kms_public_key"]))
    audit_outage.down()
    assert owner.upload(other, sealed)[0] == 503
    status, body = owner.download(stored_name)
    assert status == 503 and "encrypted_data" not in body
    audit_outage.up()
    assert owner.download(other)[0] == 404  # the upload never happened
    assert owner.upload(other, sealed)[0] == 200
