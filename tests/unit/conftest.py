"""Unit-test fixtures."""

from __future__ import annotations

from typing import Iterator

import pytest

from shared_code.platform import config


@pytest.fixture
def offline_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Complete settings without emulators: COSMOS_ENDPOINT is required but never contacted."""
    monkeypatch.setenv("COSMOS_ENDPOINT", "https://unused.documents.azure.com:443/")
    config.reset_settings()
    yield
    monkeypatch.undo()
    config.reset_settings()
