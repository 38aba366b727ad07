"""Device-side helpers for tests: keys, signatures, and requests for the device handlers."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass, field
from typing import Any

import azure.functions as func
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from urllib3 import encode_multipart_formdata

import function_app
from devhost.server import indexed_functions

# get_functions() may run only once per app and process; devhost's indexer remembers the result.
HANDLERS = {f.get_function_name(): f.get_user_function() for f in indexed_functions(function_app.app)}


def new_key(kind: str = "p256"):
    """A private key: p256 | p384 | rsa2048 | rsa-pss | ed25519 | p521 | k256 | rsa1024."""
    if kind in ("p256", "p384", "p521", "k256"):
        curve = {"p256": ec.SECP256R1(), "p384": ec.SECP384R1(), "p521": ec.SECP521R1(), "k256": ec.SECP256K1()}[kind]
        return ec.generate_private_key(curve)
    if kind in ("rsa2048", "rsa-pss"):
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    if kind == "rsa1024":
        return rsa.generate_private_key(public_exponent=65537, key_size=1024)
    if kind == "ed25519":
        return ed25519.Ed25519PrivateKey.generate()
    raise ValueError(kind)


def public_pem(key) -> str:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def sign(key, message: bytes, pss: bool = False) -> str:
    """Base64 signature over ``message`` with the scheme the server expects for ``key``."""
    if isinstance(key, ec.EllipticCurvePrivateKey):
        digest = hashes.SHA384() if key.curve.name == "secp384r1" else hashes.SHA256()
        raw = key.sign(message, ec.ECDSA(digest))
    elif isinstance(key, rsa.RSAPrivateKey):
        scheme = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32) if pss else padding.PKCS1v15()
        raw = key.sign(message, scheme, hashes.SHA256())
    else:
        raw = key.sign(message)
    return base64.b64encode(raw).decode()


def respond(name: str, method: str, path: str, *, headers: dict | None = None, body: bytes = b"",
            params: dict | None = None, route_params: dict | None = None) -> func.HttpResponse:
    """Invoke a registered handler directly; returns its response (status, headers, body)."""
    req = func.HttpRequest(method, f"http://localhost/{path}", headers=headers or {}, params=params or {}, body=body,
                           route_params=route_params or {})
    return HANDLERS[name](req)


def call(name: str, method: str, path: str, *, headers: dict | None = None, body: bytes = b"",
         params: dict | None = None, route_params: dict | None = None) -> tuple[int, dict[str, Any]]:
    """Invoke a registered handler directly; returns ``(status, parsed JSON body)``."""
    resp = respond(name, method, path, headers=headers, body=body, params=params, route_params=route_params)
    return resp.status_code, json.loads(resp.get_body())


def run_blob_trigger(blob_name: str) -> None:
    """Invoke the upload blob trigger for ``blob_name`` (relative to the uploads container) the way
    the host does: with a BlobClient for the blob (SDK-type binding)."""
    from shared_code.platform import blobs
    from shared_code.platform.config import get_settings

    HANDLERS["record_upload"](blobs.container_client(get_settings().uploads_container).get_blob_client(blob_name))


def json_body(document: Any) -> tuple[dict, bytes]:
    return {"content-type": "application/json"}, json.dumps(document).encode()


@dataclass
class DeviceActor:
    """A registered (optionally attested) device driven through the handlers."""

    deviceid: str = field(default_factory=lambda: "dev-" + secrets.token_hex(8))
    token: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    key: Any = None

    @property
    def headers(self) -> dict[str, str]:
        return {"deviceid": self.deviceid, "deviceToken": self.token}

    def record(self) -> dict[str, Any] | None:
        """The device's stored record, read straight from Cosmos DB."""
        from shared_code.platform import cosmos

        return cosmos.read_item(cosmos.DEVICES, self.deviceid, self.deviceid)

    def register(self) -> tuple[int, dict]:
        h, b = json_body({"deviceid": self.deviceid, "deviceToken": self.token})
        return call("register_device", "POST", "register-device", headers=h, body=b)

    def challenge(self) -> str:
        status, body = call("get_challenge", "GET", "api/challenge", headers=self.headers)
        assert status == 200, body
        return body["challenge"]

    def attest(self, kind: str = "p256", key=None, challenge: str | None = None, pss: bool = False) -> tuple[int, dict]:
        key = key or new_key(kind)
        challenge = challenge or self.challenge()
        h, b = json_body({"public_key": public_pem(key), "challenge": challenge,
                          "signature": sign(key, f"attest:{challenge}".encode(), pss=pss)})
        status, body = call("attest_device", "POST", "attest-device", headers={**self.headers, **h}, body=b)
        if status == 200:
            self.key = key
        return status, body

    def upload_request(self, data: bytes, *, filename: str = "report.txt", content_type: str = "text/plain",
                       challenge: str | None = None, signed_data: bytes | None = None,
                       extra: dict | None = None) -> tuple[dict, bytes]:
        challenge = challenge or self.challenge()
        digest = hashlib.sha256(data if signed_data is None else signed_data).hexdigest()
        fields: dict[str, Any] = {
            "challenge": challenge,
            "signed_challenge": sign(self.key, f"upload:{challenge}:{digest}".encode()),
            **(extra or {}),
            "file": (filename, data, content_type),
        }
        body, ctype = encode_multipart_formdata(fields)
        return {**self.headers, "content-type": ctype, "content-length": str(len(body))}, body

    def upload(self, data: bytes, **kwargs) -> tuple[int, dict]:
        headers, body = self.upload_request(data, **kwargs)
        return call("upload_file", "POST", "upload-file", headers=headers, body=body)
