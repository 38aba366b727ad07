"""What a device must have proved before the backend accepts its files.

One place for the upload gates, so every upload path (``/upload-file`` and any later one)
applies the same rules in the same order:

1. the device key is attested (``/attest-device``);
2. its ``trust_level`` reaches ``MIN_DEVICE_TRUST`` and is not ``revoked``
   (:func:`require_device_trust`, which ``/verify`` applies too);
3. with ``REQUIRE_INTEGRITY_FOR_UPLOAD``, a recent passing Play Integrity verdict
   (:func:`shared_code.devices.integrity.verdicts.require_recent_pass`).

A refusal is recorded in the audit log (``upload_authorized``, outcome ``refused``, the gate's
error as ``failed_checks``) before it is answered; a gate added inside
:func:`require_upload_allowed` is recorded the same way.
"""

from __future__ import annotations

from typing import Any

from shared_code.audit import trail
from shared_code.devices import registry
from shared_code.devices.attestation.results import trust_rank
from shared_code.devices.integrity import verdicts
from shared_code.platform.config import get_settings
from shared_code.platform.errors import Forbidden


def require_upload_allowed(device: dict[str, Any]) -> None:
    """Refuse an upload by ``device`` (its stored record) that has not passed every gate.

    Raises :class:`~shared_code.platform.errors.Forbidden` ``device_not_attested`` (403) when no
    key is attested, ``attestation_required`` (403) below ``MIN_DEVICE_TRUST`` or revoked, and
    ``integrity_required`` (403) when the integrity gate is on and the device has no passing
    verdict younger than ``PLAY_INTEGRITY_MAX_AGE_SECONDS``, each after recording the refusal
    (:class:`~shared_code.platform.errors.ServiceUnavailable` 503 instead when that fails).
    """
    try:
        if not device.get("public_key"):
            raise Forbidden("device_not_attested", "attest the device key before uploading")
        require_device_trust(device)
        verdicts.require_recent_pass(device)
    except Forbidden as refusal:
        trail.record("upload_authorized", actor=trail.device_actor(device["id"]), objects={"device": device["id"]}, outcome=trail.REFUSED, failed_checks=[refusal.message])
        raise


def require_device_trust(device: dict[str, Any]) -> None:
    """Refuse a device whose ``trust_level`` is ``revoked``, or below ``MIN_DEVICE_TRUST`` when that
    is ``hardware`` or ``strongbox`` (``software``, the default, asks nothing more than today).

    Raises :class:`~shared_code.platform.errors.Forbidden` ``attestation_required`` (403).
    """
    level = registry.trust_level(device)
    if level == "revoked":
        raise Forbidden("attestation_required", "the device's attestation was revoked")
    minimum = get_settings().min_device_trust
    if minimum != "software" and trust_rank(level) < trust_rank(minimum):
        raise Forbidden("attestation_required",
                        f"this service requires a {minimum}-backed key attestation; the device has {level or 'none'}")
