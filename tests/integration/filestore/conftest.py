"""Users of the file store tests: registered, with a live session, on the session's emulators."""

from __future__ import annotations

import pytest

from tests.support.files import User


@pytest.fixture
def alice(emulators) -> User:
    return User.new("alice")


@pytest.fixture
def bob(emulators) -> User:
    return User.new("bob")
