"""Shared fixtures.

``emulators`` (session): real Azurite + cosmosdb-server on free ports, the app's settings
pointed at them, the database and containers provisioned. Unit tests do not use it.
"""

from __future__ import annotations

import base64
import os
import sys
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from devhost.emulators import Emulators, running_emulators  # noqa: E402
from shared_code import blobs, config, cosmos  # noqa: E402

TEST_SETTINGS = {
    "TRUSTGATE_LOCAL_SETTINGS": str(ROOT / "tests" / "no-local-settings.json"),
    "DEVICE_TOKEN_PEPPER": base64.b64encode(b"test-pepper-" + b"x" * 32).decode(),
    "COSMOS_DATABASE": "trustgate-test",
    "STORAGE_TIMEOUT_SECONDS": "5",
    "UPLOADS_CONTAINER": "uploads",
    "PASSWORD_PEPPER": base64.b64encode(b"test-password-pepper-" + b"p" * 32).decode(),
    "JWT_SECRET": base64.b64encode(b"test-jwt-secret-" + b"j" * 32).decode(),
}


def reset_app_state() -> None:
    """Forget cached settings and clients after the environment changed."""
    config.reset_settings()
    cosmos.reset_client()
    blobs.reset_client()


@pytest.fixture(scope="session", autouse=True)
def _isolated_settings() -> Iterator[None]:
    """Every test sees only TEST_SETTINGS (plus what a fixture adds), never a developer's local.settings.json."""
    saved = dict(os.environ)
    os.environ.update(TEST_SETTINGS)
    reset_app_state()
    yield
    os.environ.clear()
    os.environ.update(saved)
    reset_app_state()


@pytest.fixture(scope="session")
def emulators(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulators]:
    """Azurite and cosmosdb-server for the session, provisioned, with the app's settings pointing at them."""
    from devhost.provision import provision

    with running_emulators(tmp_path_factory.mktemp("azurite")) as running:
        os.environ.update(running.settings())
        reset_app_state()
        provision()
        yield running
    reset_app_state()
