"""The audit log verifier: signature, root from the entries, proofs, and trust on first use.

:func:`verify_log` checks, in this order, and raises :class:`VerificationError` (``kind`` names
the check) at the first failure:

1. ``signature``: the checkpoint is signed by the pinned key (:mod:`client.audit_note`);
2. ``fork``: against the last checkpoint this verifier accepted for the same origin (kept in
   ``<home>/audit/trusted.json``): the tree did not shrink, equal sizes have equal roots, and the
   server's consistency proof (RFC 9162 §2.1.4) from the old to the new tree verifies. A rewrite
   of history or a second, forked view of the log fails here;
3. ``entries``: every entry up to the checkpoint's size is present, is RFC 8785 canonical JSON,
   and has ``seq`` equal to its index (a dropped or reordered entry fails here);
4. ``root``: the Merkle root recomputed from the entries equals the checkpoint's (a rewritten
   entry fails here); only entries after the trusted size are fetched unless ``full``;
5. ``inclusion``: inclusion proofs (RFC 9162 §2.1.3) of sampled entries verify against the root.

Only then is the checkpoint stored as the new trusted state.
"""

from __future__ import annotations

import base64
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

import rfc8785

from client.audit_merkle import ProofError, RootBuilder, leaf_hash, verify_consistency, verify_inclusion
from client.audit_note import NoteError, SignedCheckpoint, VerifierKey, verify_checkpoint

TRUSTED_FILE = "trusted.json"
INCLUSION_SAMPLES = 8


class VerificationError(Exception):
    """The log failed check ``kind`` (``signature``, ``fork``, ``entries``, ``root``, ``inclusion``)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind = kind


class LogSource(Protocol):
    """Where the verifier reads a log from: a server or exported files."""

    def checkpoint(self) -> str: ...

    def entries(self, start: int, end: int) -> Iterator[tuple[int, str]]: ...

    def consistency(self, old_size: int, new_size: int) -> list[bytes] | None: ...

    def inclusion(self, index: int, size: int) -> list[bytes] | None: ...


@dataclass
class Report:
    """What a successful verification established."""

    checkpoint: SignedCheckpoint
    previous_size: int | None
    entries_checked: int
    inclusion_checked: list[int] = field(default_factory=list)


class TrustStore:
    """The last accepted checkpoint per origin: ``{origin: {size, root, edge, note}}`` (mode 0600)."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / TRUSTED_FILE

    def _all(self) -> dict:
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}

    def get(self, origin: str) -> dict | None:
        return self._all().get(origin)

    def put(self, checkpoint: SignedCheckpoint, edge: list[tuple[int, bytes]]) -> None:
        document = self._all()
        document[checkpoint.origin] = {
            "size": checkpoint.size, "root": base64.b64encode(checkpoint.root).decode(), "note": checkpoint.note,
            "edge": [[level, base64.b64encode(h).decode()] for level, h in edge]}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document, indent=2), encoding="utf-8")
        os.chmod(temporary, 0o600)
        temporary.replace(self.path)


def _entry_leaf(index: int, text: str) -> bytes:
    raw = text.encode("utf-8")
    try:
        document = json.loads(raw)
    except ValueError:
        raise VerificationError("entries", f"entry {index} is not JSON") from None
    if not isinstance(document, dict) or rfc8785.dumps(document) != raw:
        raise VerificationError("entries", f"entry {index} is not RFC 8785 canonical JSON")
    if document.get("seq") != index:
        raise VerificationError("entries", f"entry at index {index} says seq {document.get('seq')!r} "
                                           "(entries dropped, inserted or reordered)")
    return leaf_hash(raw)


def verify_log(source: LogSource, key: VerifierKey, store: TrustStore, *, full: bool = False,
               samples: int = INCLUSION_SAMPLES) -> Report:
    """Run the checks of the module doc against ``source``; returns a :class:`Report`, or raises
    :class:`VerificationError`. ``full`` re-reads every entry even when a trusted state exists."""
    try:
        checkpoint = verify_checkpoint(source.checkpoint(), key)
    except NoteError as exc:
        raise VerificationError("signature", str(exc)) from None
    trusted = store.get(checkpoint.origin)
    builder = RootBuilder()
    if trusted is not None:
        old_size, old_root = trusted["size"], base64.b64decode(trusted["root"])
        if checkpoint.size < old_size:
            raise VerificationError("fork", f"the log shrank from {old_size} to {checkpoint.size} entries")
        if old_size and old_size <= checkpoint.size:
            proof = source.consistency(old_size, checkpoint.size)
            if proof is None:
                full = True  # no proofs (exported files): recompute the trusted root instead
            else:
                try:
                    verify_consistency(old_size, checkpoint.size, old_root, checkpoint.root, proof)
                except ProofError as exc:
                    raise VerificationError("fork", f"not consistent with the trusted checkpoint of size {old_size}: {exc}") from None
        if not full:
            builder = RootBuilder.resume(old_size, [(lvl, base64.b64decode(h)) for lvl, h in trusted["edge"]])
    leaves: dict[int, bytes] = {}
    expected = builder.size
    for index, text in source.entries(builder.size, checkpoint.size):
        if index != expected:
            raise VerificationError("entries", f"expected entry {expected}, got {index}")
        leaves[index] = _entry_leaf(index, text)
        builder.add(leaves[index])
        expected += 1
        if trusted is not None and full and builder.size == trusted["size"] and builder.root() != base64.b64decode(trusted["root"]):
            raise VerificationError("fork", f"the first {trusted['size']} entries no longer give the trusted root")
    if builder.size != checkpoint.size:
        raise VerificationError("entries", f"{checkpoint.size - builder.size} entries missing before size {checkpoint.size}")
    if builder.root() != checkpoint.root:
        raise VerificationError("root", "the entries do not give the checkpoint's root (an entry was rewritten)")
    checked = _check_inclusion(source, checkpoint, leaves, samples)
    store.put(checkpoint, builder.edge)
    return Report(checkpoint, trusted["size"] if trusted else None, len(leaves), checked)


def _check_inclusion(source: LogSource, checkpoint: SignedCheckpoint, leaves: dict[int, bytes], samples: int) -> list[int]:
    if not leaves:
        return []
    indices = sorted(leaves)
    chosen = sorted({indices[0], indices[-1], *random.sample(indices, min(samples, len(indices)))})[:samples + 2]
    checked = []
    for index in chosen:
        proof = source.inclusion(index, checkpoint.size)
        if proof is None:
            continue
        try:
            verify_inclusion(index, checkpoint.size, leaves[index], proof, checkpoint.root)
        except ProofError as exc:
            raise VerificationError("inclusion", f"entry {index}: {exc}") from None
        checked.append(index)
    return checked


class ExportSource:
    """A log exported by ``audit export``: ``checkpoint.txt`` and ``entries.jsonl`` (one
    ``{"index", "entry"}`` per line). It has no proofs: the verifier recomputes the root, and a
    trusted state is checked by the full recomputation instead of a consistency proof."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def checkpoint(self) -> str:
        return (self.directory / "checkpoint.txt").read_text(encoding="utf-8")

    def entries(self, start: int, end: int) -> Iterator[tuple[int, str]]:
        with open(self.directory / "entries.jsonl", encoding="utf-8") as handle:
            for line in handle:
                item = json.loads(line)
                if start <= item["index"] < end:
                    yield item["index"], item["entry"]

    def consistency(self, old_size: int, new_size: int) -> None:
        return None

    def inclusion(self, index: int, size: int) -> None:
        return None
