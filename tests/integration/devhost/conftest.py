"""Fixtures for the devhost integration tests: the sample app, served over real HTTP."""

from __future__ import annotations

import time
from typing import Callable, Iterator

import pytest

from devhost.server import RunningHost, serving
from tests.fixtures import sample_app


@pytest.fixture
def sample() -> Iterator[object]:
    """The sample app module with its recorded calls and behaviour reset around the test."""
    sample_app.reset()
    yield sample_app
    sample_app.reset()


@pytest.fixture(scope="module")
def http_host() -> Iterator[RunningHost]:
    """The sample app's HTTP functions under route prefix ``api`` (no timers, no blob polling)."""
    with serving(sample_app.app, timers=False, blob_triggers=False, route_prefix="api") as running:
        yield running


def wait_until(condition: Callable[[], bool], timeout: float = 10, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout}s")
        time.sleep(interval)
