"""Apple App Attest: attestation objects and assertions.

After Apple's "Validating apps that connect to your server" (developer.apple.com/documentation/
devicecheck/validating-apps-that-connect-to-your-server) and WebAuthn Level 2 §6.1 for the
authenticator data layout::

    authData = rpIdHash (32) | flags (1) | signCount (4, big-endian)
               | aaguid (16) | credentialIdLength (2) | credentialId | credentialPublicKey (COSE)

Attestation (``attestKey``; the object is CBOR ``{fmt, attStmt: {x5c, receipt}, authData}``):

1. ``attestation_malformed``: CBOR, ``fmt == "apple-appattest"``, the fields above;
2. ``chain_signature``: ``x5c`` (credential certificate first) chains by name and signature to
3. ``untrusted_root``: the pinned Apple App Attestation Root CA (or a test root), never a root
   shipped in ``x5c``;
4. ``certificate_expired``: every certificate valid at the verification time;
5. ``nonce_mismatch``: extension 1.2.840.113635.100.8.2 (``SEQUENCE { [1] EXPLICIT OCTET
   STRING }``) equals ``SHA-256(authData ‖ clientDataHash)``, ``clientDataHash = SHA-256(challenge)``;
6. ``key_id_mismatch``: ``SHA-256`` of the credential certificate's uncompressed public point equals
   the ``key_id`` sent and the ``credentialId``;
7. ``app_id_mismatch``: ``rpIdHash`` is ``SHA-256`` of one of the App IDs (``TEAMID.bundle.id``);
8. ``counter``: ``signCount`` is 0;
9. ``environment``: AAGUID ``appattest`` + 7 zero bytes (production) or ``appattestdevelop``
   (only when the development environment is configured).

Assertions (``generateAssertion``; CBOR ``{signature, authenticatorData}``): ECDSA P-256 /
SHA-256 signature over ``nonce = SHA-256(authenticatorData ‖ SHA-256(clientData))`` with the
attested key, ``rpIdHash`` of an App ID, and a counter strictly greater than the stored one.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from shared_code.devices.attestation import asn1_walk as asn1
from shared_code.devices.attestation import results as r
from shared_code.devices.attestation.roots import TrustStore, spki_sha256

NONCE_OID = x509.ObjectIdentifier("1.2.840.113635.100.8.2")
AAGUIDS = {"production": b"appattest" + b"\x00" * 7, "development": b"appattestdevelop"}
FLAG_ATTESTED_CREDENTIAL_DATA = 0x40
_HEADER = struct.Struct(">32sBI")  # rpIdHash, flags, signCount
_CREDENTIAL = struct.Struct(">16sH")  # aaguid, credentialIdLength


class AssertionRefused(ValueError):
    """An App Attest assertion fails; ``reason`` is ``malformed``, ``signature``, ``app_id`` or ``counter``."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason


@dataclass(frozen=True)
class AppleExpectations:
    """What an App Attest attestation must be for: App IDs (``TEAMID.bundle.id``) and environment."""

    app_ids: frozenset[str]
    environment: str = "production"  # production | development


@dataclass(frozen=True)
class AuthenticatorData:
    """The parsed ``authData`` (WebAuthn §6.1); credential fields are empty for assertions."""

    rp_id_hash: bytes
    flags: int
    counter: int
    aaguid: bytes = b""
    credential_id: bytes = b""


def parse_authenticator_data(data: bytes, attested: bool) -> AuthenticatorData:
    """Split ``data``; ``attested`` requires the attested-credential-data part. Raises ``ValueError``."""
    if len(data) < _HEADER.size:
        raise ValueError("authenticator data is shorter than 37 bytes")
    rp_id_hash, flags, counter = _HEADER.unpack_from(data)
    if not attested:
        return AuthenticatorData(rp_id_hash, flags, counter)
    if not flags & FLAG_ATTESTED_CREDENTIAL_DATA or len(data) < _HEADER.size + _CREDENTIAL.size:
        raise ValueError("authenticator data has no attested credential data")
    aaguid, length = _CREDENTIAL.unpack_from(data, _HEADER.size)
    start = _HEADER.size + _CREDENTIAL.size
    if len(data) < start + length:
        raise ValueError("credentialId is cut short")
    return AuthenticatorData(rp_id_hash, flags, counter, aaguid, data[start:start + length])


def _app_id_for(rp_id_hash: bytes, app_ids: frozenset[str]) -> str | None:
    return next((a for a in sorted(app_ids) if hmac.compare_digest(hashlib.sha256(a.encode()).digest(), rp_id_hash)), None)


def _decode_attestation(attestation_object: bytes) -> tuple[list[x509.Certificate], bytes, bytes]:
    document = cbor2.loads(attestation_object)
    if not isinstance(document, dict) or document.get("fmt") != r.APPLE_APPATTEST:
        raise ValueError("not an attestation object with fmt apple-appattest")
    statement, auth_data = document.get("attStmt"), document.get("authData")
    if not isinstance(statement, dict) or not isinstance(auth_data, bytes):
        raise ValueError("attStmt or authData missing")
    x5c = statement.get("x5c")
    if not isinstance(x5c, list) or not x5c or not all(isinstance(c, bytes) for c in x5c):
        raise ValueError("attStmt.x5c is not a list of certificates")
    receipt = statement.get("receipt", b"")
    return [x509.load_der_x509_certificate(c) for c in x5c], auth_data, receipt if isinstance(receipt, bytes) else b""


def attestation_certificates(attestation_object: bytes) -> list[x509.Certificate]:
    """The ``attStmt.x5c`` certificates of an App Attest attestation object (credential certificate
    first), for re-checking stored evidence. Raises ``ValueError`` for anything else."""
    return _decode_attestation(attestation_object)[0]


def _nonce_extension(certificate: x509.Certificate) -> bytes:
    value = certificate.extensions.get_extension_for_oid(NONCE_OID).value.value
    (tagged,) = asn1.children(asn1.parse_one(value))
    return asn1.octets(asn1.explicit(tagged, 1))


def public_point(key: ec.EllipticCurvePublicKey) -> bytes:
    """The uncompressed X9.62 point (``04 ‖ X ‖ Y``) of ``key``: what App Attest key ids hash."""
    return key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def _chain(x5c: list[x509.Certificate], trust: TrustStore, now: datetime, findings: r.Findings) -> None:
    chain = list(x5c)
    while len(chain) > 1 and chain[-1].issuer == chain[-1].subject:
        chain.pop()  # a root in x5c is never trusted: the pinned one must be found by name
    root = trust.apple_root_for(chain[-1].issuer)
    if root is None or spki_sha256(root) not in trust.apple_pins:
        findings.fail(r.UNTRUSTED_ROOT, f"no pinned App Attest root is named {chain[-1].issuer.rfc4514_string()!r}")
    else:
        chain.append(root)
    for index, (certificate, issuer) in enumerate(zip(chain, chain[1:])):
        try:
            certificate.verify_directly_issued_by(issuer)
        except (ValueError, InvalidSignature, TypeError):
            findings.fail(r.CHAIN_SIGNATURE, f"certificate {index} is not issued by certificate {index + 1}")
    for index, certificate in enumerate(chain):
        if not certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc:
            findings.fail(r.CERTIFICATE_EXPIRED, f"certificate {index} is valid only from "
                          f"{certificate.not_valid_before_utc:%Y-%m-%dT%H:%MZ} to {certificate.not_valid_after_utc:%Y-%m-%dT%H:%MZ}")


def verify_attestation(attestation_object: bytes, key_id: bytes, challenge: bytes, expect: AppleExpectations,
                       trust: TrustStore, now: datetime) -> r.Verification:
    """Verify an App Attest attestation object (CBOR bytes) for ``key_id`` (32 bytes) and
    ``challenge`` (the raw challenge bytes; ``clientDataHash = SHA-256(challenge)``) at ``now``.

    Returns a :class:`~shared_code.devices.attestation.results.Verification` with
    ``trust_level`` ``hardware`` (Secure Enclave) when every check passes. Never raises for bad evidence.
    """
    findings = r.Findings()
    try:
        x5c, auth_bytes, receipt = _decode_attestation(attestation_object)
        auth = parse_authenticator_data(auth_bytes, attested=True)
    except (ValueError, cbor2.CBORDecodeError, TypeError) as exc:
        findings.fail(r.ATTESTATION_MALFORMED, f"the attestation object does not parse: {exc}")
        return r.finish(r.APPLE_APPATTEST, findings, r.APPLE_CHECKS, {}, None)
    _chain(x5c, trust, now, findings)
    credential = x5c[0]
    key = credential.public_key()
    nonce = hashlib.sha256(auth_bytes + hashlib.sha256(challenge).digest()).digest()
    try:
        if not hmac.compare_digest(_nonce_extension(credential), nonce):
            findings.fail(r.NONCE_MISMATCH, "the credential certificate's nonce is not SHA-256(authData ‖ SHA-256(challenge))")
    except (x509.ExtensionNotFound, asn1.Asn1Error, ValueError):
        findings.fail(r.NONCE_MISMATCH, "the credential certificate has no readable nonce extension (1.2.840.113635.100.8.2)")
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        findings.fail(r.KEY_ID_MISMATCH, "the credential key is not EC P-256")
        key_hash = b""
    else:
        key_hash = hashlib.sha256(public_point(key)).digest()
        if not (hmac.compare_digest(key_hash, key_id) and hmac.compare_digest(key_hash, auth.credential_id)):
            findings.fail(r.KEY_ID_MISMATCH, "SHA-256 of the credential public key differs from key_id or the credentialId")
    app_id = _app_id_for(auth.rp_id_hash, expect.app_ids)
    if app_id is None:
        findings.fail(r.APP_ID_MISMATCH, "rpIdHash is not SHA-256 of any APP_ATTEST_APP_IDS entry")
    if auth.counter != 0:
        findings.fail(r.COUNTER, f"signCount is {auth.counter}; an attestation has 0")
    environment = next((name for name, aaguid in AAGUIDS.items() if aaguid == auth.aaguid), None)
    if environment != expect.environment:
        findings.fail(r.ENVIRONMENT, f"AAGUID {auth.aaguid!r} is the {environment or 'unknown'} environment; "
                      f"APP_ATTEST_ENVIRONMENT is {expect.environment}")
    claims: dict[str, Any] = {
        "format": r.APPLE_APPATTEST, "security_level": "SECURE_ENCLAVE", "app_id": app_id,
        "environment": environment, "key_id": key_id.hex(), "counter": auth.counter,
        "receipt_bytes": len(receipt),
        "serials": [format(c.serial_number, "x") for c in x5c],
    }
    parsed = {"rpIdHash": auth.rp_id_hash.hex(), "flags": auth.flags, "signCount": auth.counter,
              "aaguid": auth.aaguid.decode("ascii", "replace"), "credentialId": auth.credential_id.hex()}
    return r.finish(r.APPLE_APPATTEST, findings, r.APPLE_CHECKS, claims, "hardware",
                    key if isinstance(key, ec.EllipticCurvePublicKey) else None,
                    tuple(claims["serials"]), parsed)


def verify_assertion(assertion: bytes, client_data: bytes, key: ec.EllipticCurvePublicKey,
                     app_ids: frozenset[str], stored_counter: int) -> int:
    """Check an App Attest assertion (CBOR bytes) over ``client_data``; returns its counter.

    Raises :class:`AssertionRefused` with ``reason`` ``malformed`` (not the CBOR map of
    ``signature`` and ``authenticatorData``), ``signature``, ``app_id`` or ``counter`` (not
    strictly greater than ``stored_counter``: a replay).
    """
    try:
        document = cbor2.loads(assertion)
        signature, auth_bytes = document["signature"], document["authenticatorData"]
        if not isinstance(signature, bytes) or not isinstance(auth_bytes, bytes):
            raise TypeError("signature and authenticatorData must be byte strings")
        auth = parse_authenticator_data(auth_bytes, attested=False)
    except (ValueError, cbor2.CBORDecodeError, TypeError, KeyError) as exc:
        raise AssertionRefused("malformed", f"the assertion is not an App Attest assertion: {exc}") from None
    nonce = hashlib.sha256(auth_bytes + hashlib.sha256(client_data).digest()).digest()
    try:
        key.verify(signature, nonce, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError):
        raise AssertionRefused("signature", "the assertion signature does not verify with the attested key") from None
    if _app_id_for(auth.rp_id_hash, app_ids) is None:
        raise AssertionRefused("app_id", "rpIdHash is not SHA-256 of any APP_ATTEST_APP_IDS entry")
    if auth.counter <= stored_counter:
        raise AssertionRefused("counter", f"counter {auth.counter} is not greater than the stored {stored_counter}")
    return auth.counter
