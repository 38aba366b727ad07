"""Device self-service: rotate the device key (``POST /rotate-device-key``) and the device token
(``POST /rotate-device-token``).

**Key rotation.** The device asks for a fresh challenge and proves two things over the UTF-8
bytes of ``rotate:{challenge}:{SHA-256 hex of the new key's DER SubjectPublicKeyInfo}``
(:func:`rotation_message`):

- continuity: the *current* key signs them (``signature_by_old_key``; an App Attest device sends
  an assertion, :mod:`shared_code.devices.proofs`), so whoever holds only the device token cannot
  swap the key;
- possession of the new key: for format ``key`` the new key signs the same bytes
  (``signature_by_new_key``); for ``android-key`` / ``apple-appattest`` the fresh evidence, which
  embeds the challenge, proves it, verified exactly as at enrollment
  (:func:`shared_code.devices.attestation.enrollment.verify_for_device`).

The new trust level must be at least the current one (a hardware device cannot rotate to a
software key: ``403 trust_downgrade``); a device whose attestation was revoked cannot rotate (it
registers anew, as it cannot re-attest). The old key goes to the record's ``key_history`` and no
proof by it is accepted from then on (every proof is checked against ``public_key`` only); a key
in the history, or the current one, is refused as the new key (``409 key_reused`` /
``key_already_current``). Audited (``device_key_rotated``, granted or refused with the
attestation's ``failed_checks``; SHA-256 of both keys, evidence digest) before the write.

Crash safety: the only device write is the final conditional replace. If the process dies (or
the write times out) before it lands, nothing changed and the device retries with a new
challenge; if it lands after a timeout (the device saw 503), the retry is answered ``409
key_already_current``, which tells the device its new key is bound.

**Token rotation.** The device sends its new token (``new_device_token``, chosen by the device, so
a lost answer never strands it: it tries the new token, else retries with the old). An attested
device also proves the request with its key over ``rotate-token:{challenge}:{SHA-256 hex of the
new token}`` (:func:`token_rotation_message`), so a leaked token alone cannot lock the device out.
One conditional replace of ``token_hash``: the old token fails from the next request on, on
every instance. Audited (``device_token_rotated``) before the write.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import serialization

from shared_code.audit import trail
from shared_code.devices import challenges, proofs, registry
from shared_code.devices.attestation import enrollment
from shared_code.devices.attestation.results import APPLE_APPATTEST, trust_rank
from shared_code.devices.attestation.verifier import VERIFIER_NAME, Evidence, evidence_bytes, policy_document
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import DevicePublicKey, UnusableKey, b64decode_strict, keyed_hash, load_device_public_key
from shared_code.platform.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable, Unauthorized
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.rotation")

ROTATE_PREFIX = "rotate:"
TOKEN_PREFIX = "rotate-token:"
MAX_WRITE_RACES = 4


def rotation_message(challenge: str, spki_sha256_hex: str) -> bytes:
    """The bytes both keys sign to rotate: UTF-8 of ``rotate:{challenge}:{sha256 hex of the new SPKI}``."""
    return f"{ROTATE_PREFIX}{challenge}:{spki_sha256_hex}".encode("utf-8")


def token_rotation_message(challenge: str, new_token: str) -> bytes:
    """The bytes an attested device signs to rotate its token: UTF-8 of
    ``rotate-token:{challenge}:{sha256 hex of the new token's UTF-8}`` (the token itself never
    enters a signature input)."""
    return f"{TOKEN_PREFIX}{challenge}:{hashlib.sha256(new_token.encode('utf-8')).hexdigest()}".encode("utf-8")


@dataclass(frozen=True)
class KeyRotation:
    """A rotation request: the fresh ``challenge``, the current key's proof, and either
    ``new_public_key`` (PEM SPKI) with ``signature_by_new_key`` (format ``key``) or ``evidence``
    (a hardware format, from :func:`shared_code.devices.attestation.enrollment.evidence_from_request`)."""

    challenge: str
    signature_by_old_key: str
    new_public_key: str | None = None
    signature_by_new_key: str | None = None
    evidence: Evidence | None = None


@dataclass(frozen=True)
class _NewKey:
    key: DevicePublicKey
    trust_level: str
    attestation: dict[str, Any]
    evidence: dict[str, Any] | None
    audit_evidence: dict[str, str]


def _canonical(pem: str) -> DevicePublicKey:
    try:
        return load_device_public_key(pem)
    except UnusableKey as exc:
        raise BadRequest("unusable_key", f"the new key is not accepted: {exc}") from None


def _new_key(device: dict[str, Any], request: KeyRotation) -> _NewKey:
    """The new key and what it is attested as; hardware evidence is verified (refusals audited)."""
    if request.evidence is None:
        key = _canonical(request.new_public_key or "")
        return _NewKey(key, "software", {"format": "key"}, None,
                       trail.evidence_digest(key.pem.encode("ascii"), registry.POSSESSION_VERIFIER, {"format": "key"}))
    evidence = request.evidence
    config, verification = enrollment.verify_for_device(evidence, enrollment.challenge_bytes(request.challenge), utc_now())
    audit_evidence = trail.evidence_digest(evidence_bytes(evidence), VERIFIER_NAME, policy_document(config))
    if not verification.ok:
        trail.record("device_key_rotated", actor=trail.device_actor(device["id"]), outcome=trail.REFUSED,
                     objects={"device": device["id"], "format": evidence.format, "trust_level": verification.trust_level or "none"},
                     failed_checks=list(verification.failed_checks), evidence=audit_evidence)
        raise enrollment.AttestationFailed(detail=verification.detail,
                                           fields={"failed_checks": list(verification.failed_checks)})
    pem = verification.public_key.public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    return _NewKey(_canonical(pem), verification.trust_level, verification.claims, enrollment.raw_evidence(evidence),
                   audit_evidence)


def rotate_key(device: dict[str, Any], request: KeyRotation) -> dict[str, Any]:
    """Replace ``device``'s key as the module docstring says; returns the stored record.

    Order (each refusal changes nothing): attested and not attestation-revoked (403
    ``device_not_attested`` / ``attestation_required``) → the new key (400 ``unusable_key``, 401
    ``attestation_failed`` with ``failed_checks``, 503 ``revocation_status_unavailable``) → not the
    current one or one from the history (409 ``key_already_current`` / ``key_reused``) → trust
    level (403 ``trust_downgrade``) → the new key's signature (401 ``invalid_signature``) → the
    current key's proof (400 ``invalid_signature_encoding``, 401 ``invalid_signature`` /
    ``assertion_replayed``) → the challenge (401 ``invalid_challenge``) → audit → write (409
    ``rotation_conflict`` when a concurrent rotation won, 403 when the device was suspended or
    revoked meanwhile, 503).
    """
    if not device.get("public_key"):
        raise Forbidden("device_not_attested", "attest the device key before rotating it")
    if registry.trust_level(device) == "revoked":
        raise Forbidden("attestation_required", "the device's attestation was revoked; register a new device")
    new = _new_key(device, request)
    old = load_device_public_key(device["public_key"])
    if new.key.pem == old.pem:
        raise Conflict("key_already_current", "this key is already the device's key")
    if any(entry.get("public_key") == new.key.pem for entry in device.get("key_history") or ()):
        raise Conflict("key_reused", "this key was the device's key before; rotate to a new key")
    current_level = registry.trust_level(device)
    if trust_rank(new.trust_level) < trust_rank(current_level):
        raise Forbidden("trust_downgrade", f"the device is {current_level}-attested; the new key must be too (it is {new.trust_level})")
    message = rotation_message(request.challenge, new.key.spki_sha256())
    if request.evidence is None:
        if not request.signature_by_new_key or not _verifies(new.key, request.signature_by_new_key, message):
            raise Unauthorized("invalid_signature", "signature_by_new_key does not verify with new_public_key")
    device = proofs.verify_request_proof(device, message, request.signature_by_old_key, "signature_by_old_key")
    challenges.consume_challenge(device["id"], request.challenge)
    trail.record("device_key_rotated", actor=trail.device_actor(device["id"]),
                 objects={"device": device["id"], "format": new.attestation.get("format", "key"),
                          "trust_level": new.trust_level, "old_key_sha256": old.spki_sha256(),
                          "new_key_sha256": new.key.spki_sha256()},
                 evidence=new.audit_evidence)
    stored = _bind_new_key(device, old, new)
    security_event("device_key_rotated", deviceid=device["id"], trust_level=new.trust_level)
    log.info("device key rotated: %s (%s → %s)", device["id"], old.key_type, new.key.key_type)
    return stored


def _verifies(key: DevicePublicKey, signature_b64: str, message: bytes) -> bool:
    try:
        return key.verify(b64decode_strict(signature_b64), message)
    except ValueError:
        raise BadRequest("invalid_signature_encoding", "signature_by_new_key must be base64") from None


def _bind_new_key(device: dict[str, Any], old: DevicePublicKey, new: _NewKey) -> dict[str, Any]:
    """The conditional replace that rotates; re-read after a lost race (another field changed)."""
    current = device
    now = to_iso(utc_now())
    for _ in range(MAX_WRITE_RACES):
        if current.get("public_key") != old.pem:
            raise Conflict("rotation_conflict", "the device key changed during this rotation")
        retired = {"public_key": old.pem, "key_type": current.get("key_type"), "spki_sha256": old.spki_sha256(),
                   "trust_level": registry.trust_level(current),
                   "format": (current.get("attestation") or {}).get("format", "key"),
                   "attested_at": current.get("attested_at"), "retired_at": now}
        body = {k: v for k, v in current.items() if not k.startswith("_")}
        body.update(public_key=new.key.pem, key_type=new.key.key_type, attested_at=now, trust_level=new.trust_level,
                    attestation=new.attestation, key_history=[*(current.get("key_history") or ()), retired])
        body.pop("evidence", None)
        body.pop("assertion_counter", None)
        if new.evidence is not None:
            body["evidence"] = new.evidence
        if new.attestation.get("format") == APPLE_APPATTEST:
            body["assertion_counter"] = 0  # a new App Attest key counts its assertions from 1
        try:
            return cosmos.replace_item(cosmos.DEVICES, body, current["_etag"])
        except cosmos.EtagMismatch:
            current = registry.require_active(registry.read_device(device["id"]))
    raise ServiceUnavailable(detail="the device record is being changed concurrently, try again")


def rotate_token(device: dict[str, Any], new_token: str, challenge: str | None, signature: str | None) -> dict[str, Any]:
    """Replace ``device``'s token by ``new_token`` (32-512 printable ASCII characters, no space);
    returns the stored record.

    An attested device must send ``challenge`` and ``signature`` (its proof over
    :func:`token_rotation_message`); a device without a key has only its token. Raises
    :class:`BadRequest` ``missing_fields`` (an attested device without the proof) /
    ``invalid_field`` (the new token is the current one) / ``invalid_signature_encoding``,
    :class:`Unauthorized` ``invalid_signature`` / ``assertion_replayed`` / ``invalid_challenge``,
    :class:`Forbidden` 403 when the device was suspended or revoked meanwhile, ServiceUnavailable
    (503: if the write landed anyway, the new token works and the old one does not).
    """
    pepper = get_settings().device_token_pepper
    new_hash = keyed_hash(pepper, new_token)
    if new_hash == device["token_hash"]:
        raise BadRequest("invalid_field", "new_device_token must differ from the current token")
    if device.get("public_key"):
        if not challenge or not signature:
            raise BadRequest("missing_fields", "an attested device proves a token rotation: send challenge and signature")
        device = proofs.verify_request_proof(device, token_rotation_message(challenge, new_token), signature, "signature")
        challenges.consume_challenge(device["id"], challenge)
    trail.record("device_token_rotated", actor=trail.device_actor(device["id"]), objects={"device": device["id"]})
    current = device
    for _ in range(MAX_WRITE_RACES):
        body = {k: v for k, v in current.items() if not k.startswith("_")}
        body.update(token_hash=new_hash, token_rotated_at=to_iso(utc_now()))
        try:
            stored = cosmos.replace_item(cosmos.DEVICES, body, current["_etag"])
            security_event("device_token_rotated", deviceid=device["id"])
            return stored
        except cosmos.EtagMismatch:
            current = registry.require_active(registry.read_device(device["id"]))
            if current["token_hash"] != device["token_hash"]:
                raise Forbidden("invalid_credentials", "the device token was rotated by another request") from None
    raise ServiceUnavailable(detail="the device record is being changed concurrently, try again")
