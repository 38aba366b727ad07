"""Integration fixtures beyond the session-wide emulators."""

from __future__ import annotations

from typing import Iterator

import pytest

from devhost.emulators import Emulators, running_emulators
from devhost.provision import provision
from tests.conftest import reset_app_state
from tests.support.faults import FaultStack, fault_stack


@pytest.fixture
def private_stack(tmp_path, monkeypatch) -> Iterator[Emulators]:
    """Emulators of this test alone (provisioned, the app pointed at them), so a test may stop
    them to simulate an outage without disturbing the session's shared emulators."""
    with running_emulators(tmp_path) as stack:
        for key, value in stack.settings().items():
            monkeypatch.setenv(key, value)
        reset_app_state()
        provision()
        yield stack
    monkeypatch.undo()
    reset_app_state()


@pytest.fixture
def faults(tmp_path, monkeypatch) -> Iterator[FaultStack]:
    """Emulators of this test alone behind fault proxies (:mod:`tests.support.faults`), the app
    pointed at the proxies with ``STORAGE_TIMEOUT_SECONDS`` = 1: freeze Cosmos DB or Blob Storage
    at a chosen request and check what a real timeout leaves behind."""
    with fault_stack(tmp_path) as stack:
        for key, value in stack.settings().items():
            monkeypatch.setenv(key, value)
        reset_app_state()
        provision()
        yield stack
    monkeypatch.undo()
    reset_app_state()
