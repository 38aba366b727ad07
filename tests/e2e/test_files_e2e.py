"""KMS and encrypted store end to end: the files client (library and CLI) against devhost over HTTP.

Users and sessions are made directly in the emulators (the accounts endpoints are another area's).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import requests

from client.device_api import ClientError
from client.files_api import FilesClient
from tests.conftest import ROOT
from tests.support.files import User, unique_name

pytestmark = pytest.mark.e2e


def _client(live_app, prefix: str) -> tuple[User, FilesClient]:
    user = User.new(prefix)
    return user, FilesClient(live_app.base_url, user.sid)


def test_owner_shares_a_real_file_and_revocation_cuts_the_friend_off_over_http(live_app, tmp_path):
    (_, alice_files), (bob, bob_files) = _client(live_app, "alice"), _client(live_app, "bob")
    source = tmp_path / "quarterly report.pdf"
    source.write_bytes(b"%PDF-1.7\n" + os.urandom(700_000) + b"\n%%EOF\n")
    name = unique_name("quarterly")

    assert alice_files.put_file(source, name)["message"] == "upload_success"
    assert alice_files.grant(name, bob.email)["message"] == "grant_success"
    assert bob_files.list_files()["files"] == [name]
    copy = bob_files.get_file(name, tmp_path / "copy.pdf")
    assert copy.read_bytes() == source.read_bytes()

    assert alice_files.revoke(name, bob.email)["message"] == "revoke_success"
    with pytest.raises(ClientError) as caught:
        bob_files.get_private_key(name)
    assert (caught.value.status, caught.value.message) == (400, "access_denied")
    with pytest.raises(ClientError) as caught:
        bob_files.download(name)
    assert (caught.value.status, caught.value.message) == (404, "file_not_found")
    assert alice_files.get_bytes(name) == source.read_bytes()


def test_http_errors_keep_the_seed_statuses(live_app):
    (alice, alice_files), (_, bob_files) = _client(live_app, "alice"), _client(live_app, "bob")
    name = unique_name()
    alice_files.put_bytes(name, b"first")
    for call, status, message in (
        (lambda: alice_files.put_bytes(name, b"again"), 409, "file_exists"),
        (lambda: bob_files.grant(name, alice.email), 400, "permission_denied"),
        (lambda: alice_files.grant(name, "ghost@example.org"), 404, "user_not_found"),
        (lambda: FilesClient(live_app.base_url, "x" * 43).list_files(), 403, "invalid_session"),
    ):
        with pytest.raises(ClientError) as caught:
            call()
        assert (caught.value.status, caught.value.message) == (status, message)
    response = requests.post(f"{live_app.base_url}/get_public_key", json={"file_name": unique_name()}, timeout=10)
    assert (response.status_code, response.json()["message"]) == (403, "invalid_session")  # no sid header


def test_cli_put_grant_get_ls_with_session_file_and_env_sid(live_app, tmp_path):
    alice, bob = User.new("alice"), User.new("bob")
    homes = {}
    for user in (alice, bob):
        homes[user.email] = tmp_path / user.email.split("@")[0]
        homes[user.email].mkdir()
        (homes[user.email] / "session.json").write_text(
            json.dumps({"server": live_app.base_url, "email": user.email, "sid": user.sid}))
    source = tmp_path / "notes.md"
    source.write_text("# notes\n" * 1000)
    name = unique_name("notes")

    def cli(user: User, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "client", "--home", str(homes[user.email]), "files", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**os.environ, **(env or {})})

    assert cli(alice, "put", str(source), "--name", name).returncode == 0
    assert cli(alice, "grant", name, bob.email).returncode == 0
    listed = cli(bob, "ls", "--json")
    assert json.loads(listed.stdout) == [{"file_name": name, "role": "grantee", "owner": alice.email}]
    target = tmp_path / "got.md"
    got = cli(bob, "get", name, "-o", str(target))
    assert got.returncode == 0 and target.read_bytes() == source.read_bytes()
    assert bob.sid not in got.stdout + got.stderr
    assert cli(alice, "revoke", name, bob.email).returncode == 0
    refused = cli(bob, "get", name, "-o", str(tmp_path / "again.md"))
    assert refused.returncode == 1 and "file_not_found (404)" in refused.stderr
    # --sid from the environment overrides the session file
    as_alice = cli(bob, "ls", "--json", env={"TRUSTGATE_SID": alice.sid})
    assert json.loads(as_alice.stdout)[0]["role"] == "owner"


def test_files_rotate_re_encrypts_under_a_new_key_version_and_retires_the_old_one(live_app, tmp_path):
    (_, alice_files), (bob, bob_files) = _client(live_app, "alice"), _client(live_app, "bob")
    name, plaintext = unique_name("rotate"), os.urandom(300_000)
    alice_files.put_bytes(name, plaintext)
    alice_files.grant(name, bob.email)
    before = alice_files.download_envelope(name)
    assert before.key_version == 1

    assert alice_files.rotate_file(name) == 2
    after = alice_files.download_envelope(name)
    assert after.key_version == 2 and after.etag != before.etag
    assert after.sealed.encrypted_data != before.sealed.encrypted_data  # a fresh data key, not only a rewrap
    assert bob_files.get_bytes(name) == plaintext  # the grantee reads it under the new version
    with pytest.raises(ClientError) as caught:  # whoever kept the old envelope can no longer open it
        bob_files.unwrap_key(name, before.sealed.encrypted_aes_key, 1)
    assert (caught.value.status, caught.value.message) == (400, "key_version_retired")

    # Running it again after an interruption completes: here the key was rotated but the file not re-encrypted.
    version, _ = alice_files.rotate_key(name, from_version=2)
    assert version == 3 and alice_files.download_envelope(name).key_version == 2
    assert alice_files.rotate_file(name) == 3  # reuses version 3 (from_version=2), re-encrypts, retires 2
    assert alice_files.download_envelope(name).key_version == 3 and alice_files.get_bytes(name) == plaintext
    with pytest.raises(ClientError) as caught:
        bob_files.rotate_file(name)
    assert (caught.value.status, caught.value.message) == (400, "permission_denied")


def test_a_replace_of_a_file_that_changed_meanwhile_is_refused(live_app):
    _, alice_files = _client(live_app, "alice")
    name = unique_name("race")
    alice_files.put_bytes(name, b"v1")
    stale = alice_files.download_envelope(name)
    alice_files.rotate_file(name)
    with pytest.raises(ClientError) as caught:
        alice_files.upload(name, stale.sealed, if_match=stale.etag)
    assert (caught.value.status, caught.value.message) == (412, "precondition_failed")
    assert alice_files.get_bytes(name) == b"v1"


def test_cli_files_rotate_and_get_through_unwrap(live_app, tmp_path):
    alice = User.new("alice")
    home = tmp_path / "alice"
    home.mkdir()
    (home / "session.json").write_text(json.dumps({"server": live_app.base_url, "email": alice.email, "sid": alice.sid}))
    source = tmp_path / "plan.txt"
    source.write_text("the plan\n" * 500)
    name = unique_name("plan")

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "client", "--home", str(home), "files", *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))

    assert cli("put", str(source), "--name", name).returncode == 0
    rotated = cli("rotate", name, "--keep-old-versions")
    assert rotated.returncode == 0 and "key version 2 (older versions still usable)" in rotated.stdout
    assert cli("rotate", name).returncode == 0
    target = tmp_path / "plan-copy.txt"
    got = cli("get", name, "-o", str(target))
    assert got.returncode == 0 and target.read_bytes() == source.read_bytes()
