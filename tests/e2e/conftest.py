"""The app served by devhost on a free port over the session emulators."""

from typing import Iterator

import pytest

import function_app
from devhost.server import RunningHost, serving


# Package scope, not session: the host's blob-trigger pollers must stop when the e2e tests are done,
# or they verify blobs the integration tests stage on the same emulators behind those tests' backs.
@pytest.fixture(scope="package")
def live_app(emulators) -> Iterator[RunningHost]:
    with serving(function_app.app, port=0, blob_poll_seconds=0.3) as host:
        yield host
