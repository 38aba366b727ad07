"""Devices: registration, credential checks and key attestation (seed 000).

A device record (container ``devices``, partition ``/id``)::

    {"id": deviceid, "token_hash": hex HMAC-SHA256 of the deviceToken under DEVICE_TOKEN_PEPPER,
     "registered_at": iso, "public_key": PEM SPKI | None, "key_type": str | None,
     "attested_at": iso | None,
     "trust_level": "software" | "hardware" | "strongbox" | "revoked" | absent (not attested),
     "attestation": {"format": "key" | "android-key" | "apple-appattest", ...claims} | absent,
     "evidence": {"format", "certificate_chain": [base64 DER]} | {"format", "key_id", "attestation_object"} | absent,
     "assertion_counter": int (apple-appattest only: the last accepted assertion counter),
     "revoked": {"at": iso, "serials": [hex]} | absent,
     "integrity": {"valid": bool, "verdict": {...}, "failed_checks": [str], "checked_at": iso} | absent,
     "status": "active" | "suspended" | "revoked" | absent (active),
     "status_reason": operator text | absent, "status_changed_at": iso | absent,
     "key_history": [{"public_key", "key_type", "trust_level", "format", "attested_at", "retired_at"}] | absent,
     "token_rotated_at": iso | absent}

The deviceToken itself is never stored or logged. ``integrity`` is the latest Play Integrity
result (:mod:`shared_code.devices.integrity.verdicts`); the token it came from is not kept here.
``attestation`` holds the verified claims (:mod:`shared_code.devices.attestation.verifier`) and
``evidence`` the raw evidence, kept for re-verification when the verifier or the revocation list
changes (:mod:`shared_code.devices.attestation.sweep`).

``status`` is the device's lifecycle (:mod:`shared_code.devices.lifecycle`): every authenticated
call of a ``suspended`` device answers ``403 device_suspended``, of a ``revoked`` one ``403
device_revoked`` (permanent: the record is kept, so the id can never be registered again).
``trust_level: revoked`` is something else: the attestation was revoked (the upload gates refuse
it) while the device may still call. ``key_history`` holds the keys rotated out
(:mod:`shared_code.devices.rotation`), oldest first; no proof by them is accepted any more.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from shared_code.audit import trail
from shared_code.devices import challenges
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import DevicePublicKey, keyed_hash, keyed_hash_matches, sha256_hex
from shared_code.platform.errors import Conflict, Forbidden, ServiceUnavailable, Unauthorized
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.devices")

DEVICE_ID_PATTERN = re.compile(r"(?!\.+\Z)[A-Za-z0-9._:-]{1,128}")
MIN_TOKEN_LENGTH = 32
MAX_TOKEN_LENGTH = 512
# The token is sent back in the deviceToken header on every call: printable ASCII without space
# (RFC 9110 §5.5 field values are visible ASCII; a space or a non-ASCII character would not arrive
# as sent), so a token outside it is refused at registration rather than never authenticating.
DEVICE_TOKEN_PATTERN = re.compile(r"[\x21-\x7e]{%d,%d}" % (MIN_TOKEN_LENGTH, MAX_TOKEN_LENGTH))
ATTEST_PREFIX = "attest:"
#: Named in audit entries for keys attested by proof of possession (format ``key``).
POSSESSION_VERIFIER = "trustgate-possession/1"

# Hash compared against for unknown devices, so both failures cost the same work.
_DUMMY_HASH = "0" * 64

ACTIVE, SUSPENDED, REVOKED = "active", "suspended", "revoked"
STATUSES = (ACTIVE, SUSPENDED, REVOKED)


def attestation_message(challenge: str) -> bytes:
    """The bytes a device signs to attest its key: UTF-8 of ``attest:{challenge}``."""
    return f"{ATTEST_PREFIX}{challenge}".encode("utf-8")


def register_device(deviceid: str, device_token: str) -> dict[str, Any]:
    """Register a new device; returns its record.

    Atomic create on the id: of N concurrent registrations of one id exactly one succeeds.
    Audited (``device_registered``) before the record is created; an id already taken is refused
    without an entry. Raises :class:`Conflict` ``device_exists`` when the id is taken under
    another token, :class:`ServiceUnavailable` when the audit log or Cosmos DB is down (then no
    device exists; a log entry may, see :mod:`shared_code.audit.trail`). A registration that
    loses the race to a concurrent one for the same id after its entry was written answers 409
    like any other.

    If the create times out and lands later the caller got 503 and the device is registered; a
    retry with the same ``device_token`` finds its own registration and answers it again without
    a new entry (so does any repeat with that token: it changes nothing).
    """
    pepper = get_settings().device_token_pepper
    record = {
        "id": deviceid,
        "token_hash": keyed_hash(pepper, device_token),
        "registered_at": to_iso(utc_now()),
        "public_key": None,
        "key_type": None,
        "attested_at": None,
    }
    existing = cosmos.read_item(cosmos.DEVICES, deviceid, deviceid)
    if existing is not None:
        return _same_registration(existing, device_token)
    trail.record("device_registered", actor=trail.device_actor(deviceid), objects={"device": deviceid})
    try:
        created = cosmos.create_item(cosmos.DEVICES, record)
    except cosmos.AlreadyExists:
        return _same_registration(cosmos.read_item(cosmos.DEVICES, deviceid, deviceid), device_token)
    log.info("device registered: %s", deviceid)
    return created


def _same_registration(existing: dict[str, Any] | None, device_token: str) -> dict[str, Any]:
    """``existing`` if it was registered with ``device_token`` (a repeat of that registration) and
    is not revoked (a revoked id is never registered again, whoever asks); else :class:`Conflict`
    ``device_exists``."""
    if existing is not None and status(existing) != REVOKED and keyed_hash_matches(
            get_settings().device_token_pepper, device_token, existing["token_hash"]):
        return existing
    raise Conflict("device_exists", "a device with this deviceid is already registered")


def authenticate(deviceid: str | None, device_token: str | None) -> dict[str, Any]:
    """Return the device record for valid credentials (the ``deviceid``/``deviceToken`` headers).

    Raises :class:`Unauthorized` ``missing_credentials`` (401) when either is absent,
    :class:`Forbidden` ``invalid_credentials`` (403) when the device is unknown or the token
    does not match (same answer for both, compared in constant time), and, for the right token
    only, ``device_suspended`` / ``device_revoked`` (403, :func:`require_active`). The record is
    read from Cosmos DB on every call (no cache), so a suspension or revocation holds from the
    next request on, on every instance.
    """
    if not deviceid or not device_token:
        raise Unauthorized(
            "missing_credentials", "send the deviceid and deviceToken headers",
            headers={"WWW-Authenticate": 'DeviceToken realm="trustgate"'},
        )
    pepper = get_settings().device_token_pepper
    device = None
    if DEVICE_ID_PATTERN.fullmatch(deviceid) and DEVICE_TOKEN_PATTERN.fullmatch(device_token):
        device = cosmos.read_item(cosmos.DEVICES, deviceid, deviceid)
    expected = device["token_hash"] if device else _DUMMY_HASH
    if not keyed_hash_matches(pepper, device_token, expected) or device is None:
        log.info("device authentication failed")
        raise Forbidden("invalid_credentials", "unknown device or wrong device token")
    return require_active(device)


def status(device: dict[str, Any]) -> str:
    """The device's lifecycle status: ``active`` (also when the record predates statuses),
    ``suspended`` or ``revoked``."""
    return device.get("status") or ACTIVE


def require_active(device: dict[str, Any] | None) -> dict[str, Any]:
    """``device`` if it exists and is active. Raises :class:`Forbidden` ``device_suspended`` /
    ``device_revoked`` (403), and ``invalid_credentials`` for ``None`` (a record gone meanwhile).

    Every write that re-reads the record after a lost race checks it again, so a suspension or
    revocation landing in the middle of a request is never overwritten with a live state.
    """
    if device is None:
        raise Forbidden("invalid_credentials", "unknown device or wrong device token")
    current = status(device)
    if current == SUSPENDED:
        raise Forbidden("device_suspended", "this device is suspended by an operator")
    if current == REVOKED:
        raise Forbidden("device_revoked", "this device was revoked; register a new device")
    return device


def read_device(deviceid: str) -> dict[str, Any] | None:
    """The stored record of ``deviceid`` (``None`` if there is none). Raises ServiceUnavailable."""
    return cosmos.read_item(cosmos.DEVICES, deviceid, deviceid)


def attest_device(device: dict[str, Any], key: DevicePublicKey, challenge: str, signature: bytes) -> dict[str, Any]:
    """Bind ``key`` to ``device`` after it proved possession by signing ``attest:{challenge}``.

    Idempotent for the same key. Steps, and what a caller sees if the process dies or the storage
    call times out right after each: (1) claim the challenge for this key: nothing changed, the
    challenge serves only this attestation; then the audit entry (``device_attested``; a retry
    writes another, see :mod:`shared_code.audit.trail`); (2) the device record's replace on its etag: the
    key is bound (also when this lands after a timeout: the caller got 503, a retry of the same
    request answers 200); (3) delete the challenge (best effort). A retry of the same request
    continues where it stopped.

    Raises :class:`Unauthorized` ``invalid_signature`` / ``invalid_challenge`` (401), and
    :class:`Conflict` ``already_attested`` (409) when the device is bound to another key (also
    when a concurrent attestation with another key won).
    """
    if not key.verify(signature, attestation_message(challenge)):
        raise Unauthorized("invalid_signature", "the signature does not verify with public_key")
    if device.get("public_key") == key.pem:
        return device  # done before (a retry of this request, or the same key again): nothing to change
    if device.get("public_key"):
        raise Conflict("already_attested", "the device is already attested with another key")
    claimed = challenges.claim_challenge(device["id"], challenge, ATTEST_PREFIX + sha256_hex(key.pem))
    updated = {**device, "public_key": key.pem, "key_type": key.key_type, "attested_at": to_iso(utc_now()),
               "trust_level": "software", "attestation": {"format": "key"}}
    trail.record("device_attested", actor=trail.device_actor(device["id"]),
                 objects={"device": device["id"], "format": "key", "trust_level": "software"},
                 evidence=trail.evidence_digest(key.pem.encode("ascii"), POSSESSION_VERIFIER, {"format": "key"}))
    try:
        stored = cosmos.replace_item(cosmos.DEVICES, updated, device["_etag"])
    except cosmos.EtagMismatch:
        current = require_active(read_device(device["id"]))
        if current.get("public_key") != key.pem:
            raise Conflict("already_attested", "the device is already attested with another key") from None
        stored = current
    challenges.finish(claimed)
    log.info("device attested: %s (%s)", device["id"], key.key_type)
    return stored


def public_view(device: dict[str, Any]) -> dict[str, Any]:
    """The fields of a device record that may be shown to the device itself (never the token hash)."""
    return {
        "deviceid": device["id"],
        "registered_at": device.get("registered_at"),
        "attested": bool(device.get("public_key")),
        "key_type": device.get("key_type"),
        "attested_at": device.get("attested_at"),
        "trust_level": trust_level(device),
        "attestation": device.get("attestation"),
        "integrity": device.get("integrity"),
        "status": status(device),
        "key_rotations": len(device.get("key_history") or ()),
    }


def trust_level(device: dict[str, Any]) -> str | None:
    """The device's ``trust_level``: the stored one, ``software`` for a key attested before trust
    levels existed, ``None`` when no key is attested."""
    if device.get("trust_level"):
        return device["trust_level"]
    return "software" if device.get("public_key") else None


def record_integrity(device: dict[str, Any], result: dict[str, Any], attempts: int = 3) -> dict[str, Any]:
    """Store ``result`` as the device's latest ``integrity`` field; returns the updated record.

    Conditional replace on the record's etag, re-read and retried on a lost race so a concurrent
    attestation is never overwritten, nor a suspension or revocation (whose cascade drops the
    verdict: :func:`require_active` raises 403 then). Raises
    :class:`~shared_code.platform.errors.ServiceUnavailable`.
    """
    current = device
    for _ in range(attempts):
        try:
            return cosmos.replace_item(cosmos.DEVICES, {**current, "integrity": result}, current["_etag"])
        except cosmos.EtagMismatch:
            current = require_active(read_device(device["id"]))
    raise ServiceUnavailable(detail="the device record is being changed concurrently, try again")
