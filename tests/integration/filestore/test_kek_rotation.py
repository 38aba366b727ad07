"""KEK rotation end to end on cosmosdb-server and Azurite: a new active KEK, the rewrap timer moving
old-kid keys over in bounded batches (also after the process is killed mid-batch), the old KEK
removed afterwards, and GET /kms/status counting what each KEK wraps.

Each test runs on emulators of its own (``private_stack``): rewrapping touches every key item, and
the session's shared stack holds other tests' keys under the test KEK.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
import textwrap

import pytest
from azure.functions.timer import TimerRequest

from client.envelope import Sealed, open_sealed
from shared_code.filestore import kek_rotation, key_wrap, kms
from shared_code.platform import cosmos
from tests.conftest import ROOT
from tests.support.audit import audit_events
from tests.support.devices import HANDLERS, call
from tests.support.files import User, unique_name
from tests.support.settings import apply_settings

pytestmark = pytest.mark.integration

NEW_KID = "2026-01"


def _kek() -> str:
    return base64.b64encode(os.urandom(32)).decode()


@pytest.fixture
def stack(private_stack, monkeypatch):
    """The private stack plus a way to change the keyring settings for this test."""
    private_stack.keyring = lambda **values: apply_settings(monkeypatch, **values)
    return private_stack


def _status() -> dict:
    status, body = call("kms_status", "GET", "kms/status")
    assert status == 200, body
    return body


def _keys_by_kid(body: dict) -> dict[str, int]:
    return {entry["kid"]: entry["keys"] for entry in body["keks"]}


def _private_keys(user: User, names: list[str]) -> dict[str, bytes]:
    keys = {}
    for name in names:
        status, body = user.private_key(name)
        assert status == 200, body
        keys[name] = base64.b64decode(body["kms_private_key"])
    return keys


def _kids() -> list[str]:
    return sorted(item["wrapped_private_key"]["kid"] for item in
                  cosmos.query_first(cosmos.KMS_KEYS, "SELECT * FROM c", [], 1000))


def _timer() -> TimerRequest:
    return TimerRequest(past_due=False, schedule_status={}, schedule={})


def test_rotation_end_to_end_rewraps_in_batches_then_the_old_kek_can_go(stack) -> None:
    alice, bob = User.new("alice"), User.new("bob")
    names = [unique_name("kek") for _ in range(5)]
    plaintext = b"sealed before the KEK rotation"
    alice.put(names[0], plaintext)
    for name in names[1:]:
        assert alice.public_key(name)[0] == 200
    assert alice.grant(names[0], bob.email)[0] == 200
    before = _private_keys(alice, names)
    legacy = key_wrap.current_kek().kid
    assert _status()["keks"] == [{"kid": legacy, "active": True, "keys": 5, "retirable": False}]

    # Given a new active KEK next to the old one: new keys use it at once, old ones still read.
    stack.keyring(KMS_MASTER_KEYS=json.dumps({NEW_KID: _kek()}), KMS_ACTIVE_KEK=NEW_KID)
    fresh = unique_name("kek-new")
    assert alice.public_key(fresh)[0] == 200
    assert _keys_by_kid(_status()) == {legacy: 5, NEW_KID: 1}
    assert _private_keys(alice, names) == before

    # When the timer runs in bounded batches: one batch of 2, then the timer finishes the rest.
    first = kek_rotation.rewrap_run(batch_size=2, max_batches=1)
    assert (first.rewrapped, first.batches, first.more) == (2, 1, True)
    assert _keys_by_kid(_status()) == {legacy: 3, NEW_KID: 3}
    HANDLERS["kms_rewrap_timer"](timer=_timer())

    # Then nothing is left under the old kid, which is retirable, and removing it loses nothing.
    body = _status()
    assert body["active_kek"] == NEW_KID and _keys_by_kid(body) == {legacy: 0, NEW_KID: 6}
    assert [entry["retirable"] for entry in body["keks"] if entry["kid"] == legacy] == [True]
    stack.keyring(KMS_MASTER_KEY=None)
    assert key_wrap.keyring().kids == [NEW_KID]
    assert _private_keys(alice, names) == before and _private_keys(bob, names[:1]) == {names[0]: before[names[0]]}
    status, downloaded = alice.download(names[0])
    sealed = [base64.b64decode(downloaded[k]) for k in ("encrypted_data", "encrypted_aes_key", "encrypted_aes_initial_vector")]
    assert open_sealed(Sealed(*sealed), names[0], before[names[0]]) == plaintext
    assert _status()["unknown_kek_keys"] == 0


def test_each_batch_is_in_the_audit_log_before_its_writes(stack) -> None:
    alice = User.new("alice")
    for _ in range(3):
        assert alice.public_key(unique_name("kek"))[0] == 200
    legacy = key_wrap.current_kek().kid
    stack.keyring(KMS_MASTER_KEYS=json.dumps({NEW_KID: _kek()}), KMS_ACTIVE_KEK=NEW_KID)
    kek_rotation.rewrap_run(batch_size=2)
    batches = [entry["objects"] for entry in audit_events("kms_kek_rewrap_batch")]
    assert batches == [{"to_kek": NEW_KID, "from_keks": [legacy], "keys": 2},
                       {"to_kek": NEW_KID, "from_keks": [legacy], "keys": 1}]


CRASHING_RUN = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, {root!r})
    from shared_code.platform import cosmos
    from shared_code.filestore import kek_rotation
    original, done = cosmos.replace_item, []
    def replace_then_die(spec, body, etag):
        result = original(spec, body, etag)
        done.append(spec is cosmos.KMS_KEYS)
        if sum(done) == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # the process dies mid-batch, right after its 2nd write
        return result
    cosmos.replace_item = replace_then_die
    kek_rotation.rewrap_run(batch_size=10)
""")


def test_a_process_killed_mid_batch_leaves_every_key_readable_and_the_next_run_resumes(stack) -> None:
    alice = User.new("alice")
    names = [unique_name("kek") for _ in range(5)]
    for name in names:
        assert alice.public_key(name)[0] == 200
    before = _private_keys(alice, names)
    legacy = key_wrap.current_kek().kid
    stack.keyring(KMS_MASTER_KEYS=json.dumps({NEW_KID: _kek()}), KMS_ACTIVE_KEK=NEW_KID)

    crashed = subprocess.run([sys.executable, "-c", CRASHING_RUN.format(root=str(ROOT))], env=dict(os.environ),
                             capture_output=True, timeout=120)
    assert crashed.returncode == -9, crashed.stderr.decode()[-2000:]
    assert _kids() == sorted([legacy] * 3 + [NEW_KID] * 2)
    assert _private_keys(alice, names) == before  # every prefix is readable

    report = kek_rotation.rewrap_run()
    assert (report.rewrapped, report.failed) == (3, [])
    assert _kids() == [NEW_KID] * 5
    stack.keyring(KMS_MASTER_KEY=None)
    assert _private_keys(alice, names) == before


def test_a_write_racing_the_rewrap_wins_and_the_key_is_rewrapped_by_the_next_batch(stack, monkeypatch) -> None:
    alice = User.new("alice")
    name = unique_name("kek")
    assert alice.public_key(name)[0] == 200
    stack.keyring(KMS_MASTER_KEYS=json.dumps({NEW_KID: _kek()}), KMS_ACTIVE_KEK=NEW_KID)
    original = key_wrap.rewrap

    def rewrap_while_someone_writes(wrapped, key_id, ring=None):
        item = cosmos.read_item(cosmos.KMS_KEYS, key_id, key_id)
        cosmos.upsert_item(cosmos.KMS_KEYS, {**{k: v for k, v in item.items() if not k.startswith("_")}, "note": "concurrent"})
        monkeypatch.setattr(key_wrap, "rewrap", original)  # only the first time
        return original(wrapped, key_id, ring)

    monkeypatch.setattr(key_wrap, "rewrap", rewrap_while_someone_writes)
    report = kek_rotation.rewrap_run(batch_size=1, max_batches=1)
    assert (report.rewrapped, report.raced) == (0, 1)
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))
    assert item["note"] == "concurrent" and item["wrapped_private_key"]["kid"] != NEW_KID  # the late write lost
    assert kek_rotation.rewrap_run().rewrapped == 1
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(name), kms.key_id(name))
    assert item["note"] == "concurrent" and item["wrapped_private_key"]["kid"] == NEW_KID


def test_an_altered_record_is_skipped_reported_and_fails_the_timer_run(stack) -> None:
    alice = User.new("alice")
    good, bad = unique_name("kek"), unique_name("kek")
    for name in (good, bad):
        assert alice.public_key(name)[0] == 200
    item = cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(bad), kms.key_id(bad))
    item["wrapped_private_key"]["ciphertext"] = base64.b64encode(os.urandom(64)).decode()
    cosmos.upsert_item(cosmos.KMS_KEYS, item)
    stack.keyring(KMS_MASTER_KEYS=json.dumps({NEW_KID: _kek()}), KMS_ACTIVE_KEK=NEW_KID)

    with pytest.raises(RuntimeError, match="do not unwrap"):
        HANDLERS["kms_rewrap_timer"](timer=_timer())
    assert cosmos.read_item(cosmos.KMS_KEYS, kms.key_id(good), kms.key_id(good))["wrapped_private_key"]["kid"] == NEW_KID
    assert kek_rotation.rewrap_run(batch_size=1).failed == [kms.key_id(bad)]


def test_status_reports_keys_under_kids_the_keyring_lacks(stack) -> None:
    alice = User.new("alice")
    name = unique_name("kek")
    assert alice.public_key(name)[0] == 200
    legacy = key_wrap.current_kek().kid
    stack.keyring(KMS_MASTER_KEY=None, KMS_MASTER_KEYS=json.dumps({NEW_KID: _kek()}), KMS_ACTIVE_KEK=None)
    body = _status()
    assert (body["unknown_kek_keys"], body["unknown_keks"]) == (1, [legacy])
    assert kek_rotation.rewrap_run().rewrapped == 0  # nothing can read it: never queried for rewrap
    status, answer = alice.private_key(name)
    assert (status, answer["message"]) == (500, "kms_unwrap_failed")


def test_every_version_of_a_file_key_is_rewrapped_with_its_own_associated_data(stack) -> None:
    alice = User.new("alice")
    name = unique_name("kek-versions")
    assert alice.public_key(name)[0] == 200
    assert alice.rotate(name)[1]["key_version"] == 2
    exported = {v: alice.post("get_private_key", {"file_name": name, "key_version": v})[1]["kms_private_key"] for v in (1, 2)}
    legacy = key_wrap.current_kek().kid
    stack.keyring(KMS_MASTER_KEYS=json.dumps({NEW_KID: _kek()}), KMS_ACTIVE_KEK=NEW_KID)
    assert _keys_by_kid(_status()) == {legacy: 2, NEW_KID: 0}  # one wrapped key per live version

    assert kek_rotation.rewrap_run().rewrapped == 1  # one item, both versions in one write
    assert _keys_by_kid(_status()) == {legacy: 0, NEW_KID: 2}
    stack.keyring(KMS_MASTER_KEY=None)
    assert {v: alice.post("get_private_key", {"file_name": name, "key_version": v})[1]["kms_private_key"] for v in (1, 2)} == exported
