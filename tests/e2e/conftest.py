"""The app served by devhost on a free port over the session emulators.

Package-scoped: the devhost (and its blob-trigger watchers, which would act on every blob that
appears on the shared emulators) stops once the e2e tests are done, so it never races the
integration tests that drive the triggers themselves.
"""

from typing import Iterator

import pytest

import function_app
from devhost.server import RunningHost, serving


@pytest.fixture(scope="package")
def live_app(emulators) -> Iterator[RunningHost]:
    with serving(function_app.app, port=0, blob_poll_seconds=0.3) as host:
        yield host
