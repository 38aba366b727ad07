"""The audit log against Azurite and cosmosdb-server: sequencing, tiles, proofs, checkpoints,
crash repair, concurrent writers in several processes, the client's verifier over the API, and the
operator endpoints' refusals of bad parameters."""

from __future__ import annotations

import json
import multiprocessing
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from client.audit_merkle import RootBuilder, leaf_hash, verify_consistency
from client.audit_note import VerifierKey, verify_checkpoint
from client.audit_verify import TrustStore, verify_log
from shared_code.audit import checkpoints, proofs, sequencer, storage, trail
from shared_code.audit.storage import PositionTaken
from shared_code.platform.errors import ServiceUnavailable
from tests.support.audit import HandlerSource, append_worker
from tests.support.devices import call

pytestmark = pytest.mark.integration


@pytest.fixture
def clean_log(private_stack):
    """A log of its own, so sizes start at 0."""
    sequencer.reset_cache()
    yield
    sequencer.reset_cache()


@pytest.fixture
def small_tiles(clean_log, monkeypatch):
    """Tiles of height 2 (4 hashes) and segments of 16 entries, so a few dozen entries cross
    segments and fill tiles at four levels."""
    monkeypatch.setattr(storage, "TILE_HEIGHT", 2)
    monkeypatch.setattr(storage, "TILE_WIDTH", 4)
    monkeypatch.setattr(storage, "SEGMENT_ENTRIES", 16)


def _record(n: int, **objects) -> int:
    return trail.record("test_event", actor=trail.OPERATOR, objects={"n": n, **objects})


def _key() -> VerifierKey:
    return VerifierKey.parse(checkpoints.verifier_key())


def _all_entries() -> list[dict]:
    return [json.loads(text) for _, text in HandlerSource().entries(0, sequencer.synced_state().size)]


def test_entries_get_consecutive_seqs_and_every_proof_verifies_across_segments_and_tiles(small_tiles, tmp_path):
    seqs = [_record(n) for n in range(70)]
    assert seqs == list(range(70))
    published = checkpoints.publish()
    assert published.size == 70
    cp = verify_checkpoint(published.note, _key())
    assert cp.origin == "trustgate/test/audit" and cp.root == sequencer.synced_state().tree.root()

    entries = list(HandlerSource().entries(0, 70))
    assert [json.loads(text)["seq"] for _, text in entries] == list(range(70))
    builder = RootBuilder()
    for _, text in entries:
        builder.add(leaf_hash(text.encode()))
    assert builder.root() == cp.root

    store = TrustStore(tmp_path)
    report = verify_log(HandlerSource(), _key(), store, samples=70)
    assert report.previous_size is None and report.entries_checked == 70 and len(report.inclusion_checked) == 70
    for old in (1, 2, 5, 16, 33, 64, 69):  # consistency proofs read the tiles, not the log
        old_root = RootBuilder()
        for _, text in entries[:old]:
            old_root.add(leaf_hash(text.encode()))
        verify_consistency(old, 70, old_root.root(), cp.root, proofs.consistency(old, 70))

    for n in range(70, 75):
        _record(n)
    checkpoints.publish()
    again = verify_log(HandlerSource(), _key(), store)
    assert again.previous_size == 70 and again.entries_checked == 5 and again.checkpoint.size == 75
    assert storage.read_tile(0, 0) and storage.read_tile(1, 0) and storage.read_tile(2, 0) and storage.read_tile(3, 0)


def test_a_crash_before_the_state_update_leaves_a_durable_entry_that_the_next_append_folds(clean_log, monkeypatch):
    first = _record(0)
    second = _record(1)  # durable; the stored state is behind it (stored every SAVE_EVERY entries)
    assert second == first + 1 and sequencer.load_state().size == first + 1  # the stored state lags
    sequencer.reset_cache()  # the process dies: what it folded in memory is gone
    third = _record(2)  # a new process: its stale offset meets 412, it folds entry 1, appends, stores
    assert third == first + 2 and sequencer.load_state().size == first + 3
    assert [e["objects"]["n"] for e in _all_entries()] == [0, 1, 2]


def test_a_failed_state_store_after_a_durable_append_is_repaired_by_the_next_one(clean_log, monkeypatch):
    monkeypatch.setattr(sequencer, "SAVE_EVERY", 1)  # store after every entry, so the store can fail
    first = _record(0)
    original = sequencer.save_state
    monkeypatch.setattr(sequencer, "save_state", lambda state: (_ for _ in ()).throw(ServiceUnavailable(detail="down")))
    second = _record(1)  # durable; only the fold's store failed
    assert second == first + 1 and sequencer.load_state().size == first + 1
    monkeypatch.setattr(sequencer, "save_state", original)
    third = _record(2)
    assert third == first + 2 and sequencer.load_state().size == first + 3
    assert [e["objects"]["n"] for e in _all_entries()] == [0, 1, 2]


def test_an_append_costs_one_storage_call_between_state_stores(clean_log, monkeypatch):
    _record(0)
    calls = []
    for name in ("append_at", "read_bytes"):
        real = getattr(storage, name)
        monkeypatch.setattr(storage, name, lambda *a, _real=real, _name=name, **k: calls.append(_name) or _real(*a, **k))
    saves = []
    real_save = sequencer.save_state
    monkeypatch.setattr(sequencer, "save_state", lambda state: saves.append(state.size) or real_save(state))
    for n in range(1, 40):
        _record(n)
    assert calls == ["append_at"] * 39
    assert saves == [16, 32]


def test_a_lost_answer_after_the_block_landed_is_recognised_and_not_duplicated(clean_log, monkeypatch):
    original = storage.append_at

    def landed_but_answer_lost(name, data, position):
        original(name, data, position)
        raise PositionTaken(name)  # what the SDK's retry of a landed block meets

    monkeypatch.setattr(storage, "append_at", landed_but_answer_lost)
    assert _record(0) == 0
    monkeypatch.setattr(storage, "append_at", original)
    assert _record(1) == 1
    assert [e["objects"]["n"] for e in _all_entries()] == [0, 1]


def test_a_timed_out_append_that_lands_later_fails_the_request_and_is_folded_by_the_next(clean_log, monkeypatch):
    original = storage.append_at

    def landed_then_timed_out(name, data, position):
        original(name, data, position)
        raise ServiceUnavailable(detail="read timeout")

    monkeypatch.setattr(storage, "append_at", landed_then_timed_out)
    with pytest.raises(ServiceUnavailable):
        _record(0)
    monkeypatch.setattr(storage, "append_at", original)
    assert _record(1) == 1  # the landed entry 0 was folded in first, nothing overwritten
    assert [e["seq"] for e in _all_entries()] == [0, 1]


def test_concurrent_appends_from_four_processes_have_no_gap_no_duplicate_and_one_tree_with_its_tiles(clean_log, tmp_path):
    environment = {k: v for k, v in os.environ.items() if k.startswith(("COSMOS", "STORAGE", "AUDIT", "TRUSTGATE"))}
    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        results = pool.map(append_worker, [(environment, f"w{i}", 70) for i in range(4)])
    seqs = sorted(seq for result in results for seq in result)
    assert seqs == list(range(280))  # no gap, no duplicate
    entries = _all_entries()
    assert [e["seq"] for e in entries] == list(range(280))
    assert sorted((e["objects"]["worker"], e["objects"]["n"]) for e in entries) == sorted(
        (f"w{i}", n) for i in range(4) for n in range(70))
    for result in results:  # each process's own entries in its own order
        assert result == sorted(result)
    checkpoints.publish()
    report = verify_log(HandlerSource(), _key(), TrustStore(tmp_path), samples=20)
    assert report.checkpoint.size == 280 and report.checkpoint.root == sequencer.synced_state().tree.root()
    assert storage.read_tile(0, 0) and len(storage.read_tile(0, 0)) == 8192


def test_checkpoints_only_grow_and_a_crash_after_the_append_is_repaired(clean_log, monkeypatch):
    _record(0)
    first = checkpoints.publish()
    assert checkpoints.publish() == first  # nothing new: no second checkpoint
    _record(1)
    original = checkpoints._store_item
    monkeypatch.setattr(checkpoints, "_store_item", lambda new, old: (_ for _ in ()).throw(ServiceUnavailable()))
    with pytest.raises(ServiceUnavailable):
        checkpoints.publish()  # appended to the checkpoint blob, item not updated
    monkeypatch.setattr(checkpoints, "_store_item", original)
    assert checkpoints.latest().size == 1  # readers still see the previous one
    repaired = checkpoints.publish()
    assert repaired.size == 2
    stored = [record for _, _, record in storage.iter_records(storage.checkpoint_segment, 0, 0, 10_000)]
    assert [int(note.decode().split("\n")[1]) for note in stored] == [1, 2]  # once each, in order


def test_the_timer_publishes_only_when_the_log_grew_and_the_interval_passed(clean_log):
    from datetime import timedelta

    from shared_code.platform.timeutil import utc_now

    assert checkpoints.publish_if_due() is not None  # none yet: the empty tree
    _record(0)
    assert checkpoints.publish_if_due() is None  # too soon
    assert checkpoints.publish_if_due(utc_now() + timedelta(seconds=61)).size == 1
    assert checkpoints.publish_if_due(utc_now() + timedelta(seconds=600)) is None  # nothing new


def test_concurrent_decisions_of_one_process_share_blocks_and_keep_one_order(clean_log, monkeypatch):
    blocks = []
    real = storage.append_at

    def slow_append(name, data, position):
        blocks.append(len(data))
        time.sleep(0.05)  # a storage round trip, during which the other callers queue up
        return real(name, data, position)
    monkeypatch.setattr(storage, "append_at", slow_append)
    with ThreadPoolExecutor(24) as pool:
        seqs = list(pool.map(lambda n: _record(n), range(48)))
    assert sorted(seqs) == list(range(48))  # each entry once, no gap
    assert len(blocks) < 48 / 4  # group commit: far fewer blocks than entries
    entries = _all_entries()
    assert [e["seq"] for e in entries] == list(range(48))
    assert sorted(e["objects"]["n"] for e in entries) == list(range(48))
    assert {e["objects"]["n"]: e["seq"] for e in entries} == {n: seq for n, seq in zip(range(48), seqs)}


def test_a_failed_block_fails_every_decision_in_it_and_logs_none(clean_log, monkeypatch):
    real = storage.append_at
    gate = threading.Event()

    def failing(name, data, position):
        gate.wait(2)
        raise ServiceUnavailable(detail="down")
    monkeypatch.setattr(storage, "append_at", failing)
    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(_record, n) for n in range(8)]
        time.sleep(0.2)
        gate.set()
        errors = [f.exception() for f in futures]
    assert all(isinstance(e, ServiceUnavailable) for e in errors)
    monkeypatch.setattr(storage, "append_at", real)
    assert _record(100) == 0 and [e["objects"]["n"] for e in _all_entries()] == [100]


def test_operator_endpoints_refuse_bad_parameters(emulators):
    checkpoints.publish()
    size = sequencer.synced_state().size
    assert call("audit_inclusion_proof", "GET", "audit/proof/inclusion",
                params={"index": str(size), "size": str(size)})[1]["message"] == "invalid_index"
    assert call("audit_inclusion_proof", "GET", "audit/proof/inclusion",
                params={"index": "0", "size": str(size + 1)})[1]["message"] == "invalid_size"
    assert call("audit_consistency_proof", "GET", "audit/proof/consistency",
                params={"from": "2", "to": "1"})[0] == 400
    assert call("audit_entries", "GET", "audit/entries", params={"start": "x"})[0] == 400
