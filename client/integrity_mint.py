"""DEV ONLY: local-mode Play Integrity tokens, sealed as Google Play seals them.

The dev stack (``python -m devhost``) generates the app's Play Console response keys (AES-256
decryption key, EC P-256 verification key) into ``<test authority>/play-integrity.json`` and
runs the server in ``PLAY_INTEGRITY_MODE=local`` with them. :func:`mint_token` makes the token the
Android app would get from Play: a JWS (ES256) of the verdict payload inside a JWE (A256KW +
A256GCM), per developer.android.com/google/play/integrity/classic ("Decrypt and verify the
integrity verdict"); joserfc does the JOSE work.
"""

from __future__ import annotations

import base64
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from client.attestation_sim import DEV_PACKAGE, DEV_SIGNER_DIGEST

KEYS_FILE = "play-integrity.json"


@dataclass
class PlayIntegrityDevKeys:
    """A dev app's response keys and identity (package, signing certificate digest)."""

    aes: bytes
    signer: ec.EllipticCurvePrivateKey
    package: str = DEV_PACKAGE
    cert_digest: str = base64.urlsafe_b64encode(DEV_SIGNER_DIGEST).decode().rstrip("=")

    @classmethod
    def create(cls) -> "PlayIntegrityDevKeys":
        return cls(os.urandom(32), ec.generate_private_key(ec.SECP256R1()))

    def settings(self) -> dict[str, str]:
        """The server settings for local mode with these keys."""
        der = self.signer.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"PLAY_INTEGRITY_MODE": "local", "PLAY_INTEGRITY_DECRYPTION_KEY": base64.b64encode(self.aes).decode(),
                "PLAY_INTEGRITY_VERIFICATION_KEY": base64.b64encode(der).decode(),
                "PLAY_INTEGRITY_PACKAGE_NAME": self.package, "PLAY_INTEGRITY_CERT_DIGESTS": self.cert_digest}

    def save(self, directory: Path) -> None:
        """Write ``play-integrity.json`` (mode 0600) into ``directory``."""
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        pem = self.signer.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                        serialization.NoEncryption()).decode()
        document = {"decryption_key": base64.b64encode(self.aes).decode(), "signing_key": pem,
                    "package_name": self.package, "certificate_digest": self.cert_digest}
        fd = os.open(directory / KEYS_FILE, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(document, handle)

    @classmethod
    def load(cls, directory: Path) -> "PlayIntegrityDevKeys":
        """Read ``play-integrity.json``; raises ``OSError`` / ``ValueError`` if absent or broken."""
        document = json.loads((directory / KEYS_FILE).read_text())
        return cls(base64.b64decode(document["decryption_key"]),
                   serialization.load_pem_private_key(document["signing_key"].encode(), None),
                   document["package_name"], document["certificate_digest"])

    @classmethod
    def load_or_create(cls, directory: Path) -> "PlayIntegrityDevKeys":
        try:
            return cls.load(directory)
        except (OSError, ValueError, KeyError):
            keys = cls.create()
            keys.save(directory)
            return keys


def verdict_payload(keys: PlayIntegrityDevKeys, *, nonce: str | None = None, request_hash: str | None = None,
                    device: tuple[str, ...] = ("MEETS_DEVICE_INTEGRITY",), app_verdict: str = "PLAY_RECOGNIZED",
                    licensing: str = "LICENSED") -> dict[str, Any]:
    """A verdict payload in the shape of developer.android.com/google/play/integrity/verdicts."""
    details: dict[str, Any] = {"requestPackageName": keys.package, "timestampMillis": str(int(time.time() * 1000))}
    if nonce is not None:
        details["nonce"] = nonce
    if request_hash is not None:
        details["requestHash"] = request_hash
    return {
        "requestDetails": details,
        "appIntegrity": {"appRecognitionVerdict": app_verdict, "packageName": keys.package,
                         "certificateSha256Digest": [keys.cert_digest], "versionCode": "1"},
        "deviceIntegrity": {"deviceRecognitionVerdict": list(device)},
        "accountDetails": {"appLicensingVerdict": licensing},
        "environmentDetails": {"playProtectVerdict": "NO_ISSUES", "appAccessRiskVerdict": {"appsDetected": ["KNOWN_INSTALLED"]}},
    }


def mint_token(keys: PlayIntegrityDevKeys, payload: dict[str, Any]) -> str:
    """``payload`` signed (JWS ES256) then encrypted (JWE A256KW + A256GCM), compact."""
    from joserfc import jwe, jws
    from joserfc.jwk import ECKey, OctKey

    inner = jws.serialize_compact({"alg": "ES256"}, json.dumps(payload), ECKey.import_key(keys.signer), algorithms=["ES256"])
    return jwe.encrypt_compact({"alg": "A256KW", "enc": "A256GCM"}, inner, OctKey.import_key(keys.aes),
                               algorithms=["A256KW", "A256GCM"])
