"""Play Integrity on the test side: verdict payloads, locally sealed tokens, and a fake Google.

- :func:`payload` builds a verdict payload in the shape of Google's "Integrity verdicts" page,
  passing every TrustGate check by default; keyword arguments break one field at a time.
- :class:`LocalKeys` are a test app's Play Console response keys (AES-256 + EC P-256) and
  :meth:`LocalKeys.seal` makes a token the way Play does: JWS ES256 inside JWE A256KW/A256GCM.
- :class:`FakeGoogle` is a threaded HTTP server with Google's OAuth token endpoint (checks the
  RS256-signed JWT-bearer assertion against the test service account's public key, RFC 7523)
  and ``/v1/{package}:decodeIntegrityToken`` answering the payloads registered with
  :meth:`FakeGoogle.issue`; ``behaviour`` makes it answer 401, 500, or hang.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Iterator
from urllib.parse import parse_qs

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from joserfc import jwe, jws
from joserfc.jwk import ECKey, OctKey

from shared_code.devices.integrity.decode import SCOPE
from shared_code.platform import config

PACKAGE = "com.example.trustgate"
CERT_DIGEST = base64.urlsafe_b64encode(b"\x42" * 32).decode().rstrip("=")
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
# The audience Google requires in service-account assertions, whatever token_uri they are sent to.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"


def payload(*, nonce: str | None = None, request_hash: str | None = None, package: str = PACKAGE,
            request_package: str | None = None, timestamp_ms: int | None = None, app_verdict: str = "PLAY_RECOGNIZED", cert: str = CERT_DIGEST,
            device: tuple[str, ...] = ("MEETS_DEVICE_INTEGRITY",), licensing: str = "LICENSED",
            app_package: str | None = None, version_code: str = "42", play_protect: str | None = None,
            apps_detected: tuple[str, ...] | None = None, activity: str | None = None,
            testing: bool | None = None) -> dict[str, Any]:
    """A verdict payload (classic with ``nonce``, standard with ``request_hash``).

    ``package`` is the app's real package; ``request_package`` overrides only
    ``requestDetails.requestPackageName`` (which Google notes can be spoofed in transit) and
    ``app_package`` only ``appIntegrity.packageName``. The newer, optional verdict fields
    (``play_protect``, ``apps_detected``, ``activity``, ``testing``) are left out unless given.
    """
    details: dict[str, Any] = {
        "requestPackageName": request_package or package,
        "timestampMillis": str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms),
    }
    if nonce is not None:
        details["nonce"] = nonce
    if request_hash is not None:
        details["requestHash"] = request_hash
    document: dict[str, Any] = {
        "requestDetails": details,
        "appIntegrity": {"appRecognitionVerdict": app_verdict, "packageName": app_package or package,
                         "certificateSha256Digest": [cert], "versionCode": version_code},
        "deviceIntegrity": {"deviceRecognitionVerdict": list(device)},
        "accountDetails": {"appLicensingVerdict": licensing},
    }
    environment: dict[str, Any] = {}
    if play_protect is not None:
        environment["playProtectVerdict"] = play_protect
    if apps_detected is not None:
        environment["appAccessRiskVerdict"] = {"appsDetected": list(apps_detected)}
    if environment:
        document["environmentDetails"] = environment
    if activity is not None:
        document["deviceIntegrity"]["recentDeviceActivity"] = {"deviceActivityLevel": activity}
    if testing is not None:
        document["testingDetails"] = {"isTestingResponse": testing}
    return document


def policy_settings() -> dict[str, str]:
    """The verdict-policy settings the default :func:`payload` passes."""
    return {
        "PLAY_INTEGRITY_PACKAGE_NAME": PACKAGE,
        "PLAY_INTEGRITY_CERT_DIGESTS": CERT_DIGEST,
        "PLAY_INTEGRITY_MIN_DEVICE": "DEVICE",
        "PLAY_INTEGRITY_REQUIRE_LICENSED": "true",
        "PLAY_INTEGRITY_MAX_AGE_SECONDS": "300",
        "PLAY_INTEGRITY_TIMEOUT_SECONDS": "1",
    }


def _der_public(key) -> str:
    der = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(der).decode()


@dataclass
class LocalKeys:
    """A test app's response keys: ``aes`` (32 bytes) and the EC P-256 signing key Play would hold."""

    aes: bytes = field(default_factory=lambda: os.urandom(32))
    signer: ec.EllipticCurvePrivateKey = field(default_factory=lambda: ec.generate_private_key(ec.SECP256R1()))

    def settings(self) -> dict[str, str]:
        return {
            "PLAY_INTEGRITY_MODE": "local",
            "PLAY_INTEGRITY_DECRYPTION_KEY": base64.b64encode(self.aes).decode(),
            "PLAY_INTEGRITY_VERIFICATION_KEY": _der_public(self.signer),
        }

    def seal(self, document: dict[str, Any], *, jws_alg: str = "ES256", jwe_alg: str = "A256KW",
             signer: Any = None, aes: bytes | None = None) -> str:
        """``document`` signed (JWS) then encrypted (JWE), compact; arguments allow wrong algorithms/keys."""
        signing_key = ECKey.import_key(signer or self.signer) if jws_alg.startswith("ES") else signer
        inner = jws.serialize_compact({"alg": jws_alg}, json.dumps(document), signing_key, algorithms=[jws_alg])
        return jwe.encrypt_compact({"alg": jwe_alg, "enc": "A256GCM"}, inner, OctKey.import_key(aes or self.aes),
                                   algorithms=[jwe_alg, "A256GCM"])


def free_port() -> int:
    """A TCP port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_account(token_uri: str, key: rsa.RSAPrivateKey | None = None) -> tuple[dict[str, Any], rsa.RSAPrivateKey]:
    """A service-account JSON document (test key, ``token_uri`` of the fake) and its private key."""
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    info = {
        "type": "service_account", "project_id": "trustgate-test", "private_key_id": secrets.token_hex(20),
        "private_key": pem, "client_email": "verifier@trustgate-test.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": token_uri,
    }
    return info, key


class FakeGoogle:
    """Google's token endpoint and Play Integrity decode endpoint on 127.0.0.1.

    ``behaviour``: ``"ok"``, ``"token_500"`` (the token endpoint fails), ``"decode_401"``,
    ``"decode_500"`` or ``"hang"`` (the decode endpoint answers nothing until the fake stops). ``decode_calls`` counts decode requests that got past
    authorisation; ``token_requests`` counts assertions checked.
    """

    def __init__(self, account_public_key: rsa.RSAPublicKey, client_email: str):
        self._public_key = account_public_key
        self._client_email = client_email
        self._payloads: dict[str, dict[str, Any]] = {}
        self._access_tokens: set[str] = set()
        self._stop = threading.Event()
        self.behaviour = "ok"
        self.decode_calls = 0
        self.token_requests = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self.token_uri = f"{self.base_url}/token"

    def issue(self, document: dict[str, Any]) -> str:
        """Register ``document`` and return an opaque token shaped like a compact JWE."""
        token = ".".join(secrets.token_urlsafe(24) for _ in range(5))
        self._payloads[token] = document
        return token

    @contextlib.contextmanager
    def running(self) -> Iterator["FakeGoogle"]:
        thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._stop.set()
            self._server.shutdown()
            self._server.server_close()

    # -- endpoints ----------------------------------------------------------------------

    def _token(self, form: dict[str, list[str]]) -> tuple[int, dict[str, Any]]:
        self.token_requests += 1
        if self.behaviour == "token_500":
            return 500, {"error": "internal_failure"}
        if form.get("grant_type") != [JWT_BEARER] or len(form.get("assertion", [])) != 1:
            return 400, {"error": "unsupported_grant_type"}
        try:
            claims = jwt.decode(form["assertion"][0], self._public_key, algorithms=["RS256"], audience=GOOGLE_TOKEN_AUDIENCE,
                                issuer=self._client_email, options={"require": ["exp", "iat", "aud", "iss"]})
        except jwt.PyJWTError:
            return 401, {"error": "invalid_client", "error_description": "assertion does not verify"}
        if SCOPE not in str(claims.get("scope", "")).split():
            return 400, {"error": "invalid_scope"}
        access_token = secrets.token_urlsafe(32)
        self._access_tokens.add(access_token)
        return 200, {"access_token": access_token, "expires_in": 3600, "token_type": "Bearer"}

    def _decode(self, path: str, authorization: str, body: bytes) -> tuple[int, dict[str, Any]]:
        if self.behaviour == "decode_401" or authorization.removeprefix("Bearer ") not in self._access_tokens:
            return 401, {"error": {"code": 401, "status": "UNAUTHENTICATED"}}
        if self.behaviour == "decode_500":
            return 500, {"error": {"code": 500, "status": "INTERNAL"}}
        self.decode_calls += 1
        if self.behaviour == "hang":
            self._stop.wait(30)
            return 504, {}
        try:
            token = json.loads(body)["integrity_token"]
        except (ValueError, KeyError, TypeError):
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}
        package = path.removeprefix("/v1/").removesuffix(":decodeIntegrityToken")
        document = self._payloads.get(token)
        if document is None or document["appIntegrity"]["packageName"] != package:
            return 400, {"error": {"code": 400, "status": "INVALID_ARGUMENT"}}
        return 200, {"tokenPayloadExternal": document}

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                if self.path == "/token":
                    status, document = fake._token(parse_qs(body.decode()))
                elif self.path.startswith("/v1/") and self.path.endswith(":decodeIntegrityToken"):
                    status, document = fake._decode(self.path, self.headers.get("authorization", ""), body)
                else:
                    status, document = 404, {"error": "not_found"}
                data = json.dumps(document).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

        return Handler


@contextlib.contextmanager
def fake_google() -> Iterator[tuple[FakeGoogle, dict[str, str]]]:
    """A running :class:`FakeGoogle` and the settings pointing TrustGate's google mode at it."""
    info, key = service_account("http://placeholder/token")
    fake = FakeGoogle(key.public_key(), info["client_email"])
    info["token_uri"] = fake.token_uri
    settings = {
        "PLAY_INTEGRITY_MODE": "google",
        "PLAY_INTEGRITY_CREDENTIALS": json.dumps(info),
        "PLAY_INTEGRITY_API_BASE": fake.base_url,
    }
    with fake.running():
        yield fake, settings


@pytest.fixture
def configure(monkeypatch) -> Iterator[Callable[[dict[str, str]], None]]:
    """``configure(values)`` sets app settings for one test (environment + fresh settings cache)."""

    def apply(values: dict[str, str]) -> None:
        for name, value in values.items():
            monkeypatch.setenv(name, value)
        config.reset_settings()

    yield apply
    config.reset_settings()  # runs before monkeypatch restores the environment; next read is fresh
