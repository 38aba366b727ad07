"""Android Key Attestation: the chain checks and the KeyDescription constraints.

Follows Google's verifier ``android/keyattestation`` (``provider/KeyAttestationCertPathValidator.kt``,
``ConstraintConfig.kt``) and developer.android.com/privacy-and-security/security-key-attestation:

- the chain is the leaf (the attested key, carrying the KeyDescription) first, 3 to 6 DER
  certificates; one that stops at an intermediate is completed from the pinned roots by issuer
  name;
- each certificate must be directly issued by the next (issuer name and signature); RFC 5280 CA
  flags are not required (real chains, e.g. Sony's, break them);
- the last certificate's public key must be a pinned root (Google's, or a test root);
- validity is checked for the intermediates only, never the leaf (its dates are set on the
  device), and expiry is ignored on factory-provisioned chains, whose keys cannot be rotated;
- no serial may be REVOKED or SUSPENDED in the attestation status list;
- only the leaf may carry the KeyDescription (a chain extended with a forged attestation
  certificate fails ``extension_misplaced``);
- then the constraints of :data:`CONSTRAINTS`, each a named check over the parsed KeyDescription.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.x509.oid import NameOID

from shared_code.devices.attestation import results as r
from shared_code.devices.attestation.key_description import OID, KeyDescriptionError, parse_key_description
from shared_code.devices.attestation.roots import AOSP_SOFTWARE_ROOT_SPKI_SHA256, TrustStore, spki_sha256

MIN_CHAIN, MAX_CHAIN = 3, 6
KEY_DESCRIPTION_OID = x509.ObjectIdentifier(OID)
PURPOSE_SIGN = "2"  # KeyPurpose.SIGN (KeyMint KeyPurpose.aidl)


@dataclass(frozen=True)
class AndroidPolicy:
    """What a KeyDescription must say. ``signature_digests``: raw 32-byte SHA-256 digests of the
    app's signing certificates; ``min_patch_level``: yyyymm or ``None``."""

    packages: frozenset[str]
    signature_digests: frozenset[bytes]
    allow_unlocked: bool = False
    min_patch_level: int | None = None


@dataclass(frozen=True)
class AndroidChain:
    """A parsed chain, leaf first, ending at its root (completed from the trust store if needed)."""

    certificates: tuple[x509.Certificate, ...]

    @property
    def leaf(self) -> x509.Certificate:
        return self.certificates[0]

    @property
    def intermediate(self) -> x509.Certificate:
        """The certificate the root issued (Google's ``intermediateCert``)."""
        return self.certificates[-2]

    @property
    def provisioning(self) -> str:
        """``factory`` (intermediate named by serialNumber), ``remote`` (issued via ``CN=Droid CA2,
        O=Google LLC``: Remote Key Provisioning) or ``unknown``."""
        subject = self.intermediate.subject
        if subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER):
            return "factory"
        names = {a.oid: a.value for a in subject}
        if names.get(NameOID.COMMON_NAME) == "Droid CA2" and names.get(NameOID.ORGANIZATION_NAME) == "Google LLC":
            return "remote"
        return "unknown"

    def certificate_security_level(self) -> str | None:
        """The security level the Google-signed certificates claim (``MATCHES_CERTIFICATE``):
        RKP attestation certificates name it in ``O``; factory chains only ever say StrongBox."""
        if len(self.certificates) < 3:
            return None
        if self.provisioning == "remote":
            organisation = [a.value for a in self.certificates[1].subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
            return {"TEE": "TRUSTED_ENVIRONMENT", "StrongBox": "STRONG_BOX"}.get(organisation[0] if organisation else "", "SOFTWARE")
        if self.provisioning == "factory":
            for certificate in (self.certificates[1], self.intermediate):
                if "strongbox" in certificate.subject.rfc4514_string().lower():
                    return "STRONG_BOX"
        return None

    @property
    def serials(self) -> tuple[str, ...]:
        """Serial numbers as the status list writes them: lower-case hex, no leading zeros."""
        return tuple(format(c.serial_number, "x") for c in self.certificates)


# --- constraints ------------------------------------------------------------------------------

Description = dict[str, Any]


@dataclass(frozen=True)
class Constraint:
    """One named check over the KeyDescription; ``violation`` returns a reason, or ``None``."""

    check: str
    violation: Callable[[Description, AndroidChain, AndroidPolicy, bytes], str | None]


def _challenge(desc: Description, chain: AndroidChain, policy: AndroidPolicy, challenge: bytes) -> str | None:
    attested = base64.b64decode(desc["attestationChallenge"])
    return None if hmac.compare_digest(attested, challenge) else "attestationChallenge is not the challenge issued"


def _security_level(desc: Description, chain: AndroidChain, policy: AndroidPolicy, challenge: bytes) -> str | None:
    attestation, keymint = desc["attestationSecurityLevel"], desc["keyMintSecurityLevel"]
    if attestation != keymint or attestation == "SOFTWARE":
        return f"attestation level {attestation} and KeyMint level {keymint} must be equal and TEE or StrongBox"
    claimed = chain.certificate_security_level()
    if keymint == "STRONG_BOX" and claimed != "STRONG_BOX":
        return f"StrongBox key, but the attestation certificate claims {claimed}"
    if keymint == "TRUSTED_ENVIRONMENT" and claimed not in (None, "TRUSTED_ENVIRONMENT"):
        return f"TEE key, but the attestation certificate claims {claimed}"
    return None


def _origin(desc: Description, chain: AndroidChain, policy: AndroidPolicy, challenge: bytes) -> str | None:
    origin = desc["hardwareEnforced"].get("origin")
    return None if origin == "GENERATED" else f"key origin is {origin}, not GENERATED in secure hardware"


def _purpose(desc: Description, chain: AndroidChain, policy: AndroidPolicy, challenge: bytes) -> str | None:
    purposes = desc["hardwareEnforced"].get("purposes", [])
    return None if PURPOSE_SIGN in purposes else f"key purposes {purposes} do not include SIGN (2)"


def _root_of_trust(desc: Description, chain: AndroidChain, policy: AndroidPolicy, challenge: bytes) -> str | None:
    root = desc["hardwareEnforced"].get("rootOfTrust")
    if root is None:
        return "no rootOfTrust in hardwareEnforced"
    if policy.allow_unlocked:
        return None
    if not root["deviceLocked"] or root["verifiedBootState"] != "VERIFIED":
        return (f"bootloader {'locked' if root['deviceLocked'] else 'unlocked'}, verified boot "
                f"{root['verifiedBootState']} (ANDROID_ALLOW_UNLOCKED is false)")
    return None


def _patch_level(desc: Description, chain: AndroidChain, policy: AndroidPolicy, challenge: bytes) -> str | None:
    if policy.min_patch_level is None:
        return None
    level = desc["hardwareEnforced"].get("osPatchLevel")
    if level is None or int(level[:6]) < policy.min_patch_level:
        return f"osPatchLevel {level} is older than ANDROID_MIN_PATCH_LEVEL {policy.min_patch_level}"
    return None


def _app_identity(desc: Description, chain: AndroidChain, policy: AndroidPolicy, challenge: bytes) -> str | None:
    app = desc["softwareEnforced"].get("attestationApplicationId") or desc["hardwareEnforced"].get("attestationApplicationId")
    if app is None:
        return "no attestationApplicationId"
    names = {p["name"] for p in app["packages"]}
    digests = {base64.b64decode(s) for s in app["signatures"]}
    problems = []
    if not names or not names <= policy.packages:
        problems.append(f"packages {sorted(names)} not all in ANDROID_ATTESTATION_PACKAGES")
    if digests != policy.signature_digests:
        problems.append(f"signer digests {sorted(d.hex() for d in digests)} differ from ANDROID_ATTESTATION_SIGNATURE_DIGESTS")
    return "; ".join(problems) or None


#: The KeyDescription constraints, in evaluation order (Google's ConstraintConfig defaults plus
#: MATCHES_CERTIFICATE, purpose, patch level and application identity).
CONSTRAINTS: tuple[Constraint, ...] = (
    Constraint(r.CHALLENGE_MISMATCH, _challenge),
    Constraint(r.SECURITY_LEVEL, _security_level),
    Constraint(r.KEY_ORIGIN, _origin),
    Constraint(r.KEY_PURPOSE, _purpose),
    Constraint(r.ROOT_OF_TRUST, _root_of_trust),
    Constraint(r.PATCH_LEVEL, _patch_level),
    Constraint(r.APP_IDENTITY, _app_identity),
)


# --- the chain --------------------------------------------------------------------------------

def _parse_chain(chain_der: list[bytes], trust: TrustStore, findings: r.Findings) -> AndroidChain | None:
    if not MIN_CHAIN <= len(chain_der) <= MAX_CHAIN:
        findings.fail(r.CHAIN_MALFORMED, f"{len(chain_der)} certificates; a chain has {MIN_CHAIN} to {MAX_CHAIN}")
        return None
    certificates = []
    for index, der in enumerate(chain_der):
        try:
            certificates.append(x509.load_der_x509_certificate(der))
        except ValueError:
            findings.fail(r.CHAIN_MALFORMED, f"certificate {index} is not a DER X.509 certificate")
            return None
    last = certificates[-1]
    if last.issuer != last.subject:
        root = trust.android_root_for(last.issuer)
        if root is not None:
            certificates.append(root)
    return AndroidChain(tuple(certificates))


def _check_signatures(chain: AndroidChain, findings: r.Findings) -> None:
    for index, (certificate, issuer) in enumerate(zip(chain.certificates, chain.certificates[1:])):
        try:
            certificate.verify_directly_issued_by(issuer)
        except ValueError:
            findings.fail(r.CHAIN_SIGNATURE, f"certificate {index}'s issuer is not the subject of certificate {index + 1}")
        except (InvalidSignature, TypeError):
            findings.fail(r.CHAIN_SIGNATURE, f"certificate {index}'s signature does not verify with certificate {index + 1}'s key")


def _check_root(chain: AndroidChain, trust: TrustStore, findings: r.Findings) -> str | None:
    root = chain.certificates[-1]
    pin = spki_sha256(root)
    if root.issuer != root.subject:
        findings.fail(r.UNTRUSTED_ROOT, f"the chain ends at {root.issuer.rfc4514_string()!r}, which is no pinned root")
    elif pin in AOSP_SOFTWARE_ROOT_SPKI_SHA256:
        findings.fail(r.UNTRUSTED_ROOT, "the chain ends at an AOSP software attestation root: not hardware-backed")
    elif pin not in trust.android_pins:
        findings.fail(r.UNTRUSTED_ROOT, f"root key {pin} is not a pinned Google (or test) root")
    else:
        return "test" if pin in {spki_sha256(c) for c in trust.test_roots} else "google"
    return None


def _check_validity(chain: AndroidChain, now: datetime, findings: r.Findings) -> None:
    for index, certificate in enumerate(chain.certificates[1:-1], start=1):
        if now < certificate.not_valid_before_utc:
            findings.fail(r.CERTIFICATE_EXPIRED, f"certificate {index} is not valid before {certificate.not_valid_before_utc:%Y-%m-%d}")
        elif now > certificate.not_valid_after_utc and chain.provisioning != "factory":
            findings.fail(r.CERTIFICATE_EXPIRED, f"certificate {index} expired {certificate.not_valid_after_utc:%Y-%m-%d}")


def _check_revocation(chain: AndroidChain, revoked: frozenset[str], findings: r.Findings) -> None:
    listed = [serial for serial in chain.serials if serial in revoked]
    if listed:
        findings.fail(r.REVOKED, f"serial(s) {', '.join(listed)} are REVOKED or SUSPENDED in the attestation status list")


def _key_description(chain: AndroidChain, findings: r.Findings) -> Description | None:
    misplaced = [index for index, c in enumerate(chain.certificates[1:], start=1) if _extension(c) is not None]
    if misplaced:
        findings.fail(r.EXTENSION_MISPLACED, f"certificate(s) {misplaced} carry a KeyDescription; only the leaf may")
    value = _extension(chain.leaf)
    if value is None:
        findings.fail(r.EXTENSION_MALFORMED, "the leaf certificate has no KeyDescription extension")
        return None
    try:
        return parse_key_description(value)
    except KeyDescriptionError as exc:
        findings.fail(r.EXTENSION_MALFORMED, f"the KeyDescription does not parse: {exc}")
        return None


def _extension(certificate: x509.Certificate) -> bytes | None:
    try:
        return certificate.extensions.get_extension_for_oid(KEY_DESCRIPTION_OID).value.value
    except x509.ExtensionNotFound:
        return None


def claims_of(desc: Description, chain: AndroidChain, root: str | None) -> dict[str, Any]:
    """What the device record keeps of a KeyDescription (see the module docstring of ``verifier``)."""
    hardware, software = desc["hardwareEnforced"], desc["softwareEnforced"]
    root_of_trust = hardware.get("rootOfTrust") or {}
    app = software.get("attestationApplicationId") or hardware.get("attestationApplicationId") or {}
    return {
        "format": r.ANDROID_KEY,
        "security_level": desc["attestationSecurityLevel"],
        "keymint_security_level": desc["keyMintSecurityLevel"],
        "attestation_version": int(desc["attestationVersion"]),
        "os_version": hardware.get("osVersion"),
        "os_patch_level": hardware.get("osPatchLevel"),
        "vendor_patch_level": hardware.get("vendorPatchLevel"),
        "boot_patch_level": hardware.get("bootPatchLevel"),
        "verified_boot_state": root_of_trust.get("verifiedBootState"),
        "device_locked": root_of_trust.get("deviceLocked"),
        "package_names": [p["name"] for p in app.get("packages", [])],
        "signer_digests": [base64.b64decode(s).hex() for s in app.get("signatures", [])],
        "provisioning": chain.provisioning,
        "root": root,
        "serials": list(chain.serials),
    }


def verify_android(chain_der: list[bytes], challenge: bytes, policy: AndroidPolicy, trust: TrustStore,
                   revoked: frozenset[str], now: datetime) -> r.Verification:
    """Verify an Android Key Attestation chain (DER, leaf first) for ``challenge`` at ``now``.

    ``revoked``: the serials (lower-case hex) that are REVOKED or SUSPENDED. Returns a
    :class:`~shared_code.devices.attestation.results.Verification`; ``trust_level`` is
    ``strongbox`` or ``hardware`` when every check passes. Never raises for bad evidence.
    """
    findings = r.Findings()
    chain = _parse_chain(chain_der, trust, findings)
    if chain is None:
        return r.finish(r.ANDROID_KEY, findings, r.ANDROID_CHECKS, {}, None)
    _check_signatures(chain, findings)
    root = _check_root(chain, trust, findings)
    _check_validity(chain, now, findings)
    _check_revocation(chain, revoked, findings)
    desc = _key_description(chain, findings)
    claims: dict[str, Any] = {}
    level = None
    if desc is not None:
        for constraint in CONSTRAINTS:
            reason = constraint.violation(desc, chain, policy, challenge)
            if reason:
                findings.fail(constraint.check, reason)
        claims = claims_of(desc, chain, root)
        level = "strongbox" if desc["keyMintSecurityLevel"] == "STRONG_BOX" else "hardware"
    return r.finish(r.ANDROID_KEY, findings, r.ANDROID_CHECKS, claims, level, chain.leaf.public_key(),
                    chain.serials, desc)
