"""Audit log helpers for tests: the operator API as a verifier source, and a worker process."""

from __future__ import annotations

import base64
import json
import os
from typing import Iterator

from tests.support.devices import call


class HandlerSource:
    """The client verifier's :class:`client.audit_verify.LogSource`, served by calling the
    ``/audit`` handlers in this process (what a server would answer over HTTP)."""

    def checkpoint(self) -> str:
        status, body = call("audit_checkpoint", "GET", "audit/checkpoint")
        assert status == 200, body
        return body["checkpoint"]

    def entries(self, start: int, end: int) -> Iterator[tuple[int, str]]:
        while start < end:
            status, body = call("audit_entries", "GET", "audit/entries", params={"start": str(start), "end": str(end)})
            assert status == 200, body
            yield from ((item["index"], item["entry"]) for item in body["entries"])
            if body["next"] is None:
                return
            start = body["next"]

    def consistency(self, old_size: int, new_size: int) -> list[bytes]:
        status, body = call("audit_consistency_proof", "GET", "audit/proof/consistency",
                            params={"from": str(old_size), "to": str(new_size)})
        assert status == 200, body
        return [base64.b64decode(p) for p in body["proof"]]

    def inclusion(self, index: int, size: int) -> list[bytes]:
        status, body = call("audit_inclusion_proof", "GET", "audit/proof/inclusion",
                            params={"index": str(index), "size": str(size)})
        assert status == 200, body
        return [base64.b64decode(p) for p in body["proof"]]


def append_worker(args: tuple[dict[str, str], str, int]) -> list[int]:
    """Run in a separate process: append ``count`` entries naming ``worker``; returns their seqs."""
    environment, worker, count = args
    os.environ.update(environment)
    from shared_code.audit import trail

    return [trail.record("test_appended", actor=trail.OPERATOR, objects={"worker": worker, "n": n})
            for n in range(count)]


def entries_since(start: int) -> list[dict]:
    """The audit entries appended from index ``start`` on, parsed (read straight from the log)."""
    from shared_code.audit import proofs, sequencer

    state = sequencer.synced_state()
    return [json.loads(entry) for _, entry in proofs.entries(start, state.size, state)]


def audit_events(event: str) -> list[dict]:
    """Every entry of ``event`` in the audit log, read through the operator API page by page.

    The API serves the stored tree state, which lags the log by fewer than ``SAVE_EVERY`` entries
    (:mod:`shared_code.audit.sequencer`); folding the log first, as a checkpoint does, shows all.
    """
    from shared_code.audit import sequencer

    sequencer.synced_state()
    entries, start, size = [], 0, 1
    while start < size:
        status, body = call("audit_entries", "GET", "audit/entries", params={"start": str(start)})
        assert status == 200, body
        entries += [json.loads(item["entry"]) for item in body["entries"]]
        start, size = start + len(body["entries"]), body["size"]
        if not body["entries"]:
            break
    return [entry for entry in entries if entry["event"] == event]
