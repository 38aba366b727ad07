"""Audit log helpers for tests: the operator API as a verifier source, the entries a request
wrote, an audit log that is down, and a worker process."""

from __future__ import annotations

import base64
import json
import os
from typing import Iterator

import pytest

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


def log_size() -> int:
    """How many entries the log holds now (every durable entry is visible at once)."""
    from shared_code.audit import sequencer

    return sequencer.synced_state().size


def entries_since(size: int, event: str | None = None) -> list[dict]:
    """The entries appended since the log held ``size`` (parsed, read through ``GET /audit/entries``),
    only those of ``event`` if given."""
    found = [json.loads(text) for _, text in HandlerSource().entries(size, log_size())]
    return [entry for entry in found if event is None or entry["event"] == event]


def only_entry(size: int, event: str, *in_clear: str) -> dict:
    """The one ``event`` entry appended since the log held ``size``; asserts that none of the
    ``in_clear`` values (secrets, emails, addresses, file names) appears in it."""
    found = entries_since(size, event)
    assert len(found) == 1, found
    text = json.dumps(found[0])
    for value in in_clear:
        assert value not in text, f"{value!r} in the audit entry {text}"
    return found[0]


class AuditOutage:
    """Turns the audit log's blob writes into a storage outage (503) and back, while everything
    else keeps working: the seam every append goes through (``storage.append_at``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from shared_code.audit import storage

        self._monkeypatch, self._storage, self._real = monkeypatch, storage, storage.append_at

    def down(self) -> None:
        from shared_code.platform.errors import ServiceUnavailable

        def refused(*args, **kwargs):
            raise ServiceUnavailable(detail="file storage is unavailable, try again later")

        self._monkeypatch.setattr(self._storage, "append_at", refused)

    def up(self) -> None:
        self._monkeypatch.setattr(self._storage, "append_at", self._real)


@pytest.fixture
def audit_outage(emulators, monkeypatch) -> AuditOutage:
    """An :class:`AuditOutage` (the log is up until ``down()``; restored after the test)."""
    return AuditOutage(monkeypatch)


@pytest.fixture
def log_down(audit_outage) -> AuditOutage:
    """The audit log is down from the start of the test (``up()`` brings it back)."""
    audit_outage.down()
    return audit_outage


def append_worker(args: tuple[dict[str, str], str, int]) -> list[int]:
    """Run in a separate process: append ``count`` entries naming ``worker``; returns their seqs."""
    environment, worker, count = args
    os.environ.update(environment)
    from shared_code.audit import trail

    return [trail.record("test_appended", actor=trail.OPERATOR, objects={"worker": worker, "n": n})
            for n in range(count)]


def audit_events(event: str) -> list[dict]:
    """Every entry of ``event`` in the audit log (:func:`entries_since` the start)."""
    return entries_since(0, event)
