"""Simulated hardware attestation for the dev stack: evidence built the way a real device builds it.

DEV ONLY. A :class:`TestAuthority` plays Google's and Apple's attestation CAs: its roots are
trusted by a TrustGate server only through ``ATTESTATION_TEST_ROOTS`` (the dev stack sets it;
Azure never does). With it the client builds:

- Android Key Attestation chains (:func:`android_chain`), leaf first: the device key's leaf
  certificate carrying a KeyDescription (OID 1.3.6.1.4.1.11129.2.1.17, schema of
  source.android.com/docs/security/features/keystore/attestation) with the challenge, issued by a
  factory-provisioned chain (intermediates named by ``serialNumber``) or a remotely provisioned one
  (``CN=Droid CA2`` / ``CN=Droid CA3``, short-lived), ending at the test root;
- Apple App Attest attestation objects (:func:`apple_attestation`) and assertions
  (:func:`apple_assertion`) in Apple's formats (CBOR, authenticator data of WebAuthn §6.1, the
  nonce extension 1.2.840.113635.100.8.2).

ASN.1 is encoded with asn1crypto, CBOR with cbor2, certificates and signatures with cryptography.
The authority's files (``<dir>/android-root.pem`` …, private keys mode 0600) are written by
``python -m devhost`` into ``.devhost/test-authority/``.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import cbor2
from asn1crypto import core
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

KEY_DESCRIPTION_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.1.17")
APP_ATTEST_NONCE_OID = x509.ObjectIdentifier("1.2.840.113635.100.8.2")
AAGUIDS = {"production": b"appattest" + b"\x00" * 7, "development": b"appattestdevelop"}
SECURITY_LEVELS = {"software": 0, "tee": 1, "strongbox": 2}
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
LEAF_NOT_AFTER = datetime(2048, 1, 1, tzinfo=timezone.utc)

SigningKey = ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey


class SimulationError(ValueError):
    """The simulation cannot be built (missing authority, unsupported key type)."""


# --- the test authority ---------------------------------------------------------------------

def _name(**attributes: str) -> x509.Name:
    oids = {"cn": NameOID.COMMON_NAME, "o": NameOID.ORGANIZATION_NAME, "serial": NameOID.SERIAL_NUMBER,
            "title": NameOID.TITLE}
    return x509.Name([x509.NameAttribute(oids[key], value) for key, value in attributes.items()])


def issue(subject: x509.Name, key, issuer: x509.Name, issuer_key: SigningKey, *, not_before: datetime,
          not_after: datetime, ca: bool | None = True, extensions: tuple[tuple[x509.ExtensionType, bool], ...] = (),
          serial: int | None = None) -> x509.Certificate:
    """A certificate for ``key`` signed by ``issuer_key`` (SHA-256). ``ca=None`` omits basicConstraints."""
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(key)
               .serial_number(serial or x509.random_serial_number()).not_valid_before(not_before).not_valid_after(not_after))
    if ca is not None:
        builder = builder.add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


@dataclass
class TestAuthority:
    """The dev stack's attestation CA: an Android root and an App Attest root with their keys."""

    android_key: ec.EllipticCurvePrivateKey
    android_root: x509.Certificate
    apple_key: ec.EllipticCurvePrivateKey
    apple_root: x509.Certificate

    FILES = ("android-root.pem", "android-root-key.pem", "apple-root.pem", "apple-root-key.pem")

    @classmethod
    def create(cls, now: datetime | None = None) -> "TestAuthority":
        """Fresh P-384 roots valid for ten years from ``now``."""
        now = now or datetime.now(timezone.utc)
        android_key, apple_key = ec.generate_private_key(ec.SECP384R1()), ec.generate_private_key(ec.SECP384R1())
        android_name = _name(serial=os.urandom(8).hex(), cn="TrustGate DEV Android Attestation Root (not Google)")
        apple_name = _name(cn="TrustGate DEV App Attestation Root CA (not Apple)", o="TrustGate dev stack",
                           serial=os.urandom(8).hex())
        lifetime = dict(not_before=now - timedelta(days=1), not_after=now + timedelta(days=3650))
        return cls(android_key, issue(android_name, android_key.public_key(), android_name, android_key, **lifetime),
                   apple_key, issue(apple_name, apple_key.public_key(), apple_name, apple_key, **lifetime))

    def roots_pem(self) -> str:
        """Both roots as a PEM bundle: the value of ``ATTESTATION_TEST_ROOTS``."""
        return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in (self.android_root, self.apple_root))

    def save(self, directory: Path) -> None:
        """Write the four PEM files (keys mode 0600) into ``directory``."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        blobs = (self.android_root.public_bytes(serialization.Encoding.PEM), _key_pem(self.android_key),
                 self.apple_root.public_bytes(serialization.Encoding.PEM), _key_pem(self.apple_key))
        for name, data in zip(self.FILES, blobs):
            path = directory / name
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)

    @classmethod
    def load(cls, directory: Path) -> "TestAuthority":
        """Read an authority written by :meth:`save`; raises :class:`SimulationError` if absent."""
        try:
            a_cert, a_key, p_cert, p_key = ((directory / name).read_bytes() for name in cls.FILES)
        except OSError:
            raise SimulationError(f"no test attestation authority in {directory} (start the dev stack: make run)") from None
        return cls(serialization.load_pem_private_key(a_key, None), x509.load_pem_x509_certificate(a_cert),
                   serialization.load_pem_private_key(p_key, None), x509.load_pem_x509_certificate(p_cert))

    @classmethod
    def load_or_create(cls, directory: Path) -> "TestAuthority":
        """The authority in ``directory``, created (and saved) on first use."""
        try:
            return cls.load(directory)
        except SimulationError:
            authority = cls.create()
            authority.save(directory)
            return authority


def _key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


# --- Android KeyDescription ------------------------------------------------------------------

class _IntegerSet(core.SetOf):
    _child_spec = core.Integer


class _OctetSet(core.SetOf):
    _child_spec = core.OctetString


class _Level(core.Enumerated):
    _map = {0: "software", 1: "tee", 2: "strongbox"}


class _BootState(core.Enumerated):
    _map = {0: "verified", 1: "self_signed", 2: "unverified", 3: "failed"}


def _sequence(*items: core.Asn1Value, explicit: int | None = None) -> core.Sequence:
    contents = b"".join(item.dump() for item in items)
    return core.Sequence(contents=contents, explicit=explicit) if explicit else core.Sequence(contents=contents)


def key_description(challenge: bytes, *, package: str, signature_digest: bytes, security_level: str = "tee",
                    keymint_level: str | None = None, locked: bool = True, boot_state: int = 0,
                    os_patch_level: int = 202601, origin: int = 0, purposes: tuple[int, ...] = (2,),
                    creation: datetime | None = None, boot_key: bytes = b"\x00" * 32) -> bytes:
    """DER KeyDescription (attestation and KeyMint version 300) for an EC P-256 signing key.

    ``security_level``: ``software`` / ``tee`` / ``strongbox`` (``keymint_level`` defaults to it);
    ``origin`` 0 = GENERATED; ``boot_state`` 0 = VERIFIED. The application id (package and signer
    digest) goes into softwareEnforced, the rest into hardwareEnforced, as on a real device.
    """
    level, keymint = SECURITY_LEVELS[security_level], SECURITY_LEVELS[keymint_level or security_level]
    created = int(((creation or datetime.now(timezone.utc)) - EPOCH).total_seconds() * 1000)
    application_id = _sequence(
        core.SetOf(contents=_sequence(core.OctetString(package.encode()), core.Integer(1)).dump()),
        _OctetSet([signature_digest]),
    )
    software = _sequence(core.Integer(created, explicit=701),
                         core.OctetString(application_id.dump(), explicit=709))
    root_of_trust = _sequence(core.OctetString(boot_key), core.Boolean(locked), _BootState(boot_state),
                              core.OctetString(hashlib.sha256(b"dev boot").digest()), explicit=704)
    hardware = _sequence(
        _IntegerSet(list(purposes), explicit=1), core.Integer(3, explicit=2), core.Integer(256, explicit=3),
        core.Integer(1, explicit=10), core.Null(explicit=503), core.Integer(origin, explicit=702), root_of_trust,
        core.Integer(150000, explicit=705), core.Integer(os_patch_level, explicit=706),
        core.Integer(os_patch_level * 100 + 1, explicit=718), core.Integer(os_patch_level * 100 + 1, explicit=719),
    )
    return _sequence(core.Integer(300), _Level(level), core.Integer(300), _Level(keymint), core.OctetString(challenge),
                     core.OctetString(b""), software, hardware).dump()


def key_description_extension(value: bytes) -> x509.UnrecognizedExtension:
    """The certificate extension carrying a DER KeyDescription."""
    return x509.UnrecognizedExtension(KEY_DESCRIPTION_OID, value)


def android_chain(authority: TestAuthority, device_key: SigningKey, challenge: bytes, *, package: str,
                  signature_digest: bytes, security_level: str = "tee", provisioning: str = "factory",
                  now: datetime | None = None, **description) -> list[bytes]:
    """An Android Key Attestation chain (DER, leaf first, root last) for ``device_key``.

    ``provisioning``: ``factory`` (4 certificates, long-lived, subject ``serialNumber`` +
    ``title``) or ``remote`` (5 certificates, RKP-style ``Droid CA2``/``Droid CA3``, the attestation
    certificate naming the level in ``O``). ``description`` goes to :func:`key_description`.
    """
    now = now or datetime.now(timezone.utc)
    level_name = {"tee": "TEE", "strongbox": "StrongBox", "software": "Software"}[security_level]
    keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(3)]
    root_name, root_key = authority.android_root.subject, authority.android_key
    if provisioning == "remote":
        names = [_name(cn="Droid CA2", o="Google LLC"), _name(cn="Droid CA3", o="Google LLC"),
                 _name(o=level_name, cn=os.urandom(16).hex())]
        lifetimes = [(now - timedelta(days=30), now + timedelta(days=3650)), (now - timedelta(days=1), now + timedelta(days=60)),
                     (now - timedelta(hours=1), now + timedelta(days=30))]
    else:
        names = [_name(serial=os.urandom(8).hex(), title=level_name), _name(serial=os.urandom(8).hex(), title=level_name)]
        lifetimes = [(now - timedelta(days=1), now + timedelta(days=3650))] * 2
        keys = keys[:2]
    certificates, issuer_name, issuer_key = [], root_name, root_key
    for name, key, (start, end) in zip(names, keys, lifetimes):
        certificates.append(issue(name, key.public_key(), issuer_name, issuer_key, not_before=start, not_after=end))
        issuer_name, issuer_key = name, key
    value = key_description(challenge, package=package, signature_digest=signature_digest,
                            security_level=security_level, creation=now, **description)
    leaf = issue(_name(cn="Android Keystore Key"), device_key.public_key(), issuer_name, issuer_key, not_before=EPOCH,
                 not_after=LEAF_NOT_AFTER, ca=None, serial=1, extensions=((key_description_extension(value), False),))
    return [c.public_bytes(serialization.Encoding.DER) for c in [leaf, *reversed(certificates), authority.android_root]]


# --- Apple App Attest ------------------------------------------------------------------------

def _point(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)


def app_attest_key_id(key: ec.EllipticCurvePrivateKey) -> bytes:
    """The App Attest key identifier: SHA-256 of the uncompressed public point."""
    return hashlib.sha256(_point(key)).digest()


def _cose_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    numbers = key.public_key().public_numbers()
    return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})


def apple_attestation(authority: TestAuthority, key: ec.EllipticCurvePrivateKey, challenge: bytes, app_id: str, *,
                      environment: str = "development", counter: int = 0, now: datetime | None = None) -> tuple[bytes, bytes]:
    """``(key_id, attestation object CBOR)`` as ``DCAppAttestService.attestKey`` returns them for
    ``key`` (EC P-256) with ``clientDataHash = SHA-256(challenge)``."""
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SimulationError("App Attest keys are EC P-256 (device init --key-type p256)")
    now = now or datetime.now(timezone.utc)
    key_id = app_attest_key_id(key)
    auth_data = (hashlib.sha256(app_id.encode()).digest() + struct.pack(">BI", 0x40, counter) + AAGUIDS[environment]
                 + struct.pack(">H", len(key_id)) + key_id + _cose_key(key))
    nonce = hashlib.sha256(auth_data + hashlib.sha256(challenge).digest()).digest()
    nonce_extension = x509.UnrecognizedExtension(
        APP_ATTEST_NONCE_OID, core.Sequence(contents=core.OctetString(nonce, explicit=1).dump()).dump())
    intermediate_key = ec.generate_private_key(ec.SECP384R1())
    intermediate_name = _name(cn="TrustGate DEV App Attestation CA 1", o="TrustGate dev stack")
    intermediate = issue(intermediate_name, intermediate_key.public_key(), authority.apple_root.subject, authority.apple_key,
                         not_before=now - timedelta(days=1), not_after=now + timedelta(days=365))
    credential = issue(_name(cn=key_id.hex(), o="TrustGate dev stack"), key.public_key(), intermediate_name, intermediate_key,
                       not_before=now - timedelta(minutes=5), not_after=now + timedelta(days=3), ca=False,
                       extensions=((nonce_extension, False),))
    x5c = [c.public_bytes(serialization.Encoding.DER) for c in (credential, intermediate)]
    document = {"fmt": "apple-appattest", "attStmt": {"x5c": x5c, "receipt": b"dev-receipt"}, "authData": auth_data}
    return key_id, cbor2.dumps(document)


def apple_assertion(key: ec.EllipticCurvePrivateKey, client_data: bytes, app_id: str, counter: int) -> bytes:
    """An assertion as ``DCAppAttestService.generateAssertion`` returns it (CBOR
    ``{signature, authenticatorData}``) over ``client_data`` with ``counter``."""
    auth_data = hashlib.sha256(app_id.encode()).digest() + struct.pack(">BI", 0x00, counter)
    nonce = hashlib.sha256(auth_data + hashlib.sha256(client_data).digest()).digest()
    return cbor2.dumps({"signature": key.sign(nonce, ec.ECDSA(hashes.SHA256())), "authenticatorData": auth_data})


# --- dev stack defaults (devhost configures the server with the same) -------------------------

#: The app identity the dev stack's server expects and simulated devices claim.
DEV_PACKAGE = "com.example.trustgate.dev"
DEV_SIGNER_DIGEST = hashlib.sha256(b"TrustGate dev app signing certificate").digest()
DEV_APP_ID = "DEVTEAM123.com.example.trustgate.dev"
AUTHORITY_ENV = "TRUSTGATE_TEST_AUTHORITY"


def default_authority_dir() -> Path:
    """Where the dev stack keeps its test authority: ``$TRUSTGATE_TEST_AUTHORITY``, else
    ``.devhost/test-authority`` in the current directory (the repository root for ``make run``)."""
    return Path(os.environ.get(AUTHORITY_ENV) or Path.cwd() / ".devhost" / "test-authority")


def extended_chain(chain: list[bytes], holder_key: SigningKey, challenge: bytes, *, package: str,
                   signature_digest: bytes, now: datetime | None = None) -> list[bytes]:
    """The chain-extension attack (for tests and the demo): whoever holds an attested key (a rooted
    device) issues, under the genuine leaf, a certificate for a fresh key with a forged
    KeyDescription claiming everything a verifier wants. Every signature verifies; only a verifier
    that refuses a KeyDescription below the leaf (``extension_misplaced``) catches it."""
    genuine = x509.load_der_x509_certificate(chain[0])
    forged_key = ec.generate_private_key(ec.SECP256R1())
    value = key_description(challenge, package=package, signature_digest=signature_digest, creation=now)
    forged = issue(_name(cn="Android Keystore Key"), forged_key.public_key(), genuine.subject, holder_key,
                   not_before=EPOCH, not_after=LEAF_NOT_AFTER, ca=None,
                   extensions=((key_description_extension(value), False),))
    return [forged.public_bytes(serialization.Encoding.DER), *chain]
