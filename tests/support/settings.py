"""Valid values for every required setting, for tests that build settings from scratch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from shared_code.platform import config

EXAMPLE = Path(__file__).resolve().parents[2] / "local.settings.example.json"


def required_settings() -> dict[str, str]:
    """``{name: value}`` for each setting without a default, taken from local.settings.example.json."""
    values = json.loads(EXAMPLE.read_text(encoding="utf-8"))["Values"]
    return {spec.name: values[spec.name] for spec in config.SETTINGS if spec.default is None}


def apply_settings(monkeypatch: pytest.MonkeyPatch, **values: str | None) -> None:
    """Set (or, for ``None``, remove) environment settings for one test and drop the cached
    settings; ``monkeypatch`` undoes it after the test."""
    for name, value in values.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    config.reset_settings()
