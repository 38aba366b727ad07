"""Check names (the ``failed_checks`` values) and the typed result of a verification.

Android Key Attestation (order of evaluation)::

    chain_malformed, chain_signature, untrusted_root, certificate_expired, revoked,
    extension_misplaced, extension_malformed, challenge_mismatch, security_level, key_origin,
    key_purpose, root_of_trust, patch_level, app_identity

Apple App Attest::

    attestation_malformed, chain_signature, untrusted_root, certificate_expired,
    nonce_mismatch, key_id_mismatch, app_id_mismatch, counter, environment

A verification runs every check that can still run after the ones that failed (a chain that
does not parse stops everything; a bad signature does not stop the KeyDescription checks), so an
operator sees every reason at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

ANDROID_KEY = "android-key"
APPLE_APPATTEST = "apple-appattest"

CHAIN_MALFORMED = "chain_malformed"
CHAIN_SIGNATURE = "chain_signature"
UNTRUSTED_ROOT = "untrusted_root"
CERTIFICATE_EXPIRED = "certificate_expired"
REVOKED = "revoked"
EXTENSION_MISPLACED = "extension_misplaced"
EXTENSION_MALFORMED = "extension_malformed"
CHALLENGE_MISMATCH = "challenge_mismatch"
SECURITY_LEVEL = "security_level"
KEY_ORIGIN = "key_origin"
KEY_PURPOSE = "key_purpose"
ROOT_OF_TRUST = "root_of_trust"
PATCH_LEVEL = "patch_level"
APP_IDENTITY = "app_identity"

ATTESTATION_MALFORMED = "attestation_malformed"
NONCE_MISMATCH = "nonce_mismatch"
KEY_ID_MISMATCH = "key_id_mismatch"
APP_ID_MISMATCH = "app_id_mismatch"
COUNTER = "counter"
ENVIRONMENT = "environment"

ANDROID_CHECKS = (CHAIN_MALFORMED, CHAIN_SIGNATURE, UNTRUSTED_ROOT, CERTIFICATE_EXPIRED, REVOKED,
                  EXTENSION_MISPLACED, EXTENSION_MALFORMED, CHALLENGE_MISMATCH, SECURITY_LEVEL, KEY_ORIGIN,
                  KEY_PURPOSE, ROOT_OF_TRUST, PATCH_LEVEL, APP_IDENTITY)
APPLE_CHECKS = (ATTESTATION_MALFORMED, CHAIN_SIGNATURE, UNTRUSTED_ROOT, CERTIFICATE_EXPIRED, NONCE_MISMATCH,
                KEY_ID_MISMATCH, APP_ID_MISMATCH, COUNTER, ENVIRONMENT)

#: ``trust_level`` values, weakest first. ``revoked`` is below everything.
TRUST_LEVELS = ("revoked", "software", "hardware", "strongbox")


def trust_rank(level: str | None) -> int:
    """Position of ``level`` in :data:`TRUST_LEVELS` (unknown or ``None`` ranks as ``revoked``)."""
    return TRUST_LEVELS.index(level) if level in TRUST_LEVELS else 0


@dataclass
class Findings:
    """Collects failed checks with a reason each, in the order they were found."""

    failures: dict[str, str] = field(default_factory=dict)

    def fail(self, check: str, reason: str) -> None:
        """Record ``check`` as failed (the first reason given for it is kept)."""
        self.failures.setdefault(check, reason)

    def __contains__(self, check: str) -> bool:
        return check in self.failures


@dataclass(frozen=True)
class Verification:
    """The outcome of verifying one piece of evidence.

    ``failed_checks``: names of the failed checks in evaluation order (empty: verified);
    ``reasons``: ``{check: human reason}``; ``claims``: what the evidence says about the device
    and app (see :mod:`~shared_code.devices.attestation.verifier`), ``{}`` when it could not be
    parsed; ``trust_level``: ``hardware`` / ``strongbox`` when verified, else ``None``;
    ``public_key``: the attested key (a ``cryptography`` public key) when the evidence parsed;
    ``serials``: lower-case hex serial numbers of the chain's certificates; ``parsed``: the full
    parse (the KeyDescription, or the App Attest authenticator data), for operators.
    """

    format: str
    failed_checks: tuple[str, ...]
    reasons: dict[str, str]
    claims: dict[str, Any]
    trust_level: str | None
    public_key: Any = None
    serials: tuple[str, ...] = ()
    parsed: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """Whether every check passed."""
        return not self.failed_checks

    @property
    def detail(self) -> str:
        """One line naming every failed check with its reason (for ``detail`` and logs)."""
        return "; ".join(f"{check}: {self.reasons[check]}" for check in self.failed_checks)


def finish(fmt: str, findings: Findings, order: tuple[str, ...], claims: dict[str, Any], level: str | None,
           public_key: Any = None, serials: tuple[str, ...] = (), parsed: dict[str, Any] | None = None) -> Verification:
    """Freeze ``findings`` into a :class:`Verification` (failed checks in ``order``)."""
    failed = tuple(check for check in order if check in findings)
    return Verification(fmt, failed, dict(findings.failures), claims, None if failed else level, public_key, serials,
                        parsed or {})
