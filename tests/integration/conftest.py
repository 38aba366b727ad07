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


@pytest.fixture(scope="module")
def _fault_stack(tmp_path_factory) -> Iterator[FaultStack]:
    """One fault stack per test module (starting emulators is the slow part); provisioned."""
    with fault_stack(tmp_path_factory.mktemp("faults")) as stack, pytest.MonkeyPatch.context() as patch:
        for key, value in stack.settings().items():
            patch.setenv(key, value)
        reset_app_state()
        provision()
        yield stack
    reset_app_state()


@pytest.fixture
def faults(_fault_stack, monkeypatch) -> Iterator[FaultStack]:
    """Emulators of this test module alone behind fault proxies (:mod:`tests.support.faults`),
    the app pointed at the proxies with ``STORAGE_TIMEOUT_SECONDS`` = 1: freeze Cosmos DB or Blob
    Storage at a chosen request and check what a real timeout leaves behind. Each test starts
    with both emulators running and the request logs empty."""
    for key, value in _fault_stack.settings().items():
        monkeypatch.setenv(key, value)
    reset_app_state()
    for proxy in (_fault_stack.cosmos, _fault_stack.blob):
        proxy.resume()
        proxy.seen.clear()
    yield _fault_stack
    for proxy in (_fault_stack.cosmos, _fault_stack.blob):
        proxy.resume()
    monkeypatch.undo()
    reset_app_state()
