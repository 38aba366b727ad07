"""The client's audit verifier on logs built in memory: it accepts an intact log and trusts it from
then on, and names the failed check for a rewritten, dropped, reordered or non-canonical entry, a
bad signature, a shrunk log and a forked checkpoint."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from client.audit_note import VerifierKey
from client.audit_verify import ExportSource, TrustStore, VerificationError, verify_log
from client.cli import main
from shared_code.audit import checkpoints, merkle
from shared_code.audit.entries import build_entry


def _entries(count: int, outcome_of=lambda n: "granted") -> list[str]:
    return [build_entry(seq=n, ts=f"2026-01-01T00:00:{n:02d}.000000Z", event="token_issued", actor="operator",
                        objects={"token_ref": f"{n:012x}"}, outcome=outcome_of(n)).decode() for n in range(count)]


def _tree(entries: list[str]) -> merkle.CompactRange:
    tree = merkle.CompactRange.empty()
    for text in entries:
        tree.append(merkle.leaf_hash(text.encode()))
    return tree


def _node(entries: list[str]):
    hashes = [merkle.leaf_hash(t.encode()) for t in entries]
    return lambda level, index: merkle.subtree_root(hashes[index << level:(index + 1) << level])


class MemoryLog:
    """A log server in memory: its entries, a checkpoint signed with the test key, and proofs."""

    def __init__(self, entries: list[str]) -> None:
        self.items = list(enumerate(entries))
        self.note = checkpoints.sign_note(checkpoints.note_text(len(entries), _tree(entries).root()))
        self._node = _node(entries)

    def checkpoint(self) -> str:
        return self.note

    def entries(self, start, end):
        return iter([(i, e) for i, e in self.items if start <= i < end])

    def consistency(self, old, new):
        return merkle.consistency_proof(self._node, old, new)

    def inclusion(self, index, size):
        return merkle.inclusion_proof(self._node, index, size)


def _export(directory: Path, log: MemoryLog) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "checkpoint.txt").write_text(log.note, encoding="utf-8")
    (directory / "entries.jsonl").write_text("".join(json.dumps({"index": i, "entry": e}) + "\n" for i, e in log.items),
                                             encoding="utf-8")
    return directory


@pytest.fixture
def key(offline_settings) -> VerifierKey:
    return VerifierKey.parse(checkpoints.verifier_key())


def _fails(kind: str, source, key, store) -> None:
    with pytest.raises(VerificationError) as caught:
        verify_log(source, key, store)
    assert caught.value.kind == kind, caught.value


def test_an_intact_log_verifies_and_is_trusted_from_then_on(key, tmp_path):
    store = TrustStore(tmp_path / "trust")
    report = verify_log(MemoryLog(_entries(9)), key, store)
    assert (report.previous_size, report.checkpoint.size, report.entries_checked) == (None, 9, 9)
    assert report.inclusion_checked and oct(store.path.stat().st_mode)[-3:] == "600"
    grown = verify_log(MemoryLog(_entries(13)), key, store)
    assert (grown.previous_size, grown.entries_checked) == (9, 4)  # only the new entries are read


def test_a_rewritten_entry_fails_the_root(key, tmp_path):
    log = MemoryLog(_entries(6))
    log.items[3] = (3, _entries(6, lambda n: "refused")[3])  # same seq, other outcome
    _fails("root", log, key, TrustStore(tmp_path))


def test_a_dropped_entry_and_reordered_entries_fail_the_entries_check(key, tmp_path):
    entries = _entries(6)
    dropped = _export(tmp_path / "dropped", MemoryLog(entries))
    lines = (dropped / "entries.jsonl").read_text().splitlines(keepends=True)
    (dropped / "entries.jsonl").write_text("".join(lines[:2] + lines[3:]))
    _fails("entries", ExportSource(dropped), key, TrustStore(tmp_path / "a"))

    reordered = MemoryLog(entries)
    reordered.items[1], reordered.items[2] = (1, entries[2]), (2, entries[1])  # indices kept, entries swapped
    _fails("entries", reordered, key, TrustStore(tmp_path / "b"))


def test_a_non_canonical_entry_fails(key, tmp_path):
    log = MemoryLog(_entries(3))
    log.items[1] = (1, log.items[1][1].replace(",", ", ", 1))
    _fails("entries", log, key, TrustStore(tmp_path))


def test_a_bad_or_foreign_signature_fails(key, tmp_path, offline_settings, monkeypatch):
    log = MemoryLog(_entries(3))
    log.note = log.note.replace("\n3\n", "\n2\n", 1)  # the signed text changed
    _fails("signature", log, key, TrustStore(tmp_path))
    monkeypatch.setenv("AUDIT_SIGNING_KEY", base64.b64encode(b"another-key-" + b"k" * 20).decode())
    from shared_code.platform import config

    config.reset_settings()
    foreign = MemoryLog(_entries(3))  # a valid note, but not by the pinned key
    _fails("signature", foreign, key, TrustStore(tmp_path))


def test_a_forked_or_shrunk_log_is_reported_against_the_trusted_checkpoint(key, tmp_path):
    store = TrustStore(tmp_path)
    verify_log(MemoryLog(_entries(5)), key, store)
    fork = _entries(7, lambda n: "refused" if n == 2 else "granted")  # history rewritten, validly signed
    _fails("fork", MemoryLog(fork), key, store)
    _fails("fork", MemoryLog(_entries(4)), key, store)  # a shorter log
    same_size_fork = _entries(5, lambda n: "refused" if n == 4 else "granted")
    _fails("fork", MemoryLog(same_size_fork), key, store)
    # exported files carry no proofs: the trusted root is recomputed from the entries instead
    _fails("fork", ExportSource(_export(tmp_path / "export", MemoryLog(fork))), key, store)
    assert verify_log(MemoryLog(_entries(8)), key, store).previous_size == 5  # the honest log still verifies


def test_cli_verifies_exported_files_and_reports_the_failed_check(key, tmp_path, capsys):
    directory = _export(tmp_path / "export", MemoryLog(_entries(4)))
    vkey = checkpoints.verifier_key()
    assert main(["audit", "verify", "--from", str(directory), "--key", vkey, "--home", str(tmp_path / "h")]) == 0
    assert "ok: trustgate/test/audit size 4" in capsys.readouterr().out
    lines = (directory / "entries.jsonl").read_text().splitlines(keepends=True)
    (directory / "entries.jsonl").write_text("".join(lines[:-1]))
    assert main(["audit", "verify", "--from", str(directory), "--key", vkey, "--home", str(tmp_path / "h")]) == 1
    assert "FAILED entries: 1 entries missing" in capsys.readouterr().out
