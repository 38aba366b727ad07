"""The app served by devhost on a free port over the session emulators."""

from typing import Iterator

import pytest

import function_app
from devhost.server import RunningHost, serving


@pytest.fixture(scope="session")
def live_app(emulators) -> Iterator[RunningHost]:
    with serving(function_app.app, port=0, blob_poll_seconds=0.3) as host:
        yield host
