"""A fake attestation PKI for tests: genuine-looking evidence under a test authority, and the
ways to break it one check at a time.

Builds on the client's simulator (:mod:`client.attestation_sim`, what ``device attest
--simulate`` sends) and adds the attacks and faults a real verifier must refuse: a tampered
signature, a chain extended with a forged attestation certificate, an untrusted authority.
The real-device vectors live in ``tests/fixtures/attestation/`` (see its README).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from client import attestation_sim as sim
from devhost.test_authority import StatusListServer
from shared_code.devices.attestation.android import AndroidPolicy
from shared_code.devices.attestation.apple import AppleExpectations
from shared_code.devices.attestation.roots import trust_store
from shared_code.devices.attestation.verifier import AndroidEvidence, AppleEvidence, VerifierConfig

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "attestation"
PACKAGE = "com.example.trustgate"
SIGNER = hashlib.sha256(b"trustgate test app signing certificate").digest()
APP_ID = "TEAMID1234.com.example.trustgate"
NOW = datetime(2026, 11, 21, 12, 0, tzinfo=timezone.utc)
CHALLENGE = b"challenge bytes from /api/challenge"


def der(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.DER)


@dataclass
class FakePki:
    """A test authority, a device key and the verifier configuration that trusts the authority."""

    authority: sim.TestAuthority = field(default_factory=lambda: sim.TestAuthority.create(NOW - timedelta(days=30)))
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def config(self, *, allow_unlocked: bool = False, min_patch_level: int | None = None,
               environment: str = "development") -> VerifierConfig:
        return VerifierConfig(trust_store(self.authority.roots_pem()),
                              AndroidPolicy(frozenset({PACKAGE}), frozenset({SIGNER}), allow_unlocked, min_patch_level),
                              AppleExpectations(frozenset({APP_ID}), environment))

    def android_chain(self, **kwargs: Any) -> list[bytes]:
        """A chain that passes every check at :data:`NOW` for :data:`CHALLENGE`; ``kwargs`` go
        to :func:`client.attestation_sim.android_chain` (and on to its KeyDescription)."""
        values = dict(package=PACKAGE, signature_digest=SIGNER, now=NOW)
        return sim.android_chain(self.authority, self.key, kwargs.pop("challenge", CHALLENGE), **{**values, **kwargs})

    def android(self, **kwargs: Any) -> AndroidEvidence:
        return AndroidEvidence(tuple(self.android_chain(**kwargs)))

    def apple(self, *, challenge: bytes = CHALLENGE, app_id: str = APP_ID, key_id: bytes | None = None,
              **kwargs: Any) -> AppleEvidence:
        found_id, document = sim.apple_attestation(self.authority, self.key, challenge, app_id, now=NOW, **kwargs)
        return AppleEvidence(key_id or found_id, document)


def tampered_signature(certificate_der: bytes) -> bytes:
    """The certificate with one bit of its signature flipped (the TBS part unchanged)."""
    return certificate_der[:-3] + bytes([certificate_der[-3] ^ 0x01]) + certificate_der[-2:]


def extend_chain_as_device(chain: list[bytes], device_key: ec.EllipticCurvePrivateKey,
                           challenge: bytes = CHALLENGE) -> list[bytes]:
    """The chain-extension attack (:func:`client.attestation_sim.extended_chain`) with the test app identity."""
    return sim.extended_chain(chain, device_key, challenge, package=PACKAGE, signature_digest=SIGNER, now=NOW)


# --- the real-device vectors ------------------------------------------------------------------

@dataclass(frozen=True)
class AndroidVector:
    """A real chain (``tests/fixtures/attestation/android/<device>/sdk<N>/<name>.pem``) and its expected parse."""

    name: str
    chain: tuple[bytes, ...]
    expected: dict[str, Any]

    @property
    def pinned_time(self) -> datetime:
        """The key's ``creationDateTime``: the moment the chain was valid (RKP intermediates expire in weeks)."""
        created = self.expected["softwareEnforced"].get("creationDateTime") or self.expected["hardwareEnforced"]["creationDateTime"]
        return datetime.fromtimestamp(int(created) / 1000, tz=timezone.utc)

    @property
    def challenge(self) -> bytes:
        return base64.b64decode(self.expected["attestationChallenge"])

    def policy(self, **overrides: Any) -> AndroidPolicy:
        """A policy the vector's own app identity satisfies (test devices are often unlocked)."""
        app = self.expected["softwareEnforced"]["attestationApplicationId"]
        values = dict(packages=frozenset(p["name"] for p in app["packages"]),
                      signature_digests=frozenset(base64.b64decode(s) for s in app["signatures"]), allow_unlocked=True)
        return AndroidPolicy(**{**values, **overrides})


def pem_chain(path: Path) -> tuple[bytes, ...]:
    return tuple(der(c) for c in x509.load_pem_x509_certificates(path.read_bytes()))


def android_vectors() -> list[AndroidVector]:
    """Every real device chain with an expected parse (``invalid/`` has none and is read by name)."""
    return [AndroidVector(str(path.relative_to(FIXTURES / "android").with_suffix("")), pem_chain(path),
                          json.loads(path.with_suffix(".json").read_text()))
            for path in sorted((FIXTURES / "android").glob("*/sdk*/*.pem"))]


def apple_vectors() -> list[dict[str, Any]]:
    """Per iOS version: ``{name, attestation, assertion}`` documents of the YAML streams."""
    import yaml

    found = []
    for path in sorted((FIXTURES / "apple").glob("ios-*.yaml")):
        documents = list(yaml.safe_load_all(path.read_text()))
        found.append({"name": path.stem,
                      "attestation": next(d for d in documents if d["type"] == "attestation"),
                      "assertion": next(d for d in documents if d["type"] == "assertion")})
    return found


# --- a local attestation status endpoint ------------------------------------------------------

class FakeStatusList(StatusListServer):
    """Google's attestation status endpoint on 127.0.0.1 (:class:`devhost.test_authority.StatusListServer`)
    answering ``{"entries": {serial: {"status", "reason"}}}``. ``revoke`` / ``suspend`` add entries,
    ``behaviour = "down"`` answers 500, ``"garbage"`` a body that is not the document; ``requests``
    counts the GETs."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, str]] = {}
        self.behaviour = "ok"
        self.requests = 0
        super().__init__(self._respond)

    def _respond(self) -> tuple[int, bytes]:
        self.requests += 1
        if self.behaviour == "down":
            return 500, b"{}"
        if self.behaviour == "garbage":
            return 200, b"<html>not the list</html>"
        return 200, json.dumps({"entries": self.entries}).encode()

    def revoke(self, serial: str) -> None:
        self.entries[serial] = {"status": "REVOKED", "reason": "KEY_COMPROMISE"}

    def suspend(self, serial: str) -> None:
        self.entries[serial] = {"status": "SUSPENDED", "reason": "SOFTWARE_FLAW"}


# --- request bodies for the device handlers ----------------------------------------------------

def raw(challenge: str) -> bytes:
    """A challenge's raw bytes (what a device puts into its evidence)."""
    return base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))


def attest(actor: Any, document: dict) -> tuple[int, dict]:
    """POST /attest-device ``document`` as ``actor`` (a :class:`tests.support.devices.DeviceActor`)."""
    from tests.support.devices import call, json_body

    headers, body = json_body(document)
    return call("attest_device", "POST", "attest-device", headers={**actor.headers, **headers}, body=body)


def chain_for(pki: FakePki, key: ec.EllipticCurvePrivateKey, challenge: str, **options: Any) -> list[bytes]:
    """An ``android-key`` chain under ``pki`` for ``key`` and ``challenge``, with the test app identity."""
    return sim.android_chain(pki.authority, key, raw(challenge), package=PACKAGE, signature_digest=SIGNER, **options)


def android_body(pki: FakePki, challenge: str, chain: list[bytes] | None = None, **kwargs: Any) -> dict:
    """An ``android-key`` evidence body for ``challenge`` (``pki.key`` attested unless ``chain`` is given)."""
    options = {"package": PACKAGE, "signature_digest": SIGNER, **kwargs}
    chain = chain or sim.android_chain(pki.authority, pki.key, raw(challenge), **options)
    return {"format": "android-key", "challenge": challenge, "certificate_chain": [base64.b64encode(c).decode() for c in chain]}


def apple_body(pki: FakePki, key: Any, challenge: str, **kwargs: Any) -> dict:
    """An ``apple-appattest`` evidence body for ``key`` and ``challenge``."""
    key_id, document = sim.apple_attestation(pki.authority, key, raw(challenge), APP_ID, **kwargs)
    return {"format": "apple-appattest", "challenge": challenge, "key_id": base64.b64encode(key_id).decode(),
            "attestation_object": base64.b64encode(document).decode()}


@dataclass
class SharedIntermediate:
    """An intermediate CA under ``pki``'s Android root that signs the attestation certificates of
    several devices (as a real batch or RKP intermediate does), so revoking its serial names them all."""

    pki: FakePki
    key: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def __post_init__(self) -> None:
        now = datetime.now(timezone.utc)
        self.name = sim._name(serial=secrets.token_hex(8), title="TEE")
        self.certificate = sim.issue(self.name, self.key.public_key(), self.pki.authority.android_root.subject,
                                     self.pki.authority.android_key, not_before=now - timedelta(days=1),
                                     not_after=now + timedelta(days=3650))

    @property
    def serial(self) -> str:
        """The intermediate's serial as the sweep compares them (lowercase hex)."""
        return format(self.certificate.serial_number, "x")

    def chain(self, device_key: ec.EllipticCurvePrivateKey, challenge: str) -> list[bytes]:
        """root → this intermediate → a per-device attestation certificate → the key's leaf."""
        now = datetime.now(timezone.utc)
        batch_key = ec.generate_private_key(ec.SECP256R1())
        batch_name = sim._name(serial=secrets.token_hex(8), title="TEE")
        batch = sim.issue(batch_name, batch_key.public_key(), self.name, self.key, not_before=now - timedelta(days=1),
                          not_after=now + timedelta(days=3650))
        value = sim.key_description(raw(challenge), package=PACKAGE, signature_digest=SIGNER, creation=now)
        leaf = sim.issue(sim._name(cn="Android Keystore Key"), device_key.public_key(), batch_name, batch_key,
                         not_before=sim.EPOCH, not_after=sim.LEAF_NOT_AFTER, ca=None, serial=1,
                         extensions=((sim.key_description_extension(value), False),))
        return [der(c) for c in (leaf, batch, self.certificate, self.pki.authority.android_root)]
