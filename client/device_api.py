"""Device-side library for the TrustGate HTTP API (used by the CLI, the demo, e2e tests, benchmarks).

Every method returns the server's parsed JSON object (a ``dict`` with ``code`` and ``message``
plus the endpoint's fields) and raises:

- :class:`ClientError` when the server answers with an error status (its ``status``,
  snake_case ``message`` and human ``detail``), or with a success status but no JSON object;
- :class:`TransportError` when the server cannot be reached or does not answer in time.

Example::

    from client.device_api import DeviceClient
    from client.keys import generate_private_key

    device = DeviceClient("http://localhost:7071", "dev-1", token, generate_private_key())
    device.register()
    device.attest()
    result = device.upload("report.pdf")          # {"file_id", "blob_name", "sha256", "size", ...}
    names = [f["name"] for f in device.iter_files()]
"""

from __future__ import annotations

import base64
import hashlib
import mimetypes
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import requests
from requests_toolbelt.multipart.encoder import MultipartEncoder, MultipartEncoderMonitor

from client.keys import (
    PrivateKey,
    attest_message,
    direct_upload_message,
    public_key_pem,
    rotation_message,
    sign,
    token_rotation_message,
    upload_message,
)
from client.state import DeviceState, load_private_key

DEFAULT_TIMEOUT = 60.0
HASH_CHUNK_BYTES = 1024 * 1024
DEFAULT_CONTENT_TYPE = "application/octet-stream"

#: ``progress(bytes_sent, total_bytes)``, both counting the whole multipart body.
ProgressCallback = Callable[[int, int], None]


class ClientError(Exception):
    """The server refused a request.

    ``status`` is the HTTP status, ``message`` the server's snake_case id (``device_exists``,
    ``invalid_signature`` …; ``http_error`` / ``invalid_response`` when the body was not the
    API's JSON), ``detail`` its human explanation or ``""``.
    """

    def __init__(self, status: int, message: str, detail: str = ""):
        self.status = status
        self.message = message
        self.detail = detail
        super().__init__(f"{message} ({status}): {detail}" if detail else f"{message} ({status})")


class TransportError(Exception):
    """The server could not be reached, or did not answer within the timeout."""


def b64(signature: bytes) -> str:
    """Standard, padded base64 text of ``signature`` (the encoding the API expects)."""
    return base64.b64encode(signature).decode("ascii")


def standard_request_hash(deviceid: str, challenge: str) -> str:
    """The ``requestHash`` a Play Integrity standard request must carry for ``POST /verify``:
    unpadded base64url of ``SHA-256(UTF-8 "{deviceid}:{challenge}")``."""
    digest = hashlib.sha256(f"{deviceid}:{challenge}".encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def sha256_file(handle: BinaryIO, chunk_bytes: int = HASH_CHUNK_BYTES) -> tuple[str, int]:
    """Stream ``handle`` from its current position to EOF; return (lowercase hex SHA-256, size in bytes)."""
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(chunk_bytes):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def guess_content_type(path: str | os.PathLike[str]) -> str:
    """The MIME type for ``path``'s extension (:mod:`mimetypes`), else ``application/octet-stream``.

    A compressed file (``.tar.gz``, ``.csv.xz`` …) is typed by its compression, not by the type
    of what is inside: ``application/gzip`` for gzip, ``application/octet-stream`` otherwise.
    """
    guessed, encoding = mimetypes.guess_type(os.fspath(path))
    if encoding:
        return "application/gzip" if encoding == "gzip" else DEFAULT_CONTENT_TYPE
    return guessed or DEFAULT_CONTENT_TYPE


@dataclass
class AppAttest:
    """An App Attest device's request proofs: its App ID and the last assertion counter used."""

    app_id: str
    counter: int = 0


class DeviceClient:
    """One device talking to one TrustGate server.

    :param server_url: base URL, e.g. ``http://localhost:7071`` (a trailing ``/`` is ignored).
    :param deviceid: the device id sent in the ``deviceid`` header.
    :param device_token: the secret sent in the ``deviceToken`` header (never logged).
    :param private_key: the device key (a ``cryptography`` private key object) used to sign.
    :param session: a :class:`requests.Session` to reuse; a new one is made if omitted.
    :param timeout: seconds (or a ``(connect, read)`` tuple) per HTTP request.
    :param app_attest: set for a device attested with ``apple-appattest``: its requests are then
        proved by App Attest assertions (simulated, :mod:`client.attestation_sim`) with a growing
        counter instead of plain signatures.
    """

    def __init__(
        self,
        server_url: str,
        deviceid: str,
        device_token: str,
        private_key: PrivateKey,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        app_attest: AppAttest | None = None,
    ):
        self.server_url = server_url.rstrip("/")
        self.app_attest = app_attest
        self.deviceid = deviceid
        self._device_token = device_token
        self.private_key = private_key
        self.session = session or requests.Session()
        self.timeout = timeout

    @classmethod
    def from_state(
        cls,
        state: DeviceState,
        session: requests.Session | None = None,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
    ) -> "DeviceClient":
        """A client for a saved device (loads its private key; raises :class:`client.state.StateError`)."""
        app_attest = AppAttest(state.app_id, state.assertion_counter) if state.attestation_format == "apple-appattest" and state.app_id else None
        return cls(state.server, state.deviceid, state.device_token, load_private_key(state.key_path),
                   session=session, timeout=timeout, app_attest=app_attest)

    def __repr__(self) -> str:
        return f"DeviceClient({self.server_url!r}, deviceid={self.deviceid!r})"

    # -- endpoints -------------------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        """``GET /health`` → ``{message: "healthy", ...}``; a 503 raises :class:`ClientError`."""
        return self._request("GET", "/health", auth=False)

    def register(self) -> dict[str, Any]:
        """``POST /register-device`` → ``{message: "device_registered", deviceid}``.

        Raises :class:`ClientError` 400 (invalid id/token) or 409 ``device_exists``.
        """
        body = {"deviceid": self.deviceid, "deviceToken": self._device_token}
        return self._request("POST", "/register-device", auth=False, json=body)

    def challenge(self) -> dict[str, Any]:
        """``GET /api/challenge`` → ``{message: "challenge_issued", challenge, expires_at}``.

        ``challenge`` is a base64url string, single use; ``expires_at`` ISO-8601 UTC text.
        Raises :class:`ClientError` 401 (no credentials) or 403 (wrong credentials).
        """
        return self._request("GET", "/api/challenge")

    def attest(self) -> dict[str, Any]:
        """Bind the device key: fetch a challenge, sign ``attest:{challenge}``, ``POST /attest-device``.

        Returns ``{message: "device_attested", key_type}``. Raises :class:`ClientError` 400
        (unusable key), 401 (bad/used challenge or signature), 403 (credentials) or 409
        ``already_attested`` (the device is bound to another key).
        """
        challenge = self.challenge()["challenge"]
        body = {
            "public_key": public_key_pem(self.private_key),
            "challenge": challenge,
            "signature": b64(sign(self.private_key, attest_message(challenge))),
        }
        return self._request("POST", "/attest-device", json=body)

    def attest_evidence(self, body: dict[str, Any]) -> dict[str, Any]:
        """``POST /attest-device`` a hardware-format body (``format``, ``challenge`` and the
        evidence). Returns ``{message: "device_attested", key_type, trust_level, attestation}``;
        raises :class:`ClientError` 401 ``attestation_failed`` (``detail`` names the failed checks)."""
        return self._request("POST", "/attest-device", json=body)

    def attest_simulated(self, authority: Any, fmt: str, **options: Any) -> dict[str, Any]:
        """DEV ONLY: attest this device's key with evidence a real device would send, built under
        the dev stack's test ``authority`` (:class:`client.attestation_sim.TestAuthority`).

        ``fmt`` ``android-key`` (options: ``package``, ``signature_digest``, ``security_level``,
        ``provisioning``) or ``apple-appattest`` (options: ``app_id``, ``environment``; the device
        then proves requests with assertions). The challenge's raw bytes go into the evidence.
        """
        challenge = self.challenge()["challenge"]
        result = self.attest_evidence(simulated_evidence(authority, fmt, self.private_key, challenge, **options))
        if fmt == "apple-appattest":
            self.app_attest = AppAttest(options["app_id"], 0)
        return result

    def rotate_key(self, new_key: PrivateKey, evidence: Callable[[str], dict[str, Any]] | None = None,
                   app_id: str | None = None) -> dict[str, Any]:
        """``POST /rotate-device-key``: replace the device key by ``new_key``, proving continuity
        with the current key (an App Attest assertion for App Attest devices) over
        ``rotate:{challenge}:{sha256 of the new SPKI}`` and possession with ``new_key`` (format
        ``key``), or with ``evidence(challenge)``'s hardware evidence body for the new key (see
        :func:`simulated_evidence`; ``app_id`` when the new key is an App Attest key).

        On success this client signs with ``new_key`` from then on. Returns ``{message:
        "device_key_rotated", key_type, trust_level, attestation, key_rotations}``; raises
        :class:`ClientError` 400/401/403/409 (``key_already_current``: the rotation had landed
        already, e.g. before a lost answer)/503.
        """
        challenge = self.challenge()["challenge"]
        message = rotation_message(challenge, new_key)
        body: dict[str, Any] = {"challenge": challenge, "signature_by_old_key": self.prove(message)}
        if evidence is None:
            body.update(new_public_key=public_key_pem(new_key), signature_by_new_key=b64(sign(new_key, message)))
        else:
            body.update(evidence(challenge))
        result = self._request("POST", "/rotate-device-key", json=body)
        self.adopt_key(new_key, app_id)
        return result

    def adopt_key(self, new_key: PrivateKey, app_id: str | None = None) -> None:
        """Sign with ``new_key`` from now on (after a rotation the server confirmed); an App Attest
        key's assertion counter starts again from 0."""
        self.private_key = new_key
        self.app_attest = AppAttest(app_id, 0) if app_id else None

    def rotate_token(self, new_token: str) -> dict[str, Any]:
        """``POST /rotate-device-token``: make ``new_token`` the device token, with the device
        key's proof over ``rotate-token:{challenge}:{sha256 of the new token}`` (required for an
        attested device, ignored for one without a key). On success this client sends
        ``new_token`` from then on. Raises :class:`ClientError` 400/401/403/503 (after a 503 the
        rotation may have landed: try :meth:`uses_token` with the new token)."""
        challenge = self.challenge()["challenge"]
        body = {"new_device_token": new_token, "challenge": challenge,
                "signature": self.prove(token_rotation_message(challenge, new_token))}
        result = self._request("POST", "/rotate-device-token", json=body)
        self._device_token = new_token
        return result

    def uses_token(self, token: str) -> bool:
        """Whether the server accepts ``token`` as this device's token now (``GET /api/device``
        with it); ``False`` on ``403 invalid_credentials``. Other errors raise."""
        try:
            request_json(self.session, "GET", self.server_url, "/api/device", self.timeout,
                         headers={"deviceid": self.deviceid, "deviceToken": token})
        except ClientError as error:
            if error.status == 403 and error.message == "invalid_credentials":
                return False
            raise
        return True

    def prove(self, message: bytes) -> str:
        """The base64 proof of ``message`` for a request: a signature with the device key, or for
        an App Attest device an assertion with the next counter."""
        if self.app_attest is None:
            return b64(sign(self.private_key, message))
        from client.attestation_sim import apple_assertion

        self.app_attest.counter += 1
        return b64(apple_assertion(self.private_key, message, self.app_attest.app_id, self.app_attest.counter))

    def upload(
        self,
        path: str | os.PathLike[str],
        content_type: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Upload one file, streamed from disk (never read whole into memory).

        Hashes the file (SHA-256, streaming), fetches a fresh challenge, signs
        ``upload:{challenge}:{sha256 hex}`` and posts ``multipart/form-data`` with fields
        ``challenge``, ``signed_challenge`` (base64), ``public_key`` (PEM) and the ``file`` part
        (basename, ``content_type`` or a guess from the extension). ``progress(sent, total)`` is
        called as the body is sent (bytes of the whole multipart body).

        Returns ``{message: "file_uploaded", file_id, blob_name, sha256, size}``. Raises
        :class:`OSError` if the file cannot be read, :class:`ClientError` for 400/401/403/413/503.
        """
        file_path = Path(path)
        content_type = content_type or guess_content_type(file_path)
        with open(file_path, "rb") as handle:  # one handle for hashing and sending: same file
            sha256_hex, _size = sha256_file(handle)
            handle.seek(0)
            challenge = self.challenge()["challenge"]
            signature = self.prove(upload_message(challenge, sha256_hex))
            encoder = MultipartEncoder(fields=[
                ("challenge", challenge),
                ("signed_challenge", signature),
                ("public_key", public_key_pem(self.private_key)),
                ("file", (file_path.name, handle, content_type)),
            ])
            callback = None
            if progress is not None:
                callback = lambda monitor: progress(monitor.bytes_read, monitor.len)  # noqa: E731
            monitor = MultipartEncoderMonitor(encoder, callback)
            return self._request("POST", "/upload-file", data=monitor,
                                 headers={"Content-Type": monitor.content_type})

    def create_upload(self, file_name: str, size: int, sha256_hex: str, content_type: str) -> dict[str, Any]:
        """``POST /api/uploads``: ask for a direct upload of exactly these bytes (fresh challenge,
        signed ``direct-upload:{challenge}:{sha256}:{size}:{content_type}``).

        Returns ``{upload_id, upload_url, blob_name, block_size, expires_at, state, ...}``.
        Raises :class:`ClientError` 400/401/403/409/413/429/503.
        """
        challenge = self.challenge()["challenge"]
        body = {
            "file_name": file_name, "size": size, "sha256": sha256_hex, "content_type": content_type,
            "challenge": challenge,
            "signature": b64(sign(self.private_key, direct_upload_message(challenge, sha256_hex, size, content_type))),
        }
        return self._request("POST", "/api/uploads", json=body)

    def upload_state(self, upload_id: str) -> dict[str, Any]:
        """``GET /api/uploads/{upload_id}`` → ``{state: pending | verified | digest_mismatch |
        size_mismatch | expired, ...}``. Raises :class:`ClientError` 404 ``upload_not_found``."""
        return self._request("GET", f"/api/uploads/{upload_id}")

    def renew_upload(self, upload_id: str) -> dict[str, Any]:
        """``POST /api/uploads/{upload_id}/renew`` → ``{upload_url, expires_at, block_size, committed,
        staged_blocks: [{id, size}]}``. Raises :class:`ClientError` 404, 409 ``upload_not_pending``."""
        return self._request("POST", f"/api/uploads/{upload_id}/renew")

    def list_files(self, page_size: int | None = None, continuation: str | None = None) -> dict[str, Any]:
        """``GET /api/files`` → ``{message: "files_listed", files: [...], continuation: str | None}``.

        Each file is ``{file_id, name, size, content_type, sha256, status, uploaded_at}``, newest
        first. Pass the returned ``continuation`` back to get the next page.
        """
        return self._request("GET", "/api/files", params=page_params(page_size, continuation))

    def iter_files(self, page_size: int | None = None, continuation: str | None = None) -> Iterator[dict[str, Any]]:
        """Yield every file of the device (from ``continuation`` if given), newest first, page by page.

        Raises :class:`ClientError` ``invalid_response`` if the server repeats a continuation token
        (which would otherwise loop forever).
        """
        return iter_pages(lambda token: self.list_files(page_size=page_size, continuation=token), "files", continuation)

    def verify_integrity(self, token: str, challenge: str | None = None) -> dict[str, Any]:
        """``POST /verify`` a Play Integrity token (classic: nonce = a challenge from
        :meth:`challenge`; standard: pass the ``challenge`` whose :func:`standard_request_hash`
        the app gave Play as ``requestHash``).

        Returns ``{message: "integrity_verified" | "integrity_failed", valid, verdict,
        failed_checks, checked_at}``. Raises :class:`ClientError` 400 ``invalid_integrity_token``,
        401/403 (credentials) or 503 ``integrity_unavailable`` (Google unreachable; retry later).
        """
        body: dict[str, Any] = {"token": token}
        if challenge is not None:
            body["challenge"] = challenge
        return self._request("POST", "/verify", json=body)

    def device_info(self) -> dict[str, Any]:
        """``GET /api/device`` → ``{message: "device", device: {deviceid, registered_at, attested,
        key_type, attested_at, integrity}}`` (``integrity``: the latest ``/verify`` result or ``None``)."""
        return self._request("GET", "/api/device")

    def audit(self, page_size: int | None = None, continuation: str | None = None) -> dict[str, Any]:
        """``GET /api/device/audit`` → ``{checkpoint, size, root, entries: [{index, entry, proof}],
        continuation}``: the audit entries about this device with inclusion proofs (base64) for
        the signed checkpoint (verify them with :mod:`client.audit_merkle`)."""
        return self._request("GET", "/api/device/audit", params=page_params(page_size, continuation))

    # -- plumbing --------------------------------------------------------------------------

    def _request(self, method: str, route: str, *, auth: bool = True,
                 headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
        all_headers = dict(headers or {})
        if auth:
            all_headers["deviceid"] = self.deviceid
            all_headers["deviceToken"] = self._device_token
        return request_json(self.session, method, self.server_url, route, self.timeout, headers=all_headers, **kwargs)


def simulated_evidence(authority: Any, fmt: str, key: PrivateKey, challenge: str, **options: Any) -> dict[str, Any]:
    """DEV ONLY: the ``/attest-device`` (or ``/rotate-device-key``) evidence fields a real device
    would send for ``key`` and ``challenge``, built under the dev stack's test ``authority``:
    ``{format, challenge, certificate_chain}`` for ``android-key`` (options: ``package``,
    ``signature_digest``, ``security_level``, ``provisioning``), ``{format, challenge, key_id,
    attestation_object}`` for ``apple-appattest`` (options: ``app_id``, ``environment``)."""
    from client import attestation_sim as sim  # dev-only dependencies (asn1crypto, cbor2)

    raw = base64.urlsafe_b64decode(challenge + "=" * (-len(challenge) % 4))
    if fmt == "android-key":
        chain = sim.android_chain(authority, key, raw, **options)
        return {"format": fmt, "challenge": challenge, "certificate_chain": [b64(der) for der in chain]}
    key_id, document = sim.apple_attestation(authority, key, raw, options["app_id"],
                                             environment=options.get("environment", "development"))
    return {"format": fmt, "challenge": challenge, "key_id": b64(key_id), "attestation_object": b64(document)}


class FunctionKeyClient:
    """A client of one server's ``AuthLevel.FUNCTION`` endpoints (the audit log, the operator API):
    ``function_key`` is sent as ``x-functions-key`` (Azure checks it; devhost and Core Tools do not)."""

    def __init__(self, server_url: str, function_key: str | None = None, session: requests.Session | None = None,
                 timeout: float = DEFAULT_TIMEOUT) -> None:
        self.server_url = server_url.rstrip("/")
        self.headers = {"x-functions-key": function_key} if function_key else {}
        self.session = session or requests.Session()
        self.timeout = timeout

    def _call(self, method: str, route: str, body: dict[str, Any] | None = None, **params: Any) -> dict[str, Any]:
        """``method route`` with the query ``params`` that are not ``None`` and the JSON ``body`` if given."""
        query = {k: v for k, v in params.items() if v is not None}
        return request_json(self.session, method, self.server_url, route, self.timeout, headers=self.headers,
                            params=query, **({"json": body} if body is not None else {}))


def page_params(page_size: int | None, continuation: str | None) -> dict[str, Any]:
    """Query parameters of a paged listing: ``page_size`` and ``continuation`` when given."""
    params: dict[str, Any] = {}
    if page_size is not None:
        params["page_size"] = page_size
    if continuation:
        params["continuation"] = continuation
    return params


def request_json(session: requests.Session, method: str, server_url: str, route: str, timeout: float,
                 *, headers: dict[str, str] | None = None, **kwargs: Any) -> dict[str, Any]:
    """Send ``method server_url+route`` (``kwargs`` go to :meth:`requests.Session.request`) and
    return the success response's JSON object.

    Raises :class:`TransportError` when the server cannot be reached or does not answer within
    ``timeout`` seconds, :class:`ClientError` for an error status (see :func:`parse_response`).
    """
    all_headers = {"Accept": "application/json", **(headers or {})}
    try:
        response = session.request(method, server_url + route, headers=all_headers, timeout=timeout, **kwargs)
    except requests.Timeout:
        raise TransportError(f"{server_url} did not answer {method} {route} within {timeout} s") from None
    except requests.ConnectionError as error:
        raise TransportError(f"connection to {server_url} failed: {_reason(error)}") from None
    except requests.RequestException as error:
        raise TransportError(f"{method} {route} failed: {error}") from None
    return parse_response(response)


def iter_pages(fetch: Callable[[str | None], dict[str, Any]], key: str,
               continuation: str | None = None) -> Iterator[dict[str, Any]]:
    """Yield the items under ``key`` of every page ``fetch(continuation)`` returns, following
    each page's ``continuation`` until it is empty.

    Raises :class:`ClientError` ``invalid_response`` if the server repeats a continuation token
    (which would otherwise loop forever).
    """
    while True:
        page = fetch(continuation)
        yield from page.get(key) or []
        following = page.get("continuation")
        if not following:
            return
        if following == continuation:
            raise ClientError(page.get("code", 200), "invalid_response", "the server repeated a continuation token")
        continuation = following


def parse_response(response: requests.Response) -> dict[str, Any]:
    """The JSON object of a success response, else raise :class:`ClientError` (see module doc)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.ok:
        if not isinstance(body, dict):
            raise ClientError(response.status_code, "invalid_response", "the server did not answer with a JSON object")
        return body
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        detail = body.get("detail")
        raise ClientError(response.status_code, body["message"], detail if isinstance(detail, str) else "")
    raise ClientError(response.status_code, "http_error", response.reason or "the server answered without a JSON body")


def _reason(error: BaseException) -> str:
    """A short reason for a connection failure: the innermost cause (``Connection refused`` …)."""
    cause = error
    seen = {id(cause)}
    while (inner := cause.__cause__ or cause.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        cause = inner
    if isinstance(cause, OSError) and cause.strerror:
        return cause.strerror
    return str(cause) or type(cause).__name__
