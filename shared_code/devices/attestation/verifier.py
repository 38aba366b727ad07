"""The one entry point for hardware attestation evidence: :func:`verify_evidence`.

Like Google's ``Verifier`` (``android/keyattestation``), everything a verification depends on
is passed in: the evidence, the challenge bytes, a :class:`VerifierConfig` (trust store and
the per-format constraints, built from settings by :func:`config_from_settings`), the time
(``now``, so vectors verify at their own pinned time) and the refused serials of the
attestation status list. The result is a typed
:class:`~shared_code.devices.attestation.results.Verification`.

Claims kept on the device record (``Verification.claims``)::

    android-key:     {format, security_level, keymint_security_level, attestation_version,
                      os_version, os_patch_level, vendor_patch_level, boot_patch_level,
                      verified_boot_state, device_locked, package_names, signer_digests (hex),
                      provisioning (factory | remote | unknown), root (google | test), serials}
    apple-appattest: {format, security_level: SECURE_ENCLAVE, app_id, environment, key_id (hex),
                      counter, receipt_bytes, serials}
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime

from shared_code.devices.attestation import results as r
from shared_code.devices.attestation.android import AndroidPolicy, verify_android
from shared_code.devices.attestation.apple import AppleExpectations, verify_attestation
from shared_code.devices.attestation.roots import TestRootsError, TrustStore, trust_store
from shared_code.platform.config import ConfigError, Settings

DIGEST_BYTES = 32
#: Named in audit entries (``evidence.verifier``); bump when a check's meaning changes.
VERIFIER_NAME = "trustgate-attestation/1"


@dataclass(frozen=True)
class AndroidEvidence:
    """``certificate_chain``: DER certificates, leaf first."""

    certificate_chain: tuple[bytes, ...]
    format: str = r.ANDROID_KEY


@dataclass(frozen=True)
class AppleEvidence:
    """``key_id``: the 32-byte key identifier; ``attestation_object``: the CBOR bytes."""

    key_id: bytes
    attestation_object: bytes
    format: str = r.APPLE_APPATTEST


Evidence = AndroidEvidence | AppleEvidence


@dataclass(frozen=True)
class VerifierConfig:
    """Trust store and constraints. A format whose policy is ``None`` is not configured."""

    trust: TrustStore
    android: AndroidPolicy | None = None
    apple: AppleExpectations | None = None


def parse_digest(text: str) -> bytes:
    """A SHA-256 digest written as hex (colons allowed, any case, as the Play Console shows it) or
    base64 / base64url (padding optional, as attestation records show it). Raises ``ValueError``."""
    cleaned = text.strip().replace(":", "")
    if len(cleaned) == 2 * DIGEST_BYTES:
        try:
            return bytes.fromhex(cleaned)
        except ValueError:
            pass
    padded = cleaned.replace("-", "+").replace("_", "/")
    try:
        raw = base64.b64decode(padded + "=" * (-len(padded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{text!r} is neither hex nor base64") from None
    if len(raw) != DIGEST_BYTES:
        raise ValueError(f"{text!r} is not a SHA-256 digest ({len(raw)} bytes)")
    return raw


def config_from_settings(settings: Settings, fmt: str) -> VerifierConfig:
    """The configuration for ``fmt`` from settings. Raises :class:`ConfigError` when a setting the
    format requires is missing or malformed (``ANDROID_ATTESTATION_PACKAGES`` and
    ``ANDROID_ATTESTATION_SIGNATURE_DIGESTS`` for android-key, ``APP_ATTEST_APP_IDS`` for
    apple-appattest, a bad ``ATTESTATION_TEST_ROOTS``)."""
    try:
        trust = trust_store(settings.attestation_test_roots)
    except TestRootsError as exc:
        raise ConfigError("ATTESTATION_TEST_ROOTS", str(exc)) from None
    if fmt == r.ANDROID_KEY:
        if not settings.android_attestation_packages:
            raise ConfigError("ANDROID_ATTESTATION_PACKAGES", "is required for format android-key")
        if not settings.android_attestation_signature_digests:
            raise ConfigError("ANDROID_ATTESTATION_SIGNATURE_DIGESTS", "is required for format android-key")
        try:
            digests = frozenset(parse_digest(d) for d in settings.android_attestation_signature_digests)
        except ValueError:
            raise ConfigError("ANDROID_ATTESTATION_SIGNATURE_DIGESTS", "entries must be SHA-256 digests in hex or base64") from None
        return VerifierConfig(trust, android=AndroidPolicy(settings.android_attestation_packages, digests,
                                                           settings.android_allow_unlocked, settings.android_min_patch_level))
    if not settings.app_attest_app_ids:
        raise ConfigError("APP_ATTEST_APP_IDS", "is required for format apple-appattest")
    return VerifierConfig(trust, apple=AppleExpectations(settings.app_attest_app_ids, settings.app_attest_environment))


def policy_document(config: VerifierConfig) -> dict[str, object]:
    """The policy in force as JSON (for the audit log's policy hash): pinned and test root pins
    and the constraints of each configured format."""
    document: dict[str, object] = {"android_pins": sorted(config.trust.android_pins),
                                   "apple_pins": sorted(config.trust.apple_pins)}
    if config.android is not None:
        android = config.android
        document["android"] = {"packages": sorted(android.packages),
                               "signature_digests": sorted(d.hex() for d in android.signature_digests),
                               "allow_unlocked": android.allow_unlocked, "min_patch_level": android.min_patch_level}
    if config.apple is not None:
        document["apple"] = {"app_ids": sorted(config.apple.app_ids), "environment": config.apple.environment}
    return document


def evidence_bytes(evidence: Evidence) -> bytes:
    """The raw evidence as one byte string (the DER certificates back to back, or the CBOR object),
    what the audit log's evidence digest covers."""
    if isinstance(evidence, AndroidEvidence):
        return b"".join(evidence.certificate_chain)
    return evidence.key_id + evidence.attestation_object


def verify_evidence(evidence: Evidence, challenge: bytes, config: VerifierConfig, now: datetime,
                    refused_serials: frozenset[str] = frozenset()) -> r.Verification:
    """Verify ``evidence`` bound to ``challenge`` (raw bytes) at ``now`` (aware UTC).

    ``refused_serials``: REVOKED/SUSPENDED serials of the status list (Android only). Raises
    ``ValueError`` when ``config`` lacks the policy for the evidence's format; bad evidence is
    never an exception, it is a :class:`~shared_code.devices.attestation.results.Verification`
    with ``failed_checks``.
    """
    if isinstance(evidence, AndroidEvidence):
        if config.android is None:
            raise ValueError("no android-key policy configured")
        return verify_android(list(evidence.certificate_chain), challenge, config.android, config.trust,
                              refused_serials, now)
    if config.apple is None:
        raise ValueError("no apple-appattest expectations configured")
    return verify_attestation(evidence.attestation_object, evidence.key_id, challenge, config.apple, config.trust, now)
