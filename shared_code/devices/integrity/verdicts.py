"""Play Integrity verification for a device (seed 000 ``POST /verify``) and the upload gate.

Flow of :func:`verify_token`, after Google's server-side guidance
(developer.android.com/google/play/integrity/classic, /standard and /verdicts):

1. decode the token (:mod:`shared_code.devices.integrity.decode`: Google's decodeIntegrityToken or the
   app's own keys); an undecodable token is 400, an unreachable Google 503, nothing stored;
2. record the token as used (container ``integrity_tokens``, id = SHA-256 of the token, an
   atomic create): a second use fails ``token_unused``;
3. the stateless checks of :mod:`shared_code.devices.integrity.policy`, and for a classic request the
   nonce: it must be a live challenge issued to this device by ``/api/challenge``, and is
   consumed (``nonce``); for a standard request the server computes the expected
   ``requestHash`` itself from the calling device and the challenge it sends
   (:func:`standard_request_hash`), and the challenge must be live and is consumed
   (``request_hash``): a genuine device's token submitted by another device fails;
4. record the verdict in the audit log (``integrity_verdict``: granted or refused with the
   ``failed_checks``, the SHA-256 of the token, the decode mode as verifier and the hash of the
   policy in force; a failed log write is 503 and nothing is stored);
5. store the result on the device record (latest verdict wins) and return it; a result that
   fails ``token_unused`` is only answered: a replayed token says nothing new about the device.

Crash safety: if the audit entry cannot be written, the caller got 503 and no verdict is stored;
if the verdict's write to the device times out, the caller got 503 and the verdict may land.
Either way a retry with the same token answers ``token_unused`` (with ``nonce`` /
``request_hash``, whose challenge the first try used up), saying exactly why, and leaves the
device's stored verdict as it is (``GET /api/device`` shows it); a new token from the app gets a
new verdict.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import timedelta
from typing import Any

from shared_code.audit import trail
from shared_code.devices import challenges, registry
from shared_code.devices.integrity import decode, policy
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import b64url_encode, sha256_hex
from shared_code.platform.errors import Forbidden, Unauthorized
from shared_code.platform.timeutil import from_iso, to_iso, utc_now

log = logging.getLogger("trustgate.integrity")

VERIFIER_VERSION = 1


def standard_request_hash(deviceid: str, challenge: str) -> str:
    """The ``requestHash`` a standard request must carry: unpadded base64url (as in JOSE) of
    ``SHA-256(UTF-8 "{deviceid}:{challenge}")``, binding the token to this device and challenge."""
    return b64url_encode(hashlib.sha256(f"{deviceid}:{challenge}".encode("utf-8")).digest())


def _expectations(request_hash: str | None) -> policy.Expectations:
    settings = get_settings()
    return policy.Expectations(
        package_name=settings.play_integrity_package_name,
        cert_digests=settings.play_integrity_cert_digests,
        min_device=settings.play_integrity_min_device,
        require_licensed=settings.play_integrity_require_licensed,
        max_age_seconds=settings.play_integrity_max_age_seconds,
        request_hash=request_hash,
        min_version_code=settings.play_integrity_min_version_code,
        require_play_protect=settings.play_integrity_require_play_protect,
        refuse_risky_apps=settings.play_integrity_refuse_risky_apps,
        max_activity_level=settings.play_integrity_max_activity_level,
        allow_testing=settings.play_integrity_allow_testing,
    )


def _first_use(token: str, deviceid: str) -> bool:
    """Record ``token`` as used; ``False`` when it was used before (by any device).

    Expiring state (see :class:`shared_code.platform.cosmos.ContainerSpec`): kept for the longest time a
    token can pass the timestamp check, after which it could not pass anyway. A record that
    outlives its ``expires_at`` (no native TTL on the emulator) still counts as used.
    """
    ttl = get_settings().play_integrity_max_age_seconds + 2 * policy.CLOCK_SKEW_SECONDS
    now = utc_now()
    item = {"id": sha256_hex(token), "deviceid": deviceid, "used_at": to_iso(now),
            "expires_at": to_iso(now + timedelta(seconds=ttl)), "ttl": ttl}
    try:
        cosmos.create_item(cosmos.INTEGRITY_TOKENS, item)
    except cosmos.AlreadyExists:
        return False
    return True


def _consumed(deviceid: str, challenge: str | None) -> bool:
    """Whether ``challenge`` was a live challenge of ``deviceid`` (it is consumed if so)."""
    if challenge is None:
        return False
    try:
        challenges.consume_challenge(deviceid, challenge)
    except Unauthorized:
        return False
    return True


def verify_token(device: dict[str, Any], token: str, challenge: str | None = None) -> dict[str, Any]:
    """Verify a Play Integrity ``token`` for ``device``; returns and stores the result::

        {"valid": bool, "verdict": policy.summarize(...), "failed_checks": [names],
         "checked_at": iso}

    ``challenge`` given → standard request (``requestHash`` must be
    :func:`standard_request_hash` of this device and ``challenge``, which must be live and is
    consumed); omitted → classic request (``nonce`` must be this device's live challenge). Raises
    :class:`~shared_code.devices.integrity.decode.InvalidIntegrityToken` (400),
    :class:`~shared_code.platform.errors.ServiceUnavailable` (503; also when the audit log is
    down) and :class:`~shared_code.platform.config.ConfigError` (500), storing nothing in those cases.
    """
    payload = decode.decode_token(token)
    now = utc_now()
    expected_hash = None if challenge is None else standard_request_hash(device["id"], challenge)
    expected = _expectations(expected_hash)
    failed = policy.evaluate(payload, expected, now)
    if challenge is None and not _consumed(device["id"], policy.nonce(payload)):
        failed.append(policy.NONCE)
    if challenge is not None and not _consumed(device["id"], challenge) and policy.REQUEST_HASH not in failed:
        failed.append(policy.REQUEST_HASH)
    if not _first_use(token, device["id"]):
        failed.append(policy.TOKEN_UNUSED)
    result = {
        "valid": not failed,
        "verdict": policy.summarize(payload, "classic" if challenge is None else "standard"),
        "failed_checks": failed,
        "checked_at": to_iso(now),
    }
    verifier = f"play-integrity-{get_settings().play_integrity_mode}/{VERIFIER_VERSION}"
    trail.record("integrity_verdict", actor=trail.device_actor(device["id"]), objects={"device": device["id"], "request_type": result["verdict"]["request_type"]}, outcome=trail.REFUSED if failed else trail.GRANTED, failed_checks=failed, evidence=trail.evidence_digest(token.encode("utf-8"), verifier, policy.policy_document(expected)))
    if policy.TOKEN_UNUSED not in failed:
        registry.record_integrity(device, result)
    log.info("integrity verdict for %s: valid=%s failed=%s", device["id"], result["valid"], ",".join(failed))
    return result


def require_recent_pass(device: dict[str, Any]) -> None:
    """The upload gate: with ``REQUIRE_INTEGRITY_FOR_UPLOAD`` set, the device's latest verdict
    must be passing and younger than ``PLAY_INTEGRITY_MAX_AGE_SECONDS``.

    Raises :class:`~shared_code.platform.errors.Forbidden` ``integrity_required`` (403) otherwise.
    """
    settings = get_settings()
    if not settings.require_integrity_for_upload:
        return
    latest = device.get("integrity") or {}
    checked_at = latest.get("checked_at")
    fresh = bool(checked_at) and utc_now() - from_iso(checked_at) <= timedelta(
        seconds=settings.play_integrity_max_age_seconds)
    if latest.get("valid") is not True or not fresh:
        raise Forbidden("integrity_required", "verify the device with Play Integrity (POST /verify) before uploading")
