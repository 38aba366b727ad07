"""Valid values for every required setting, for tests that build settings from scratch."""

from __future__ import annotations

import json
from pathlib import Path

from shared_code.platform import config

EXAMPLE = Path(__file__).resolve().parents[2] / "local.settings.example.json"


def required_settings() -> dict[str, str]:
    """``{name: value}`` for each setting without a default, taken from local.settings.example.json."""
    values = json.loads(EXAMPLE.read_text(encoding="utf-8"))["Values"]
    return {spec.name: values[spec.name] for spec in config.SETTINGS if spec.default is None}
