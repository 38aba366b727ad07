"""What a device must have proved before the backend accepts its files.

One place for the upload gates, so every upload path (``/upload-file`` and any later one)
applies the same rules in the same order:

1. the device key is attested (``/attest-device``);
2. with ``REQUIRE_INTEGRITY_FOR_UPLOAD``, a recent passing Play Integrity verdict
   (:func:`shared_code.devices.integrity.verdicts.require_recent_pass`).
"""

from __future__ import annotations

from typing import Any

from shared_code.devices.integrity import verdicts
from shared_code.platform.errors import Forbidden


def require_upload_allowed(device: dict[str, Any]) -> None:
    """Refuse an upload by ``device`` (its stored record) that has not passed every gate.

    Raises :class:`~shared_code.platform.errors.Forbidden` ``device_not_attested`` (403) when no
    key is attested and ``integrity_required`` (403) when the integrity gate is on and the
    device has no passing verdict younger than ``PLAY_INTEGRITY_MAX_AGE_SECONDS``.
    """
    if not device.get("public_key"):
        raise Forbidden("device_not_attested", "attest the device key before uploading")
    verdicts.require_recent_pass(device)
