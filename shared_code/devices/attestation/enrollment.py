"""``POST /attest-device`` for the hardware formats: decode, verify, bind the key, keep the evidence.

Request bodies (the challenge's raw bytes are what the device put into the evidence: Android
``setAttestationChallenge(bytes)``, Apple ``attestKey(keyId, clientDataHash = SHA-256(bytes))``)::

    {"format": "android-key", "challenge", "certificate_chain": [base64 DER, leaf first]}
    {"format": "apple-appattest", "challenge", "key_id": base64, "attestation_object": base64 CBOR}

Order (each step's refusal changes nothing): decode (400) → verify every check (401
``attestation_failed`` with ``failed_checks``, after the refusal is recorded in the audit log;
503 ``revocation_status_unavailable`` without a fresh status list) → the key is usable → the
device is not bound to another key (409) → consume the challenge (401 ``invalid_challenge``) →
record ``device_attested`` in the audit log (:mod:`shared_code.audit.trail`: format, trust level,
failed checks, SHA-256 of the evidence, verifier name and policy hash; a failed log write is 503
and nothing is bound) → store (conditional replace on the etag).
A failed verification leaves the challenge usable, as every refusal before the challenge check does.
Evidence for the key already bound (e.g. one first attested with format ``key``) upgrades the
record to the evidence's trust level; an App Attest ``assertion_counter`` is kept, never reset.

Crash safety: the only device write is the final replace. If the process dies after consuming the
challenge or after the audit entry and before the replace, nothing is bound (the entry records a
decision that did not take effect, as the device record shows) and the device retries with a new challenge;
if the replace times out but lands, a retry with the same evidence and a new challenge finds the
key bound and succeeds (idempotent for the same key).
"""

from __future__ import annotations

import base64
import logging
from datetime import datetime
from typing import Any

from cryptography.hazmat.primitives import serialization

from shared_code.audit import trail
from shared_code.devices import challenges, registry
from shared_code.devices.attestation import results as r
from shared_code.devices.attestation import status_list
from shared_code.devices.attestation.verifier import (
    VERIFIER_NAME,
    AndroidEvidence,
    AppleEvidence,
    Evidence,
    VerifierConfig,
    config_from_settings,
    evidence_bytes,
    policy_document,
    verify_evidence,
)
from shared_code.platform import cosmos
from shared_code.platform.config import get_settings
from shared_code.platform.crypto import UnusableKey, b64decode_strict, load_device_public_key
from shared_code.platform.errors import BadRequest, Conflict, Forbidden, ServiceUnavailable, Unauthorized
from shared_code.platform.security_log import security_event
from shared_code.platform.timeutil import to_iso, utc_now

log = logging.getLogger("trustgate.attestation")

MAX_CERTIFICATE_CHARS = 16 * 1024
MAX_ATTESTATION_OBJECT_CHARS = 48 * 1024


class AttestationFailed(Unauthorized):
    """401 ``attestation_failed``: the evidence failed checks; the body lists ``failed_checks``."""

    default_message = "attestation_failed"


def _decode(value: Any, field: str, max_chars: int) -> bytes:
    if not isinstance(value, str) or not value:
        raise BadRequest("invalid_field", f"'{field}' must be a non-empty base64 string")
    if len(value) > max_chars:
        raise BadRequest("invalid_field", f"'{field}' is longer than {max_chars} characters")
    try:
        return b64decode_strict(value)
    except ValueError:
        raise BadRequest("invalid_evidence_encoding", f"'{field}' is not base64") from None


def evidence_from_request(fmt: str, body: dict[str, Any]) -> Evidence:
    """The evidence of an ``/attest-device`` body of a hardware ``fmt``. Raises :class:`BadRequest`
    ``missing_fields`` / ``invalid_field`` (shape) or ``invalid_evidence_encoding`` (not base64)."""
    if fmt == r.ANDROID_KEY:
        chain = body.get("certificate_chain")
        if chain is None or chain == []:
            raise BadRequest("missing_fields", "'certificate_chain' is required")
        if not isinstance(chain, list) or len(chain) > 10:
            raise BadRequest("invalid_field", "'certificate_chain' must be a list of at most 10 base64 DER certificates")
        return AndroidEvidence(tuple(_decode(item, "certificate_chain", MAX_CERTIFICATE_CHARS) for item in chain))
    for name in ("key_id", "attestation_object"):
        if not body.get(name):
            raise BadRequest("missing_fields", f"'{name}' is required")
    return AppleEvidence(_decode(body["key_id"], "key_id", 256),
                         _decode(body["attestation_object"], "attestation_object", MAX_ATTESTATION_OBJECT_CHARS))


def challenge_bytes(challenge: str) -> bytes:
    """The raw bytes of a challenge (base64url text). Raises :class:`Unauthorized` ``invalid_challenge``."""
    if not challenges.CHALLENGE_PATTERN.fullmatch(challenge):
        raise Unauthorized("invalid_challenge", "the challenge is malformed")
    return b64decode_strict(challenge)


def raw_evidence(evidence: Evidence) -> dict[str, Any]:
    """The evidence as stored on the device record (base64 text)."""
    if isinstance(evidence, AndroidEvidence):
        return {"format": evidence.format,
                "certificate_chain": [base64.b64encode(der).decode("ascii") for der in evidence.certificate_chain]}
    return {"format": evidence.format, "key_id": base64.b64encode(evidence.key_id).decode("ascii"),
            "attestation_object": base64.b64encode(evidence.attestation_object).decode("ascii")}


def verify_for_device(evidence: Evidence, challenge: bytes, now: datetime) -> tuple[VerifierConfig, r.Verification]:
    """Verify ``evidence`` with the configured policy, trust store and (Android) status list;
    returns the configuration used and the verification.

    Raises :class:`~shared_code.platform.config.ConfigError` (500) for missing settings and
    :class:`~shared_code.platform.errors.ServiceUnavailable` ``revocation_status_unavailable``.
    """
    config = config_from_settings(get_settings(), evidence.format)
    refused = status_list.current_refused(now) if isinstance(evidence, AndroidEvidence) else frozenset()
    return config, verify_evidence(evidence, challenge, config, now, refused)


def _audit(deviceid: str, evidence: Evidence, config: VerifierConfig, verification: r.Verification) -> None:
    """Record the decision before it takes effect (raises ServiceUnavailable when the log is down)."""
    trail.record("device_attested", actor=trail.device_actor(deviceid),
                 objects={"device": deviceid, "format": evidence.format, "trust_level": verification.trust_level or "none"},
                 outcome=trail.GRANTED if verification.ok else trail.REFUSED,
                 failed_checks=list(verification.failed_checks),
                 evidence=trail.evidence_digest(evidence_bytes(evidence), VERIFIER_NAME, policy_document(config)))


def _bind(device: dict[str, Any], key: Any, evidence: Evidence, verification: r.Verification, now: datetime,
          attempts: int = 3) -> dict[str, Any]:
    """Write the binding by conditional replace, re-reading on a lost race (a concurrent write
    of another field, such as a Play Integrity result, is kept). Also for the key already bound:
    evidence that it lives in secure hardware upgrades a key proved by possession only and
    refreshes the claims. An App Attest counter never goes back. Raises :class:`Conflict` when
    another key won, :class:`Forbidden` when the device's attestation was revoked, or the device
    suspended or revoked, meanwhile, ServiceUnavailable
    when the record keeps changing."""
    current = device
    for _ in range(attempts):
        updated = {**current, "public_key": key.pem, "key_type": key.key_type, "attested_at": to_iso(now),
                   "trust_level": verification.trust_level, "attestation": verification.claims,
                   "evidence": raw_evidence(evidence)}
        if isinstance(evidence, AppleEvidence):
            updated["assertion_counter"] = int(current.get("assertion_counter") or 0)
        try:
            return cosmos.replace_item(cosmos.DEVICES, updated, current["_etag"])
        except cosmos.EtagMismatch:
            current = registry.require_active(registry.read_device(device["id"]))
            if current.get("public_key") and current["public_key"] != key.pem:
                raise Conflict("already_attested", "the device is already attested with another key") from None
            if current.get("trust_level") == "revoked":
                raise Forbidden("attestation_required", "the device's attestation was revoked meanwhile") from None
    raise ServiceUnavailable(detail="the device record is being changed concurrently, try again")


def attest_hardware(device: dict[str, Any], evidence: Evidence, challenge: str) -> tuple[dict[str, Any], r.Verification]:
    """Bind the key of verified ``evidence`` to ``device``; returns ``(stored record, verification)``.

    Raises :class:`AttestationFailed` (401, ``failed_checks``), :class:`Unauthorized`
    ``invalid_challenge``, :class:`BadRequest` ``unusable_key``, :class:`Conflict`
    ``already_attested`` (409), :class:`Forbidden` ``attestation_required`` (403, a revoked
    device), and what :func:`verify_for_device` raises.
    """
    if device.get("trust_level") == "revoked":
        raise Forbidden("attestation_required", "the device's attestation was revoked; register a new device")
    now = utc_now()
    config, verification = verify_for_device(evidence, challenge_bytes(challenge), now)
    if not verification.ok:
        _audit(device["id"], evidence, config, verification)
        security_event("attestation_refused", deviceid=device["id"], format=evidence.format,
                       failed_checks=list(verification.failed_checks))
        raise AttestationFailed(detail=verification.detail, fields={"failed_checks": list(verification.failed_checks)})
    pem = verification.public_key.public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo).decode("ascii")
    try:
        key = load_device_public_key(pem)
    except UnusableKey as exc:
        raise BadRequest("unusable_key", f"the attested key is not accepted: {exc}") from None
    if device.get("public_key") and device["public_key"] != key.pem:
        raise Conflict("already_attested", "the device is already attested with another key")
    challenges.consume_challenge(device["id"], challenge)
    _audit(device["id"], evidence, config, verification)
    stored = _bind(device, key, evidence, verification, now)
    log.info("device attested: %s (%s, %s)", device["id"], evidence.format, verification.trust_level)
    return stored, verification
