"""Settings as the Functions host sees them: environment first, then ``local.settings.json``.

Same sources and precedence as :mod:`shared_code.platform.config` (which reads ``local.settings.json``, or
the file named by ``TRUSTGATE_LOCAL_SETTINGS``), but for any name: binding expressions such as
``%UPLOADS_CONTAINER%``, connection names and the devhost's own ``DEVHOST_*`` knobs.
Nothing is cached, so a test that changes the environment sees the change at once.
"""

from __future__ import annotations

import os
import re

from shared_code.platform.config import local_settings_values

_PLACEHOLDER = re.compile(r"%([^%\s]+)%")


class SettingError(LookupError):
    """A setting the devhost needs is missing or malformed. ``setting`` names it."""

    def __init__(self, setting: str, reason: str) -> None:
        super().__init__(f"setting {setting}: {reason}")
        self.setting = setting


def get_setting(name: str, default: str | None = None) -> str | None:
    """The value of setting ``name``: the environment variable if set and non-empty, else the
    ``Values`` entry of ``local.settings.json`` if non-empty, else ``default``."""
    value = os.environ.get(name)
    if value:
        return value
    value = local_settings_values().get(name)
    return value if value else default


def get_number(name: str, default: float, minimum: float = 0.0) -> float:
    """Setting ``name`` as a number (``default`` when unset). Raises :class:`SettingError` when it
    is not a number or is below ``minimum``."""
    raw = get_setting(name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise SettingError(name, "must be a number") from None
    if value < minimum:
        raise SettingError(name, f"must be at least {minimum:g}")
    return value


def resolve_placeholders(text: str) -> str:
    """Replace every ``%NAME%`` in ``text`` with setting ``NAME`` (the host's binding-expression
    syntax for app settings, used in timer schedules and blob paths).

    Raises :class:`SettingError` naming the first setting that is not set.
    """

    def substitute(match: re.Match[str]) -> str:
        value = get_setting(match.group(1))
        if value is None:
            raise SettingError(match.group(1), f"is referenced by {text!r} but not set")
        return value

    return _PLACEHOLDER.sub(substitute, text)
